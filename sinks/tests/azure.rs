//! The Azure Key Vault sink against the harness's Key Vault fake (TLS with
//! a generated CA, challenge-based auth, soft delete): the shared suite,
//! then what only Key Vault has — recovering soft-deleted names, disabled
//! secrets, lossy name collisions, tag ownership, purge, which writes are
//! counted, throttling on lists and reads, and authentication.
#![cfg(feature = "azure")]

#[macro_use]
mod suite;

use vsync_testcontainers::faults::{Call, Faults};

use std::time::Duration;

use suite::{Platform, Vault, options};
use vsync_engine::sink::{Change, SecretValue, Sink, SinkError};
use vsync_engine::sync::{Action, Drift, Outcome, SyncError, SyncOptions, SyncReport, SyncStatus};
use vsync_sinks::azure::{KeyVaultSink, KeyVaultSinkBuilder};
use vsync_testcontainers::KeyVaultServer;

struct Azure {
    server: KeyVaultServer,
}

impl Azure {
    /// A sink pointed at the fake, as a test (not the CLI) builds it.
    fn builder(&self) -> KeyVaultSinkBuilder {
        KeyVaultSink::builder()
            .vault_url(self.server.url())
            .access_token(KeyVaultServer::TOKEN)
            .extra_ca_pem(self.server.ca_pem())
            // The fake is served from 127.0.0.1, which is no subdomain of
            // the vault.azure.net its challenge names (as the service's does).
            .verify_challenge_resource(false)
            // Small pages, so the suite's 120 secrets take 12 of them.
            .page_size(10)
    }
}

async fn start() -> Azure {
    Azure {
        server: KeyVaultServer::start()
            .await
            .expect("start the Key Vault fake"),
    }
}

#[async_trait::async_trait]
impl Platform for Azure {
    fn sink(&self) -> Box<dyn Sink> {
        Box::new(self.builder().build().expect("build the Key Vault sink"))
    }

    async fn value(&self, name: &str) -> Option<String> {
        self.server.value(name)
    }

    async fn names(&self) -> Vec<String> {
        self.server.names()
    }

    async fn edit_outside(&self, name: &str, value: &str) {
        self.server.set_outside(name, value);
    }

    fn faults(&self) -> &Faults {
        self.server.faults()
    }

    fn colliding_keys(&self) -> Option<(&'static str, &'static str)> {
        Some(("A_B", "A-B"))
    }

    fn rejected_key(&self) -> Option<&'static str> {
        Some("APP:NAME")
    }
}

sink_suite!(start().await);

// ---- Key Vault only -------------------------------------------------------

const SECRETS: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://app:s3cret@db.internal:5432/app"),
    ("API_TOKEN", "tok_live_0123456789"),
    ("SHORT", "x"),
];

fn line(report: &SyncReport, name: &str) -> (Action, Option<Drift>, Outcome) {
    let line = report
        .secrets
        .iter()
        .find(|line| line.plan.name == name)
        .unwrap_or_else(|| panic!("{name} is in the report: {report:?}"));
    (line.plan.action, line.plan.drift, line.outcome.clone())
}

fn pruning() -> SyncOptions {
    SyncOptions {
        prune: true,
        ..options()
    }
}

fn managed_tag(azure: &Azure, name: &str) -> Option<String> {
    azure
        .server
        .tags(name)
        .and_then(|tags| tags.get("managed-by").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_soft_deleted_outside_vsync_is_recovered_and_set() {
    let azure = start().await;
    // Key Vault finishes deletes and recoveries asynchronously.
    azure
        .server
        .set_transition_delay(Duration::from_millis(300));
    let vault = Vault::new();
    vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();
    azure.server.delete_outside("DATABASE-URL");
    assert_eq!(azure.server.deleted_names(), ["DATABASE-URL"]);

    let rotated = [
        (
            "DATABASE_URL",
            "postgres://app:rotated@db.internal:5432/app",
        ),
        SECRETS[1],
        SECRETS[2],
    ];
    let report = vault
        .sync(azure.sink().as_ref(), &rotated, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(
        line(&report, "DATABASE-URL"),
        (Action::Create, Some(Drift::Deleted), Outcome::Applied)
    );
    assert_eq!(
        azure.server.value("DATABASE-URL").as_deref(),
        Some("postgres://app:rotated@db.internal:5432/app"),
        "the new value, not the recovered one"
    );
    assert_eq!(
        managed_tag(&azure, "DATABASE-URL").as_deref(),
        Some("vsync")
    );
    assert_eq!(
        azure.server.versions("DATABASE-URL"),
        2,
        "recovered with its history, then set"
    );
    assert!(azure.server.deleted_names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_secret_fails_alone_and_the_rest_is_synced() {
    let azure = start().await;
    // Someone made API-TOKEN by hand and disabled it: listed, unreadable.
    azure.server.set_outside("API-TOKEN", "by hand");
    azure.server.disable_outside("API-TOKEN");

    let vault = Vault::new();
    let report = vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .expect("one unreadable secret does not stop the sync");
    assert_eq!(report.status, SyncStatus::Partial, "{report:?}");
    let (action, drift, outcome) = line(&report, "API-TOKEN");
    assert_eq!((action, drift), (Action::Unreadable, None));
    match outcome {
        Outcome::Failed(message) => assert!(message.contains("disabled"), "{message}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        azure.server.versions("API-TOKEN"),
        1,
        "a disabled secret is not overwritten"
    );
    assert_eq!(
        line(&report, "DATABASE-URL"),
        (Action::Create, None, Outcome::Applied)
    );
    assert_eq!(azure.server.value("SHORT").as_deref(), Some("x"));
}

/// A secret vsync wrote, disabled afterwards in the portal: listed (with
/// its tags), unreadable (403 `SecretDisabled`). Disabling moves
/// `attributes.updated` by whole seconds only, so the sink's revision must
/// move on the disabled flag itself: otherwise, within the second of
/// vsync's write, the record vouches for the value and the sync reports it
/// unchanged while every application reading it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_secret_disabled_in_the_portal_is_unreadable_and_left_alone() {
    let azure = start().await;
    let vault = Vault::new();
    vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();
    azure.server.disable_outside("API-TOKEN");

    let before = azure.server.faults().writes();
    let report = vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .expect("one unreadable secret does not stop the sync");
    assert_eq!(report.status, SyncStatus::Partial, "{report:?}");
    match line(&report, "API-TOKEN") {
        (Action::Unreadable, None, Outcome::Failed(message)) => {
            assert!(message.contains("SecretDisabled"), "{message}");
        }
        other => panic!("expected an unreadable secret, got {other:?}"),
    }
    assert_eq!(report.count(Action::Unchanged), SECRETS.len() - 1);
    assert_eq!(azure.server.faults().writes(), before, "nothing written");
    assert_eq!(azure.server.versions("API-TOKEN"), 1, "not overwritten");

    // Dropped from the vault, it is still ours: prune deletes it (Key Vault
    // deletes disabled secrets like any other).
    let report = vault
        .sync(azure.sink().as_ref(), &[SECRETS[0], SECRETS[2]], pruning())
        .await
        .unwrap();
    assert_eq!(
        line(&report, "API-TOKEN"),
        (Action::Prune, None, Outcome::Applied)
    );
    assert_eq!(azure.server.deleted_names(), ["API-TOKEN"]);
}

/// A secret disabled and then soft-deleted in the portal: recovering it
/// brings it back disabled (a get answers 403 `SecretDisabled`, not the 404
/// of a recovery still running), and the sink must take that as recovered
/// and set the vault's value as a new, enabled version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_deleted_secret_that_was_disabled_is_recovered_and_set() {
    let azure = start().await;
    let vault = Vault::new();
    vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();
    azure.server.disable_outside("DATABASE-URL");
    azure.server.delete_outside("DATABASE-URL");

    let report = vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(
        line(&report, "DATABASE-URL"),
        (Action::Create, Some(Drift::Deleted), Outcome::Applied)
    );
    assert_eq!(
        azure.server.value("DATABASE-URL").as_deref(),
        Some(SECRETS[0].1)
    );
    assert_eq!(
        azure.server.versions("DATABASE-URL"),
        2,
        "recovered with its disabled version, then set"
    );
    assert!(azure.server.deleted_names().is_empty());
}

/// The write counter sees only the writes Key Vault accepts: a set it
/// refuses (too long, or on a soft-deleted name) or a delete of a missing
/// name costs nothing; a recovery is a write of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_writes_key_vault_accepts_are_counted() {
    let azure = start().await;
    let sink = azure.sink();
    let writes = || azure.server.faults().writes();
    let too_long = SecretValue::from_text(&"x".repeat(25_601));
    let results = sink
        .apply(&[Change::Put {
            name: "DB-PASS",
            value: &too_long,
            exists: false,
        }])
        .await;
    match &results[0] {
        Err(SinkError::Rejected(message)) => assert!(message.contains("400"), "{message}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(writes(), 0, "a refused set is not a write");

    let value = SecretValue::from_text("v");
    let put = [Change::Put {
        name: "DB-PASS",
        value: &value,
        exists: false,
    }];
    let delete = [Change::Delete { name: "DB-PASS" }];
    assert!(sink.apply(&put).await[0].is_ok());
    assert_eq!(writes(), 1);
    assert!(sink.apply(&delete).await[0].is_ok());
    assert_eq!(writes(), 2);
    assert!(sink.apply(&delete).await[0].is_ok(), "already gone is fine");
    assert_eq!(writes(), 2, "a delete answered 404 is not a write");
    // The name is soft-deleted: the set is refused (409), the recovery and
    // the set after it are written.
    assert!(sink.apply(&put).await[0].is_ok());
    assert_eq!(writes(), 4, "a recovery and a set");
    assert_eq!(azure.server.versions("DB-PASS"), 2);
}

/// Listing pages and reads answer Key Vault's throttle (429 `Throttled`,
/// `Retry-After` in seconds unless the harness asks for none) and outages
/// (503), and the sink hands the engine the hint it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_and_failed_lists_and_reads_are_answered_as_key_vault_does() {
    let azure = start().await;
    azure.server.set_outside("DB-PASS", "v");
    let sink = azure.sink();
    let faults = azure.server.faults();

    faults.throttle_next(Call::List, 1);
    match sink.inventory().await {
        Err(SinkError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    faults.fail_next(Call::List, 1);
    match sink.inventory().await {
        Err(error @ SinkError::Unavailable(_)) => {
            assert!(
                error.to_string().contains("503 ServiceUnavailable"),
                "{error}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(azure.server.list_pages(), 0, "faulted pages are not served");

    faults.throttle_without_retry_after();
    faults.throttle_next(Call::Read, 1);
    assert!(matches!(
        sink.read("DB-PASS").await,
        Err(SinkError::RateLimited { retry_after: None })
    ));
    faults.fail_next(Call::Read, 1);
    assert!(matches!(
        sink.read("DB-PASS").await,
        Err(SinkError::Unavailable(_))
    ));
    assert_eq!((faults.throttled(), faults.failed()), (2, 2));
    assert_eq!(sink.inventory().await.unwrap().len(), 1);
    assert_eq!(
        sink.read("DB-PASS").await.unwrap(),
        Some(SecretValue::from_text("v"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_and_case_folded_collisions_are_refused_before_any_write() {
    let azure = start().await;
    for pair in [
        ("A_B", "A-B"),
        ("db_pass", "DB-PASS"),
        ("app.key", "APP_KEY"),
    ] {
        let desired = [("FIRST_OK", "1"), (pair.0, "one"), (pair.1, "two")];
        match Vault::new()
            .sync(azure.sink().as_ref(), &desired, options())
            .await
        {
            Err(SyncError::Preflight(refusals)) => {
                let message = SyncError::Preflight(refusals).to_string();
                assert!(
                    message.contains(pair.0) && message.contains(pair.1),
                    "names both keys: {message}"
                );
            }
            other => panic!("expected a preflight refusal for {pair:?}, got {other:?}"),
        }
    }
    assert_eq!(azure.server.faults().writes(), 0, "nothing written");
    assert!(azure.server.names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_leaves_foreign_and_relabelled_secrets_alone() {
    let azure = start().await;
    azure.server.set_outside("FOREIGN-SECRET", "made by hand");
    let vault = Vault::new();
    vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();
    // A person saves a new version of an owned secret in the portal: the
    // new version has no managed-by tag.
    azure.server.set_outside("SHORT", "hand edited");

    let report = vault
        .sync(azure.sink().as_ref(), &SECRETS[..1], pruning())
        .await
        .unwrap();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(line(&report, "API-TOKEN").0, Action::Prune);
    assert_eq!(
        line(&report, "SHORT").0,
        Action::Stale,
        "label gone: not ours any more"
    );
    assert!(
        report
            .secrets
            .iter()
            .all(|line| line.plan.name != "FOREIGN-SECRET"),
        "never written by vsync: not even planned"
    );
    assert_eq!(azure.server.value("API-TOKEN"), None);
    assert_eq!(azure.server.value("SHORT").as_deref(), Some("hand edited"));
    assert_eq!(
        azure.server.value("FOREIGN-SECRET").as_deref(),
        Some("made by hand")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_secrets_stay_recoverable_unless_purge_is_on() {
    let azure = start().await;
    azure
        .server
        .set_transition_delay(Duration::from_millis(300));
    let vault = Vault::new();
    vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();

    let report = vault
        .sync(azure.sink().as_ref(), &SECRETS[..2], pruning())
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 1, "{report:?}");
    assert_eq!(azure.server.deleted_names(), ["SHORT"], "soft-deleted");

    // Purging right after the delete meets ObjectIsBeingDeleted; the sink
    // waits it out.
    let purging = azure.builder().purge_on_delete(true).build().unwrap();
    let report = vault
        .sync(&purging, &SECRETS[..1], pruning())
        .await
        .unwrap();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(
        azure.server.deleted_names(),
        ["SHORT"],
        "purged: only the earlier one is left"
    );
    assert_eq!(azure.server.value("API-TOKEN"), None);

    // A purged name is free again once the purge finished; a soft-deleted
    // one is recovered.
    let report = vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(azure.server.versions("API-TOKEN"), 1, "created anew");
    assert_eq!(azure.server.versions("SHORT"), 2, "recovered, then set");
    assert!(azure.server.deleted_names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tags_and_the_content_type_survive_an_update() {
    let azure = start().await;
    let vault = Vault::new();
    vault
        .sync(azure.sink().as_ref(), SECRETS, options())
        .await
        .unwrap();
    azure
        .server
        .annotate_outside("API-TOKEN", "owner", "payments", Some("text/plain"));

    let mut rotated = SECRETS.to_vec();
    rotated[1] = ("API_TOKEN", "tok_live_rotated");
    vault
        .sync(azure.sink().as_ref(), &rotated, options())
        .await
        .unwrap();
    let tags = azure.server.tags("API-TOKEN").unwrap();
    assert_eq!(tags.get("owner").map(String::as_str), Some("payments"));
    assert_eq!(tags.get("managed-by").map(String::as_str), Some("vsync"));
    assert_eq!(
        azure.server.content_type("API-TOKEN").as_deref(),
        Some("text/plain")
    );
    assert_eq!(
        azure.server.value("API-TOKEN").as_deref(),
        Some("tok_live_rotated")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_the_sink_is_denied() {
    let azure = start().await;
    let wrong = azure.builder().access_token("not-a-token").build().unwrap();
    match wrong.inventory().await {
        Err(SinkError::Denied(message)) => assert!(message.contains("401"), "{message}"),
        other => panic!("expected Denied, got {other:?}"),
    }

    // A token that may read but not write: 403 on the write.
    let reader = azure
        .builder()
        .access_token(KeyVaultServer::READER_TOKEN)
        .build()
        .unwrap();
    assert!(reader.inventory().await.unwrap().is_empty());
    let value = SecretValue::from_text("hunter2");
    let results = reader
        .apply(&[Change::Put {
            name: "DB-PASS",
            value: &value,
            exists: false,
        }])
        .await;
    match &results[0] {
        Err(SinkError::Denied(message)) => {
            assert!(message.contains("403"), "{message}");
            assert!(!message.contains("hunter2"), "no value: {message}");
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    assert_eq!(azure.server.faults().writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_whose_challenge_names_another_domain_gets_no_token() {
    let azure = start().await;
    // The default: the challenge's resource must be the vault URL's domain.
    let sink = KeyVaultSink::builder()
        .vault_url(azure.server.url())
        .access_token(KeyVaultServer::TOKEN)
        .extra_ca_pem(azure.server.ca_pem())
        .build()
        .unwrap();
    match sink.inventory().await {
        Err(SinkError::Misconfigured(message)) => {
            assert!(message.contains("challenge resource"), "{message}");
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    assert_eq!(azure.server.bearer_requests(), 0, "the token never left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    let azure = start().await;
    let sink = KeyVaultSink::builder()
        .vault_url(azure.server.url())
        .access_token(KeyVaultServer::TOKEN)
        .verify_challenge_resource(false)
        .build()
        .unwrap();
    match sink.inventory().await {
        Err(SinkError::Unavailable(message)) => {
            assert!(message.to_lowercase().contains("certificate"), "{message}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert_eq!(azure.server.bearer_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_refusals_map_to_the_engine_taxonomy() {
    let azure = start().await;
    let sink = azure.sink();
    let value = SecretValue::from_text("s3cret-value");
    let put = |name: &'static str| Change::Put {
        name,
        value: &value,
        exists: false,
    };

    azure.server.faults().throttle_next_writes(1);
    let results = sink.apply(&[put("DB-PASS")]).await;
    match &results[0] {
        Err(SinkError::RateLimited { retry_after }) => {
            assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }

    azure.server.faults().break_writes_of("DB-PASS");
    let results = sink.apply(&[put("DB-PASS")]).await;
    match &results[0] {
        Err(error @ SinkError::Rejected(message)) => {
            assert!(message.contains("400 BadParameter"), "{message}");
            assert!(!error.is_retryable());
            assert!(!message.contains("s3cret-value"), "no value: {message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    azure.server.faults().heal();
    assert_eq!(sink.read("DB-PASS").await.unwrap(), None);
    assert!(sink.apply(&[put("DB-PASS")]).await[0].is_ok());
    assert_eq!(
        sink.read("db-pass").await.unwrap(),
        Some(value.clone()),
        "names fold case"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_follows_next_links_page_by_page() {
    let azure = start().await;
    for i in 0..25 {
        azure.server.set_outside(&format!("S-{i:02}"), "v");
    }
    let listed = azure.sink().inventory().await.unwrap();
    assert_eq!(listed.len(), 25);
    assert!(listed.iter().all(|found| found.managed == Some(false)));
    assert_eq!(azure.server.list_pages(), 3, "pages of 10: 10 + 10 + 5");

    let full_pages = azure.builder().page_size(25).build().unwrap();
    assert_eq!(full_pages.inventory().await.unwrap().len(), 25);
    assert_eq!(azure.server.list_pages(), 4, "one more page of 25");
}

/// What the sink's SDK relies on, checked on the wire: a request without a
/// token is challenged, `api-version` and the name grammar are enforced,
/// pages hold at most 25 secrets.
///
/// Key Vault refuses an api-version it never published; it still serves
/// its older published ones (2016-10-01, 7.0–7.4), which this fake does
/// not speak, so the fake refuses those in words of its own rather than
/// posing as Key Vault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_answers_like_key_vault_on_the_wire() {
    let azure = start().await;
    let ca = reqwest::Certificate::from_pem(azure.server.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", azure.server.url());
    let bearer = format!("Bearer {}", KeyVaultServer::TOKEN);
    let error_code = |body: &str| -> String {
        let start = body.find("\"code\":\"").expect("an error code") + 8;
        body[start..].split('"').next().unwrap().to_owned()
    };

    let response = http
        .get(url("/secrets?api-version=7.6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer authorization="),
        "{challenge}"
    );
    assert!(
        challenge.contains("resource=\"https://vault.azure.net\""),
        "{challenge}"
    );
    assert_eq!(error_code(&response.text().await.unwrap()), "Unauthorized");

    for (path, status, code) in [
        ("/secrets", 400, "BadParameter"),
        ("/secrets?api-version=7.99", 400, "BadParameter"),
        (
            "/secrets?api-version=7.6&maxresults=26",
            400,
            "BadParameter",
        ),
        ("/secrets/DB_PASS?api-version=7.6", 400, "BadParameter"),
        ("/secrets/DB-PASS?api-version=7.6", 404, "SecretNotFound"),
        (
            "/deletedsecrets/DB-PASS?api-version=7.5",
            404,
            "SecretNotFound",
        ),
    ] {
        let response = http
            .get(url(path))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(error_code(&response.text().await.unwrap()), code, "{path}");
    }
    let unpublished = http
        .get(url("/secrets?api-version=7.99"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    let message = unpublished.text().await.unwrap();
    assert!(
        message.contains("The specified version (7.99) is not recognized."),
        "{message}"
    );
    let older = http
        .get(url("/secrets?api-version=2016-10-01"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(older.status(), 400);
    let message = older.text().await.unwrap();
    assert!(
        message.contains("published Key Vault version") && message.contains("test fake"),
        "the fake owns up to its narrowing: {message}"
    );
    assert_eq!(azure.server.faults().writes(), 0, "reads are not writes");
}

// ---- Client-secret credential ---------------------------------------------

impl Azure {
    /// A sink that gets its token from the fake's Entra ID token endpoint
    /// with a client secret, over the same transport (the fake's CA).
    fn with_client_secret(&self, secret: &str) -> KeyVaultSink {
        KeyVaultSink::builder()
            .vault_url(self.server.url())
            .client_secret(KeyVaultServer::TENANT_ID, KeyVaultServer::CLIENT_ID, secret)
            .authority_host(self.server.url())
            .extra_ca_pem(self.server.ca_pem())
            .verify_challenge_resource(false)
            .build()
            .expect("build the Key Vault sink")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_secret_gets_one_token_for_a_whole_sync() {
    let azure = start().await;
    let sink = azure.with_client_secret(KeyVaultServer::CLIENT_SECRET);
    let vault = Vault::new();
    let report = vault.sync(&sink, SECRETS, options()).await.unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(
        azure.server.value("DATABASE-URL").as_deref(),
        Some(SECRETS[0].1)
    );
    let mut rotated = SECRETS.to_vec();
    rotated[2] = ("SHORT", "y");
    let report = vault.sync(&sink, &rotated, options()).await.unwrap();
    assert_eq!(report.count(Action::Update), 1, "{report:?}");
    assert_eq!(azure.server.value("SHORT").as_deref(), Some("y"));

    assert!(
        azure.server.bearer_requests() >= 6,
        "two inventories and four writes carried the token: {}",
        azure.server.bearer_requests()
    );
    assert_eq!(
        azure.server.token_requests(),
        1,
        "the token is fetched once and reused until it nears expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_denied_with_entra_ids_reason_and_no_secret() {
    let azure = start().await;
    let wrong = "Zz91Q~not.the-right_secret~9876543210";
    let sink = azure.with_client_secret(wrong);
    match sink.inventory().await {
        Err(SinkError::Denied(message)) => {
            assert!(
                message.contains("HTTP 401 invalid_client: AADSTS7000215"),
                "{message}"
            );
            assert!(!message.contains("borrowed string"), "{message}");
            assert!(message.contains("Invalid client secret"), "{message}");
            assert!(!message.contains(wrong), "no secret: {message}");
            assert!(
                !message.contains(KeyVaultServer::CLIENT_SECRET),
                "{message}"
            );
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    assert_eq!(azure.server.token_requests(), 1, "not retried by the SDK");
    assert_eq!(azure.server.bearer_requests(), 0, "no token, no bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_authority_gets_no_client_secret() {
    let azure = start().await;
    let other = KeyVaultServer::start().await.unwrap();
    // The vault is trusted (its CA is given), the authority is another
    // server whose CA is not: the TLS handshake fails before the form.
    let sink = KeyVaultSink::builder()
        .vault_url(azure.server.url())
        .client_secret(
            KeyVaultServer::TENANT_ID,
            KeyVaultServer::CLIENT_ID,
            KeyVaultServer::CLIENT_SECRET,
        )
        .authority_host(other.url())
        .extra_ca_pem(azure.server.ca_pem())
        .verify_challenge_resource(false)
        .build()
        .unwrap();
    match sink.inventory().await {
        Err(SinkError::Denied(message)) => {
            assert!(message.contains("access token"), "{message}");
            assert!(message.to_lowercase().contains("certificate"), "{message}");
            assert!(
                !message.contains(KeyVaultServer::CLIENT_SECRET),
                "{message}"
            );
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    assert_eq!(other.token_requests(), 0, "the form never reached it");
    assert_eq!(azure.server.bearer_requests(), 0);
}

/// The token endpoint answers the client-credentials grant the way Entra
/// ID does, checked on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_token_endpoint_answers_like_entra_id() {
    let azure = start().await;
    let ca = reqwest::Certificate::from_pem(azure.server.ca_pem().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let endpoint = |tenant: &str| format!("{}/{tenant}/oauth2/v2.0/token", azure.server.url());
    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", KeyVaultServer::CLIENT_ID),
        ("client_secret", KeyVaultServer::CLIENT_SECRET),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let encode = |pairs: &[(&str, &str)]| -> String {
        pairs
            .iter()
            .map(|(key, value)| {
                let value: String = value
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("{key}={value}")
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let post = |tenant: &str, body: String, content_type: &'static str| {
        http.post(endpoint(tenant))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    const FORM: &str = "application/x-www-form-urlencoded";

    let response = post(KeyVaultServer::TENANT_ID, encode(&good), FORM)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store, no-cache");
    let granted: serde_json::Value = response.json().await.unwrap();
    assert_eq!(granted["token_type"], "Bearer");
    assert_eq!(granted["expires_in"], 3599);
    assert_eq!(granted["ext_expires_in"], 3599);
    assert_eq!(granted["access_token"], KeyVaultServer::TOKEN);

    let with = |key: &str, value: &'static str| -> Vec<(&'static str, &'static str)> {
        good.iter()
            .map(|&(k, v)| if k == key { (k, value) } else { (k, v) })
            .collect()
    };
    let without = |key: &str| -> Vec<(&'static str, &'static str)> {
        good.iter().copied().filter(|&(k, _)| k != key).collect()
    };
    for (tenant, body, content_type, status, error, code) in [
        (
            KeyVaultServer::TENANT_ID,
            encode(&with("client_secret", "Bad7Q~wrong.secret")),
            FORM,
            401,
            "invalid_client",
            7_000_215,
        ),
        (
            KeyVaultServer::TENANT_ID,
            encode(&without("client_secret")),
            FORM,
            401,
            "invalid_client",
            7_000_216,
        ),
        (
            KeyVaultServer::TENANT_ID,
            encode(&with("client_id", "someone-else")),
            FORM,
            400,
            "unauthorized_client",
            700_016,
        ),
        (
            "another-tenant",
            encode(&good),
            FORM,
            400,
            "invalid_request",
            90_002,
        ),
        (
            KeyVaultServer::TENANT_ID,
            encode(&with("grant_type", "password")),
            FORM,
            400,
            "unsupported_grant_type",
            70_003,
        ),
        (
            KeyVaultServer::TENANT_ID,
            encode(&without("scope")),
            FORM,
            400,
            "invalid_request",
            900_144,
        ),
        (
            KeyVaultServer::TENANT_ID,
            encode(&with("scope", "https://vault.azure.net")),
            FORM,
            400,
            "invalid_scope",
            1_002_012,
        ),
        (
            KeyVaultServer::TENANT_ID,
            encode(&with("scope", "https://management.azure.com/.default")),
            FORM,
            400,
            "invalid_resource",
            500_011,
        ),
        (
            KeyVaultServer::TENANT_ID,
            serde_json::json!({"grant_type": "client_credentials"}).to_string(),
            "application/json",
            400,
            "invalid_request",
            900_144,
        ),
    ] {
        let response = post(tenant, body.clone(), content_type).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        let refused: serde_json::Value = response.json().await.unwrap();
        assert_eq!(refused["error"], error, "{body}");
        assert_eq!(refused["error_codes"], serde_json::json!([code]), "{body}");
        let description = refused["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        assert!(description.contains("\r\nTrace ID: "), "{description}");
        assert!(
            !description.contains("Bad7Q~wrong.secret"),
            "the secret is never echoed"
        );
    }
    assert_eq!(azure.server.token_requests(), 10);
    assert_eq!(
        azure.server.bearer_requests(),
        0,
        "the token endpoint is not the vault"
    );
}
