//! The key an env's sync and import records are sealed and fingerprinted
//! with, kept so that a passphrase rotation leaves them readable.
//!
//! Records hold fingerprints of values vsync cannot read back (GitHub's
//! are write-only), so they cannot be re-keyed when the vault key changes.
//! Instead the records key stays the same for the env's life and is kept in
//! the env's store at `<prefix>sync.key`, sealed under the vault key: a
//! rotation re-seals those 64 bytes, not the records. Until an env's first
//! rotation there is no object, and the records key is the vault key
//! itself, as it always was.
//!
//! The object is one or two RQE1 envelopes of the key, one per vault key
//! that opens it. During a rotation it holds both, so whichever way the
//! rotation ends (published, lost a race, killed), the key the keystore
//! holds still opens it; once the new version is published, only the new
//! key does.

use vsync_crypto::{Key, rqe1};

use crate::store::{ETag, PutCondition, Store};
use crate::vault::Layout;

use super::SyncError;

/// One envelope: the 32-byte key sealed in RQE1.
const ENVELOPE_LEN: usize = rqe1::MIN_LEN + 32;

/// At most one envelope for the current vault key and one for the key a
/// rotation replaces.
const MAX_OBJECT_BYTES: usize = 2 * ENVELOPE_LEN;

/// An env's records key, as found in its store.
pub struct RecordsKey {
    /// The key records are sealed and fingerprinted with.
    pub key: Key,
    /// The object's version, when there is one.
    etag: Option<ETag>,
}

/// The records key of the env under `layout`, opened with `vault_key`.
pub async fn load(
    store: &dyn Store,
    layout: &Layout,
    vault_key: &Key,
) -> Result<RecordsKey, SyncError> {
    let object_key = layout.records_key();
    let Some(object) = store
        .get_limited(&object_key, MAX_OBJECT_BYTES as u64)
        .await
        .map_err(SyncError::Record)?
    else {
        return Ok(RecordsKey {
            key: vault_key.clone(),
            etag: None,
        });
    };
    let body = &object.body;
    if body.is_empty() || body.len() % ENVELOPE_LEN != 0 {
        return Err(SyncError::RecordUnreadable(format!(
            "{object_key} is not a records key ({} bytes)",
            body.len()
        )));
    }
    let key = body
        .chunks(ENVELOPE_LEN)
        .find_map(|envelope| rqe1::open_key(vault_key, envelope).ok())
        .ok_or_else(|| {
            SyncError::RecordUnreadable(format!(
                "{object_key} cannot be opened with this env's key: was its passphrase rotated on another machine? get the new one from whoever rotated it"
            ))
        })?;
    Ok(RecordsKey {
        key,
        etag: Some(object.etag),
    })
}

/// A rotation's hold on the records key, between sealing it for both vault
/// keys and dropping the old one.
pub struct Rotation {
    records_key: Key,
    new_vault_key: Key,
    etag: ETag,
}

/// Before a rotation publishes: seals the records key (opened with `old`)
/// under both `new` and `old`, compare-and-swap. Lost to a concurrent
/// rotation, it fails with the store's precondition error.
pub async fn begin_rotation(
    store: &dyn Store,
    layout: &Layout,
    old: &Key,
    new: &Key,
) -> Result<Rotation, SyncError> {
    let current = load(store, layout, old).await?;
    let mut body = rqe1::seal_key(new, &current.key);
    body.extend(rqe1::seal_key(old, &current.key));
    let condition = match current.etag {
        Some(etag) => PutCondition::IfMatch(etag),
        None => PutCondition::IfAbsent,
    };
    let etag = store
        .put(&layout.records_key(), &body, condition)
        .await
        .map_err(SyncError::Record)?;
    Ok(Rotation {
        records_key: current.key,
        new_vault_key: new.clone(),
        etag,
    })
}

impl Rotation {
    /// Once the new version is published: only the new vault key opens the
    /// records key. If this fails the old key keeps opening it (what it
    /// guards is names and fingerprints, never values) until the next
    /// rotation.
    pub async fn finish(self, store: &dyn Store, layout: &Layout) -> Result<(), SyncError> {
        let body = rqe1::seal_key(&self.new_vault_key, &self.records_key);
        store
            .put(
                &layout.records_key(),
                &body,
                PutCondition::IfMatch(self.etag),
            )
            .await
            .map(drop)
            .map_err(SyncError::Record)
    }
}
