//! The shared Source suite against the Key Vault fake (TLS with its own CA,
//! challenge authentication, `nextLink` paging, soft delete, disabled
//! versions, 429 and 503 answered as Key Vault does), and what is Key
//! Vault's own: the name transform undone, content types, a write in the
//! second of a listing, a secret disabled or deleted between listing and
//! read, the credentials a refused token names, and listings that
//! misbehave.
//!
//! Key Vault's `updated` is in whole seconds, and the source trusts it as a
//! revision only once its second is over (see `vsync_sources::azure`). A
//! real import runs well after the writes it picks up; the harness does the
//! same by starting each import ([`suite::Harness::source`]) only once the
//! second of its last write is over. The same-second case is a test of its
//! own below.

mod suite;

use std::time::Duration;

use suite::azure::{KeyVault, now};
use vsync_engine::import::ImportAction;
use vsync_engine::sink::SinkError;
use vsync_engine::source::{ListedSecret, Source};
use vsync_testcontainers::faults::Call;
use vsync_testcontainers::{BrokenListing, KeyVaultServer};

source_suite!(KeyVault::start().await);

fn actions(plan: &vsync_engine::import::ImportPlan) -> Vec<(&str, ImportAction)> {
    plan.lines
        .iter()
        .map(|line| (line.key.as_str(), line.action))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_come_back_with_underscores_and_content_types_are_listed() {
    let vault = KeyVault::start().await;
    // As the Key Vault sink writes DB_PASS, and as a person named one.
    vault.server.set_outside("DB-PASS", "s3cret");
    vault.server.set_outside("legacy-api-key", "{\"k\": 1}");
    vault
        .server
        .annotate_outside("legacy-api-key", "owner", "ops", Some("application/json"));
    vault.wrote();
    let source = suite::Harness::source(&vault);
    assert_eq!(source.unmap_name("DB-PASS"), "DB_PASS");
    assert_eq!(
        source.origin(),
        format!("azure-key-vault:vault={}", &vault.server.url()[8..])
    );

    let listed = source.list().await.unwrap();
    let types: Vec<(&str, Option<&str>)> = listed
        .iter()
        .map(|secret| (secret.name.as_str(), secret.content_type.as_deref()))
        .collect();
    assert_eq!(
        types,
        [
            ("DB-PASS", None),
            ("legacy-api-key", Some("application/json"))
        ]
    );
    assert!(listed.iter().all(|secret| {
        secret.revision.is_some()
            && secret
                .updated_at
                .as_deref()
                .is_some_and(|at| at.ends_with('Z'))
    }));

    let mut imported = suite::Vault::new();
    let plan = imported.import(source.as_ref()).await;
    // The sink's `_` → `-` reversed; a name that had `-` comes back with `_`.
    assert_eq!(
        actions(&plan),
        [
            ("DB_PASS", ImportAction::Add),
            ("legacy_api_key", ImportAction::Add)
        ]
    );
    assert_eq!(imported.entries["DB_PASS"].as_text(), Some("s3cret"));
    // A JSON secret is one value, byte for byte.
    assert_eq!(
        imported.entries["legacy_api_key"].as_text(),
        Some("{\"k\": 1}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_write_in_the_second_of_a_listing_is_not_missed() {
    let vault = KeyVault::start().await;
    // Start just after a second begins, so what follows shares it.
    let into_second = Duration::from_nanos(u64::from(now().subsec_nanos()));
    tokio::time::sleep(Duration::from_secs(1) - into_second + Duration::from_millis(5)).await;
    let second = now().as_secs();
    let source = || vault.source_with(KeyVaultServer::READER_TOKEN, "");

    vault.server.set_outside("ROTATED", "first");
    let mut imported = suite::Vault::new();
    imported.import(&source()).await;
    vault.server.set_outside("ROTATED", "second");
    let plan = imported.import(&source()).await;
    assert_eq!(
        now().as_secs(),
        second,
        "the steps above took under a second"
    );
    assert_eq!(actions(&plan), [("ROTATED", ImportAction::Change)]);
    assert_eq!(imported.entries["ROTATED"].as_text(), Some("second"));

    // Once the second is over, the revision holds and nothing is read.
    vault.wrote();
    vault.after_the_last_write();
    let reads = vault.server.faults().calls(Call::Read);
    imported.import(&source()).await;
    let again = imported.import(&source()).await;
    assert_eq!(again.read, 0, "{:?}", again.lines);
    assert_eq!(vault.server.faults().calls(Call::Read) - reads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_disabled_or_deleted_after_the_listing_is_reported_or_left_out() {
    let vault = KeyVault::start().await;
    for name in ["STAYS", "SWITCHED-OFF", "GONE"] {
        vault.server.set_outside(name, "v");
    }
    let source = vault.source_with(KeyVaultServer::READER_TOKEN, "");
    let listed = source.list().await.unwrap();
    vault.server.disable_outside("SWITCHED-OFF");
    vault.server.delete_outside("GONE");
    let mut values = Vec::new();
    let mut disabled = Vec::new();
    for secret in &listed {
        let batch = source.read(&[secret]).await.unwrap();
        values.extend(batch.values.into_iter().map(|value| value.secret));
        disabled.extend(batch.disabled);
    }
    assert_eq!(values, ["STAYS"]);
    assert_eq!(disabled, ["SWITCHED-OFF"]);
    // And the next listing shows it disabled, the deleted one not at all.
    let relisted: Vec<(String, bool)> = source
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|secret| (secret.name, secret.enabled))
        .collect();
    assert_eq!(
        relisted,
        [("STAYS".into(), true), ("SWITCHED-OFF".into(), false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_names_the_credentials_to_fix() {
    let vault = KeyVault::start().await;
    vault.server.set_outside("GUARDED", "guarded-value-xyzzy");
    let error = vault
        .source_with("an-expired-token", "")
        .list()
        .await
        .unwrap_err();
    let SinkError::Denied(message) = &error else {
        panic!("expected Denied, got {error:?}");
    };
    for fix in [
        "HTTP 401",
        "AZURE_ACCESS_TOKEN",
        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
        "az login",
    ] {
        assert!(message.contains(fix), "{fix}: {message}");
    }
    assert!(!message.contains("xyzzy") && !message.contains("an-expired-token"));
}

/// What listing through a fake that lists `how` fails with.
async fn listing_refused(vault: &KeyVault, how: BrokenListing, more_ca: &str) -> String {
    vault.server.break_listing(Some(how));
    let error = vault
        .source_with(KeyVaultServer::READER_TOKEN, more_ca)
        .list()
        .await
        .unwrap_err();
    vault.server.break_listing(None);
    match error {
        SinkError::Rejected(message) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_that_loop_leave_the_vault_or_overflow_are_refused() {
    let vault = KeyVault::start().await;
    for i in 0..30 {
        vault.server.set_outside(&format!("S{i:02}"), "v");
    }
    let pages = vault.server.list_pages();
    let message = listing_refused(&vault, BrokenListing::LinksBack, "").await;
    assert!(message.contains("links back"), "{message}");
    assert_eq!(
        vault.server.list_pages() - pages,
        2,
        "the first page, once more, then stop"
    );

    // Another server the client would trust: without the check, the SDK
    // would take the token there.
    let elsewhere = KeyVaultServer::start().await.unwrap();
    let message = listing_refused(
        &vault,
        BrokenListing::LinksTo(elsewhere.url()),
        elsewhere.ca_pem(),
    )
    .await;
    assert!(message.contains("no token goes there"), "{message}");
    assert_eq!(elsewhere.bearer_requests(), 0);

    let message = listing_refused(&vault, BrokenListing::Padded(2 << 20), "").await;
    assert!(message.contains("larger than 1048576 bytes"), "{message}");

    let message = listing_refused(&vault, BrokenListing::ListsName("a_b".into()), "").await;
    assert!(
        message.contains("does not name a Key Vault secret"),
        "{message}"
    );
    let message = listing_refused(&vault, BrokenListing::ListsName("s05".into()), "").await;
    assert!(message.contains("listed twice"), "{message}");

    // Answering properly again, it lists everything once.
    let listed: Vec<ListedSecret> = vault
        .source_with(KeyVaultServer::READER_TOKEN, "")
        .list()
        .await
        .unwrap();
    assert_eq!(listed.len(), 30);
}
