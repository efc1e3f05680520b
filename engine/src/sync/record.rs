//! The record of what vsync last applied to one sink target: per platform
//! name, the vault key it came from, the keyed fingerprint of the value and
//! the platform's revision right after the write. No values.
//!
//! It lives in the env's store next to the bundles (`<prefix>sync/<target>.enc`),
//! sealed in RQE1 under the env's vault key, so every teammate who can pull
//! the vault shares it, and nobody else can even see which secrets exist.
//! Writes are compare-and-swap; a concurrent sync's entries are merged, not
//! overwritten.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vsync_crypto::{Key, rqe1};

use crate::store::{ETag, PutCondition, Store, StoreError};
use crate::vault::Layout;

use super::SyncError;

const FORMAT: &str = "vsync-sync-record/1";

/// How often a record write is retried after losing a race to another sync.
const SAVE_ATTEMPTS: usize = 3;

/// What vsync wrote under one platform name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEntry {
    /// The vault key the value came from.
    pub key: String,
    /// The keyed fingerprint of the value written.
    pub fingerprint: String,
    /// The platform's revision after the write, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordFile {
    format: String,
    target: String,
    secrets: BTreeMap<String, RecordEntry>,
}

/// The record for one target, as loaded.
#[derive(Debug, Default)]
pub struct Record {
    /// Entries by platform name.
    pub secrets: BTreeMap<String, RecordEntry>,
    etag: Option<ETag>,
}

/// What one sync changed in the record: entries to set and names to drop.
#[derive(Debug, Default, Clone)]
pub struct RecordDelta {
    /// Entries written or confirmed by this sync.
    pub set: BTreeMap<String, RecordEntry>,
    /// Names this sync deleted, or found gone from the platform.
    pub remove: Vec<String>,
}

impl RecordDelta {
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    fn apply_to(&self, secrets: &mut BTreeMap<String, RecordEntry>) {
        for name in &self.remove {
            secrets.remove(name);
        }
        for (name, entry) in &self.set {
            secrets.insert(name.clone(), entry.clone());
        }
    }
}

/// Where a target's record is kept: a store, the env's layout and its key.
pub struct RecordStore<'a> {
    store: &'a dyn Store,
    object_key: String,
    target: String,
    key: &'a Key,
}

impl<'a> RecordStore<'a> {
    /// The record of `target` under `layout`, sealed with `key`.
    pub fn new(store: &'a dyn Store, layout: &Layout, target: &str, key: &'a Key) -> Self {
        RecordStore {
            store,
            object_key: layout.sync_record_key(target),
            target: target.to_owned(),
            key,
        }
    }

    /// Loads the record; an absent object is an empty record.
    pub async fn load(&self) -> Result<Record, SyncError> {
        let Some(object) = self
            .store
            .get(&self.object_key)
            .await
            .map_err(SyncError::Record)?
        else {
            return Ok(Record::default());
        };
        let plaintext = rqe1::open(self.key, &object.body).map_err(|error| {
            SyncError::RecordUnreadable(format!(
                "{} cannot be opened with this env's key ({error}); was the passphrase rotated by a tool that does not re-seal it?",
                self.object_key
            ))
        })?;
        let file: RecordFile = serde_json::from_slice(&plaintext).map_err(|error| {
            SyncError::RecordUnreadable(format!(
                "{} is not a sync record: {error}",
                self.object_key
            ))
        })?;
        if file.format != FORMAT || file.target != self.target {
            return Err(SyncError::RecordUnreadable(format!(
                "{} holds {} for {:?}, expected {FORMAT} for {:?}",
                self.object_key, file.format, file.target, self.target
            )));
        }
        Ok(Record {
            secrets: file.secrets,
            etag: Some(object.etag),
        })
    }

    /// Writes `record` with `delta` applied, compare-and-swap; on a lost
    /// race, reloads and applies `delta` to the newer record instead. On
    /// success `record` is what was written, with its new ETag, so the
    /// next save (a later checkpoint of the same sync) swaps against it.
    pub async fn save(&self, record: &mut Record, delta: &RecordDelta) -> Result<(), SyncError> {
        if delta.is_empty() {
            return Ok(());
        }
        for _ in 0..SAVE_ATTEMPTS {
            let mut secrets = record.secrets.clone();
            delta.apply_to(&mut secrets);
            let file = RecordFile {
                format: FORMAT.to_owned(),
                target: self.target.clone(),
                secrets,
            };
            let plaintext = serde_json::to_vec(&file).expect("a record serialises");
            let condition = match record.etag.clone() {
                Some(etag) => PutCondition::IfMatch(etag),
                None => PutCondition::IfAbsent,
            };
            let sealed = rqe1::seal(self.key, &plaintext);
            match self.store.put(&self.object_key, &sealed, condition).await {
                Ok(etag) => {
                    *record = Record {
                        secrets: file.secrets,
                        etag: Some(etag),
                    };
                    return Ok(());
                }
                Err(StoreError::PreconditionFailed { .. }) => *record = self.load().await?,
                Err(error) => return Err(SyncError::Record(error)),
            }
        }
        Err(SyncError::Record(StoreError::PreconditionFailed {
            key: self.object_key.clone(),
        }))
    }
}
