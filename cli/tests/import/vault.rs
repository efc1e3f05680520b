//! vault: `vsync import dev --from vault` (and tsafe's `vsync vault-pull
//! dev`) through the binary against the Vault fake: a folder of KV v2
//! secrets walked recursively, each field a key (a multiline PEM and a JSON
//! number included), a re-import that writes nothing, a change at the
//! source taken, a refused token (exit 2, naming VAULT_TOKEN) and an
//! AppRole login at a moved mount — with no value in any output.

use crate::common::Machine;
use serde_json::json;
use vsync_testcontainers::VaultServer;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----\n";

/// Values no output may ever show.
const SECRETS: [&str; 4] = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "s3cret-db",
    "rotated-db",
    "k-vault-123",
];

/// Runs `args` with the fake's address and `envs`; the exit code and
/// everything printed, checked for values.
async fn run(
    machine: &Machine,
    server: &VaultServer,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut command = machine.command(args);
    // The Kubernetes variables are not among those the shared list strips.
    command
        .env("VAULT_ADDR", server.address())
        .env_remove("VAULT_K8S_ROLE")
        .env_remove("VAULT_K8S_TOKEN_PATH");
    for (name, value) in envs {
        command.env(name, value);
    }
    crate::output_without(command, &SECRETS).await
}

fn values(machine: &Machine) -> Vec<(String, String)> {
    crate::sorted_entries(&std::fs::read_to_string(machine.vault().join(".env.dev")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_folder_is_imported_field_by_field_and_the_alias_takes_a_change() {
    let server = VaultServer::start().await.unwrap();
    server.edit_outside(
        "secret",
        "apps/web/db",
        "DATABASE_URL",
        json!("postgres://app:s3cret-db@db/app"),
    );
    server.edit_outside("secret", "apps/web/db", "DB_PORT", json!(5432));
    server.edit_outside("secret", "apps/web/certs/tls", "TLS_KEY", json!(PEM));
    server.edit_outside("secret", "apps/other/x", "NOT_MINE", json!("elsewhere"));
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let token = [("VAULT_TOKEN", VaultServer::READ_ONLY_TOKEN)];
    let import = ["import", "dev", "--from", "vault", "--set", "path=apps/web"];

    let (code, out) = run(&machine, &server, &import, &token).await;
    assert_eq!(code, Some(0), "{out}");
    for key in ["DATABASE_URL", "DB_PORT", "TLS_KEY"] {
        assert!(out.contains(&format!("add       {key}")), "{out}");
    }
    assert_eq!(
        values(&machine),
        [
            (
                "DATABASE_URL".into(),
                "postgres://app:s3cret-db@db/app".into()
            ),
            ("DB_PORT".into(), "5432".into()),
            ("TLS_KEY".into(), PEM.into()),
        ]
    );

    let env_file = machine.vault().join(".env.dev");
    let written = std::fs::read(&env_file).unwrap();
    let (code, out) = run(&machine, &server, &import, &token).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("wrote 0"), "{out}");
    assert_eq!(std::fs::read(&env_file).unwrap(), written);

    // tsafe's alias, after a rotation at the source.
    server.edit_outside(
        "secret",
        "apps/web/db",
        "DATABASE_URL",
        json!("postgres://app:rotated-db@db/app"),
    );
    let (code, out) = run(
        &machine,
        &server,
        &["vault-pull", "dev", "--set", "path=apps/web"],
        &token,
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("change    DATABASE_URL"), "{out}");
    assert!(values(&machine).contains(&(
        "DATABASE_URL".into(),
        "postgres://app:rotated-db@db/app".into()
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_names_it_and_approle_logs_in_at_its_mount() {
    let server = VaultServer::start().await.unwrap();
    server.edit_outside("secret", "ci/deploy", "API_KEY", json!("k-vault-123"));
    server.enable_approle("ci-approle");
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let import = [
        "import",
        "dev",
        "--from",
        "vault",
        "--set",
        "path=ci/deploy",
    ];

    let (code, out) = run(
        &machine,
        &server,
        &import,
        &[("VAULT_TOKEN", "hvs.revoked")],
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("access denied") && out.contains("VAULT_TOKEN"),
        "{out}"
    );
    assert!(!machine.vault().join(".env.dev").exists());

    let approle = [
        ("VAULT_ROLE_ID", VaultServer::ROLE_ID),
        ("VAULT_SECRET_ID", VaultServer::SECRET_ID),
    ];
    let mut moved = import.to_vec();
    moved.extend(["--set", "approleMount=ci-approle"]);
    let (code, out) = run(&machine, &server, &moved, &approle).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("add       API_KEY"), "{out}");
    assert_eq!(values(&machine), [("API_KEY".into(), "k-vault-123".into())]);
    assert_eq!(server.logins(), 1);
}
