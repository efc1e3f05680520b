//! azure: `vsync import dev --from azure --set vaultName=…` and tsafe's
//! `vsync kv-pull dev --set vaultName=…` through the binary against the Key
//! Vault fake, passed as `vsync sync` gets it (the vault URL, its CA in a
//! 0600 file, challenge verification off for 127.0.0.1) with the harness's
//! service principal: `-` names come back as `_` keys, a multiline PEM
//! byte for byte, a disabled secret reported and left out, one token per
//! run, a re-import that rewrites nothing, a rotation taken by the alias,
//! and a refused token (exit 2, naming the credentials to fix) — with no
//! value, token or client secret in any output.

use std::os::unix::fs::MetadataExt;

use crate::common::Machine;
use vsync_testcontainers::KeyVaultServer;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----\n";

/// What no output may ever show: values, the token, the client secret.
const NEVER_SHOWN: [&str; 6] = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "s3cret-db",
    "rotated-db",
    "disabled-value",
    KeyVaultServer::TOKEN,
    KeyVaultServer::CLIENT_SECRET,
];

/// The binary's settings for the fake with the harness's service
/// principal; the fake is its own Entra ID authority.
fn envs(machine: &Machine, server: &KeyVaultServer) -> Vec<(&'static str, String)> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let ca_file = machine.home.join("keyvault-ca.pem");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&ca_file)
        .and_then(|mut file| file.write_all(server.ca_pem().as_bytes()))
        .unwrap();
    vec![
        ("VSYNC_AZURE_VAULT_URL", server.url()),
        ("VSYNC_AZURE_CA_FILE", ca_file.display().to_string()),
        ("AZURE_TENANT_ID", KeyVaultServer::TENANT_ID.to_owned()),
        ("AZURE_CLIENT_ID", KeyVaultServer::CLIENT_ID.to_owned()),
        (
            "AZURE_CLIENT_SECRET",
            KeyVaultServer::CLIENT_SECRET.to_owned(),
        ),
        ("AZURE_AUTHORITY_HOST", server.url()),
        (
            "VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION",
            "1".to_owned(),
        ),
    ]
}

/// Runs `args` with `envs`: the exit code and everything printed, checked
/// for what must never show.
async fn run(machine: &Machine, args: &[&str], envs: &[(&str, String)]) -> (Option<i32>, String) {
    let mut command = machine.command(args);
    for (name, value) in envs {
        command.env(name, value);
    }
    crate::output_without(command, &NEVER_SHOWN).await
}

fn values(machine: &Machine) -> Vec<(String, String)> {
    crate::sorted_entries(&std::fs::read_to_string(machine.vault().join(".env.dev")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_vault_is_imported_and_kv_pull_takes_a_rotation() {
    let server = KeyVaultServer::start().await.unwrap();
    server.set_outside("DATABASE-URL", "postgres://app:s3cret-db@db/app");
    server.set_outside("TLS-KEY", PEM);
    server.set_outside("OLD-TOKEN", "disabled-value");
    server.disable_outside("OLD-TOKEN");
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let envs = envs(&machine, &server);
    let import = [
        "import",
        "dev",
        "--from",
        "azure",
        "--set",
        "vaultName=acme-prod",
    ];

    let (code, out) = run(&machine, &import, &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("add       DATABASE_URL (from DATABASE-URL)"),
        "{out}"
    );
    assert!(out.contains("add       TLS_KEY (from TLS-KEY)"), "{out}");
    assert!(
        out.contains("disabled at the source (not imported) OLD-TOKEN"),
        "{out}"
    );
    let origin = format!(
        "azure-key-vault:vault={}",
        &server.url()["https://".len()..]
    );
    assert!(out.contains(&origin), "{out}");
    assert_eq!(
        values(&machine),
        [
            (
                "DATABASE_URL".into(),
                "postgres://app:s3cret-db@db/app".into()
            ),
            ("TLS_KEY".into(), PEM.into()),
        ]
    );
    assert_eq!(server.token_requests(), 1, "one token for the whole import");

    // Unchanged at the source: the file keeps its bytes and its mtime.
    let env_file = machine.vault().join(".env.dev");
    let written = std::fs::read(&env_file).unwrap();
    let mtime = |path| {
        let meta = std::fs::metadata(path).unwrap();
        (meta.mtime(), meta.mtime_nsec())
    };
    let before = mtime(&env_file);
    let (code, out) = run(&machine, &import, &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("wrote 0"), "{out}");
    assert_eq!(std::fs::read(&env_file).unwrap(), written);
    assert_eq!(mtime(&env_file), before);

    // tsafe's alias, after a rotation at the source.
    server.set_outside("DATABASE-URL", "postgres://app:rotated-db@db/app");
    let (code, out) = run(
        &machine,
        &["kv-pull", "dev", "--set", "vaultName=acme-prod"],
        &envs,
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
async fn a_refused_token_names_the_credentials_and_writes_nothing() {
    let server = KeyVaultServer::start().await.unwrap();
    server.set_outside("DATABASE-URL", "postgres://app:s3cret-db@db/app");
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let mut envs: Vec<(&str, String)> = envs(&machine, &server)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("AZURE_"))
        .collect();
    envs.push(("AZURE_ACCESS_TOKEN", "an-expired-token".to_owned()));

    let (code, out) = run(
        &machine,
        &["kv-pull", "dev", "--set", "vaultName=acme-prod"],
        &envs,
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    for fix in [
        "HTTP 401",
        "AZURE_ACCESS_TOKEN",
        "AZURE_CLIENT_SECRET",
        "az login",
    ] {
        assert!(out.contains(fix), "{fix}: {out}");
    }
    assert!(!out.contains("an-expired-token"), "{out}");
    assert!(!machine.vault().join(".env.dev").exists());

    // No vault named: the setting to pass is named.
    let (code, out) = run(&machine, &["kv-pull", "dev"], &[]).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("--set vaultName=<name>"), "{out}");
}
