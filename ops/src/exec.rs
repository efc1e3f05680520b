//! `vsync exec`'s environment: which of the env's secrets a child process
//! gets, under which names, and which of the parent's variables pass — the
//! trust model (tsafe's: namespaces, `--keys`, `--require`, a strip list,
//! a hardened mode). Running the child is the CLI's.

use std::ffi::OsString;
use std::path::PathBuf;

use vsync_crypto::Zeroizing;

use vsync_engine::vault;
use vsync_s3_client::{Client, Options};

use crate::lifecycle::Env;
use crate::store::{layout, open_store};
use crate::sync::{ParserPolicy, read_env_file};
use crate::{Context, OpsError};

/// The separator of a namespaced key: `staging/DATABASE_URL` is
/// `DATABASE_URL` of namespace `staging`.
pub const NAMESPACE_SEPARATOR: char = '/';

/// vsync's own inputs and the platform credentials it reads: never passed
/// to a child, in any mode (a vault value of the same name is still set).
pub const STRIPPED: &[&str] = &[
    "VSYNC_PASSPHRASE",
    "VSYNC_PASSPHRASE_FILE",
    "VSYNC_CONFIG",
    "VSYNC_CONFIG_FILE",
    "VSYNC_SECRET_ACCESS_KEY",
    "VSYNC_KEYSTORE",
    "VAULT_TOKEN",
    "VAULT_SECRET_ID",
    "VAULT_ROLE_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_ACCESS_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "OP_CONNECT_TOKEN",
    "OP_SERVICE_ACCOUNT_TOKEN",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// What a hardened child inherits besides `--pass-env`.
pub const HARDENED_INHERITED: &[&str] = &["PATH", "HOME", "LANG", "TERM", "TZ", "USER"];

/// How much of the parent's environment a child gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustMode {
    /// Everything but the strip list.
    #[default]
    Standard,
    /// Only [`HARDENED_INHERITED`] and `--pass-env` (never a stripped
    /// name), and output always redacted.
    Hardened,
}

/// Where `vsync exec` reads the env's secrets from (the third place, the
/// runtime library's bootstrap, is [`child_environment_from_bootstrap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretsFrom {
    /// `<vault folder>/.env.<env>`, read as `sync` reads it.
    #[default]
    VaultFolder,
    /// The env's current version in its store: one round trip, decrypted
    /// in memory, nothing written to disk.
    Remote,
}

/// What `vsync exec` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// Where the secrets come from.
    pub from: SecretsFrom,
    /// `--ns`: only this namespace's keys, injected without their prefix.
    pub namespace: Option<String>,
    /// `--keys`: only these keys (after the namespace is removed); each
    /// must exist.
    pub keys: Vec<String>,
    /// `--require`: these keys must exist (all are injected).
    pub require: Vec<String>,
    /// The trust mode.
    pub mode: TrustMode,
    /// `--pass-env`: more names a hardened child inherits.
    pub pass_env: Vec<String>,
    /// `--no-inherit`: no variable of the parent at all.
    pub no_inherit: bool,
    /// How `.env.<env>` is read (as `sync` reads it).
    pub parser: ParserPolicy,
}

/// The child's environment. Values are wiped when it is dropped.
pub struct ChildEnvironment {
    /// The variables the child gets from the parent.
    pub inherited: Vec<(OsString, OsString)>,
    /// The secrets, by the name the child sees them under.
    pub secrets: Vec<(String, Zeroizing<Vec<u8>>)>,
    /// How many parent variables the strip list kept from the child.
    pub stripped: usize,
    /// Keys of other namespaces, not injected.
    pub other_namespaces: usize,
    /// Where the secrets were read: a `.env` file, a store, the bootstrap.
    pub origin: String,
}

impl std::fmt::Debug for ChildEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.secrets.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ChildEnvironment")
            .field("secrets", &names)
            .field("inherited", &self.inherited.len())
            .field("stripped", &self.stripped)
            .finish()
    }
}

/// The environment `request` gives a child of env `env` (from its vault
/// folder or its store) and `parent` (the process environment). Missing
/// `--keys` or `--require` keys refuse it, every one named; so do a
/// hardened `--pass-env` of a stripped name and a value a variable cannot
/// hold.
pub async fn child_environment(
    ctx: &Context,
    env: &str,
    request: &ExecRequest,
    parent: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<ChildEnvironment, OpsError> {
    check_pass_env(request)?;
    let env = Env::load(ctx, env)?;
    let (origin, values) = match request.from {
        SecretsFrom::VaultFolder => {
            env.check_vault_path()?;
            let env_file = env.vault_dir.join(format!(".env.{}", env.name));
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .ok_or(OpsError::NoHome)?;
            let (desired, _) = read_env_file(&env_file, &request.parser, &home)?;
            let values = desired
                .into_iter()
                .map(|secret| (secret.key, Zeroizing::new(secret.value.as_bytes().to_vec())))
                .collect();
            (env_file.display().to_string(), values)
        }
        SecretsFrom::Remote => {
            let store = open_store(&env.config)?;
            let layout = layout(&env.config, env.repo.name(), &env.name)?;
            let Some(head) = vault::remote_head(store.as_ref(), &layout).await? else {
                return Err(vault::VaultError::NoVault {
                    store: store.describe(),
                    prefix: layout.prefix().to_owned(),
                }
                .into());
            };
            let fetched =
                vault::fetch(store.as_ref(), &layout, &env.derive_key(), &head, None).await?;
            let client = Client::from_payload(&env.name, fetched.payload(), Options::new())
                .map_err(OpsError::Runtime)?;
            (
                format!("version {} of {}", head.ts, store.describe()),
                values_of(&client),
            )
        }
    };
    shape(origin, values, request, parent)
}

/// [`child_environment`] with no local state at all: the vault named by
/// `VSYNC_CONFIG` with the passphrase in `VSYNC_PASSPHRASE` (or their
/// `_FILE` forms), opened exactly as the runtime library opens it — what a
/// container with only the vsync binary runs.
pub async fn child_environment_from_bootstrap(
    env: &str,
    request: &ExecRequest,
    parent: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<ChildEnvironment, OpsError> {
    check_pass_env(request)?;
    if request.from == SecretsFrom::Remote {
        return Err(OpsError::Usage(
            "--remote reads this machine's env config; with VSYNC_CONFIG set the vault it names is read (always from its store)".into(),
        ));
    }
    let client = vsync_s3_client::open(Options::new())
        .await
        .map_err(OpsError::Runtime)?;
    if client.env() != env {
        return Err(OpsError::Usage(format!(
            "VSYNC_CONFIG names env {:?}, not {env:?}; nothing was run",
            client.env()
        )));
    }
    let origin = format!("the vault VSYNC_CONFIG names (env {env})");
    shape(origin, values_of(&client), request, parent)
}

/// True when the process environment holds the runtime library's bootstrap
/// (`VSYNC_CONFIG` or `VSYNC_CONFIG_FILE`, not empty).
pub fn bootstrap_configured() -> bool {
    ["VSYNC_CONFIG", "VSYNC_CONFIG_FILE"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The vault's own KV pairs of an open handle (not the process environment
/// or defaults, which its lookups fall back to).
fn values_of(client: &Client) -> Vec<(String, Zeroizing<Vec<u8>>)> {
    client
        .keys()
        .filter_map(|key| {
            let value = client.get_env(key)?;
            Some((
                key.to_owned(),
                Zeroizing::new(value.expose().as_bytes().to_vec()),
            ))
        })
        .collect()
}

fn check_pass_env(request: &ExecRequest) -> Result<(), OpsError> {
    match request.pass_env.iter().find(|name| is_stripped(name)) {
        Some(name) if request.mode == TrustMode::Hardened => Err(OpsError::Usage(format!(
            "--pass-env {name}: {name} is one of vsync's own credentials and never reaches a child"
        ))),
        _ => Ok(()),
    }
}

/// Applies the namespace, `--keys`, `--require`, the strip list and the
/// mode to the env's `values` and the `parent`'s variables.
fn shape(
    origin: String,
    values: Vec<(String, Zeroizing<Vec<u8>>)>,
    request: &ExecRequest,
    parent: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<ChildEnvironment, OpsError> {
    let mut secrets = Vec::new();
    let mut other_namespaces = 0;
    for (key, value) in values {
        let name = match (&request.namespace, key.split_once(NAMESPACE_SEPARATOR)) {
            (Some(wanted), Some((namespace, name))) if namespace == wanted => name.to_owned(),
            (None, None) => key,
            _ => {
                other_namespaces += 1;
                continue;
            }
        };
        if !request.keys.is_empty() && !request.keys.contains(&name) {
            continue;
        }
        secrets.push((name, value));
    }
    let missing: Vec<&str> = request
        .keys
        .iter()
        .chain(&request.require)
        .filter(|wanted| !secrets.iter().any(|(name, _)| name == *wanted))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let scope = match &request.namespace {
            Some(namespace) => format!("namespace {namespace:?} of "),
            None => String::new(),
        };
        return Err(OpsError::Usage(format!(
            "{scope}{origin} has no {}; nothing was run",
            missing.join(", ")
        )));
    }
    if let Some((name, _)) = secrets
        .iter()
        .find(|(name, value)| name.is_empty() || value.contains(&0))
    {
        return Err(OpsError::Usage(format!(
            "{name:?} cannot be an environment variable (its value holds a NUL byte); nothing was run"
        )));
    }

    let mut inherited = Vec::new();
    let mut stripped = 0;
    if !request.no_inherit {
        for (name, value) in parent {
            let text = name.to_string_lossy();
            if is_stripped(&text) {
                stripped += 1;
                continue;
            }
            let passes = match request.mode {
                TrustMode::Standard => true,
                TrustMode::Hardened => {
                    HARDENED_INHERITED.contains(&text.as_ref())
                        || request.pass_env.iter().any(|passed| *passed == text)
                }
            };
            if passes {
                inherited.push((name, value));
            }
        }
    }
    Ok(ChildEnvironment {
        inherited,
        secrets,
        stripped,
        other_namespaces,
        origin,
    })
}

fn is_stripped(name: &str) -> bool {
    STRIPPED.contains(&name)
}
