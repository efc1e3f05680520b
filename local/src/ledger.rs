//! The sync-state ledger `<base>/<repo>/env_<env>.ledger.json` (upstream
//! v0.17 code schema): which bundle this machine last pulled or pushed, and
//! the `mtime_ms`/`size` of every vault file at that moment, so `pull` can
//! refuse to overwrite local edits and `push` can refuse a remote that moved.
//!
//! ```json
//! {"v":1,"last_sync_ts":"YYYYMMDD-HHmmss","last_sync_at":"<ISO>",
//!  "last_sync_op":"pull"|"push","files":{"<posix rel path>":{"mtime_ms":…,"size":…}}}
//! ```
//!
//! Written pretty (2 spaces), atomically, mode 0600.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault_fs::{self, EntryKind, VaultPathError};

use crate::fsutil;

/// The only ledger schema version.
pub const LEDGER_VERSION: u32 = 1;

/// Ledgers larger than this are refused unread.
const MAX_LEDGER_LEN: u64 = 64 << 20;

/// Why a ledger could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The ledger breaks the schema (upstream's `LedgerMalformedError`).
    #[error(
        "sync ledger {path} is malformed ({reason}); delete it to reset sync tracking — the next pull or push writes a fresh one"
    )]
    Malformed {
        /// The ledger file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A symlink on the way to or inside the vault folder (upstream's
    /// `SymlinkInVaultError`, extended to every component below the repo
    /// root).
    #[error(transparent)]
    Path(#[from] VaultPathError),
    /// A vault file name that is not UTF-8.
    #[error("{0} has a name that is not UTF-8; rename it")]
    NonUtf8Name(PathBuf),
    /// Reading or writing failed.
    #[error("{path}: {source}; check the permissions")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The operation that last synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncOp {
    /// A pull.
    Pull,
    /// A push.
    Push,
}

/// Writes integral milliseconds as integers, as JavaScript prints them.
fn js_number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    if value.fract() == 0.0 && value.abs() <= SAFE {
        #[allow(clippy::cast_possible_truncation)]
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// What the ledger remembers of one file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Modification time in milliseconds since the epoch, as Node's
    /// `Stats.mtimeMs` computes it (`sec * 1e3 + nsec / 1e6`).
    #[serde(serialize_with = "js_number")]
    pub mtime_ms: f64,
    /// Size in bytes.
    pub size: u64,
}

impl FileStamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &fs::Metadata) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let mtime_ms = meta.mtime() as f64 * 1e3 + meta.mtime_nsec() as f64 / 1e6;
        Self {
            mtime_ms,
            size: meta.size(),
        }
    }
}

mod ts_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use vsync_engine::timestamp::Timestamp;

    pub(super) fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(ts.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    v: u32,
    /// The bundle timestamp last pulled or pushed: the high-water mark.
    #[serde(with = "ts_serde")]
    pub last_sync_ts: Timestamp,
    /// When that happened (ISO-8601, `toISOString()`).
    pub last_sync_at: String,
    /// Pull or push.
    pub last_sync_op: SyncOp,
    /// Every vault file at that moment, by POSIX path relative to the vault
    /// folder.
    pub files: BTreeMap<String, FileStamp>,
}

/// Local changes since the last sync, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirtyReport {
    /// Files whose mtime or size changed.
    pub modified: Vec<String>,
    /// Files not in the ledger.
    pub added: Vec<String>,
    /// Ledger files no longer in the vault.
    pub deleted: Vec<String>,
}

impl DirtyReport {
    /// True when nothing changed.
    pub fn is_clean(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty() && self.deleted.is_empty()
    }
}

/// The dirty check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirtyStatus {
    /// No ledger: this machine never synced the env (upstream "untracked").
    Untracked,
    /// A ledger exists; the report says what changed since.
    Tracked(DirtyReport),
}

impl Ledger {
    /// A ledger for a sync of `ts` by `op` at `at`, over `files`.
    pub fn new(
        op: SyncOp,
        ts: Timestamp,
        at: SystemTime,
        files: BTreeMap<String, FileStamp>,
    ) -> Self {
        Self {
            v: LEDGER_VERSION,
            last_sync_ts: ts,
            last_sync_at: crate::time::iso_millis(at),
            last_sync_op: op,
            files,
        }
    }

    /// Snapshots `vault_root/vault_folder` and records a sync of `ts` by
    /// `op` at `at`.
    pub fn record(
        vault_root: &Path,
        vault_folder: &Path,
        op: SyncOp,
        ts: Timestamp,
        at: SystemTime,
    ) -> Result<Self, LedgerError> {
        Ok(Self::new(op, ts, at, snapshot(vault_root, vault_folder)?))
    }

    /// Pretty JSON (2-space indentation), no trailing newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a ledger serialises")
    }

    /// Parses and validates ledger JSON; `path` names it in errors.
    pub fn from_json(text: &[u8], path: &Path) -> Result<Self, LedgerError> {
        let malformed = |reason: String| LedgerError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let value: Value =
            serde_json::from_slice(text).map_err(|_| malformed("not JSON".to_owned()))?;
        validate(&value).map_err(malformed)?;
        serde_json::from_value(value).map_err(|err| malformed(err.to_string()))
    }

    /// Reads the ledger at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, LedgerError> {
        match fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_LEDGER_LEN => {
                return Err(LedgerError::Malformed {
                    path: path.to_path_buf(),
                    reason: "larger than 64 MiB".to_owned(),
                });
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_at(path)(err)),
        }
        let bytes = fs::read(path).map_err(io_at(path))?;
        Self::from_json(&bytes, path).map(Some)
    }

    /// Writes the ledger to `path` atomically, mode 0600 (parents 0700).
    pub fn save(&self, path: &Path) -> Result<(), LedgerError> {
        fsutil::write_private_atomic_in_private_dir(path, self.to_json().as_bytes())
            .map_err(io_at(path))
    }
}

/// Upstream's ledger validation.
fn validate(value: &Value) -> Result<(), String> {
    let root = value.as_object().ok_or("not a JSON object")?;
    if root.get("v").and_then(Value::as_u64) != Some(u64::from(LEDGER_VERSION)) {
        return Err("`v` must be 1".to_owned());
    }
    for key in ["last_sync_ts", "last_sync_at"] {
        if !root.get(key).is_some_and(Value::is_string) {
            return Err(format!("`{key}` must be a string"));
        }
    }
    if !matches!(
        root.get("last_sync_op").and_then(Value::as_str),
        Some("pull" | "push")
    ) {
        return Err("`last_sync_op` must be \"pull\" or \"push\"".to_owned());
    }
    let files = root
        .get("files")
        .and_then(Value::as_object)
        .ok_or("`files` must be an object")?;
    for (name, stamp) in files {
        if name.starts_with('/') || name.contains("..") || name.contains('\\') {
            return Err(format!(
                "file key {name:?} must be a relative POSIX path without `..` or `\\`"
            ));
        }
        let numeric = |key| stamp.get(key).is_some_and(Value::is_number);
        if !numeric("mtime_ms") || !numeric("size") {
            return Err(format!("file {name:?} needs numeric `mtime_ms` and `size`"));
        }
    }
    Ok(())
}

/// Every regular file under `vault_root/vault_folder` (dotfiles included)
/// by POSIX path relative to the folder. A symlink on the way from the repo
/// root or anywhere inside is an error ([`vault_fs::walk`]); a missing
/// folder is empty.
pub fn snapshot(
    vault_root: &Path,
    vault_folder: &Path,
) -> Result<BTreeMap<String, FileStamp>, LedgerError> {
    let mut files = BTreeMap::new();
    let folder = vault_root.join(vault_folder);
    for entry in vault_fs::walk(vault_root, vault_folder)?.unwrap_or_default() {
        if entry.kind != EntryKind::File {
            continue;
        }
        let mut name = String::new();
        for part in entry.relative.components() {
            let part = part
                .as_os_str()
                .to_str()
                .ok_or_else(|| LedgerError::NonUtf8Name(folder.join(&entry.relative)))?;
            if !name.is_empty() {
                name.push('/');
            }
            name.push_str(part);
        }
        files.insert(name, FileStamp::of(&entry.metadata));
    }
    Ok(files)
}

/// Compares `vault_root/vault_folder` with `ledger` (exact `mtime_ms` and
/// `size`).
pub fn dirty(
    vault_root: &Path,
    vault_folder: &Path,
    ledger: &Ledger,
) -> Result<DirtyReport, LedgerError> {
    let now = snapshot(vault_root, vault_folder)?;
    let mut report = DirtyReport::default();
    for (name, stamp) in &now {
        match ledger.files.get(name) {
            None => report.added.push(name.clone()),
            Some(seen) if seen != stamp => report.modified.push(name.clone()),
            Some(_) => {}
        }
    }
    report.deleted = ledger
        .files
        .keys()
        .filter(|name| !now.contains_key(*name))
        .cloned()
        .collect();
    Ok(report)
}

/// Loads the ledger at `ledger_path` and compares `vault_root/vault_folder`
/// with it.
pub fn check(
    vault_root: &Path,
    vault_folder: &Path,
    ledger_path: &Path,
) -> Result<DirtyStatus, LedgerError> {
    match Ledger::load(ledger_path)? {
        None => Ok(DirtyStatus::Untracked),
        Some(ledger) => Ok(DirtyStatus::Tracked(dirty(
            vault_root,
            vault_folder,
            &ledger,
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::mode;
    use std::time::{Duration, UNIX_EPOCH};

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn json_matches_the_upstream_code_schema() {
        let mut files = BTreeMap::new();
        files.insert(
            ".env.dev".to_owned(),
            FileStamp {
                mtime_ms: 1_779_719_020_045.0,
                size: 12,
            },
        );
        files.insert(
            "tls/server.crt".to_owned(),
            FileStamp {
                mtime_ms: 1_779_719_020_045.123_5,
                size: 3,
            },
        );
        let ledger = Ledger::new(
            SyncOp::Pull,
            ts("20260525-142340"),
            UNIX_EPOCH + Duration::from_millis(1_779_719_020_045),
            files,
        );
        assert_eq!(
            ledger.to_json(),
            r#"{
  "v": 1,
  "last_sync_ts": "20260525-142340",
  "last_sync_at": "2026-05-25T14:23:40.045Z",
  "last_sync_op": "pull",
  "files": {
    ".env.dev": {
      "mtime_ms": 1779719020045,
      "size": 12
    },
    "tls/server.crt": {
      "mtime_ms": 1779719020045.1235,
      "size": 3
    }
  }
}"#
        );
        let back = Ledger::from_json(ledger.to_json().as_bytes(), Path::new("l")).unwrap();
        assert_eq!(back, ledger);
    }

    #[test]
    fn mtime_ms_survives_json_exactly() {
        let mut files = BTreeMap::new();
        let mut state: u64 = 1;
        for i in 0..2_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let nsec = (state >> 33) % 1_000_000_000;
            #[allow(clippy::cast_precision_loss)]
            let mtime_ms = (1_779_719_020 + i) as f64 * 1e3 + nsec as f64 / 1e6;
            files.insert(format!("f{i}"), FileStamp { mtime_ms, size: i });
        }
        let ledger = Ledger::new(SyncOp::Push, ts("20260101-000000"), UNIX_EPOCH, files);
        let back = Ledger::from_json(ledger.to_json().as_bytes(), Path::new("l")).unwrap();
        assert_eq!(back, ledger);
    }

    #[test]
    fn save_load_round_trip_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("acme/env_Dev.ledger.json");
        assert_eq!(Ledger::load(&path).unwrap(), None);
        let ledger = Ledger::new(
            SyncOp::Push,
            ts("20260101-000000"),
            UNIX_EPOCH,
            BTreeMap::new(),
        );
        ledger.save(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(Ledger::load(&path).unwrap(), Some(ledger));
    }

    #[test]
    fn malformed_ledgers_are_typed_errors() {
        let good = r#"{"v":1,"last_sync_ts":"20260101-000000","last_sync_at":"x","last_sync_op":"pull","files":{"a":{"mtime_ms":1,"size":2}}}"#;
        assert!(Ledger::from_json(good.as_bytes(), Path::new("l")).is_ok());
        let bad = [
            "[]",
            "nope",
            &good.replace(r#""v":1"#, r#""v":2"#),
            &good.replace(r#""last_sync_at":"x""#, r#""last_sync_at":1"#),
            &good.replace("\"pull\"", "\"fetch\""),
            &good.replace(r#""files":{"a":{"mtime_ms":1,"size":2}}"#, r#""files":[]"#),
            &good.replace(r#""a":"#, r#""/etc/passwd":"#),
            &good.replace(r#""a":"#, r#""x/../y":"#),
            &good.replace(r#""a":"#, r#""x\\y":"#),
            &good.replace(r#""size":2"#, r#""size":"2""#),
            &good.replace(r#""mtime_ms":1,"#, ""),
            &good.replace("20260101-000000", "yesterday"),
        ];
        for text in bad {
            let err = Ledger::from_json(text.as_bytes(), Path::new("/c/l.json")).unwrap_err();
            assert!(
                matches!(err, LedgerError::Malformed { .. }),
                "{text}: {err}"
            );
            assert!(err.to_string().contains("/c/l.json"));
        }
    }

    #[test]
    fn dirty_check_finds_modified_added_deleted_sorted() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = Path::new("infra/vault/dev");
        let vault = tmp.path().join(folder);
        fs::create_dir_all(vault.join("tls")).unwrap();
        fs::write(vault.join(".env.dev"), "A=1\n").unwrap();
        fs::write(vault.join("tls/b.crt"), "b").unwrap();
        fs::write(vault.join("tls/a.crt"), "a").unwrap();
        fs::write(vault.join("gone"), "g").unwrap();
        let ledger_path = tmp.path().join("env_dev.ledger.json");
        assert_eq!(
            check(tmp.path(), folder, &ledger_path).unwrap(),
            DirtyStatus::Untracked
        );

        let ledger = Ledger::record(
            tmp.path(),
            folder,
            SyncOp::Pull,
            ts("20260101-000000"),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(
            ledger.files.keys().collect::<Vec<_>>(),
            [".env.dev", "gone", "tls/a.crt", "tls/b.crt"]
        );
        let meta = fs::metadata(vault.join(".env.dev")).unwrap();
        let stamp = ledger.files[".env.dev"];
        assert_eq!(stamp.size, 4);
        let modified = meta.modified().unwrap().duration_since(UNIX_EPOCH).unwrap();
        assert!((stamp.mtime_ms - modified.as_secs_f64() * 1e3).abs() < 1.0);
        ledger.save(&ledger_path).unwrap();
        assert_eq!(
            check(tmp.path(), folder, &ledger_path).unwrap(),
            DirtyStatus::Tracked(DirtyReport::default())
        );

        fs::write(vault.join(".env.dev"), "A=22\n").unwrap();
        fs::write(vault.join("tls/b.crt"), "B").unwrap(); // same size, new mtime
        let file = fs::File::options()
            .write(true)
            .open(vault.join("tls/b.crt"))
            .unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(1))
            .unwrap();
        fs::remove_file(vault.join("gone")).unwrap();
        fs::write(vault.join("z-new"), "n").unwrap();
        fs::write(vault.join(".hidden"), "h").unwrap();
        let DirtyStatus::Tracked(report) = check(tmp.path(), folder, &ledger_path).unwrap() else {
            panic!("tracked");
        };
        assert!(!report.is_clean());
        assert_eq!(report.modified, [".env.dev", "tls/b.crt"]);
        assert_eq!(report.added, [".hidden", "z-new"]);
        assert_eq!(report.deleted, ["gone"]);
    }

    #[test]
    fn symlinks_in_the_vault_are_refused_and_missing_vault_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            snapshot(tmp.path(), Path::new("absent"))
                .unwrap()
                .is_empty()
        );
        let vault = tmp.path().join("v");
        fs::create_dir_all(vault.join("d")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", vault.join("d/link")).unwrap();
        let err = snapshot(tmp.path(), Path::new("v")).unwrap_err();
        assert!(
            matches!(err, LedgerError::Path(VaultPathError::Symlink(_))),
            "{err}"
        );
    }

    #[test]
    fn a_symlinked_directory_on_the_way_to_the_vault_is_refused() {
        // Before: only entries inside the folder were judged, so a
        // symlinked `infra` (or vault folder) was walked into and files
        // outside the repository were stamped as vault files.
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("vault/dev")).unwrap();
        fs::write(outside.join("vault/dev/.env.dev"), "X=1").unwrap();
        let repo = tmp.path().join("repo");
        fs::create_dir_all(repo.join("infra/vault")).unwrap();
        let folder = Path::new("infra/vault/dev");
        std::os::unix::fs::symlink(outside.join("vault/dev"), repo.join(folder)).unwrap();
        let err = snapshot(&repo, folder).unwrap_err();
        assert!(
            matches!(&err, LedgerError::Path(VaultPathError::Symlink(p)) if p == &repo.join(folder)),
            "{err}"
        );
        fs::remove_file(repo.join(folder)).unwrap();
        fs::remove_dir_all(repo.join("infra")).unwrap();
        std::os::unix::fs::symlink(&outside, repo.join("infra")).unwrap();
        let ledger_path = tmp.path().join("l.json");
        Ledger::new(
            SyncOp::Pull,
            ts("20260101-000000"),
            UNIX_EPOCH,
            BTreeMap::new(),
        )
        .save(&ledger_path)
        .unwrap();
        let err = check(&repo, folder, &ledger_path).unwrap_err();
        assert!(
            matches!(&err, LedgerError::Path(VaultPathError::Symlink(p)) if p == &repo.join("infra")),
            "{err}"
        );
    }
}
