//! The GitHub Actions sink against the harness's GitHub fake (which opens
//! every sealed box with the target's secret key): the shared sink suite
//! for environment (upstream's default), repository and organisation
//! targets, then what the suite cannot see — one public-key fetch per
//! sync, the three target paths, organisation visibility kept on update,
//! names refused before any write, and GitHub's statuses mapped for the
//! engine's retry policy.

#![cfg(feature = "github")]

#[macro_use]
mod suite;

use vsync_testcontainers::faults::Faults;

use std::time::Duration;

use suite::{Platform, Vault, options};
use vsync_engine::sink::{Change, SecretValue, Sink, SinkError};
use vsync_engine::sync::{Action, RetryPolicy, SyncError, SyncOptions, SyncStatus};
use vsync_sinks::github::{GithubSink, GithubSinkBuilder, Visibility};
use vsync_testcontainers::{GithubFake, GithubScope, InjectedFailure};

/// A small page, so the suite's 100- and 120-secret cases take several.
const PAGE_SIZE: u8 = 25;

struct Github {
    fake: GithubFake,
    scope: GithubScope,
}

impl Github {
    async fn start(scope: GithubScope) -> Self {
        let fake = GithubFake::start().await.expect("the GitHub fake starts");
        Github { fake, scope }
    }

    fn builder(&self) -> GithubSinkBuilder {
        routed(
            GithubSink::builder()
                .base_url(self.fake.endpoint())
                .token(GithubFake::TOKEN)
                .page_size(PAGE_SIZE),
            &self.scope,
        )
    }

    fn github_sink(&self) -> GithubSink {
        self.builder().build().expect("valid settings")
    }
}

fn routed(builder: GithubSinkBuilder, scope: &GithubScope) -> GithubSinkBuilder {
    match scope {
        GithubScope::Repository(repo) => builder.repository(repo.as_str()),
        GithubScope::Environment(repo, env) => {
            builder.repository(repo.as_str()).environment(env.as_str())
        }
        GithubScope::Organization(org) => builder.organization(org.as_str()),
    }
}

fn environment() -> GithubScope {
    GithubScope::Environment("acme/api".into(), "prod".into())
}

fn repository() -> GithubScope {
    GithubScope::Repository("acme/api".into())
}

fn organization() -> GithubScope {
    GithubScope::Organization("acme".into())
}

#[async_trait::async_trait]
impl Platform for Github {
    fn sink(&self) -> Box<dyn Sink> {
        Box::new(self.github_sink())
    }

    async fn value(&self, name: &str) -> Option<String> {
        self.fake
            .value(&self.scope, name)
            .map(|value| value.as_str().to_owned())
    }

    async fn names(&self) -> Vec<String> {
        self.fake.names(&self.scope)
    }

    async fn edit_outside(&self, name: &str, value: &str) {
        // A person's edit comes at least a second after vsync's write; the
        // same-second case is `a_same_second_edit_is_the_stated_blind_spot`.
        self.fake.advance_clock(1);
        self.fake.edit_outside(&self.scope, name, value);
    }

    fn faults(&self) -> &Faults {
        self.fake.faults()
    }

    fn colliding_keys(&self) -> Option<(&'static str, &'static str)> {
        // GitHub folds case: both are DB_PASS.
        Some(("db_pass", "DB_PASS"))
    }

    fn rejected_key(&self) -> Option<&'static str> {
        Some("db-pass")
    }
}

// Environment secrets: what `vsync sync <env> gh` writes, as upstream.
sink_suite!(Github::start(environment()).await);

mod repository_target {
    use super::*;

    sink_suite!(Github::start(repository()).await);
}

mod organization_target {
    use super::*;

    sink_suite!(Github::start(organization()).await);
}

fn secrets(count: usize) -> (Vec<String>, Vec<String>) {
    let keys = (0..count).map(|i| format!("KEY_{i:03}")).collect();
    let values = (0..count).map(|i| format!("value {i}\nline two")).collect();
    (keys, values)
}

fn pairs<'a>(keys: &'a [String], values: &'a [String]) -> Vec<(&'a str, &'a str)> {
    keys.iter()
        .map(String::as_str)
        .zip(values.iter().map(String::as_str))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_key_is_fetched_once_per_sync() {
    let github = Github::start(environment()).await;
    let (keys, values) = secrets(60);
    let vault = Vault::new();
    let sink = github.github_sink();
    let report = vault
        .sync(&sink, &pairs(&keys, &values), options())
        .await
        .unwrap();
    assert_eq!(report.count(Action::Create), 60);
    let counts = github.fake.counts();
    assert_eq!(
        counts.public_key, 1,
        "one key fetch for 60 writes: {counts:?}"
    );
    assert_eq!(counts.puts, 60);
    assert_eq!(counts.unversioned, 0, "every request names the API version");
    // One (empty) page before applying; 60 secrets at 25 a page after.
    assert_eq!(counts.lists, 1 + 3, "{counts:?}");
}

/// GitHub keeps `updated_at` to the second, so an edit in the second of
/// vsync's own write leaves the revision where vsync recorded it: the plan
/// cannot see it, and says so rather than vouching silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_second_edit_is_the_stated_blind_spot() {
    let github = Github::start(repository()).await;
    github.fake.freeze_clock();
    let vault = Vault::new();
    let desired = [("API_TOKEN", "tok_live_0123456789"), ("SHORT", "x")];
    vault
        .sync(&github.github_sink(), &desired, options())
        .await
        .unwrap();
    github
        .fake
        .edit_outside(&github.scope, "API_TOKEN", "someone else's");

    let dry_run = SyncOptions {
        dry_run: true,
        ..options()
    };
    let plan = vault
        .sync(&github.github_sink(), &desired, dry_run.clone())
        .await
        .unwrap();
    assert_eq!(plan.count(Action::Unchanged), 2, "the edit is invisible");
    assert!(
        plan.warnings
            .iter()
            .any(|warning| warning.contains("same second")),
        "the plan states the limit: {:?}",
        plan.warnings
    );

    // A second later, the same kind of edit shows.
    github.fake.advance_clock(1);
    github.fake.edit_outside(&github.scope, "SHORT", "y");
    let plan = vault
        .sync(&github.github_sink(), &desired, dry_run)
        .await
        .unwrap();
    assert_eq!(plan.count(Action::Update), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_holds_the_plaintext_it_opened() {
    let github = Github::start(repository()).await;
    let sink = github.github_sink();
    let value = SecretValue::from_text("pässwört\n✓ with a newline");
    let results = sink
        .apply(&[Change::Put {
            name: "SEALED",
            value: &value,
            exists: false,
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(
        github
            .fake
            .value(&repository(), "SEALED")
            .as_deref()
            .map(String::as_str),
        Some("pässwört\n✓ with a newline")
    );

    // The sink keeps the key it fetched; once GitHub rotates it, a box
    // sealed for the old key is refused and nothing changes.
    github.fake.rotate_key(&repository());
    let other = SecretValue::from_text("after rotation");
    let results = sink
        .apply(&[Change::Put {
            name: "SEALED",
            value: &other,
            exists: true,
        }])
        .await;
    match &results[0] {
        Err(SinkError::Rejected(message)) => {
            assert!(message.contains("422"), "{message}");
            assert!(!message.contains("after rotation"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        github
            .fake
            .value(&repository(), "SEALED")
            .as_deref()
            .map(String::as_str),
        Some("pässwört\n✓ with a newline")
    );
    // A new sink (the next sync) fetches the new key and succeeds.
    let results = github
        .github_sink()
        .apply(&[Change::Put {
            name: "SEALED",
            value: &other,
            exists: true,
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(github.fake.counts().public_key, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_repository_and_organization_are_separate_targets() {
    let github = Github::start(environment()).await;
    let sinks = [environment(), repository(), organization()].map(|scope| {
        routed(
            GithubSink::builder()
                .base_url(github.fake.endpoint())
                .token(GithubFake::TOKEN),
            &scope,
        )
        .build()
        .unwrap()
    });
    let targets: Vec<String> = sinks.iter().map(|sink| sink.target()).collect();
    let host = github.fake.endpoint().replace("http://", "");
    assert_eq!(
        targets,
        [
            format!("github-actions:host={host},repo=acme/api,environment=prod"),
            format!("github-actions:host={host},repo=acme/api"),
            format!("github-actions:host={host},org=acme"),
        ]
    );
    for (sink, key) in sinks.iter().zip(["in_env", "in_repo", "in_org"]) {
        let vault = Vault::new();
        let report = vault.sync(sink, &[(key, "v")], options()).await.unwrap();
        assert_eq!(report.status, SyncStatus::Applied);
    }
    assert_eq!(github.fake.names(&environment()), ["IN_ENV"]);
    assert_eq!(github.fake.names(&repository()), ["IN_REPO"]);
    assert_eq!(github.fake.names(&organization()), ["IN_ORG"]);
    assert_eq!(
        github
            .fake
            .names(&GithubScope::Environment("acme/api".into(), "dev".into())),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_names_are_escaped_in_paths() {
    let github = Github::start(environment()).await;
    github.fake.add_environment("acme/api", "prod eu/1");
    let scope = GithubScope::Environment("acme/api".into(), "prod eu/1".into());
    let sink = routed(
        GithubSink::builder()
            .base_url(github.fake.endpoint())
            .token(GithubFake::TOKEN),
        &scope,
    )
    .build()
    .unwrap();
    let vault = Vault::new();
    vault
        .sync(&sink, &[("TOKEN", "t")], options())
        .await
        .unwrap();
    assert_eq!(github.fake.names(&scope), ["TOKEN"]);
    assert!(github.fake.names(&environment()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enterprise_base_path_is_kept() {
    let github = Github::start(repository()).await;
    let sink = GithubSink::builder()
        .base_url(format!("{}/api/v3/", github.fake.endpoint()))
        .token(GithubFake::TOKEN)
        .repository("acme/api")
        .build()
        .unwrap();
    let vault = Vault::new();
    vault
        .sync(&sink, &[("TOKEN", "t")], options())
        .await
        .unwrap();
    assert_eq!(github.fake.names(&repository()), ["TOKEN"]);
    assert_eq!(
        github.fake.counts().enterprise_paths,
        github.fake.counts().total()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_secret_keeps_its_visibility_and_repositories_on_update() {
    let github = Github::start(organization()).await;
    let api = github.fake.repository_id("acme/api").unwrap();
    let web = github.fake.repository_id("acme/web").unwrap();
    let vault = Vault::new();
    vault
        .sync(
            github.sink().as_ref(),
            &[("SHARED", "one"), ("PLAIN", "one")],
            options(),
        )
        .await
        .unwrap();
    assert_eq!(
        github.fake.visibility("acme", "PLAIN"),
        Some(("private".to_owned(), vec![])),
        "new secrets get the default visibility"
    );
    // Someone limits SHARED to two repositories in the settings page.
    github
        .fake
        .select_repositories("acme", "SHARED", &[api, web]);

    let report = vault
        .sync(
            github.sink().as_ref(),
            &[("SHARED", "two"), ("PLAIN", "two")],
            options(),
        )
        .await
        .unwrap();
    assert_eq!(report.count(Action::Update), 2);
    assert_eq!(
        github.fake.visibility("acme", "SHARED"),
        Some(("selected".to_owned(), vec![api, web])),
        "the repository list survives the update"
    );
    assert_eq!(
        github.fake.visibility("acme", "PLAIN"),
        Some(("private".to_owned(), vec![]))
    );
    assert_eq!(
        github
            .fake
            .value(&organization(), "SHARED")
            .as_deref()
            .map(String::as_str),
        Some("two")
    );

    // A configured visibility applies to the secrets vsync creates.
    let selected = github
        .builder()
        .visibility(Visibility::Selected(vec![web]))
        .build()
        .unwrap();
    vault
        .sync(
            &selected,
            &[("SHARED", "two"), ("PLAIN", "two"), ("WEB_ONLY", "w")],
            options(),
        )
        .await
        .unwrap();
    assert_eq!(
        github.fake.visibility("acme", "WEB_ONLY"),
        Some(("selected".to_owned(), vec![web]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_and_invalid_names_are_refused_before_any_request_that_writes() {
    let github = Github::start(environment()).await;
    let cases: [&[(&str, &str)]; 3] = [
        &[("FIRST_OK", "1"), ("GITHUB_TOKEN", "value")],
        &[("FIRST_OK", "1"), ("db-pass", "one"), ("DB_PASS", "two")],
        &[("FIRST_OK", "1"), ("2FA_SEED", "value")],
    ];
    for desired in cases {
        let vault = Vault::new();
        match vault.sync(github.sink().as_ref(), desired, options()).await {
            Err(error @ SyncError::Preflight(_)) => {
                let message = error.to_string();
                let refused = desired[1].0;
                assert!(message.contains(refused), "{message}");
                assert!(
                    !message.contains("value") && !message.contains("one"),
                    "{message}"
                );
            }
            other => panic!("expected a preflight refusal, got {other:?}"),
        }
    }
    let counts = github.fake.counts();
    assert_eq!((counts.puts, counts.public_key), (0, 0), "{counts:?}");
    assert!(github.fake.names(&environment()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_refused_are_denied() {
    let github = Github::start(repository()).await;
    let wrong = routed(
        GithubSink::builder()
            .base_url(github.fake.endpoint())
            .token("ghp_not_the_right_one"),
        &repository(),
    )
    .build()
    .unwrap();
    match wrong.inventory().await {
        Err(SinkError::Denied(message)) => {
            assert!(
                message.contains("401") && message.contains("Bad credentials"),
                "{message}"
            );
            assert!(!message.contains("ghp_not_the_right_one"), "{message}");
        }
        other => panic!("expected Denied, got {other:?}"),
    }

    let read_only = routed(
        GithubSink::builder()
            .base_url(github.fake.endpoint())
            .token(GithubFake::READ_ONLY_TOKEN),
        &repository(),
    )
    .build()
    .unwrap();
    let value = SecretValue::from_text("v");
    let results = read_only
        .apply(&[Change::Put {
            name: "X",
            value: &value,
            exists: false,
        }])
        .await;
    assert!(
        matches!(&results[0], Err(SinkError::Denied(message)) if message.contains("403")),
        "{:?}",
        results[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_rate_limited_not_denied() {
    let github = Github::start(repository()).await;
    let sink = github.github_sink();
    let value = SecretValue::from_text("v");
    let put = [Change::Put {
        name: "X",
        value: &value,
        exists: false,
    }];

    github
        .fake
        .fail_next_requests(InjectedFailure::SecondaryRateLimit, 1);
    let results = sink.apply(&put).await;
    assert!(
        matches!(results[0], Err(SinkError::RateLimited { retry_after: Some(wait) }) if wait == Duration::from_secs(60)),
        "a secondary limit without Retry-After waits a minute, as GitHub advises: {:?}",
        results[0]
    );

    github
        .fake
        .fail_next_requests(InjectedFailure::PrimaryRateLimit, 1);
    match sink.inventory().await {
        Err(SinkError::RateLimited {
            retry_after: Some(wait),
        }) => assert!(
            (20..=30).contains(&wait.as_secs()),
            "until the reset: {wait:?}"
        ),
        other => panic!("expected RateLimited, got {other:?}"),
    }

    github
        .fake
        .fail_next_requests(InjectedFailure::ServerError, 1);
    assert!(matches!(
        sink.inventory().await,
        Err(SinkError::Unavailable(message)) if message.contains("502")
    ));

    // Through the engine: a secondary limit is waited out (capped by the
    // retry policy) and the sync completes.
    github
        .fake
        .fail_next_requests(InjectedFailure::SecondaryRateLimit, 2);
    let vault = Vault::new();
    let quick = SyncOptions {
        retry: RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        ..options()
    };
    let report = vault
        .sync(&sink, &[("A", "1"), ("B", "2")], quick)
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(github.fake.names(&repository()), ["A", "B"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_repository_or_environment_is_not_found() {
    let github = Github::start(repository()).await;
    for scope in [
        GithubScope::Repository("acme/nope".into()),
        GithubScope::Environment("acme/api".into(), "staging".into()),
        GithubScope::Organization("nobody".into()),
    ] {
        let sink = routed(
            GithubSink::builder()
                .base_url(github.fake.endpoint())
                .token(GithubFake::TOKEN),
            &scope,
        )
        .build()
        .unwrap();
        let vault = Vault::new();
        match vault.sync(&sink, &[("A", "1")], options()).await {
            Err(SyncError::Inventory(SinkError::NotFound(message))) => {
                assert!(message.contains("404"), "{message}");
            }
            other => panic!("{scope:?}: expected NotFound, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_name_already_gone_succeeds() {
    let github = Github::start(repository()).await;
    let results = github
        .github_sink()
        .apply(&[Change::Delete {
            name: "NEVER_THERE",
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(github.fake.counts().deletes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_is_refused_and_capabilities_are_githubs() {
    let github = Github::start(environment()).await;
    let sink = github.github_sink();
    assert!(matches!(
        sink.read("ANY").await,
        Err(SinkError::Rejected(_))
    ));
    let caps = sink.capabilities();
    assert!(!caps.readable && caps.text_only && caps.empty_values && !caps.tags);
    assert!(caps.names.case_insensitive);
    assert_eq!(caps.max_value_bytes, 48 * 1024);
    assert_eq!(caps.max_secrets, Some(100));
    // 80 a minute and 500 an hour: 500 writes fit six minutes, one more
    // waits for the hour.
    assert_eq!(caps.rate.minimum_duration(500), Duration::from_secs(6 * 60));
    assert_eq!(caps.rate.minimum_duration(501), Duration::from_secs(3600));
    assert_eq!(sink.map_name("db_pass"), "DB_PASS");
    let org = Github::start(organization()).await;
    assert_eq!(org.github_sink().capabilities().max_secrets, Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_value_is_stored() {
    let github = Github::start(repository()).await;
    let vault = Vault::new();
    let report = vault
        .sync(github.sink().as_ref(), &[("EMPTY", "")], options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied);
    assert_eq!(
        github
            .fake
            .value(&repository(), "EMPTY")
            .as_deref()
            .map(String::as_str),
        Some("")
    );
}

#[tokio::test]
async fn settings_are_checked_before_any_request() {
    let misconfigured = |builder: GithubSinkBuilder| match builder.build() {
        Err(SinkError::Misconfigured(message)) => message,
        other => panic!("expected Misconfigured, got {other:?}"),
    };
    let base = || GithubSink::builder().token("ghp_x");
    assert!(misconfigured(GithubSink::builder().repository("a/b")).contains("token"));
    assert!(misconfigured(base().token("").repository("a/b")).contains("token"));
    assert!(misconfigured(base()).contains("no target"));
    assert!(misconfigured(base().repository("a/b").organization("a")).contains("not both"));
    assert!(misconfigured(base().environment("prod")).contains("repository"));
    assert!(misconfigured(base().repository("just-a-name")).contains("owner/name"));
    assert!(
        misconfigured(base().repository("a/b").visibility(Visibility::All))
            .contains("organisation")
    );
    assert!(misconfigured(base().repository("a/b").page_size(0)).contains("1 to 100"));
    assert!(misconfigured(base().repository("a/b").page_size(101)).contains("1 to 100"));
    assert!(misconfigured(base().repository("a/b").base_url("ftp://x")).contains("http"));

    let sink = base()
        .repository("Acme/API")
        .environment("Prod")
        .build()
        .unwrap();
    assert_eq!(
        sink.target(),
        "github-actions:repo=acme/api,environment=prod"
    );
    let sink = base()
        .organization("acme")
        .base_url("https://ghe.example.com/api/v3")
        .build()
        .unwrap();
    assert_eq!(
        sink.target(),
        "github-actions:host=ghe.example.com,org=acme"
    );
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    match GithubSink::builder()
        .token("ghp_x")
        .repository("a/b")
        .build()
    {
        Err(SinkError::Misconfigured(message)) => assert!(message.contains("tokio"), "{message}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}
