//! The two backup mechanisms of upstream (§1.10):
//!
//! - the **encrypted rolling backup** made at the start of every `pull`: the
//!   vault folder zipped as a bundle, sealed as RQE1 with the env's bundle
//!   key (PBKDF2 of the keystore value with the config's salt), saved as
//!   `<dir>/<env-lower>-<ts>.zip.enc` (0600), keeping the two newest per
//!   env; [`restore_encrypted`] proves it usable;
//! - the **plain `pull --backup` copy** to
//!   `<base>/backups/<repo>/<env>.backup-<ISO>/` (directories 0700, files
//!   0600, timestamps kept), refused before anything is copied when a
//!   symlink sits on the way from the repo root to the vault folder or
//!   inside it.
//!
//! Both read the vault folder through [`vault_fs`]: no symlink is followed,
//! files are opened with `O_NOFOLLOW`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use vsync_crypto::{Key, rqe1};
use vsync_engine::bundle::{self, BundleError};
use vsync_engine::vault_fs::{self, EntryKind, VaultPathError};

use crate::fsutil;
use crate::paths::{ConfigBase, PathsError};

/// How many encrypted backups are kept per env.
pub const KEEP_ENCRYPTED: usize = 2;

/// Why a backup could not be made or restored. Never carries vault content
/// or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The vault folder could not be zipped or the backup unzipped.
    #[error("backup: {0}")]
    Bundle(#[from] BundleError),
    /// The backup could not be decrypted.
    #[error(
        "backup {path} could not be opened: {source}; it was sealed with another key or salt (re-init and import replace both)"
    )]
    Decrypt {
        /// The backup file.
        path: PathBuf,
        /// Why.
        source: vsync_crypto::Error,
    },
    /// A symlink on the way to or inside the vault folder; nothing was
    /// read or copied.
    #[error(transparent)]
    Path(#[from] VaultPathError),
    /// The backup destination already exists.
    #[error("backup folder {0} already exists; wait a second and retry, or move it away")]
    Exists(PathBuf),
    /// Reading or writing failed.
    #[error("{path}: {source}; check the permissions and free space")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The repo name cannot name a folder.
    #[error(transparent)]
    Paths(#[from] PathsError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// True for `<env>-YYYYMMDD-HHmmss.zip.enc`.
fn is_rolling_backup_of(name: &str, env_lower: &str) -> bool {
    name.strip_prefix(env_lower)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".zip.enc"))
        .is_some_and(|ts| ts.parse::<vsync_engine::timestamp::Timestamp>().is_ok())
}

/// Makes the encrypted rolling backup of `vault_root/vault_folder` into
/// `backup_dir` (see [`ConfigBase::backups_dir`]) sealed with the env's
/// bundle `key`, then prunes all but the [`KEEP_ENCRYPTED`] newest of the
/// env. `Ok(None)` when the vault folder does not exist.
///
/// The key is upstream's: PBKDF2 of the keystore value with the config's
/// salt and [`vsync_crypto::DEFAULT_ITERATIONS`], the very key the env's
/// bundles use. Taken derived, so a `pull` that backs up and then opens the
/// bundle pays for the derivation once.
pub fn create_encrypted(
    backup_dir: &Path,
    vault_root: &Path,
    vault_folder: &Path,
    env: &str,
    key: &Key,
    now: SystemTime,
) -> Result<Option<PathBuf>, BackupError> {
    // Judged without following: `is_dir` would follow a symlinked folder.
    if !vault_fs::check_folder(vault_root, vault_folder)? {
        return Ok(None);
    }
    let zip = bundle::pack(vault_root, vault_folder)?;
    let sealed = rqe1::seal(key, &zip);
    let env_lower = env.to_lowercase();
    let path = backup_dir.join(format!(
        "{env_lower}-{}.zip.enc",
        crate::time::timestamp(now)
    ));
    fsutil::write_private_atomic_in_private_dir(&path, &sealed).map_err(io_at(&path))?;
    prune(backup_dir, &env_lower)?;
    Ok(Some(path))
}

/// Deletes all but the newest [`KEEP_ENCRYPTED`] backups of the env, by
/// mtime (ties broken by name).
fn prune(backup_dir: &Path, env_lower: &str) -> Result<(), BackupError> {
    let mut backups = Vec::new();
    for entry in fs::read_dir(backup_dir).map_err(io_at(backup_dir))? {
        let entry = entry.map_err(io_at(backup_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_rolling_backup_of(&name, env_lower) {
            continue;
        }
        let meta = entry.metadata().map_err(io_at(&entry.path()))?;
        if meta.is_file() {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            backups.push((mtime, name, entry.path()));
        }
    }
    backups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    for (_, _, path) in backups.into_iter().skip(KEEP_ENCRYPTED) {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_at(&path)(err)),
        }
    }
    Ok(())
}

/// The encrypted backups of an env in `backup_dir`, newest first.
pub fn list_encrypted(backup_dir: &Path, env: &str) -> Result<Vec<PathBuf>, BackupError> {
    let env_lower = env.to_lowercase();
    let entries = match fs::read_dir(backup_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_at(backup_dir)(err)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| is_rolling_backup_of(name, &env_lower))
        .collect();
    names.sort_by(|a, b| b.cmp(a));
    Ok(names
        .into_iter()
        .map(|name| backup_dir.join(name))
        .collect())
}

/// Decrypts the backup `file` with the env's bundle `key` (see
/// [`create_encrypted`]) and unzips it into `vault_root` (only entries
/// inside `vault_folder`, overwriting same-named files). Returns the files
/// written, relative to the vault folder.
pub fn restore_encrypted(
    file: &Path,
    vault_root: &Path,
    vault_folder: &Path,
    key: &Key,
) -> Result<Vec<String>, BackupError> {
    let sealed = fs::read(file).map_err(io_at(file))?;
    let zip = rqe1::open(key, &sealed).map_err(|source| BackupError::Decrypt {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(bundle::unpack(&zip, vault_root, vault_folder)?)
}

/// Copies `vault_root/vault_folder` to
/// `<base>/backups/<repo>/<env-lower>.backup-<ISO>/` (ISO = `toISOString()`
/// with `:` → `-`, no milliseconds), keeping file timestamps. Every entry is
/// checked first ([`vault_fs::walk`]): a symlink on the way from the repo
/// root or inside the folder aborts before anything is copied. `Ok(None)`
/// when the vault folder does not exist.
pub fn copy_plain(
    base: &ConfigBase,
    repo: &str,
    env: &str,
    vault_root: &Path,
    vault_folder: &Path,
    now: SystemTime,
) -> Result<Option<PathBuf>, BackupError> {
    let parent = base.plain_backups_dir(repo)?;
    let Some(items) = vault_fs::walk(vault_root, vault_folder)? else {
        return Ok(None);
    };
    let vault_dir = vault_root.join(vault_folder);

    fsutil::create_private_dir_all(&parent).map_err(io_at(&parent))?;
    let dest = parent.join(format!(
        "{}.backup-{}",
        env.to_lowercase(),
        crate::time::iso_backup_stamp(now)
    ));
    match fs::DirBuilder::new().mode(0o700).create(&dest) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists(dest));
        }
        Err(err) => return Err(io_at(&dest)(err)),
    }
    for item in &items {
        let rel = &item.relative;
        match item.kind {
            EntryKind::Dir => {
                let target = dest.join(rel);
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&target)
                    .map_err(io_at(&target))?;
            }
            EntryKind::File => copy_file(&vault_dir.join(rel), &dest.join(rel))?,
        }
    }
    Ok(Some(dest))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    let mut source = vault_fs::open_file(from)?;
    let meta = source.metadata().map_err(io_at(from))?;
    let mut target = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(io_at(to))?;
    io::copy(&mut source, &mut target).map_err(io_at(to))?;
    let mut times = fs::FileTimes::new();
    if let Ok(modified) = meta.modified() {
        times = times.set_modified(modified);
    }
    if let Ok(accessed) = meta.accessed() {
        times = times.set_accessed(accessed);
    }
    target.set_times(times).map_err(io_at(to))?;
    target.sync_all().map_err(io_at(to))
}

/// The plain backups of `repo`, sorted by name (oldest first), for the
/// status notice upstream's spec wants above five.
pub fn list_plain(base: &ConfigBase, repo: &str) -> Result<Vec<PathBuf>, BackupError> {
    let dir = base.plain_backups_dir(repo)?;
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_at(&dir)(err)),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains(".backup-"))
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::mode;
    use std::time::{Duration, UNIX_EPOCH};

    const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";
    const SALT: &str = "abcdefghijklmnopqrstuvwx";

    /// The env's bundle key, as `pull` derives it.
    fn bundle_key(keystore_value: &str) -> Key {
        Key::derive(
            keystore_value.as_bytes(),
            SALT.as_bytes(),
            vsync_crypto::DEFAULT_ITERATIONS,
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn vault() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let vault = root.join("infra/vault/dev");
        fs::create_dir_all(vault.join("tls")).unwrap();
        fs::write(vault.join(".env.dev"), "A=1\n").unwrap();
        fs::write(vault.join("tls/server.key"), [0u8, 1, 2, 255]).unwrap();
        (tmp, root)
    }

    #[test]
    fn encrypted_backup_restores_and_rotates() {
        let (tmp, root) = vault();
        let dir = tmp.path().join("backups");
        let folder = Path::new("infra/vault/dev");
        let key = bundle_key(KEY);
        // 2026-05-25T14:23:40Z
        let first = create_encrypted(&dir, &root, folder, "Dev", &key, at(1_779_719_020)).unwrap();
        let first = first.unwrap();
        assert_eq!(first, dir.join("dev-20260525-142340.zip.enc"));
        assert_eq!(mode(&first), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // Upstream's format: RQE1 under PBKDF2(keystore value, salt, 600k).
        let sealed = fs::read(&first).unwrap();
        let zip = rqe1::decrypt(
            KEY.as_bytes(),
            SALT.as_bytes(),
            vsync_crypto::DEFAULT_ITERATIONS,
            &sealed,
        )
        .unwrap();
        assert!(zip.starts_with(b"PK\x03\x04"));

        let target = tmp.path().join("restored");
        let mut written = restore_encrypted(&first, &target, folder, &key).unwrap();
        written.sort();
        assert_eq!(written, [".env.dev", "tls/server.key"]);
        assert_eq!(
            fs::read(target.join("infra/vault/dev/tls/server.key")).unwrap(),
            [0, 1, 2, 255]
        );
        let wrong = "x".repeat(44);
        let err = restore_encrypted(&first, &target, folder, &bundle_key(&wrong)).unwrap_err();
        assert!(matches!(err, BackupError::Decrypt { .. }), "{err}");
        assert!(!err.to_string().contains(KEY));

        // Another env's and a look-alike env's backups are not rotated away.
        fs::write(dir.join("prod-20200101-000000.zip.enc"), b"x").unwrap();
        fs::write(dir.join("dev-staging-20200101-000000.zip.enc"), b"x").unwrap();
        let older = dir.join("dev-20200101-000000.zip.enc");
        fs::write(&older, b"x").unwrap();
        fs::File::options()
            .write(true)
            .open(&older)
            .unwrap()
            .set_modified(at(1_000))
            .unwrap();
        let second = create_encrypted(&dir, &root, folder, "dev", &key, at(1_779_719_021))
            .unwrap()
            .unwrap();
        assert!(!older.exists());
        assert_eq!(list_encrypted(&dir, "dev").unwrap(), [second, first]);
        assert!(dir.join("prod-20200101-000000.zip.enc").exists());
        assert!(dir.join("dev-staging-20200101-000000.zip.enc").exists());
    }

    #[test]
    fn encrypted_backup_skips_a_missing_vault() {
        let tmp = tempfile::tempdir().unwrap();
        let made = create_encrypted(
            &tmp.path().join("b"),
            tmp.path(),
            Path::new("infra/vault/dev"),
            "dev",
            &bundle_key(KEY),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(made, None);
        assert!(!tmp.path().join("b").exists());
    }

    #[test]
    fn plain_copy_keeps_content_times_and_private_modes() {
        let (tmp, root) = vault();
        let vault_dir = root.join("infra/vault/dev");
        let stamp = at(1_700_000_000);
        fs::File::options()
            .write(true)
            .open(vault_dir.join(".env.dev"))
            .unwrap()
            .set_modified(stamp)
            .unwrap();
        let base = ConfigBase::at(tmp.path().join("vsync"));
        let folder = Path::new("infra/vault/dev");
        let dest = copy_plain(&base, "acme_web", "dev", &root, folder, at(1_779_719_020))
            .unwrap()
            .unwrap();
        assert_eq!(
            dest,
            tmp.path()
                .join("vsync/backups/acme_web/dev.backup-2026-05-25T14-23-40Z")
        );
        assert_eq!(mode(&dest), 0o700);
        assert_eq!(mode(&tmp.path().join("vsync/backups/acme_web")), 0o700);
        assert_eq!(mode(&dest.join("tls")), 0o700);
        assert_eq!(mode(&dest.join(".env.dev")), 0o600);
        assert_eq!(fs::read(dest.join(".env.dev")).unwrap(), b"A=1\n");
        assert_eq!(
            fs::read(dest.join("tls/server.key")).unwrap(),
            [0, 1, 2, 255]
        );
        assert_eq!(
            fs::metadata(dest.join(".env.dev"))
                .unwrap()
                .modified()
                .unwrap(),
            stamp
        );
        assert_eq!(list_plain(&base, "acme_web").unwrap(), [dest]);
        let err =
            copy_plain(&base, "acme_web", "dev", &root, folder, at(1_779_719_020)).unwrap_err();
        assert!(matches!(err, BackupError::Exists(_)), "{err}");
        assert_eq!(
            copy_plain(&base, "acme_web", "dev", &root, Path::new("absent"), at(1)).unwrap(),
            None
        );
    }

    #[test]
    fn plain_copy_with_symlink_copies_nothing() {
        let (tmp, root) = vault();
        let vault_dir = root.join("infra/vault/dev");
        std::os::unix::fs::symlink("/etc/passwd", vault_dir.join("tls/zz-link")).unwrap();
        let base = ConfigBase::at(tmp.path().join("vsync"));
        let folder = Path::new("infra/vault/dev");
        let err = copy_plain(&base, "acme_web", "dev", &root, folder, at(1)).unwrap_err();
        assert!(
            matches!(err, BackupError::Path(VaultPathError::Symlink(_))),
            "{err}"
        );
        assert!(!tmp.path().join("vsync/backups").exists());
    }

    /// `repo/infra` replaced by a symlink to a tree outside the repository
    /// that holds `vault/dev/.env.dev`.
    fn symlinked_infra() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("vault/dev")).unwrap();
        fs::write(outside.join("vault/dev/.env.dev"), "OUTSIDE=1\n").unwrap();
        let root = tmp.path().join("repo");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("infra")).unwrap();
        (tmp, root)
    }

    #[test]
    fn backups_refuse_a_symlinked_directory_on_the_way_to_the_vault() {
        // Before: the plain copy judged only the vault folder itself and the
        // encrypted backup `is_dir()`-followed the path, so both read files
        // from outside the repository through `infra`.
        let (tmp, root) = symlinked_infra();
        let folder = Path::new("infra/vault/dev");
        let base = ConfigBase::at(tmp.path().join("vsync"));
        let err = copy_plain(&base, "acme_web", "dev", &root, folder, at(1)).unwrap_err();
        assert!(
            matches!(&err, BackupError::Path(VaultPathError::Symlink(p)) if p == &root.join("infra")),
            "{err}"
        );
        assert!(!tmp.path().join("vsync/backups").exists());

        let dir = tmp.path().join("backups");
        let err =
            create_encrypted(&dir, &root, folder, "dev", &bundle_key(KEY), at(1)).unwrap_err();
        assert!(
            matches!(&err, BackupError::Path(VaultPathError::Symlink(p)) if p == &root.join("infra")),
            "{err}"
        );
        assert!(!dir.exists());

        // The vault folder itself a symlink.
        fs::remove_file(root.join("infra")).unwrap();
        fs::create_dir_all(root.join("infra/vault")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside/vault/dev"), root.join(folder))
            .unwrap();
        let err =
            create_encrypted(&dir, &root, folder, "dev", &bundle_key(KEY), at(1)).unwrap_err();
        assert!(
            matches!(&err, BackupError::Path(VaultPathError::Symlink(p)) if p == &root.join(folder)),
            "{err}"
        );
        let err = copy_plain(&base, "acme_web", "dev", &root, folder, at(1)).unwrap_err();
        assert!(matches!(err, BackupError::Path(_)), "{err}");
        assert!(!dir.exists());
    }

    #[test]
    fn restore_refuses_to_write_through_a_symlinked_directory() {
        let (tmp, root) = vault();
        let folder = Path::new("infra/vault/dev");
        let dir = tmp.path().join("backups");
        let backup = create_encrypted(&dir, &root, folder, "dev", &bundle_key(KEY), at(1))
            .unwrap()
            .unwrap();
        let (_other, target) = symlinked_infra();
        let err = restore_encrypted(&backup, &target, folder, &bundle_key(KEY)).unwrap_err();
        assert!(
            matches!(
                err,
                BackupError::Bundle(BundleError::Path(VaultPathError::Symlink(_)))
            ),
            "{err}"
        );
        let outside = target.parent().unwrap().join("outside/vault/dev");
        assert_eq!(fs::read(outside.join(".env.dev")).unwrap(), b"OUTSIDE=1\n");
        assert!(!outside.join("tls").exists());
    }
}
