//! The one suite every `Source` passes, run against each platform's harness
//! service (a real server where one runs here — moto for AWS — and a
//! protocol-faithful fake otherwise): values read byte for byte (multiline
//! PEM, `=`, `#`, quotes, Unicode, trailing spaces), listing past 1,000
//! secrets in the platform's pages and reading them in its batch size,
//! disabled and deleted secrets, refused credentials, 429 bursts and 5xx
//! outages, binary values where the platform has them, and a re-import
//! that reads nothing.
//!
//! Each platform's harness (its service and [`Harness`]) is a module here,
//! shared by its test file, which expands `source_suite!` once, and by the
//! import benchmark (`benches/import.rs`).

#![allow(dead_code)] // each test binary uses the parts its platform supports

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use vsync_crypto::Key;
use vsync_crypto::fingerprint::FingerprintKey;
use vsync_engine::import::{self, ImportAction, ImportOptions, ImportPlan, VaultView, VaultWrite};
use vsync_engine::sink::{RateBudget, SecretValue, SinkError};
use vsync_engine::source::{ListedSecret, Source};
use vsync_engine::sync::RetryPolicy;
use vsync_engine::sync::record::Record;
use vsync_testcontainers::faults::{Call, Faults};

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "dotenv")]
pub mod dotenv;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "onepassword")]
pub mod onepassword;
#[cfg(feature = "vault")]
pub mod vault;

/// A platform under test: its source, and the back door a test needs to
/// fill and disturb what the platform holds.
#[async_trait::async_trait]
pub trait Harness: Send + Sync {
    /// The source under test, pointed at the harness service with valid
    /// credentials; a fresh one per call (a new `vsync import` run).
    fn source(&self) -> Box<dyn Source>;

    /// The same source with credentials the platform refuses; `None` for a
    /// source without credentials (a file).
    fn source_with_bad_credentials(&self) -> Option<Box<dyn Source>>;

    /// Stores `value` under the vault key `key` the way a person or another
    /// tool would (the platform name is the platform's own form of `key`).
    async fn put(&self, key: &str, value: &[u8]);

    /// Stores many text secrets at once (the paging case), as fast as the
    /// harness allows.
    async fn put_many(&self, secrets: &[(String, String)]) {
        for (key, value) in secrets {
            self.put(key, value.as_bytes()).await;
        }
    }

    /// Deletes the secret of `key`.
    async fn delete(&self, key: &str);

    /// Disables the secret of `key`; `false` when the platform has no such
    /// state (the case then checks nothing else).
    async fn disable(&self, key: &str) -> bool;

    /// The platform's call counters and fault switches; `None` for a
    /// source that makes no platform calls (a file).
    fn faults(&self) -> Option<&Faults>;

    /// Whether the platform holds binary values.
    fn binary(&self) -> bool {
        false
    }

    /// How many secrets one listing page holds (the fake's or the
    /// service's page size), for the call-count bound.
    fn page_size(&self) -> usize;
}

/// Values that must travel byte for byte.
pub const AWKWARD: [(&str, &str); 7] = [
    (
        "TLS_KEY",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----\n",
    ),
    (
        "DATABASE_URL",
        "postgres://app:p%40ss=w#rd@db:5432/app?ssl=true",
    ),
    ("QUOTED", "\"double\" and 'single' quotes"),
    ("SPACES", "  leading and trailing  "),
    ("UNICODE", "naïve café — 東京 🔑"),
    (
        "JSON_BLOB",
        "{\n  \"type\": \"service_account\",\n  \"private_key\": \"-----BEGIN\\nabc\\n-----END\\n\",\n  \"n\": 1\n}",
    ),
    ("DOLLARS", "$HOME ${VAULT_ROOT} \\$ \\\\ back\\slash"),
];

fn fast_retries() -> ImportOptions {
    ImportOptions {
        retry: RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(3),
        },
        rate: Some(RateBudget::unpaced(4)),
        ..ImportOptions::default()
    }
}

/// An empty vault and its record, importing as `vsync import` does.
pub struct Vault {
    pub entries: BTreeMap<String, SecretValue>,
    pub assets: BTreeMap<String, SecretValue>,
    pub record: Record,
    fingerprints: FingerprintKey,
}

impl Vault {
    pub fn new() -> Self {
        let key = Key::derive(b"suite", b"salt", NonZeroU32::MIN);
        Vault {
            entries: BTreeMap::new(),
            assets: BTreeMap::new(),
            record: Record::default(),
            fingerprints: FingerprintKey::derive(&key),
        }
    }

    pub async fn plan(&self, source: &dyn Source) -> Result<ImportPlan, import::ImportError> {
        let assets = |key: &str| self.assets.get(key).cloned();
        let view = VaultView {
            entries: &self.entries,
            asset: &assets,
        };
        import::plan(
            source,
            &view,
            &self.record,
            &self.fingerprints,
            &fast_retries(),
        )
        .await
    }

    /// Plans and applies the writes and the record, as `vsync import` does.
    pub async fn import(&mut self, source: &dyn Source) -> ImportPlan {
        let plan = self.plan(source).await.expect("the import plans");
        for (key, (destination, write)) in &plan.writes {
            let target = match destination {
                import::Destination::EnvFile => &mut self.entries,
                import::Destination::Asset => &mut self.assets,
            };
            match write {
                VaultWrite::Set(value) => target.insert(key.clone(), value.clone()),
                VaultWrite::Delete => target.remove(key),
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

fn text(value: &SecretValue) -> &str {
    value.as_text().expect("a text value")
}

pub async fn values_travel_byte_for_byte(harness: &dyn Harness) {
    for (key, value) in AWKWARD {
        harness.put(key, value.as_bytes()).await;
    }
    let mut vault = Vault::new();
    let plan = vault.import(harness.source().as_ref()).await;
    assert_eq!(
        plan.count(ImportAction::Add),
        AWKWARD.len(),
        "{:?}",
        plan.lines
    );
    for (key, value) in AWKWARD {
        assert_eq!(text(&vault.entries[key]), value, "{key}");
    }
    // What was imported can be written to `.env` and read back unchanged.
    let rendered =
        vsync_engine::dotenv::render(vault.entries.iter().map(|(k, v)| (k.as_str(), text(v))))
            .unwrap();
    let parsed = vsync_engine::dotenv::parse(&rendered);
    assert_eq!(parsed.problems, []);
    for entry in parsed.entries {
        assert_eq!(entry.value.as_str(), text(&vault.entries[&entry.key]));
    }
}

pub async fn a_reimport_of_an_unchanged_source_writes_nothing(harness: &dyn Harness) {
    for (key, value) in &AWKWARD[..3] {
        harness.put(key, value.as_bytes()).await;
    }
    let mut vault = Vault::new();
    vault.import(harness.source().as_ref()).await;
    let reads = |harness: &dyn Harness| harness.faults().map(|f| f.calls(Call::Read));
    let before = reads(harness);
    let again = vault.import(harness.source().as_ref()).await;
    assert!(again.writes.is_empty(), "{:?}", again.lines);
    assert_eq!(again.count(ImportAction::Unchanged), 3);
    if harness.source().capabilities().metadata {
        assert_eq!(again.read, 0, "revisions unchanged, nothing to read");
        assert_eq!(reads(harness), before);
    }

    // One change at the source is one change in the vault.
    harness.put(AWKWARD[1].0, b"rotated").await;
    let changed = vault.import(harness.source().as_ref()).await;
    assert_eq!(
        changed.count(ImportAction::Change),
        1,
        "{:?}",
        changed.lines
    );
    assert_eq!(text(&vault.entries[AWKWARD[1].0]), "rotated");
}

pub async fn listing_pages_past_1000_and_reads_in_batches(harness: &dyn Harness) {
    let secrets: Vec<(String, String)> = (0..1005)
        .map(|i| (format!("BULK_{i:04}"), format!("value-{i}")))
        .collect();
    harness.put_many(&secrets).await;
    let source = harness.source();
    let batch = source.capabilities().batch;
    let mut vault = Vault::new();
    let Some(faults) = harness.faults() else {
        let plan = vault.import(source.as_ref()).await;
        assert_eq!(plan.count(ImportAction::Add), 1005);
        return;
    };
    let (lists, reads) = (faults.calls(Call::List), faults.calls(Call::Read));
    let plan = vault.import(source.as_ref()).await;
    assert_eq!(plan.count(ImportAction::Add), 1005);
    for (key, value) in &secrets {
        assert_eq!(text(&vault.entries[key]), value);
    }
    let faults = harness.faults().unwrap();
    let lists = faults.calls(Call::List) - lists;
    let reads = faults.calls(Call::Read) - reads;
    let pages = 1005usize.div_ceil(harness.page_size());
    assert!(
        lists >= 1 && lists <= pages + 1,
        "{lists} list calls for {pages} pages"
    );
    // Read calls: one per batch, never one per secret where it batches.
    assert!(
        reads <= 1005usize.div_ceil(batch.min(1005)),
        "{reads} read calls, batch size {batch}"
    );
}

pub async fn a_disabled_secret_is_reported_not_read(harness: &dyn Harness) {
    harness.put("KEPT", b"kept").await;
    harness.put("SWITCHED_OFF", b"off").await;
    if !harness.disable("SWITCHED_OFF").await {
        return;
    }
    let mut vault = Vault::new();
    let plan = vault.import(harness.source().as_ref()).await;
    let disabled: Vec<&str> = plan
        .lines
        .iter()
        .filter(|line| line.action == ImportAction::Disabled)
        .map(|line| line.source.as_deref().unwrap())
        .collect();
    assert_eq!(disabled.len(), 1, "{:?}", plan.lines);
    assert!(!vault.entries.contains_key("SWITCHED_OFF"));
    assert_eq!(text(&vault.entries["KEPT"]), "kept");
}

pub async fn a_deleted_secret_is_gone_and_delete_missing_follows(harness: &dyn Harness) {
    harness.put("STAYS", b"1").await;
    harness.put("LEAVES", b"2").await;
    let mut vault = Vault::new();
    vault.import(harness.source().as_ref()).await;
    harness.delete("LEAVES").await;
    let plan = vault.plan(harness.source().as_ref()).await.unwrap();
    assert!(
        plan.lines
            .iter()
            .any(|l| l.key == "LEAVES" && l.action == ImportAction::OnlyInVault),
        "{:?}",
        plan.lines
    );
}

pub async fn refused_credentials_are_denied_and_name_no_value(harness: &dyn Harness) {
    harness.put("GUARDED", b"guarded-value-xyzzy").await;
    let Some(source) = harness.source_with_bad_credentials() else {
        return;
    };
    let error = source.list().await.unwrap_err();
    assert!(matches!(error, SinkError::Denied(_)), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("xyzzy"));
}

pub async fn throttles_and_outages_are_retried(harness: &dyn Harness) {
    for (key, value) in &AWKWARD[..4] {
        harness.put(key, value.as_bytes()).await;
    }
    let Some(faults) = harness.faults() else {
        return;
    };
    let before = (faults.throttled(), faults.failed());
    faults.throttle_next(Call::List, 2);
    faults.fail_next(Call::List, 1);
    faults.throttle_next(Call::Read, 3);
    faults.fail_next(Call::Read, 1);
    let mut vault = Vault::new();
    let plan = vault.import(harness.source().as_ref()).await;
    assert_eq!(plan.count(ImportAction::Add), 4);
    assert_eq!(faults.throttled() - before.0, 5, "every throttle was met");
    assert_eq!(faults.failed() - before.1, 2, "every outage was met");
}

pub async fn binary_values_become_asset_files(harness: &dyn Harness) {
    if !harness.binary() {
        return;
    }
    let der = [
        0x30u8, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xff, 0xfe,
    ];
    harness.put("CLIENT_CERT_DER", &der).await;
    let mut vault = Vault::new();
    let plan = vault.import(harness.source().as_ref()).await;
    assert_eq!(
        plan.lines[0].destination,
        import::Destination::Asset,
        "{:?}",
        plan.lines
    );
    assert_eq!(vault.assets["CLIENT_CERT_DER"].as_bytes(), der);
}

/// Listing alone: every secret put is listed, enabled, once.
pub async fn lists_every_secret_once(harness: &dyn Harness) {
    for (key, value) in &AWKWARD[..3] {
        harness.put(key, value.as_bytes()).await;
    }
    let listed: Vec<ListedSecret> = harness.source().list().await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|secret| secret.enabled));
}

/// Expands one `#[tokio::test]` per suite case for a harness.
#[macro_export]
macro_rules! source_suite {
    ($start:expr) => {
        source_suite!(@cases $start;
            values_travel_byte_for_byte,
            a_reimport_of_an_unchanged_source_writes_nothing,
            listing_pages_past_1000_and_reads_in_batches,
            a_disabled_secret_is_reported_not_read,
            a_deleted_secret_is_gone_and_delete_missing_follows,
            refused_credentials_are_denied_and_name_no_value,
            throttles_and_outages_are_retried,
            binary_values_become_asset_files,
            lists_every_secret_once
        );
    };
    (@cases $start:expr; $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $start;
                suite::$case(&harness).await;
            }
        )+
    };
}
