//! HashiCorp Vault: the client the KV v2 sink and the Vault source share,
//! and where their credentials come from.
//!
//! The address must be an http(s) URL, and plain http only on loopback
//! (a token must not travel in clear text); every vaultrs setting is given
//! explicitly, so no `VAULT_*` variable of the process (say,
//! `VAULT_SKIP_VERIFY`) changes what the library does.
//!
//! Credentials are discovered in the order Vault's own tooling and its
//! deployments use them ([`Auth::from_env`]): a token someone handed over
//! (`VAULT_TOKEN`), the one `vault login` left in `~/.vault-token`, then a
//! machine identity that logs in for a token (AppRole, Kubernetes).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vsync_engine::sink::SinkError;
use zeroize::Zeroizing;

/// How long one request may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest token or service-account JWT file read (Kubernetes'
/// projected tokens are about 1 KiB): a path pointing at something else
/// is not read whole.
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Where Kubernetes mounts a pod's service-account token.
pub const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// A client for one Vault server, with the settings it was made from.
pub struct Connection {
    /// The vaultrs client.
    pub client: VaultClient,
    /// The server's address, without a trailing `/`.
    pub address: String,
    /// The Vault Enterprise namespace, if any, without surrounding `/`.
    pub namespace: Option<String>,
}

/// Checks the settings and makes the client, which sends `token` with
/// every request. Nothing is sent yet. `ca_certs` are PEM files trusted
/// besides the system's roots.
pub fn connect(
    address: Option<String>,
    token: Option<Zeroizing<String>>,
    namespace: Option<String>,
    ca_certs: Vec<String>,
) -> Result<Connection, SinkError> {
    let address = checked_address(address)?;
    let token = token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| SinkError::Misconfigured("no Vault token (VAULT_TOKEN) is set".into()))?;
    client(address, &token, namespace, ca_certs)
}

/// Checks the settings and makes a client that holds no token: for a
/// caller that logs in first ([`Auth`]) and sends the token it got on each
/// request itself. Nothing is sent yet.
pub fn connect_without_token(
    address: Option<String>,
    namespace: Option<String>,
    ca_certs: Vec<String>,
) -> Result<Connection, SinkError> {
    client(checked_address(address)?, "", namespace, ca_certs)
}

fn checked_address(address: Option<String>) -> Result<String, SinkError> {
    let address =
        address.ok_or_else(|| SinkError::Misconfigured("the Vault address is not set".into()))?;
    let address = address.trim_end_matches('/').to_owned();
    match url::Url::parse(&address) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
        _ => {
            return Err(SinkError::Misconfigured(format!(
                "the Vault address {address:?} is not an http:// or https:// URL"
            )));
        }
    }
    vsync_engine::sink::require_secure_transport("the Vault address", &address)?;
    Ok(address)
}

fn client(
    address: String,
    token: &str,
    namespace: Option<String>,
    ca_certs: Vec<String>,
) -> Result<Connection, SinkError> {
    let namespace = namespace
        .map(|ns| ns.trim_matches('/').to_owned())
        .filter(|ns| !ns.is_empty());
    let settings = VaultClientSettingsBuilder::default()
        .address(&address)
        .token(token)
        .namespace(namespace.clone())
        .ca_certs(ca_certs)
        .identity(None)
        .verify(true)
        .timeout(Some(REQUEST_TIMEOUT))
        .build()
        .map_err(|e| SinkError::Misconfigured(format!("Vault client settings: {e}")))?;
    let client = VaultClient::new(settings)
        .map_err(|e| SinkError::Misconfigured(format!("Vault client: {e}")))?;
    Ok(Connection {
        client,
        address,
        namespace,
    })
}

/// How a client proves who it is to Vault.
pub enum Auth {
    /// A token, used as it is.
    Token {
        /// The token.
        token: Zeroizing<String>,
        /// Where it came from, named when Vault refuses it
        /// (`VAULT_TOKEN`, `~/.vault-token`).
        from: &'static str,
    },
    /// An AppRole login (`POST /v1/auth/<mount>/login`) for a token.
    AppRole {
        /// The auth mount, `approle` unless moved.
        mount: String,
        /// `VAULT_ROLE_ID`.
        role_id: String,
        /// `VAULT_SECRET_ID`.
        secret_id: Zeroizing<String>,
    },
    /// A Kubernetes login (`POST /v1/auth/<mount>/login`) with the pod's
    /// service-account token, read at login time (kubelet rotates it).
    Kubernetes {
        /// The auth mount, `kubernetes` unless moved.
        mount: String,
        /// `VAULT_K8S_ROLE`.
        role: String,
        /// The service-account token file (`VAULT_K8S_TOKEN_PATH`).
        jwt_file: PathBuf,
    },
}

impl std::fmt::Debug for Auth {
    // By hand: the token and the secret id stay out of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Auth {
    /// A token given directly (`VAULT_TOKEN`).
    pub fn token(token: &str) -> Self {
        Auth::Token {
            token: Zeroizing::new(token.to_owned()),
            from: "VAULT_TOKEN",
        }
    }

    /// The credentials in `var`'s environment, first found first used:
    /// `VAULT_TOKEN`; the token `vault login` leaves in `~/.vault-token`;
    /// AppRole (`VAULT_ROLE_ID` and `VAULT_SECRET_ID`); Kubernetes
    /// (`VAULT_K8S_ROLE`, with the service-account token at
    /// `VAULT_K8S_TOKEN_PATH` or Kubernetes' default path). A token wins
    /// because someone handed it over on purpose; machine identities come
    /// last because their variables may be set for another tool. The auth
    /// mounts are `approle` and `kubernetes` unless given.
    pub fn from_env(
        var: &dyn Fn(&str) -> Option<String>,
        approle_mount: Option<String>,
        k8s_mount: Option<String>,
    ) -> Result<Auth, SinkError> {
        if let Some((token, from)) = token_from_env(var) {
            return Ok(Auth::Token { token, from });
        }
        match (var("VAULT_ROLE_ID"), var("VAULT_SECRET_ID")) {
            (Some(role_id), Some(secret_id)) => {
                return Ok(Auth::AppRole {
                    mount: auth_mount(approle_mount, "approle")?,
                    role_id,
                    secret_id: Zeroizing::new(secret_id),
                });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(SinkError::Misconfigured(
                    "an AppRole login needs both VAULT_ROLE_ID and VAULT_SECRET_ID; one of them is not set"
                        .into(),
                ));
            }
            (None, None) => {}
        }
        if let Some(role) = var("VAULT_K8S_ROLE") {
            return Ok(Auth::Kubernetes {
                mount: auth_mount(k8s_mount, "kubernetes")?,
                role,
                jwt_file: var("VAULT_K8S_TOKEN_PATH")
                    .unwrap_or_else(|| DEFAULT_K8S_TOKEN_PATH.to_owned())
                    .into(),
            });
        }
        Err(SinkError::Misconfigured(
            "no Vault credentials: set VAULT_TOKEN (or run `vault login`), VAULT_ROLE_ID and VAULT_SECRET_ID (AppRole), or VAULT_K8S_ROLE (Kubernetes)"
                .into(),
        ))
    }

    /// The credential in words, for the message that asks to fix it.
    pub fn describe(&self) -> String {
        match self {
            Auth::Token { from, .. } => format!("the token in {from}"),
            Auth::AppRole { mount, .. } => {
                format!("the AppRole login at auth/{mount} (VAULT_ROLE_ID, VAULT_SECRET_ID)")
            }
            Auth::Kubernetes {
                mount,
                role,
                jwt_file,
            } => format!(
                "the Kubernetes login at auth/{mount} as role {role:?} (VAULT_K8S_ROLE, service-account token {}; VAULT_K8S_TOKEN_PATH)",
                jwt_file.display()
            ),
        }
    }
}

/// A token from `VAULT_TOKEN`, else from `~/.vault-token` (the Vault CLI's
/// default token helper, written by `vault login`), with where it came from.
pub fn token_from_env(
    var: &dyn Fn(&str) -> Option<String>,
) -> Option<(Zeroizing<String>, &'static str)> {
    let source = TokenSource::find(var)?;
    Some((source.read(var)?, source.describe()))
}

/// Where a Vault token comes from, decided without reading it, so the
/// token that is used and the source a report names (`vsync doctor`) are
/// one choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `VAULT_TOKEN`, which wins: someone handed it over on purpose.
    Variable,
    /// The file `vault login` writes (`~/.vault-token`).
    LoginFile(PathBuf),
}

impl TokenSource {
    /// `VAULT_TOKEN` when set, else `~/.vault-token` when it is a file.
    pub fn find(var: &dyn Fn(&str) -> Option<String>) -> Option<TokenSource> {
        if var("VAULT_TOKEN").is_some() {
            return Some(TokenSource::Variable);
        }
        let file = Path::new(&var("HOME")?).join(".vault-token");
        file.is_file().then_some(TokenSource::LoginFile(file))
    }

    /// The token; `None` when the file turns out empty or unreadable.
    pub fn read(&self, var: &dyn Fn(&str) -> Option<String>) -> Option<Zeroizing<String>> {
        match self {
            TokenSource::Variable => var("VAULT_TOKEN").map(Zeroizing::new),
            TokenSource::LoginFile(file) => read_token_file(file).ok(),
        }
    }

    /// The source in words, never the token.
    pub fn describe(&self) -> &'static str {
        match self {
            TokenSource::Variable => "VAULT_TOKEN",
            TokenSource::LoginFile(_) => "~/.vault-token (`vault login`)",
        }
    }
}

/// The token or JWT in `path`, without surrounding whitespace; refused
/// when empty or over [`MAX_TOKEN_FILE_BYTES`].
pub fn read_token_file(path: &Path) -> Result<Zeroizing<String>, std::io::Error> {
    let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    // Room up front, so reading never reallocates and leaves a copy.
    let mut raw = Zeroizing::new(String::with_capacity(MAX_TOKEN_FILE_BYTES as usize + 1));
    std::fs::File::open(path)?
        .take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_string(&mut raw)?;
    if raw.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(invalid("larger than a token file can be"));
    }
    let token = raw.trim();
    if token.is_empty() {
        return Err(invalid("empty"));
    }
    Ok(Zeroizing::new(token.to_owned()))
}

fn auth_mount(given: Option<String>, default: &str) -> Result<String, SinkError> {
    let mount = given.unwrap_or_else(|| default.to_owned());
    let mount = mount.trim_matches('/');
    if mount.is_empty() || mount.split('/').any(|part| matches!(part, "" | "." | "..")) {
        return Err(SinkError::Misconfigured(format!(
            "the auth mount {mount:?} is not a Vault path"
        )));
    }
    Ok(mount.to_owned())
}

/// What an HTTP status from Vault means in the engine's taxonomy. `detail`
/// names the request and carries Vault's message, never a value.
pub fn status_error(code: u16, retry_after: Option<Duration>, detail: String) -> SinkError {
    match code {
        401 | 403 => SinkError::Denied(detail),
        404 => SinkError::NotFound(detail),
        // Vault Enterprise: a standby has not caught up yet; retry.
        412 => SinkError::Unavailable(detail),
        // A rate-limit quota, with its `Retry-After`.
        429 => SinkError::RateLimited { retry_after },
        // 472/473: disaster-recovery and performance standbys; 503: sealed
        // or a standby without a leader.
        472 | 473 | 500..=599 => SinkError::Unavailable(detail),
        _ => SinkError::Rejected(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn credentials_are_found_in_order_and_a_half_approle_is_refused() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".vault-token"), "  hvs.from-file\n").unwrap();
        let home_dir = home.path().to_str().unwrap();
        let full = [
            ("VAULT_TOKEN", "hvs.given"),
            ("HOME", home_dir),
            ("VAULT_ROLE_ID", "role"),
            ("VAULT_SECRET_ID", "secret-id-xyzzy"),
            ("VAULT_K8S_ROLE", "app"),
        ];
        let found = |pairs: &[(&str, &str)]| Auth::from_env(&env(pairs), None, None);
        assert!(matches!(
            found(&full).unwrap(),
            Auth::Token { token, from: "VAULT_TOKEN" } if token.as_str() == "hvs.given"
        ));
        assert!(matches!(
            found(&full[1..]).unwrap(),
            Auth::Token { token, .. } if token.as_str() == "hvs.from-file"
        ));
        let approle = found(&full[2..]).unwrap();
        assert!(matches!(&approle, Auth::AppRole { mount, .. } if mount == "approle"));
        assert!(!format!("{approle:?}").contains("xyzzy"));
        let k8s = Auth::from_env(&env(&full[4..]), None, Some("/k8s/prod/".into())).unwrap();
        assert!(matches!(
            &k8s,
            Auth::Kubernetes { mount, jwt_file, .. }
                if mount == "k8s/prod" && jwt_file == Path::new(DEFAULT_K8S_TOKEN_PATH)
        ));
        assert!(k8s.describe().contains("VAULT_K8S_ROLE"));

        let half = found(&[("VAULT_SECRET_ID", "s")]).unwrap_err();
        assert!(half.to_string().contains("VAULT_ROLE_ID"), "{half}");
        let none = found(&[]).unwrap_err();
        assert!(none.to_string().contains("VAULT_TOKEN"), "{none}");
        let bad_mount = Auth::from_env(&env(&full[2..4]), Some("a/../b".into()), None);
        assert!(matches!(bad_mount, Err(SinkError::Misconfigured(_))));
    }

    #[test]
    fn the_token_source_is_decided_without_reading_the_token() {
        let home = tempfile::tempdir().unwrap();
        let home_dir = home.path().to_str().unwrap();
        let with_home = [("HOME", home_dir)];
        assert_eq!(TokenSource::find(&env(&with_home)), None);
        // Found before it is read: an empty file is only found out then.
        let file = home.path().join(".vault-token");
        std::fs::write(&file, "\n").unwrap();
        let source = TokenSource::find(&env(&with_home)).unwrap();
        assert_eq!(source, TokenSource::LoginFile(file.clone()));
        assert_eq!(source.describe(), "~/.vault-token (`vault login`)");
        assert!(token_from_env(&env(&with_home)).is_none());
        std::fs::write(&file, "hvs.from-file").unwrap();
        assert_eq!(
            source.read(&env(&with_home)).unwrap().as_str(),
            "hvs.from-file"
        );
        let given = [("VAULT_TOKEN", "hvs.given"), ("HOME", home_dir)];
        let source = TokenSource::find(&env(&given)).unwrap();
        assert_eq!(source.describe(), "VAULT_TOKEN");
        assert_eq!(source.read(&env(&given)).unwrap().as_str(), "hvs.given");
    }

    #[test]
    fn a_token_file_is_trimmed_and_refused_when_empty_or_huge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_token_file(&path).is_err());
        std::fs::write(&path, "x".repeat(MAX_TOKEN_FILE_BYTES as usize + 1)).unwrap();
        assert!(read_token_file(&path).is_err());
        std::fs::write(&path, "eyJhbGciOi.jwt\n").unwrap();
        assert_eq!(read_token_file(&path).unwrap().as_str(), "eyJhbGciOi.jwt");
    }

    #[test]
    fn statuses_map_to_the_taxonomy() {
        let retry = Some(Duration::from_secs(2));
        assert!(matches!(
            status_error(403, None, String::new()),
            SinkError::Denied(_)
        ));
        assert!(matches!(
            status_error(429, retry, String::new()),
            SinkError::RateLimited { retry_after } if retry_after == retry
        ));
        for code in [412, 473, 503] {
            assert!(status_error(code, None, String::new()).is_retryable());
        }
        assert!(matches!(
            status_error(400, None, String::new()),
            SinkError::Rejected(_)
        ));
    }
}
