//! The local-directory store: one file per object under a root directory,
//! with the same object names and compare-and-swap semantics as S3.
//!
//! - Writes go to a temp file in `<root>/.vsync-tmp/`, are fsynced, then
//!   renamed into place (and the directory fsynced), so a crash never leaves
//!   a half-written object.
//! - Conditional writes and deletes hold an exclusive lock on
//!   `<root>/.vsync-store.lock`, so two processes racing on one key cannot
//!   both win.
//! - ETags are the SHA-256 of the content.
//! - Directories are 0700 and files 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use vsync_engine::store::{
    ETag, ListedObject, Object, ObjectInfo, PutCondition, Store, StoreError,
};

const LOCK_FILE: &str = ".vsync-store.lock";
const TMP_DIR: &str = ".vsync-tmp";

/// A [`Store`] over a local directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: Arc<PathBuf>,
}

impl FsStore {
    /// Opens (creating, 0700) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        create_private_dir_all(&root.join(TMP_DIR))?;
        Ok(FsStore {
            root: Arc::new(root),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_for(&self, key: &str) -> Result<PathBuf, StoreError> {
        let invalid = |reason| StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        };
        if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
            return Err(invalid(
                "keys are non-empty and neither start nor end with `/`",
            ));
        }
        if key.contains(['\\', '\0']) {
            return Err(invalid("keys may not contain `\\` or NUL"));
        }
        if key
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return Err(invalid("keys may not contain empty, `.` or `..` segments"));
        }
        if key.starts_with(".vsync-") {
            return Err(invalid(
                "keys starting with `.vsync-` are reserved by the local store",
            ));
        }
        Ok(self.root.join(key))
    }

    /// Runs blocking file work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FsStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|err| StoreError::Other(format!("local store task failed: {err}")))?
    }

    fn lock(&self) -> Result<File, StoreError> {
        let path = self.root.join(LOCK_FILE);
        let file = private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(LOCK_FILE))?;
        file.lock().map_err(io_error(LOCK_FILE))?;
        Ok(file)
    }

    fn put_locked(
        &self,
        key: &str,
        body: &[u8],
        condition: &PutCondition,
    ) -> Result<ETag, StoreError> {
        let path = self.path_for(key)?;
        let _lock = self.lock()?;
        // The whole current object: its tag decides the condition.
        let current = read_if_exists(&path, u64::MAX).map_err(io_error(key))?;
        let holds = match (condition, &current) {
            (PutCondition::IfAbsent, current) => current.is_none(),
            (PutCondition::IfMatch(_), None) => false,
            (PutCondition::IfMatch(expected), Some(body)) => etag_of(body) == *expected,
        };
        if !holds {
            return Err(StoreError::PreconditionFailed {
                key: key.to_owned(),
            });
        }
        let parent = path.parent().expect("an object path is below the root");
        create_private_dir_all(parent).map_err(io_error(key))?;
        let tmp = self.root.join(TMP_DIR).join(unique_tmp_name());
        let written = write_synced(&tmp, body).and_then(|()| fs::rename(&tmp, &path));
        if let Err(err) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(key)(err));
        }
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(key))?;
        Ok(etag_of(body))
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        let mut objects = Vec::new();
        let mut pending = vec![self.root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).map_err(io_error(prefix))? {
                let entry = entry.map_err(io_error(prefix))?;
                let path = entry.path();
                let key = object_key(&self.root, &path);
                if key.starts_with(".vsync-") {
                    continue;
                }
                let file_type = entry.file_type().map_err(io_error(&key))?;
                if file_type.is_dir() {
                    // Only descend where keys under the prefix can be.
                    if prefix.starts_with(&format!("{key}/"))
                        || format!("{key}/").starts_with(prefix)
                    {
                        pending.push(path);
                    }
                } else if file_type.is_file() && key.starts_with(prefix) {
                    let size = entry.metadata().map_err(io_error(&key))?.len();
                    objects.push(ListedObject { key, size });
                }
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }
}

#[async_trait]
impl Store for FsStore {
    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    async fn get_limited(&self, key: &str, max_bytes: u64) -> Result<Option<Object>, StoreError> {
        let path = self.path_for(key)?;
        let key = key.to_owned();
        self.blocking(move |_| {
            let Some(body) = read_if_exists(&path, max_bytes).map_err(io_error(&key))? else {
                return Ok(None);
            };
            if body.len() as u64 > max_bytes {
                return Err(StoreError::TooLarge {
                    key,
                    limit: max_bytes,
                });
            }
            Ok(Some(Object {
                etag: etag_of(&body),
                body,
            }))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.get(key).await?.map(|object| ObjectInfo {
            key: key.to_owned(),
            etag: object.etag,
            size: object.body.len() as u64,
        }))
    }

    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let (key, body) = (key.to_owned(), body.to_vec());
        self.blocking(move |store| store.put_locked(&key, &body, &condition))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        let prefix = prefix.to_owned();
        self.blocking(move |store| store.list_blocking(&prefix))
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_for(key)?;
        let key = key.to_owned();
        self.blocking(move |store| {
            let _lock = store.lock()?;
            match fs::remove_file(&path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error(&key)(err)),
                _ => Ok(()),
            }
        })
        .await
    }
}

fn etag_of(body: &[u8]) -> ETag {
    ETag::new(&hex::encode(Sha256::digest(body)))
}

fn io_error(key: &str) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        key: key.to_owned(),
        source,
    }
}

/// The object's bytes, at most `max_bytes + 1` of them (one more than
/// allowed tells the caller it is too large without reading the rest);
/// `None` when the key does not exist (or names a directory, which is a
/// prefix, not an object).
fn read_if_exists(path: &Path, max_bytes: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    if file.metadata()?.is_dir() {
        return Ok(None);
    }
    let mut body = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut body)?;
    Ok(Some(body))
}

fn object_key(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("walked paths are below the root")
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_string_lossy()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn unique_tmp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn write_synced(path: &Path, body: &[u8]) -> io::Result<()> {
    let mut file = private_file_options()
        .create_new(true)
        .write(true)
        .open(path)?;
    file.write_all(body)?;
    file.sync_all()
}

fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
