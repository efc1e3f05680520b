//! Planning a sync: preflight every name and value against the sink's
//! rules, then diff the vault against the platform without plaintext state.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use vsync_crypto::fingerprint::FingerprintKey;

use crate::sink::{RemoteSecret, SecretValue, Sink, SinkError};

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

/// The diff's result.
pub(super) struct Plan {
    /// One line per platform name.
    pub lines: Vec<PlannedSecret>,
    /// Why each [`Action::Unreadable`] name could not be read.
    pub unreadable: HashMap<String, String>,
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
) -> Result<Plan, SyncError> {
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
    let mut reads: HashMap<&str, Option<SecretValue>> = HashMap::new();
    let mut unreadable: HashMap<String, String> = HashMap::new();
    let mut gone: HashSet<&str> = HashSet::new();
    let results: Vec<_> = stream::iter(needs_read)
        .map(|name| async move { (name, with_retries(retry, None, || sink.read(name)).await) })
        .buffer_unordered(caps.rate.max_in_flight.max(1))
        .collect()
        .await;
    for (name, result) in results {
        match result {
            Ok(Some(value)) => {
                reads.insert(name, Some(value));
            }
            // Listed, yet nothing to read (deleted between the listing and
            // the read; GCP: its newest version disabled or destroyed): plan
            // it as absent, whatever the record says vsync wrote there.
            Ok(None) | Err(SinkError::NotFound(_)) => {
                gone.insert(name);
            }
            // This one secret is closed to us (Azure: disabled; a policy on
            // one name): leave it and sync the rest.
            Err(
                error @ (SinkError::Denied(_) | SinkError::Rejected(_) | SinkError::Conflict(_)),
            ) => {
                unreadable.insert(name.to_owned(), error.to_string());
            }
            // The platform or the credentials as a whole: stop before writing.
            Err(error) => return Err(SyncError::Inventory(error)),
        }
    }

    let mut planned = Vec::with_capacity(mapped.len());
    for secret in mapped {
        let found = remote
            .get(&caps.names.fold(&secret.name))
            .filter(|found| !gone.contains(found.name.as_str()));
        let entry = found.and_then(|found| record.secrets.get(&found.name));
        let (action, drift) = match found {
            Some(found) if unreadable.contains_key(&found.name) => (Action::Unreadable, None),
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
            revision: found.and_then(|found| found.revision.clone()),
        });
    }

    // Names vsync wrote before that the vault no longer has.
    let wanted: HashSet<String> = mapped
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
            revision: found.revision.clone(),
        });
    }
    Ok(Plan {
        lines: planned,
        unreadable,
    })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use vsync_crypto::Key;

    use super::*;
    use crate::sink::{
        Alphabet, Applied, Batch, Capabilities, Change, Deletion, NameRules, RateBudget, SinkError,
    };

    /// A sink with Azure's rules, for preflight: it is never called.
    struct AzureRules(Capabilities);

    #[async_trait::async_trait]
    impl Sink for AzureRules {
        fn capabilities(&self) -> &Capabilities {
            &self.0
        }
        fn target(&self) -> String {
            "rules-only".into()
        }
        fn map_name(&self, key: &str) -> String {
            key.replace(['_', '.'], "-")
        }
        async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError> {
            Err(SinkError::Rejected("preflight lists nothing".into()))
        }
        async fn read(&self, _: &str) -> Result<Option<SecretValue>, SinkError> {
            Err(SinkError::Rejected("preflight reads nothing".into()))
        }
        async fn apply_one(&self, _: &Change<'_>) -> Result<Applied, SinkError> {
            Err(SinkError::Rejected("preflight writes nothing".into()))
        }
    }

    fn azure() -> AzureRules {
        AzureRules(Capabilities {
            readable: true,
            names: NameRules {
                max_len: 127,
                alphabet: Alphabet::AsciiAlphanumericAnd("-"),
                leading_digit: true,
                reserved_prefixes: &[],
                case_insensitive: true,
                refuses_arn_suffix: false,
            },
            max_value_bytes: 16,
            max_secrets: None,
            text_only: true,
            empty_values: false,
            tags: true,
            deletion: Deletion::Recoverable,
            batch: Batch::One,
            rate: RateBudget::unpaced(1),
        })
    }

    fn desired(pairs: &[(&str, &[u8])]) -> Vec<Desired> {
        pairs
            .iter()
            .map(|(key, value)| Desired {
                key: (*key).to_owned(),
                value: SecretValue::new(vsync_crypto::Zeroizing::new(value.to_vec())),
            })
            .collect()
    }

    fn refusals(pairs: &[(&str, &[u8])]) -> Vec<Refusal> {
        let desired = desired(pairs);
        let deduped = dedupe(&desired);
        let key = Key::derive(b"k", b"s", NonZeroU32::new(1).unwrap());
        preflight(&azure(), &deduped, &FingerprintKey::derive(&key)).1
    }

    #[test]
    fn a_later_duplicate_wins() {
        let desired = desired(&[("A", b"1"), ("B", b"2"), ("A", b"3")]);
        let kept: Vec<(&str, &[u8])> = dedupe(&desired)
            .iter()
            .map(|secret| (secret.key.as_str(), secret.value.as_bytes()))
            .collect();
        assert_eq!(kept, [("B", &b"2"[..]), ("A", &b"3"[..])]);
    }

    #[test]
    fn a_lossy_transform_collision_is_refused_naming_both_keys() {
        let found = refusals(&[("DB_PASS", b"1"), ("db-pass", b"2"), ("OK", b"3")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].problem.contains("DB_PASS, db-pass"),
            "{}",
            found[0].problem
        );
        assert!(
            found[0].problem.contains("ignores case"),
            "{}",
            found[0].problem
        );
    }

    #[test]
    fn size_emptiness_and_binary_values_are_refused_without_echoing_them() {
        let found = refusals(&[
            ("BIG", b"0123456789abcdefXYZ"),
            ("EMPTY", b""),
            ("BINARY", &[0xff, 0xfe]),
            ("BAD:NAME", b"fine"),
        ]);
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(
            text[0].starts_with("BIG: the value is 19 bytes"),
            "{text:?}"
        );
        assert!(text[1].contains("empty"), "{text:?}");
        assert!(text[2].contains("UTF-8"), "{text:?}");
        assert!(text[3].contains("':' is not allowed"), "{text:?}");
        assert!(
            text.iter().all(|line| !line.contains("XYZ")),
            "values never appear: {text:?}"
        );
    }
}
