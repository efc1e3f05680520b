//! Publishing and fetching vault bundles on a [`Store`], in the upstream CLI's
//! bucket layout, with compare-and-swap and anti-rollback.
//!
//! Written layout under a prefix (normally `<repo>/<env>/`):
//!
//! - `versions/<ts>.enc` — `RQE1(RQEM0001(ts) ‖ payload)`, never overwritten;
//! - `latest` — the ASCII timestamp of the current bundle;
//! - `latest.meta` — `{"gen":N}`, N + 1 on every publish.
//!
//! Also read: the runtime libraries' documented layout, `manifest` (a
//! plaintext RQEM0001 seal naming the timestamp) + `v=<ts>`.

use std::num::NonZeroU32;

use vsync_crypto::rqem::{self, ManifestMeta};
use vsync_crypto::{ErrorClass, Key, Zeroizing, rqe1};

use crate::bundle::Limits;
use crate::store::{ETag, PutCondition, Store, StoreError};
use crate::timestamp::Timestamp;

/// The object keys of one vault (one repo/env) inside a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

/// A prefix vsync cannot address objects under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPrefix {
    /// Without the trailing `/`, keys would read `myappversions/…`.
    #[error("prefix {0:?} must end with `/` (e.g. {0:?}/)")]
    MissingTrailingSlash(String),
    /// A leading `/` makes S3 keys start with `//` on path-style URLs.
    #[error("prefix {0:?} must not start with `/`")]
    LeadingSlash(String),
}

impl Layout {
    /// A layout under an explicit prefix, which must be empty or end with
    /// `/` and must not start with `/`.
    pub fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        if prefix.starts_with('/') {
            return Err(InvalidPrefix::LeadingSlash(prefix.to_owned()));
        }
        if !prefix.is_empty() && !prefix.ends_with('/') {
            return Err(InvalidPrefix::MissingTrailingSlash(prefix.to_owned()));
        }
        Ok(Layout {
            prefix: prefix.to_owned(),
        })
    }

    /// The default prefix, `<repo>/<env lowercased>/`.
    pub fn for_repo_env(repo: &str, env: &str) -> Self {
        Layout {
            prefix: format!("{repo}/{}/", env.to_lowercase()),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>versions/<ts>.enc`.
    pub fn bundle_key(&self, ts: &Timestamp) -> String {
        format!("{}versions/{ts}.enc", self.prefix)
    }

    /// `<prefix>latest`.
    pub fn latest_key(&self) -> String {
        format!("{}latest", self.prefix)
    }

    /// `<prefix>latest.meta`.
    pub fn meta_key(&self) -> String {
        format!("{}latest.meta", self.prefix)
    }

    /// `<prefix>audit.csv`.
    pub fn audit_key(&self) -> String {
        format!("{}audit.csv", self.prefix)
    }

    /// `<prefix>sync/<target>.enc`: the sealed record of what `vsync sync`
    /// last applied to a target (fingerprints and revisions, no values).
    /// Characters outside `[A-Za-z0-9._=-]` in the target become `_`.
    pub fn sync_record_key(&self, target: &str) -> String {
        let safe: String = target
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._=-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}sync/{safe}.enc", self.prefix)
    }

    /// `<prefix>sync.key`: the key the env's sync and import records are
    /// sealed with, sealed under the vault key (absent until the env's
    /// first passphrase rotation; see [`crate::sync::records_key`]).
    pub fn records_key(&self) -> String {
        format!("{}sync.key", self.prefix)
    }

    /// `<prefix>manifest` (runtime-library layout).
    pub fn manifest_key(&self) -> String {
        format!("{}manifest", self.prefix)
    }

    /// `<prefix>v=<ts>` (runtime-library layout).
    pub fn library_bundle_key(&self, ts: &Timestamp) -> String {
        format!("{}v={ts}", self.prefix)
    }
}

/// Which layout a remote head was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerKind {
    /// `latest` + `versions/<ts>.enc`, with the pointer's tag for the next
    /// compare-and-swap.
    Cli(ETag),
    /// `manifest` + `v=<ts>`.
    Library,
}

/// What the bucket currently points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHead {
    /// The current bundle's timestamp.
    pub ts: Timestamp,
    /// Where the pointer was found.
    pub pointer: PointerKind,
    /// The generation from `latest.meta` (0 when absent).
    pub generation: u64,
    /// `latest.meta`'s tag, `None` when it does not exist.
    meta_etag: Option<ETag>,
}

/// A decrypted bundle whose sealed timestamp matched its pointer.
pub struct FetchedBundle {
    /// The verified timestamp.
    pub ts: Timestamp,
    plaintext: rqe1::Opened,
}

impl FetchedBundle {
    /// The payload after the 23-byte seal (the zip, or JSON).
    pub fn payload(&self) -> &[u8] {
        &self.plaintext[rqem::HEADER_LEN..]
    }
}

impl std::fmt::Debug for FetchedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FetchedBundle(ts={}, <redacted {} bytes>)",
            self.ts,
            self.payload().len()
        )
    }
}

/// A successful publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The new version's timestamp.
    pub ts: Timestamp,
    /// The new generation written to `latest.meta`.
    pub generation: u64,
    /// Why `latest.meta` could not be written, when it could not. The
    /// version is published all the same (the pointer names it and every
    /// reader opens it); only generation-based change detection lags until
    /// the next publish rewrites the meta.
    pub meta_not_written: Option<String>,
}

/// Why a vault operation failed. Messages name what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The store failed.
    #[error("{store}: {source}")]
    Store {
        /// The store's description.
        store: String,
        /// The failure.
        source: StoreError,
    },
    /// Decryption or unsealing failed.
    #[error("bundle {ts}: {source}{hint}", hint = crypto_hint(source))]
    Crypto {
        /// The bundle's timestamp.
        ts: Timestamp,
        /// The failure.
        source: vsync_crypto::Error,
    },
    /// Neither `latest` nor `manifest` exists under the prefix.
    #[error(
        "no vault under {prefix:?} in {store}: run `vsync push <env>` once, or check the prefix"
    )]
    NoVault {
        /// The store's description.
        store: String,
        /// The prefix looked under.
        prefix: String,
    },
    /// The pointer names a timestamp whose bundle is missing.
    #[error("the pointer names version {ts} but its bundle is missing from the store")]
    BundleMissing {
        /// The missing version.
        ts: Timestamp,
    },
    /// `latest` or `manifest` does not hold a timestamp.
    #[error("{key} does not hold a version timestamp; the bucket was edited by hand or is damaged")]
    PointerCorrupt {
        /// The pointer's key.
        key: String,
    },
    /// Another push won the compare-and-swap.
    #[error(
        "another push published first (version {ts} was being written); nothing was overwritten — pull, then push again"
    )]
    ConcurrentPush {
        /// The timestamp this push tried to publish.
        ts: Timestamp,
    },
    /// The pointer write failed in a way that leaves its outcome unknown (the
    /// store may have applied it), and reading the pointer back failed too.
    #[error(
        "publishing version {ts} may or may not have completed ({source}); run `vsync versions <env>` to see whether {ts} is current"
    )]
    PublishUncertain {
        /// The version whose pointer write is unconfirmed.
        ts: Timestamp,
        /// The pointer write's failure.
        source: StoreError,
    },
    /// The remote is not older than this machine's clock.
    #[error(
        "the remote's newest version {remote} is not older than this machine's clock ({now}); wait a second and retry, or fix the clock — if the remote's pointer is the one that is wrong, `vsync push --force` publishes after it"
    )]
    ClockBehind {
        /// The remote head.
        remote: Timestamp,
        /// This machine's time.
        now: Timestamp,
    },
    /// The remote points at a version older than one this machine has seen.
    #[error(
        "the remote points at {remote}, older than {seen} which this machine already synced — possible rollback; pass --at={remote} to accept it deliberately"
    )]
    RemoteWentBackwards {
        /// The remote head.
        remote: Timestamp,
        /// The local high-water mark.
        seen: Timestamp,
    },
    /// The remote moved on since this machine last synced.
    #[error(
        "the remote moved on to {remote} since this machine last synced {seen}; pull first (or push --force to overwrite deliberately)"
    )]
    RemoteMovedOn {
        /// The remote head.
        remote: Timestamp,
        /// The local high-water mark.
        seen: Timestamp,
    },
    /// The remote has versions but this machine never synced the env.
    #[error(
        "the remote already holds version {remote} and this machine never synced this env; pull first (or push --force to overwrite deliberately)"
    )]
    RemoteNeverSynced {
        /// The remote head.
        remote: Timestamp,
    },
}

fn crypto_hint(error: &vsync_crypto::Error) -> &'static str {
    match error.class() {
        ErrorClass::WrongPassphrase => {
            " — the key on this machine does not match the bundle's: re-import the env's .share or .keytree from a teammate"
        }
        _ => "",
    }
}

impl VaultError {
    /// The runtime-reader taxonomy class of this failure; `None` for the
    /// writer-side conflicts (concurrent push, clock, remote moved on), which
    /// a reader never meets.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            VaultError::Store { .. } => Some(ErrorClass::S3Unreachable),
            VaultError::Crypto { source, .. } => Some(source.class()),
            VaultError::NoVault { .. } => Some(ErrorClass::ManifestNotFound),
            VaultError::BundleMissing { .. }
            | VaultError::PointerCorrupt { .. }
            | VaultError::RemoteWentBackwards { .. } => Some(ErrorClass::BundleCorrupt),
            VaultError::ConcurrentPush { .. }
            | VaultError::PublishUncertain { .. }
            | VaultError::ClockBehind { .. }
            | VaultError::RemoteMovedOn { .. }
            | VaultError::RemoteNeverSynced { .. } => None,
        }
    }
}

/// The most a pointer, manifest or meta object may hold: a timestamp, a
/// sealed one, a generation count. Anything bigger is not one of them.
const MAX_POINTER_BYTES: u64 = 1 << 20;

/// The most an encrypted bundle may hold: its inflated limit (a bundle
/// stored without compression is that size) plus room for the zip and
/// encryption headers. An invalid limit variable is reported by the unpack
/// that follows; the download falls back to the default meanwhile.
fn max_bundle_download_bytes() -> u64 {
    let inflated = Limits::from_env().unwrap_or_default().max_total_bytes;
    inflated.saturating_add(16 << 20)
}

fn store_error(store: &dyn Store) -> impl FnOnce(StoreError) -> VaultError + '_ {
    move |source| VaultError::Store {
        store: store.describe(),
        source,
    }
}

fn parse_pointer(key: String, text: &[u8]) -> Result<Timestamp, VaultError> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or(VaultError::PointerCorrupt { key })
}

/// Reads what the bucket points at: `latest` (CLI layout) first, else
/// `manifest` (library layout); `None` when neither exists.
pub async fn remote_head(
    store: &dyn Store,
    layout: &Layout,
) -> Result<Option<RemoteHead>, VaultError> {
    let latest_key = layout.latest_key();
    let (ts, pointer) = match store
        .get_limited(&latest_key, MAX_POINTER_BYTES)
        .await
        .map_err(store_error(store))?
    {
        Some(latest) => (
            parse_pointer(latest_key, &latest.body)?,
            PointerKind::Cli(latest.etag),
        ),
        None => {
            let manifest_key = layout.manifest_key();
            let Some(manifest) = store
                .get_limited(&manifest_key, MAX_POINTER_BYTES)
                .await
                .map_err(store_error(store))?
            else {
                return Ok(None);
            };
            let ts = rqem::unwrap(&manifest.body)
                .ok()
                .and_then(|seal| seal.ts.parse().ok())
                .ok_or(VaultError::PointerCorrupt { key: manifest_key })?;
            (ts, PointerKind::Library)
        }
    };
    let meta_key = layout.meta_key();
    let (generation, meta_etag) = match store
        .get_limited(&meta_key, MAX_POINTER_BYTES)
        .await
        .map_err(store_error(store))?
    {
        // Readers treat an unparseable cell as generation 0, as upstream's do.
        Some(meta) => (
            std::str::from_utf8(&meta.body)
                .ok()
                .and_then(|text| ManifestMeta::parse(text).ok())
                .map_or(0, |meta| meta.generation()),
            Some(meta.etag),
        ),
        None => (0, None),
    };
    Ok(Some(RemoteHead {
        ts,
        pointer,
        generation,
        meta_etag,
    }))
}

/// Publishes `payload` as a new version sealed at `now`.
///
/// `expected` is the head the caller read (and checked against its ledger);
/// the publish is a compare-and-swap against it: the bundle is created with
/// `IfAbsent` (never overwrites, even in the same second), then `latest` is
/// swapped with `IfMatch` on the tag read. If another push won, the orphaned
/// bundle is removed and [`VaultError::ConcurrentPush`] returned — the bucket
/// still points at the winner's version, intact.
pub async fn publish(
    store: &dyn Store,
    layout: &Layout,
    key: &Key,
    payload: &[u8],
    expected: Option<&RemoteHead>,
    now: Timestamp,
) -> Result<Published, VaultError> {
    publish_with_meta(store, layout, key, payload, expected, now, None).await
}

/// [`publish`] for a key rotation: the same compare-and-swap, and
/// `latest.meta` also records the generation before the rotation and when
/// it happened (`{"gen":N+1,"prev_gen":N,"rotated_at":…}`, the cell
/// upstream's `rotate-passphrase` writes).
pub async fn publish_rotation(
    store: &dyn Store,
    layout: &Layout,
    key: &Key,
    payload: &[u8],
    expected: &RemoteHead,
    now: Timestamp,
    rotated_at: String,
) -> Result<Published, VaultError> {
    publish_with_meta(
        store,
        layout,
        key,
        payload,
        Some(expected),
        now,
        Some(rotated_at),
    )
    .await
}

async fn publish_with_meta(
    store: &dyn Store,
    layout: &Layout,
    key: &Key,
    payload: &[u8],
    expected: Option<&RemoteHead>,
    now: Timestamp,
    rotated_at: Option<String>,
) -> Result<Published, VaultError> {
    if let Some(head) = expected
        && head.ts >= now
    {
        return Err(VaultError::ClockBehind {
            remote: head.ts.clone(),
            now,
        });
    }
    let sealed = Zeroizing::new(
        rqem::wrap(now.as_str(), payload).expect("a Timestamp is 15 ASCII characters"),
    );
    let envelope = rqe1::seal(key, &sealed);
    let bundle_key = layout.bundle_key(&now);
    match store
        .put(&bundle_key, &envelope, PutCondition::IfAbsent)
        .await
    {
        Ok(_) => {}
        Err(StoreError::PreconditionFailed { .. }) => {
            return Err(VaultError::ConcurrentPush { ts: now });
        }
        Err(source) => return Err(store_error(store)(source)),
    }
    let pointer_condition = match expected.map(|head| &head.pointer) {
        Some(PointerKind::Cli(etag)) => PutCondition::IfMatch(etag.clone()),
        None | Some(PointerKind::Library) => PutCondition::IfAbsent,
    };
    if let Err(source) = store
        .put(
            &layout.latest_key(),
            now.as_str().as_bytes(),
            pointer_condition,
        )
        .await
    {
        // `Ok` when the store applied the write before failing to answer (a
        // timeout, a dropped connection): the version is published.
        pointer_after_failed_write(store, layout, &now, source).await?;
    }
    let previous = expected.map_or(0, |head| head.generation);
    let generation = previous + 1;
    let meta = ManifestMeta {
        generation: Some(generation),
        previous_generation: rotated_at.is_some().then_some(previous),
        rotated_at,
    };
    let meta_condition = match expected.and_then(|head| head.meta_etag.clone()) {
        Some(etag) => PutCondition::IfMatch(etag),
        None => PutCondition::IfAbsent,
    };
    // The pointer has moved: the version is published whatever happens to
    // the meta, so a failure here is reported, never returned as an error
    // that would make a caller believe nothing happened (a rotation would
    // then drop the only copy of the new key).
    let meta_not_written = store
        .put(
            &layout.meta_key(),
            meta.to_json().as_bytes(),
            meta_condition,
        )
        .await
        .err()
        .map(|source| store_error(store)(source).to_string());
    Ok(Published {
        ts: now,
        generation,
        meta_not_written,
    })
}

/// After the pointer write for `ts` failed: `Ok(())` when the pointer names
/// `ts` all the same (the store applied the write but the answer was lost);
/// otherwise the error to return, with the orphan bundle removed when the
/// pointer certainly does not name it, or [`VaultError::PublishUncertain`]
/// when the pointer cannot be read back.
async fn pointer_after_failed_write(
    store: &dyn Store,
    layout: &Layout,
    ts: &Timestamp,
    source: StoreError,
) -> Result<(), VaultError> {
    let lost_race = matches!(source, StoreError::PreconditionFailed { .. });
    if !lost_race {
        match store
            .get_limited(&layout.latest_key(), MAX_POINTER_BYTES)
            .await
        {
            Ok(Some(object))
                if parse_pointer(layout.latest_key(), &object.body)
                    .is_ok_and(|named| named == *ts) =>
            {
                return Ok(());
            }
            Ok(_) => {}
            Err(_) => {
                return Err(VaultError::PublishUncertain {
                    ts: ts.clone(),
                    source,
                });
            }
        }
    }
    // Nothing points at the new bundle: remove it so the bucket holds no
    // orphan. A failed cleanup leaves a harmless unreferenced object.
    let _ = store.delete(&layout.bundle_key(ts)).await;
    Err(if lost_race {
        VaultError::ConcurrentPush { ts: ts.clone() }
    } else {
        store_error(store)(source)
    })
}

/// Fetches and decrypts the bundle `head` points at (or version `at` in the
/// head's layout), and requires its sealed timestamp to equal the pointer's.
pub async fn fetch(
    store: &dyn Store,
    layout: &Layout,
    key: &Key,
    head: &RemoteHead,
    at: Option<&Timestamp>,
) -> Result<FetchedBundle, VaultError> {
    let (ts, body) = download(store, layout, head, at).await?;
    open_sealed(ts, body, key)
}

/// A bundle key being derived on a blocking thread: PBKDF2 dominates every
/// read of a version, so the store's round trips run meanwhile.
pub struct Derivation(tokio::task::JoinHandle<Key>);

impl Derivation {
    /// Starts deriving the key of `passphrase` with `salt`.
    pub fn start(passphrase: &[u8], salt: &[u8], iterations: NonZeroU32) -> Self {
        let passphrase = Zeroizing::new(passphrase.to_vec());
        let salt = salt.to_vec();
        Derivation(tokio::task::spawn_blocking(move || {
            Key::derive(&passphrase, &salt, iterations)
        }))
    }

    /// The derived key (a panic while deriving is raised here).
    pub async fn key(self) -> Key {
        self.0
            .await
            .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
    }
}

/// [`fetch`] while the key is still being derived: the bundle is downloaded
/// (and a structurally bad envelope refused) before the key is awaited, so
/// the round trip hides behind the derivation instead of following it.
/// Same limits, checks and errors as [`fetch`].
pub async fn fetch_deriving(
    store: &dyn Store,
    layout: &Layout,
    head: &RemoteHead,
    at: Option<&Timestamp>,
    derivation: Derivation,
) -> Result<FetchedBundle, VaultError> {
    let (ts, body) = download(store, layout, head, at).await?;
    rqe1::check_header(&body).map_err(|source| VaultError::Crypto {
        ts: ts.clone(),
        source,
    })?;
    open_sealed(ts, body, &derivation.key().await)
}

/// The bundle of version `at` (or the head's), capped at the download limit.
async fn download(
    store: &dyn Store,
    layout: &Layout,
    head: &RemoteHead,
    at: Option<&Timestamp>,
) -> Result<(Timestamp, Vec<u8>), VaultError> {
    let ts = at.unwrap_or(&head.ts).clone();
    let bundle_key = match head.pointer {
        PointerKind::Cli(_) => layout.bundle_key(&ts),
        PointerKind::Library => layout.library_bundle_key(&ts),
    };
    match store
        .get_limited(&bundle_key, max_bundle_download_bytes())
        .await
        .map_err(store_error(store))?
    {
        Some(object) => Ok((ts, object.body)),
        None => Err(VaultError::BundleMissing { ts }),
    }
}

/// Opens an RQE1 bundle (in its own buffer) and requires its RQEM0001 seal
/// to carry `ts` (anti-rollback).
fn open_sealed(ts: Timestamp, body: Vec<u8>, key: &Key) -> Result<FetchedBundle, VaultError> {
    let crypto = |source| VaultError::Crypto {
        ts: ts.clone(),
        source,
    };
    let plaintext = rqe1::open_owned(key, body).map_err(crypto)?;
    rqem::unwrap_expecting(&plaintext, ts.as_str()).map_err(crypto)?;
    Ok(FetchedBundle { ts, plaintext })
}

/// Every published version, oldest first.
pub async fn versions(store: &dyn Store, layout: &Layout) -> Result<Vec<Timestamp>, VaultError> {
    let objects = store
        .list(layout.prefix())
        .await
        .map_err(store_error(store))?;
    let mut versions: Vec<Timestamp> = objects
        .iter()
        .filter_map(|object| {
            let name = object.key.strip_prefix(layout.prefix())?;
            let ts = name
                .strip_prefix("versions/")
                .and_then(|file| file.strip_suffix(".enc"))
                .or_else(|| name.strip_prefix("v="))?;
            ts.parse().ok()
        })
        .collect();
    versions.sort();
    versions.dedup();
    Ok(versions)
}

/// `pull`'s anti-rollback rule: refuse a remote older than the local
/// high-water mark (the last timestamp this machine synced).
pub fn check_not_backwards(remote: &Timestamp, seen: Option<&Timestamp>) -> Result<(), VaultError> {
    match seen {
        Some(seen) if remote < seen => Err(VaultError::RemoteWentBackwards {
            remote: remote.clone(),
            seen: seen.clone(),
        }),
        _ => Ok(()),
    }
}

/// `push`'s guard: refuse when the remote moved past the local high-water
/// mark, so a push never silently discards a teammate's version.
pub fn check_not_behind(remote: &Timestamp, seen: Option<&Timestamp>) -> Result<(), VaultError> {
    match seen {
        Some(seen) if remote > seen => Err(VaultError::RemoteMovedOn {
            remote: remote.clone(),
            seen: seen.clone(),
        }),
        None => Err(VaultError::RemoteNeverSynced {
            remote: remote.clone(),
        }),
        _ => Ok(()),
    }
}
