//! `export` and `import`: one env's config and key in an SLS1 `.share`
//! file, for onboarding a teammate (§1.4, §5.5, §5.6).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vsync_crypto::frame;
use vsync_local::{EnvConfig, pin};
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditOptions};
use crate::keystore::{ImportOutcome, Pair, import_pair};
use crate::{Context, OpsError, Progress, layout, open_store};

/// Upstream's `EXPORT_BLOB_VERSION`.
const EXPORT_VERSION: u64 = 2;
/// Upstream's `MIN_KEY_LEN`.
const MIN_KEY_LEN: usize = 20;
/// Upstream's `PASSPHRASE_MIN_LEN`.
const MIN_PASSPHRASE_LEN: usize = 8;
/// Upstream's generator alphabet: no 0/1/i/l/o/I/L/O to misread.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ";

/// What `export` wrote.
pub struct ExportReport {
    /// The `.share` file (0600).
    pub path: PathBuf,
    /// The generated passphrase, to show once (never stored); `None` when
    /// the user gave one, which is never echoed back.
    pub generated_passphrase: Option<Zeroizing<String>>,
    /// Set when the share was written inside a git working tree, where a
    /// commit could publish it.
    pub inside_working_tree: Option<PathBuf>,
}

// Hand-written so the passphrase never reaches a `{:?}`.
impl std::fmt::Debug for ExportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportReport")
            .field("path", &self.path)
            .field(
                "generated_passphrase",
                &self.generated_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("inside_working_tree", &self.inside_working_tree)
            .finish()
    }
}

/// Writes `<repo>-<env>.share` (or `out`) sealed with `passphrase`, or with
/// a generated one, and records an `export` row in the audit log.
pub async fn export_share(
    ctx: &Context,
    env: &str,
    out: Option<&Path>,
    passphrase: Option<Zeroizing<String>>,
    audit_options: &AuditOptions,
    progress: &dyn Progress,
) -> Result<ExportReport, OpsError> {
    let repo = ctx.repo()?;
    let name = repo.name();
    let config = EnvConfig::load_for(&ctx.base, name, env)?;
    let key = ctx
        .keystore
        .get(name, env)?
        .ok_or_else(|| OpsError::NoKey {
            repo: name.to_owned(),
            env: env.to_owned(),
            keystore: ctx.keystore.describe(),
        })?;
    let (passphrase, generated) = chosen_passphrase(passphrase)?;
    let config_path = ctx.base.env_config_path(name, env)?;
    let config_json = config.to_json(&config_path)?;
    let config_json = std::str::from_utf8(&config_json).expect("serde_json writes UTF-8");
    // Written by hand to keep upstream's key order whatever serde_json's
    // map features are.
    let payload = Zeroizing::new(format!(
        r#"{{"version":{EXPORT_VERSION},"repo":{},"env":{},"config":{config_json},"key":{}}}"#,
        json_string(name).as_str(),
        json_string(env).as_str(),
        json_string(&key).as_str(),
    ));
    let sealed = frame::seal_share(&passphrase, payload.as_bytes());
    let path = out.map_or_else(
        || ctx.cwd.join(format!("{name}-{env}.share")),
        Path::to_path_buf,
    );
    vsync_local::fsutil::write_private_atomic(&path, &sealed).map_err(|source| OpsError::Io {
        path: path.clone(),
        source,
    })?;
    record_share_event(
        ctx,
        &config,
        name,
        env,
        AuditAction::Export,
        audit_options,
        progress,
    )
    .await;
    // A share holds the env's key: committed, it hands the vault to anyone
    // with the repo and the passphrase.
    let inside_working_tree = path
        .parent()
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                ctx.cwd.as_path()
            } else {
                dir
            }
        })
        .and_then(|dir| vsync_local::identity::toplevel(dir).ok());
    Ok(ExportReport {
        path,
        generated_passphrase: generated.then_some(passphrase),
        inside_working_tree,
    })
}

/// Records an export or import in the env's audit log (best effort: a
/// store that cannot even be opened is a warning too).
async fn record_share_event(
    ctx: &Context,
    config: &EnvConfig,
    repo: &str,
    env: &str,
    action: AuditAction,
    options: &AuditOptions,
    progress: &dyn Progress,
) {
    if options.skip || !config.audit.enabled {
        return;
    }
    let target = open_store(config).and_then(|store| Ok((store, layout(config, repo, env)?)));
    match target {
        Ok((store, layout)) => {
            let entry = audit::Entry {
                action,
                version_ts: None,
                fixed_meta: &[],
            };
            audit::record(
                ctx,
                store.as_ref(),
                &layout,
                config,
                options,
                entry,
                progress,
            )
            .await;
        }
        Err(err) => progress.warn(&format!("failed to record audit entry: {err}")),
    }
}

pub(crate) fn json_string(text: &str) -> Zeroizing<String> {
    Zeroizing::new(serde_json::Value::from(text).to_string())
}

/// A passphrase in upstream's shape: three groups of four characters from
/// a 54-character alphabet (about 69 bits), drawn without modulo bias.
pub fn generate_passphrase() -> Zeroizing<String> {
    let mut passphrase = Zeroizing::new(String::with_capacity(14));
    let mut byte = [0u8; 1];
    let limit = 256 - 256 % ALPHABET.len();
    for group in 0..3 {
        if group > 0 {
            passphrase.push('-');
        }
        let mut drawn = 0;
        while drawn < 4 {
            getrandom::fill(&mut byte).expect("the OS random source is available");
            if usize::from(byte[0]) < limit {
                passphrase.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
                drawn += 1;
            }
        }
    }
    passphrase
}

/// The passphrase a `.share` or `.keytree` is sealed with: the one given
/// (checked), or a generated one; the flag says which, since only a
/// generated passphrase is ever shown.
pub(crate) fn chosen_passphrase(
    given: Option<Zeroizing<String>>,
) -> Result<(Zeroizing<String>, bool), OpsError> {
    Ok(match given {
        Some(given) => (checked_passphrase(given)?, false),
        None => (generate_passphrase(), true),
    })
}

fn checked_passphrase(given: Zeroizing<String>) -> Result<Zeroizing<String>, OpsError> {
    let trimmed = Zeroizing::new(given.trim().to_owned());
    if trimmed.chars().count() < MIN_PASSPHRASE_LEN {
        return Err(OpsError::Usage(format!(
            "the passphrase is shorter than {MIN_PASSPHRASE_LEN} characters; choose a longer one or omit it to generate one"
        )));
    }
    Ok(trimmed)
}

#[derive(Deserialize)]
struct SharePayload {
    version: u64,
    repo: String,
    env: String,
    config: serde_json::Value,
    key: Zeroizing<String>,
}

/// How `import` treats what is already on this machine and what the share
/// carries besides the key.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShareImportOptions {
    /// Replace a different key or config already saved for the env.
    pub force: bool,
    /// Keep the share's saved sync routing (`sync.*`: where `vsync sync`
    /// sends secrets and credentials) and exec policy (`exec`: which
    /// variables `vsync exec --mode custom` passes); dropped otherwise.
    pub accept_routing: bool,
}

/// What `import` installed.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Imported, unchanged (this machine already held exactly this) or
    /// replaced (`force`).
    pub outcome: ImportOutcome,
    /// The share's sync routing and exec policy, each named and as JSON
    /// (no secrets: platform names, addresses, repositories, variable
    /// names), when it carried any.
    pub routing: Option<String>,
    /// Whether that routing was kept.
    pub routing_kept: bool,
    /// The repo the config was saved under.
    pub repo: String,
    /// The env it was saved under (the one asked for).
    pub env: String,
    /// The env named inside the share, when it differs.
    pub share_env: Option<String>,
    /// The config file written.
    pub config_path: PathBuf,
    /// The keystore holding the key.
    pub keystore: String,
    /// True when `.vsync` was written now.
    pub pin_written: bool,
}

/// Opens a `.share` and installs its config and key for `env` (§5.6). The
/// repo is `--repo`, else the `.vsync` pin, else the share's own. The
/// `import` audit row follows the share's own `audit.enabled`.
pub async fn import_share(
    ctx: &Context,
    env: &str,
    file: &Path,
    passphrase: &str,
    options: ShareImportOptions,
    audit_options: &AuditOptions,
    progress: &dyn Progress,
) -> Result<ImportReport, OpsError> {
    let bytes = std::fs::read(file).map_err(|source| OpsError::Io {
        path: file.to_owned(),
        source,
    })?;
    let json = frame::open_share(passphrase.trim(), &bytes).map_err(|err| match err {
        vsync_crypto::Error::WrongFileKind { .. } => OpsError::Share(format!(
            "{} is a .keytree (a whole machine's keys), not a .share; import it with `vsync keystore import {}`",
            file.display(),
            file.display()
        )),
        other => OpsError::Share(format!(
            "{}: {other}; check the passphrase (sent separately from the file) and that the file arrived intact",
            file.display()
        )),
    })?;
    let invalid = |problem: &str| {
        OpsError::Share(format!(
            "{} is not a valid share: {problem}; ask for a new export",
            file.display()
        ))
    };
    let payload: SharePayload = serde_json::from_slice(&json)
        .map_err(|_| invalid("its payload is not the expected JSON"))?;
    if payload.version != EXPORT_VERSION {
        return Err(invalid(&format!(
            "payload version {} (this vsync reads version {EXPORT_VERSION})",
            payload.version
        )));
    }
    if payload.repo.is_empty() || payload.env.is_empty() || payload.key.len() < MIN_KEY_LEN {
        return Err(invalid("repo, env or key is missing"));
    }
    let config_bytes = Zeroizing::new(payload.config.to_string().into_bytes());
    let mut config = EnvConfig::from_json(&config_bytes, file)?;
    // Routing decides where `vsync sync` sends this machine's own platform
    // tokens, and an exec policy which of its variables a command gets:
    // from a file that arrived from elsewhere they are shown, and kept only
    // when the user says so.
    let carried: Vec<String> = [
        config.sync.as_ref().map(|sync| {
            format!(
                "sync routing {}",
                serde_json::to_string(sync).expect("routing serialises")
            )
        }),
        config.exec.as_ref().map(|exec| {
            format!(
                "exec policy {}",
                serde_json::to_string(exec).expect("a policy serialises")
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let routing = (!carried.is_empty()).then(|| carried.join(" and "));
    if !options.accept_routing {
        config.sync = None;
        config.exec = None;
    }

    let toplevel = vsync_local::identity::toplevel(&ctx.cwd)?;
    let pinned = pin::read(&toplevel)?;
    let repo = match (&ctx.repo_flag, &pinned) {
        (Some(flag), _) => vsync_local::identity::resolve(Some(flag), &toplevel)?.name,
        (None, Some(pinned)) if *pinned != payload.repo => {
            return Err(OpsError::Share(format!(
                "the share is for repo {:?} but .vsync pins {pinned:?}; pass --repo={pinned} to import it under the pinned name, or fix .vsync",
                payload.repo
            )));
        }
        (None, Some(pinned)) => pinned.clone(),
        (None, None) => payload.repo.clone(),
    };
    let pair = Pair {
        repo: repo.clone(),
        env: env.to_owned(),
        config,
        key: payload.key,
    };
    let outcome = match import_pair(ctx, &pair, options.force, !options.accept_routing)? {
        ImportOutcome::Skipped(why) => {
            return Err(OpsError::WouldReplace(format!("{repo}/{env}: {why}")));
        }
        outcome => outcome,
    };
    let config = pair.config;
    let config_path = ctx.base.env_config_path(&repo, env)?;
    let pin_written = pin::write(&toplevel, &repo)? == pin::WriteOutcome::Created;
    record_share_event(
        ctx,
        &config,
        &repo,
        env,
        AuditAction::Import,
        audit_options,
        progress,
    )
    .await;
    Ok(ImportReport {
        outcome,
        routing_kept: routing.is_some() && options.accept_routing,
        routing,
        share_env: (payload.env != env).then(|| payload.env.clone()),
        repo,
        env: env.to_owned(),
        config_path,
        keystore: ctx.keystore.describe(),
        pin_written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_have_upstreams_shape() {
        let a = generate_passphrase();
        let b = generate_passphrase();
        assert_ne!(*a, *b);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), 3);
        for group in groups {
            assert_eq!(group.len(), 4);
            assert!(group.bytes().all(|c| ALPHABET.contains(&c)), "{group}");
        }
    }

    #[test]
    fn short_passphrases_are_refused() {
        let err = checked_passphrase(Zeroizing::new(" short ".into())).unwrap_err();
        assert!(err.to_string().contains("shorter than 8"), "{err}");
        assert_eq!(
            *checked_passphrase(Zeroizing::new(" long enough \n".into())).unwrap(),
            "long enough"
        );
    }
}
