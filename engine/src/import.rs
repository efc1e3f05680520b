//! Import planning: one [`Source`]'s secrets against the vault's keys.
//!
//! 1. **Read** the source: one listing, then the enabled secrets in the
//!    platform's batch size, concurrently within its rate budget, 429 and
//!    5xx retried — the machinery sinks use ([`crate::sync`]). A secret
//!    whose listed revision is the one recorded at the last import, and
//!    whose vault value is still the one imported, is not read again.
//! 2. **Name** each value: the platform's transform undone
//!    ([`Source::unmap_name`]), only names with the prefix kept and the
//!    prefix stripped, `--map OLD=NEW` renames,
//!    then include/exclude globs on the resulting key. A key `.env` cannot
//!    hold, or two source values landing on one key, refuse the import
//!    before anything is written.
//! 3. **Diff** each key three ways: the source's value, the vault's, and the
//!    fingerprint of what the last import from this source brought in (the
//!    import record, sealed in the env's store like the sync record). A key
//!    changed only at the source is updated; changed only in the vault is
//!    kept; changed on both sides (or present on both sides with no record
//!    to tell which side changed) is a **conflict**: the import is refused
//!    unless [`Prefer`] settles it.
//!
//! Values that `.env` cannot carry as they are — not UTF-8, or holding NUL —
//! go to an asset file (see [`Destination`]); a text value the grammar
//! cannot carry is refused naming its key. Nothing here writes the vault;
//! the caller applies [`ImportPlan::writes`] and saves the record.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;
use vsync_crypto::fingerprint::FingerprintKey;

use crate::sink::{RateBudget, SecretValue, SinkError};
use crate::source::{ListedSecret, ReadBatch, Source, SourceValue};
use crate::sync::record::{Record, RecordDelta, RecordEntry};
use crate::sync::{Pacer, RetryPolicy, SyncError, with_retries};
use crate::{dotenv, vault_fs};

/// How source names become vault keys, applied in this order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NameRules {
    /// Only names starting with it are imported, without it (`--prefix`).
    pub prefix: Option<String>,
    /// `--map OLD=NEW`: the name (once the prefix is stripped) `OLD`
    /// becomes the key `NEW`.
    pub renames: Vec<(String, String)>,
    /// Only keys matching one of these globs are imported (all when empty).
    pub include: Vec<String>,
    /// Keys matching one of these globs are not imported.
    pub exclude: Vec<String>,
}

/// Which side wins a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    /// The source's value replaces the vault's.
    Source,
    /// The vault's value stays.
    Vault,
}

/// How an import runs.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The name rules.
    pub names: NameRules,
    /// Settles conflicts; without it a conflict refuses the import.
    pub prefer: Option<Prefer>,
    /// Delete vault keys an earlier import from this source brought in and
    /// that the source no longer has. Keys the source never provided are
    /// never deleted.
    pub delete_missing: bool,
    /// Retries of failed calls.
    pub retry: RetryPolicy,
    /// Overrides the source's declared rate budget (tests, benchmarks).
    pub rate: Option<RateBudget>,
}

/// What the import does with one vault key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportAction {
    /// New in the vault.
    Add,
    /// Changed at the source; the vault takes the new value.
    Change,
    /// The same on both sides.
    Unchanged,
    /// Changed in the vault since the last import, not at the source (or a
    /// conflict settled for the vault): the vault's value stays.
    KeepVault,
    /// In the vault, not in the source; left alone.
    OnlyInVault,
    /// Imported earlier, gone from the source, deleted (`--delete-missing`).
    Delete,
    /// Changed on both sides since the last import; refused unless settled.
    Conflict,
    /// Disabled at the source: reported, not read, the vault left alone.
    Disabled,
}

impl ImportAction {
    /// Whether the vault is written for this line.
    pub fn writes(self) -> bool {
        matches!(
            self,
            ImportAction::Add | ImportAction::Change | ImportAction::Delete
        )
    }
}

/// Where a value is kept in the vault folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// A `KEY=value` entry of `.env.<env>`.
    EnvFile,
    /// A file of its own named after the key: values `.env` cannot carry
    /// (binary, NUL).
    Asset,
}

/// One line of an import plan: a name, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportLine {
    /// The vault key (for a disabled secret: the source name).
    pub key: String,
    /// The source secret it comes from, if it comes from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What happens.
    pub action: ImportAction,
    /// Where the value goes.
    pub destination: Destination,
}

/// A vault write the plan asks for.
#[derive(Debug, Clone)]
pub enum VaultWrite {
    /// Set the key to the value.
    Set(SecretValue),
    /// Delete the key.
    Delete,
}

/// The vault as the import sees it.
pub struct VaultView<'a> {
    /// The entries of `.env.<env>`.
    pub entries: &'a BTreeMap<String, SecretValue>,
    /// The asset file named after a key, if the vault folder holds one:
    /// consulted for keys whose source value is binary.
    pub asset: &'a (dyn Fn(&str) -> Option<SecretValue> + Sync),
}

/// What an import would do, and what it needs written.
#[derive(Debug)]
pub struct ImportPlan {
    /// The source, as it describes itself.
    pub origin: String,
    /// One line per key, sorted by key.
    pub lines: Vec<ImportLine>,
    /// The writes to make, by key, with where each goes.
    pub writes: BTreeMap<String, (Destination, VaultWrite)>,
    /// The import record's update once the writes are made.
    pub record: RecordDelta,
    /// How many secrets were read (after the list).
    pub read: usize,
}

impl ImportPlan {
    /// How many lines have `action`.
    pub fn count(&self, action: ImportAction) -> usize {
        self.lines.iter().filter(|l| l.action == action).count()
    }

    /// The keys in conflict.
    pub fn conflicts(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|line| line.action == ImportAction::Conflict)
            .map(|line| line.key.as_str())
            .collect()
    }
}

/// Why an import cannot be planned. Names keys and source names, never a
/// value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Listing or reading the source failed; nothing was written.
    #[error("could not read the source: {0}")]
    Source(SinkError),
    /// A glob of the name rules does not parse.
    #[error("the glob {glob:?} is invalid: {reason}")]
    Glob {
        /// The glob.
        glob: String,
        /// Why.
        reason: String,
    },
    /// Names that cannot become vault keys; nothing was written.
    #[error("refused before any write: {}", .0.join("; "))]
    Names(Vec<String>),
    /// The import record could not be read.
    #[error("the import record: {0}")]
    Record(#[from] SyncError),
}

/// The name the record of imports from `origin` under `rules` is kept
/// under. The rules are part of it (as a keyed digest, naming no key):
/// under other rules the same secrets land on other keys, so the old
/// record would misreport them.
pub fn record_target(origin: &str, rules: &NameRules, fingerprints: &FingerprintKey) -> String {
    let described = serde_json::to_vec(rules).expect("name rules serialise");
    let digest = fingerprints.fingerprint(&described);
    format!("import:{origin}:{}", &digest[..12])
}

/// Plans importing `source` into `vault`, given the `record` of the last
/// import from it.
pub async fn plan(
    source: &dyn Source,
    vault: &VaultView<'_>,
    record: &Record,
    fingerprints: &FingerprintKey,
    options: &ImportOptions,
) -> Result<ImportPlan, ImportError> {
    let globs = Globs::new(&options.names)?;
    let listed = with_retries(&options.retry, None, || source.list())
        .await
        .map_err(ImportError::Source)?;

    // A secret whose revision and vault values are those of the last
    // import needs no read: its keys stand as recorded.
    let mut recorded_keys: HashMap<&str, Vec<(&String, &RecordEntry)>> = HashMap::new();
    for (key, entry) in &record.secrets {
        recorded_keys
            .entry(&entry.key)
            .or_default()
            .push((key, entry));
    }
    let still_imported = |secret: &ListedSecret| {
        let (Some(revision), Some(keys)) = (&secret.revision, recorded_keys.get(&*secret.name))
        else {
            return false;
        };
        keys.iter().all(|(key, entry)| {
            entry.revision.as_ref() == Some(revision)
                && vault.entries.get(*key).is_some_and(|value| {
                    fingerprints.fingerprint(value.as_bytes()) == entry.fingerprint
                })
        })
    };

    let mut lines = Vec::new();
    let mut to_read = Vec::new();
    let mut untouched: Vec<&ListedSecret> = Vec::new();
    for secret in &listed {
        if !secret.enabled {
            lines.push(ImportLine {
                key: secret.name.clone(),
                source: Some(secret.name.clone()),
                action: ImportAction::Disabled,
                destination: Destination::EnvFile,
            });
        } else if still_imported(secret) {
            untouched.push(secret);
        } else {
            to_read.push(secret);
        }
    }
    let ReadBatch {
        values,
        disabled: found_disabled,
    } = read_all(source, &to_read, options).await?;
    for name in found_disabled {
        lines.push(ImportLine {
            key: name.clone(),
            source: Some(name),
            action: ImportAction::Disabled,
            destination: Destination::EnvFile,
        });
    }

    // Name every value; refuse what cannot become a key, and collisions.
    let mut problems = Vec::new();
    let mut incoming: BTreeMap<String, SourceValue> = BTreeMap::new();
    for value in values {
        let Some(key) = options
            .names
            .key_for(&source.unmap_name(&value.name), &globs)
        else {
            continue;
        };
        if let Err(reason) = dotenv::check_key(&key) {
            problems.push(format!("{} → {key:?}: {reason}", value.secret));
            continue;
        }
        if let Some(first) = incoming.get(&key) {
            problems.push(format!(
                "{} and {} both become the key {key}; rename one with --map",
                first.secret, value.secret
            ));
            continue;
        }
        if is_binary(&value.value) {
            if let Some(problem) = asset_name_problem(&key) {
                problems.push(format!(
                    "{} → {key}: the value is binary, so it goes to a file named after its key, which {problem}",
                    value.secret
                ));
                continue;
            }
        } else if let Err(reason) = dotenv::check_value(value.value.as_text().unwrap_or_default()) {
            problems.push(format!(
                "{} → {key}: the value {reason}; it cannot be written to a .env file",
                value.secret
            ));
            continue;
        }
        incoming.insert(key, value);
    }
    if !problems.is_empty() {
        return Err(ImportError::Names(problems));
    }

    let mut plan = ImportPlan {
        origin: source.origin(),
        lines,
        writes: BTreeMap::new(),
        record: RecordDelta::default(),
        read: to_read.len(),
    };
    let revisions: HashMap<&str, Option<&String>> = listed
        .iter()
        .map(|secret| (secret.name.as_str(), secret.revision.as_ref()))
        .collect();
    for secret in &untouched {
        for (key, entry) in &recorded_keys[&*secret.name] {
            plan.lines.push(ImportLine {
                key: (*key).clone(),
                source: Some(secret.name.clone()),
                action: ImportAction::Unchanged,
                destination: Destination::EnvFile,
            });
            plan.record.set.insert((*key).clone(), (*entry).clone());
        }
    }
    for (key, incoming) in &incoming {
        let destination = if is_binary(&incoming.value) {
            Destination::Asset
        } else {
            Destination::EnvFile
        };
        let current = match destination {
            Destination::EnvFile => vault.entries.get(key).cloned(),
            Destination::Asset => (vault.asset)(key),
        };
        let source_print = fingerprints.fingerprint(incoming.value.as_bytes());
        let recorded = record.secrets.get(key).map(|entry| &entry.fingerprint);
        let action = match &current {
            None => ImportAction::Add,
            Some(current) if current == &incoming.value => ImportAction::Unchanged,
            Some(current) => {
                let source_changed = recorded != Some(&source_print);
                let vault_changed = recorded != Some(&fingerprints.fingerprint(current.as_bytes()));
                match (source_changed, vault_changed, options.prefer) {
                    (true, false, _) => ImportAction::Change,
                    (false, _, _) => ImportAction::KeepVault,
                    (true, true, Some(Prefer::Source)) => ImportAction::Change,
                    (true, true, Some(Prefer::Vault)) => ImportAction::KeepVault,
                    (true, true, None) => ImportAction::Conflict,
                }
            }
        };
        if action.writes() {
            plan.writes.insert(
                key.clone(),
                (destination, VaultWrite::Set(incoming.value.clone())),
            );
        }
        if action != ImportAction::Conflict {
            // The record holds what the source gave, so the next import
            // tells a vault edit (kept) from a source change (taken).
            plan.record.set.insert(
                key.clone(),
                RecordEntry {
                    key: incoming.secret.clone(),
                    fingerprint: source_print,
                    revision: revisions
                        .get(incoming.secret.as_str())
                        .copied()
                        .flatten()
                        .cloned(),
                },
            );
        }
        plan.lines.push(ImportLine {
            key: key.clone(),
            source: Some(incoming.secret.clone()),
            action,
            destination,
        });
    }

    // Keys the source did not give this time: the secret is gone, or was
    // read without that field. Only a disabled secret keeps its record, so
    // re-enabling it unchanged is not a conflict.
    let disabled: HashSet<String> = plan
        .lines
        .iter()
        .filter(|line| line.action == ImportAction::Disabled)
        .filter_map(|line| line.source.clone())
        .collect();
    let given: HashSet<String> = incoming
        .keys()
        .chain(plan.record.set.keys())
        .cloned()
        .collect();
    for (key, entry) in &record.secrets {
        if given.contains(key) {
            continue;
        }
        if disabled.contains(&entry.key) {
            plan.record.set.insert(key.clone(), entry.clone());
            continue;
        }
        let current = vault.entries.get(key);
        let unedited = current
            .is_some_and(|value| fingerprints.fingerprint(value.as_bytes()) == entry.fingerprint);
        if options.delete_missing && unedited {
            plan.writes
                .insert(key.clone(), (Destination::EnvFile, VaultWrite::Delete));
            plan.lines.push(ImportLine {
                key: key.clone(),
                source: Some(entry.key.clone()),
                action: ImportAction::Delete,
                destination: Destination::EnvFile,
            });
        }
        plan.record.remove.push(key.clone());
    }
    for key in vault.entries.keys() {
        let from_source = incoming.contains_key(key) || plan.record.set.contains_key(key);
        if !from_source && !plan.writes.contains_key(key) {
            plan.lines.push(ImportLine {
                key: key.clone(),
                source: None,
                action: ImportAction::OnlyInVault,
                destination: Destination::EnvFile,
            });
        }
    }
    plan.lines.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(plan)
}

/// Whether `.env` cannot carry the value: not UTF-8, or holding NUL (which
/// no process environment can hold either).
fn is_binary(value: &SecretValue) -> bool {
    value.as_text().is_none_or(|text| text.contains('\0'))
}

/// Why a key cannot name an asset file in the vault folder, if it cannot.
fn asset_name_problem(key: &str) -> Option<&'static str> {
    match vault_fs::check_plain_relative(key) {
        Err(not_plain) => Some(not_plain.problem()),
        Ok(()) if key.contains('/') => Some("must be one file name, without `/`"),
        // `.env.<env>`, `.gitignore`: the folder's own files.
        Ok(()) if key.starts_with('.') => Some("must not start with `.`"),
        Ok(()) => None,
    }
}

/// Reads `secrets` in the source's batch size, concurrently within its
/// budget, each call retried on 429 and 5xx.
async fn read_all(
    source: &dyn Source,
    secrets: &[&ListedSecret],
    options: &ImportOptions,
) -> Result<ReadBatch, ImportError> {
    let caps = source.capabilities();
    let budget = options.rate.unwrap_or(caps.rate);
    let pacer = Pacer::new(&budget);
    let batches: Vec<ReadBatch> = stream::iter(secrets.chunks(caps.batch.max(1)))
        .map(|batch| {
            let pacer = &pacer;
            async move { with_retries(&options.retry, Some(pacer), || source.read(batch)).await }
        })
        .buffered(budget.max_in_flight.max(1))
        .try_collect()
        .await
        .map_err(ImportError::Source)?;
    let mut all = ReadBatch::default();
    for batch in batches {
        all.values.extend(batch.values);
        all.disabled.extend(batch.disabled);
    }
    Ok(all)
}

struct Globs {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Globs {
    fn new(rules: &NameRules) -> Result<Self, ImportError> {
        let build = |patterns: &[String]| {
            let mut set = GlobSetBuilder::new();
            for pattern in patterns {
                set.add(Glob::new(pattern).map_err(|error| ImportError::Glob {
                    glob: pattern.clone(),
                    reason: error.kind().to_string(),
                })?);
            }
            set.build().map_err(|error| ImportError::Glob {
                glob: patterns.join(" "),
                reason: error.to_string(),
            })
        };
        Ok(Globs {
            include: (!rules.include.is_empty())
                .then(|| build(&rules.include))
                .transpose()?,
            exclude: build(&rules.exclude)?,
        })
    }
}

impl NameRules {
    /// The vault key for a (transform-undone) source name, or `None` when
    /// the globs leave it out.
    fn key_for(&self, name: &str, globs: &Globs) -> Option<String> {
        let stripped = match &self.prefix {
            Some(prefix) => name.strip_prefix(prefix.as_str())?,
            None => name,
        };
        let key = self
            .renames
            .iter()
            .find(|(old, _)| old == stripped)
            .map_or(stripped, |(_, new)| new.as_str());
        let included = globs
            .include
            .as_ref()
            .is_none_or(|include| include.is_match(key));
        (included && !globs.exclude.is_match(key)).then(|| key.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use vsync_crypto::Key;

    use super::*;
    use crate::source::SourceCapabilities;

    fn key(secret: &[u8]) -> Key {
        Key::derive(secret, b"salt", std::num::NonZeroU32::MIN)
    }

    /// A held secret: value, revision, enabled.
    type Held = (Vec<u8>, u32, bool);

    /// A source held in memory, by name.
    struct Memory {
        caps: SourceCapabilities,
        secrets: Mutex<BTreeMap<String, Held>>,
        reads: AtomicUsize,
        throttle_reads: AtomicUsize,
    }

    impl Memory {
        fn new(secrets: &[(&str, &str)]) -> Self {
            let memory = Memory {
                caps: SourceCapabilities {
                    metadata: true,
                    binary: true,
                    batch: 2,
                    rate: RateBudget::unpaced(4),
                },
                secrets: Mutex::default(),
                reads: AtomicUsize::new(0),
                throttle_reads: AtomicUsize::new(0),
            };
            for (name, value) in secrets {
                memory.set(name, value.as_bytes());
            }
            memory
        }

        fn set(&self, name: &str, value: &[u8]) {
            let mut secrets = self.secrets.lock().unwrap();
            let revision = secrets.get(name).map_or(1, |(_, revision, _)| revision + 1);
            secrets.insert(name.into(), (value.to_vec(), revision, true));
        }
    }

    #[async_trait::async_trait]
    impl Source for Memory {
        fn capabilities(&self) -> &SourceCapabilities {
            &self.caps
        }

        fn origin(&self) -> String {
            "memory:test".into()
        }

        fn unmap_name(&self, name: &str) -> String {
            name.replace('-', "_")
        }

        async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
            Ok(self
                .secrets
                .lock()
                .unwrap()
                .iter()
                .map(|(name, (_, revision, enabled))| ListedSecret {
                    revision: Some(revision.to_string()),
                    enabled: *enabled,
                    ..ListedSecret::named(name)
                })
                .collect())
        }

        async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
            assert!(secrets.len() <= self.caps.batch);
            if self
                .throttle_reads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SinkError::RateLimited {
                    retry_after: Some(Duration::from_millis(1)),
                });
            }
            self.reads.fetch_add(secrets.len(), Ordering::SeqCst);
            let held = self.secrets.lock().unwrap();
            Ok(secrets
                .iter()
                .filter_map(|secret| {
                    held.get(&secret.name).map(|(value, _, _)| SourceValue {
                        secret: secret.name.clone(),
                        name: secret.name.clone(),
                        value: SecretValue::new(value.clone().into()),
                    })
                })
                .collect::<Vec<_>>()
                .into())
        }
    }

    struct Run {
        vault: BTreeMap<String, SecretValue>,
        record: Record,
        fingerprints: FingerprintKey,
        options: ImportOptions,
    }

    impl Run {
        fn new(vault: &[(&str, &str)]) -> Self {
            Run {
                vault: vault
                    .iter()
                    .map(|(k, v)| (k.to_string(), SecretValue::from_text(v)))
                    .collect(),
                record: Record::default(),
                fingerprints: FingerprintKey::derive(&key(b"seven")),
                options: ImportOptions {
                    retry: RetryPolicy {
                        attempts: 3,
                        base_delay: Duration::from_millis(1),
                        max_delay: Duration::from_millis(5),
                    },
                    ..ImportOptions::default()
                },
            }
        }

        async fn plan(&self, source: &Memory) -> Result<ImportPlan, ImportError> {
            let no_assets = |_: &str| None;
            let view = VaultView {
                entries: &self.vault,
                asset: &no_assets,
            };
            plan(
                source,
                &view,
                &self.record,
                &self.fingerprints,
                &self.options,
            )
            .await
        }

        /// Plans, then applies the writes and the record as the caller does.
        async fn import(&mut self, source: &Memory) -> ImportPlan {
            let plan = self.plan(source).await.unwrap();
            for (key, (_, write)) in &plan.writes {
                match write {
                    VaultWrite::Set(value) => self.vault.insert(key.clone(), value.clone()),
                    VaultWrite::Delete => self.vault.remove(key),
                };
            }
            for key in &plan.record.remove {
                self.record.secrets.remove(key);
            }
            for (key, entry) in &plan.record.set {
                self.record.secrets.insert(key.clone(), entry.clone());
            }
            plan
        }
    }

    fn actions(plan: &ImportPlan) -> Vec<(&str, ImportAction)> {
        plan.lines
            .iter()
            .map(|line| (line.key.as_str(), line.action))
            .collect()
    }

    #[tokio::test]
    async fn first_import_adds_and_a_reimport_reads_nothing() {
        let source = Memory::new(&[("DB-PASS", "a"), ("API_KEY", "b"), ("SAME", "s")]);
        let mut run = Run::new(&[("LOCAL", "l"), ("SAME", "s")]);
        let plan = run.import(&source).await;
        assert_eq!(
            actions(&plan),
            [
                ("API_KEY", ImportAction::Add),
                ("DB_PASS", ImportAction::Add),
                ("LOCAL", ImportAction::OnlyInVault),
                ("SAME", ImportAction::Unchanged),
            ]
        );
        assert_eq!(run.vault["DB_PASS"].as_text(), Some("a"));
        assert_eq!(source.reads.load(Ordering::SeqCst), 3);

        let again = run.import(&source).await;
        assert!(again.writes.is_empty());
        assert_eq!(again.read, 0, "unchanged revisions are not read again");
        assert_eq!(source.reads.load(Ordering::SeqCst), 3);
        assert_eq!(again.count(ImportAction::Unchanged), 3);
    }

    #[tokio::test]
    async fn each_side_changing_alone_is_taken_or_kept_and_both_is_a_conflict() {
        let source = Memory::new(&[("A", "1"), ("B", "1"), ("C", "1")]);
        let mut run = Run::new(&[]);
        run.import(&source).await;

        source.set("A", b"2"); // source only
        run.vault
            .insert("B".into(), SecretValue::from_text("vault")); // vault only
        source.set("C", b"2"); // both
        run.vault
            .insert("C".into(), SecretValue::from_text("vault"));
        let plan = run.plan(&source).await.unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("A", ImportAction::Change),
                ("B", ImportAction::KeepVault),
                ("C", ImportAction::Conflict),
            ]
        );
        assert_eq!(plan.conflicts(), ["C"]);
        assert!(!plan.writes.contains_key("C"));

        run.options.prefer = Some(Prefer::Vault);
        let kept = run.import(&source).await;
        assert_eq!(kept.lines[2].action, ImportAction::KeepVault);
        assert_eq!(run.vault["C"].as_text(), Some("vault"));
        // Settled: the next import keeps the vault's value without asking.
        run.options.prefer = None;
        let settled = run.plan(&source).await.unwrap();
        assert_eq!(settled.lines[2].action, ImportAction::KeepVault);

        source.set("C", b"3");
        run.vault
            .insert("C".into(), SecretValue::from_text("vault2"));
        run.options.prefer = Some(Prefer::Source);
        run.import(&source).await;
        assert_eq!(run.vault["C"].as_text(), Some("3"));
    }

    #[tokio::test]
    async fn a_differing_value_with_no_record_to_tell_is_a_conflict() {
        let source = Memory::new(&[("A", "source")]);
        let run = Run::new(&[("A", "vault")]);
        let plan = run.plan(&source).await.unwrap();
        assert_eq!(actions(&plan), [("A", ImportAction::Conflict)]);
    }

    #[tokio::test]
    async fn names_are_stripped_renamed_and_filtered_and_collisions_refused() {
        let source = Memory::new(&[
            ("APP_DB", "1"),
            ("APP_TOKEN", "2"),
            ("APP_DEBUG", "3"),
            ("OTHER", "4"),
        ]);
        let mut run = Run::new(&[]);
        run.options.names = NameRules {
            prefix: Some("APP_".into()),
            renames: vec![("TOKEN".into(), "API_TOKEN".into())],
            include: vec![],
            exclude: vec!["DEBUG*".into()],
        };
        let plan = run.plan(&source).await.unwrap();
        let keys: Vec<&str> = plan.lines.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["API_TOKEN", "DB"], "OTHER lacks the prefix");

        run.options
            .names
            .renames
            .push(("DB".into(), "API_TOKEN".into()));
        let err = run.plan(&source).await.unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("APP_DB and APP_TOKEN both become the key API_TOKEN"),
            "{shown}"
        );

        run.options.names.renames = vec![("DB".into(), "#DB".into())];
        let err = run.plan(&source).await.unwrap_err().to_string();
        assert!(err.contains("APP_DB → \"#DB\""), "{err}");
        for value in ["1", "2", "3", "4"] {
            assert!(!err.contains(&format!("={value}")));
        }
    }

    #[tokio::test]
    async fn a_value_the_grammar_cannot_carry_is_refused_naming_its_key_and_binary_goes_to_a_file()
    {
        let source = Memory::new(&[("JSONISH", "first \"line\nsecond")]);
        let err = Run::new(&[]).plan(&source).await.unwrap_err().to_string();
        assert!(err.contains("JSONISH") && !err.contains("second"), "{err}");

        let source = Memory::new(&[]);
        source.set("CERT_DER", &[0x30, 0x82, 0xff, 0x00]);
        source.set("NUL_TEXT", b"a\0b");
        source.set(".env.dev", &[0xff]);
        let err = Run::new(&[]).plan(&source).await.unwrap_err().to_string();
        assert!(
            err.contains(".env.dev") && err.contains("must not start with `.`"),
            "{err}"
        );
        source.secrets.lock().unwrap().remove(".env.dev");
        let plan = Run::new(&[]).plan(&source).await.unwrap();
        assert!(
            plan.lines
                .iter()
                .all(|line| line.destination == Destination::Asset)
        );
    }

    #[tokio::test]
    async fn disabled_secrets_are_reported_and_delete_missing_removes_only_what_was_imported() {
        let source = Memory::new(&[("A", "1"), ("B", "2"), ("C", "3")]);
        let mut run = Run::new(&[("MINE", "m")]);
        run.options.delete_missing = true;
        run.import(&source).await;

        source.secrets.lock().unwrap().get_mut("B").unwrap().2 = false;
        source.secrets.lock().unwrap().remove("C");
        source.secrets.lock().unwrap().remove("A");
        run.vault
            .insert("A".into(), SecretValue::from_text("edited"));
        let plan = run.import(&source).await;
        assert_eq!(
            actions(&plan),
            [
                // Edited in the vault since the import: not deleted.
                ("A", ImportAction::OnlyInVault),
                ("B", ImportAction::Disabled),
                ("C", ImportAction::Delete),
                ("MINE", ImportAction::OnlyInVault),
            ]
        );
        assert!(!run.vault.contains_key("C"));
        assert!(run.vault.contains_key("B") && run.vault.contains_key("MINE"));
        // Re-enabled unchanged: not a conflict.
        source.secrets.lock().unwrap().get_mut("B").unwrap().2 = true;
        let plan = run.plan(&source).await.unwrap();
        assert_eq!(plan.conflicts(), Vec::<&str>::new());
    }

    #[tokio::test]
    async fn throttled_reads_are_retried() {
        let source = Memory::new(&[("A", "1"), ("B", "2"), ("C", "3")]);
        source.throttle_reads.store(2, Ordering::SeqCst);
        let plan = Run::new(&[]).plan(&source).await.unwrap();
        assert_eq!(plan.count(ImportAction::Add), 3);
    }

    #[test]
    fn other_name_rules_keep_another_record() {
        let fingerprints = FingerprintKey::derive(&key(b"one"));
        let plain = record_target("aws:region=x", &NameRules::default(), &fingerprints);
        let stripped = NameRules {
            prefix: Some("APP_".into()),
            ..NameRules::default()
        };
        assert!(plain.starts_with("import:aws:region=x:"));
        assert_ne!(
            plain,
            record_target("aws:region=x", &stripped, &fingerprints)
        );
        assert_eq!(
            plain,
            record_target("aws:region=x", &NameRules::default(), &fingerprints)
        );
    }
}
