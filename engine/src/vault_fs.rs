//! Reading and writing the vault folder without following symlinks.
//!
//! The vault folder lives at `<repo root>/<vault folder>` (by default
//! `infra/vault/<env>`). A symlink anywhere on that way — `infra`,
//! `infra/vault`, the folder itself, a directory or a file inside it — may
//! point outside the repository: `push` would pack files from elsewhere and
//! `pull` would write through it. Checking only the last component of each
//! path is not enough, so every reader and writer of the vault folder goes
//! through this module:
//!
//! - [`check_folder`] walks every component below the repo root with
//!   `symlink_metadata` (which never follows) and refuses a symlink or a
//!   non-directory; the repo root itself is where git says and is not judged;
//! - [`walk`] lists the folder after that check, refusing any symlink inside;
//! - [`open_file`] and [`create_file`] open with `O_NOFOLLOW`, so a symlink
//!   planted between a check and the open fails the open instead of being
//!   followed;
//! - [`create_dirs`] creates missing directories one component at a time
//!   (0700), refusing what is not a real directory.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a `/`-separated path is not a plain relative path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.problem())]
pub enum NotPlain {
    /// The path is empty.
    Empty,
    /// The path starts at the root.
    Absolute,
    /// A `\` or a NUL: another platform's separator, or a C string's end.
    Separator,
    /// `//`, or a leading or trailing `/`.
    EmptyComponent,
    /// A `.` or `..` component.
    Dot,
}

impl NotPlain {
    /// What the path must be instead, as a message can carry it without
    /// quoting the path.
    pub fn problem(self) -> &'static str {
        match self {
            NotPlain::Empty => "must not be empty",
            NotPlain::Absolute => "must be relative, not absolute",
            NotPlain::Separator => "must use `/` as separator and contain no NUL",
            NotPlain::EmptyComponent => {
                "must not contain empty components (`//`, a leading or trailing `/`)"
            }
            NotPlain::Dot => "must name plain folders and files (no `.` or `..` components)",
        }
    }
}

/// Checks that `path` is a plain relative path: `/`-separated components,
/// none empty, `.` or `..`, no `\` or NUL — judged on the text, since
/// `Path::components` quietly drops `.` and empty components (`a/./b`,
/// `a//b`). Every path that arrives from elsewhere (a config's vault
/// folder, a bundle's entry names) is checked with this one rule before it
/// is joined to a directory.
pub fn check_plain_relative(path: &str) -> Result<(), NotPlain> {
    if path.is_empty() {
        return Err(NotPlain::Empty);
    }
    if path.starts_with('/') {
        return Err(NotPlain::Absolute);
    }
    if path.contains(['\\', '\0']) {
        return Err(NotPlain::Separator);
    }
    for component in path.split('/') {
        match component {
            "" => return Err(NotPlain::EmptyComponent),
            "." | ".." => return Err(NotPlain::Dot),
            _ => {}
        }
    }
    Ok(())
}

/// Why a path on the way to or inside the vault folder is refused. Messages
/// name the path and the fix, never file contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultPathError {
    /// A symlink on the way to or inside the vault folder (upstream's
    /// `SymlinkInVaultError`, extended to every component).
    #[error(
        "{0} is a symlink; vsync follows no symlink on the way to or inside the vault folder (it could point outside the repository) — replace it with the real directory or file, then retry"
    )]
    Symlink(PathBuf),
    /// Something other than a directory where the way to the vault folder
    /// needs one.
    #[error(
        "{0} is not a directory, but the vault folder lies below it — move it aside, then retry"
    )]
    NotADirectory(PathBuf),
    /// The configured vault folder is absolute or climbs with `..`.
    #[error(
        "the vault folder {0:?} is not a relative path below the repository root (it is absolute or contains `..`); fix `files.vaultFolder` in the env config (`vsync init --vault-folder`)"
    )]
    NotBelowRoot(PathBuf),
    /// Local I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> VaultPathError + '_ {
    move |source| VaultPathError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The components of `folder`, refusing an absolute path or `..`. `.` adds
/// nothing and is skipped.
fn components(folder: &Path) -> Result<Vec<&std::ffi::OsStr>, VaultPathError> {
    let mut parts = Vec::new();
    for component in folder.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(VaultPathError::NotBelowRoot(folder.to_path_buf()));
            }
        }
    }
    Ok(parts)
}

/// Checks every component of `folder` below `root` without following any:
/// each must be a real directory. `Ok(true)` when the whole folder exists,
/// `Ok(false)` when a component is missing (nothing to read; a writer
/// creates it with [`create_dirs`]).
pub fn check_folder(root: &Path, folder: &Path) -> Result<bool, VaultPathError> {
    let mut path = root.to_path_buf();
    for part in components(folder)? {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(VaultPathError::Symlink(path));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(VaultPathError::NotADirectory(path)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(io_at(&path)(err)),
        }
    }
    Ok(true)
}

/// What a vault folder entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory (listed before its contents).
    Dir,
    /// A regular file.
    File,
}

/// One entry of the vault folder.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path relative to the vault folder.
    pub relative: PathBuf,
    /// Directory or regular file.
    pub kind: EntryKind,
    /// Its metadata, read without following.
    pub metadata: fs::Metadata,
}

/// Every directory and regular file under `root/folder` (dotfiles
/// included), names sorted within each directory, a directory before its
/// contents. The way to the folder is checked first ([`check_folder`]); a
/// symlink anywhere inside is refused. Sockets, FIFOs and devices are
/// skipped. `Ok(None)` when the folder does not exist.
pub fn walk(root: &Path, folder: &Path) -> Result<Option<Vec<Entry>>, VaultPathError> {
    if !check_folder(root, folder)? {
        return Ok(None);
    }
    let mut entries = Vec::new();
    walk_dir(&root.join(folder), Path::new(""), &mut entries)?;
    Ok(Some(entries))
}

fn walk_dir(dir: &Path, relative: &Path, entries: &mut Vec<Entry>) -> Result<(), VaultPathError> {
    let mut listed: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_at(dir))?;
    listed.sort_by_key(fs::DirEntry::file_name);
    for item in listed {
        let path = item.path();
        // `DirEntry::metadata` does not follow symlinks.
        let metadata = item.metadata().map_err(io_at(&path))?;
        let rel = relative.join(item.file_name());
        let file_type = metadata.file_type();
        if file_type.is_symlink() {
            return Err(VaultPathError::Symlink(path));
        } else if file_type.is_dir() {
            entries.push(Entry {
                relative: rel.clone(),
                kind: EntryKind::Dir,
                metadata,
            });
            walk_dir(&path, &rel, entries)?;
        } else if file_type.is_file() {
            entries.push(Entry {
                relative: rel,
                kind: EntryKind::File,
                metadata,
            });
        }
    }
    Ok(())
}

/// A symlink met by `O_NOFOLLOW` fails the open with `ELOOP`.
fn nofollow_error(path: &Path, err: io::Error) -> VaultPathError {
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::ELOOP) {
        return VaultPathError::Symlink(path.to_path_buf());
    }
    io_at(path)(err)
}

/// Opens a vault file for reading without following a symlink in its last
/// component (the directories above it are the caller's [`check_folder`] /
/// [`walk`]).
pub fn open_file(path: &Path) -> Result<fs::File, VaultPathError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let file = options
        .open(path)
        .map_err(|err| nofollow_error(path, err))?;
    let meta = file.metadata().map_err(io_at(path))?;
    if !meta.is_file() {
        return Err(io_at(path)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    Ok(file)
}

/// Creates a new private file (0600) for writing; fails if anything exists
/// at `path`, so neither a symlink nor another file is ever written through.
pub fn create_file(path: &Path) -> Result<fs::File, VaultPathError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|err| nofollow_error(path, err))
}

/// Creates `root/folder` and its missing parents below `root`, one
/// component at a time (0700), refusing a symlink or a non-directory on the
/// way. An existing directory keeps its mode.
pub fn create_dirs(root: &Path, folder: &Path) -> Result<(), VaultPathError> {
    let parts = components(folder)?;
    // The root is where the caller says (git's worktree, a restore
    // target); only what lies below it is judged.
    let mut root_builder = fs::DirBuilder::new();
    root_builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut root_builder, 0o700);
    root_builder.create(root).map_err(io_at(root))?;
    let mut path = root.to_path_buf();
    for part in parts {
        path.push(part);
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&path) {
            Ok(()) => continue,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(io_at(&path)(err)),
        }
        // `mkdir` does not follow a symlink in the last component: it
        // fails with `EEXIST`, and the symlink is judged here.
        let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
        if meta.file_type().is_symlink() {
            return Err(VaultPathError::Symlink(path));
        } else if !meta.is_dir() {
            return Err(VaultPathError::NotADirectory(path));
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn only_plain_relative_paths_pass() {
        for plain in [
            "a",
            "infra/vault/dev",
            "v/tls/server.key",
            "..a/b..",
            ".env.dev",
        ] {
            assert_eq!(check_plain_relative(plain), Ok(()), "{plain}");
        }
        for (path, problem) in [
            ("", NotPlain::Empty),
            ("/etc", NotPlain::Absolute),
            ("a\\b", NotPlain::Separator),
            ("a\0b", NotPlain::Separator),
            ("v//x", NotPlain::EmptyComponent),
            ("v/", NotPlain::EmptyComponent),
            ("v/./x", NotPlain::Dot),
            ("v/../x", NotPlain::Dot),
            ("..", NotPlain::Dot),
        ] {
            assert_eq!(check_plain_relative(path), Err(problem), "{path:?}");
        }
    }

    #[test]
    fn every_component_is_checked_not_only_the_last() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("vault/dev")).unwrap();
        fs::write(outside.join("vault/dev/.env.dev"), "STOLEN=1").unwrap();
        fs::create_dir_all(&root).unwrap();
        let folder = Path::new("infra/vault/dev");

        assert!(!check_folder(&root, folder).unwrap());
        assert!(walk(&root, folder).unwrap().is_none());

        // `infra` is a symlink to a tree outside the repository.
        symlink(&outside, root.join("infra")).unwrap();
        let err = check_folder(&root, folder).unwrap_err();
        assert!(
            matches!(&err, VaultPathError::Symlink(p) if p == &root.join("infra")),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("replace it with the real directory")
        );
        assert!(walk(&root, folder).is_err());
        assert!(create_dirs(&root, folder).is_err());

        // `infra/vault` is the symlink.
        fs::remove_file(root.join("infra")).unwrap();
        fs::create_dir(root.join("infra")).unwrap();
        symlink(outside.join("vault"), root.join("infra/vault")).unwrap();
        assert!(matches!(
            check_folder(&root, folder),
            Err(VaultPathError::Symlink(p)) if p == root.join("infra/vault")
        ));

        // The folder itself.
        fs::remove_file(root.join("infra/vault")).unwrap();
        fs::create_dir(root.join("infra/vault")).unwrap();
        symlink(outside.join("vault/dev"), root.join("infra/vault/dev")).unwrap();
        assert!(matches!(
            check_folder(&root, folder),
            Err(VaultPathError::Symlink(p)) if p == root.join("infra/vault/dev")
        ));
        assert!(matches!(
            create_dirs(&root, folder),
            Err(VaultPathError::Symlink(_))
        ));

        // A file where a directory belongs.
        fs::remove_file(root.join("infra/vault/dev")).unwrap();
        fs::write(root.join("infra/vault/dev"), "x").unwrap();
        assert!(matches!(
            check_folder(&root, folder),
            Err(VaultPathError::NotADirectory(_))
        ));
    }

    #[test]
    fn walk_refuses_symlinked_directories_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let vault = root.join("infra/vault/dev");
        fs::create_dir_all(vault.join("tls")).unwrap();
        fs::write(vault.join(".env.dev"), "A=1").unwrap();
        fs::write(vault.join("tls/a.crt"), "C").unwrap();
        let entries = walk(&root, Path::new("infra/vault/dev")).unwrap().unwrap();
        let names: Vec<_> = entries
            .iter()
            .map(|e| (e.relative.to_str().unwrap().to_owned(), e.kind))
            .collect();
        assert_eq!(
            names,
            [
                (".env.dev".to_owned(), EntryKind::File),
                ("tls".to_owned(), EntryKind::Dir),
                ("tls/a.crt".to_owned(), EntryKind::File),
            ]
        );
        symlink(tmp.path(), vault.join("tls/up")).unwrap();
        assert!(matches!(
            walk(&root, Path::new("infra/vault/dev")),
            Err(VaultPathError::Symlink(p)) if p == vault.join("tls/up")
        ));
    }

    #[test]
    fn climbing_or_absolute_folders_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for folder in ["../elsewhere", "/etc", "infra/../../x"] {
            let err = check_folder(tmp.path(), Path::new(folder)).unwrap_err();
            assert!(matches!(err, VaultPathError::NotBelowRoot(_)), "{folder}");
        }
    }

    #[test]
    fn opens_do_not_follow_a_symlinked_last_component() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::write(&target, "outside").unwrap();
        let link = tmp.path().join("link");
        symlink(&target, &link).unwrap();
        assert!(matches!(open_file(&link), Err(VaultPathError::Symlink(_))));
        assert!(create_file(&link).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"outside");
        let fresh = tmp.path().join("fresh");
        drop(create_file(&fresh).unwrap());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
