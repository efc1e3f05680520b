//! The bundle payload: a zip of the vault folder, entry names relative to the
//! repository root (e.g. `infra/vault/dev/.env.dev`), as the upstream CLI
//! writes it.
//!
//! Packing refuses symlinks inside the vault folder. Unpacking writes only
//! inside the vault folder: an entry that is absolute, climbs with `..`,
//! lies outside the folder or is a symlink is refused before anything is
//! written (zip-slip). Files are written 0600 and directories 0700.

use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::path::{Component, Path, PathBuf};

use vsync_crypto::Zeroizing;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Why a vault folder could not be packed or unpacked. Messages name paths,
/// never contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A symlink inside the vault folder (upstream's `SymlinkInVaultError`).
    #[error(
        "{0} is a symlink; vsync refuses symlinks inside the vault folder — replace it with the file itself"
    )]
    Symlink(PathBuf),
    /// A zip entry that would land outside the vault folder.
    #[error(
        "bundle entry {0:?} would be written outside the vault folder; refusing the whole bundle"
    )]
    UnsafeEntry(String),
    /// The zip is unreadable.
    #[error("the bundle's zip is damaged: {0}")]
    Corrupt(String),
    /// Local I/O failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Zips every regular file under `repo_root/vault_folder` (sorted, dotfiles
/// included) with names relative to `repo_root`. A missing folder packs to
/// an empty zip.
pub fn pack(repo_root: &Path, vault_folder: &Path) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    let mut files = Vec::new();
    collect_files(&repo_root.join(vault_folder), &mut files)?;
    files.sort();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o600);
    for file in files {
        let name = relative_name(repo_root, &file);
        let contents = Zeroizing::new(fs::read(&file).map_err(io_at(&file))?);
        zip.start_file(name, options)
            .and_then(|()| zip.write_all(&contents).map_err(Into::into))
            .map_err(|err| BundleError::Corrupt(err.to_string()))?;
    }
    let cursor = zip
        .finish()
        .map_err(|err| BundleError::Corrupt(err.to_string()))?;
    Ok(Zeroizing::new(cursor.into_inner()))
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), BundleError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_at(dir)(err)),
    };
    for entry in entries {
        let entry = entry.map_err(io_at(dir))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_at(&path))?;
        if file_type.is_symlink() {
            return Err(BundleError::Symlink(path));
        } else if file_type.is_dir() {
            collect_files(&path, files)?;
        } else if file_type.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

fn relative_name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("collected files are below the root")
        .components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// One entry checked and resolved to its destination.
struct Planned {
    index: usize,
    destination: PathBuf,
    is_dir: bool,
}

/// Extracts `zip` into `repo_root`, accepting only entries inside
/// `vault_folder`. Every entry is validated before the first write, so a
/// hostile bundle writes nothing. Returns the files written, relative to the
/// vault folder.
pub fn unpack(
    zip: &[u8],
    repo_root: &Path,
    vault_folder: &Path,
) -> Result<Vec<String>, BundleError> {
    let mut archive =
        ZipArchive::new(Cursor::new(zip)).map_err(|err| BundleError::Corrupt(err.to_string()))?;
    let vault_prefix = format!(
        "{}/",
        relative_name(Path::new(""), vault_folder).trim_end_matches('/')
    );
    let mut plan = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|err| BundleError::Corrupt(err.to_string()))?;
        let name = entry.name().to_owned();
        let unsafe_entry = || BundleError::UnsafeEntry(name.clone());
        let is_symlink = entry
            .unix_mode()
            .is_some_and(|mode| mode & 0o170_000 == 0o120_000);
        // Info-ZIP's `zip -r <folder>` (upstream's push) stores the folder
        // itself as a directory entry first; it adds nothing to extract.
        if name == vault_prefix && entry.is_dir() && !is_symlink {
            continue;
        }
        let path = Path::new(&name);
        let climbs = path
            .components()
            .any(|component| !matches!(component, Component::Normal(_)));
        if is_symlink
            || climbs
            || name.contains('\\')
            || !name.starts_with(&vault_prefix)
            || name == vault_prefix
        {
            return Err(unsafe_entry());
        }
        plan.push(Planned {
            index,
            destination: repo_root.join(path),
            is_dir: entry.is_dir(),
        });
    }
    let mut written = Vec::new();
    for planned in plan {
        if planned.is_dir {
            create_private_dir_all(&planned.destination)?;
            continue;
        }
        let mut entry = archive
            .by_index(planned.index)
            .map_err(|err| BundleError::Corrupt(err.to_string()))?;
        let mut contents = Zeroizing::new(Vec::new());
        entry
            .read_to_end(&mut contents)
            .map_err(|err| BundleError::Corrupt(err.to_string()))?;
        let parent = planned
            .destination
            .parent()
            .expect("entries have a parent below the root");
        create_private_dir_all(parent)?;
        write_private(&planned.destination, &contents)?;
        written.push(entry.name()[vault_prefix.len()..].to_owned());
    }
    Ok(written)
}

fn create_private_dir_all(dir: &Path) -> Result<(), BundleError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_at(dir))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), BundleError> {
    // Refuse to follow a symlink planted where a file will be written.
    if fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(BundleError::Symlink(path.to_path_buf()));
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_at(path))?;
    file.write_all(contents).map_err(io_at(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // `mode` only applies to new files; an existing one is narrowed too.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_at(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, contents: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, contents) in entries {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(contents).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn round_trips_env_file_nested_asset_and_binary() {
        let source = tempfile::tempdir().unwrap();
        let vault = Path::new("infra/vault/dev");
        write(
            source.path(),
            "infra/vault/dev/.env.dev",
            b"DATABASE_URL=postgres://x\n",
        );
        write(
            source.path(),
            "infra/vault/dev/gcp/sa.json",
            b"{\"type\":\"service_account\"}",
        );
        write(
            source.path(),
            "infra/vault/dev/tls.bin",
            &[0, 159, 146, 150, 255],
        );
        write(source.path(), "infra/vault/prod/.env.prod", b"NOT=packed");
        let zip = pack(source.path(), vault).unwrap();

        let names: Vec<String> = {
            let archive = ZipArchive::new(Cursor::new(zip.as_slice())).unwrap();
            archive.file_names().map(str::to_owned).collect()
        };
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "infra/vault/dev/.env.dev",
                "infra/vault/dev/gcp/sa.json",
                "infra/vault/dev/tls.bin"
            ]
        );

        let target = tempfile::tempdir().unwrap();
        let mut written = unpack(&zip, target.path(), vault).unwrap();
        written.sort();
        assert_eq!(written, [".env.dev", "gcp/sa.json", "tls.bin"]);
        assert_eq!(
            fs::read(target.path().join("infra/vault/dev/tls.bin")).unwrap(),
            [0, 159, 146, 150, 255]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                fs::metadata(target.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("infra/vault/dev/.env.dev"), 0o600);
            assert_eq!(mode("infra/vault/dev/gcp"), 0o700);
        }
    }

    #[test]
    fn info_zip_directory_entries_are_accepted() {
        // `zip -r out.zip infra/vault/dev` stores the folder and every
        // subfolder as entries of their own, before the files.
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default();
        zip.add_directory("infra/vault/dev/", options).unwrap();
        zip.add_directory("infra/vault/dev/tls/", options).unwrap();
        zip.start_file("infra/vault/dev/tls/server.crt", options)
            .unwrap();
        zip.write_all(b"CERT").unwrap();
        let zip = zip.finish().unwrap().into_inner();
        let target = tempfile::tempdir().unwrap();
        let written = unpack(&zip, target.path(), Path::new("infra/vault/dev")).unwrap();
        assert_eq!(written, ["tls/server.crt"]);
        assert_eq!(
            fs::read(target.path().join("infra/vault/dev/tls/server.crt")).unwrap(),
            b"CERT"
        );
        // A directory entry for another folder is still refused.
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.add_directory("infra/vault/", options).unwrap();
        let zip = zip.finish().unwrap().into_inner();
        let err = unpack(&zip, target.path(), Path::new("infra/vault/dev")).unwrap_err();
        assert!(matches!(err, BundleError::UnsafeEntry(_)), "{err}");
    }

    #[test]
    fn hostile_entries_write_nothing() {
        let vault = Path::new("infra/vault/dev");
        for name in [
            "infra/vault/dev/../../../escape",
            "/etc/cron.d/evil",
            "infra/vault/prod/.env.prod",
            "infra/vault/dev\\..\\x",
            "README.md",
        ] {
            let target = tempfile::tempdir().unwrap();
            // A legitimate entry first: it must not be written either.
            let zip = zip_of(&[("infra/vault/dev/.env.dev", b"A=1"), (name, b"pwned")]);
            let err = unpack(&zip, target.path(), vault).unwrap_err();
            assert!(matches!(err, BundleError::UnsafeEntry(_)), "{name}: {err}");
            assert_eq!(
                fs::read_dir(target.path()).unwrap().count(),
                0,
                "{name} wrote something"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_both_ways() {
        let source = tempfile::tempdir().unwrap();
        write(source.path(), "infra/vault/dev/.env.dev", b"A=1");
        std::os::unix::fs::symlink("/etc/passwd", source.path().join("infra/vault/dev/link"))
            .unwrap();
        let err = pack(source.path(), Path::new("infra/vault/dev")).unwrap_err();
        assert!(matches!(err, BundleError::Symlink(_)), "{err}");

        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.add_symlink(
            "infra/vault/dev/link",
            "/etc/passwd",
            SimpleFileOptions::default(),
        )
        .unwrap();
        let zip = zip.finish().unwrap().into_inner();
        let target = tempfile::tempdir().unwrap();
        let err = unpack(&zip, target.path(), Path::new("infra/vault/dev")).unwrap_err();
        assert!(matches!(err, BundleError::UnsafeEntry(_)), "{err}");

        // A symlink planted where a file will be extracted is not followed.
        let planted = tempfile::tempdir().unwrap();
        fs::create_dir_all(planted.path().join("infra/vault/dev")).unwrap();
        let outside = planted.path().join("outside");
        std::os::unix::fs::symlink(&outside, planted.path().join("infra/vault/dev/.env.dev"))
            .unwrap();
        let zip = zip_of(&[("infra/vault/dev/.env.dev", b"A=1")]);
        let err = unpack(&zip, planted.path(), Path::new("infra/vault/dev")).unwrap_err();
        assert!(matches!(err, BundleError::Symlink(_)), "{err}");
        assert!(!outside.exists());
    }

    #[test]
    fn garbage_is_corrupt() {
        let target = tempfile::tempdir().unwrap();
        let err = unpack(b"not a zip", target.path(), Path::new("v")).unwrap_err();
        assert!(matches!(err, BundleError::Corrupt(_)), "{err}");
    }
}
