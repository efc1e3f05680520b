//! The one suite every `Sink` passes, run against each platform's harness
//! service (a real server where one runs here, a protocol-faithful fake
//! otherwise): the trait's contract (put, read, update, delete, paging past
//! 100 secrets, absent vs empty) and the sync scenarios of the sink issue
//! (first sync, no-op re-sync, one change, drift, collisions, 429 bursts,
//! a failure halfway, prune).
//!
//! A platform test file implements [`Platform`] for its harness and
//! expands `sink_suite!` once.

#![allow(dead_code)] // each test binary uses the parts its platform supports

use std::num::NonZeroU32;
use std::time::Duration;

use vsync_backends::fs::FsStore;
use vsync_crypto::Key;
use vsync_crypto::fingerprint::FingerprintKey;
use vsync_engine::sink::{Change, RateBudget, SecretValue, Sink};
use vsync_engine::sync::{
    Action, Desired, Drift, Outcome, RecordStore, RetryPolicy, Silent, SyncError, SyncOptions,
    SyncReport, SyncStatus, sync,
};
use vsync_engine::vault::Layout;
use vsync_testcontainers::faults::{Call, Faults};

/// A platform under test: its sink, and the back door a test needs to see
/// and disturb what the platform holds.
#[async_trait::async_trait]
pub trait Platform: Send + Sync {
    /// The sink under test, pointed at the harness service. Every call
    /// returns a fresh sink (a new `vsync sync` run).
    fn sink(&self) -> Box<dyn Sink>;

    /// The value the platform holds under `name` (the GitHub fake opens its
    /// sealed box), or `None`.
    async fn value(&self, name: &str) -> Option<String>;

    /// Every name the platform holds at the target.
    async fn names(&self) -> Vec<String>;

    /// Writes `name` the way a person in the platform's console would,
    /// without vsync's label.
    async fn edit_outside(&self, name: &str, value: &str);

    /// The platform's write counter and fault switches (429 bursts,
    /// broken writes), as `vsync_testcontainers::faults` serves them.
    fn faults(&self) -> &Faults;

    /// Two vault keys that land on one platform name, if the platform can
    /// have such a pair.
    fn colliding_keys(&self) -> Option<(&'static str, &'static str)>;

    /// A vault key the platform refuses as a name, if there is one.
    fn rejected_key(&self) -> Option<&'static str>;

    /// The write requests that create one secret with its value on an
    /// existing target (GCP: the secret, then its first version).
    fn writes_per_create(&self) -> usize {
        1
    }
}

/// The env's store and key, as `vsync sync` would open them.
pub struct Vault {
    _dir: tempfile::TempDir,
    store: FsStore,
    key: Key,
    layout: Layout,
}

impl Vault {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().join("store")).unwrap();
        Vault {
            _dir: dir,
            store,
            key: Key::derive(
                b"suite passphrase",
                b"suite salt",
                NonZeroU32::new(1).unwrap(),
            ),
            layout: Layout::for_repo_env("acme/api", "dev"),
        }
    }

    pub async fn sync(
        &self,
        sink: &dyn Sink,
        desired: &[(&str, &str)],
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let desired: Vec<Desired> = desired
            .iter()
            .map(|(key, value)| Desired {
                key: (*key).to_owned(),
                value: SecretValue::from_text(value),
            })
            .collect();
        let target = sink.target();
        let records = RecordStore::new(&self.store, &self.layout, &target, &self.key);
        sync(
            sink,
            &desired,
            &records,
            &FingerprintKey::derive(&self.key),
            &options,
            &Silent,
        )
        .await
    }
}

/// Unpaced, with fast retries: the suite checks behaviour, not patience.
pub fn options() -> SyncOptions {
    SyncOptions {
        retry: RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(3),
        },
        rate: Some(RateBudget::unpaced(4)),
        ..SyncOptions::default()
    }
}

fn pruning(max_deletes: usize) -> SyncOptions {
    SyncOptions {
        prune: true,
        max_deletes,
        ..options()
    }
}

const BASE: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://app:s3cret@db.internal:5432/app"),
    ("API_TOKEN", "tok_live_0123456789"),
    (
        "MULTILINE_KEY",
        "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----",
    ),
    ("UNICODE_VALUE", "pässwört ✓ 秘密"),
    ("SHORT", "x"),
];

async fn assert_platform_holds(platform: &dyn Platform, sink: &dyn Sink, desired: &[(&str, &str)]) {
    for (key, value) in desired {
        let name = sink.map_name(key);
        assert_eq!(
            platform.value(&name).await.as_deref(),
            Some(*value),
            "{name} holds the vault's value"
        );
    }
}

fn action_of(report: &SyncReport, name: &str) -> (Action, Option<Drift>, Outcome) {
    let line = report
        .secrets
        .iter()
        .find(|line| line.plan.name == name)
        .unwrap_or_else(|| panic!("{name} is in the report"));
    (line.plan.action, line.plan.drift, line.outcome.clone())
}

// ---- the trait's contract ------------------------------------------------

pub async fn put_read_update_delete(platform: &dyn Platform) {
    let sink = platform.sink();
    let name = sink.map_name("CONTRACT_KEY");
    let first = SecretValue::from_text("first value");
    let results = sink
        .apply(&[Change::Put {
            name: &name,
            value: &first,
            exists: false,
        }])
        .await;
    assert!(results[0].is_ok(), "create: {:?}", results[0]);
    assert_eq!(platform.value(&name).await.as_deref(), Some("first value"));
    if sink.capabilities().readable {
        assert_eq!(sink.read(&name).await.unwrap(), Some(first));
    } else {
        assert!(
            sink.read(&name).await.is_err(),
            "a write-only sink refuses to read"
        );
    }

    let second = SecretValue::from_text("second value");
    let results = sink
        .apply(&[Change::Put {
            name: &name,
            value: &second,
            exists: true,
        }])
        .await;
    assert!(results[0].is_ok(), "update: {:?}", results[0]);
    assert_eq!(platform.value(&name).await.as_deref(), Some("second value"));
    let listed = sink.inventory().await.unwrap();
    assert_eq!(
        listed.iter().filter(|found| found.name == name).count(),
        1,
        "updated in place"
    );

    let results = sink.apply(&[Change::Delete { name: &name }]).await;
    assert!(results[0].is_ok(), "delete: {:?}", results[0]);
    assert_eq!(platform.value(&name).await, None);
    let listed = sink.inventory().await.unwrap();
    assert!(
        listed.iter().all(|found| found.name != name),
        "deleted names are not listed"
    );
}

pub async fn absent_is_not_empty(platform: &dyn Platform) {
    let sink = platform.sink();
    let caps = sink.capabilities().clone();
    let absent = sink.map_name("NEVER_WRITTEN");
    if caps.readable {
        assert_eq!(
            sink.read(&absent).await.unwrap(),
            None,
            "absent reads as None"
        );
    }
    let empty_name = sink.map_name("EMPTY_VALUE");
    let empty = SecretValue::from_text("");
    if caps.empty_values {
        let results = sink
            .apply(&[Change::Put {
                name: &empty_name,
                value: &empty,
                exists: false,
            }])
            .await;
        assert!(results[0].is_ok(), "{:?}", results[0]);
        if caps.readable {
            assert_eq!(
                sink.read(&empty_name).await.unwrap(),
                Some(empty),
                "empty reads as Some(\"\")"
            );
        }
        assert_eq!(
            platform.value(&empty_name).await.as_deref(),
            Some(""),
            "the platform holds an empty value"
        );
    } else {
        // A platform without empty values refuses one before any write.
        let before = platform.faults().writes();
        let refused = Vault::new()
            .sync(sink.as_ref(), &[("EMPTY_VALUE", "")], options())
            .await;
        assert!(
            matches!(refused, Err(SyncError::Preflight(_))),
            "{refused:?}"
        );
        assert_eq!(platform.faults().writes(), before, "nothing written");
    }
    // Read-only or not, the listing tells absent from empty.
    let listed = sink.inventory().await.unwrap();
    assert!(listed.iter().all(|found| found.name != absent));
    assert_eq!(
        listed.iter().any(|found| found.name == empty_name),
        caps.empty_values,
        "an empty value is listed where the platform stores one"
    );
    assert_eq!(platform.value(&absent).await, None);
}

pub async fn inventory_pages_past_100(platform: &dyn Platform) {
    let sink = platform.sink();
    let count = sink.capabilities().max_secrets.unwrap_or(120).min(120);
    let keys: Vec<String> = (0..count).map(|i| format!("PAGED_{i:03}")).collect();
    let values: Vec<String> = (0..count).map(|i| format!("value {i}")).collect();
    let desired: Vec<(&str, &str)> = keys
        .iter()
        .map(String::as_str)
        .zip(values.iter().map(String::as_str))
        .collect();
    let vault = Vault::new();
    let report = vault
        .sync(sink.as_ref(), &desired, options())
        .await
        .unwrap();
    assert_eq!(report.count(Action::Create), count);
    let listed = sink.inventory().await.unwrap();
    for key in &keys {
        let name = sink.map_name(key);
        assert!(
            listed.iter().any(|found| found.name == name),
            "{name} is listed"
        );
    }
    assert_eq!(listed.len(), count, "nothing listed twice");

    // A platform that caps a target below 120 secrets (GitHub: 100 per
    // repository or environment) cannot be paged past it; the cap itself is
    // what must hold: one more secret is refused before any write.
    if count < 120 {
        let extra = format!("PAGED_{count:03}");
        let mut over = desired.clone();
        over.push((extra.as_str(), "one too many"));
        let before = platform.faults().writes();
        let refused = vault.sync(sink.as_ref(), &over, options()).await;
        assert!(
            matches!(&refused, Err(SyncError::Preflight(refusals))
                if refusals.iter().any(|refusal| refusal.problem.contains("limit"))),
            "{refused:?}"
        );
        assert_eq!(platform.faults().writes(), before, "nothing written");
    }
}

// ---- sync scenarios ------------------------------------------------------

pub async fn first_sync_creates_everything(platform: &dyn Platform) {
    let sink = platform.sink();
    let vault = Vault::new();
    let report = vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    assert_eq!(report.status, SyncStatus::Applied);
    assert_eq!(report.count(Action::Create), BASE.len());
    assert_eq!(report.failures(), 0);
    assert_platform_holds(platform, sink.as_ref(), BASE).await;
}

pub async fn second_sync_writes_nothing(platform: &dyn Platform) {
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), BASE, options())
        .await
        .unwrap();
    let before = platform.faults().writes();
    let report = vault
        .sync(platform.sink().as_ref(), BASE, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::NoOp, "{report:?}");
    assert_eq!(report.count(Action::Unchanged), BASE.len());
    assert_eq!(
        platform.faults().writes(),
        before,
        "an unchanged vault writes nothing"
    );
}

pub async fn one_changed_value_is_one_write(platform: &dyn Platform) {
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), BASE, options())
        .await
        .unwrap();
    let mut changed = BASE.to_vec();
    changed[1] = ("API_TOKEN", "tok_live_rotated");
    let before = platform.faults().writes();
    let sink = platform.sink();
    let report = vault
        .sync(sink.as_ref(), &changed, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied);
    assert_eq!(report.count(Action::Update), 1);
    assert_eq!(report.count(Action::Unchanged), BASE.len() - 1);
    assert_eq!(platform.faults().writes(), before + 1, "exactly one write");
    assert_platform_holds(platform, sink.as_ref(), &changed).await;
}

pub async fn an_edit_on_the_platform_is_drift(platform: &dyn Platform) {
    let vault = Vault::new();
    let sink = platform.sink();
    vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    let name = sink.map_name("DATABASE_URL");
    platform
        .edit_outside(&name, "postgres://someone:else@elsewhere/app")
        .await;

    let dry = vault
        .sync(
            platform.sink().as_ref(),
            BASE,
            SyncOptions {
                dry_run: true,
                ..options()
            },
        )
        .await
        .unwrap();
    assert_eq!(dry.status, SyncStatus::Planned);
    assert_eq!(action_of(&dry, &name).0, Action::Update);
    assert_eq!(
        action_of(&dry, &name).1,
        Some(Drift::Edited),
        "the edit is reported as drift"
    );
    assert_eq!(
        platform.value(&name).await.as_deref(),
        Some("postgres://someone:else@elsewhere/app"),
        "a dry run writes nothing"
    );

    let report = vault
        .sync(platform.sink().as_ref(), BASE, options())
        .await
        .unwrap();
    assert_eq!(
        action_of(&report, &name),
        (Action::Update, Some(Drift::Edited), Outcome::Applied)
    );
    assert_eq!(report.count(Action::Unchanged), BASE.len() - 1);
    assert_platform_holds(platform, sink.as_ref(), BASE).await;
}

pub async fn a_collision_is_refused_before_any_write(platform: &dyn Platform) {
    let sink = platform.sink();
    // Values that cannot appear in a message by chance.
    const FIRST: &str = "collides-first-Qz7";
    const SECOND: &str = "collides-second-Qz7";
    const REJECTED: &str = "rejected-name-value-Qz7";
    let oversized = "oversized-Qz7,".repeat(sink.capabilities().max_value_bytes / 14 + 1);
    // Every platform caps a value's size; not every one has colliding or
    // refused names.
    let mut cases = vec![vec![("FIRST_OK", "1"), ("OVERSIZED", oversized.as_str())]];
    if let Some((a, b)) = platform.colliding_keys() {
        cases.push(vec![("FIRST_OK", "1"), (a, FIRST), (b, SECOND)]);
    }
    if let Some(rejected) = platform.rejected_key() {
        cases.push(vec![("FIRST_OK", "1"), (rejected, REJECTED)]);
    }
    for desired in cases {
        let before = platform.faults().writes();
        let vault = Vault::new();
        match vault.sync(sink.as_ref(), &desired, options()).await {
            Err(SyncError::Preflight(refusals)) => {
                assert!(!refusals.is_empty());
                let message = SyncError::Preflight(refusals).to_string();
                for value in [FIRST, SECOND, REJECTED, "oversized-Qz7"] {
                    assert!(!message.contains(value), "no values: {message}");
                }
            }
            other => panic!("expected a preflight refusal, got {other:?}"),
        }
        assert_eq!(platform.faults().writes(), before, "nothing written");
        assert_eq!(
            platform.value(&sink.map_name("FIRST_OK")).await,
            None,
            "not even the valid key"
        );
    }
}

/// Throttles without `Retry-After` and 5xx answers while listing and
/// reading (each fake answers them as its platform does) are retried by
/// the engine's backoff, and the sync completes.
pub async fn throttles_and_outages_while_listing_and_reading_are_retried(platform: &dyn Platform) {
    let faults = platform.faults();
    faults.throttle_without_retry_after();
    let (throttled, failed) = (faults.throttled(), faults.failed());
    for call in [Call::List, Call::Read] {
        faults.throttle_next(call, 1);
        faults.fail_next(call, 1);
    }
    let report = Vault::new()
        .sync(platform.sink().as_ref(), BASE, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    // A new vault has no record: the second sync lists again and reads (or,
    // write-only, seals again) what the first one wrote.
    let sink = platform.sink();
    let report = Vault::new()
        .sync(sink.as_ref(), BASE, options())
        .await
        .unwrap();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert!(
        faults.throttled() > throttled && faults.failed() > failed,
        "the platform was throttled and failed on the way: {} throttles, {} 5xx",
        faults.throttled() - throttled,
        faults.failed() - failed
    );
    faults.heal();
    assert_platform_holds(platform, sink.as_ref(), BASE).await;
}

pub async fn a_429_burst_is_paced_and_completes(platform: &dyn Platform) {
    let vault = Vault::new();
    let throttled_before = platform.faults().throttled();
    platform.faults().throttle_next_writes(3);
    let sink = platform.sink();
    let report = vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(report.failures(), 0);
    assert_eq!(
        platform.faults().throttled() - throttled_before,
        3,
        "three 429s were served"
    );
    assert_platform_holds(platform, sink.as_ref(), BASE).await;
}

pub async fn a_failure_halfway_is_partial_and_a_rerun_finishes(platform: &dyn Platform) {
    let vault = Vault::new();
    let sink = platform.sink();
    let broken = sink.map_name("MULTILINE_KEY");
    platform.faults().break_writes_of(&broken);
    let report = vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    assert_eq!(report.status, SyncStatus::Partial);
    assert_eq!(report.failures(), 1);
    assert!(matches!(action_of(&report, &broken).2, Outcome::Failed(_)));
    assert_eq!(platform.value(&broken).await, None);

    platform.faults().heal();
    let before = platform.faults().writes();
    let report = vault
        .sync(platform.sink().as_ref(), BASE, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied);
    assert_eq!(action_of(&report, &broken).2, Outcome::Applied);
    assert_eq!(
        report.count(Action::Unchanged),
        BASE.len() - 1,
        "the others are not rewritten"
    );
    assert_eq!(
        platform.faults().writes(),
        before + platform.writes_per_create(),
        "only the failed secret is created"
    );
    assert_platform_holds(platform, sink.as_ref(), BASE).await;
}

pub async fn prune_removes_only_owned_names(platform: &dyn Platform) {
    let vault = Vault::new();
    let sink = platform.sink();
    let foreign = sink.map_name("FOREIGN_SECRET");
    platform.edit_outside(&foreign, "made by hand").await;
    vault.sync(sink.as_ref(), BASE, options()).await.unwrap();

    let fewer = &BASE[..3];
    let gone: Vec<String> = BASE[3..]
        .iter()
        .map(|(key, _)| sink.map_name(key))
        .collect();
    let report = vault
        .sync(platform.sink().as_ref(), fewer, options())
        .await
        .unwrap();
    assert_eq!(
        report.count(Action::Stale),
        gone.len(),
        "without --prune, owned names stay"
    );
    for name in &gone {
        assert!(platform.value(name).await.is_some());
    }

    match vault
        .sync(platform.sink().as_ref(), fewer, pruning(1))
        .await
    {
        Err(SyncError::TooManyDeletes { planned, max: 1 }) => assert_eq!(planned, gone.len()),
        other => panic!("expected the --max-deletes guard, got {other:?}"),
    }

    let report = vault
        .sync(platform.sink().as_ref(), fewer, pruning(10))
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), gone.len());
    assert_eq!(report.failures(), 0);
    for name in &gone {
        assert_eq!(platform.value(name).await, None, "{name} pruned");
    }
    assert_eq!(
        platform.value(&foreign).await.as_deref(),
        Some("made by hand"),
        "not ours: kept"
    );
    assert_platform_holds(platform, sink.as_ref(), fewer).await;
}

/// `inner`, with every write call after the first `through` left without
/// an answer forever: a `vsync sync` killed mid-apply, once the future
/// running it is dropped.
struct CutOff<'a> {
    inner: &'a dyn Sink,
    through: usize,
    calls: std::sync::atomic::AtomicUsize,
    /// The names the calls let through wrote.
    written: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Sink for CutOff<'_> {
    fn capabilities(&self) -> &vsync_engine::sink::Capabilities {
        self.inner.capabilities()
    }
    fn target(&self) -> String {
        self.inner.target()
    }
    fn map_name(&self, key: &str) -> String {
        self.inner.map_name(key)
    }
    async fn inventory(
        &self,
    ) -> Result<Vec<vsync_engine::sink::RemoteSecret>, vsync_engine::sink::SinkError> {
        self.inner.inventory().await
    }
    async fn read(&self, name: &str) -> Result<Option<SecretValue>, vsync_engine::sink::SinkError> {
        self.inner.read(name).await
    }
    async fn apply_one(
        &self,
        change: &Change<'_>,
    ) -> Result<vsync_engine::sink::Applied, vsync_engine::sink::SinkError> {
        self.apply(std::slice::from_ref(change)).await.remove(0)
    }
    async fn apply(
        &self,
        changes: &[Change<'_>],
    ) -> Vec<Result<vsync_engine::sink::Applied, vsync_engine::sink::SinkError>> {
        use std::sync::atomic::Ordering;
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.through {
            return std::future::pending().await;
        }
        let results = self.inner.apply(changes).await;
        for (change, result) in changes.iter().zip(&results) {
            if result.is_ok() {
                self.written.lock().unwrap().push(change.name().to_owned());
            }
        }
        results
    }
}

pub async fn a_sync_cut_off_mid_apply_keeps_what_it_wrote(platform: &dyn Platform) {
    let vault = Vault::new();
    let sink = platform.sink();
    // A platform that takes every change in one call is cut before it.
    let one_by_one = sink.capabilities().batch == vsync_engine::sink::Batch::One;
    let cut = CutOff {
        inner: sink.as_ref(),
        through: if one_by_one { 2 } else { 0 },
        calls: Default::default(),
        written: Default::default(),
    };
    let run = vault.sync(&cut, BASE, options());
    assert!(
        tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .is_err(),
        "the cut-off sync never finishes"
    );
    let mut written = cut.written.into_inner().unwrap();
    written.sort();
    assert_eq!(written.is_empty(), !one_by_one);

    // The record holds exactly what the answered calls wrote.
    let target = sink.target();
    let records = RecordStore::new(&vault.store, &vault.layout, &target, &vault.key);
    let record = records.load().await.unwrap();
    let recorded: Vec<String> = record.secrets.keys().cloned().collect();
    assert_eq!(recorded, written);

    // A re-run writes only the rest.
    let before = platform.faults().writes();
    let report = vault
        .sync(platform.sink().as_ref(), BASE, options())
        .await
        .unwrap();
    assert_eq!(report.count(Action::Unchanged), written.len());
    assert_eq!(report.count(Action::Create), BASE.len() - written.len());
    if one_by_one {
        assert_eq!(
            platform.faults().writes(),
            before + (BASE.len() - written.len()) * platform.writes_per_create(),
            "nothing written before the cut is written again"
        );
    }
    assert_platform_holds(platform, sink.as_ref(), BASE).await;
}

/// Expands to one `#[tokio::test]` per suite case for a platform, given an
/// async expression that starts its harness (`#[macro_use] mod suite;`).
macro_rules! sink_suite {
    ($start:expr) => {
        sink_suite!(@cases $start;
            put_read_update_delete,
            absent_is_not_empty,
            inventory_pages_past_100,
            first_sync_creates_everything,
            second_sync_writes_nothing,
            one_changed_value_is_one_write,
            an_edit_on_the_platform_is_drift,
            a_collision_is_refused_before_any_write,
            throttles_and_outages_while_listing_and_reading_are_retried,
            a_429_burst_is_paced_and_completes,
            a_failure_halfway_is_partial_and_a_rerun_finishes,
            a_sync_cut_off_mid_apply_keeps_what_it_wrote,
            prune_removes_only_owned_names
        );
    };
    (@cases $start:expr; $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let platform = $start;
                suite::$case(&platform).await;
            }
        )+
    };
}
