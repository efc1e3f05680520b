//! The bundle payload: a zip of the vault folder, entry names relative to the
//! repository root (e.g. `infra/vault/dev/.env.dev`), as the upstream CLI
//! writes it.
//!
//! Both directions go through [`vault_fs`]: no symlink is followed on the way
//! from the repository root to the vault folder or inside it, and files are
//! opened with `O_NOFOLLOW`. Unpacking writes only inside the vault folder:
//! an entry that is absolute, climbs with `..`, lies outside the folder or is
//! a symlink is refused before anything is written (zip-slip). Files are
//! written 0600 and directories 0700.
//!
//! A bundle is hostile input even when it decrypts: a few hundred kilobytes
//! of deflate can inflate to gigabytes. [`Limits`] caps the bytes of each
//! entry, the total and the number of entries; the caps are enforced on the
//! bytes actually inflated (never on the sizes the zip declares), and every
//! entry is inflated and measured before the first byte is written, so a
//! refused bundle writes nothing.

use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::path::{Component, Path, PathBuf};

use vsync_crypto::Zeroizing;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::vault_fs::{self, EntryKind, VaultPathError};

/// The variable overriding [`Limits::max_entry_bytes`].
pub const MAX_ENTRY_BYTES_VAR: &str = "VSYNC_MAX_ENTRY_BYTES";
/// The variable overriding [`Limits::max_total_bytes`].
pub const MAX_BUNDLE_BYTES_VAR: &str = "VSYNC_MAX_BUNDLE_BYTES";
/// The variable overriding [`Limits::max_entries`].
pub const MAX_BUNDLE_ENTRIES_VAR: &str = "VSYNC_MAX_BUNDLE_ENTRIES";

/// How much a bundle may hold once inflated. A vault folder is a `.env`
/// file and a few certificates and keys: the defaults leave two orders of
/// magnitude of room and stop a decompression bomb well before it exhausts
/// memory or disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one file, inflated (default 64 MiB,
    /// `VSYNC_MAX_ENTRY_BYTES`).
    pub max_entry_bytes: u64,
    /// Bytes of all files together, inflated (default 256 MiB,
    /// `VSYNC_MAX_BUNDLE_BYTES`).
    pub max_total_bytes: u64,
    /// Zip entries, directories included (default 10,000,
    /// `VSYNC_MAX_BUNDLE_ENTRIES`).
    pub max_entries: u64,
}

impl Limits {
    /// The documented defaults.
    pub const DEFAULT: Limits = Limits {
        max_entry_bytes: 64 << 20,
        max_total_bytes: 256 << 20,
        max_entries: 10_000,
    };

    /// The defaults, each overridden by its environment variable when set.
    /// A value that is not a positive whole number is an error, never
    /// silently ignored.
    pub fn from_env() -> Result<Limits, BundleError> {
        Self::from_lookup(|var| std::env::var_os(var).map(|v| v.to_string_lossy().into_owned()))
    }

    /// [`Limits::from_env`] over any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Limits, BundleError> {
        let read = |var: &'static str, default: u64| -> Result<u64, BundleError> {
            match lookup(var) {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(BundleError::InvalidLimit { var, value }),
            }
        };
        Ok(Limits {
            max_entry_bytes: read(MAX_ENTRY_BYTES_VAR, Self::DEFAULT.max_entry_bytes)?,
            max_total_bytes: read(MAX_BUNDLE_BYTES_VAR, Self::DEFAULT.max_total_bytes)?,
            max_entries: read(MAX_BUNDLE_ENTRIES_VAR, Self::DEFAULT.max_entries)?,
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a vault folder could not be packed or unpacked. Messages name paths,
/// never contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A symlink or a non-directory on the way to or inside the vault
    /// folder, or a vault folder outside the repository.
    #[error(transparent)]
    Path(#[from] VaultPathError),
    /// A zip entry that would land outside the vault folder.
    #[error(
        "bundle entry {0:?} would be written outside the vault folder; refusing the whole bundle"
    )]
    UnsafeEntry(String),
    /// The zip is unreadable.
    #[error("the bundle's zip is damaged: {0}")]
    Corrupt(String),
    /// An entry inflates past [`Limits::max_entry_bytes`].
    #[error(
        "bundle entry {name:?} inflates past the limit of {limit} bytes per file; refusing the whole bundle, nothing was written (if the file is genuine, raise {MAX_ENTRY_BYTES_VAR})"
    )]
    EntryTooLarge {
        /// The entry's name.
        name: String,
        /// The limit.
        limit: u64,
    },
    /// The entries together inflate past [`Limits::max_total_bytes`].
    #[error(
        "the bundle inflates past the limit of {limit} bytes in total; refusing the whole bundle, nothing was written (if it is genuine, raise {MAX_BUNDLE_BYTES_VAR})"
    )]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// More entries than [`Limits::max_entries`].
    #[error(
        "the bundle holds {count} entries, more than the limit of {limit}; refusing the whole bundle, nothing was written (if it is genuine, raise {MAX_BUNDLE_ENTRIES_VAR})"
    )]
    TooManyEntries {
        /// Entries in the zip.
        count: u64,
        /// The limit.
        limit: u64,
    },
    /// The vault folder is too large to pack within [`Limits`]: no machine
    /// with the same limits could unpack the bundle.
    #[error(
        "{what}; nothing was pushed — move large files out of the vault folder, or raise {var} on every machine that pulls or reads this env"
    )]
    FolderTooLarge {
        /// What is over which limit.
        what: String,
        /// The variable that raises it.
        var: &'static str,
    },
    /// A limit variable holds something other than a positive whole number.
    #[error("{var}={value:?} is not a positive whole number; unset it or give a byte count")]
    InvalidLimit {
        /// The variable.
        var: &'static str,
        /// Its value (a setting, not a secret).
        value: String,
    },
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

/// The bytes moved per read: a bounded, wiped buffer, so neither a whole
/// entry nor an unwiped copy of it is ever held by the copy itself.
const CHUNK: usize = 64 << 10;

/// Copies at most `budget` bytes from `reader` to `writer` through a wiped
/// buffer. Returns the bytes copied and whether the reader had more (the
/// budget was exceeded; the extra bytes are read but never written).
fn copy_bounded(
    reader: &mut impl Read,
    writer: &mut impl Write,
    budget: u64,
) -> io::Result<(u64, bool)> {
    let mut buffer = Zeroizing::new(vec![0u8; CHUNK]);
    let mut limited = reader.take(budget.saturating_add(1));
    let mut copied = 0u64;
    loop {
        let read = match limited.read(&mut buffer) {
            Ok(0) => return Ok((copied, false)),
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        let room = usize::try_from(budget - copied).unwrap_or(usize::MAX);
        if read > room {
            writer.write_all(&buffer[..room])?;
            return Ok((budget, true));
        }
        writer.write_all(&buffer[..read])?;
        copied += read as u64;
    }
}

/// The POSIX form of a relative path (`.` components dropped).
fn posix(path: &Path) -> String {
    path.components()
        .filter_map(|component| match component {
            Component::Normal(part) => Some(part.to_string_lossy()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Zips every regular file under `repo_root/vault_folder` (sorted, dotfiles
/// included) with names relative to `repo_root`, within the limits of the
/// environment ([`Limits::from_env`]). A missing folder packs to an empty
/// zip.
pub fn pack(repo_root: &Path, vault_folder: &Path) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    pack_with(repo_root, vault_folder, &Limits::from_env()?)
}

/// [`pack`] within `limits`: a folder no reader with the same limits could
/// unpack is refused.
pub fn pack_with(
    repo_root: &Path,
    vault_folder: &Path,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    let entries = vault_fs::walk(repo_root, vault_folder)?.unwrap_or_default();
    let files: Vec<_> = entries
        .iter()
        .filter(|entry| entry.kind == EntryKind::File)
        .collect();
    if files.len() as u64 > limits.max_entries {
        return Err(BundleError::FolderTooLarge {
            what: format!(
                "the vault folder holds {} files, more than the limit of {}",
                files.len(),
                limits.max_entries
            ),
            var: MAX_BUNDLE_ENTRIES_VAR,
        });
    }
    let prefix = posix(vault_folder);
    let folder = repo_root.join(vault_folder);
    // Sized up front from the files' sizes (deflate rarely grows data), so
    // the buffer holding the zip seldom reallocates and leaves few unwiped
    // copies behind.
    let declared: u64 = files.iter().map(|entry| entry.metadata.len()).sum();
    let reserve = declared.min(limits.max_total_bytes) + 512 * files.len() as u64 + 1024;
    let buffer = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    let mut zip = ZipWriter::new(Cursor::new(buffer));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o600);
    let damaged = |err: zip::result::ZipError| BundleError::Corrupt(err.to_string());
    let mut total = 0u64;
    for entry in files {
        let path = folder.join(&entry.relative);
        let name = [prefix.as_str(), &posix(&entry.relative)]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let mut file = vault_fs::open_file(&path)?;
        zip.start_file(name, options).map_err(damaged)?;
        let budget = limits.max_entry_bytes.min(limits.max_total_bytes - total);
        let (copied, over) = copy_bounded(&mut file, &mut zip, budget).map_err(io_at(&path))?;
        if over {
            let (what, var) = if budget == limits.max_entry_bytes {
                (
                    format!(
                        "{} is larger than the limit of {} bytes per file",
                        path.display(),
                        limits.max_entry_bytes
                    ),
                    MAX_ENTRY_BYTES_VAR,
                )
            } else {
                (
                    format!(
                        "the vault folder {} holds more than the limit of {} bytes in total",
                        folder.display(),
                        limits.max_total_bytes
                    ),
                    MAX_BUNDLE_BYTES_VAR,
                )
            };
            return Err(BundleError::FolderTooLarge { what, var });
        }
        total += copied;
    }
    let cursor = zip.finish().map_err(damaged)?;
    Ok(Zeroizing::new(cursor.into_inner()))
}

/// One file entry checked and resolved to its destination.
struct Planned {
    index: usize,
    /// The entry name, relative to the repository root.
    name: String,
}

/// Extracts `zip` into `repo_root`, accepting only entries inside
/// `vault_folder`, within the limits of the environment
/// ([`Limits::from_env`]). Returns the files written, relative to the vault
/// folder.
pub fn unpack(
    zip: &[u8],
    repo_root: &Path,
    vault_folder: &Path,
) -> Result<Vec<String>, BundleError> {
    unpack_with(zip, repo_root, vault_folder, &Limits::from_env()?)
}

/// [`unpack`] within `limits`. Every entry is validated — its name, its
/// destination, and its inflated size against `limits` — before the first
/// write, so a hostile bundle writes nothing. Each file is then streamed to
/// a private temporary sibling and renamed into place.
pub fn unpack_with(
    zip: &[u8],
    repo_root: &Path,
    vault_folder: &Path,
    limits: &Limits,
) -> Result<Vec<String>, BundleError> {
    let damaged = |err: zip::result::ZipError| BundleError::Corrupt(err.to_string());
    let mut archive = ZipArchive::new(Cursor::new(zip)).map_err(damaged)?;
    let count = archive.len() as u64;
    if count > limits.max_entries {
        return Err(BundleError::TooManyEntries {
            count,
            limit: limits.max_entries,
        });
    }
    // The way to the vault folder is judged before the entries: a symlinked
    // `infra` refuses the pull whatever the bundle holds.
    vault_fs::check_folder(repo_root, vault_folder)?;
    let vault_prefix = format!("{}/", posix(vault_folder));
    let mut dirs = Vec::new();
    let mut plan = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(damaged)?;
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
        // A name must be exactly the plain path it will be written at (a
        // directory's ends with `/`).
        let plain = vault_fs::check_plain_relative(name.strip_suffix('/').unwrap_or(&name)).is_ok();
        if is_symlink || !plain || !name.starts_with(&vault_prefix) || name == vault_prefix {
            return Err(unsafe_entry());
        }
        // The header's size is only a hint for an early refusal; the bytes
        // actually inflated are what count below.
        if !entry.is_dir() && entry.size() > limits.max_entry_bytes {
            return Err(BundleError::EntryTooLarge {
                name,
                limit: limits.max_entry_bytes,
            });
        }
        let parent = if entry.is_dir() {
            path
        } else {
            path.parent().expect("entries have a parent below the root")
        };
        // A symlink planted inside the vault folder, on the way to an
        // entry or where it will be written, refuses the bundle up front.
        vault_fs::check_folder(repo_root, parent)?;
        if entry.is_dir() {
            dirs.push(name);
            continue;
        }
        let destination = repo_root.join(path);
        match fs::symlink_metadata(&destination) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(VaultPathError::Symlink(destination).into());
            }
            Ok(meta) if meta.is_dir() => {
                return Err(VaultPathError::Io {
                    path: destination,
                    source: io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "a directory is where the bundle has a file; move it aside",
                    ),
                }
                .into());
            }
            _ => {}
        }
        plan.push(Planned { index, name });
    }

    // Inflate every file into nothing first: the caps are judged on the
    // bytes that come out, before anything touches the disk.
    let mut total = 0u64;
    for planned in &plan {
        let mut entry = archive.by_index(planned.index).map_err(damaged)?;
        let budget = limits.max_entry_bytes.min(limits.max_total_bytes - total);
        let (inflated, over) = copy_bounded(&mut entry, &mut io::sink(), budget)
            .map_err(|err| BundleError::Corrupt(format!("entry {:?}: {err}", planned.name)))?;
        if over {
            return Err(if budget == limits.max_entry_bytes {
                BundleError::EntryTooLarge {
                    name: planned.name.clone(),
                    limit: limits.max_entry_bytes,
                }
            } else {
                BundleError::TooLarge {
                    limit: limits.max_total_bytes,
                }
            });
        }
        total += inflated;
    }

    for dir in &dirs {
        vault_fs::create_dirs(repo_root, Path::new(dir))?;
    }
    let mut written = Vec::with_capacity(plan.len());
    let mut total = 0u64;
    for planned in plan {
        let path = Path::new(&planned.name);
        let parent = path.parent().expect("entries have a parent below the root");
        vault_fs::create_dirs(repo_root, parent)?;
        let mut entry = archive.by_index(planned.index).map_err(damaged)?;
        // The same bytes as the first pass (the zip is in memory), but
        // bounded again rather than trusted.
        let budget = limits.max_entry_bytes.min(limits.max_total_bytes - total);
        total += write_private(&repo_root.join(path), &mut entry, budget, &planned.name)?;
        written.push(planned.name[vault_prefix.len()..].to_owned());
    }
    Ok(written)
}

/// Streams `reader` into a new private temporary sibling of `path` (0600,
/// never following a symlink), then renames it over `path`: a failure
/// leaves `path` as it was, and a symlink raced into `path` is replaced,
/// never written through.
fn write_private(
    path: &Path,
    reader: &mut impl Read,
    budget: u64,
    name: &str,
) -> Result<u64, BundleError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(path.file_name().expect("entries have a file name"));
    temp_name.push(format!(
        ".vsync-tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = path.with_file_name(temp_name);
    let mut file = vault_fs::create_file(&temp)?;
    let result = (|| {
        let (copied, over) = copy_bounded(reader, &mut file, budget).map_err(io_at(path))?;
        if over {
            return Err(BundleError::EntryTooLarge {
                name: name.to_owned(),
                limit: budget,
            });
        }
        file.sync_all().map_err(io_at(path))?;
        fs::rename(&temp, path).map_err(io_at(path))?;
        Ok(copied)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
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
            // `Path::components` would quietly normalise these two.
            "infra/vault/dev/./x",
            "infra/vault/dev//x",
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
        assert!(
            matches!(err, BundleError::Path(VaultPathError::Symlink(_))),
            "{err}"
        );

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
        assert!(
            matches!(err, BundleError::Path(VaultPathError::Symlink(_))),
            "{err}"
        );
        assert!(!outside.exists());
    }

    /// A repository whose `link` component is a symlink to a directory
    /// outside it holding `vault/dev/.env.dev`, for each way a symlinked
    /// directory can sit on the way to or inside the vault folder.
    #[cfg(unix)]
    fn symlinked_layouts() -> Vec<(tempfile::TempDir, PathBuf, PathBuf, &'static str)> {
        let mut layouts = Vec::new();
        for (link, target) in [
            ("infra", ""),
            ("infra/vault", "vault"),
            ("infra/vault/dev", "vault/dev"),
            ("infra/vault/dev/tls", "vault/dev"),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let repo = tmp.path().join("repo");
            let outside = tmp.path().join("outside");
            write(&outside, "vault/dev/.env.dev", b"OUTSIDE=1");
            write(&repo, "infra/vault/dev/.env.dev", b"A=1");
            let link_path = repo.join(link);
            if link_path.exists() {
                fs::remove_dir_all(&link_path).unwrap();
            }
            fs::create_dir_all(link_path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(outside.join(target), &link_path).unwrap();
            layouts.push((tmp, repo, outside, link));
        }
        layouts
    }

    #[cfg(unix)]
    #[test]
    fn pack_refuses_a_symlinked_directory_anywhere_from_the_repo_root() {
        for (_tmp, repo, _outside, link) in symlinked_layouts() {
            let err = pack(&repo, Path::new("infra/vault/dev")).unwrap_err();
            assert!(
                matches!(&err, BundleError::Path(VaultPathError::Symlink(p)) if p == &repo.join(link)),
                "{link}: {err}"
            );
            assert!(err.to_string().contains(link), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn unpack_refuses_a_symlinked_directory_anywhere_and_writes_nothing() {
        let zip = zip_of(&[
            ("infra/vault/dev/.env.dev", b"PULLED=1"),
            ("infra/vault/dev/tls/server.key", b"KEY"),
        ]);
        for (_tmp, repo, outside, link) in symlinked_layouts() {
            let err = unpack(&zip, &repo, Path::new("infra/vault/dev")).unwrap_err();
            assert!(
                matches!(&err, BundleError::Path(VaultPathError::Symlink(p)) if p == &repo.join(link)),
                "{link}: {err}"
            );
            assert_eq!(
                fs::read(outside.join("vault/dev/.env.dev")).unwrap(),
                b"OUTSIDE=1",
                "{link}: written through"
            );
            assert!(!outside.join("vault/dev/tls").exists(), "{link}");
            assert!(!outside.join("vault/dev/server.key").exists(), "{link}");
        }
    }

    fn limits(entry: u64, total: u64, entries: u64) -> Limits {
        Limits {
            max_entry_bytes: entry,
            max_total_bytes: total,
            max_entries: entries,
        }
    }

    /// A deflated zip of `entries`, then every size field rewritten to
    /// claim `declared` bytes (the bomb's lie).
    fn lying_zip(entries: &[(&str, &[u8])], declared: u32) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, contents) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(contents).unwrap();
        }
        let mut bytes = zip.finish().unwrap().into_inner();
        let patch = |bytes: &mut Vec<u8>, signature: &[u8; 4], offset: usize| {
            let mut at = 0;
            while let Some(found) = bytes[at..].windows(4).position(|w| w == signature) {
                let field = at + found + offset;
                bytes[field..field + 4].copy_from_slice(&declared.to_le_bytes());
                at += found + 4;
            }
        };
        // Local file header: uncompressed size at 22; central directory
        // header: at 24.
        patch(&mut bytes, b"PK\x03\x04", 22);
        patch(&mut bytes, b"PK\x01\x02", 24);
        bytes
    }

    #[test]
    fn an_entry_lying_about_its_size_is_refused_on_inflated_bytes_and_writes_nothing() {
        let bomb = vec![0u8; 1 << 20];
        let zip = lying_zip(
            &[
                ("infra/vault/dev/.env.dev", b"A=1"),
                ("infra/vault/dev/bomb", &bomb),
            ],
            16,
        );
        assert!(zip.len() < 8 << 10, "{}", zip.len());
        let target = tempfile::tempdir().unwrap();
        let err = unpack_with(
            &zip,
            target.path(),
            Path::new("infra/vault/dev"),
            &limits(64 << 10, 1 << 30, 100),
        )
        .unwrap_err();
        assert!(
            matches!(&err, BundleError::EntryTooLarge { name, limit: 65_536 } if name == "infra/vault/dev/bomb"),
            "{err}"
        );
        assert!(err.to_string().contains(MAX_ENTRY_BYTES_VAR), "{err}");
        assert_eq!(fs::read_dir(target.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_bomb_past_the_default_per_entry_limit_is_refused() {
        // 65 MiB of zeros deflate to about 65 KiB.
        let bomb = vec![0u8; (64 << 20) + (1 << 20)];
        let zip = lying_zip(&[("infra/vault/dev/bomb", &bomb)], 1);
        drop(bomb);
        let target = tempfile::tempdir().unwrap();
        let err = unpack_with(
            &zip,
            target.path(),
            Path::new("infra/vault/dev"),
            &Limits::DEFAULT,
        )
        .unwrap_err();
        assert!(matches!(err, BundleError::EntryTooLarge { .. }), "{err}");
        assert_eq!(fs::read_dir(target.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_total_past_the_limit_writes_nothing() {
        let part = vec![7u8; 40 << 10];
        let zip = zip_of(&[
            ("infra/vault/dev/a", &part),
            ("infra/vault/dev/b", &part),
            ("infra/vault/dev/c", &part),
        ]);
        let target = tempfile::tempdir().unwrap();
        let tight = limits(64 << 10, 100 << 10, 100);
        let err =
            unpack_with(&zip, target.path(), Path::new("infra/vault/dev"), &tight).unwrap_err();
        assert!(
            matches!(err, BundleError::TooLarge { limit } if limit == 100 << 10),
            "{err}"
        );
        assert_eq!(fs::read_dir(target.path()).unwrap().count(), 0);
        // Within the limits the same bundle unpacks.
        let roomy = limits(64 << 10, 120 << 10, 100);
        let written =
            unpack_with(&zip, target.path(), Path::new("infra/vault/dev"), &roomy).unwrap();
        assert_eq!(written, ["a", "b", "c"]);
    }

    #[test]
    fn too_many_entries_are_refused_before_any_is_read() {
        let names: Vec<String> = (0..50).map(|i| format!("infra/vault/dev/f{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let zip = zip_of(&entries);
        let target = tempfile::tempdir().unwrap();
        let err = unpack_with(
            &zip,
            target.path(),
            Path::new("infra/vault/dev"),
            &limits(1 << 20, 1 << 20, 49),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::TooManyEntries {
                    count: 50,
                    limit: 49
                }
            ),
            "{err}"
        );
        assert_eq!(fs::read_dir(target.path()).unwrap().count(), 0);
    }

    #[test]
    fn pack_refuses_a_folder_no_reader_could_unpack() {
        let source = tempfile::tempdir().unwrap();
        write(source.path(), "v/a", &[1u8; 3000]);
        write(source.path(), "v/b", &[2u8; 3000]);
        let folder = Path::new("v");
        for (limits, var) in [
            (limits(2000, 1 << 20, 10), MAX_ENTRY_BYTES_VAR),
            (limits(4000, 5000, 10), MAX_BUNDLE_BYTES_VAR),
            (limits(4000, 1 << 20, 1), MAX_BUNDLE_ENTRIES_VAR),
        ] {
            let err = pack_with(source.path(), folder, &limits).unwrap_err();
            assert!(
                matches!(err, BundleError::FolderTooLarge { var: v, .. } if v == var),
                "{err}"
            );
        }
        let zip = pack_with(source.path(), folder, &limits(3000, 6000, 2)).unwrap();
        let target = tempfile::tempdir().unwrap();
        let written = unpack_with(&zip, target.path(), folder, &limits(3000, 6000, 2)).unwrap();
        assert_eq!(written, ["a", "b"]);
    }

    #[test]
    fn limits_come_from_the_environment_or_refuse_nonsense() {
        assert_eq!(Limits::from_lookup(|_| None).unwrap(), Limits::DEFAULT);
        assert_eq!(Limits::DEFAULT.max_entry_bytes, 64 * 1024 * 1024);
        assert_eq!(Limits::DEFAULT.max_total_bytes, 256 * 1024 * 1024);
        let set = Limits::from_lookup(|var| match var {
            MAX_ENTRY_BYTES_VAR => Some("1000".into()),
            MAX_BUNDLE_BYTES_VAR => Some(" 2000 ".into()),
            MAX_BUNDLE_ENTRIES_VAR => Some("3".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(set, limits(1000, 2000, 3));
        for bad in ["", "0", "-1", "64MiB", "lots"] {
            let err =
                Limits::from_lookup(|var| (var == MAX_BUNDLE_BYTES_VAR).then(|| bad.to_owned()))
                    .unwrap_err();
            assert!(
                matches!(
                    err,
                    BundleError::InvalidLimit {
                        var: MAX_BUNDLE_BYTES_VAR,
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        let target = tempfile::tempdir().unwrap();
        let err = unpack(b"not a zip", target.path(), Path::new("v")).unwrap_err();
        assert!(matches!(err, BundleError::Corrupt(_)), "{err}");
    }
}
