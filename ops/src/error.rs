//! Why an operation failed, and the exit code each failure maps to.

use std::path::PathBuf;

use vsync_backends::s3::S3ConfigError;
use vsync_crypto::ErrorClass;
use vsync_engine::bundle::BundleError;
use vsync_engine::import::ImportError;
use vsync_engine::sink::SinkError;
use vsync_engine::store::StoreError;
use vsync_engine::sync::SyncError;
use vsync_engine::vault::{InvalidPrefix, VaultError};
use vsync_engine::vault_fs::VaultPathError;
use vsync_local::backup::BackupError;
use vsync_local::config::ConfigError;
use vsync_local::identity::IdentityError;
use vsync_local::keystore::KeystoreError;
use vsync_local::ledger::{DirtyReport, LedgerError};
use vsync_local::paths::PathsError;
use vsync_local::pin::PinError;
use vsync_local::profile::ProfileError;
use vsync_platforms::PlatformError;
use zeroize::Zeroizing;

/// Why an operation failed. Messages name what to fix and never carry a
/// secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// Neither `HOME` nor the XDG variables say where local state lives.
    #[error("cannot find the home directory; set HOME or XDG_CONFIG_HOME / XDG_DATA_HOME")]
    NoHome,
    /// A path under the config base is invalid.
    #[error(transparent)]
    Paths(#[from] PathsError),
    /// The repo identity could not be resolved.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The env config is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The keystore failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The config exists but its key does not.
    #[error(
        "no key for {repo}/{env} in the {keystore}; import the env's .share (`vsync import {env} <file>`) or a .keytree — a new `vsync init` would mint a different key and strand the existing bundles"
    )]
    NoKey {
        /// The repo.
        repo: String,
        /// The env.
        env: String,
        /// Which keystore was searched.
        keystore: String,
    },
    /// `init` over an existing config.
    #[error(
        "{repo}/{env} is already initialised ({path}); pass --force to replace it (a new key makes existing bundles unreadable on this machine)"
    )]
    AlreadyInitialised {
        /// The repo.
        repo: String,
        /// The env.
        env: String,
        /// The existing config file.
        path: PathBuf,
    },
    /// `init` without a profile while profiles exist.
    #[error(
        "choose where the vault lives: --profile=<name> (one of: {profiles}) or --local for a local directory store"
    )]
    ProfileRequired {
        /// The existing profile names.
        profiles: String,
    },
    /// A profile operation failed.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The `.vsync` pin could not be read or written.
    #[error(transparent)]
    Pin(#[from] PinError),
    /// The ledger is unreadable, or a symlink sits on the way to or inside
    /// the vault folder.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A backup failed, so nothing was overwritten.
    #[error("{0}; nothing was overwritten")]
    Backup(#[from] BackupError),
    /// Zipping or unzipping the vault folder failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A symlink or a non-directory on the way from the repo root to the
    /// vault folder, or a vault folder outside the repository.
    #[error(transparent)]
    VaultPath(#[from] VaultPathError),
    /// The vault operation on the store failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The configured prefix is unusable.
    #[error(transparent)]
    Prefix(#[from] InvalidPrefix),
    /// The S3 settings are wrong.
    #[error(transparent)]
    S3Config(#[from] S3ConfigError),
    /// A store operation outside the vault protocol failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `push` found no vault folder.
    #[error(
        "no vault folder at {0}; put the env's files there (`.env.<env>` and any assets) or run `vsync pull`"
    )]
    NoVaultFolder(PathBuf),
    /// `pull` would overwrite local edits that were never pushed.
    #[error(
        "the vault folder {} has local changes that were never pushed ({}); push them first (`vsync push {env}`), or pull with --backup (keeps a copy) or --force (discards them)",
        vault.display(),
        summarize(report)
    )]
    LocalChanges {
        /// The env.
        env: String,
        /// The vault folder.
        vault: PathBuf,
        /// What changed.
        report: DirtyReport,
    },
    /// A concurrent push or rotation published first.
    #[error(
        "another push or rotation of {target} published first; nothing was changed and the current key stays in the keystore — pull, then rotate again"
    )]
    RotationLostRace {
        /// `<repo>/<env>`.
        target: String,
    },
    /// The rotation's pointer write failed and could not be read back: the
    /// new version may be the current one. The old key stays in the
    /// keystore; the new passphrase travels in the error so the CLI can show
    /// it (never in the message).
    #[error(
        "the rotation of {target} to version {ts} may or may not be published ({detail}); the old key stays in the keystore and the new passphrase is shown above — keep it. Run `vsync versions {env}`: if {ts} is current, this machine and every app need the new passphrase (store it here with `vsync rotate-passphrase --env={env} --old-passphrase-file=<file holding it> --generate`); otherwise nothing changed"
    )]
    RotationUnconfirmed {
        /// `<repo>/<env>`.
        target: String,
        /// The env.
        env: String,
        /// The version whose pointer write is unconfirmed.
        ts: vsync_engine::timestamp::Timestamp,
        /// The store's failure.
        detail: String,
        /// The new passphrase, which may now be the only key to the bucket.
        passphrase: UnsavedPassphrase,
    },
    /// An import would replace a different key or config this machine
    /// holds (the old versions and backups could no longer be decrypted).
    #[error("{0}")]
    WouldReplace(String),
    /// `use` found no `.env.<env>` to link to.
    #[error("no {} yet; run `vsync pull {env}` first", path.display())]
    NoEnvFile {
        /// The env.
        env: String,
        /// The file looked for.
        path: PathBuf,
    },
    /// `use` would replace a file that is not a symlink.
    #[error(
        "{path} is a regular file, not a vsync symlink; move it aside (it may hold settings kept nowhere else), then run `vsync use` again"
    )]
    LinkBlocked {
        /// The link path as shown to the user.
        path: String,
    },
    /// A `.share` could not be used.
    #[error("{0}")]
    Share(String),
    /// A `.keytree` could not be used.
    #[error("{0}")]
    Keytree(String),
    /// A multi-step write stopped part-way (what was done is listed).
    #[error(
        "INCOMPLETE: {failed} failed ({reason}); done before it: {done}. Fix the cause and run the same command again"
    )]
    Incomplete {
        /// What failed.
        failed: String,
        /// Why.
        reason: String,
        /// What was done before it.
        done: String,
    },
    /// The user asked for something contradictory.
    #[error("{0}")]
    Usage(String),
    /// A sync did not run: refused by preflight, or the platform or the
    /// sync record could not be read.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A platform could not be used as asked: an unknown target or
    /// setting, routing that is missing or malformed, credentials or an
    /// endpoint that cannot work.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// The runtime library could not open a vault (`vsync exec`'s
    /// `VSYNC_CONFIG` bootstrap, or a fetched bundle's contents).
    #[error(transparent)]
    Runtime(vsync_s3_client::Error),
    /// Local I/O failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Importing from a source failed before anything was written.
    #[error(transparent)]
    Import(ImportError),
    /// Keys changed both at the source and in the vault since the last
    /// import; nothing was written.
    #[error(
        "refused before any write: {} changed both at the source and in the vault since the last import (or differ with no earlier import to tell which side changed); keep one side with --prefer source or --prefer vault",
        keys.join(", ")
    )]
    ImportConflict {
        /// The keys in conflict.
        keys: Vec<String>,
    },
    /// `vsync plan apply`: what the reviewed plan was made from moved.
    #[error(
        "the plan is stale, nothing was written: {}; make a new plan with `vsync plan --out`, review it, and apply that",
        .reasons.join("; ")
    )]
    StalePlan {
        /// What moved, one entry per env, import, target or name.
        reasons: Vec<String>,
    },
    /// A plan artifact that cannot be read or does not verify.
    #[error(transparent)]
    Artifact(#[from] vsync_plan::ArtifactError),
}

fn summarize(report: &DirtyReport) -> String {
    const SHOWN: usize = 20;
    let mut parts = Vec::new();
    for (label, files) in [
        ("modified", &report.modified),
        ("added", &report.added),
        ("deleted", &report.deleted),
    ] {
        if files.is_empty() {
            continue;
        }
        let mut shown = files
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if files.len() > SHOWN {
            shown.push_str(&format!(" and {} more", files.len() - SHOWN));
        }
        parts.push(format!("{label}: {shown}"));
    }
    parts.join("; ")
}

/// A passphrase that exists nowhere but in this value: shown to the user
/// once, redacted from `Debug`, wiped on drop.
pub struct UnsavedPassphrase(pub(crate) Zeroizing<String>);

impl UnsavedPassphrase {
    /// The passphrase, for printing once to the user.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for UnsavedPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsavedPassphrase(<redacted>)")
    }
}

/// Exit code of a sync with nothing to write, under `--detailed-exitcode`.
pub const EXIT_SYNC_NOOP: i32 = 10;
/// Exit code of a sync where some writes failed (the rest are applied).
pub const EXIT_SYNC_PARTIAL: i32 = 11;
/// Exit code of a sync refused before any write.
pub const EXIT_SYNC_REFUSED: i32 = 12;
/// Exit code of an import refused because keys changed both at the source
/// and in the vault since the last import (`--prefer` settles them).
pub const EXIT_IMPORT_CONFLICT: i32 = 13;
/// Exit code of a `plan apply` refused because what the plan was made from
/// moved since (a push, an edit at a platform, another `vsync.toml`).
pub const EXIT_PLAN_STALE: i32 = 14;

impl OpsError {
    /// The process exit code for this failure (documented in the README):
    /// 2 usage or local setup (a symlink on the way to or inside the vault
    /// folder included), 3 the store (unreachable, denied, misconfigured),
    /// 4 a conflict another writer or the local state caused, 5 a bundle
    /// that does not decrypt, verify or unpack safely (hostile entries,
    /// past the size limits), 12 a sync or import refused before any
    /// write, 13 an import conflict, 14 a stale plan, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            OpsError::VaultPath(_)
            | OpsError::Ledger(LedgerError::Path(_))
            | OpsError::Backup(BackupError::Path(_)) => 2,
            OpsError::Bundle(err) | OpsError::Backup(BackupError::Bundle(err)) => {
                bundle_exit_code(err)
            }
            OpsError::NoHome
            | OpsError::Paths(_)
            | OpsError::Identity(_)
            | OpsError::Config(_)
            | OpsError::NoKey { .. }
            | OpsError::AlreadyInitialised { .. }
            | OpsError::ProfileRequired { .. }
            | OpsError::Profile(_)
            | OpsError::Pin(_)
            | OpsError::Prefix(_)
            | OpsError::S3Config(_)
            | OpsError::NoVaultFolder(_)
            | OpsError::NoEnvFile { .. }
            | OpsError::Usage(_)
            | OpsError::Platform(_) => 2,
            OpsError::Sync(err) => match err {
                SyncError::Preflight(_) | SyncError::TooManyDeletes { .. } => EXIT_SYNC_REFUSED,
                SyncError::Inventory(
                    SinkError::Denied(_) | SinkError::NotFound(_) | SinkError::Misconfigured(_),
                ) => 2,
                SyncError::RecordUnreadable(_) => 5,
                _ => 3,
            },
            OpsError::Import(err) => match err {
                ImportError::Source(
                    SinkError::Denied(_) | SinkError::NotFound(_) | SinkError::Misconfigured(_),
                ) => 2,
                ImportError::Source(SinkError::Rejected(_))
                | ImportError::Names(_)
                | ImportError::Glob { .. } => EXIT_SYNC_REFUSED,
                ImportError::Record(SyncError::RecordUnreadable(_)) => 5,
                _ => 3,
            },
            OpsError::ImportConflict { .. } => EXIT_IMPORT_CONFLICT,
            OpsError::StalePlan { .. } => EXIT_PLAN_STALE,
            OpsError::Artifact(vsync_plan::ArtifactError::NotAuthentic { .. }) => 5,
            OpsError::Artifact(_) => 2,
            OpsError::Store(_) | OpsError::RotationUnconfirmed { .. } => 3,
            OpsError::Vault(err) => match err {
                // An object too large to be a pointer or a bundle is a bad
                // bundle, not an unreachable store.
                VaultError::Store {
                    source: StoreError::TooLarge { .. },
                    ..
                } => 5,
                VaultError::Store { .. } | VaultError::PublishUncertain { .. } => 3,
                VaultError::Crypto { .. }
                | VaultError::BundleMissing { .. }
                | VaultError::PointerCorrupt { .. } => 5,
                VaultError::NoVault { .. } => 2,
                _ => 4,
            },
            OpsError::LocalChanges { .. }
            | OpsError::Ledger(_)
            | OpsError::RotationLostRace { .. }
            | OpsError::WouldReplace(_)
            | OpsError::LinkBlocked { .. } => 4,
            OpsError::Share(_) | OpsError::Keytree(_) => 5,
            // The runtime library's seven classes, on this table's codes.
            OpsError::Runtime(err) => match err.class() {
                Some(ErrorClass::ConfigMissing | ErrorClass::ConfigUnsupportedVersion) => 2,
                Some(ErrorClass::S3Unreachable) => 3,
                Some(ErrorClass::ManifestNotFound) => 2,
                Some(
                    ErrorClass::WrongPassphrase
                    | ErrorClass::BundleCorrupt
                    | ErrorClass::UnsupportedSpecVersion,
                ) => 5,
                None => 1,
            },
            OpsError::Keystore(_)
            | OpsError::Backup(_)
            | OpsError::Incomplete { .. }
            | OpsError::Io { .. } => 1,
        }
    }
}

/// A bundle that is damaged or hostile is a bundle that does not verify
/// (5), like one that does not decrypt; a local path or limit setting the
/// user fixes is setup (2).
fn bundle_exit_code(err: &BundleError) -> i32 {
    match err {
        BundleError::UnsafeEntry(_)
        | BundleError::Corrupt(_)
        | BundleError::EntryTooLarge { .. }
        | BundleError::TooLarge { .. }
        | BundleError::TooManyEntries { .. } => 5,
        BundleError::Path(_)
        | BundleError::FolderTooLarge { .. }
        | BundleError::InvalidLimit { .. } => 2,
        _ => 1,
    }
}
