//! The `Store` trait: a flat namespace of byte objects with entity tags and
//! compare-and-swap writes, which is all a vault needs from S3 or a local
//! directory.

use std::fmt;

use async_trait::async_trait;

/// An object's entity tag, normalised without the surrounding quotes S3 puts
/// on the wire (Hetzner omits them; both compare equal here).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Normalises a raw header or XML value: surrounding whitespace and
    /// double quotes are dropped.
    pub fn new(raw: &str) -> Self {
        ETag(raw.trim().trim_matches('"').to_owned())
    }

    /// The unquoted value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as S3 expects it in `If-Match`: in double quotes.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({})", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The precondition of a write. There is deliberately no unconditional
/// variant: every vault write is a compare-and-swap, so a concurrent writer
/// loses cleanly instead of being overwritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Create only; fail if the key exists (`If-None-Match: *`).
    IfAbsent,
    /// Replace only the version with this tag (`If-Match: <etag>`).
    IfMatch(ETag),
}

/// What `head` knows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The full key.
    pub key: String,
    /// Its entity tag.
    pub etag: ETag,
    /// Its size in bytes.
    pub size: u64,
}

/// One entry of a listing. S3-compatible servers differ on whether a
/// listing carries ETags (some omit them), so a listing promises only the
/// key and size; `head` gives the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The full key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An object's bytes and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The bytes (vault objects are ciphertext or non-secret pointers).
    pub body: Vec<u8>,
    /// Its entity tag.
    pub etag: ETag,
}

/// Why a store operation failed. Messages name the store and key, never
/// object contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The write's precondition did not hold: the key already exists
    /// (`IfAbsent`) or changed since it was read (`IfMatch`).
    #[error("{key} already exists or changed since it was read: another writer got there first")]
    PreconditionFailed {
        /// The key written.
        key: String,
    },
    /// Credentials were rejected or lack permission.
    #[error("access to {key} was denied: {detail}")]
    AccessDenied {
        /// The key accessed.
        key: String,
        /// What the store said.
        detail: String,
    },
    /// The store could not be reached, or answered with a server error.
    #[error("the store is unreachable: {0}")]
    Unreachable(String),
    /// The store ignores or rejects conditional writes, so vsync refuses to
    /// write rather than overwrite blindly.
    #[error(
        "the store does not honour conditional writes ({0}); vsync will not publish without compare-and-swap — use a provider preset that supports it"
    )]
    ConditionalWritesUnsupported(String),
    /// The store rejected the configuration itself (a missing bucket, the
    /// wrong region): no retry helps until the setting is fixed.
    #[error("{0}")]
    Misconfigured(String),
    /// The key is not a valid object key for this store.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Local I/O failed (local-directory store).
    #[error("I/O error on {key}: {source}")]
    Io {
        /// The key being accessed.
        key: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The object is larger than the reader accepts.
    #[error("{key} is larger than {limit} bytes; refusing to download it")]
    TooLarge {
        /// The key read.
        key: String,
        /// The most bytes the reader accepts.
        limit: u64,
    },
    /// The store misbehaved in a way none of the above describes.
    #[error("{0}")]
    Other(String),
}

/// The largest object [`Store::get`] reads: a bucket's answer is hostile
/// input, and an object too large for memory must fail, not exhaust it.
/// Bundles are bounded tighter, by their inflated limit ([`crate::bundle::Limits`]).
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// Where encrypted bundles live: S3-compatible buckets or a local directory.
///
/// Keys are `/`-separated paths without a leading `/`. `get` and `head`
/// return `Ok(None)` for a missing key, so "not found" and "empty object"
/// stay distinct.
#[async_trait]
pub trait Store: Send + Sync {
    /// A human description for messages, e.g. `s3://bucket at https://…` or
    /// `local directory /home/me/.local/share/vsync/store`.
    fn describe(&self) -> String;

    /// Reads an object of at most `max_bytes`; a larger one is
    /// [`StoreError::TooLarge`], refused before its body is held in memory
    /// (whatever size the store claims, the body is read no further).
    async fn get_limited(&self, key: &str, max_bytes: u64) -> Result<Option<Object>, StoreError>;

    /// Reads an object of at most [`MAX_OBJECT_BYTES`].
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        self.get_limited(key, MAX_OBJECT_BYTES).await
    }

    /// Reads an object's metadata.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError>;

    /// Writes an object if `condition` holds, returning its new tag.
    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: PutCondition,
    ) -> Result<ETag, StoreError>;

    /// Every object whose key starts with `prefix`, all pages, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError>;

    /// Deletes an object; deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// The store's own clock, where it has one apart from this machine's
    /// (an S3 server's `Date` header): `vsync doctor` compares the two.
    /// `None` for a store on this machine.
    async fn server_time(&self) -> Result<Option<std::time::SystemTime>, StoreError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_equal_quoted_or_not() {
        assert_eq!(ETag::new("\"abc\""), ETag::new("abc"));
        assert_eq!(ETag::new(" \"abc\" ").quoted(), "\"abc\"");
        assert_eq!(ETag::new("abc").as_str(), "abc");
    }
}
