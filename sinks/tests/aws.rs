//! The AWS Secrets Manager sink against a real moto server (IAM
//! authentication on) behind the harness's fault-injecting front: the
//! shared suite, then what only AWS has — restore of a name scheduled for
//! deletion, recovery window vs force delete, the `managed-by` tag, the
//! prefix filter, ARN-like names, binary values, the error mapping.

#![cfg(feature = "aws")]

#[macro_use]
mod suite;

use vsync_testcontainers::faults::Faults;

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use suite::{Platform, Vault, options};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{Change, SecretValue, Sink, SinkError};
use vsync_engine::sync::{Action, Outcome, SyncError, SyncOptions, SyncStatus};
use vsync_sinks::aws::{Access, AwsSecretsManagerSink, DeletePolicy};
use vsync_testcontainers::MotoServer;

/// Every name the suite writes lives under it, so the prefix filter is in
/// play in every case.
const PREFIX: &str = "vsync-suite/";
/// Small pages, so 120 secrets take several `ListSecrets` calls.
const PAGE: i32 = 25;

struct Aws {
    server: MotoServer,
    /// Talks to moto directly: the "console", unseen by the front's
    /// counters and faults.
    console: Client,
}

async fn start() -> Aws {
    let server = MotoServer::start().await.expect("moto starts");
    let console = client(
        &server.direct_endpoint(),
        server.access_key_id(),
        server.secret_access_key(),
    );
    Aws { server, console }
}

fn client(endpoint: &str, access_key_id: &str, secret_access_key: &str) -> Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "test",
        ))
        .build();
    Client::from_conf(config)
}

impl Aws {
    fn sink_with(&self, policy: DeletePolicy) -> AwsSecretsManagerSink {
        AwsSecretsManagerSink::builder()
            .access(
                Access::region(self.server.region())
                    .endpoint(self.server.endpoint())
                    .credentials(self.server.access_key_id(), self.server.secret_access_key()),
            )
            .prefix(PREFIX)
            .delete_policy(policy)
            .list_page_size(PAGE)
            .build()
            .expect("valid settings")
    }

    /// The secret's state as `DescribeSecret` shows it: `None` when gone,
    /// else whether it is scheduled for deletion and its tags.
    async fn describe(&self, name: &str) -> Option<(Option<f64>, Vec<(String, String)>)> {
        match self.console.describe_secret().secret_id(name).send().await {
            Ok(out) => Some((
                out.deleted_date().map(|date| date.as_secs_f64()),
                out.tags()
                    .iter()
                    .map(|tag| {
                        (
                            tag.key().unwrap_or_default().to_owned(),
                            tag.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            )),
            Err(e) if e.code() == Some("ResourceNotFoundException") => None,
            Err(e) => panic!("DescribeSecret {name}: {e:?}"),
        }
    }

    /// Creates `name` by hand, without vsync's tag.
    async fn create_by_hand(&self, name: &str, value: &str) {
        self.console
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .expect("created by hand");
    }
}

#[async_trait::async_trait]
impl Platform for Aws {
    fn sink(&self) -> Box<dyn Sink> {
        Box::new(self.sink_with(DeletePolicy::default()))
    }

    async fn value(&self, name: &str) -> Option<String> {
        match self.console.get_secret_value().secret_id(name).send().await {
            Ok(out) => Some(out.secret_string().expect("a text value").to_owned()),
            // Absent, or scheduled for deletion: nothing an application can read.
            Err(e)
                if matches!(
                    e.code(),
                    Some("ResourceNotFoundException" | "InvalidRequestException")
                ) =>
            {
                None
            }
            Err(e) => panic!("GetSecretValue {name}: {e:?}"),
        }
    }

    async fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .console
                .list_secrets()
                .filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(PREFIX)
                        .build(),
                )
                .set_next_token(token)
                .send()
                .await
                .expect("ListSecrets");
            names.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_owned)),
            );
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return names;
            }
        }
    }

    async fn edit_outside(&self, name: &str, value: &str) {
        match self
            .console
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                self.create_by_hand(name, value).await;
            }
            Err(e) => panic!("PutSecretValue {name}: {e:?}"),
        }
    }

    fn faults(&self) -> &Faults {
        self.server.faults()
    }

    fn colliding_keys(&self) -> Option<(&'static str, &'static str)> {
        // Names are case-sensitive and the key is used as is: two vault
        // keys never land on one name.
        None
    }

    fn rejected_key(&self) -> Option<&'static str> {
        Some("DB PASSWORD")
    }
}

sink_suite!(start().await);

const BASE: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://app:s3cret@db.internal:5432/app"),
    ("API_TOKEN", "tok_live_0123456789"),
    ("SHORT", "x"),
];

fn pruning(policy_options: SyncOptions) -> SyncOptions {
    SyncOptions {
        prune: true,
        ..policy_options
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn line<'a>(
    report: &'a vsync_engine::sync::SyncReport,
    name: &str,
) -> &'a vsync_engine::sync::SecretReport {
    report
        .secrets
        .iter()
        .find(|line| line.plan.name == name)
        .unwrap_or_else(|| panic!("{name} is in the report: {report:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_scheduled_for_deletion_is_restored_on_resync() {
    let aws = start().await;
    let vault = Vault::new();
    let sink = aws.sink();
    vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    let pruned = sink.map_name("SHORT");

    let report = vault
        .sync(sink.as_ref(), &BASE[..2], pruning(options()))
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 1);
    let (deleted, _) = aws.describe(&pruned).await.expect("still recoverable");
    assert!(deleted.is_some(), "scheduled for deletion, not purged");
    assert!(
        !aws.names().await.contains(&pruned),
        "not listed while scheduled"
    );

    // The vault wants the name back: AWS refuses CreateSecret for a name
    // scheduled for deletion, so the sink restores it instead of failing.
    let before = aws.faults().writes();
    let report = vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(
        (
            line(&report, &pruned).plan.action,
            &line(&report, &pruned).outcome
        ),
        (Action::Create, &Outcome::Applied)
    );
    assert_eq!(report.count(Action::Unchanged), 2);
    // RestoreSecret, TagResource, PutSecretValue (the create AWS refused
    // wrote nothing).
    assert_eq!(aws.faults().writes(), before + 3);
    let (deleted, tags) = aws.describe(&pruned).await.expect("restored");
    assert_eq!(deleted, None, "no longer scheduled for deletion");
    assert!(
        tags.contains(&("managed-by".into(), "vsync".into())),
        "{tags:?}"
    );
    assert_eq!(aws.value(&pruned).await.as_deref(), Some("x"));

    let again = vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    assert_eq!(again.status, SyncStatus::NoOp, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_purged_while_being_restored_is_created() {
    let aws = start().await;
    let vault = Vault::new();
    let sink = aws.sink();
    vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    vault
        .sync(sink.as_ref(), &BASE[..2], pruning(options()))
        .await
        .unwrap();
    let pruned = sink.map_name("SHORT");
    // Purged for good, while AWS may still call the name scheduled for
    // deletion for a moment: the restore finds nothing, so the sink creates.
    aws.console
        .delete_secret()
        .secret_id(&pruned)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let report = vault.sync(sink.as_ref(), BASE, options()).await.unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(aws.value(&pruned).await.as_deref(), Some("x"));
    let (deleted, tags) = aws.describe(&pruned).await.expect("created");
    assert_eq!(deleted, None);
    assert!(
        tags.contains(&("managed-by".into(), "vsync".into())),
        "{tags:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_honours_the_recovery_window_or_deletes_at_once() {
    let aws = start().await;
    let vault = Vault::new();
    let week = aws.sink_with(DeletePolicy::RecoveryWindow { days: 7 });
    vault.sync(&week, BASE, options()).await.unwrap();
    vault
        .sync(&week, &BASE[..2], pruning(options()))
        .await
        .unwrap();
    let (deleted, _) = aws
        .describe(&week.map_name("SHORT"))
        .await
        .expect("recoverable for the window");
    // moto records the purge date (deletion time + window) as DeletedDate.
    let days = (deleted.expect("scheduled") - now()) / 86_400.0;
    assert!(
        (6.9..7.1).contains(&days),
        "a 7-day window, got {days} days"
    );

    let force = aws.sink_with(DeletePolicy::ForceWithoutRecovery);
    let report = vault
        .sync(&force, &BASE[..1], pruning(options()))
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 1, "{report:?}");
    assert_eq!(
        aws.describe(&force.map_name("API_TOKEN")).await,
        None,
        "deleted without recovery"
    );
    // With the name gone for good, writing it again is a plain create.
    let report = vault.sync(&force, &BASE[..2], options()).await.unwrap();
    assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
    assert_eq!(
        aws.value(&force.map_name("API_TOKEN")).await.as_deref(),
        Some("tok_live_0123456789")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_without_the_tag_are_never_pruned() {
    let aws = start().await;
    let vault = Vault::new();
    let sink = aws.sink();
    let handmade = sink.map_name("HANDMADE");
    aws.create_by_hand(&handmade, "made in the console").await;
    vault.sync(sink.as_ref(), BASE, options()).await.unwrap();

    let listed = sink.inventory().await.unwrap();
    let managed = |name: &str| listed.iter().find(|s| s.name == name).unwrap().managed;
    assert_eq!(
        managed(&sink.map_name("SHORT")),
        Some(true),
        "vsync tags what it creates"
    );
    assert_eq!(managed(&handmade), Some(false));

    // Someone recreates SHORT by hand: vsync's record still names it, the
    // platform says it is not vsync's.
    let recreated = sink.map_name("SHORT");
    aws.console
        .untag_resource()
        .secret_id(&recreated)
        .tag_keys("managed-by")
        .send()
        .await
        .unwrap();

    let before = aws.faults().writes();
    let report = vault
        .sync(sink.as_ref(), &BASE[..2], pruning(options()))
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 0, "{report:?}");
    let stale = line(&report, &recreated);
    assert_eq!(stale.plan.action, Action::Stale);
    assert!(
        stale
            .plan
            .ownership
            .as_deref()
            .unwrap_or_default()
            .contains("managed-by")
    );
    assert!(
        report.secrets.iter().all(|line| line.plan.name != handmade),
        "never vsync's"
    );
    assert_eq!(aws.faults().writes(), before, "nothing deleted");
    assert_eq!(aws.value(&recreated).await.as_deref(), Some("x"));
    assert_eq!(
        aws.value(&handmade).await.as_deref(),
        Some("made in the console")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_names_under_the_prefix_are_seen() {
    let aws = start().await;
    let sink = aws.sink();
    for outside in [
        "other-app/DATABASE_URL",
        "vsync-suite-other/API_TOKEN",
        "VSYNC-SUITE/SHORT",
        "vsync-suite",
    ] {
        aws.create_by_hand(outside, "not ours").await;
    }
    let vault = Vault::new();
    let report = vault
        .sync(sink.as_ref(), BASE, pruning(options()))
        .await
        .unwrap();
    assert_eq!(report.count(Action::Create), BASE.len(), "{report:?}");
    assert_eq!(
        report.secrets.len(),
        BASE.len(),
        "nothing outside the prefix planned"
    );

    let mut listed: Vec<String> = sink
        .inventory()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    listed.sort();
    let mut expected: Vec<String> = BASE
        .iter()
        .map(|(key, _)| format!("{PREFIX}{key}"))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(
        aws.value("VSYNC-SUITE/SHORT").await.as_deref(),
        Some("not ours")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arn_like_name_is_refused_before_any_write() {
    let aws = start().await;
    let sink = aws.sink();
    let vault = Vault::new();
    match vault
        .sync(
            sink.as_ref(),
            &[("FIRST_OK", "1"), ("deploy-abc123", "value")],
            options(),
        )
        .await
    {
        Err(SyncError::Preflight(refusals)) => {
            assert_eq!(refusals.len(), 1, "{refusals:?}");
            assert_eq!(refusals[0].key.as_deref(), Some("deploy-abc123"));
            assert!(refusals[0].problem.contains("ARN"), "{refusals:?}");
        }
        other => panic!("expected a preflight refusal, got {other:?}"),
    }
    assert_eq!(aws.faults().writes(), 0);
    assert!(aws.names().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_value_is_refused_before_any_write() {
    let aws = start().await;
    let vault = Vault::new();
    match vault
        .sync(
            aws.sink().as_ref(),
            &[("FIRST_OK", "1"), ("EMPTY", "")],
            options(),
        )
        .await
    {
        Err(SyncError::Preflight(refusals)) => {
            assert!(refusals[0].problem.contains("empty"), "{refusals:?}");
        }
        other => panic!("expected a preflight refusal, got {other:?}"),
    }
    assert_eq!(aws.faults().writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_denied_and_name_no_value() {
    let aws = start().await;
    let refused = [
        (
            "AKIAUNKNOWNKEY000000",
            aws.server.secret_access_key().to_owned(),
            "UnrecognizedClientException",
        ),
        (
            aws.server.access_key_id(),
            "not-the-secret-key".to_owned(),
            "InvalidSignatureException",
        ),
    ];
    for (access_key_id, secret_access_key, code) in refused {
        let sink = AwsSecretsManagerSink::builder()
            .access(
                Access::region(aws.server.region())
                    .endpoint(aws.server.endpoint())
                    .credentials(access_key_id, secret_access_key),
            )
            .prefix(PREFIX)
            .build()
            .unwrap();
        assert!(
            matches!(sink.inventory().await, Err(SinkError::Denied(_))),
            "{:?}",
            sink.inventory().await
        );
        let value = SecretValue::from_text("very-secret-value-42");
        let name = sink.map_name("DB_PASS");
        let results = sink
            .apply(&[Change::Put {
                name: &name,
                value: &value,
                exists: false,
            }])
            .await;
        match &results[0] {
            Err(error @ SinkError::Denied(message)) => {
                // AWS answers 400 with a code here; the code decides.
                assert!(
                    message.contains(&format!(
                        "CreateSecret vsync-suite/DB_PASS: HTTP 400 {code}"
                    )),
                    "{message}"
                );
                assert!(!error.to_string().contains("very-secret-value-42"));
            }
            other => panic!("expected Denied, got {other:?}"),
        }
        match Vault::new().sync(&sink, BASE, options()).await {
            Err(SyncError::Inventory(SinkError::Denied(_))) => {}
            other => panic!("expected the sync to stop at the inventory, got {other:?}"),
        }
    }
    assert!(aws.names().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_refusals_map_to_the_engines_errors() {
    let aws = start().await;
    let sink = aws.sink();
    let name = sink.map_name("API_TOKEN");
    let value = SecretValue::from_text("tok_live_0123456789");
    let put = [Change::Put {
        name: &name,
        value: &value,
        exists: false,
    }];

    aws.faults().throttle_next_writes(1);
    match &sink.apply(&put).await[0] {
        Err(SinkError::RateLimited { retry_after }) => {
            // AWS's ThrottlingException (HTTP 400) names no time: the
            // engine's backoff decides.
            assert_eq!(*retry_after, None);
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    aws.faults().break_writes_of(&name);
    match &sink.apply(&put).await[0] {
        Err(SinkError::Rejected(message)) => {
            assert!(message.contains("ValidationException"), "{message}");
            assert!(!message.contains("tok_live"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    aws.faults().heal();
    assert!(sink.apply(&put).await[0].is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_cope_with_a_platform_that_moved() {
    let aws = start().await;
    let sink = aws.sink();

    // Created by someone between the inventory and the write.
    let appeared = sink.map_name("APPEARED");
    aws.create_by_hand(&appeared, "theirs").await;
    let ours = SecretValue::from_text("ours");
    let results = sink
        .apply(&[Change::Put {
            name: &appeared,
            value: &ours,
            exists: false,
        }])
        .await;
    let applied = results[0].as_ref().expect("written as a new version");
    assert_eq!(aws.value(&appeared).await.as_deref(), Some("ours"));

    // The write answers the new AWSCURRENT version, which is what the
    // inventory reports as the revision.
    let listed = sink.inventory().await.unwrap();
    let revision = &listed.iter().find(|s| s.name == appeared).unwrap().revision;
    assert!(applied.revision.is_some());
    assert_eq!(&applied.revision, revision);

    // Deleted (for good) between the inventory and the write.
    let vanished = sink.map_name("VANISHED");
    let results = sink
        .apply(&[Change::Put {
            name: &vanished,
            value: &ours,
            exists: true,
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(aws.value(&vanished).await.as_deref(), Some("ours"));
    let (_, tags) = aws.describe(&vanished).await.unwrap();
    assert!(
        tags.contains(&("managed-by".into(), "vsync".into())),
        "created, so tagged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_values_round_trip_as_secret_binary() {
    let aws = start().await;
    let sink = aws.sink();
    let name = sink.map_name("TLS_KEY_DER");
    let bytes = vec![0x30, 0x82, 0xff, 0x00, 0xfe, 0x80];
    let value = SecretValue::new(Zeroizing::new(bytes.clone()));
    let results = sink
        .apply(&[Change::Put {
            name: &name,
            value: &value,
            exists: false,
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(sink.read(&name).await.unwrap(), Some(value));

    let stored = aws
        .console
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.secret_string(), None);
    assert_eq!(
        stored.secret_binary().map(|blob| blob.as_ref().to_vec()),
        Some(bytes)
    );
}
