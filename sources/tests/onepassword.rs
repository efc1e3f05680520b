//! 1Password: the shared Source suite against the Connect fake, what is
//! 1Password's own (an item's fields as keys, Secure Notes, one-time
//! passwords, tags, titles, archived and duplicate items), and the `op` CLI
//! source against a stub `op` printing the real CLI's JSON.
//!
//! The suite's mapping: each suite key is one item titled `<KEY>` holding
//! one concealed field labelled `<KEY>` (an item made for one secret), so
//! the suite's puts, deletes, 1,005-secret listing and per-secret reads
//! are 1Password's items, and its call counts are Connect's requests. An
//! item with several fields is this file's own case. 1Password has no
//! disabled state (`disable` answers `false`) and holds text only
//! (`binary` is `false`). Connect does not page: a listing is one vault
//! lookup and one item listing, whatever the count (`page_size` is
//! unbounded, so the suite allows two list calls).

mod suite;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use suite::onepassword::Connect;
use vsync_crypto::Zeroizing;
use vsync_engine::import::ImportAction;
use vsync_engine::sink::SinkError;
use vsync_engine::source::Source;
use vsync_sources::onepassword::{CliSource, Scope};
use vsync_testcontainers::faults::Call;
use vsync_testcontainers::{FakeField, FakeItem};

source_suite!(Connect::start().await);

/// Imports `source` into an empty vault: the key → value pairs.
async fn import(source: &dyn Source) -> (suite::Vault, Vec<(String, String)>) {
    let mut vault = suite::Vault::new();
    vault.import(source).await;
    let pairs = vault
        .entries
        .iter()
        .map(|(k, v)| (k.clone(), v.as_text().unwrap().to_owned()))
        .collect();
    (vault, pairs)
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY-----\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_items_fields_are_keys_but_otp_seeds_and_login_notes_are_not() {
    let connect = Connect::start().await;
    let fields = [
        FakeField {
            label: "DATABASE_URL",
            value: "postgres://app:s3cret@db/app",
            kind: "STRING",
            purpose: "",
            section: Some("app"),
        },
        FakeField::concealed("API_TOKEN", "tok=en#1"),
        FakeField {
            label: "notesPlain",
            value: "rotate every March",
            kind: "STRING",
            purpose: "NOTES",
            section: None,
        },
        FakeField {
            label: "one-time password",
            value: "otpauth://totp/acme?secret=JBSWY3DPEHPK3PXP",
            kind: "OTP",
            purpose: "",
            section: None,
        },
        FakeField::concealed("LEFT_BLANK", ""),
    ];
    connect.server.put(
        &connect.vault,
        &FakeItem {
            title: "acme-api dev",
            category: "LOGIN",
            tags: &[],
            fields: &fields,
        },
    );
    let note = [FakeField {
        label: "notesPlain",
        value: PEM,
        kind: "STRING",
        purpose: "NOTES",
        section: None,
    }];
    connect.server.put(
        &connect.vault,
        &FakeItem {
            title: "TLS_KEY",
            category: "SECURE_NOTE",
            tags: &[],
            fields: &note,
        },
    );

    let (mut vault, imported) = import(&connect.source("Ops", Scope::All)).await;
    assert_eq!(
        imported,
        pairs(&[
            ("API_TOKEN", "tok=en#1"),
            ("DATABASE_URL", "postgres://app:s3cret@db/app"),
            ("TLS_KEY", PEM),
        ])
    );
    // Two items, two reads; unchanged, the next import reads neither.
    let faults = connect.server.faults();
    assert_eq!(faults.calls(Call::Read), 2);
    let again = vault.import(&connect.source("Ops", Scope::All)).await;
    assert_eq!(again.read, 0);
    assert_eq!(again.count(ImportAction::Unchanged), 3, "{:?}", again.lines);
    assert_eq!(faults.calls(Call::Read), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_titles_narrow_what_is_read() {
    let connect = Connect::start().await;
    let quoted = r#"the "main" \ app"#;
    for (title, tags, key) in [
        ("prod-api", &["prod"][..], "PROD_KEY"),
        ("prod-worker", &["prod", "worker"][..], "WORKER_KEY"),
        ("dev-api", &["dev"][..], "DEV_KEY"),
        (quoted, &[][..], "MAIN_KEY"),
    ] {
        let fields = [FakeField::concealed(key, "v")];
        connect.server.put(
            &connect.vault,
            &FakeItem {
                title,
                category: "API_CREDENTIAL",
                tags,
                fields: &fields,
            },
        );
    }
    let keys = |imported: Vec<(String, String)>| -> Vec<String> {
        imported.into_iter().map(|(k, _)| k).collect()
    };
    let (_, tagged) = import(&connect.source("Ops", Scope::Tagged("prod".into()))).await;
    assert_eq!(keys(tagged), ["PROD_KEY", "WORKER_KEY"]);
    let (_, titled) = import(&connect.source("Ops", Scope::Titled(quoted.into()))).await;
    assert_eq!(keys(titled), ["MAIN_KEY"]);
    let source = connect.source("Ops", Scope::Titled("absent".into()));
    assert_eq!(source.list().await.unwrap(), []);
    assert!(
        source.origin().ends_with("vault=Ops,item=absent"),
        "{}",
        source.origin()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vaults_are_found_by_name_or_id_and_archived_items_are_not_listed() {
    let connect = Connect::start().await;
    let kept = [FakeField::concealed("KEPT", "1")];
    let old = [FakeField::concealed("OLD", "2")];
    connect
        .server
        .put(&connect.vault, &FakeItem::credential("kept", &kept));
    connect
        .server
        .put(&connect.vault, &FakeItem::credential("old", &old));
    connect.server.archive(&connect.vault, "old");

    let by_id = connect
        .source(&connect.vault, Scope::All)
        .list()
        .await
        .unwrap();
    let names: Vec<&str> = by_id.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(by_id[0].revision.as_deref(), Some("1"));
    assert!(by_id[0].updated_at.is_some());

    connect.server.add_vault("Staging");
    let error = connect.source("Prod", Scope::All).list().await.unwrap_err();
    assert!(
        matches!(&error, SinkError::NotFound(m) if m.contains("\"Prod\"") && m.contains("Ops, Staging")),
        "{error}"
    );
    connect.server.add_vault("Ops");
    let error = connect.source("Ops", Scope::All).list().await.unwrap_err();
    assert!(
        error.to_string().contains("2 vaults are named \"Ops\""),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_items_with_one_title_are_refused_and_one_deleted_after_listing_is_left_out() {
    let connect = Connect::start().await;
    let a = [FakeField::concealed("A", "1")];
    let b = [FakeField::concealed("B", "2")];
    connect
        .server
        .put(&connect.vault, &FakeItem::credential("first", &a));
    connect
        .server
        .put(&connect.vault, &FakeItem::credential("second", &b));
    let source = connect.source("Ops", Scope::All);
    let listed = source.list().await.unwrap();
    connect.server.delete(&connect.vault, "second");
    let all: Vec<_> = listed.iter().collect();
    let mut read = Vec::new();
    for secret in &all {
        read.extend(source.read(&[*secret]).await.unwrap().values);
    }
    let names: Vec<&str> = read.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["A"]);

    // A second item titled "first" (1Password allows it): the title no
    // longer names one item.
    connect
        .server
        .add(&connect.vault, &FakeItem::credential("first", &b));
    let error = connect.source("Ops", Scope::All).list().await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Rejected(m) if m.contains("more than one item titled \"first\"")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_paging_case_in_figures() {
    // The suite's paging case asserts the bounds; this one prints what an
    // import of 1,005 items costs against the fake, for the record.
    let connect = Connect::start().await;
    for i in 0..1005 {
        let key = format!("BULK_{i:04}");
        let value = format!("value-{i}");
        let fields = [FakeField::concealed(&key, &value)];
        connect
            .server
            .put(&connect.vault, &FakeItem::credential(&key, &fields));
    }
    let started = Instant::now();
    let (_, imported) = import(&connect.source("Ops", Scope::All)).await;
    let elapsed = started.elapsed();
    assert_eq!(imported.len(), 1005);
    let faults = connect.server.faults();
    let (lists, reads) = (faults.calls(Call::List), faults.calls(Call::Read));
    assert_eq!((lists, reads), (2, 1005));
    eprintln!("1,005 items: {lists} list calls, {reads} read calls, {elapsed:?}");
}

/// A stand-in for 1Password CLI 2, run without a shell by the source: it
/// logs its arguments and the token it was given, answers `item list` from
/// `list.json` and `item get` (one id, or `-` with ids on standard input)
/// from `items/<id>.json`, refusing an unknown id the way op does, and
/// fails with `fail`'s text when that file exists.
const OP_STUB: &str = r#"#!/bin/sh
dir=$(dirname "$0")
printf '%s\n' "$*" >> "$dir/argv.log"
printf '%s\n' "${OP_SERVICE_ACCOUNT_TOKEN:-none}" >> "$dir/token.log"
if [ -f "$dir/fail" ]; then cat "$dir/fail" >&2; exit 1; fi
if [ -f "$dir/flood" ]; then head -c 40000000 /dev/zero; exit 0; fi
case "$1 $2" in
"item list") cat "$dir/list.json" ;;
"item get")
  if [ "$3" = "-" ]; then
    ids=$(tr ',' '\n' | sed -n 's/.*"id": *"\([a-z0-9]*\)".*/\1/p')
    printf 'stdin: %s\n' "$(echo $ids)" >> "$dir/argv.log"
  else
    ids=$3
  fi
  for id in $ids; do
    if [ ! -f "$dir/items/$id.json" ]; then
      echo "[ERROR] 2024/05/01 10:00:00 \"$id\" isn't an item in the \"Ops\" vault. Specify the item with its UUID, name, or domain." >&2
      exit 1
    fi
  done
  for id in $ids; do cat "$dir/items/$id.json"; done ;;
*) echo "[ERROR] 2024/05/01 10:00:00 unknown command \"$1 $2\"" >&2; exit 1 ;;
esac
"#;

/// A directory holding the stub `op` and its answers.
struct OpStub {
    dir: tempfile::TempDir,
}

impl OpStub {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("op");
        std::fs::write(&program, OP_STUB).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("items")).unwrap();
        OpStub { dir }
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join("op")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stores items as op prints them: the listing's summaries and each
    /// item's `op item get --format=json` answer (indented, as op prints).
    fn items(&self, items: &[Value]) {
        let summaries: Vec<Value> = items
            .iter()
            .map(|item| {
                let mut summary = item.clone();
                let object = summary.as_object_mut().unwrap();
                object.remove("fields");
                object.remove("sections");
                summary
            })
            .collect();
        std::fs::write(
            self.path("list.json"),
            serde_json::to_string_pretty(&summaries).unwrap(),
        )
        .unwrap();
        for item in items {
            let id = item["id"].as_str().unwrap();
            std::fs::write(
                self.path(&format!("items/{id}.json")),
                serde_json::to_string_pretty(item).unwrap() + "\n",
            )
            .unwrap();
        }
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    fn source(&self, token: Option<&str>, scope: Scope) -> CliSource {
        CliSource::new(
            self.program(),
            token.map(|token| Zeroizing::new(token.to_owned())),
            "Ops".into(),
            scope,
        )
    }
}

/// An item as `op item get --format=json` prints it.
fn op_item(id: &str, title: &str, category: &str, fields: Value) -> Value {
    json!({
        "id": id,
        "title": title,
        "tags": ["prod"],
        "version": 3,
        "vault": { "id": "ops0vault0000000000000000a", "name": "Ops" },
        "category": category,
        "last_edited_by": "usr0000000000000000000000a",
        "created_at": "2024-04-01T09:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
        "additional_information": "app",
        "sections": [{ "id": "add more" }],
        "fields": fields,
    })
}

fn op_items() -> Vec<Value> {
    vec![
        op_item(
            "acme0api0000000000000000aa",
            "acme-api",
            "LOGIN",
            json!([
                { "id": "username", "type": "STRING", "purpose": "USERNAME", "label": "username",
                  "value": "app", "reference": "op://Ops/acme-api/username" },
                { "id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password",
                  "value": "p@ss=w#rd", "entropy": 71.2,
                  "password_details": { "entropy": 71, "generated": true, "strength": "FANTASTIC" },
                  "reference": "op://Ops/acme-api/password" },
                { "id": "notesPlain", "type": "STRING", "purpose": "NOTES", "label": "notesPlain",
                  "value": "ask Bob", "reference": "op://Ops/acme-api/notesPlain" },
                { "id": "k5xq", "section": { "id": "add more" }, "type": "OTP",
                  "label": "one-time password", "value": "otpauth://totp/acme?secret=JBSWY3DP",
                  "totp": "123456", "reference": "op://Ops/acme-api/add more/one-time password" },
            ]),
        ),
        op_item(
            "tls0key00000000000000000aa",
            "TLS_KEY",
            "SECURE_NOTE",
            json!([
                { "id": "notesPlain", "type": "STRING", "purpose": "NOTES", "label": "notesPlain",
                  "value": PEM, "reference": "op://Ops/TLS_KEY/notesPlain" },
            ]),
        ),
        op_item(
            "json0blob0000000000000000a",
            "service account",
            "API_CREDENTIAL",
            json!([
                { "id": "credential", "type": "CONCEALED", "label": "GOOGLE_CREDENTIALS",
                  "value": "{\n  \"type\": \"service_account\",\n  \"n\": 1\n}",
                  "reference": "op://Ops/service account/credential" },
            ]),
        ),
    ]
}

const SA_TOKEN: &str = "ops_eyJzaWduSW5BZGRyZXNzIjoieHl6enkifQ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_op_cli_lists_then_reads_every_item_in_one_run_with_the_token_in_its_environment() {
    let stub = OpStub::new();
    stub.items(&op_items());
    let source = stub.source(Some(SA_TOKEN), Scope::Tagged("prod".into()));
    assert_eq!(source.origin(), "1password-cli:vault=Ops,tag=prod");
    let (mut vault, imported) = import(&source).await;
    assert_eq!(
        imported,
        pairs(&[
            (
                "GOOGLE_CREDENTIALS",
                "{\n  \"type\": \"service_account\",\n  \"n\": 1\n}"
            ),
            ("TLS_KEY", PEM),
            ("password", "p@ss=w#rd"),
            ("username", "app"),
        ])
    );
    let argv = stub.log("argv.log");
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "item list --vault=Ops --format=json --tags=prod",
            "item get - --vault=Ops --format=json --reveal",
            "stdin: acme0api0000000000000000aa tls0key00000000000000000aa json0blob0000000000000000a",
        ],
        "one listing, one read of all three"
    );
    assert!(!argv.contains(SA_TOKEN));
    assert_eq!(stub.log("token.log"), format!("{SA_TOKEN}\n{SA_TOKEN}\n"));

    // Unchanged versions: the next import runs op once, to list.
    let again = vault
        .import(&stub.source(Some(SA_TOKEN), Scope::Tagged("prod".into())))
        .await;
    assert_eq!(again.read, 0);
    assert_eq!(stub.log("argv.log").lines().count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_op_no_longer_has_is_left_out_of_a_batch_read_one_by_one() {
    let stub = OpStub::new();
    stub.items(&op_items());
    let source = stub.source(None, Scope::All);
    let listed = source.list().await.unwrap();
    std::fs::remove_file(stub.path("items/tls0key00000000000000000aa.json")).unwrap();
    let all: Vec<_> = listed.iter().collect();
    let batch = source.read(&all).await.unwrap();
    let mut names: Vec<&str> = batch.values.iter().map(|v| v.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["GOOGLE_CREDENTIALS", "password", "username"]);
    let argv = stub.log("argv.log");
    assert!(
        argv.contains("item get acme0api0000000000000000aa --vault=Ops --format=json --reveal"),
        "{argv}"
    );
    // Without a service account, op uses the app's session: no token set.
    assert!(stub.log("token.log").lines().all(|line| line == "none"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_op_is_denied_with_its_words_and_how_to_sign_in() {
    let stub = OpStub::new();
    stub.items(&op_items());
    std::fs::write(
        stub.path("fail"),
        "[ERROR] 2024/05/01 10:00:00 You are not currently signed in. Please run `op signin --help` for instructions\nmore detail\n",
    )
    .unwrap();
    let error = stub.source(None, Scope::All).list().await.unwrap_err();
    let SinkError::Denied(message) = &error else {
        panic!("{error:?}");
    };
    for needed in [
        "exit status 1",
        "You are not currently signed in",
        "op signin",
        "OP_SERVICE_ACCOUNT_TOKEN",
        "\"Ops\"",
    ] {
        assert!(message.contains(needed), "{needed}: {message}");
    }
    assert!(!message.contains("more detail"), "{message}");

    std::fs::remove_file(stub.path("fail")).unwrap();
    std::fs::write(stub.path("flood"), "").unwrap();
    let error = stub.source(None, Scope::All).list().await.unwrap_err();
    assert!(error.to_string().contains("more than"), "{error}");

    let missing = CliSource::new(Path::new("/nonexistent/op"), None, "Ops".into(), Scope::All);
    let error = missing.list().await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Misconfigured(m) if m.contains("install")),
        "{error}"
    );
}
