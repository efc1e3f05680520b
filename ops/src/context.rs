//! Where local state lives and which repo the working tree belongs to.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vsync_crypto::KeyCache;
use vsync_local::identity::{self, RepoIdentity};
use vsync_local::keystore::{self, Choice, Selection};
use vsync_local::{ConfigBase, Keystore};

use crate::OpsError;

/// Everything an operation needs to know about this machine. Built from the
/// environment by the CLI, or explicitly by tests.
#[derive(Debug, Clone)]
pub struct Context {
    /// The config base (`$XDG_CONFIG_HOME/vsync` or `~/.config/vsync`).
    pub base: ConfigBase,
    /// Where bundle keys are kept.
    pub keystore: Keystore,
    /// Why the keystore is the one in use.
    pub keystore_choice: Choice,
    /// A one-line notice about the keystore for the user (no keychain
    /// answers, a setting not understood), if any.
    pub keystore_notice: Option<String>,
    /// Where `init` puts the local store when no profile is used.
    pub local_store_dir: PathBuf,
    /// `$VSYNC_BACKUP_DIR`, if set.
    pub backup_dir_override: Option<OsString>,
    /// The working directory commands run in.
    pub cwd: PathBuf,
    /// `--repo`, if given.
    pub repo_flag: Option<String>,
    /// `$VSYNC_AUDIT_META`: a JSON object merged into every audit row's meta.
    pub audit_meta_env: Option<String>,
    /// `$VSYNC_AUDIT_NOTE`: the `note` of every audit row.
    pub audit_note_env: Option<String>,
    /// The bundle keys derived during this command, shared by every env
    /// it loads: PBKDF2 dominates a command, and a command that loads an
    /// env several times (`plan apply`) derives its key once. Wiped when
    /// the context is dropped, with the command.
    pub keys: Arc<KeyCache>,
}

/// The repo a command works on.
#[derive(Debug, Clone)]
pub struct Repo {
    /// Its identity (name and where the name came from).
    pub identity: RepoIdentity,
    /// The git toplevel of the working tree (where `.vsync` lives).
    pub toplevel: PathBuf,
    /// The main worktree's toplevel, where the vault folder lives.
    pub vault_root: PathBuf,
}

impl Repo {
    /// The repo's name.
    pub fn name(&self) -> &str {
        &self.identity.name
    }
}

impl Context {
    /// Reads the context from the process environment: `XDG_CONFIG_HOME`,
    /// `HOME`, `XDG_DATA_HOME`, `VSYNC_KEYSTORE`, `VSYNC_BACKUP_DIR`,
    /// `VSYNC_AUDIT_META`, `VSYNC_AUDIT_NOTE`.
    pub fn from_env(cwd: PathBuf, repo_flag: Option<String>) -> Result<Self, OpsError> {
        let base = ConfigBase::from_env()?;
        let keystore_choice = std::env::var("VSYNC_KEYSTORE").ok();
        let Selection {
            keystore,
            choice,
            warning,
        } = Keystore::select(&base, keystore_choice.as_deref());
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))
            .ok_or(OpsError::NoHome)?;
        Ok(Self {
            base,
            keystore,
            keystore_choice: choice,
            keystore_notice: warning,
            local_store_dir: data_home.join("vsync").join("store"),
            backup_dir_override: std::env::var_os("VSYNC_BACKUP_DIR"),
            cwd,
            repo_flag,
            audit_meta_env: std::env::var("VSYNC_AUDIT_META").ok(),
            audit_note_env: std::env::var("VSYNC_AUDIT_NOTE").ok(),
            keys: Arc::default(),
        })
    }

    /// A machine kept entirely under `root` — config base `root/config`,
    /// local store `root/store`, backups `root/backups`, keys in the file
    /// keystore — working in `cwd` as repo `repo`: what tests and
    /// benchmarks run operations in, apart from the real machine's state.
    pub fn sandboxed(root: &Path, cwd: PathBuf, repo: &str) -> Self {
        let base = ConfigBase::at(root.join("config"));
        Self {
            keystore: Keystore::file(&base),
            base,
            keystore_choice: Choice::Variable,
            keystore_notice: None,
            local_store_dir: root.join("store"),
            backup_dir_override: Some(root.join("backups").into()),
            cwd,
            repo_flag: Some(repo.to_owned()),
            audit_meta_env: None,
            audit_note_env: None,
            keys: Arc::default(),
        }
    }

    /// Remembers, when no OS keychain answered, that this machine uses the
    /// file keystore, so later commands neither ask the keychain nor repeat
    /// the notice. Every command but the read-only ones (`doctor`) calls it.
    pub fn remember_keystore_fallback(&self) -> Result<(), OpsError> {
        if let Choice::NoKeychain {
            remember_at: Some(path),
            ..
        } = &self.keystore_choice
        {
            keystore::remember_fallback(path).map_err(|source| OpsError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Resolves the repo of the working directory (§5.1: `--repo`, the
    /// `.vsync` pin, then the git origin).
    pub fn repo(&self) -> Result<Repo, OpsError> {
        let identity::Roots {
            toplevel,
            vault_root,
        } = identity::roots(&self.cwd)?;
        let identity = identity::resolve(self.repo_flag.as_deref(), &toplevel)?;
        Ok(Repo {
            identity,
            toplevel,
            vault_root,
        })
    }
}
