//! 1Password: `vsync import <env> --from 1password` and tsafe's `vsync
//! op-pull` through the binary, against the Connect fake (an item's fields
//! and a Secure Note becoming keys, a re-import reading nothing, a change
//! taken, a refused token exiting 2 naming OP_CONNECT_TOKEN), and the `op`
//! CLI found on PATH when no Connect server is set; no value in any output.

use std::os::unix::fs::PermissionsExt;

use crate::common::Machine;
use vsync_testcontainers::faults::Call;
use vsync_testcontainers::{FakeField, FakeItem, OnePasswordConnectServer};

const PEM: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";

/// Values no output may ever show.
const SECRETS: [&str; 5] = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "s3cret-db",
    "tok=en#1",
    "rotated#2",
    "JBSWY3DPEHPK3PXP",
];

/// Runs vsync with `envs`: its exit code and everything it printed,
/// checked for values.
async fn run(machine: &Machine, args: &[&str], envs: &[(&str, String)]) -> (Option<i32>, String) {
    let mut command = machine.command(args);
    for (name, value) in envs {
        command.env(name, value);
    }
    crate::output_without(command, &SECRETS).await
}

fn entries(machine: &Machine) -> Vec<(String, String)> {
    crate::sorted_entries(&std::fs::read_to_string(machine.vault().join(".env.dev")).unwrap())
}

fn put_app(server: &OnePasswordConnectServer, vault: &str, token: &str) {
    let fields = [
        FakeField {
            label: "DATABASE_URL",
            value: "postgres://app:s3cret-db@db/app",
            kind: "STRING",
            purpose: "",
            section: None,
        },
        FakeField::concealed("API_TOKEN", token),
        FakeField {
            label: "one-time password",
            value: "otpauth://totp/acme?secret=JBSWY3DPEHPK3PXP",
            kind: "OTP",
            purpose: "",
            section: None,
        },
    ];
    server.put(
        vault,
        &FakeItem {
            title: "acme-api dev",
            category: "LOGIN",
            tags: &["dev"],
            fields: &fields,
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vaults_items_are_imported_through_connect_and_op_pull_takes_only_changes() {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let server = OnePasswordConnectServer::start().await.unwrap();
    let vault = server.add_vault("Ops");
    put_app(&server, &vault, "tok=en#1");
    let note = [FakeField {
        label: "notesPlain",
        value: PEM,
        kind: "STRING",
        purpose: "NOTES",
        section: None,
    }];
    server.put(
        &vault,
        &FakeItem {
            title: "TLS_KEY",
            category: "SECURE_NOTE",
            tags: &["dev"],
            fields: &note,
        },
    );
    let envs = [
        ("OP_CONNECT_HOST", server.host()),
        (
            "OP_CONNECT_TOKEN",
            OnePasswordConnectServer::TOKEN.to_owned(),
        ),
    ];

    let (code, out) = run(
        &machine,
        &["import", "dev", "--from", "1password", "--set", "vault=Ops"],
        &envs,
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("add       API_TOKEN (from acme-api dev)"),
        "{out}"
    );
    assert!(
        out.contains("add       DATABASE_URL (from acme-api dev)"),
        "{out}"
    );
    assert!(out.contains("add       TLS_KEY\n"), "{out}");
    assert!(out.contains("1password-connect:host="), "{out}");
    assert_eq!(
        entries(&machine),
        [
            ("API_TOKEN".into(), "tok=en#1".into()),
            (
                "DATABASE_URL".into(),
                "postgres://app:s3cret-db@db/app".into()
            ),
            ("TLS_KEY".into(), PEM.into()),
        ]
    );

    // tsafe's alias, same source: unchanged items are not even read.
    let reads = server.faults().calls(Call::Read);
    let (code, out) = run(&machine, &["op-pull", "dev", "--set", "vault=Ops"], &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("wrote 0"), "{out}");
    assert!(out.contains("unchanged API_TOKEN"), "{out}");
    assert_eq!(server.faults().calls(Call::Read), reads);

    // A rotation in 1Password is one change, read from that item alone.
    put_app(&server, &vault, "rotated#2");
    let (code, out) = run(&machine, &["op-pull", "dev", "--set", "vault=Ops"], &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("change    API_TOKEN"), "{out}");
    assert!(out.contains("unchanged TLS_KEY"), "{out}");
    assert_eq!(server.faults().calls(Call::Read), reads + 1);
    assert!(entries(&machine).contains(&("API_TOKEN".into(), "rotated#2".into())));

    // A refused token: exit 2, naming the variable to fix.
    let bad = [
        envs[0].clone(),
        ("OP_CONNECT_TOKEN", "eyJ.revoked".to_owned()),
    ];
    let (code, out) = run(&machine, &["op-pull", "dev", "--set", "vault=Ops"], &bad).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("Invalid bearer token") && out.contains("OP_CONNECT_TOKEN"),
        "{out}"
    );
    let (code, out) = run(&machine, &["op-pull", "dev"], &envs).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--set vault="), "{out}");
}

/// A stand-in for 1Password CLI 2 answering `item list` and `item get -`
/// for one item, or refusing as op does without a session when
/// `OP_SERVICE_ACCOUNT_TOKEN` is unset.
const OP_STUB: &str = r#"#!/bin/sh
if [ -z "$OP_SERVICE_ACCOUNT_TOKEN" ]; then
  echo "[ERROR] 2024/05/01 10:00:00 You are not currently signed in. Please run \`op signin --help\` for instructions" >&2
  exit 1
fi
case "$1 $2" in
"item list") echo '[{"id":"acme0api0000000000000000aa","title":"acme-api","version":2,"vault":{"id":"ops0vault0000000000000000a","name":"Ops"},"category":"API_CREDENTIAL","created_at":"2024-04-01T09:00:00Z","updated_at":"2024-05-01T10:00:00Z"}]' ;;
"item get") cat > /dev/null; printf '%s\n' '{' '  "id": "acme0api0000000000000000aa",' '  "title": "acme-api",' '  "version": 2,' '  "category": "API_CREDENTIAL",' '  "fields": [' '    { "id": "credential", "type": "CONCEALED", "label": "API_TOKEN", "value": "tok=en#1" }' '  ]' '}' ;;
*) exit 1 ;;
esac
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_connect_server_the_op_cli_on_path_is_used() {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let bin = machine.home.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let op = bin.join("op");
    std::fs::write(&op, OP_STUB).unwrap();
    std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());

    let (code, out) = run(
        &machine,
        &["op-pull", "dev", "--set", "vault=Ops"],
        &[("PATH", path.clone())],
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("You are not currently signed in") && out.contains("OP_SERVICE_ACCOUNT_TOKEN"),
        "{out}"
    );

    let envs = [
        ("PATH", path),
        (
            "OP_SERVICE_ACCOUNT_TOKEN",
            "ops_eyJ-service-account".to_owned(),
        ),
    ];
    let (code, out) = run(&machine, &["op-pull", "dev", "--set", "vault=Ops"], &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1password-cli:vault=Ops"), "{out}");
    assert_eq!(entries(&machine), [("API_TOKEN".into(), "tok=en#1".into())]);
}
