//! `vsync exec`'s environment: which of the env's secrets a child process
//! gets, under which names, and which of the parent's variables pass — the
//! trust model (tsafe's: namespaces, `--keys`, `--require`, a strip list,
//! a hardened mode). Running the child is the CLI's.

use std::ffi::OsString;
use std::path::PathBuf;

use vsync_crypto::Zeroizing;

use crate::lifecycle::Env;
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

/// What `vsync exec` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
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
    /// The `.env.<env>` read.
    pub env_file: PathBuf,
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

/// The environment `request` gives a child of env `env`, from the env's
/// vault folder and `parent` (the process environment). Missing `--keys` or
/// `--require` keys refuse it, every one named; so do a hardened
/// `--pass-env` of a stripped name and a value a variable cannot hold.
pub fn child_environment(
    ctx: &Context,
    env: &str,
    request: &ExecRequest,
    parent: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<ChildEnvironment, OpsError> {
    if request.mode == TrustMode::Hardened
        && let Some(name) = request.pass_env.iter().find(|name| is_stripped(name))
    {
        return Err(OpsError::Usage(format!(
            "--pass-env {name}: {name} is one of vsync's own credentials and never reaches a child"
        )));
    }
    let env = Env::load(ctx, env)?;
    env.check_vault_path()?;
    let env_file = env.vault_dir.join(format!(".env.{}", env.name));
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or(OpsError::NoHome)?;
    let (desired, _) = read_env_file(&env_file, &request.parser, &home)?;

    let mut secrets = Vec::new();
    let mut other_namespaces = 0;
    for secret in desired {
        let name = match (
            &request.namespace,
            secret.key.split_once(NAMESPACE_SEPARATOR),
        ) {
            (Some(wanted), Some((namespace, name))) if namespace == wanted => name.to_owned(),
            (None, None) => secret.key.clone(),
            _ => {
                other_namespaces += 1;
                continue;
            }
        };
        if !request.keys.is_empty() && !request.keys.contains(&name) {
            continue;
        }
        secrets.push((name, Zeroizing::new(secret.value.as_bytes().to_vec())));
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
            "{scope}{} has no {}; nothing was run",
            env_file.display(),
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
        env_file,
    })
}

fn is_stripped(name: &str) -> bool {
    STRIPPED.contains(&name)
}
