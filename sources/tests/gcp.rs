//! The shared Source suite against the GCP Secret Manager source, pointed
//! at the Secret Manager fake (Google ships no emulator), then what is
//! Secret Manager's own: the list filter, a secret whose newest version was
//! disabled or destroyed (rolled back), secrets with no usable version, and
//! refusals that name the credential to fix.
//!
//! A Secret Manager secret has no state of its own, only its versions do:
//! the harness's `disable` disables every version, so the secret is still
//! listed and the read finds no enabled version — the suite's Disabled
//! line comes from `ReadBatch::disabled`.

mod suite;

use suite::gcp::{Gcp, PROJECT};
use suite::{Harness, Vault};
use vsync_engine::import::ImportAction;
use vsync_engine::sink::SinkError;
use vsync_engine::source::Source;
use vsync_sources::gcp::PAGE_SIZE;
use vsync_testcontainers::GcpSecretManagerServer as Fake;
use vsync_testcontainers::faults::Call;

source_suite!(Gcp::start().await);

/// The names a source lists, sorted.
async fn listed(source: &dyn Source) -> Vec<String> {
    let mut names: Vec<String> = source
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|secret| secret.name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_selects_by_label_and_by_name_as_secret_manager_does() {
    let gcp = Gcp::start().await;
    gcp.secret("app_db", &["db"], &[("team", "api")]);
    gcp.secret("app_cache", &["cache"], &[("team", "web")]);
    gcp.secret("web_token", &["token"], &[("team", "api")]);
    gcp.secret("unlabelled", &["x"], &[]);

    for (filter, expected) in [
        ("labels.team=api", &["app_db", "web_token"][..]),
        ("name:app_", &["app_cache", "app_db"]),
        ("labels.team=api AND name:app_", &["app_db"]),
        (
            "name:app_ OR name:web_",
            &["app_cache", "app_db", "web_token"],
        ),
        ("labels.team:*", &["app_cache", "app_db", "web_token"]),
        ("labels.team=ops", &[]),
    ] {
        assert_eq!(listed(&gcp.filtered(filter)).await, expected, "{filter}");
    }

    // The filter scopes the import and its record.
    let source = gcp.filtered("labels.team=api");
    assert_eq!(
        source.origin(),
        format!(
            "gcp-secret-manager:project={PROJECT},endpoint={},filter=labels.team=api",
            gcp.fake.endpoint()
        )
    );
    let mut vault = Vault::new();
    let plan = vault.import(&source).await;
    assert_eq!(plan.count(ImportAction::Add), 2, "{:?}", plan.lines);
    assert_eq!(vault.entries["web_token"].as_text(), Some("token"));

    // A filter Google cannot parse is its 400, refused, naming the filter.
    let error = gcp.filtered("labels.team").list().await.unwrap_err();
    let SinkError::Rejected(message) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("400 INVALID_ARGUMENT"), "{message}");
    assert!(message.contains("filter labels.team"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_listing_pages_with_its_filter() {
    let gcp = Gcp::start().await;
    for i in 0..300 {
        let (name, team) = if i % 3 == 0 {
            (format!("OTHER_{i:03}"), "web")
        } else {
            (format!("BULK_{i:03}"), "api")
        };
        gcp.secret(&name, &["v"], &[("team", team)]);
    }
    let lists = gcp.fake.faults().calls(Call::List);
    let names = listed(&gcp.filtered("labels.team=api")).await;
    assert_eq!(names.len(), 200);
    assert!(names.iter().all(|name| name.starts_with("BULK_")));
    assert_eq!(gcp.fake.faults().calls(Call::List) - lists, 1);
    let names = listed(&gcp.filtered("name:_")).await;
    assert_eq!(names.len(), 300);
    assert_eq!(
        gcp.fake.faults().calls(Call::List) - lists,
        3,
        "300 secrets are two pages of {PAGE_SIZE}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_secret_imports_its_newest_enabled_version() {
    let gcp = Gcp::start().await;
    // Version 2 turned out bad and was disabled: applications pin 1.
    gcp.secret("DISABLED_LATEST", &["good-1", "bad-2"], &[]);
    gcp.fake.disable_version_outside("DISABLED_LATEST", 2);
    // Destroyed, then disabled: 1 is the only value left to use.
    gcp.secret("DESTROYED_LATEST", &["good-1", "off-2", "gone-3"], &[]);
    gcp.fake.disable_version_outside("DESTROYED_LATEST", 2);
    gcp.fake.destroy_version_outside("DESTROYED_LATEST", 3);
    gcp.secret("PLAIN", &["plain"], &[]);

    let faults = gcp.fake.faults();
    let (lists, reads) = (faults.calls(Call::List), faults.calls(Call::Read));
    let mut vault = Vault::new();
    let plan = vault.import(gcp.source().as_ref()).await;
    assert_eq!(plan.count(ImportAction::Add), 3, "{:?}", plan.lines);
    assert_eq!(vault.entries["DISABLED_LATEST"].as_text(), Some("good-1"));
    assert_eq!(vault.entries["DESTROYED_LATEST"].as_text(), Some("good-1"));
    assert_eq!(vault.entries["PLAIN"].as_text(), Some("plain"));
    // One listing page, then per rolled-back secret a refused `latest`, a
    // one-version listing and an access by number; one access for PLAIN.
    assert_eq!(faults.calls(Call::List) - lists, 1 + 2);
    assert_eq!(faults.calls(Call::Read) - reads, 2 * 2 + 1);

    // Re-enabling is not needed for a new value: a new version wins again.
    gcp.fake.add_version_outside("DISABLED_LATEST", b"fixed-3");
    let plan = vault.import(gcp.source().as_ref()).await;
    assert_eq!(plan.count(ImportAction::Change), 1, "{:?}", plan.lines);
    assert_eq!(vault.entries["DISABLED_LATEST"].as_text(), Some("fixed-3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_without_a_usable_version_are_reported_and_deleted_ones_left_out() {
    let gcp = Gcp::start().await;
    gcp.secret("ALL_OFF", &["a", "b"], &[]);
    gcp.fake.disable_version_outside("ALL_OFF", 1);
    gcp.fake.destroy_version_outside("ALL_OFF", 2);
    gcp.fake.create_outside("NO_VERSION_YET");
    gcp.secret("KEPT", &["kept"], &[]);

    let mut vault = Vault::new();
    let plan = vault.import(gcp.source().as_ref()).await;
    let mut disabled: Vec<&str> = plan
        .lines
        .iter()
        .filter(|line| line.action == ImportAction::Disabled)
        .map(|line| line.key.as_str())
        .collect();
    disabled.sort_unstable();
    assert_eq!(disabled, ["ALL_OFF", "NO_VERSION_YET"], "{:?}", plan.lines);
    assert_eq!(vault.entries.keys().collect::<Vec<_>>(), ["KEPT"]);

    // Deleted between the listing and the read: left out, not an error.
    let source = gcp.source();
    let secrets = source.list().await.unwrap();
    gcp.fake.delete_outside("KEPT");
    let kept = secrets.iter().find(|s| s.name == "KEPT").unwrap();
    let batch = source.read(&[kept]).await.unwrap();
    assert!(batch.values.is_empty() && batch.disabled.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_credential_to_fix_and_a_read_only_role_suffices() {
    let gcp = Gcp::start().await;
    gcp.secret("GUARDED", &["guarded-value-xyzzy"], &[]);

    let error = gcp
        .source_with_bad_credentials()
        .unwrap()
        .list()
        .await
        .unwrap_err();
    let SinkError::Denied(message) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("401 UNAUTHENTICATED"), "{message}");
    assert!(message.contains("GOOGLE_OAUTH_ACCESS_TOKEN"), "{message}");
    assert!(
        message.contains("gcloud auth application-default login"),
        "{message}"
    );

    // Google answers 403 for a project the caller cannot see.
    let elsewhere = gcp.source_as("someone-elses", Fake::ADMIN_TOKEN, None);
    let error = elsewhere.list().await.unwrap_err();
    let SinkError::Denied(message) = &error else {
        panic!("{error:?}");
    };
    assert!(message.contains("403 PERMISSION_DENIED"), "{message}");
    assert!(
        message.contains("GOOGLE_OAUTH_ACCESS_TOKEN") && message.contains("someone-elses"),
        "{message}"
    );

    // Viewer and Secret Accessor are all an import needs.
    let reader = gcp.source_as(PROJECT, Fake::READ_ONLY_TOKEN, None);
    let mut vault = Vault::new();
    vault.import(&reader).await;
    assert_eq!(
        vault.entries["GUARDED"].as_text(),
        Some("guarded-value-xyzzy")
    );
}
