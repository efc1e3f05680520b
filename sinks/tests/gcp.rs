//! The GCP Secret Manager sink against the harness's Secret Manager fake:
//! the shared sink suite, then what the suite cannot see (versions added
//! only for changed values, the calls an unchanged sync makes, re-creating
//! a secret deleted elsewhere, disabled and destroyed versions, the write
//! requests each change costs, Google's throttling without a hint, labels,
//! auth).

#![cfg(feature = "gcp")]

#[macro_use]
mod suite;

use vsync_testcontainers::faults::{Call, Faults};

use suite::{Platform, Vault, options};
use vsync_engine::sink::{Change, SecretValue, Sink, SinkError};
use vsync_engine::sync::{Action, Drift, Outcome, SyncError, SyncOptions, SyncStatus};
use vsync_sinks::gcp::GcpSecretManagerSink;
use vsync_testcontainers::GcpSecretManagerServer;

const PROJECT: &str = "vsync-test";
/// Small pages, so the suite's 120 secrets take three.
const PAGE_SIZE: i32 = 50;

struct Gcp {
    server: GcpSecretManagerServer,
}

async fn start() -> Gcp {
    Gcp {
        server: GcpSecretManagerServer::start(PROJECT)
            .await
            .expect("the Secret Manager fake starts"),
    }
}

impl Gcp {
    fn sink_as(&self, project: &str, token: &str) -> GcpSecretManagerSink {
        GcpSecretManagerSink::builder()
            .project(project)
            .endpoint(self.server.endpoint())
            .access_token(token)
            .page_size(PAGE_SIZE)
            .build()
            .expect("valid settings")
    }
}

#[async_trait::async_trait]
impl Platform for Gcp {
    fn sink(&self) -> Box<dyn Sink> {
        Box::new(self.sink_as(PROJECT, GcpSecretManagerServer::ADMIN_TOKEN))
    }

    async fn value(&self, name: &str) -> Option<String> {
        self.server
            .value(name)
            .map(|bytes| String::from_utf8(bytes).expect("UTF-8"))
    }

    async fn names(&self) -> Vec<String> {
        self.server.names()
    }

    async fn edit_outside(&self, name: &str, value: &str) {
        self.server.add_version_outside(name, value.as_bytes());
    }

    fn faults(&self) -> &Faults {
        self.server.faults()
    }

    fn colliding_keys(&self) -> Option<(&'static str, &'static str)> {
        None // case-sensitive, no transform
    }

    fn rejected_key(&self) -> Option<&'static str> {
        Some("DB.PASSWORD") // `.` is not allowed in a secret id
    }

    fn writes_per_create(&self) -> usize {
        // `secrets.create`, then `addVersion` with the value.
        2
    }
}

sink_suite!(start().await);

const APP: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://app:s3cret@db.internal/app"),
    ("API_TOKEN", "tok_live_0123456789"),
    ("SESSION_KEY", "sess_abcdef"),
];

fn versions(platform: &Gcp) -> Vec<usize> {
    APP.iter()
        .map(|(key, _)| platform.server.version_count(key))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_value_never_adds_a_version() {
    let platform = start().await;
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(versions(&platform), [1, 1, 1]);

    let (lists, accesses) = (platform.server.list_calls(), platform.server.access_calls());
    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::NoOp);
    assert_eq!(
        versions(&platform),
        [1, 1, 1],
        "no version for an unchanged value"
    );
    assert_eq!(
        platform.server.list_calls() - lists,
        1,
        "one page, one list call"
    );
    assert_eq!(
        platform.server.access_calls() - accesses,
        APP.len(),
        "one access per synced secret (the listing carries no revision)"
    );

    let mut changed = APP.to_vec();
    changed[1].1 = "tok_live_rotated";
    vault
        .sync(platform.sink().as_ref(), &changed, options())
        .await
        .unwrap();
    assert_eq!(
        versions(&platform),
        [1, 2, 1],
        "one version for the one change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_deleted_elsewhere_is_created_again() {
    let platform = start().await;
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    platform.server.delete_outside("API_TOKEN");

    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    let line = report
        .secrets
        .iter()
        .find(|line| line.plan.name == "API_TOKEN")
        .unwrap();
    assert_eq!(
        (line.plan.action, line.plan.drift, &line.outcome),
        (Action::Create, Some(Drift::Deleted), &Outcome::Applied)
    );
    assert_eq!(platform.value("API_TOKEN").await.as_deref(), Some(APP[1].1));
    assert_eq!(
        platform
            .server
            .labels("API_TOKEN")
            .get("managed-by")
            .map(String::as_str),
        Some("vsync")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_deleted_between_listing_and_update_is_created_again() {
    let platform = start().await;
    platform.edit_outside("API_TOKEN", "old").await;
    let sink = platform.sink();
    sink.inventory().await.unwrap();
    platform.server.delete_outside("API_TOKEN");
    let value = SecretValue::from_text("new");
    let results = sink
        .apply(&[Change::Put {
            name: "API_TOKEN",
            value: &value,
            exists: true,
        }])
        .await;
    assert_eq!(results[0].as_ref().unwrap().revision.as_deref(), Some("1"));
    assert_eq!(platform.value("API_TOKEN").await.as_deref(), Some("new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_secret_is_labelled_and_another_tools_is_not() {
    let platform = start().await;
    platform.edit_outside("API_TOKEN", "made by hand").await;
    platform
        .server
        .set_labels("API_TOKEN", &[("team", "payments")]);
    platform
        .edit_outside("SESSION_KEY", "made by terraform")
        .await;
    platform
        .server
        .set_labels("SESSION_KEY", &[("managed-by", "terraform")]);
    let vault = Vault::new();
    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(report.failures(), 0);
    let labels = platform.server.labels("API_TOKEN");
    assert_eq!(
        labels.get("managed-by").map(String::as_str),
        Some("vsync"),
        "adopted"
    );
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("payments"),
        "kept"
    );
    assert_eq!(
        platform
            .server
            .labels("SESSION_KEY")
            .get("managed-by")
            .map(String::as_str),
        Some("terraform"),
        "another tool's label is left alone"
    );
    assert_eq!(
        platform.value("SESSION_KEY").await.as_deref(),
        Some(APP[2].1)
    );

    let listed = platform.sink().inventory().await.unwrap();
    let managed = |name: &str| {
        listed
            .iter()
            .find(|found| found.name == name)
            .and_then(|found| found.managed)
    };
    assert_eq!(managed("API_TOKEN"), Some(true));
    assert_eq!(managed("SESSION_KEY"), Some(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_edit_between_listing_and_adoption_is_a_conflict() {
    let platform = start().await;
    platform.edit_outside("API_TOKEN", "made by hand").await;
    let sink = platform.sink();
    sink.inventory().await.unwrap();
    platform
        .server
        .set_labels("API_TOKEN", &[("team", "payments")]);
    let value = SecretValue::from_text("new");
    let results = sink
        .apply(&[Change::Put {
            name: "API_TOKEN",
            value: &value,
            exists: true,
        }])
        .await;
    assert!(
        matches!(results[0], Err(SinkError::Conflict(_))),
        "{:?}",
        results[0]
    );
    assert_eq!(
        platform.value("API_TOKEN").await.as_deref(),
        Some("made by hand")
    );
    assert_eq!(
        platform.server.labels("API_TOKEN").len(),
        1,
        "the edit is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_denied() {
    let platform = start().await;
    let wrong = platform.sink_as(PROJECT, "ya29.expired");
    match wrong.inventory().await {
        Err(SinkError::Denied(message)) => {
            assert!(message.contains("401 UNAUTHENTICATED"), "{message}");
        }
        other => panic!("expected Denied, got {other:?}"),
    }

    let read_only = platform.sink_as(PROJECT, GcpSecretManagerServer::READ_ONLY_TOKEN);
    assert!(read_only.inventory().await.unwrap().is_empty());
    let value = SecretValue::from_text("tok_live_0123456789");
    let results = read_only
        .apply(&[Change::Put {
            name: "API_TOKEN",
            value: &value,
            exists: false,
        }])
        .await;
    match &results[0] {
        Err(error @ SinkError::Denied(message)) => {
            assert!(message.contains("403 PERMISSION_DENIED"), "{message}");
            assert!(
                !error.to_string().contains("tok_live"),
                "no value in {error}"
            );
        }
        other => panic!("expected Denied, got {other:?}"),
    }
    assert!(platform.server.names().is_empty());

    let elsewhere = platform.sink_as("someone-elses-project", GcpSecretManagerServer::ADMIN_TOKEN);
    assert!(matches!(
        elsewhere.inventory().await,
        Err(SinkError::Denied(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_oversized_values_are_refused_before_any_write() {
    let platform = start().await;
    let big = "x".repeat(64 * 1024 + 1);
    for desired in [
        vec![("FIRST_OK", "1"), ("EMPTY", "")],
        vec![("FIRST_OK", "1"), ("BIG", big.as_str())],
    ] {
        match Vault::new()
            .sync(platform.sink().as_ref(), &desired, options())
            .await
        {
            Err(SyncError::Preflight(refusals)) => assert_eq!(refusals.len(), 1),
            other => panic!("expected a preflight refusal, got {other:?}"),
        }
    }
    assert!(platform.server.names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_values_round_trip() {
    let platform = start().await;
    let sink = platform.sink();
    let bytes: Vec<u8> = (0..=255).collect();
    let value = SecretValue::new(vsync_crypto::Zeroizing::new(bytes.clone()));
    let results = sink
        .apply(&[Change::Put {
            name: "TLS_KEY_DER",
            value: &value,
            exists: false,
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(platform.server.value("TLS_KEY_DER"), Some(bytes.clone()));
    assert_eq!(
        sink.read("TLS_KEY_DER").await.unwrap().unwrap().as_bytes(),
        &bytes[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_pages_with_the_configured_size() {
    let platform = start().await;
    for i in 0..120 {
        platform.edit_outside(&format!("PAGED_{i:03}"), "v").await;
    }
    let listed = platform.sink().inventory().await.unwrap();
    assert_eq!(listed.len(), 120);
    assert_eq!(platform.server.list_calls(), 3, "120 secrets, pages of 50");
    assert_eq!(platform.server.access_calls(), 0, "listing reads no value");
}

/// The write requests each kind of change costs, as Google bills them
/// against the 600-a-minute write quota: the fake counts creates and label
/// patches too, not only versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_request_is_counted() {
    let platform = start().await;
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), &APP[..1], options())
        .await
        .unwrap();
    assert_eq!(
        platform.faults().writes(),
        2,
        "a new secret is a create and its first version"
    );

    // Made by hand, without a label: adopting it is a label patch and then
    // a version.
    platform.edit_outside("API_TOKEN", "made by hand").await;
    vault
        .sync(platform.sink().as_ref(), &APP[..2], options())
        .await
        .unwrap();
    assert_eq!(platform.faults().writes(), 4, "a label patch and a version");

    vault
        .sync(platform.sink().as_ref(), &APP[..2], options())
        .await
        .unwrap();
    assert_eq!(platform.faults().writes(), 4, "unchanged: nothing written");

    let mut rotated = APP[..2].to_vec();
    rotated[1].1 = "tok_live_rotated";
    vault
        .sync(platform.sink().as_ref(), &rotated, options())
        .await
        .unwrap();
    assert_eq!(platform.faults().writes(), 5, "an update is one version");

    let report = vault
        .sync(
            platform.sink().as_ref(),
            &rotated[..1],
            SyncOptions {
                prune: true,
                ..options()
            },
        )
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 1);
    assert_eq!(platform.faults().writes(), 6, "a prune is one delete");
}

/// Google answers a throttled list or read with `429 RESOURCE_EXHAUSTED`
/// and no `Retry-After`, and an outage with `503 UNAVAILABLE`: the sink must
/// hand the engine a rate limit with no hint (so it backs off on its own)
/// and a retryable outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_and_failed_lists_and_reads_carry_no_retry_hint() {
    let platform = start().await;
    platform.edit_outside("API_TOKEN", "v").await;
    let sink = platform.sink();

    // The harness would allow a hint; Google never sends one.
    platform.faults().throttle_next(Call::List, 1);
    match sink.inventory().await {
        Err(SinkError::RateLimited { retry_after }) => assert_eq!(retry_after, None),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    platform.faults().throttle_next(Call::Read, 1);
    match sink.read("API_TOKEN").await {
        Err(SinkError::RateLimited { retry_after }) => assert_eq!(retry_after, None),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    platform.faults().fail_next(Call::List, 1);
    match sink.inventory().await {
        Err(error @ SinkError::Unavailable(_)) => {
            assert!(error.is_retryable());
            assert!(error.to_string().contains("503 UNAVAILABLE"), "{error}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    platform.faults().fail_next(Call::Read, 1);
    assert!(matches!(
        sink.read("API_TOKEN").await,
        Err(SinkError::Unavailable(_))
    ));
    assert_eq!(
        (platform.server.list_calls(), platform.server.access_calls()),
        (0, 0),
        "faulted calls are not served"
    );
    assert_eq!(
        (platform.faults().throttled(), platform.faults().failed()),
        (2, 2)
    );
    assert_eq!(sink.inventory().await.unwrap().len(), 1);
    assert_eq!(
        sink.read("API_TOKEN").await.unwrap(),
        Some(SecretValue::from_text("v"))
    );
}

/// A person disables or destroys the newest version of a secret vsync
/// wrote. `versions/latest` then answers `400 FAILED_PRECONDITION` (Google
/// does not fall back to an older version), so applications reading
/// `latest` get nothing: the sink reads it as absent and the sync adds a
/// fresh version, even though the record says the value was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_or_destroyed_latest_version_gets_a_fresh_version() {
    let platform = start().await;
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    platform.server.disable_version_outside("API_TOKEN", 1);
    platform.server.destroy_version_outside("SESSION_KEY", 1);
    assert_eq!(platform.value("API_TOKEN").await, None);
    let sink = platform.sink();
    // `latest` does not fall back to an older version: nothing to read.
    for name in ["API_TOKEN", "SESSION_KEY"] {
        assert_eq!(sink.read(name).await.unwrap(), None, "{name}");
    }

    let before = platform.faults().writes();
    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    for name in ["API_TOKEN", "SESSION_KEY"] {
        let line = report
            .secrets
            .iter()
            .find(|line| line.plan.name == name)
            .unwrap();
        assert_eq!(
            (line.plan.action, line.plan.drift, &line.outcome),
            (Action::Create, Some(Drift::Deleted), &Outcome::Applied),
            "{name}: its value is gone from `latest`"
        );
    }
    assert_eq!(report.count(Action::Unchanged), 1);
    assert_eq!(versions(&platform), [1, 2, 2], "one fresh version each");
    assert_eq!(
        platform.faults().writes() - before,
        2,
        "one version each: no second create, no relabel"
    );
    for (key, value) in &APP[1..] {
        assert_eq!(platform.value(key).await.as_deref(), Some(*value));
    }

    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::NoOp, "{report:?}");
}

/// A secret made by hand (no `managed-by` label) whose newest version is
/// disabled is planned as absent; writing it finds the secret existing and
/// still labels it before adding the version, as any adopted secret is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_secret_with_a_disabled_latest_version_is_labelled_when_written() {
    let platform = start().await;
    platform.edit_outside("API_TOKEN", "made by hand").await;
    platform
        .server
        .set_labels("API_TOKEN", &[("team", "payments")]);
    platform.server.disable_version_outside("API_TOKEN", 1);

    let report = Vault::new()
        .sync(platform.sink().as_ref(), &APP[1..2], options())
        .await
        .unwrap();
    assert_eq!(report.failures(), 0, "{report:?}");
    assert_eq!(platform.value("API_TOKEN").await.as_deref(), Some(APP[1].1));
    assert_eq!(platform.server.version_count("API_TOKEN"), 2);
    let labels = platform.server.labels("API_TOKEN");
    assert_eq!(labels.get("managed-by").map(String::as_str), Some("vsync"));
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
}

/// Credentials files, built the way Application Default Credentials build
/// the file they find (`GOOGLE_APPLICATION_CREDENTIALS` itself is read by
/// the binary's end-to-end test, which owns its process environment).
mod credentials_files {
    use super::*;

    /// `contents` as a 0600 file in a fresh directory.
    fn credentials_file(contents: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        (dir, path)
    }

    fn sink_with_file(platform: &Gcp, path: &std::path::Path) -> GcpSecretManagerSink {
        GcpSecretManagerSink::builder()
            .project(PROJECT)
            .endpoint(platform.server.endpoint())
            .credentials_file(path)
            .page_size(PAGE_SIZE)
            .build()
            .expect("valid settings")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_authorized_user_file_costs_one_token_per_sink() {
        let platform = start().await;
        let (_dir, path) = credentials_file(&platform.server.authorized_user_json());
        let sink = sink_with_file(&platform, &path);
        let vault = Vault::new();
        let report = vault.sync(&sink, APP, options()).await.unwrap();
        assert_eq!(report.failures(), 0);
        assert_eq!(platform.value("API_TOKEN").await.as_deref(), Some(APP[1].1));
        assert_eq!(
            platform.server.token_requests(),
            1,
            "one token for the listing, the creates and the versions"
        );

        let report = vault.sync(&sink, APP, options()).await.unwrap();
        assert_eq!(report.status, SyncStatus::NoOp);
        assert_eq!(
            platform.server.token_requests(),
            1,
            "the token is cached for the sink's life"
        );

        // A new sink (a new run) asks for its own token.
        sink_with_file(&platform, &path).inventory().await.unwrap();
        assert_eq!(platform.server.token_requests(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_refresh_token_is_denied_with_the_oauth_error() {
        let platform = start().await;
        let revoked = "1//revoked-refresh-token-0123456789";
        let (_dir, path) = credentials_file(&platform.server.authorized_user_json_with(revoked));
        let sink = sink_with_file(&platform, &path);
        match sink.inventory().await {
            Err(SinkError::Denied(message)) => {
                assert!(message.contains("HTTP 400 invalid_grant"), "{message}");
                assert!(message.contains(&*path.to_string_lossy()), "{message}");
                assert!(!message.contains(revoked), "no refresh token in {message}");
                assert!(
                    !message.contains(GcpSecretManagerServer::OAUTH_CLIENT_SECRET),
                    "no client secret in {message}"
                );
            }
            other => panic!("expected Denied, got {other:?}"),
        }
        assert_eq!(platform.server.token_requests(), 1);
        assert!(platform.server.names().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_token_endpoint_is_unavailable() {
        let platform = start().await;
        // Held (never listening) for the whole test: refused, and no other
        // process can start answering on it.
        let refusing = vsync_testcontainers::unreachable::RefusingAddr::bind().unwrap();
        let json = platform.server.authorized_user_json().replace(
            &platform.server.token_uri(),
            &format!("{}/token", refusing.http_url()),
        );
        let (_dir, path) = credentials_file(&json);
        match sink_with_file(&platform, &path).inventory().await {
            Err(SinkError::Unavailable(message)) => {
                assert!(
                    message.contains("could not reach the token endpoint"),
                    "{message}"
                );
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_service_account_key_signs_its_own_jwt() {
        let platform = start().await;
        let key = platform.server.service_account_key_json();
        let (_dir, path) = credentials_file(&key);
        let sink = sink_with_file(&platform, &path);
        let report = Vault::new().sync(&sink, APP, options()).await.unwrap();
        assert_eq!(report.failures(), 0);
        assert_eq!(
            platform.value("DATABASE_URL").await.as_deref(),
            Some(APP[0].1)
        );
        assert!(platform.server.signed_jwt_calls() > 0);
        assert_eq!(
            platform.server.token_requests(),
            0,
            "a service-account key needs no token exchange"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_the_platform_does_not_know_is_denied() {
        let platform = start().await;
        let key: serde_json::Value =
            serde_json::from_str(&platform.server.service_account_key_json()).unwrap();
        let mut other = key.clone();
        other["private_key_id"] = "0123456789abcdef0123456789abcdef01234567".into();
        let (_dir, path) = credentials_file(&other.to_string());
        match sink_with_file(&platform, &path).inventory().await {
            Err(SinkError::Denied(message)) => {
                assert!(message.contains("401 UNAUTHENTICATED"), "{message}");
            }
            other => panic!("expected Denied, got {other:?}"),
        }
        assert_eq!(platform.server.signed_jwt_calls(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_is_not_credentials_is_misconfigured_without_its_contents() {
        let platform = start().await;
        for (contents, expected) in [
            ("{\"type\": \"api_key\"}", "credentials `type`"),
            ("not json: hunter2", "not JSON"),
            (
                "{\"type\": \"service_account\", \"client_email\": \"a@b\", \"private_key_id\": \"k\", \"project_id\": \"p\", \"private_key\": 424242}",
                "wrong type",
            ),
            (
                "{\"type\": \"authorized_user\", \"client_id\": \"c\", \"client_secret\": \"hunter2\"}",
                "refresh_token",
            ),
            (
                "{\"type\": \"service_account\", \"client_email\": \"a@b\", \"private_key_id\": \"k\", \"project_id\": \"p\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}",
                "private key",
            ),
            (
                "{\"type\": \"service_account\", \"client_email\": \"a@b\", \"private_key_id\": \"k\", \"project_id\": \"p\", \"private_key\": \"hunter2\"}",
                "private key",
            ),
        ] {
            let (_dir, path) = credentials_file(contents);
            match sink_with_file(&platform, &path).inventory().await {
                Err(SinkError::Misconfigured(message)) => {
                    assert!(message.contains(expected), "{message}");
                    assert!(
                        !message.contains("hunter2") && !message.contains("424242"),
                        "no file contents in {message}"
                    );
                }
                other => panic!("expected Misconfigured for {contents}, got {other:?}"),
            }
        }
    }
}
