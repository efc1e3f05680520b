//! `init`, `push`, `pull` and `versions`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use vsync_crypto::kdf::{DEFAULT_ITERATIONS, Key, KeyCache};
use vsync_engine::bundle;
use vsync_engine::store::Store;
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::{self, Layout, RemoteHead};
use vsync_engine::vault_fs::{self, EntryKind};
use vsync_local::config::generate_salt;
use vsync_local::keystore::generate_key;
use vsync_local::ledger::{self, DirtyStatus, Ledger, SyncOp};
use vsync_local::pin::{self, WriteOutcome};
use vsync_local::{EnvConfig, backup, profile};
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditOptions};
use crate::{Context, OpsError, Progress, Repo, layout, open_store};

/// What `init` should set up.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The profile whose bucket holds the vault; `None` with no profiles
    /// (or with `local`) means the local directory store.
    pub profile: Option<String>,
    /// Use the local directory store even when profiles exist.
    pub local: bool,
    /// The vault folder relative to the repo root (default
    /// `infra/vault/<env>`).
    pub vault_folder: Option<String>,
    /// Whether push and pull append to the audit log.
    pub audit: bool,
    /// Replace an existing config (and key).
    pub force: bool,
    /// Force this S3 provider preset (`s3.provider`), over the profile's.
    pub provider: Option<crate::Provider>,
}

/// What `init` did.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The repo.
    pub repo: String,
    /// The config file written.
    pub config_path: PathBuf,
    /// Where the vault's bundles will live.
    pub store: String,
    /// True when that is the local directory store.
    pub local_store: bool,
    /// The keystore holding the new key.
    pub keystore: String,
    /// The vault folder, created if missing.
    pub vault_dir: PathBuf,
    /// True when `.vsync` was written now (and should be committed).
    pub pin_written: bool,
}

/// Creates the env's config with a fresh salt and key, the vault folder and
/// the `.vsync` pin.
pub fn init(ctx: &Context, env: &str, options: &InitOptions) -> Result<InitReport, OpsError> {
    check_new_env_name(env)?;
    let repo = ctx.repo()?;
    let name = repo.name();
    let config_path = ctx.base.env_config_path(name, env)?;
    if config_path.exists() && !options.force {
        return Err(OpsError::AlreadyInitialised {
            repo: name.to_owned(),
            env: env.to_owned(),
            path: config_path,
        });
    }
    let mut config = match (&options.profile, options.local) {
        (Some(_), true) => {
            return Err(OpsError::Usage(
                "--profile and --local contradict each other; pass one".into(),
            ));
        }
        (Some(profile_name), false) => {
            let profile = profile::get(&ctx.base, profile_name)?;
            let mut config = EnvConfig::new(profile.s3_config(), generate_salt());
            config.prefix = Some(
                profile
                    .env_prefix(env)
                    .unwrap_or_else(|| default_prefix(name, env)),
            );
            config.init_profile = Some(profile_name.clone());
            config
        }
        (None, local) => {
            let profiles = profile::list(&ctx.base)?;
            if !local && !profiles.is_empty() {
                let names: Vec<_> = profiles.iter().map(|(name, _)| name.as_str()).collect();
                return Err(OpsError::ProfileRequired {
                    profiles: names.join(", "),
                });
            }
            let mut config = EnvConfig::local_store(&ctx.local_store_dir, generate_salt())?;
            config.prefix = Some(default_prefix(name, env));
            config
        }
    };
    if let Some(provider) = options.provider {
        if config.local_store_dir().is_some() {
            return Err(OpsError::Usage(
                "--provider applies to a bucket; pass --profile=<name> with it".into(),
            ));
        }
        config.s3.set_provider(Some(provider.name()));
    }
    if let Some(folder) = &options.vault_folder {
        config.set_vault_folder(env, folder)?;
    }
    config.audit.enabled = options.audit;
    let store = open_store(&config)?;

    let key = generate_key();
    ctx.keystore.set(name, env, &key)?;
    let config_path = config.save_for(&ctx.base, name, env)?;
    let vault_folder = PathBuf::from(config.vault_folder(env));
    let vault_dir = repo.vault_root.join(&vault_folder);
    vault_fs::create_dirs(&repo.vault_root, &vault_folder)?;
    ignore_in_git(&vault_dir)?;
    let pin_written = pin::write(&repo.toplevel, name)? == WriteOutcome::Created;
    Ok(InitReport {
        repo: name.to_owned(),
        config_path,
        store: store.describe(),
        local_store: config.local_store_dir().is_some(),
        keystore: ctx.keystore.describe(),
        vault_dir,
        pin_written,
    })
}

/// What `init` and `pull` write to `<vault folder>/.gitignore`.
const VAULT_GITIGNORE: &str =
    "# Written by `vsync init`: this folder holds decrypted secrets. Never commit it.\n*\n";

/// Keeps the plaintext vault folder out of git: a `.gitignore` ignoring
/// everything in it (itself included), unless the folder already has one.
fn ignore_in_git(vault_dir: &Path) -> Result<(), OpsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let path = vault_dir.join(".gitignore");
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut file) => file.write_all(VAULT_GITIGNORE.as_bytes()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
    .map_err(|source| OpsError::Io { path, source })
}

fn default_prefix(repo: &str, env: &str) -> String {
    format!("{repo}/{}/", env.to_lowercase())
}

/// Upstream's grammar for new env names: `^[a-z][a-z0-9_-]*$`.
pub(crate) fn check_new_env_name(env: &str) -> Result<(), OpsError> {
    let mut chars = env.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(OpsError::Usage(format!(
            "invalid env name {env:?}: use lowercase letters, digits, '_' and '-', starting with a letter (e.g. dev, prod, staging-eu)"
        )))
    }
}

/// An env ready to work on: its config, key and paths.
pub(crate) struct Env {
    pub(crate) repo: Repo,
    pub(crate) name: String,
    pub(crate) config: EnvConfig,
    pub(crate) key: Zeroizing<String>,
    pub(crate) vault_folder: PathBuf,
    pub(crate) vault_dir: PathBuf,
    pub(crate) ledger_path: PathBuf,
    /// The bundle keys derived for this command ([`Context::keys`]): each
    /// key is derived once however often it is needed.
    pub(crate) keys: Arc<KeyCache>,
}

impl Env {
    pub(crate) fn load(ctx: &Context, env: &str) -> Result<Self, OpsError> {
        let repo = ctx.repo()?;
        let config = EnvConfig::load_for(&ctx.base, repo.name(), env)?;
        let key = ctx
            .keystore
            .get(repo.name(), env)?
            .ok_or_else(|| OpsError::NoKey {
                repo: repo.name().to_owned(),
                env: env.to_owned(),
                keystore: ctx.keystore.describe(),
            })?;
        let vault_folder = PathBuf::from(config.vault_folder(env));
        let vault_dir = repo.vault_root.join(&vault_folder);
        let ledger_path = ctx.base.ledger_path(repo.name(), env)?;
        Ok(Self {
            repo,
            name: env.to_owned(),
            config,
            key,
            vault_folder,
            vault_dir,
            ledger_path,
            keys: Arc::clone(&ctx.keys),
        })
    }

    /// Takes this machine's lock on the env, waiting (and saying so) while
    /// another vsync holds it: two pulls interleaving in one folder would
    /// delete each other's freshly written files. Released when the
    /// returned file is dropped, or when the process dies.
    pub(crate) fn lock(
        &self,
        ctx: &Context,
        progress: &dyn Progress,
    ) -> Result<std::fs::File, OpsError> {
        use std::os::unix::fs::OpenOptionsExt;

        let path = ctx.base.lock_path(self.repo.name(), &self.name)?;
        let io = |source| OpsError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                progress.warn(&format!(
                    "another vsync is working on {}/{}; waiting for it to finish",
                    self.repo.name(),
                    self.name
                ));
                file.lock().map_err(io)?;
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
        }
        Ok(file)
    }

    /// Checks every component from the repo root to the vault folder
    /// without following any: `Ok(true)` when the folder exists.
    pub(crate) fn check_vault_path(&self) -> Result<bool, OpsError> {
        Ok(vault_fs::check_folder(
            &self.repo.vault_root,
            &self.vault_folder,
        )?)
    }

    /// Records a finished push or pull of version `ts`: this machine's
    /// ledger (what `status` compares against), then the shared audit log.
    #[allow(clippy::too_many_arguments)] // the parts of one finished transfer
    async fn record_transfer(
        &self,
        ctx: &Context,
        store: &dyn Store,
        layout: &Layout,
        op: SyncOp,
        ts: &Timestamp,
        audit: &AuditOptions,
        progress: &dyn Progress,
    ) -> Result<(), OpsError> {
        // The ledger's timestamp is this machine's anti-rollback high-water
        // mark, so it never goes down: after `pull --at=<old>` or
        // `--accept-rollback` a rolled-back pointer is still refused next time.
        let high_water = match Ledger::load(&self.ledger_path)? {
            Some(previous) if previous.last_sync_ts > *ts => previous.last_sync_ts,
            _ => ts.clone(),
        };
        Ledger::record(
            &self.repo.vault_root,
            &self.vault_folder,
            op,
            high_water,
            SystemTime::now(),
        )?
        .save(&self.ledger_path)?;
        let action = match op {
            SyncOp::Push => AuditAction::Push,
            SyncOp::Pull => AuditAction::Pull,
        };
        audit::record(
            ctx,
            store,
            layout,
            &self.config,
            audit,
            audit::Entry {
                action,
                version_ts: Some(ts),
                fixed_meta: &[],
            },
            progress,
        )
        .await;
        Ok(())
    }

    /// The bundle key: PBKDF2 of the keystore value with the config's salt,
    /// derived on the first call and remembered for the command.
    pub(crate) fn derive_key(&self) -> Key {
        self.derive_key_from(&self.key)
    }

    /// The bundle key derived on a blocking thread, for a command that has
    /// store round trips to make meanwhile (the derivation dominates it).
    pub(crate) fn start_derivation(&self) -> vault::Derivation {
        vault::Derivation::start(
            self.key.as_bytes(),
            self.config.encryption.salt.as_bytes(),
            DEFAULT_ITERATIONS,
        )
    }

    /// The bundle key for another keystore value (a rotation's old or new
    /// passphrase) with the config's salt.
    pub(crate) fn derive_key_from(&self, passphrase: &str) -> Key {
        self.keys.derive(
            passphrase.as_bytes(),
            self.config.encryption.salt.as_bytes(),
            DEFAULT_ITERATIONS,
        )
    }
}

/// What `push` should do.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Push even when the remote moved on since this machine last synced.
    pub force: bool,
    /// The audit flags.
    pub audit: AuditOptions,
}

/// What `push` published.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// `<repo>/<env>`.
    pub target: String,
    /// The new version.
    pub ts: Timestamp,
    /// The new generation.
    pub generation: u64,
    /// Files in the bundle.
    pub files: usize,
    /// Size of the zipped vault folder in bytes.
    pub bytes: usize,
}

/// Zips the vault folder, seals and encrypts it, and publishes it with
/// compare-and-swap.
pub async fn push(
    ctx: &Context,
    env: &str,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport, OpsError> {
    push_env(ctx, &Env::load(ctx, env)?, options, progress).await
}

/// [`push`] of an env already loaded (with the keys it already derived).
pub(crate) async fn push_env(
    ctx: &Context,
    env: &Env,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushReport, OpsError> {
    let _lock = env.lock(ctx, progress)?;
    // Judged without following: a symlinked `infra`, `infra/vault` or
    // vault folder would pack files from outside the repository.
    if !env.check_vault_path()? {
        return Err(OpsError::NoVaultFolder(env.vault_dir.clone()));
    }
    let store = open_store(&env.config)?;
    let layout = layout(&env.config, env.repo.name(), &env.name)?;
    let ledger = Ledger::load(&env.ledger_path)?;

    progress.step(1, 4, &format!("checking {}", store.describe()));
    let head = vault::remote_head(store.as_ref(), &layout).await?;
    if let Some(head) = &head
        && !options.force
    {
        vault::check_not_behind(&head.ts, ledger.as_ref().map(|l| &l.last_sync_ts))?;
    }

    progress.step(2, 4, &format!("zipping {}", env.vault_folder.display()));
    let payload = bundle::pack(&env.repo.vault_root, &env.vault_folder)?;
    let files = ledger::snapshot(&env.repo.vault_root, &env.vault_folder)?.len();

    progress.step(3, 4, "encrypting and uploading");
    let mut now = next_timestamp(head.as_ref()).await;
    if let Some(head) = &head
        && options.force
        && head.ts >= now
    {
        // A pointer far in the future (a wrong clock, or anyone with write
        // access to the bucket) would otherwise block every push forever.
        // Version names must keep growing for every reader's anti-rollback
        // check, so the forced version is named one second after it.
        let after = Timestamp::from_unix(head.ts.unix_seconds() + 1);
        if after.as_str().len() != head.ts.as_str().len() {
            return Err(OpsError::Usage(format!(
                "the remote's pointer names {}, the last second version names can hold; check the bucket's versions, then remove {} by hand and push again",
                head.ts,
                layout.latest_key()
            )));
        }
        progress.warn(&format!(
            "the remote's version {} is ahead of this machine's clock ({now}); --force publishes this version as {after}, after it",
            head.ts
        ));
        now = after;
    }
    let key = env.derive_key();
    let published =
        vault::publish(store.as_ref(), &layout, &key, &payload, head.as_ref(), now).await?;

    if let Some(problem) = &published.meta_not_written {
        progress.warn(&format!(
            "version {} is published but latest.meta was not updated ({problem}); readers open it, only their change detection lags until the next push",
            published.ts
        ));
    }
    progress.step(4, 4, "recording the sync ledger");
    env.record_transfer(
        ctx,
        store.as_ref(),
        &layout,
        SyncOp::Push,
        &published.ts,
        &options.audit,
        progress,
    )
    .await?;
    Ok(PushReport {
        target: format!("{}/{}", env.repo.name(), env.name),
        ts: published.ts,
        generation: published.generation,
        files,
        bytes: payload.len(),
    })
}

/// The timestamp for a new version. Versions have one-second resolution, so
/// a push within the same second as the current version waits for the next
/// second instead of failing; a remote further ahead is a clock problem
/// that `publish` reports.
pub(crate) async fn next_timestamp(head: Option<&RemoteHead>) -> Timestamp {
    const MAX_WAIT: Duration = Duration::from_secs(2);
    let started = std::time::Instant::now();
    loop {
        let now = Timestamp::now();
        match head {
            Some(head) if head.ts >= now && started.elapsed() < MAX_WAIT => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return now,
        }
    }
}

/// What `pull` should do.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Fetch this version instead of the current one (the pointer is not
    /// moved).
    pub at: Option<Timestamp>,
    /// Copy the vault folder to a plain backup, then replace it.
    pub backup: bool,
    /// Replace the vault folder, discarding local changes.
    pub force: bool,
    /// Accept a remote older than the last version this machine synced.
    pub accept_rollback: bool,
    /// The audit flags.
    pub audit: AuditOptions,
}

/// What `pull` wrote.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// `<repo>/<env>`.
    pub target: String,
    /// The version written to the vault folder.
    pub ts: Timestamp,
    /// The current remote version (differs from `ts` with `--at`).
    pub remote_ts: Timestamp,
    /// Files written.
    pub files: Vec<String>,
    /// Files removed because the bundle no longer has them (they are in the
    /// encrypted backup).
    pub removed: Vec<String>,
    /// The encrypted rolling backup made first, if the folder existed.
    pub encrypted_backup: Option<PathBuf>,
    /// The plain `--backup` copy, if asked for.
    pub plain_backup: Option<PathBuf>,
}

/// Fetches, verifies and unpacks a version into the vault folder, after
/// backing up what is there.
pub async fn pull(
    ctx: &Context,
    env: &str,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<PullReport, OpsError> {
    if options.backup && options.force {
        return Err(OpsError::Usage(
            "--backup and --force contradict each other: --backup keeps a copy of local changes, --force discards them; pass one".into(),
        ));
    }
    let env = Env::load(ctx, env)?;
    let _lock = env.lock(ctx, progress)?;
    // Before anything is read or written: a symlink on the way to the vault
    // folder would make the pull write through it.
    env.check_vault_path()?;
    let ledger = Ledger::load(&env.ledger_path)?;
    let replace = options.backup || options.force;
    // Whether the folder ends up holding exactly the bundle: always, except
    // for a folder never synced here, whose own files are kept beside it.
    let mirror = match ledger::check(&env.repo.vault_root, &env.vault_folder, &env.ledger_path)? {
        DirtyStatus::Tracked(report) if !report.is_clean() && !replace => {
            return Err(OpsError::LocalChanges {
                env: env.name.clone(),
                vault: env.vault_dir.clone(),
                report,
            });
        }
        DirtyStatus::Untracked if has_files(&env.vault_dir) && !replace => {
            progress.warn(&format!(
                "{} was never synced on this machine; its files are kept in the encrypted backup and same-named files are overwritten",
                env.vault_dir.display()
            ));
            false
        }
        _ => true,
    };
    let store = open_store(&env.config)?;
    let layout = layout(&env.config, env.repo.name(), &env.name)?;

    progress.step(1, 5, "backing up the local vault folder");
    // The backup is sealed with the bundle key itself: derived here once,
    // it also opens the bundle in step 3.
    let key = env.derive_key();
    let encrypted_backup = backup::create_encrypted(
        &ctx.base.backups_dir(ctx.backup_dir_override.as_deref()),
        &env.repo.vault_root,
        &env.vault_folder,
        &env.name,
        &key,
        SystemTime::now(),
    )?;

    progress.step(
        2,
        5,
        &format!("reading the pointer from {}", store.describe()),
    );
    let Some(head) = vault::remote_head(store.as_ref(), &layout).await? else {
        return Err(vault::VaultError::NoVault {
            store: store.describe(),
            prefix: layout.prefix().to_owned(),
        }
        .into());
    };
    if options.at.is_none() && !options.accept_rollback {
        vault::check_not_backwards(&head.ts, ledger.as_ref().map(|l| &l.last_sync_ts))?;
    }
    if let Some(at) = &options.at
        && at < &head.ts
    {
        progress.warn(&format!(
            "pulling {at}, older than the current {}; pushing afterwards would publish this old content as the latest",
            head.ts
        ));
    }

    progress.step(3, 5, "downloading and decrypting");
    let fetched = vault::fetch(store.as_ref(), &layout, &key, &head, options.at.as_ref()).await?;

    progress.step(4, 5, &format!("writing {}", env.vault_folder.display()));
    let plain_backup = if options.backup {
        backup::copy_plain(
            &ctx.base,
            env.repo.name(),
            &env.name,
            &env.repo.vault_root,
            &env.vault_folder,
            SystemTime::now(),
        )?
    } else {
        None
    };
    let files = bundle::unpack(fetched.payload(), &env.repo.vault_root, &env.vault_folder)?;
    // Files the bundle no longer has were deleted by whoever pushed it: left
    // here, the next push would publish them again. They are in the
    // encrypted backup made in step 1. Removed only after the unpack
    // succeeded, so a refused bundle leaves the folder as it was.
    let removed = if mirror {
        remove_files_not_in(&env, &files)?
    } else {
        Vec::new()
    };

    progress.step(5, 5, "recording the sync ledger");
    vault_fs::create_dirs(&env.repo.vault_root, &env.vault_folder)?;
    // A bundle pushed without one (by upstream vsync, say) must not leave
    // the decrypted folder committable.
    ignore_in_git(&env.vault_dir)?;
    env.record_transfer(
        ctx,
        store.as_ref(),
        &layout,
        SyncOp::Pull,
        &fetched.ts,
        &options.audit,
        progress,
    )
    .await?;
    Ok(PullReport {
        target: format!("{}/{}", env.repo.name(), env.name),
        ts: fetched.ts.clone(),
        remote_ts: head.ts,
        files,
        removed,
        encrypted_backup,
        plain_backup,
    })
}

/// Deletes every file (or symlink, never followed) under `vault_dir` whose
/// path relative to it is not in `keep`, then the directories left empty;
/// returns the deleted files' relative paths, sorted.
fn remove_files_not_in(env: &Env, keep: &[String]) -> Result<Vec<String>, OpsError> {
    let Some(entries) = vault_fs::walk(&env.repo.vault_root, &env.vault_folder)? else {
        return Ok(Vec::new());
    };
    let keep: std::collections::HashSet<&str> = keep.iter().map(String::as_str).collect();
    let mut removed = Vec::new();
    for entry in entries.iter().filter(|entry| entry.kind == EntryKind::File) {
        let relative = entry.relative.to_string_lossy();
        if !keep.contains(relative.as_ref()) {
            let path = env.vault_dir.join(&entry.relative);
            std::fs::remove_file(&path).map_err(|source| OpsError::Io { path, source })?;
            removed.push(relative.into_owned());
        }
    }
    // Deepest first (a directory is listed before its contents); one that
    // still holds something stays.
    for entry in entries
        .iter()
        .rev()
        .filter(|entry| entry.kind == EntryKind::Dir)
    {
        let _ = std::fs::remove_dir(env.vault_dir.join(&entry.relative));
    }
    removed.sort();
    Ok(removed)
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// Its timestamp.
    pub ts: Timestamp,
    /// Ciphertext size in bytes.
    pub size: u64,
    /// True for the version the pointer names.
    pub current: bool,
}

/// What `versions` found.
#[derive(Debug, Clone)]
pub struct VersionsReport {
    /// `s3://bucket/prefix` or the local store path with the prefix.
    pub location: String,
    /// Newest first.
    pub versions: Vec<VersionEntry>,
    /// The pointer's target, if any.
    pub current: Option<Timestamp>,
    /// The generation from `latest.meta`.
    pub generation: u64,
}

/// Lists the published versions, newest first. Needs only the config, not
/// the key.
pub async fn versions(ctx: &Context, env: &str) -> Result<VersionsReport, OpsError> {
    let repo = ctx.repo()?;
    let config = EnvConfig::load_for(&ctx.base, repo.name(), env)?;
    let store = open_store(&config)?;
    let layout = layout(&config, repo.name(), env)?;
    let head = vault::remote_head(store.as_ref(), &layout).await?;
    let listed = store.list(layout.prefix()).await?;
    let mut versions: Vec<VersionEntry> = vault::versions(store.as_ref(), &layout)
        .await?
        .into_iter()
        .map(|ts| {
            let size = listed
                .iter()
                .find(|object| {
                    object.key == layout.bundle_key(&ts)
                        || object.key == layout.library_bundle_key(&ts)
                })
                .map_or(0, |object| object.size);
            let current = head.as_ref().is_some_and(|head| head.ts == ts);
            VersionEntry { ts, size, current }
        })
        .collect();
    versions.reverse();
    Ok(VersionsReport {
        location: format!("{} under {}", store.describe(), layout.prefix()),
        versions,
        current: head.as_ref().map(|head| head.ts.clone()),
        generation: head.map_or(0, |head| head.generation),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use vsync_crypto::kdf::derivations_on_this_thread;

    use crate::Quiet;

    /// An empty git checkout of repo `acme`, its machine state sandboxed in
    /// the same temporary directory.
    pub(crate) fn checkout() -> (tempfile::TempDir, Context) {
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("checkout");
        std::fs::create_dir_all(&checkout).unwrap();
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&checkout)
            .status()
            .unwrap();
        assert!(git.success());
        let ctx = Context::sandboxed(tmp.path(), checkout, "acme");
        (tmp, ctx)
    }

    /// A git checkout whose repo `acme` has env `dev` on the local store,
    /// with one `.env.dev` in its vault folder.
    pub(crate) fn machine() -> (tempfile::TempDir, Context) {
        let (tmp, ctx) = checkout();
        let report = init(
            &ctx,
            "dev",
            &InitOptions {
                local: true,
                ..InitOptions::default()
            },
        )
        .unwrap();
        std::fs::write(report.vault_dir.join(".env.dev"), "API_KEY=k-123\n").unwrap();
        (tmp, ctx)
    }

    /// What `operation` returns, and how many PBKDF2 runs it took (the
    /// test runtime runs it on this thread).
    pub(crate) async fn counted<T>(operation: impl Future<Output = T>) -> (T, u64) {
        let before = derivations_on_this_thread();
        let result = operation.await;
        (result, derivations_on_this_thread() - before)
    }

    #[tokio::test]
    async fn push_and_every_kind_of_pull_derive_the_key_once() {
        let (_tmp, ctx) = machine();
        let (pushed, runs) = counted(push(&ctx, "dev", &PushOptions::default(), &Quiet)).await;
        pushed.unwrap();
        assert_eq!(runs, 1, "push");

        let kinds = [
            PullOptions::default(),
            PullOptions {
                force: true,
                ..PullOptions::default()
            },
            PullOptions {
                backup: true,
                ..PullOptions::default()
            },
        ];
        for options in kinds {
            // Each command has a context of its own, as in the CLI: the
            // keys it derived are not another command's.
            let ctx = Context {
                keys: Arc::default(),
                ..ctx.clone()
            };
            let (report, runs) = counted(pull(&ctx, "dev", &options, &Quiet)).await;
            let report = report.unwrap();
            // The rolling backup and the bundle both needed the key.
            let backup = report.encrypted_backup.expect("the folder was backed up");
            assert!(report.files.contains(&".env.dev".to_owned()), "{options:?}");
            assert_eq!(runs, 1, "{options:?}");

            // Still upstream's backup: RQE1 under PBKDF2 of the keystore
            // value with the config's salt.
            let env = Env::load(&ctx, "dev").unwrap();
            let sealed = std::fs::read(&backup).unwrap();
            vsync_crypto::rqe1::decrypt(
                env.key.as_bytes(),
                env.config.encryption.salt.as_bytes(),
                DEFAULT_ITERATIONS,
                &sealed,
            )
            .unwrap();
        }
    }

    #[tokio::test]
    async fn an_env_derives_each_key_once() {
        let (_tmp, ctx) = machine();
        let env = Env::load(&ctx, "dev").unwrap();
        let (_, runs) = counted(async {
            env.derive_key();
            env.derive_key();
            env.derive_key_from(&env.key);
        })
        .await;
        assert_eq!(runs, 1);
        let (_, runs) = counted(async { env.derive_key_from("another passphrase") }).await;
        assert_eq!(runs, 1);
    }
}
