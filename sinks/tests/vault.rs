//! The Vault KV v2 sink against the harness's KV v2 fake: the shared sink
//! suite, then what the suite cannot see (check-and-set conflicts, keys of
//! the map vsync does not own, the ownership label, deleted and destroyed
//! versions, throttling and a sealed Vault, auth, mounts and namespaces).

#![cfg(feature = "vault")]

#[macro_use]
mod suite;

use vsync_testcontainers::faults::{Call, Faults};

use serde_json::{Value, json};
use suite::{Platform, Vault, options};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use vsync_engine::sink::{Change, SecretValue, Sink, SinkError};
use vsync_engine::sync::{Action, Drift, Outcome, SyncOptions, SyncStatus};
use vsync_sinks::vault_kv::VaultKvSink;
use vsync_testcontainers::VaultServer;

const MOUNT: &str = "secret";
const PATH: &str = "apps/api/dev";

struct VaultKv {
    server: VaultServer,
}

async fn start() -> VaultKv {
    VaultKv {
        server: VaultServer::start().await.expect("the Vault fake starts"),
    }
}

impl VaultKv {
    fn sink_with_token(&self, token: &str) -> VaultKvSink {
        VaultKvSink::builder()
            .address(self.server.address())
            .mount(MOUNT)
            .path(PATH)
            .token(token)
            .build()
            .expect("valid settings")
    }

    fn json(&self, name: &str) -> Option<Value> {
        self.server.data(MOUNT, PATH)?.get(name).cloned()
    }

    fn version(&self) -> u64 {
        self.server.current_version(MOUNT, PATH)
    }

    /// A plain Vault client, for what a person does with the `vault` CLI
    /// (`vault kv delete`, `vault kv destroy`): the real endpoints, not a
    /// back door into the harness.
    fn vault_cli(&self) -> VaultClient {
        let settings = VaultClientSettingsBuilder::default()
            .address(self.server.address())
            .token(VaultServer::ROOT_TOKEN)
            .build()
            .expect("valid settings");
        VaultClient::new(settings).expect("a client")
    }
}

#[async_trait::async_trait]
impl Platform for VaultKv {
    fn sink(&self) -> Box<dyn Sink> {
        Box::new(self.sink_with_token(VaultServer::ROOT_TOKEN))
    }

    async fn value(&self, name: &str) -> Option<String> {
        self.json(name)
            .map(|value| value.as_str().expect("a string value").to_owned())
    }

    async fn names(&self) -> Vec<String> {
        self.server
            .data(MOUNT, PATH)
            .map(|data| data.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn edit_outside(&self, name: &str, value: &str) {
        self.server
            .edit_outside(MOUNT, PATH, name, Value::String(value.to_owned()));
    }

    fn faults(&self) -> &Faults {
        self.server.faults()
    }

    fn colliding_keys(&self) -> Option<(&'static str, &'static str)> {
        None // case-sensitive, no transform: two keys are two map keys
    }

    fn rejected_key(&self) -> Option<&'static str> {
        None // any string is a valid map key
    }
}

sink_suite!(start().await);

const APP: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://app:s3cret@db.internal/app"),
    ("API_TOKEN", "tok_live_0123456789"),
    ("SESSION_KEY", "sess_abcdef"),
];

fn no_values_in(message: &str) {
    for (_, value) in APP {
        assert!(!message.contains(value), "a value leaked into {message:?}");
    }
    assert!(
        !message.contains("console value"),
        "a value leaked into {message:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_one_map_write() {
    let platform = start().await;
    let vault = Vault::new();
    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(report.count(Action::Create), APP.len());
    assert_eq!(platform.version(), 1, "three keys, one version");

    let mut changed = APP.to_vec();
    changed[0].1 = "postgres://app:rotated@db.internal/app";
    changed[2].1 = "sess_rotated";
    let report = vault
        .sync(platform.sink().as_ref(), &changed, options())
        .await
        .unwrap();
    assert_eq!(report.count(Action::Update), 2);
    assert_eq!(platform.version(), 2, "two changes, one version");
    assert_eq!(
        platform.faults().writes(),
        1 + APP.len() + 2,
        "the label once, then one count per changed key"
    );
}

/// `vault kv delete` (soft delete) or `vault kv destroy` of the current
/// version: Vault then answers the data read with the version's metadata
/// under a 404, the sink lists nothing, and the next sync writes every key
/// again with check-and-set naming the deleted version (still the current
/// one, so `cas=0` would be refused), keeping the label it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_destroyed_current_version_is_written_again() {
    for destroy in [false, true] {
        let platform = start().await;
        let vault = Vault::new();
        vault
            .sync(platform.sink().as_ref(), APP, options())
            .await
            .unwrap();
        let cli = platform.vault_cli();
        if destroy {
            vaultrs::kv2::destroy_versions(&cli, MOUNT, PATH, vec![1])
                .await
                .unwrap();
        } else {
            vaultrs::kv2::delete_latest(&cli, MOUNT, PATH)
                .await
                .unwrap();
        }
        match vaultrs::kv2::read::<Value>(&cli, MOUNT, PATH).await {
            Err(ClientError::RestClientError {
                source:
                    rustify::errors::ClientError::ServerResponseError {
                        code: 404,
                        content: Some(body),
                    },
            }) => {
                let body: Value = serde_json::from_str(&body).unwrap();
                let metadata = &body["data"]["metadata"];
                assert!(body["data"]["data"].is_null(), "{body}");
                assert_eq!(metadata["version"], 1, "{body}");
                assert_eq!(metadata["destroyed"], destroy, "{body}");
                assert_eq!(
                    metadata["deletion_time"] != "",
                    !destroy,
                    "a soft delete sets deletion_time: {body}"
                );
            }
            other => panic!("expected a 404 carrying the version's metadata, got {other:?}"),
        }
        assert!(
            platform.sink().inventory().await.unwrap().is_empty(),
            "a deleted version lists nothing"
        );

        let before = platform.faults().writes();
        let report = vault
            .sync(platform.sink().as_ref(), APP, options())
            .await
            .unwrap();
        assert_eq!(report.status, SyncStatus::Applied, "{report:?}");
        for (key, value) in APP {
            let line = report
                .secrets
                .iter()
                .find(|line| line.plan.name == *key)
                .unwrap();
            assert_eq!(
                (line.plan.action, line.plan.drift, &line.outcome),
                (Action::Create, Some(Drift::Deleted), &Outcome::Applied),
                "{key}"
            );
            assert_eq!(platform.value(key).await.as_deref(), Some(*value));
        }
        assert_eq!(platform.version(), 2, "one write after the deleted version");
        assert_eq!(
            platform.faults().writes() - before,
            APP.len(),
            "the keys only: the label survived the delete"
        );
        let metadata = vaultrs::kv2::read_metadata(&cli, MOUNT, PATH)
            .await
            .unwrap();
        assert_eq!(metadata.versions["1"].destroyed, destroy);
        assert_eq!(
            platform
                .server
                .custom_metadata(MOUNT, PATH)
                .get("managed-by")
                .map(String::as_str),
            Some("vsync")
        );
    }
}

/// `vault kv delete -versions=1`, then `vault kv undelete -versions=1`: the
/// version is served again, and the sync finds nothing to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeleted_version_is_listed_again_and_left_alone() {
    let platform = start().await;
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    let cli = platform.vault_cli();
    vaultrs::kv2::delete_versions(&cli, MOUNT, PATH, vec![1])
        .await
        .unwrap();
    assert!(platform.sink().inventory().await.unwrap().is_empty());
    vaultrs::kv2::undelete_versions(&cli, MOUNT, PATH, vec![1])
        .await
        .unwrap();
    assert_eq!(platform.sink().inventory().await.unwrap().len(), APP.len());

    let before = platform.faults().writes();
    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::NoOp, "{report:?}");
    assert_eq!(platform.faults().writes(), before);
    assert_eq!(platform.version(), 1);
}

/// Vault answers a read under a rate-limit quota with `429` and
/// `Retry-After` (which `vaultrs` does not expose, so the engine backs off
/// on its own), and a sealed Vault with `503`: both reach the engine as
/// retryable, and a label write is throttled like any other write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_and_sealed_answers_are_retryable() {
    let platform = start().await;
    let sink = platform.sink();
    platform.faults().throttle_next(Call::Read, 1);
    assert!(matches!(
        sink.inventory().await,
        Err(SinkError::RateLimited { retry_after: None })
    ));
    platform.faults().fail_next(Call::Read, 1);
    match sink.read("API_TOKEN").await {
        Err(error @ SinkError::Unavailable(_)) => {
            let message = error.to_string();
            assert!(
                message.contains("503") && message.contains("sealed"),
                "{message}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // The first write of a new secret is its label, in the metadata.
    platform.faults().throttle_next_writes(1);
    let value = SecretValue::from_text("v");
    let put = [Change::Put {
        name: "KEY",
        value: &value,
        exists: false,
    }];
    assert!(matches!(
        sink.apply(&put).await[0],
        Err(SinkError::RateLimited { .. })
    ));
    assert!(platform.server.custom_metadata(MOUNT, PATH).is_empty());
    assert_eq!(
        platform.faults().writes(),
        0,
        "a throttled write is not counted"
    );
    assert!(sink.apply(&put).await[0].is_ok());
    assert_eq!(platform.faults().writes(), 2, "the label, then the key");
    assert_eq!(
        (platform.faults().throttled(), platform.faults().failed()),
        (2, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_inventory_and_apply_is_a_conflict_and_nothing_is_lost() {
    let platform = start().await;
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();

    let sink = platform.sink();
    sink.inventory().await.unwrap();
    platform.edit_outside("API_TOKEN", "console value").await;
    let version = platform.version();
    let rotated = SecretValue::from_text("postgres://app:rotated@db.internal/app");
    let results = sink
        .apply(&[
            Change::Put {
                name: "DATABASE_URL",
                value: &rotated,
                exists: true,
            },
            Change::Delete {
                name: "SESSION_KEY",
            },
        ])
        .await;
    assert_eq!(results.len(), 2);
    for result in &results {
        match result {
            Err(error @ SinkError::Conflict(_)) => no_values_in(&error.to_string()),
            other => panic!("expected a check-and-set conflict, got {other:?}"),
        }
    }
    assert_eq!(platform.version(), version, "nothing written");
    assert_eq!(
        platform.value("API_TOKEN").await.as_deref(),
        Some("console value")
    );
    assert_eq!(
        platform.value("DATABASE_URL").await.as_deref(),
        Some(APP[0].1)
    );
    assert_eq!(
        platform.value("SESSION_KEY").await.as_deref(),
        Some(APP[2].1)
    );

    // The next sync starts from what Vault holds: the edit is drift.
    let report = vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Applied);
    let line = report
        .secrets
        .iter()
        .find(|line| line.plan.name == "API_TOKEN")
        .unwrap();
    assert_eq!(
        (line.plan.action, line.plan.drift, &line.outcome),
        (Action::Update, Some(Drift::Edited), &Outcome::Applied)
    );
    assert_eq!(platform.value("API_TOKEN").await.as_deref(), Some(APP[1].1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_vsync_does_not_own_survive_writes_and_prune() {
    let platform = start().await;
    platform
        .server
        .edit_outside(MOUNT, PATH, "FOREIGN_TEXT", json!("kept"));
    platform
        .server
        .edit_outside(MOUNT, PATH, "FOREIGN_NUMBER", json!(42));
    platform
        .server
        .edit_outside(MOUNT, PATH, "FOREIGN_OBJECT", json!({"nested": ["a", 1]}));
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();

    let listed = platform.sink().inventory().await.unwrap();
    let number = listed
        .iter()
        .find(|found| found.name == "FOREIGN_NUMBER")
        .unwrap();
    assert_eq!(
        number.value.as_ref().and_then(SecretValue::as_text),
        Some("42"),
        "a non-string value is listed as its JSON text"
    );

    let report = vault
        .sync(
            platform.sink().as_ref(),
            &APP[..1],
            SyncOptions {
                prune: true,
                ..options()
            },
        )
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 2);
    assert_eq!(report.failures(), 0);
    assert_eq!(platform.json("API_TOKEN"), None);
    assert_eq!(platform.json("SESSION_KEY"), None);
    assert_eq!(platform.json("FOREIGN_TEXT"), Some(json!("kept")));
    assert_eq!(
        platform.json("FOREIGN_NUMBER"),
        Some(json!(42)),
        "type kept"
    );
    assert_eq!(
        platform.json("FOREIGN_OBJECT"),
        Some(json!({"nested": ["a", 1]}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_label_is_added_beside_existing_ones_and_reported() {
    let platform = start().await;
    platform
        .server
        .set_custom_metadata(MOUNT, PATH, &[("team", "payments")]);
    let sink = platform.sink();
    let value = SecretValue::from_text("v");
    let results = sink
        .apply(&[Change::Put {
            name: "KEY",
            value: &value,
            exists: false,
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let labels = platform.server.custom_metadata(MOUNT, PATH);
    assert_eq!(labels.get("managed-by").map(String::as_str), Some("vsync"));
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    let listed = sink.inventory().await.unwrap();
    assert_eq!(listed[0].managed, Some(true));
    assert_eq!(listed[0].revision.as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_another_tool_manages_keeps_its_label_and_is_never_pruned() {
    let platform = start().await;
    let vault = Vault::new();
    vault
        .sync(platform.sink().as_ref(), APP, options())
        .await
        .unwrap();
    platform
        .server
        .set_custom_metadata(MOUNT, PATH, &[("managed-by", "terraform")]);

    let listed = platform.sink().inventory().await.unwrap();
    assert!(listed.iter().all(|found| found.managed == Some(false)));
    let report = vault
        .sync(
            platform.sink().as_ref(),
            &APP[..1],
            SyncOptions {
                prune: true,
                ..options()
            },
        )
        .await
        .unwrap();
    assert_eq!(report.count(Action::Prune), 0);
    assert_eq!(
        report.count(Action::Stale),
        2,
        "owned by the record, not by the label"
    );
    assert_eq!(
        platform.value("SESSION_KEY").await.as_deref(),
        Some(APP[2].1)
    );
    assert_eq!(
        platform
            .server
            .custom_metadata(MOUNT, PATH)
            .get("managed-by")
            .map(String::as_str),
        Some("terraform")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_denied() {
    let platform = start().await;
    let wrong = platform.sink_with_token("hvs.not-a-token");
    match wrong.inventory().await {
        Err(SinkError::Denied(message)) => {
            assert!(message.contains("permission denied"), "{message}")
        }
        other => panic!("expected Denied, got {other:?}"),
    }

    let read_only = platform.sink_with_token(VaultServer::READ_ONLY_TOKEN);
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
        Err(error @ SinkError::Denied(_)) => no_values_in(&error.to_string()),
        other => panic!("expected Denied, got {other:?}"),
    }
    assert_eq!(platform.version(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_mount_is_not_found_rather_than_empty() {
    let platform = start().await;
    let sink = VaultKvSink::builder()
        .address(platform.server.address())
        .mount("kv-typo")
        .path(PATH)
        .token(VaultServer::ROOT_TOKEN)
        .build()
        .unwrap();
    match sink.inventory().await {
        Err(SinkError::NotFound(message)) => assert!(message.contains("no handler"), "{message}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_mount_and_a_namespace_reach_the_right_secret() {
    let server = VaultServer::start_in_namespace("team-a").await.unwrap();
    server.mount_kv2("kv/apps");
    let sink = |namespace: Option<&str>| {
        let builder = VaultKvSink::builder()
            .address(server.address())
            .mount("kv/apps")
            .path("api/prod")
            .token(VaultServer::ROOT_TOKEN);
        match namespace {
            Some(namespace) => builder.namespace(namespace),
            None => builder,
        }
        .build()
        .unwrap()
    };
    assert!(matches!(
        sink(None).inventory().await,
        Err(SinkError::NotFound(_))
    ));
    let in_namespace = sink(Some("team-a"));
    let value = SecretValue::from_text("v");
    let results = in_namespace
        .apply(&[Change::Put {
            name: "KEY",
            value: &value,
            exists: false,
        }])
        .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(
        server.data("kv/apps", "api/prod").unwrap().get("KEY"),
        Some(&json!("v"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_key_is_isolated_and_the_others_are_written() {
    let platform = start().await;
    let keys: Vec<String> = (0..9).map(|i| format!("KEY_{i}")).collect();
    let desired: Vec<(&str, &str)> = keys.iter().map(|key| (key.as_str(), "v")).collect();
    platform.faults().break_writes_of("KEY_6");
    let report = Vault::new()
        .sync(platform.sink().as_ref(), &desired, options())
        .await
        .unwrap();
    assert_eq!(report.status, SyncStatus::Partial);
    assert_eq!(report.failures(), 1);
    let failed = report
        .secrets
        .iter()
        .find(|line| matches!(line.outcome, Outcome::Failed(_)))
        .unwrap();
    assert_eq!(failed.plan.name, "KEY_6");
    assert_eq!(platform.names().await.len(), 8);
    // The nine refused together; then 4 written + 5 refused; of those 5,
    // 2 written + 3 refused; of those 3, KEY_6 refused + 2 written: three
    // versions, seven requests, where one write per key would take nine.
    assert_eq!(platform.version(), 3);
}
