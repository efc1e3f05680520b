//! Planning a sync: preflight every name and value against the sink's
//! rules, then diff the vault against the platform without plaintext state.

use std::collections::{BTreeMap, HashMap};

use futures_util::stream::{self, StreamExt};
use vsync_crypto::fingerprint::FingerprintKey;

use crate::sink::{RemoteSecret, SecretValue, Sink};

use super::apply::{RetryPolicy, with_retries};
use super::record::Record;
use super::{Action, Desired, Drift, PlannedSecret, Refusal, SyncError};

/// One desired secret after mapping: its platform name and fingerprint.
pub(super) struct Mapped<'a> {
    pub key: &'a str,
    pub name: String,
    pub value: &'a SecretValue,
    pub fingerprint: String,
}

/// Keeps the last value of a key given twice (upstream: "last one wins"),
/// at the position of its last occurrence.
pub(super) fn dedupe(desired: &[Desired]) -> Vec<&Desired> {
    let last: HashMap<&str, usize> = desired
        .iter()
        .enumerate()
        .map(|(index, secret)| (secret.key.as_str(), index))
        .collect();
    desired
        .iter()
        .enumerate()
        .filter(|(index, secret)| last[secret.key.as_str()] == *index)
        .map(|(_, secret)| secret)
        .collect()
}

/// Maps every key to its platform name and refuses what the platform
/// would reject: bad names, two keys on one name, oversized or binary
/// values.
pub(super) fn preflight<'a>(
    sink: &dyn Sink,
    desired: &[&'a Desired],
    fingerprints: &FingerprintKey,
) -> (Vec<Mapped<'a>>, Vec<Refusal>) {
    let caps = sink.capabilities();
    let mut refusals = Vec::new();
    let mut mapped = Vec::with_capacity(desired.len());
    let mut by_folded: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for secret in desired {
        let name = sink.map_name(&secret.key);
        if let Err(problem) = caps.names.check(&name) {
            refusals.push(Refusal::for_key(&secret.key, &name, problem));
        }
        if secret.value.len() > caps.max_value_bytes {
            refusals.push(Refusal::for_key(
                &secret.key,
                &name,
                format!(
                    "the value is {} bytes, the platform stores at most {}",
                    secret.value.len(),
                    caps.max_value_bytes
                ),
            ));
        }
        if !caps.empty_values && secret.value.is_empty() {
            refusals.push(Refusal::for_key(
                &secret.key,
                &name,
                "the value is empty and the platform does not store empty values".into(),
            ));
        }
        if caps.text_only && secret.value.as_text().is_none() {
            refusals.push(Refusal::for_key(
                &secret.key,
                &name,
                "the value is not UTF-8 text and the platform stores text only".into(),
            ));
        }
        by_folded
            .entry(caps.names.fold(&name))
            .or_default()
            .push(&secret.key);
        mapped.push(Mapped {
            key: &secret.key,
            fingerprint: fingerprints.fingerprint(secret.value.as_bytes()),
            name,
            value: &secret.value,
        });
    }
    for (folded, keys) in by_folded.into_iter().filter(|(_, keys)| keys.len() > 1) {
        let how = if caps.names.case_insensitive {
            "the platform ignores case, so they"
        } else {
            "they"
        };
        refusals.push(Refusal {
            key: None,
            name: Some(folded.clone()),
            problem: format!(
                "vault keys {} all map to {folded}; {how} would overwrite each other — rename all but one",
                keys.join(", ")
            ),
        });
    }
    (mapped, refusals)
}

/// Diffs the mapped secrets against the platform's inventory and the
/// record of the last apply. Readable platforms are read only where the
/// record cannot vouch for the value (no entry, or the revision moved).
pub(super) async fn diff(
    sink: &dyn Sink,
    mapped: &[Mapped<'_>],
    inventory: &[RemoteSecret],
    record: &Record,
    fingerprints: &FingerprintKey,
    retry: &RetryPolicy,
    prune: bool,
) -> Result<Vec<PlannedSecret>, SyncError> {
    let caps = sink.capabilities();
    let remote: HashMap<String, &RemoteSecret> = inventory
        .iter()
        .map(|secret| (caps.names.fold(&secret.name), secret))
        .collect();

    // Which remote values must be read to decide, and read them concurrently.
    let needs_read: Vec<&str> = if caps.readable {
        mapped
            .iter()
            .filter_map(|secret| {
                let found = remote.get(&caps.names.fold(&secret.name))?;
                let vouched = record.secrets.get(&found.name).is_some_and(|entry| {
                    entry.revision.is_some() && entry.revision == found.revision
                });
                (found.value.is_none() && !vouched).then_some(found.name.as_str())
            })
            .collect()
    } else {
        Vec::new()
    };
    let reads: HashMap<&str, Option<SecretValue>> = stream::iter(needs_read)
        .map(|name| async move {
            with_retries(retry, None, || sink.read(name))
                .await
                .map(|value| (name, value))
        })
        .buffer_unordered(caps.rate.max_in_flight.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(SyncError::Inventory)?;

    let mut planned = Vec::with_capacity(mapped.len());
    for secret in mapped {
        let found = remote.get(&caps.names.fold(&secret.name));
        let entry = found.and_then(|found| record.secrets.get(&found.name));
        let (action, drift) = match found {
            None => {
                let drift = record
                    .secrets
                    .contains_key(&secret.name)
                    .then_some(Drift::Deleted);
                (Action::Create, drift)
            }
            Some(found) if caps.readable => {
                let value = found
                    .value
                    .as_ref()
                    .or_else(|| reads.get(found.name.as_str()).and_then(Option::as_ref));
                let remote_fingerprint = match value {
                    Some(value) => Some(fingerprints.fingerprint(value.as_bytes())),
                    // Not read because the record vouches for it.
                    None => entry.map(|entry| entry.fingerprint.clone()),
                };
                let recorded = entry.map(|entry| &entry.fingerprint);
                let edited = recorded.is_some() && remote_fingerprint.as_ref() != recorded;
                let drift = edited.then_some(Drift::Edited);
                if remote_fingerprint.as_deref() == Some(secret.fingerprint.as_str()) {
                    (Action::Unchanged, drift)
                } else {
                    (Action::Update, drift)
                }
            }
            Some(found) => match entry {
                None => (Action::Update, Some(Drift::Unknown)),
                Some(entry) => {
                    let edited = entry.revision.is_some()
                        && found.revision.is_some()
                        && entry.revision != found.revision;
                    let drift = edited.then_some(Drift::Edited);
                    if entry.fingerprint == secret.fingerprint && !edited {
                        (Action::Unchanged, None)
                    } else {
                        (Action::Update, drift)
                    }
                }
            },
        };
        planned.push(PlannedSecret {
            name: found.map_or_else(|| secret.name.clone(), |found| found.name.clone()),
            key: Some(secret.key.to_owned()),
            action,
            drift,
            ownership: None,
        });
    }

    // Names vsync wrote before that the vault no longer has.
    let wanted: std::collections::HashSet<String> = mapped
        .iter()
        .map(|secret| caps.names.fold(&secret.name))
        .collect();
    for found in inventory {
        if wanted.contains(&caps.names.fold(&found.name)) {
            continue;
        }
        let Some(entry) = record.secrets.get(&found.name) else {
            continue; // never written by vsync: not ours to touch
        };
        let (action, ownership) = if found.managed == Some(false) {
            (
                Action::Stale,
                Some("recorded by vsync but the platform label managed-by=vsync is missing; left alone".to_owned()),
            )
        } else if prune {
            (Action::Prune, None)
        } else {
            (Action::Stale, None)
        };
        planned.push(PlannedSecret {
            name: found.name.clone(),
            key: Some(entry.key.clone()),
            action,
            drift: None,
            ownership,
        });
    }
    Ok(planned)
}
