//! A value's whole journey through the binary: a handed-over `.env` →
//! `vsync import` → `.env.<env>` → `push` → `pull` → `vsync sync` to every
//! sink, arriving byte for byte (a multiline PEM, `=`, `#`, quotes,
//! Unicode, trailing spaces), with no value in any output on the way.

use crate::common::Machine;
use vsync_testcontainers::{
    GcpSecretManagerServer, GithubFake, GithubScope, KeyVaultServer, MotoServer, VaultServer,
};

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\nq0B8mH+/abc=\n-----END PRIVATE KEY-----\n";
const QUERY: &str = "a=b # not a comment \"quoted\" 'too' ";
const UNICODE: &str = "naïve café — 東京 🔑";

fn handover() -> String {
    vsync_engine::dotenv::render([("TLS_KEY", PEM), ("QUERY", QUERY), ("UNICODE", UNICODE)])
        .unwrap()
        .to_string()
}

/// Runs vsync with `envs`, asserts success and that no value shows.
async fn ok(machine: &Machine, args: &[&str], envs: &[(&str, String)]) -> String {
    let mut command = machine.command(args);
    for (name, value) in envs {
        command.env(name, value);
    }
    let never_shown = [
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw",
        "not a comment",
        "東京",
    ];
    let (code, both) = crate::output_without(command, &never_shown).await;
    assert_eq!(code, Some(0), "vsync {args:?}:\n{both}");
    both
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pem_travels_from_import_through_push_and_pull_to_every_sink_unchanged() {
    let machine = Machine::new();
    ok(&machine, &["init", "dev", "--repo=acme_web"], &[]).await;
    let file = machine.home.join("handover.env");
    std::fs::write(&file, handover()).unwrap();
    let set = format!("file={}", file.display());
    ok(
        &machine,
        &["import", "dev", "--from", "dotenv", "--set", &set, "--push"],
        &[],
    )
    .await;

    // The vault folder is gone from this checkout; pull brings it back.
    let env_file = machine.vault().join(".env.dev");
    let imported = std::fs::read(&env_file).unwrap();
    std::fs::remove_file(&env_file).unwrap();
    ok(&machine, &["pull", "dev", "--force"], &[]).await;
    assert_eq!(std::fs::read(&env_file).unwrap(), imported);

    let expected = [("TLS_KEY", PEM), ("QUERY", QUERY), ("UNICODE", UNICODE)];

    let github = GithubFake::start().await.unwrap();
    let envs = [
        ("GITHUB_API_URL", github.endpoint()),
        ("GITHUB_TOKEN", GithubFake::TOKEN.to_owned()),
    ];
    ok(
        &machine,
        &["sync", "dev", "gh", "--gh-repo=acme/api"],
        &envs,
    )
    .await;
    let scope = GithubScope::Environment("acme/api".into(), "dev".into());
    for (key, value) in expected {
        assert_eq!(
            github.value(&scope, key).as_deref().map(|v| v.as_str()),
            Some(value),
            "gh {key}"
        );
    }

    let vault = VaultServer::start().await.unwrap();
    let envs = [("VAULT_TOKEN", VaultServer::ROOT_TOKEN.to_owned())];
    let addr = format!("--vault-addr={}", vault.address());
    ok(
        &machine,
        &["sync", "dev", "vault", &addr, "--vault-path=apps/web"],
        &envs,
    )
    .await;
    let data = vault.data("secret", "apps/web").unwrap();
    for (key, value) in expected {
        assert_eq!(data[key], value, "vault {key}");
    }

    let gcp = GcpSecretManagerServer::start("acme-prod").await.unwrap();
    let envs = [
        ("VSYNC_GCP_ENDPOINT", gcp.endpoint()),
        (
            "GOOGLE_OAUTH_ACCESS_TOKEN",
            GcpSecretManagerServer::ADMIN_TOKEN.to_owned(),
        ),
    ];
    ok(
        &machine,
        &["sync", "dev", "gcp", "--gcp-project=acme-prod"],
        &envs,
    )
    .await;
    for (key, value) in expected {
        assert_eq!(
            gcp.value(key).as_deref(),
            Some(value.as_bytes()),
            "gcp {key}"
        );
    }

    let azure = KeyVaultServer::start().await.unwrap();
    let ca_file = machine.home.join("keyvault-ca.pem");
    std::fs::write(&ca_file, azure.ca_pem()).unwrap();
    let envs = [
        ("VSYNC_AZURE_VAULT_URL", azure.url()),
        ("VSYNC_AZURE_CA_FILE", ca_file.display().to_string()),
        ("AZURE_ACCESS_TOKEN", KeyVaultServer::TOKEN.to_owned()),
        (
            "VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION",
            "1".to_owned(),
        ),
    ];
    ok(
        &machine,
        &["sync", "dev", "azure", "--azure-vault=acme-prod"],
        &envs,
    )
    .await;
    for (key, value) in expected {
        let name = key.replace('_', "-");
        assert_eq!(azure.value(&name).as_deref(), Some(value), "azure {key}");
    }

    let moto = MotoServer::start().await.unwrap();
    let envs = [
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", moto.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret_access_key().to_owned()),
    ];
    let region = format!("--aws-region={}", moto.region());
    ok(&machine, &["sync", "dev", "aws", &region], &envs).await;
    // AWS keeps what it was given: read it back through the AWS source into
    // another env and compare the bytes.
    ok(&machine, &["init", "check", "--repo=acme_web"], &[]).await;
    ok(
        &machine,
        &[
            "import",
            "check",
            "--from",
            "aws",
            "--set",
            &format!("region={}", moto.region()),
        ],
        &envs,
    )
    .await;
    let text =
        std::fs::read_to_string(machine.checkout.join("infra/vault/check/.env.check")).unwrap();
    let parsed = vsync_engine::dotenv::parse(&text);
    assert_eq!(parsed.problems, []);
    for (key, value) in expected {
        let entry = parsed.entries.iter().find(|e| e.key == key).expect(key);
        assert_eq!(entry.value.as_str(), value, "aws {key}");
    }
}
