//! Sync orchestration: the vault's secrets onto one [`Sink`] target.
//!
//! 1. **Preflight** every vault key before the first write: the platform
//!    name it maps to, the name grammar, two keys landing on one name (case
//!    folding included), value size and type, the platform's count cap.
//!    One problem refuses the whole sync.
//! 2. **Diff without plaintext state**: the [`record`] keeps, per platform
//!    name, a keyed fingerprint of the value vsync last wrote and the
//!    platform's revision right after. Readable platforms are read only
//!    where the record cannot vouch for the value; write-only platforms
//!    (GitHub) are compared by fingerprint, and a revision that moved since
//!    the last apply is reported as drift (an edit made elsewhere).
//! 3. **Apply** only the changes, concurrently within the platform's rate
//!    budget, retrying 429 and 5xx with backoff, never another 4xx; record
//!    what succeeded even when something failed, so a re-run finishes the
//!    rest.
//! 4. **Prune** (opt-in, capped by `max_deletes`) only names the record says
//!    vsync wrote and, where the platform labels secrets, that still carry
//!    `managed-by=vsync`.

mod apply;
mod plan;
pub mod record;
pub mod records_key;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use vsync_crypto::fingerprint::FingerprintKey;

use crate::sink::{Applied, Batch, Change, RateBudget, SecretValue, Sink, SinkError};
use crate::store::StoreError;

pub use apply::RetryPolicy;
use apply::execute;
pub(crate) use apply::{Pacer, with_retries};
pub use record::RecordStore;
use record::{RecordDelta, RecordEntry};

/// One vault secret to sync: its vault key and value.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The vault key (as written in `.env.<env>`).
    pub key: String,
    /// The value.
    pub value: SecretValue,
}

/// What a sync does with one platform name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Write a name the platform does not have.
    Create,
    /// Overwrite a name whose value differs, or cannot be known to match.
    Update,
    /// Nothing to write.
    Unchanged,
    /// Delete a name vsync owns that the vault no longer has (`--prune`).
    Prune,
    /// A name vsync owns that the vault no longer has, left in place.
    Stale,
    /// Listed, but its value could not be read (Azure: a disabled secret;
    /// a policy denying this one name): left alone and counted as failed,
    /// while the rest is synced.
    Unreadable,
}

impl Action {
    fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Prune)
    }
}

/// An edit made on the platform outside vsync, noticed by the diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Drift {
    /// Changed since vsync's last write (another value, or a new revision).
    Edited,
    /// vsync wrote it, and it is gone.
    Deleted,
    /// It existed before vsync ever wrote it, and its value cannot be read.
    Unknown,
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedSecret {
    /// The platform name.
    pub name: String,
    /// The vault key it comes from.
    pub key: Option<String>,
    /// What the sync does.
    pub action: Action,
    /// An edit made outside vsync, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// Why an owned name is left alone, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    /// The platform's revision of the name when it was listed, if it has
    /// one: what a reviewed plan is bound to, so an edit made between the
    /// review and the apply is noticed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// A preflight problem that refuses the sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The vault key, when the problem is about one.
    pub key: Option<String>,
    /// The platform name, when the problem is about one.
    pub name: Option<String>,
    /// What is wrong and what to change.
    pub problem: String,
}

impl Refusal {
    fn for_key(key: &str, name: &str, problem: String) -> Self {
        Refusal {
            key: Some(key.to_owned()),
            name: Some(name.to_owned()),
            problem,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.key, &self.name) {
            (Some(key), Some(name)) if key != name => {
                write!(f, "{key} (as {name}): {}", self.problem)
            }
            (Some(key), _) => write!(f, "{key}: {}", self.problem),
            (None, Some(name)) => write!(f, "{name}: {}", self.problem),
            (None, None) => f.write_str(&self.problem),
        }
    }
}

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Plan only; write nothing, not even the record.
    pub dry_run: bool,
    /// Delete owned names the vault no longer has.
    pub prune: bool,
    /// The most deletions one sync may make; more refuses the sync.
    pub max_deletes: usize,
    /// Retries of failed calls.
    pub retry: RetryPolicy,
    /// Overrides the sink's declared rate budget (tests, benchmarks, or a
    /// platform plan with higher limits).
    pub rate: Option<RateBudget>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            dry_run: false,
            prune: false,
            max_deletes: 10,
            retry: RetryPolicy::default(),
            rate: None,
        }
    }
}

/// What became of one planned write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "error", rename_all = "lowercase")]
pub enum Outcome {
    /// Nothing to do, or a dry run.
    Skipped,
    /// Written.
    Applied,
    /// The platform refused or failed; the message names no value.
    Failed(String),
}

/// One secret's line in a sync report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretReport {
    /// The plan line.
    #[serde(flatten)]
    pub plan: PlannedSecret,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The overall result, for exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Nothing to write.
    NoOp,
    /// A dry run found writes to make.
    Planned,
    /// Every write succeeded.
    Applied,
    /// Some writes failed; the others are applied and recorded.
    Partial,
}

/// What a sync did, per secret.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// The target, as the sink describes it.
    pub target: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The overall result.
    pub status: SyncStatus,
    /// One line per platform name.
    pub secrets: Vec<SecretReport>,
    /// What the plan's writes cost at the platform.
    pub writes: WriteCost,
    /// Problems that did not fail the sync (e.g. the record could not be
    /// saved, so the next sync re-checks everything).
    pub warnings: Vec<String>,
}

impl SyncReport {
    /// How many lines have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.secrets
            .iter()
            .filter(|secret| secret.plan.action == action)
            .count()
    }

    /// How many writes failed.
    pub fn failures(&self) -> usize {
        self.secrets
            .iter()
            .filter(|secret| matches!(secret.outcome, Outcome::Failed(_)))
            .count()
    }
}

/// The platform calls a plan's writes take, and the least time the
/// platform's rate budget lets them take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WriteCost {
    /// Write calls (one per change, or one per batch where the platform
    /// takes changes in batches), retries not counted.
    pub calls: usize,
    /// Whole seconds the pacing takes at least.
    pub paced_seconds: u64,
}

/// Why a sync did not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Preflight found problems; nothing was written.
    #[error("refused before any write: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Preflight(Vec<Refusal>),
    /// `--prune` would delete more than `max_deletes`.
    #[error(
        "refused before any write: {planned} deletions planned, more than the limit of {max}; raise --max-deletes if that is intended"
    )]
    TooManyDeletes {
        /// Deletions planned.
        planned: usize,
        /// The limit.
        max: usize,
    },
    /// Listing or reading the platform failed; nothing was written.
    #[error("could not read the target: {0}")]
    Inventory(SinkError),
    /// The sync record could not be read or written.
    #[error("the sync record: {0}")]
    Record(StoreError),
    /// The sync record exists but cannot be used.
    #[error("the sync record is unreadable: {0}")]
    RecordUnreadable(String),
}

/// Syncs `desired` onto `sink`.
pub async fn sync(
    sink: &dyn Sink,
    desired: &[Desired],
    records: &RecordStore<'_>,
    fingerprints: &FingerprintKey,
    options: &SyncOptions,
    progress: &dyn SyncProgress,
) -> Result<SyncReport, SyncError> {
    let caps = sink.capabilities();
    let budget = options.rate.unwrap_or(caps.rate);
    let deduped = plan::dedupe(desired);
    let (mapped, mut refusals) = plan::preflight(sink, &deduped, fingerprints);

    let inventory = with_retries(&options.retry, None, || sink.inventory())
        .await
        .map_err(SyncError::Inventory)?;
    let record = records.load().await?;
    let plan::Plan {
        lines: planned,
        unreadable,
    } = plan::diff(
        sink,
        &mapped,
        &inventory,
        &record,
        fingerprints,
        &options.retry,
        options.prune,
    )
    .await?;

    if let Some(max) = caps.max_secrets {
        let kept = planned
            .iter()
            .filter(|line| line.action != Action::Prune)
            .count();
        let named: HashSet<String> = planned
            .iter()
            .map(|line| caps.names.fold(&line.name))
            .collect();
        let foreign = inventory
            .iter()
            .filter(|found| !named.contains(&caps.names.fold(&found.name)))
            .count();
        if kept + foreign > max {
            refusals.push(Refusal {
                key: None,
                name: None,
                problem: format!(
                    "the target would hold {} secrets ({kept} from vsync, {foreign} others), more than the platform's limit of {max}",
                    kept + foreign
                ),
            });
        }
    }
    if !refusals.is_empty() {
        return Err(SyncError::Preflight(refusals));
    }
    let deletions = planned
        .iter()
        .filter(|line| line.action == Action::Prune)
        .count();
    if deletions > options.max_deletes {
        return Err(SyncError::TooManyDeletes {
            planned: deletions,
            max: options.max_deletes,
        });
    }

    let by_key: HashMap<&str, &plan::Mapped<'_>> =
        mapped.iter().map(|secret| (secret.key, secret)).collect();
    let writes: Vec<&PlannedSecret> = planned.iter().filter(|line| line.action.writes()).collect();
    let mut warnings = Vec::new();
    let paced = budget.minimum_duration(writes.len());
    let cost = WriteCost {
        calls: match caps.batch {
            Batch::One => writes.len(),
            Batch::All => usize::from(!writes.is_empty()),
        },
        paced_seconds: paced.as_secs(),
    };
    // A run tells its progress up front; a plan states it in the report.
    if options.dry_run && paced >= PACING_WORTH_A_WARNING {
        warnings.push(format!(
            "{} writes within the platform's rate limits would take at least {} minutes",
            writes.len(),
            paced.as_secs().div_ceil(60)
        ));
    }
    let changes: Vec<Change<'_>> = writes
        .iter()
        .map(|line| match line.action {
            Action::Prune => Change::Delete { name: &line.name },
            _ => {
                let key = line.key.as_deref().expect("a write comes from a vault key");
                Change::Put {
                    name: &line.name,
                    value: by_key[key].value,
                    exists: line.action == Action::Update,
                }
            }
        })
        .collect();
    let journal = Journal {
        records,
        // `changes` are `writes` in order: a put records its value's entry.
        entries: writes
            .iter()
            .map(|line| {
                if line.action == Action::Prune {
                    return None;
                }
                let secret = by_key[line.key.as_deref()?];
                Some(RecordEntry {
                    key: secret.key.to_owned(),
                    fingerprint: secret.fingerprint.clone(),
                    revision: None,
                })
            })
            .collect(),
        changes: &changes,
        answered: std::sync::Mutex::new((RecordDelta::default(), 0)),
        saved: tokio::sync::Mutex::new(JournalSaved {
            record,
            answers: 0,
            problem: None,
        }),
    };
    let results = if options.dry_run {
        Vec::new()
    } else {
        progress.writing(changes.len(), paced);
        execute(sink, &changes, &budget, &options.retry, progress, &journal).await
    };
    let JournalSaved {
        mut record,
        problem: checkpoint_problem,
        ..
    } = journal.saved.into_inner();

    // What became of every name: written (with the revision the platform
    // answered, if any), failed, or left alone.
    let mut outcomes: HashMap<&str, Result<Option<String>, String>> = HashMap::new();
    for (change, result) in changes.iter().zip(&results) {
        outcomes.insert(
            change.name(),
            result
                .as_ref()
                .map(|applied| applied.revision.clone())
                .map_err(ToString::to_string),
        );
    }
    for (name, problem) in &unreadable {
        outcomes.insert(
            name,
            Err(format!("could not read it to compare: {problem}")),
        );
    }
    let failed = outcomes.values().any(Result::is_err);
    let status = match (failed, options.dry_run, writes.is_empty()) {
        (true, _, _) => SyncStatus::Partial,
        (false, _, true) => SyncStatus::NoOp,
        (false, true, false) => SyncStatus::Planned,
        (false, false, false) => SyncStatus::Applied,
    };
    let secrets = planned
        .iter()
        .cloned()
        .map(|plan| {
            let outcome = match outcomes.get(plan.name.as_str()) {
                None => Outcome::Skipped,
                Some(Ok(_)) => Outcome::Applied,
                Some(Err(message)) => Outcome::Failed(message.clone()),
            };
            SecretReport { plan, outcome }
        })
        .collect();
    let mut report = SyncReport {
        target: sink.target(),
        dry_run: options.dry_run,
        status,
        secrets,
        writes: cost,
        warnings,
    };
    if options.dry_run {
        if let Some(blind_spot) = sink.drift_blind_spot()
            && report.count(Action::Unchanged) > 0
        {
            report.warnings.push(blind_spot.to_owned());
        }
        return Ok(report);
    }

    // Revisions the write responses did not carry come from one more listing.
    let pruned: HashSet<&str> = writes
        .iter()
        .filter(|line| line.action == Action::Prune)
        .map(|line| line.name.as_str())
        .collect();
    let missing_revision = outcomes
        .iter()
        .any(|(name, outcome)| matches!(outcome, Ok(None)) && !pruned.contains(name));
    let relisted = if missing_revision {
        match with_retries(&options.retry, None, || sink.inventory()).await {
            Ok(inventory) => Some(inventory),
            Err(error) => {
                report.warnings.push(format!(
                    "could not list the target after writing ({error}); edits made elsewhere before the next sync will not be noticed"
                ));
                None
            }
        }
    } else {
        None
    };
    let delta = record_delta(
        &record,
        &by_key,
        relisted.as_deref().unwrap_or(&inventory),
        &report,
        &outcomes,
    );
    if let Err(error) = records.save(&mut record, &delta).await {
        report.warnings.push(format!(
            "the sync record was not saved ({error}); the next sync will re-check every secret"
        ));
    } else if let Some(problem) = checkpoint_problem {
        report.warnings.push(format!(
            "the sync record could not be saved while writing ({problem}); it was saved at the end"
        ));
    }
    Ok(report)
}

/// The sync record kept up to date while the writes are answered: after
/// each answer, every write applied so far is saved (compare-and-swap, as
/// at the end), so a process killed mid-apply has its record of what it
/// wrote and a re-run writes only the rest. Saves do not queue up: answers
/// arriving while a save runs are taken by the next one.
struct Journal<'a> {
    records: &'a RecordStore<'a>,
    changes: &'a [Change<'a>],
    /// Per change, the entry a successful put records (`None`: a delete).
    entries: Vec<Option<RecordEntry>>,
    /// What the answers so far change in the record, and how many answers
    /// that is.
    answered: std::sync::Mutex<(RecordDelta, usize)>,
    saved: tokio::sync::Mutex<JournalSaved>,
}

struct JournalSaved {
    /// The record as last saved (or loaded).
    record: record::Record,
    /// How many answers the saved record holds.
    answers: usize,
    /// The first save that failed, if any; later answers still try.
    problem: Option<String>,
}

#[async_trait::async_trait]
impl apply::Answers for Journal<'_> {
    async fn answered(&self, first: usize, results: &[Result<Applied, SinkError>]) {
        {
            let mut answered = self.answered.lock().expect("journal lock");
            for (index, result) in (first..).zip(results) {
                let Ok(applied) = result else { continue };
                match &self.entries[index] {
                    Some(entry) => {
                        let entry = RecordEntry {
                            revision: applied.revision.clone(),
                            ..entry.clone()
                        };
                        answered
                            .0
                            .set
                            .insert(self.changes[index].name().to_owned(), entry);
                    }
                    None => answered
                        .0
                        .remove
                        .push(self.changes[index].name().to_owned()),
                }
            }
            answered.1 += results.len();
        }
        // One saver at a time, and no worker waits for it: the one saving
        // goes on until no answer is left unsaved, so an answer that
        // arrives meanwhile is in the store moments later.
        while let Ok(mut saved) = self.saved.try_lock() {
            let (delta, answers) = {
                let answered = self.answered.lock().expect("journal lock");
                if answered.1 <= saved.answers {
                    return;
                }
                (answered.0.clone(), answered.1)
            };
            let saved = &mut *saved;
            match self.records.save(&mut saved.record, &delta).await {
                Ok(()) => saved.answers = answers,
                Err(error) => {
                    saved.problem.get_or_insert(error.to_string());
                    return;
                }
            }
        }
    }
}

/// Told how a sync's writes advance, for a progress display. Called from
/// the sync's own tasks: an implementation returns at once.
pub trait SyncProgress: Sync {
    /// The writes are about to start: how many, and the least time the
    /// platform's rate budget lets them take. Not called for a dry run.
    fn writing(&self, _writes: usize, _paced: std::time::Duration) {}
    /// `done` of the writes have their answer (applied or failed).
    fn written(&self, _done: usize) {}
}

/// No progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl SyncProgress for Silent {}

/// A plan whose writes would take this long at the platform's pace says so.
const PACING_WORTH_A_WARNING: std::time::Duration = std::time::Duration::from_secs(60);

/// What this sync changes in the record: the names it wrote (with the
/// revision confirmed after), the names it confirmed equal, and the names
/// neither wanted nor on the platform any more.
fn record_delta(
    record: &record::Record,
    by_key: &HashMap<&str, &plan::Mapped<'_>>,
    inventory: &[crate::sink::RemoteSecret],
    report: &SyncReport,
    outcomes: &HashMap<&str, Result<Option<String>, String>>,
) -> RecordDelta {
    let revisions: HashMap<&str, Option<&String>> = inventory
        .iter()
        .map(|found| (found.name.as_str(), found.revision.as_ref()))
        .collect();
    let listed_revision = |name: &str| revisions.get(name).copied().flatten().cloned();
    let mut delta = RecordDelta::default();
    for line in &report.secrets {
        let plan = &line.plan;
        let secret = plan.key.as_deref().and_then(|key| by_key.get(key));
        match (plan.action, outcomes.get(plan.name.as_str()), secret) {
            (Action::Prune, Some(Ok(_)), _) => delta.remove.push(plan.name.clone()),
            (Action::Create | Action::Update, Some(Ok(revision)), Some(secret)) => {
                delta.set.insert(
                    plan.name.clone(),
                    RecordEntry {
                        key: secret.key.to_owned(),
                        fingerprint: secret.fingerprint.clone(),
                        revision: revision.clone().or_else(|| listed_revision(&plan.name)),
                    },
                );
            }
            (Action::Unchanged, _, Some(secret)) => {
                // Confirmed equal: adopt it, or refresh a revision that moved
                // without the value changing.
                let entry = RecordEntry {
                    key: secret.key.to_owned(),
                    fingerprint: secret.fingerprint.clone(),
                    revision: listed_revision(&plan.name),
                };
                if record.secrets.get(&plan.name) != Some(&entry) {
                    delta.set.insert(plan.name.clone(), entry);
                }
            }
            _ => {}
        }
    }
    let planned: HashSet<&str> = report
        .secrets
        .iter()
        .map(|line| line.plan.name.as_str())
        .collect();
    for name in record.secrets.keys() {
        if !revisions.contains_key(name.as_str()) && !planned.contains(name.as_str()) {
            delta.remove.push(name.clone());
        }
    }
    delta
}
