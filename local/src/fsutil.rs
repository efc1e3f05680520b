//! The two file-system primitives every module shares: private directories
//! (0700, created recursively) and atomic private writes (0600 from the
//! moment the temporary file exists, fsync, rename).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` and its missing parents with mode 0700, then narrows `dir`
/// itself to 0700 (as upstream's `chmod`, a failure there is ignored).
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    Ok(())
}

/// A directory or file holding vsync's configs or keys that someone other
/// than this user could have written (a shared or planted HOME): another
/// user could replace the key and salt and read the next push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} {problem}; vsync refuses to use it — {fix}")]
pub struct NotPrivate {
    /// The offending path.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: &'static str,
    /// What to do.
    pub fix: String,
}

/// Checks `root` and every existing path from it down to `path` (which lies
/// below `root`): each must be owned by this process's user and not
/// writable by group or others. Missing paths are fine (they will be
/// created private).
pub fn check_private_chain(root: &Path, path: &Path) -> Result<(), NotPrivate> {
    let below = path.strip_prefix(root).unwrap_or(Path::new(""));
    let mut current = root.to_path_buf();
    check_private(&current)?;
    for component in below.components() {
        current.push(component);
        check_private(&current)?;
    }
    Ok(())
}

fn check_private(path: &Path) -> Result<(), NotPrivate> {
    use std::os::unix::fs::MetadataExt;

    let Ok(meta) = fs::metadata(path) else {
        return Ok(());
    };
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(NotPrivate {
            path: path.to_path_buf(),
            problem: "is owned by another user",
            fix: format!(
                "if it is yours, `chown -R $(id -u) {}`; otherwise point XDG_CONFIG_HOME or HOME at a directory of your own",
                path.display()
            ),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(NotPrivate {
            path: path.to_path_buf(),
            problem: "is writable by group or others",
            fix: format!(
                "check that nothing in it was replaced, then `chmod go-w {}` (vsync creates directories 0700 and files 0600)",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Fills a buffer with random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system random source is available");
    bytes
}

/// The temporary sibling `<file>.tmp.<pid>.<rand>` an atomic write goes
/// through, as upstream names it.
fn temp_sibling(path: &Path) -> PathBuf {
    let suffix: [u8; 6] = random_bytes();
    let rand: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}.{rand}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `contents` to `path` atomically with mode 0600: a temporary file in
/// the same directory (0600 from creation, never wider), fsync, rename over
/// `path`, then a best-effort fsync of the directory. The parent directory
/// must exist. On failure the temporary file is removed and `path` is left
/// as it was.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic(path, contents, 0o600)
}

/// [`write_private_atomic`] with `mode` (0644 for a file meant to be
/// committed). The rename replaces `path` itself: a symlink there is
/// replaced, never written through.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let temp = temp_sibling(path);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        // The umask can only narrow the mode, but be explicit.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates the parent of `path` privately, then writes `path` atomically.
pub(crate) fn write_private_atomic_in_private_dir(path: &Path, contents: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir_all(parent)?;
    }
    write_private_atomic(path, contents)
}

#[cfg(test)]
pub(crate) fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_and_atomic_writes_have_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        create_private_dir_all(&dir).unwrap();
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        // An existing wider directory is narrowed.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir_all(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);

        let file = dir.join("f");
        fs::write(&file, b"old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        write_private_atomic(&file, b"new").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"new");
        assert_eq!(mode(&file), 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn shared_directories_and_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("vsync");
        let file = root.join("acme/env_dev");
        // Nothing exists yet: fine.
        check_private_chain(&root, &file).unwrap();
        create_private_dir_all(&root.join("acme")).unwrap();
        write_private_atomic(&file, b"x").unwrap();
        check_private_chain(&root, &file).unwrap();
        for (path, shared) in [(&root, 0o770), (&root.join("acme"), 0o702), (&file, 0o620)] {
            let before = mode(path);
            fs::set_permissions(path, fs::Permissions::from_mode(shared)).unwrap();
            let err = check_private_chain(&root, &file).unwrap_err();
            assert_eq!(&err.path, path);
            assert!(err.to_string().contains("chmod go-w"), "{err}");
            fs::set_permissions(path, fs::Permissions::from_mode(before)).unwrap();
        }
        check_private_chain(&root, &file).unwrap();
        // Another user's directory (only root can hand one over to test it).
        if std::os::unix::fs::chown(root.join("acme"), Some(1), None).is_ok() {
            let err = check_private_chain(&root, &file).unwrap_err();
            assert!(err.to_string().contains("owned by another user"), "{err}");
        }
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails.
        let target = tmp.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"x").unwrap();
        assert!(write_private_atomic(&target, b"data").is_err());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_names_follow_upstream_shape() {
        let name = temp_sibling(Path::new("/x/dev.json"));
        let name = name.file_name().unwrap().to_str().unwrap().to_owned();
        let prefix = format!("dev.json.tmp.{}.", std::process::id());
        assert!(name.starts_with(&prefix), "{name}");
        assert_eq!(name.len(), prefix.len() + 12);
    }
}
