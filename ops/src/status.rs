//! `status` (§5.4): which repo this working tree is, every env this machine
//! holds for it, whether each env's config and key are usable, **which
//! keystore** the key is in, and (with `--check-remote`) how the local vault
//! stands against the bucket: in sync, behind, ahead or diverged.
//!
//! Offline unless `check_remote` is set. A broken env is reported, never an
//! error: status exists to diagnose exactly those.

use std::path::PathBuf;

use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault;
use vsync_local::identity::{self, RepoSource};
use vsync_local::keystore::Keystore;
use vsync_local::ledger::{self, DirtyStatus, Ledger, SyncOp};
use vsync_local::{EnvConfig, profile};

use crate::keystore::config_files;
use crate::{Context, OpsError, layout, open_store};

/// What `status` should do.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusOptions {
    /// Read each env's pointer and compare it with the ledger.
    pub check_remote: bool,
}

/// The state of one env on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvCode {
    /// Config and key present and readable.
    Ok,
    /// The config file is unreadable or invalid.
    OrphanNoConfig,
    /// The config is fine but its key is missing.
    OrphanNoKey,
    /// The keystore could not be asked (keychain locked, unreadable file).
    KeystoreError,
    /// The config names a profile (`initProfile`) that no longer exists;
    /// the env still works, its config holds a copy of the settings.
    DanglingProfile,
}

impl EnvCode {
    /// Upstream's code string (`keystore-error` is ours).
    pub fn as_str(self) -> &'static str {
        match self {
            EnvCode::Ok => "ok",
            EnvCode::OrphanNoConfig => "orphan-no-config",
            EnvCode::OrphanNoKey => "orphan-no-key",
            EnvCode::KeystoreError => "keystore-error",
            EnvCode::DanglingProfile => "dangling-profile",
        }
    }
}

/// How the local vault folder stands against the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteState {
    /// The remote is the version last synced and the folder is unchanged.
    InSync,
    /// The remote moved on; the folder is unchanged: `pull`.
    Behind,
    /// The folder changed since the last sync, the remote did not: `push`.
    Ahead,
    /// Both changed: pull with `--backup`, merge, push.
    Diverged,
    /// The remote points at a version older than the last one synced here
    /// (a rollback, or a hand edit of the bucket).
    RemoteOlder,
    /// This machine never synced the env (no ledger).
    Untracked,
    /// Nothing is published under the env's prefix yet.
    NotPublished,
    /// The check itself failed (message says why).
    Error,
}

impl RemoteState {
    /// The state's name in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteState::InSync => "in-sync",
            RemoteState::Behind => "behind",
            RemoteState::Ahead => "ahead",
            RemoteState::Diverged => "diverged",
            RemoteState::RemoteOlder => "remote-older",
            RemoteState::Untracked => "untracked",
            RemoteState::NotPublished => "not-published",
            RemoteState::Error => "error",
        }
    }
}

/// The result of `--check-remote` for one env.
#[derive(Debug, Clone)]
pub struct RemoteStatus {
    /// The verdict.
    pub state: RemoteState,
    /// The version the bucket points at.
    pub remote_ts: Option<Timestamp>,
    /// `latest.meta`'s generation.
    pub generation: Option<u64>,
    /// Local files changed since the last sync.
    pub local_changes: usize,
    /// One line for humans.
    pub message: String,
}

/// The last sync this machine recorded for an env (the ledger).
#[derive(Debug, Clone)]
pub struct LastSync {
    /// The version.
    pub ts: Timestamp,
    /// `push` or `pull`.
    pub op: &'static str,
    /// When (ISO-8601).
    pub at: String,
}

/// One env of the repo.
#[derive(Debug, Clone)]
pub struct EnvStatus {
    /// The env.
    pub env: String,
    /// `initProfile`, if any.
    pub profile: Option<String>,
    /// Whether that profile still exists.
    pub profile_present: bool,
    /// The bucket prefix the env uses.
    pub prefix: Option<String>,
    /// Where the env's bundles live.
    pub store: Option<String>,
    /// The keystore holding (or searched for) the key: `Keystore::describe`.
    pub keystore: String,
    /// Its kind, one word: `Keystore::kind`.
    pub keystore_kind: &'static str,
    /// The ledger's last sync.
    pub last_sync: Option<LastSync>,
    /// The code.
    pub code: EnvCode,
    /// What the code means for this env, with the fix.
    pub message: String,
    /// `--check-remote`'s verdict.
    pub remote: Option<RemoteStatus>,
}

impl EnvStatus {
    /// True when nothing needs fixing (the remote check may still say
    /// behind or ahead, which are not faults).
    pub fn ok(&self) -> bool {
        self.code == EnvCode::Ok
            && self
                .remote
                .as_ref()
                .is_none_or(|remote| remote.state != RemoteState::Error)
    }
}

/// A profile, for the list under the envs.
#[derive(Debug, Clone)]
pub struct ProfileSummary {
    /// Its name.
    pub name: String,
    /// Its endpoint.
    pub endpoint: String,
    /// Its bucket.
    pub bucket: String,
}

/// What `status` found.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The repo name.
    pub repo: String,
    /// `flag`, `file` or `auto`.
    pub source: &'static str,
    /// e.g. `file (/src/app/.vsync)`.
    pub source_detail: String,
    /// The working tree's toplevel.
    pub toplevel: PathBuf,
    /// The working directory.
    pub cwd: PathBuf,
    /// `remote.origin.url`.
    pub origin_url: Option<String>,
    /// The main worktree's toplevel when this is a linked worktree (the
    /// vault folder lives there).
    pub worktree: Option<PathBuf>,
    /// The keystore in use.
    pub keystore: String,
    /// Why it is the one in use (`Choice::describe`).
    pub keystore_choice: String,
    /// Every env of the repo on this machine, sorted.
    pub envs: Vec<EnvStatus>,
    /// Every profile.
    pub profiles: Vec<ProfileSummary>,
    /// Things worth knowing that are not per env.
    pub notices: Vec<String>,
    /// Whether keys can be listed (the file keystore can, the OS keychain
    /// cannot), so keys without a config can be found.
    pub keychain_enumeration_supported: bool,
}

impl StatusReport {
    /// True when every env is ok.
    pub fn all_ok(&self) -> bool {
        self.envs.iter().all(EnvStatus::ok)
    }
}

/// Reports on the working tree's repo and its envs.
pub async fn status(ctx: &Context, options: StatusOptions) -> Result<StatusReport, OpsError> {
    let repo = ctx.repo()?;
    let name = repo.name().to_owned();
    let origin_url = identity::origin_url(&repo.toplevel)?;
    let (source, source_detail) = match &repo.identity.source {
        RepoSource::Flag => ("flag", format!("flag (--repo={name})")),
        RepoSource::Pin(path) => ("file", format!("file ({})", path.display())),
        RepoSource::Origin(url) => ("auto", format!("auto (parsed from origin: {url})")),
    };
    let profiles = profile::list(&ctx.base)?;
    let mut envs = Vec::new();
    for file in config_files(&ctx.base)?
        .into_iter()
        .filter(|file| file.repo == name)
    {
        let mut env = env_status(ctx, &name, &file.env, &file.path, &profiles);
        if options.check_remote && env.code != EnvCode::OrphanNoConfig {
            env.remote = Some(check_remote(ctx, &repo, &file.env).await);
        }
        envs.push(env);
    }

    let mut notices = Vec::new();
    let enumerable = matches!(ctx.keystore, Keystore::File(_));
    if enumerable {
        for orphan in keys_without_config(ctx, &name, &envs) {
            notices.push(format!(
                "a key for {name}/{orphan} is in the keystore but there is no config for it; import the env's .share to pair it, or delete the key file"
            ));
        }
    } else {
        notices.push(
            "the OS keychain cannot be listed, so keys without a config are not shown".into(),
        );
    }
    if let Some(from_origin) = origin_url.as_deref().and_then(identity::name_from_origin)
        && from_origin != name
    {
        notices.push(format!(
            "the git origin would name this repo {from_origin:?}, but {source_detail} names it {name:?}; configs and keys are looked up under {name:?}"
        ));
    }
    if envs.is_empty() {
        notices.push(format!(
            "no env is set up for {name} on this machine; `vsync init <env>` or `vsync import <env> <file.share>`"
        ));
    }
    Ok(StatusReport {
        worktree: (repo.vault_root != repo.toplevel).then(|| repo.vault_root.clone()),
        repo: name,
        source,
        source_detail,
        toplevel: repo.toplevel,
        cwd: ctx.cwd.clone(),
        origin_url,
        keystore: ctx.keystore.describe(),
        keystore_choice: ctx.keystore_choice.describe(),
        envs,
        profiles: profiles
            .into_iter()
            .map(|(name, profile)| ProfileSummary {
                name,
                endpoint: profile.endpoint.clone(),
                bucket: profile.bucket.clone(),
            })
            .collect(),
        notices,
        keychain_enumeration_supported: enumerable,
    })
}

fn env_status(
    ctx: &Context,
    repo: &str,
    env: &str,
    config_path: &std::path::Path,
    profiles: &[(String, profile::Profile)],
) -> EnvStatus {
    let mut status = EnvStatus {
        env: env.to_owned(),
        profile: None,
        profile_present: false,
        prefix: None,
        store: None,
        keystore: ctx.keystore.describe(),
        keystore_kind: ctx.keystore.kind(),
        last_sync: None,
        code: EnvCode::Ok,
        message: "ready".to_owned(),
        remote: None,
    };
    if let Ok(path) = ctx.base.ledger_path(repo, env)
        && let Ok(Some(ledger)) = Ledger::load(&path)
    {
        status.last_sync = Some(LastSync {
            op: match ledger.last_sync_op {
                SyncOp::Pull => "pull",
                SyncOp::Push => "push",
            },
            ts: ledger.last_sync_ts,
            at: ledger.last_sync_at,
        });
    }
    let config = match EnvConfig::load(config_path) {
        Ok(config) => config,
        Err(err) => {
            status.code = EnvCode::OrphanNoConfig;
            status.message = err.to_string();
            return status;
        }
    };
    status.profile = config.init_profile.clone();
    status.profile_present = config
        .init_profile
        .as_ref()
        .is_some_and(|wanted| profiles.iter().any(|(name, _)| name == wanted));
    status.prefix = layout(&config, repo, env)
        .ok()
        .map(|layout| layout.prefix().to_owned());
    status.store = open_store(&config).ok().map(|store| store.describe());
    match ctx.keystore.get(repo, env) {
        Ok(Some(_)) => {}
        Ok(None) => {
            status.code = EnvCode::OrphanNoKey;
            status.message = OpsError::NoKey {
                repo: repo.to_owned(),
                env: env.to_owned(),
                keystore: ctx.keystore.describe(),
            }
            .to_string();
            // The key may be in the other keystore of this machine.
            let file = Keystore::file(&ctx.base);
            if ctx.keystore != file && matches!(file.get(repo, env), Ok(Some(_))) {
                status.message = format!(
                    "the key is in the {}, but the {} is in use; set VSYNC_KEYSTORE=file",
                    file.describe(),
                    ctx.keystore.describe()
                );
                status.keystore = file.describe();
            }
            return status;
        }
        Err(err) => {
            status.code = EnvCode::KeystoreError;
            status.message = err.to_string();
            return status;
        }
    }
    if let Some(wanted) = &status.profile
        && !status.profile_present
    {
        status.code = EnvCode::DanglingProfile;
        status.message = format!(
            "profile {wanted:?} was removed; the env keeps working from its own copy of the settings"
        );
    }
    status
}

/// Compares the ledger and the vault folder with the bucket's pointer.
async fn check_remote(ctx: &Context, repo: &crate::Repo, env: &str) -> RemoteStatus {
    match try_check_remote(ctx, repo, env).await {
        Ok(status) => status,
        Err(err) => RemoteStatus {
            state: RemoteState::Error,
            remote_ts: None,
            generation: None,
            local_changes: 0,
            message: err.to_string(),
        },
    }
}

async fn try_check_remote(
    ctx: &Context,
    repo: &crate::Repo,
    env: &str,
) -> Result<RemoteStatus, OpsError> {
    let config = EnvConfig::load_for(&ctx.base, repo.name(), env)?;
    let store = open_store(&config)?;
    let layout = layout(&config, repo.name(), env)?;
    let head = vault::remote_head(store.as_ref(), &layout).await?;
    let ledger_path = ctx.base.ledger_path(repo.name(), env)?;
    let vault_folder = PathBuf::from(config.vault_folder(env));
    let ledger = Ledger::load(&ledger_path)?;
    let dirty = ledger::check(&repo.vault_root, &vault_folder, &ledger_path)?;
    let local_changes = match &dirty {
        DirtyStatus::Tracked(report) => {
            report.modified.len() + report.added.len() + report.deleted.len()
        }
        DirtyStatus::Untracked => 0,
    };
    let Some(head) = head else {
        return Ok(RemoteStatus {
            state: RemoteState::NotPublished,
            remote_ts: None,
            generation: None,
            local_changes,
            message: format!(
                "nothing published under {} yet; `vsync push {env}`",
                layout.prefix()
            ),
        });
    };
    let (state, message) = match ledger {
        None => (
            RemoteState::Untracked,
            format!("this machine never synced {env}; `vsync pull {env}`"),
        ),
        Some(ledger) => {
            let changed = local_changes > 0;
            let seen = &ledger.last_sync_ts;
            if head.ts < *seen {
                (
                    RemoteState::RemoteOlder,
                    format!(
                        "the remote points at {}, older than {seen} synced here — possible rollback",
                        head.ts
                    ),
                )
            } else if head.ts == *seen && !changed {
                (RemoteState::InSync, format!("in sync at {seen}"))
            } else if head.ts == *seen {
                (
                    RemoteState::Ahead,
                    format!("{local_changes} local change(s) not pushed; `vsync push {env}`"),
                )
            } else if !changed {
                (
                    RemoteState::Behind,
                    format!(
                        "the remote moved on to {} since {seen}; `vsync pull {env}`",
                        head.ts
                    ),
                )
            } else {
                (
                    RemoteState::Diverged,
                    format!(
                        "the remote moved on to {} and {local_changes} local change(s) are not pushed; `vsync pull {env} --backup`, merge, push",
                        head.ts
                    ),
                )
            }
        }
    };
    Ok(RemoteStatus {
        state,
        generation: Some(head.generation),
        remote_ts: Some(head.ts),
        local_changes,
        message,
    })
}

/// Keys in the file keystore for this repo whose env has no config.
fn keys_without_config(ctx: &Context, repo: &str, envs: &[EnvStatus]) -> Vec<String> {
    let Keystore::File(root) = &ctx.keystore else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(root.join(repo)) else {
        return Vec::new();
    };
    let mut orphans: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let env = name.strip_suffix(".key")?.to_owned();
            (!envs.iter().any(|known| known.env == env.to_lowercase())).then_some(env)
        })
        .collect();
    orphans.sort();
    orphans
}
