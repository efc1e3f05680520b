//! Building the sink for a `vsync sync` target from the saved routing
//! (`sync.<target>` in the env config), the flags of this run and the
//! platform credentials in the environment.
//!
//! Credentials come from the variables each platform's own tooling reads
//! (`GITHUB_TOKEN`, `AWS_ACCESS_KEY_ID`, `VAULT_TOKEN`, …), never from flags:
//! a token on a command line lands in shell history and `ps`.
//!
//! Azure Key Vault takes `AZURE_ACCESS_TOKEN` when it is set, else a
//! service principal's client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, and `AZURE_AUTHORITY_HOST` outside the public
//! cloud), the variables Azure's own tools read; `VSYNC_AZURE_VAULT_URL`,
//! `VSYNC_AZURE_CA_FILE` and `VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION`
//! reach emulators and private endpoints.

use vsync_crypto::Zeroizing;
use vsync_engine::sink::{Sink, SinkError};
use vsync_local::config::SyncTargets;

use crate::OpsError;
use crate::sync::Target;

/// Which GitHub secrets a sync writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GithubScope {
    /// Environment secrets of the environment named after the vsync env
    /// (upstream's default), or the one given.
    #[default]
    Environment,
    /// Repository secrets.
    Repository,
    /// Organisation secrets of the given organisation.
    Organization(String),
}

/// Endpoints, credentials and per-run options for every sink.
#[derive(Debug, Clone, Default)]
pub struct SinkSettings {
    /// `--gh-token-file`, else `GITHUB_TOKEN`, else `GH_TOKEN`, else the
    /// GitHub CLI's token (`gh auth token`).
    pub github_token: Option<Zeroizing<String>>,
    /// `GITHUB_API_URL` (set by GitHub Actions; GitHub Enterprise's
    /// `https://<host>/api/v3`), default `https://api.github.com`.
    pub github_api_url: Option<String>,
    /// `--gh-scope` (with `--gh-org`).
    pub github_scope: GithubScope,
    /// `--gh-environment`: the GitHub environment, when it is not named
    /// after the vsync env.
    pub github_environment: Option<String>,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`.
    pub aws_endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub aws_access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub aws_secret_access_key: Option<Zeroizing<String>>,
    /// `AWS_SESSION_TOKEN`.
    pub aws_session_token: Option<Zeroizing<String>>,
    /// `--aws-force-delete`: prune without the recovery window.
    pub aws_force_delete: bool,
    /// `VSYNC_GCP_ENDPOINT`, default `https://secretmanager.googleapis.com`.
    pub gcp_endpoint: Option<String>,
    /// `GOOGLE_OAUTH_ACCESS_TOKEN`: a bearer token for Secret Manager. When
    /// unset, the sink uses Google's Application Default Credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
    /// `application_default_credentials.json`, the metadata server on GCE,
    /// GKE and Cloud Run), which it reads itself.
    pub gcp_access_token: Option<Zeroizing<String>>,
    /// `VSYNC_AZURE_VAULT_URL`: the full vault URL (sovereign clouds,
    /// emulators, tests), instead of `https://<name>.vault.azure.net`.
    pub azure_vault_url: Option<String>,
    /// `AZURE_ACCESS_TOKEN`: a bearer token for Key Vault obtained
    /// elsewhere. Wins over the client secret when both are set.
    pub azure_access_token: Option<Zeroizing<String>>,
    /// `AZURE_TENANT_ID`: the service principal's directory, for the
    /// client secret.
    pub azure_tenant_id: Option<String>,
    /// `AZURE_CLIENT_ID`: the service principal's application (client) ID.
    pub azure_client_id: Option<String>,
    /// `AZURE_CLIENT_SECRET`: the service principal's client secret,
    /// exchanged for a token at Microsoft Entra ID once per sync.
    pub azure_client_secret: Option<Zeroizing<String>>,
    /// `AZURE_AUTHORITY_HOST`: the Entra ID authority the client secret
    /// goes to (`https://login.microsoftonline.us` for Azure Government,
    /// `https://login.chinacloudapi.cn` for Azure China), default
    /// `https://login.microsoftonline.com`.
    pub azure_authority_host: Option<String>,
    /// `VSYNC_AZURE_CA_FILE`: an extra PEM CA to trust, for the vault URL
    /// and the authority host.
    pub azure_ca_file: Option<String>,
    /// `VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION` (`1` or
    /// `true`): the Azure SDKs' `DisableChallengeResourceVerification`
    /// option. By default the resource Key Vault's authentication challenge
    /// names must be the vault URL's own domain (`vault.azure.net` for
    /// `<name>.vault.azure.net`), so a wrong vault URL never gets a token.
    /// Turned off, the token goes to whatever host the vault URL names, even
    /// outside every vault domain: only for Key Vault emulators (and the
    /// test harness) served from an address such as `127.0.0.1`.
    pub azure_disable_challenge_resource_verification: bool,
    /// `VAULT_TOKEN`, else the Vault CLI's `~/.vault-token` (written by
    /// `vault login`).
    pub vault_token: Option<Zeroizing<String>>,
    /// `VAULT_NAMESPACE`.
    pub vault_namespace: Option<String>,
}

impl SinkSettings {
    /// Reads a token from `path` (`-`: standard input), for flags such as
    /// `--gh-token-file`: a token on a command line would land in shell
    /// history and `ps`, a file or a pipe does not.
    pub fn read_token_file(path: &str) -> Result<Zeroizing<String>, OpsError> {
        use std::io::Read;

        // Room up front, so reading never reallocates and leaves a copy.
        let mut raw = Zeroizing::new(String::with_capacity(16 * 1024));
        let read = if path == "-" {
            std::io::stdin().read_to_string(&mut raw).map(drop)
        } else {
            std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut raw).map(drop))
        };
        read.map_err(|source| OpsError::Io {
            path: path.into(),
            source,
        })?;
        trimmed_token(&raw)
            .ok_or_else(|| OpsError::Usage(format!("the token file {path} is empty")))
    }

    /// Reads every credential and endpoint variable; flags are set by the
    /// caller afterwards.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let secret = |name: &str| var(name).map(Zeroizing::new);
        SinkSettings {
            github_token: secret("GITHUB_TOKEN").or_else(|| secret("GH_TOKEN")),
            github_api_url: var("GITHUB_API_URL"),
            aws_endpoint: var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
                .or_else(|| var("AWS_ENDPOINT_URL")),
            aws_access_key_id: var("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key: secret("AWS_SECRET_ACCESS_KEY"),
            aws_session_token: secret("AWS_SESSION_TOKEN"),
            gcp_endpoint: var("VSYNC_GCP_ENDPOINT"),
            gcp_access_token: secret("GOOGLE_OAUTH_ACCESS_TOKEN"),
            azure_vault_url: var("VSYNC_AZURE_VAULT_URL"),
            azure_access_token: secret("AZURE_ACCESS_TOKEN"),
            azure_tenant_id: var("AZURE_TENANT_ID"),
            azure_client_id: var("AZURE_CLIENT_ID"),
            azure_client_secret: secret("AZURE_CLIENT_SECRET"),
            azure_authority_host: var("AZURE_AUTHORITY_HOST"),
            azure_ca_file: var("VSYNC_AZURE_CA_FILE"),
            azure_disable_challenge_resource_verification: var(
                "VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION",
            )
            .as_deref()
            .is_some_and(is_true),
            vault_token: secret("VAULT_TOKEN").or_else(vault_cli_token),
            vault_namespace: var("VAULT_NAMESPACE"),
            ..SinkSettings::default()
        }
    }
}

/// The token `vault login` leaves in `~/.vault-token` (the Vault CLI's
/// default token helper).
fn vault_cli_token() -> Option<Zeroizing<String>> {
    let path = std::path::Path::new(&std::env::var_os("HOME")?).join(".vault-token");
    let raw = Zeroizing::new(std::fs::read_to_string(path).ok()?);
    trimmed_token(&raw)
}

/// A token read from a file, a pipe or a CLI's output, without the
/// surrounding whitespace; `None` when nothing is left.
fn trimmed_token(raw: &str) -> Option<Zeroizing<String>> {
    let token = raw.trim();
    (!token.is_empty()).then(|| Zeroizing::new(token.to_owned()))
}

/// `1` or `true` (any case): what turns a `VSYNC_…` switch on. Anything
/// else leaves it off, the safe side.
fn is_true(value: &str) -> bool {
    let value = value.trim();
    value == "1" || value.eq_ignore_ascii_case("true")
}

/// The sink for `target`, routed by the saved `sync` block.
pub(crate) fn build_sink(
    target: Target,
    env: &str,
    routing: Option<&SyncTargets>,
    settings: &SinkSettings,
) -> Result<Box<dyn Sink>, OpsError> {
    let routing = routing.cloned().unwrap_or_default();
    match target {
        #[cfg(feature = "github")]
        Target::GithubActions => github(env, &routing, settings),
        #[cfg(feature = "aws")]
        Target::AwsSecretsManager => aws(&routing, settings),
        #[cfg(feature = "azure")]
        Target::AzureKeyVault => azure(&routing, settings),
        #[cfg(feature = "vault")]
        Target::VaultKv => vault_kv(&routing, settings),
        #[cfg(feature = "gcp")]
        Target::GcpSecretManager => gcp(&routing, settings),
        #[allow(unreachable_patterns)] // every platform's feature is on in the default build
        _ => {
            let _ = (env, &routing, settings);
            Err(OpsError::SinkSetup(format!(
                "this vsync was built without the {} sink",
                target.name()
            )))
        }
    }
}

fn setup(error: SinkError) -> OpsError {
    OpsError::SinkSetup(error.to_string())
}

fn routing_missing(what: &str, flag: &str) -> OpsError {
    OpsError::Usage(format!(
        "no {what} to sync to: pass {flag} (it is saved in the env config for next time)"
    ))
}

#[cfg(feature = "github")]
fn github(
    env: &str,
    routing: &SyncTargets,
    settings: &SinkSettings,
) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::github::GithubSink;

    let mut builder = GithubSink::builder();
    if let Some(url) = &settings.github_api_url {
        builder = builder.base_url(url.as_str());
    }
    let api_url = settings
        .github_api_url
        .as_deref()
        .unwrap_or("https://api.github.com");
    let token = match &settings.github_token {
        Some(token) => token.clone(),
        None => gh_cli_token(api_url).ok_or_else(|| {
            OpsError::SinkSetup(
                "GitHub: no token; set GITHUB_TOKEN or GH_TOKEN, pass --gh-token-file, or log in with `gh auth login`".into(),
            )
        })?,
    };
    builder = builder.token(token.as_str());
    builder = match &settings.github_scope {
        GithubScope::Organization(org) => builder.organization(org.as_str()),
        scope => {
            let repo = routing
                .gh
                .as_ref()
                .map(|gh| gh.repo.as_str())
                .ok_or_else(|| routing_missing("GitHub repository", "--gh-repo=<owner/name>"))?;
            let builder = builder.repository(repo);
            match scope {
                GithubScope::Environment => {
                    builder.environment(settings.github_environment.as_deref().unwrap_or(env))
                }
                _ => builder,
            }
        }
    };
    Ok(Box::new(builder.build().map_err(setup)?))
}

/// The variables `gh auth token` reads to find its stored login.
#[cfg(feature = "github")]
const GH_CLI_ENVIRONMENT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "GH_CONFIG_DIR",
    "GH_HOST",
];

/// The token the GitHub CLI holds for the host of `api_url` (`gh auth
/// token`), as upstream's `gh secret set` would have used; `None` when `gh`
/// is not installed or not logged in to that host.
#[cfg(feature = "github")]
fn gh_cli_token(api_url: &str) -> Option<Zeroizing<String>> {
    let host = api_url
        .split_once("://")
        .map_or(api_url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .filter(|host| !host.is_empty())?;
    // GitHub.com's API lives on its own host; GitHub Enterprise Server's
    // under /api/v3 of the instance's host.
    let host = if host == "api.github.com" {
        "github.com"
    } else {
        host
    };
    let mut command = std::process::Command::new("gh");
    // `gh` gets what it needs to find its login (its config and the OS
    // keychain's session bus), never the cloud credentials vsync was given.
    command.env_clear();
    for name in GH_CLI_ENVIRONMENT {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let output = command
        .args(["auth", "token", "--hostname", host])
        .env("GH_PROMPT_DISABLED", "1")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return None;
    }
    trimmed_token(std::str::from_utf8(&stdout).ok()?)
}

#[cfg(feature = "aws")]
fn aws(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::aws::{AwsSecretsManagerSink, DeletePolicy};

    let saved = routing
        .aws
        .as_ref()
        .ok_or_else(|| routing_missing("AWS region", "--aws-region=<region>"))?;
    let mut builder = AwsSecretsManagerSink::builder().region(saved.region.as_str());
    if let Some(prefix) = &saved.secret_prefix {
        builder = builder.prefix(prefix.as_str());
    }
    if let Some(endpoint) = &settings.aws_endpoint {
        builder = builder.endpoint(endpoint.as_str());
    }
    // Without a static key in the environment the sink resolves AWS's
    // standard chain: AWS_PROFILE or the default profile (SSO, assumed
    // roles, credential_process), web identity, container or instance role.
    match (&settings.aws_access_key_id, &settings.aws_secret_access_key) {
        (Some(id), Some(secret)) => builder = builder.credentials(id.as_str(), secret.as_str()),
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(OpsError::SinkSetup(
                "AWS: only half of a static key is set; set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither to use a profile or role".into(),
            ));
        }
    }
    if let Some(token) = &settings.aws_session_token {
        builder = builder.session_token(token.as_str());
    }
    if settings.aws_force_delete {
        builder = builder.delete_policy(DeletePolicy::ForceWithoutRecovery);
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(feature = "azure")]
fn azure(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::azure::KeyVaultSink;

    let mut builder = KeyVaultSink::builder();
    builder = match (&settings.azure_vault_url, &routing.azure) {
        (Some(url), _) => builder.vault_url(url.as_str()),
        (None, Some(saved)) => builder.vault_name(&saved.vault_name),
        (None, None) => return Err(routing_missing("Azure Key Vault", "--azure-vault=<name>")),
    };
    builder = match (
        &settings.azure_access_token,
        &settings.azure_tenant_id,
        &settings.azure_client_id,
        &settings.azure_client_secret,
    ) {
        (Some(token), ..) => builder.access_token(token.as_str()),
        (None, Some(tenant), Some(client), Some(secret)) => {
            let builder = builder.client_secret(tenant.as_str(), client.as_str(), secret);
            match &settings.azure_authority_host {
                Some(authority) => builder.authority_host(authority.as_str()),
                None => builder,
            }
        }
        (None, None, None, None) => {
            return Err(OpsError::SinkSetup(
                "Azure: no credentials; set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal's client secret), or AZURE_ACCESS_TOKEN (e.g. from `az account get-access-token --resource https://vault.azure.net`)".into(),
            ));
        }
        (None, tenant, client, secret) => {
            let missing: Vec<&str> = [
                ("AZURE_TENANT_ID", tenant.is_none()),
                ("AZURE_CLIENT_ID", client.is_none()),
                ("AZURE_CLIENT_SECRET", secret.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect();
            let verb = if missing.len() == 1 { "is" } else { "are" };
            return Err(OpsError::SinkSetup(format!(
                "Azure: the client-secret credential needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; {} {verb} not set (or set AZURE_ACCESS_TOKEN instead)",
                missing.join(" and ")
            )));
        }
    };
    builder =
        builder.verify_challenge_resource(!settings.azure_disable_challenge_resource_verification);
    if let Some(file) = &settings.azure_ca_file {
        let pem = std::fs::read(file).map_err(|source| OpsError::Io {
            path: file.into(),
            source,
        })?;
        builder = builder.extra_ca_pem(pem);
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(feature = "vault")]
fn vault_kv(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::vault_kv::VaultKvSink;

    let saved = routing.vault.as_ref().ok_or_else(|| {
        routing_missing("Vault address", "--vault-addr=<url> --vault-path=<path>")
    })?;
    if saved.secret_path.is_empty() {
        return Err(routing_missing("Vault secret path", "--vault-path=<path>"));
    }
    let token = settings.vault_token.as_ref().ok_or_else(|| {
        OpsError::SinkSetup("Vault: no token; set VAULT_TOKEN or run `vault login`".into())
    })?;
    let mut builder = VaultKvSink::builder()
        .address(saved.addr.as_str())
        .mount(saved.mount.as_str())
        .path(saved.secret_path.as_str())
        .token(token);
    if let Some(namespace) = &settings.vault_namespace {
        builder = builder.namespace(namespace.as_str());
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(feature = "gcp")]
fn gcp(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::gcp::GcpSecretManagerSink;

    let saved = routing
        .gcp
        .as_ref()
        .ok_or_else(|| routing_missing("GCP project", "--gcp-project=<id>"))?;
    let mut builder = GcpSecretManagerSink::builder().project(saved.project.as_str());
    // The token wins when set; otherwise Application Default Credentials.
    if let Some(token) = &settings.gcp_access_token {
        builder = builder.access_token(token);
    }
    if let Some(endpoint) = &settings.gcp_endpoint {
        builder = builder.endpoint(endpoint.as_str());
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(all(test, feature = "azure"))]
mod tests {
    use super::*;

    fn azure_settings() -> SinkSettings {
        SinkSettings {
            azure_vault_url: Some("https://127.0.0.1:8443".into()),
            ..SinkSettings::default()
        }
    }

    fn refusal(settings: &SinkSettings) -> String {
        match azure(&SyncTargets::default(), settings) {
            Err(OpsError::SinkSetup(message)) => message,
            Err(other) => panic!("expected SinkSetup, got {other:?}"),
            Ok(_) => panic!("expected a refusal"),
        }
    }

    #[test]
    fn azure_takes_the_access_token_first_then_the_client_secret() {
        let token = SinkSettings {
            azure_access_token: Some(Zeroizing::new("eyJ0".into())),
            // A partial triple does not matter when a token is given.
            azure_client_id: Some("app".into()),
            ..azure_settings()
        };
        assert!(azure(&SyncTargets::default(), &token).is_ok());

        let client_secret = SinkSettings {
            azure_tenant_id: Some("contoso.onmicrosoft.com".into()),
            azure_client_id: Some("app".into()),
            azure_client_secret: Some(Zeroizing::new("s3cret~value".into())),
            azure_authority_host: Some("https://login.microsoftonline.us".into()),
            ..azure_settings()
        };
        let sink = azure(&SyncTargets::default(), &client_secret).unwrap();
        assert_eq!(sink.target(), "azure-key-vault:vault=127.0.0.1:8443");

        let bad_authority = SinkSettings {
            azure_authority_host: Some("http://login.example".into()),
            ..client_secret.clone()
        };
        let message = refusal(&bad_authority);
        assert!(message.contains("https"), "{message}");
        assert!(!message.contains("s3cret~value"), "{message}");
        assert!(!format!("{client_secret:?}").contains("s3cret~value"));
    }

    #[test]
    fn missing_azure_credentials_name_the_variables() {
        let message = refusal(&azure_settings());
        for name in [
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_ACCESS_TOKEN",
        ] {
            assert!(message.contains(name), "{message}");
        }

        let partial = SinkSettings {
            azure_client_id: Some("app".into()),
            azure_client_secret: Some(Zeroizing::new("s3cret~value".into())),
            ..azure_settings()
        };
        let message = refusal(&partial);
        assert!(message.contains("AZURE_TENANT_ID is not set"), "{message}");
        assert!(!message.contains("s3cret~value"), "{message}");

        let only_tenant = SinkSettings {
            azure_tenant_id: Some("contoso.onmicrosoft.com".into()),
            ..azure_settings()
        };
        let message = refusal(&only_tenant);
        assert!(
            message.contains("AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not set"),
            "{message}"
        );
    }

    #[test]
    fn switches_are_on_for_1_and_true_only() {
        for on in ["1", "true", "TRUE", " True "] {
            assert!(is_true(on), "{on}");
        }
        for off in ["0", "false", "yes", "", "2"] {
            assert!(!is_true(off), "{off}");
        }
    }
}
