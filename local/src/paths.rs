//! The config base (`$XDG_CONFIG_HOME/vsync` or `~/.config/vsync`) and every
//! path vsync keeps below it, laid out as upstream lays them out:
//!
//! ```text
//! <base>/<repo>/env_<env-lower>               gzip JSON config
//! <base>/<repo>/env_<env>.ledger.json         sync ledger (env as typed)
//! <base>/profiles/<name>.json                 profiles
//! <base>/backups/                             rolling backups ($VSYNC_BACKUP_DIR)
//! <base>/backups/<repo>/<env>.backup-<iso>/   plain `pull --backup` copies
//! <base>/.keystore/<repo>/<env>.key           file keystore (ours)
//! <base>/.keystore-fallback                   "no keychain here" (ours)
//! ```
//!
//! Repo and env names are checked before they become path components: the
//! sibling entries `profiles`, `backups`, `.keystore` and
//! `.keystore-fallback` are reserved repo names, and nothing may climb out of the base.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Repo names that would collide with sibling directories of the base
/// (compared case-insensitively).
pub const RESERVED_REPO_NAMES: [&str; 4] =
    ["profiles", "backups", ".keystore", ".keystore-fallback"];

/// A repo or env name that cannot become a path component, or a base that
/// cannot be located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathsError {
    /// Neither `$XDG_CONFIG_HOME` nor `$HOME` is set.
    #[error(
        "cannot locate the vsync config directory: neither XDG_CONFIG_HOME nor HOME is set; set one of them"
    )]
    NoHome,
    /// The repo name is one of the reserved sibling directories.
    #[error(
        "repo name {0:?} is reserved (profiles, backups, .keystore and .keystore-fallback live beside the repo folders); pick another with --repo=<name> or a .vsync pin"
    )]
    ReservedRepo(String),
    /// The repo name is empty or would escape its folder.
    #[error(
        "repo name {0:?} cannot be used as a folder name (empty, `.`/`..`, or contains `/`, `\\` or NUL); pass a plain name with --repo=<name>"
    )]
    InvalidRepo(String),
    /// The env name is empty or would escape its folder.
    #[error(
        "env name {0:?} cannot be used in a file name (empty, `.`/`..`, or contains `/`, `\\` or NUL); use a name like `dev` or `prod`"
    )]
    InvalidEnv(String),
}

/// True when `name` is a single, harmless path component.
fn is_plain_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Checks that `repo` can name a folder under the base and is not reserved.
pub fn check_repo_name(repo: &str) -> Result<(), PathsError> {
    if !is_plain_component(repo) {
        return Err(PathsError::InvalidRepo(repo.to_owned()));
    }
    if RESERVED_REPO_NAMES
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(repo))
    {
        return Err(PathsError::ReservedRepo(repo.to_owned()));
    }
    Ok(())
}

/// Checks that `env` can be part of a file name.
pub fn check_env_name(env: &str) -> Result<(), PathsError> {
    if is_plain_component(env) {
        Ok(())
    } else {
        Err(PathsError::InvalidEnv(env.to_owned()))
    }
}

/// The `<base>` directory all machine-local vsync state lives under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBase {
    dir: PathBuf,
}

impl ConfigBase {
    /// A base at an explicit directory (tests, `--config-dir`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The base from the process environment: `$XDG_CONFIG_HOME/vsync` when
    /// set and not blank, else `$HOME/.config/vsync`.
    pub fn from_env() -> Result<Self, PathsError> {
        Self::from_vars(
            std::env::var_os("XDG_CONFIG_HOME").as_deref(),
            std::env::var_os("HOME").as_deref(),
        )
    }

    /// [`ConfigBase::from_env`] over explicit values of `XDG_CONFIG_HOME`
    /// and `HOME`.
    pub fn from_vars(
        xdg_config_home: Option<&OsStr>,
        home: Option<&OsStr>,
    ) -> Result<Self, PathsError> {
        let not_blank = |value: &&OsStr| !value.to_string_lossy().trim().is_empty();
        if let Some(xdg) = xdg_config_home.filter(not_blank) {
            return Ok(Self::at(Path::new(xdg).join("vsync")));
        }
        match home.filter(not_blank) {
            Some(home) => Ok(Self::at(Path::new(home).join(".config").join("vsync"))),
            None => Err(PathsError::NoHome),
        }
    }

    /// The base directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<base>/<repo>`.
    pub fn repo_dir(&self, repo: &str) -> Result<PathBuf, PathsError> {
        check_repo_name(repo)?;
        Ok(self.dir.join(repo))
    }

    /// `<base>/<repo>/env_<env-lowercased>`: the gzip JSON config.
    pub fn env_config_path(&self, repo: &str, env: &str) -> Result<PathBuf, PathsError> {
        check_env_name(env)?;
        Ok(self
            .repo_dir(repo)?
            .join(format!("env_{}", env.to_lowercase())))
    }

    /// `<base>/<repo>/env_<env>.ledger.json`: the ledger. The env is used
    /// as typed (upstream does not lowercase it here).
    pub fn ledger_path(&self, repo: &str, env: &str) -> Result<PathBuf, PathsError> {
        check_env_name(env)?;
        Ok(self.repo_dir(repo)?.join(format!("env_{env}.ledger.json")))
    }

    /// `<base>/<repo>/.env_<env>.lock`: held while a push, pull or rotation
    /// of the env runs, so two of them never interleave in one vault folder.
    /// A dotfile, so upstream's `list` (which walks `env_*`) never shows it.
    pub fn lock_path(&self, repo: &str, env: &str) -> Result<PathBuf, PathsError> {
        check_env_name(env)?;
        Ok(self.repo_dir(repo)?.join(format!(".env_{env}.lock")))
    }

    /// `<base>/profiles`.
    pub fn profiles_dir(&self) -> PathBuf {
        self.dir.join("profiles")
    }

    /// Where encrypted rolling backups go: `vsync_backup_dir` (the value of
    /// `$VSYNC_BACKUP_DIR`; empty counts as unset) or `<base>/backups`.
    pub fn backups_dir(&self, vsync_backup_dir: Option<&OsStr>) -> PathBuf {
        match vsync_backup_dir.filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => self.dir.join("backups"),
        }
    }

    /// `<base>/backups/<repo>`: where `pull --backup` copies go.
    pub fn plain_backups_dir(&self, repo: &str) -> Result<PathBuf, PathsError> {
        check_repo_name(repo)?;
        Ok(self.dir.join("backups").join(repo))
    }

    /// `<base>/.keystore`: the root of the file keystore.
    pub fn keystore_dir(&self) -> PathBuf {
        self.dir.join(".keystore")
    }

    /// `<base>/.keystore-fallback`: remembers that this machine has no OS
    /// keychain, so the file keystore is used without asking again.
    pub fn keystore_fallback_path(&self) -> PathBuf {
        self.dir.join(".keystore-fallback")
    }

    /// `<base>/defaults`: the legacy (v0.3–v0.12) defaults file.
    pub fn legacy_defaults_path(&self) -> PathBuf {
        self.dir.join("defaults")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_from_xdg_then_home() {
        let base =
            ConfigBase::from_vars(Some(OsStr::new("/x/cfg")), Some(OsStr::new("/home/u"))).unwrap();
        assert_eq!(base.dir(), Path::new("/x/cfg/vsync"));
        for blank in ["", "  "] {
            let base = ConfigBase::from_vars(Some(OsStr::new(blank)), Some(OsStr::new("/home/u")))
                .unwrap();
            assert_eq!(base.dir(), Path::new("/home/u/.config/vsync"));
        }
        let base = ConfigBase::from_vars(None, Some(OsStr::new("/home/u"))).unwrap();
        assert_eq!(base.dir(), Path::new("/home/u/.config/vsync"));
        assert_eq!(ConfigBase::from_vars(None, None), Err(PathsError::NoHome));
    }

    #[test]
    fn layout_matches_upstream() {
        let base = ConfigBase::at("/b");
        assert_eq!(
            base.env_config_path("acme_web", "Dev").unwrap(),
            Path::new("/b/acme_web/env_dev")
        );
        assert_eq!(
            base.ledger_path("acme_web", "Dev").unwrap(),
            Path::new("/b/acme_web/env_Dev.ledger.json")
        );
        assert_eq!(base.profiles_dir(), Path::new("/b/profiles"));
        assert_eq!(base.backups_dir(None), Path::new("/b/backups"));
        assert_eq!(
            base.backups_dir(Some(OsStr::new(""))),
            Path::new("/b/backups")
        );
        assert_eq!(base.backups_dir(Some(OsStr::new("/o"))), Path::new("/o"));
        assert_eq!(
            base.plain_backups_dir("acme_web").unwrap(),
            Path::new("/b/backups/acme_web")
        );
        assert_eq!(base.keystore_dir(), Path::new("/b/.keystore"));
    }

    #[test]
    fn reserved_and_unsafe_names_are_refused() {
        let base = ConfigBase::at("/b");
        for repo in ["profiles", "Backups", ".KEYSTORE"] {
            let err = base.env_config_path(repo, "dev").unwrap_err();
            assert_eq!(err, PathsError::ReservedRepo(repo.to_owned()));
            assert!(err.to_string().contains("--repo="), "{err}");
        }
        for repo in ["", ".", "..", "a/b", "a\\b"] {
            assert_eq!(
                base.repo_dir(repo).unwrap_err(),
                PathsError::InvalidRepo(repo.to_owned())
            );
        }
        for env in ["", "..", "../x", "a/b"] {
            assert_eq!(
                base.env_config_path("r", env).unwrap_err(),
                PathsError::InvalidEnv(env.to_owned())
            );
            assert!(base.ledger_path("r", env).is_err());
        }
    }
}
