//! The AWS Secrets Manager source against a real moto server (IAM
//! authentication on) behind the harness's front, which counts and faults
//! every `ListSecrets` page and `BatchGetSecretValue` call and refuses a
//! batch of more than 20, as AWS does: the shared suite, then what only AWS
//! has — JSON secrets split into keys, `SecretBinary`, the server-side name
//! prefix, secrets deleted between the listing and the read.
//!
//! AWS has no disabled state, so [`Harness::disable`] answers `false`.
//! Secrets are written "in the console": straight to moto, unseen by the
//! front's counters and faults.

mod suite;

use aws_sdk_secretsmanager::primitives::Blob;
use std::collections::BTreeMap;
use std::num::NonZeroU32;

use suite::Vault;
use suite::aws::{Aws, start};
use vsync_crypto::Key;
use vsync_crypto::fingerprint::FingerprintKey;
use vsync_engine::import::{self, ImportAction, ImportOptions, NameRules};
use vsync_engine::source::{ListedSecret, Source};
use vsync_engine::sync::record::Record;
use vsync_testcontainers::faults::Call;

source_suite!(start().await);

/// Every secret `source` lists, read as the engine reads them: in batches
/// of its size.
async fn read_everything(source: &dyn Source) -> Vec<(String, String, Vec<u8>)> {
    let listed = source.list().await.expect("ListSecrets");
    let all: Vec<&ListedSecret> = listed.iter().collect();
    let mut values = Vec::new();
    for batch in all.chunks(source.capabilities().batch) {
        let read = source.read(batch).await.expect("BatchGetSecretValue");
        assert_eq!(read.disabled, Vec::<String>::new());
        values.extend(
            read.values
                .into_iter()
                .map(|v| (v.secret, v.name, v.value.as_bytes().to_vec())),
        );
    }
    values.sort();
    values
}

fn value(secret: &str, name: &str, value: &[u8]) -> (String, String, Vec<u8>) {
    (secret.to_owned(), name.to_owned(), value.to_vec())
}

const DB_JSON: &str = r#"{"username": "app", "password": "p@ss \"w0rd\"", "port": 5432, "tls": {"ca": "-----BEGIN\nx\n-----END", "verify": true}, "replica": null}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_secrets_become_one_key_per_field_on_request_only() {
    let aws = start().await;
    aws.console
        .create_secret()
        .name("DB")
        .secret_string(DB_JSON)
        .send()
        .await
        .unwrap();
    aws.console
        .create_secret()
        .name("HOSTS")
        .secret_string(r#"["a", "b"]"#)
        .send()
        .await
        .unwrap();
    aws.console
        .create_secret()
        .name("PLAIN")
        .secret_string("{not json")
        .send()
        .await
        .unwrap();

    // Off by default: every secret is one value, byte for byte.
    let whole = aws.builder().build().unwrap();
    assert_eq!(
        read_everything(&whole).await,
        [
            value("DB", "DB", DB_JSON.as_bytes()),
            value("HOSTS", "HOSTS", br#"["a", "b"]"#),
            value("PLAIN", "PLAIN", b"{not json"),
        ]
    );

    let split = aws.builder().split_json(true).build().unwrap();
    assert_ne!(split.origin(), whole.origin(), "a record of its own");
    assert_eq!(
        read_everything(&split).await,
        [
            value("DB", "password", br#"p@ss "w0rd""#),
            value("DB", "port", b"5432"),
            value("DB", "replica", b"null"),
            value(
                "DB",
                "tls",
                br#"{"ca":"-----BEGIN\nx\n-----END","verify":true}"#
            ),
            value("DB", "username", b"app"),
            value("HOSTS", "HOSTS", br#"["a", "b"]"#),
            value("PLAIN", "PLAIN", b"{not json"),
        ]
    );

    // Through the engine: the fields are keys of the vault, and a re-import
    // of the unchanged secret reads nothing.
    let mut vault = Vault::new();
    let plan = vault.import(&split).await;
    assert_eq!(plan.count(ImportAction::Add), 7, "{:?}", plan.lines);
    assert_eq!(vault.entries["password"].as_text(), Some(r#"p@ss "w0rd""#));
    let reads = aws.server.faults().calls(Call::Read);
    let again = vault.import(&split).await;
    assert!(again.writes.is_empty(), "{:?}", again.lines);
    assert_eq!(aws.server.faults().calls(Call::Read), reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_secrets_arrive_byte_for_byte_never_split_and_go_to_asset_files() {
    let aws = start().await;
    let der: &[u8] = &[0x30, 0x82, 0x00, 0xff, 0xfe, 0x0a, 0x00];
    let json_bytes: &[u8] = br#"{"looks":"like json"}"#;
    for (name, bytes) in [("CLIENT_CERT_DER", der), ("JSON_AS_BINARY", json_bytes)] {
        aws.console
            .create_secret()
            .name(name)
            .secret_binary(Blob::new(bytes))
            .send()
            .await
            .unwrap();
    }
    aws.console
        .create_secret()
        .name("TEXT")
        .secret_string("text")
        .send()
        .await
        .unwrap();

    let source = aws.builder().split_json(true).build().unwrap();
    assert_eq!(
        read_everything(&source).await,
        [
            value("CLIENT_CERT_DER", "CLIENT_CERT_DER", der),
            value("JSON_AS_BINARY", "JSON_AS_BINARY", json_bytes),
            value("TEXT", "TEXT", b"text"),
        ]
    );

    let mut vault = Vault::new();
    let plan = vault.import(&source).await;
    let destination = |key: &str| {
        plan.lines
            .iter()
            .find(|line| line.key == key)
            .map(|line| line.destination)
    };
    assert_eq!(
        destination("CLIENT_CERT_DER"),
        Some(import::Destination::Asset)
    );
    assert_eq!(vault.assets["CLIENT_CERT_DER"].as_bytes(), der);
    // Bytes `.env` can carry as they are stay in it.
    assert_eq!(
        destination("JSON_AS_BINARY"),
        Some(import::Destination::EnvFile)
    );
    assert_eq!(vault.entries["TEXT"].as_text(), Some("text"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_prefix_is_filtered_by_aws_and_stripped_by_the_import() {
    let aws = start().await;
    for name in ["app/DB_URL", "app/API_KEY", "other/DB_URL", "apple"] {
        Aws::store(&aws.console, name, name.as_bytes()).await;
    }
    let source = aws.builder().prefix("app/").build().unwrap();
    let names: Vec<String> = source
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|secret| secret.name)
        .collect();
    assert_eq!(names, ["app/DB_URL", "app/API_KEY"]);

    let entries = BTreeMap::new();
    let assets = |_: &str| None;
    let view = import::VaultView {
        entries: &entries,
        asset: &assets,
    };
    let options = ImportOptions {
        names: NameRules {
            prefix: Some("app/".into()),
            ..NameRules::default()
        },
        ..ImportOptions::default()
    };
    let key = Key::derive(b"t", b"salt", NonZeroU32::MIN);
    let plan = import::plan(
        &source,
        &view,
        &Record::default(),
        &FingerprintKey::derive(&key),
        &options,
    )
    .await
    .unwrap();
    let keys: Vec<&str> = plan.writes.keys().map(String::as_str).collect();
    assert_eq!(keys, ["API_KEY", "DB_URL"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_deleted_between_listing_and_reading_are_left_out_in_one_call() {
    let aws = start().await;
    for name in ["STAYS", "SCHEDULED", "PURGED"] {
        Aws::store(&aws.console, name, b"value").await;
    }
    let source = aws.builder().build().unwrap();
    let listed = source.list().await.unwrap();
    assert_eq!(listed.len(), 3);

    aws.schedule_deletion("SCHEDULED").await;
    aws.console
        .delete_secret()
        .secret_id("PURGED")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let reads = aws.server.faults().calls(Call::Read);
    let all: Vec<&ListedSecret> = listed.iter().collect();
    let read = source.read(&all).await.unwrap();
    let names: Vec<&str> = read.values.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["STAYS"]);
    assert_eq!(aws.server.faults().calls(Call::Read) - reads, 1);
    // Listed again, neither is there: scheduled for deletion is deleted.
    let names: Vec<String> = source
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|secret| secret.name)
        .collect();
    assert_eq!(names, ["STAYS"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_five_secrets_cost_one_listing_and_three_reads() {
    let aws = start().await;
    let harness: &dyn suite::Harness = &aws;
    let secrets: Vec<(String, String)> = (0..45)
        .map(|i| (format!("K_{i:02}"), format!("v{i}")))
        .collect();
    harness.put_many(&secrets).await;
    let faults = aws.server.faults();
    let before = (faults.calls(Call::List), faults.calls(Call::Read));
    let mut vault = Vault::new();
    let plan = vault.import(harness.source().as_ref()).await;
    assert_eq!(plan.count(ImportAction::Add), 45);
    assert_eq!(
        (
            faults.calls(Call::List) - before.0,
            faults.calls(Call::Read) - before.1
        ),
        (1, 3)
    );
}
