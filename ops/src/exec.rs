//! `vsync exec`'s environment: which of the env's secrets a child process
//! gets, under which names, and which of the parent's variables pass — the
//! trust model (tsafe's: namespaces, `--keys`, `--require`, a strip list,
//! a hardened mode). Running the child is the CLI's.

use std::ffi::OsString;
use std::path::PathBuf;

use vsync_crypto::Zeroizing;

use vsync_engine::vault;
use vsync_local::config::ExecPolicy;
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

/// Names that decide what a program loads or runs before its own code (a
/// prefix when ending in `*`): an env key of one of them would run code of
/// the vault's choosing inside the command, so it is refused unless asked
/// for by name (and always in hardened mode).
pub const RISKY_NAMES: &[&str] = &[
    "LD_*",
    "DYLD_*",
    "PATH",
    "NODE_OPTIONS",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "BASH_ENV",
    "ENV",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
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
    /// The env's own [`ExecPolicy`] (saved by [`set_exec_policy`]): its
    /// `inherit` names and `--pass-env`, minus its `strip` names and the
    /// strip list.
    Custom,
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
    /// `--no-redact`: the child's output is passed through as it is;
    /// refused by hardened mode and by a policy that always redacts.
    pub no_redact: bool,
    /// `--allow-risky-name`: env keys of [`RISKY_NAMES`] injected anyway
    /// (refused in hardened mode).
    pub allow_risky: Vec<String>,
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
    check_modes(request)?;
    let env = Env::load(ctx, env)?;
    let policy = match request.mode {
        TrustMode::Custom => Some(custom_policy(&env, request)?),
        TrustMode::Standard | TrustMode::Hardened => None,
    };
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
            // Opening the store and both round trips hide behind the KDF.
            let derivation = env.start_derivation();
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
                vault::fetch_deriving(store.as_ref(), &layout, &head, None, derivation).await?;
            let client = Client::from_payload(&env.name, fetched.payload(), Options::new())
                .map_err(OpsError::Runtime)?;
            (
                format!("version {} of {}", head.ts, store.describe()),
                values_of(&client),
            )
        }
    };
    shape(origin, values, request, policy.as_ref(), parent)
}

/// The env's custom policy, if it has one that allows `request`.
fn custom_policy(env: &Env, request: &ExecRequest) -> Result<ExecPolicy, OpsError> {
    let Some(policy) = env.config.exec.clone() else {
        return Err(OpsError::Usage(format!(
            "env {name} has no custom exec policy; save one with `vsync config exec {name} --inherit NAME,…`",
            name = env.name
        )));
    };
    if request.no_redact && policy.always_redact {
        return Err(OpsError::Usage(format!(
            "--no-redact: env {name}'s exec policy always redacts the command's output (`vsync config exec {name} --allow-no-redact` changes it)",
            name = env.name
        )));
    }
    Ok(policy)
}

/// A change to an env's custom exec policy: each given field replaces the
/// saved one (a new policy starts empty and always redacting).
#[derive(Debug, Clone, Default)]
pub struct ExecPolicyChange {
    /// The names the child inherits.
    pub inherit: Option<Vec<String>>,
    /// More names the child never gets.
    pub strip: Option<Vec<String>>,
    /// Whether the output is always redacted.
    pub always_redact: Option<bool>,
}

/// The env's custom exec policy, if it has one.
pub fn exec_policy(ctx: &Context, env: &str) -> Result<Option<ExecPolicy>, OpsError> {
    Ok(Env::load(ctx, env)?.config.exec)
}

/// Saves `change` into the env's custom exec policy (creating it) and
/// returns the policy now saved. Every entry is checked first: a refused
/// change writes nothing.
pub fn set_exec_policy(
    ctx: &Context,
    env: &str,
    change: ExecPolicyChange,
) -> Result<ExecPolicy, OpsError> {
    for (flag, entries) in [("--inherit", &change.inherit), ("--strip", &change.strip)] {
        for entry in entries.iter().flatten() {
            vsync_local::config::check_name_pattern(entry)
                .map_err(|problem| OpsError::Usage(format!("{flag} {entry:?}: {problem}")))?;
        }
    }
    if let Some(name) = change
        .inherit
        .iter()
        .flatten()
        .find(|name| is_stripped(name))
    {
        return Err(OpsError::Usage(format!(
            "--inherit {name}: {name} is one of vsync's own credentials and never reaches a child"
        )));
    }
    let mut env = Env::load(ctx, env)?;
    let policy = env.config.exec.get_or_insert_with(|| ExecPolicy {
        always_redact: true,
        ..ExecPolicy::default()
    });
    if let Some(inherit) = change.inherit {
        policy.inherit = inherit;
    }
    if let Some(strip) = change.strip {
        policy.strip = strip;
    }
    if let Some(always_redact) = change.always_redact {
        policy.always_redact = always_redact;
    }
    let saved = policy.clone();
    env.config.save_for(&ctx.base, env.repo.name(), &env.name)?;
    Ok(saved)
}

/// Removes the env's custom exec policy; returns whether it had one.
pub fn remove_exec_policy(ctx: &Context, env: &str) -> Result<bool, OpsError> {
    let mut env = Env::load(ctx, env)?;
    if env.config.exec.take().is_none() {
        return Ok(false);
    }
    env.config.save_for(&ctx.base, env.repo.name(), &env.name)?;
    Ok(true)
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
    check_modes(request)?;
    if request.mode == TrustMode::Custom {
        return Err(OpsError::Usage(
            "--mode custom reads the env's policy from this machine's env config; with VSYNC_CONFIG there is none (use --mode hardened with --pass-env)".into(),
        ));
    }
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
    shape(origin, values_of(&client), request, None, parent)
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

/// What the mode refuses before anything is read.
fn check_modes(request: &ExecRequest) -> Result<(), OpsError> {
    if request.no_redact && request.mode == TrustMode::Hardened {
        return Err(OpsError::Usage(
            "--no-redact: hardened mode always redacts the command's output".into(),
        ));
    }
    if !request.allow_risky.is_empty() && request.mode == TrustMode::Hardened {
        return Err(OpsError::Usage(
            "--allow-risky-name: hardened mode never injects a name that decides what the command loads".into(),
        ));
    }
    match request.pass_env.iter().find(|name| is_stripped(name)) {
        Some(name) if request.mode != TrustMode::Standard => Err(OpsError::Usage(format!(
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
    policy: Option<&ExecPolicy>,
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
    let risky: Vec<&str> = secrets
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| {
            matches_any(RISKY_NAMES, name)
                && !request.allow_risky.iter().any(|allowed| allowed == name)
        })
        .collect();
    if !risky.is_empty() {
        return Err(OpsError::Usage(format!(
            "{origin} sets {}, which decide what the command loads or runs before its own code; nothing was run (--allow-risky-name NAME injects one anyway)",
            risky.join(", ")
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
            let policy_strips = policy.is_some_and(|policy| matches_any(&policy.strip, &text));
            if is_stripped(&text) || policy_strips {
                stripped += 1;
                continue;
            }
            let passed_on = request.pass_env.iter().any(|passed| *passed == text);
            let passes = match (request.mode, policy) {
                (TrustMode::Standard, _) => true,
                (TrustMode::Hardened, _) => {
                    HARDENED_INHERITED.contains(&text.as_ref()) || passed_on
                }
                (TrustMode::Custom, Some(policy)) => {
                    matches_any(&policy.inherit, &text) || passed_on
                }
                (TrustMode::Custom, None) => passed_on,
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

/// Whether `name` is one of `patterns`: a name, or a prefix ending in `*`
/// (see [`vsync_local::config::check_name_pattern`]).
fn matches_any(patterns: &[impl AsRef<str>], name: &str) -> bool {
    patterns.iter().any(|pattern| {
        let pattern = pattern.as_ref();
        match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => pattern == name,
        }
    })
}
