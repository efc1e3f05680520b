//! `vsync sync` end to end: the binary, a vault on the local store, and the
//! harness's services as platforms: the GitHub fake (which opens every
//! sealed box) in depth, then Vault KV, GCP and AWS (real moto) through
//! their saved routing.
//! The routing flag is saved for the next run; a re-sync writes nothing;
//! a collision is refused before any write (exit 12); a failure halfway is
//! reported as partial (exit 11) and the re-run finishes it; `--json` is
//! the machine report.

mod common;

use common::Machine;
use vsync_testcontainers::{GithubFake, GithubScope};

const ENV_FILE: &str = "\
# synced to GitHub Actions
DATABASE_URL=postgres://app:s3cret@db/app
API_KEY=\"k-123\"
SERVICE_ACCOUNT_PATH=sa.json
";

async fn machine_with_vault() -> Machine {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    std::fs::write(machine.vault().join(".env.dev"), ENV_FILE).unwrap();
    std::fs::write(
        machine.vault().join("sa.json"),
        "{\"type\":\"service_account\"}\n",
    )
    .unwrap();
    machine
}

fn sync_command(machine: &Machine, fake: &GithubFake, args: &[&str]) -> tokio::process::Command {
    let mut full = vec!["sync", "dev", "gh"];
    full.extend_from_slice(args);
    let mut command = machine.command(&full);
    command
        .env("GITHUB_API_URL", fake.endpoint())
        .env("GITHUB_TOKEN", GithubFake::TOKEN)
        .env_remove("GH_TOKEN");
    command
}

async fn sync(
    machine: &Machine,
    fake: &GithubFake,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let output = sync_command(machine, fake, args).output().await.unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// An endpoint or login of whoever runs the tests (a poisoned
/// `GITHUB_API_URL`, `VAULT_NAMESPACE`, …) never reaches the `vsync` child:
/// the helper's command removes each one (`get_envs` reports a removal as
/// `None`), and each test sets exactly the endpoint it means to test.
#[test]
fn the_vsync_command_removes_platform_endpoints_and_credentials() {
    use std::ffi::{OsStr, OsString};

    let machine = Machine::new();
    let command = machine.command(&["sync", "dev", "gh"]);
    let envs: std::collections::HashMap<&OsStr, Option<&OsStr>> =
        command.as_std().get_envs().collect();
    for name in [
        "GITHUB_API_URL",
        "GH_HOST",
        "GH_CONFIG_DIR",
        "VAULT_NAMESPACE",
        "VAULT_ADDR",
        "VSYNC_GCP_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "VAULT_TOKEN",
    ] {
        assert_eq!(
            envs.get(OsStr::new(name)),
            Some(&None),
            "{name} is removed from the child's environment"
        );
    }

    // Service-specific AWS endpoints are found by prefix in the environment
    // (the test process's in `Machine::command`; a given one here, since
    // setting variables on this process would race the other tests).
    let pair = |name: &str, value: &str| (OsString::from(name), OsString::from(value));
    let removed = common::variables_removed_from_child([
        pair("AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://real.example"),
        pair("AWS_ENDPOINT_URL_S3", "https://real.example"),
        pair("PATH", "/usr/bin"),
    ]);
    for name in ["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_S3"] {
        assert!(removed.contains(&OsString::from(name)), "{name}");
    }
    assert!(!removed.contains(&OsString::from("PATH")));
}

fn env_scope() -> GithubScope {
    GithubScope::Environment("acme/api".into(), "dev".into())
}

fn value(fake: &GithubFake, name: &str) -> Option<String> {
    fake.value(&env_scope(), name)
        .map(|value| value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_creates_then_writes_nothing_and_remembers_the_repository() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;

    let (code, stdout, stderr) = sync(
        &machine,
        &fake,
        &["--gh-repo=acme/api", "--inline-file-suffix=_PATH"],
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("Parser policy:"), "{stderr}");
    assert!(stdout.contains("3 created"), "{stdout}");
    assert_eq!(
        value(&fake, "DATABASE_URL").as_deref(),
        Some("postgres://app:s3cret@db/app")
    );
    assert_eq!(value(&fake, "API_KEY").as_deref(), Some("k-123"));
    assert_eq!(
        value(&fake, "SERVICE_ACCOUNT").as_deref(),
        Some("{\"type\":\"service_account\"}\n"),
        "a file reference syncs the file's content under the stem"
    );
    assert!(
        !stdout.contains("s3cret") && !stderr.contains("s3cret"),
        "values never printed"
    );
    assert_eq!(fake.counts().public_key, 1);

    // No --gh-repo this time: it was saved in the env config.
    let puts = fake.counts().puts;
    let (code, stdout, _) = sync(&machine, &fake, &["--inline-file-suffix=_PATH"]).await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("nothing to write"), "{stdout}");
    assert_eq!(
        fake.counts().puts,
        puts,
        "an unchanged vault writes nothing"
    );
    let (code, ..) = sync(
        &machine,
        &fake,
        &["--inline-file-suffix=_PATH", "--detailed-exitcode"],
    )
    .await;
    assert_eq!(
        code,
        Some(10),
        "a no-op is told apart under --detailed-exitcode"
    );

    // One changed value, seen first in a dry run, then written.
    let changed = ENV_FILE.replace("k-123", "k-456");
    std::fs::write(machine.vault().join(".env.dev"), changed).unwrap();
    let (code, stdout, _) = sync(
        &machine,
        &fake,
        &["--inline-file-suffix=_PATH", "--dry-run", "--json"],
    )
    .await;
    assert_eq!(code, Some(0));
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["status"], "planned");
    assert_eq!(plan["platform"], "github-actions");
    let actions: Vec<(&str, &str)> = plan["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["name"].as_str().unwrap(),
                line["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("DATABASE_URL", "unchanged"),
            ("API_KEY", "update"),
            ("SERVICE_ACCOUNT", "unchanged")
        ]
    );
    assert!(!stdout.contains("k-456"), "no values in the plan");
    assert_eq!(
        value(&fake, "API_KEY").as_deref(),
        Some("k-123"),
        "a dry run writes nothing"
    );

    let (code, stdout, _) = sync(&machine, &fake, &["--inline-file-suffix=_PATH"]).await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("1 updated"), "{stdout}");
    assert_eq!(fake.counts().puts, puts + 1);
    assert_eq!(value(&fake, "API_KEY").as_deref(), Some("k-456"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collision_is_refused_before_any_write_with_exit_12() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;
    std::fs::write(
        machine.vault().join(".env.dev"),
        "A=1\ndb_pass=x\nDB_PASS=y\n",
    )
    .unwrap();
    let (code, stdout, stderr) = sync(&machine, &fake, &["--gh-repo=acme/api"]).await;
    assert_eq!(code, Some(12), "{stdout}\n{stderr}");
    assert!(stderr.contains("db_pass, DB_PASS"), "{stderr}");
    assert_eq!(fake.counts().puts, 0, "nothing written, not even A");
    assert!(fake.names(&env_scope()).is_empty());
}

const PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7
q0B8mH+/abc=
-----END PRIVATE KEY-----";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multiline_pem_and_a_value_with_equals_hash_and_quotes_arrive_byte_for_byte() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;
    // CRLF line ends, as an editor on Windows saves them: the value's lines
    // are joined with `\n`.
    let env_file =
        format!("TLS_KEY=\"{PEM}\"\nQUERY=\"a=b # not a comment \"quoted\" 'too'\"\nAFTER=1\n")
            .replace('\n', "\r\n");
    std::fs::write(machine.vault().join(".env.dev"), env_file).unwrap();

    let (code, stdout, stderr) = sync(&machine, &fake, &["--gh-repo=acme/api"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(value(&fake, "TLS_KEY").as_deref(), Some(PEM));
    assert_eq!(
        value(&fake, "QUERY").as_deref(),
        Some("a=b # not a comment \"quoted\" 'too'")
    );
    assert_eq!(value(&fake, "AFTER").as_deref(), Some("1"));
    let mut names = fake.names(&env_scope());
    names.sort();
    assert_eq!(
        names,
        ["AFTER", "QUERY", "TLS_KEY"],
        "no line of the PEM became a secret of its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclosed_quote_refuses_the_sync_with_exit_12_naming_the_line() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;
    // The closing quote forgotten: upstream synced `"-----BEGIN…` alone.
    let broken = PEM.replace(
        "-----END PRIVATE KEY-----",
        "-----END PRIVATE KEY-----\nB=2",
    );
    std::fs::write(
        machine.vault().join(".env.dev"),
        format!("A=1\n\nTLS_KEY=\"{broken}\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = sync(&machine, &fake, &["--gh-repo=acme/api"]).await;
    assert_eq!(code, Some(12), "{stdout}\n{stderr}");
    assert!(stderr.contains(".env.dev line 3: "), "{stderr}");
    assert!(stderr.contains("close the quote"), "{stderr}");
    assert!(
        stderr.contains(".env.dev lines 4, 6: "),
        "the PEM lines without `=` are named too: {stderr}"
    );
    for secret in ["BEGIN PRIVATE", "MIIEvQ", "END PRIVATE"] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{stderr}"
        );
    }
    assert_eq!(fake.counts().puts, 0, "nothing written, not even A");
    assert!(fake.names(&env_scope()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_halfway_exits_11_and_a_rerun_finishes_the_rest() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;
    fake.faults().break_writes_of("API_KEY");
    let (code, stdout, stderr) = sync(&machine, &fake, &["--gh-repo=acme/api"]).await;
    assert_eq!(code, Some(11), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert_eq!(value(&fake, "API_KEY"), None);
    assert!(value(&fake, "DATABASE_URL").is_some());

    fake.faults().heal();
    let puts = fake.counts().puts;
    let (code, stdout, _) = sync(&machine, &fake, &[]).await;
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        fake.counts().puts,
        puts + 1,
        "only the failed secret is written again"
    );
    assert_eq!(value(&fake, "API_KEY").as_deref(), Some("k-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_routing_and_token_name_the_fix() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;
    let (code, _, stderr) = sync(&machine, &fake, &[]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--gh-repo"), "{stderr}");

    // No token anywhere: a `gh` that is not logged in does not help.
    let bin = fake_gh(
        &machine,
        "echo 'You are not logged into any GitHub hosts.' >&2; exit 1",
    );
    let output = sync_command(&machine, &fake, &["--gh-repo=acme/api"])
        .env_remove("GITHUB_TOKEN")
        .env("PATH", &bin)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("GITHUB_TOKEN") && stderr.contains("gh auth login"),
        "{stderr}"
    );

    let (code, _, stderr) = sync(&machine, &fake, &["--gh-repo=acme/nope"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_works_like_the_flags_and_a_wrong_setting_changes_nothing() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;
    let (code, stdout, stderr) = sync(
        &machine,
        &fake,
        &["--set", "repo=acme/api", "--inline-file-suffix=_PATH"],
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 created"), "{stdout}");
    let config_path = machine.home.join(".config/vsync/acme_web/env_dev");
    let base = vsync_local::ConfigBase::at(machine.home.join(".config/vsync"));
    let config = vsync_local::EnvConfig::load_for(&base, "acme_web", "dev").unwrap();
    assert_eq!(
        serde_json::Value::Object(config.sync.unwrap()),
        serde_json::json!({"gh": {"repo": "acme/api"}}),
        "--set saves what the flag saves"
    );
    let saved = std::fs::read(&config_path).unwrap();

    for (args, expected) in [
        (
            &["--vault-addr=https://vault.example"][..],
            "--vault-addr is a setting of vault-kv, not of github-actions",
        ),
        (
            &["--set", "colour=red"][..],
            "github-actions has no setting \"colour\"; its settings are repo, scope, org, environment, tokenFile",
        ),
        (
            &["--gh-scope=team"][..],
            "unknown variant `team`, expected one of `environment`, `repository`, `organization`",
        ),
    ] {
        let (code, _, stderr) = sync(&machine, &fake, args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read(&config_path).unwrap(),
            saved,
            "{args:?} wrote"
        );
    }

    let output = machine.run(&["sync", "dev", "github"]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown sync target \"github\"") && stderr.contains("gh (github-actions)"),
        "{stderr}"
    );
}

/// Runs `vsync sync dev <target> <args>` with `envs` set.
async fn sync_to(
    machine: &Machine,
    target: &str,
    args: &[&str],
    envs: &[(&str, String)],
) -> (Option<i32>, String, String) {
    let mut full = vec!["sync", "dev", target];
    full.extend_from_slice(args);
    let mut command = machine.command(&full);
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command.output().await.unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_kv_target_writes_one_map_and_then_nothing() {
    let vault = vsync_testcontainers::VaultServer::start().await.unwrap();
    let machine = machine_with_vault().await;
    let envs = [(
        "VAULT_TOKEN",
        vsync_testcontainers::VaultServer::ROOT_TOKEN.to_owned(),
    )];
    let addr = format!("--vault-addr={}", vault.address());
    let (code, stdout, stderr) =
        sync_to(&machine, "vault", &[&addr, "--vault-path=apps/web"], &envs).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let data = vault
        .data("secret", "apps/web")
        .expect("the map is written");
    assert_eq!(data["DATABASE_URL"], "postgres://app:s3cret@db/app");
    assert_eq!(data["API_KEY"], "k-123");
    let version = vault.current_version("secret", "apps/web");

    // Routing saved; the long target name works too; the token `vault
    // login` leaves behind is used; nothing to write.
    std::fs::write(
        machine.home.join(".vault-token"),
        vsync_testcontainers::VaultServer::ROOT_TOKEN,
    )
    .unwrap();
    let (code, stdout, stderr) = sync_to(&machine, "vault-kv", &[], &[]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("nothing to write"), "{stdout}");
    assert_eq!(vault.current_version("secret", "apps/web"), version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_target_creates_secrets_and_adds_no_version_when_unchanged() {
    let gcp = vsync_testcontainers::GcpSecretManagerServer::start("acme-prod")
        .await
        .unwrap();
    let machine = machine_with_vault().await;
    let envs = [
        ("VSYNC_GCP_ENDPOINT", gcp.endpoint()),
        (
            "GOOGLE_OAUTH_ACCESS_TOKEN",
            vsync_testcontainers::GcpSecretManagerServer::ADMIN_TOKEN.to_owned(),
        ),
    ];
    let (code, stdout, stderr) =
        sync_to(&machine, "gcp", &["--gcp-project=acme-prod"], &envs).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(gcp.value("API_KEY").as_deref(), Some(&b"k-123"[..]));
    assert_eq!(gcp.version_count("DATABASE_URL"), 1);

    let (code, stdout, _) = sync_to(
        &machine,
        "gcp-secret-manager",
        &["--detailed-exitcode"],
        &envs,
    )
    .await;
    assert_eq!(code, Some(10), "{stdout}");
    assert_eq!(
        gcp.version_count("DATABASE_URL"),
        1,
        "an unchanged value adds no version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_target_against_moto_creates_then_writes_nothing_with_a_profile() {
    let moto = vsync_testcontainers::MotoServer::start().await.unwrap();
    let machine = machine_with_vault().await;
    let envs = [
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", moto.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret_access_key().to_owned()),
    ];
    let region = format!("--aws-region={}", moto.region());
    let (code, stdout, stderr) = sync_to(
        &machine,
        "aws",
        &[&region, "--aws-secret-prefix=web/dev/"],
        &envs,
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 created"), "{stdout}");
    assert!(stdout.contains("web/dev/DATABASE_URL"), "{stdout}");
    let writes = moto.faults().writes();

    // No key in the environment: the standard chain finds the profile, as
    // for a developer after `aws configure` or `aws sso login`.
    let aws_dir = machine.home.join(".aws");
    std::fs::create_dir_all(&aws_dir).unwrap();
    std::fs::write(
        aws_dir.join("credentials"),
        format!(
            "[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.access_key_id(),
            moto.secret_access_key()
        ),
    )
    .unwrap();
    let envs = [
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ("AWS_PROFILE", "ci".to_owned()),
    ];
    let (code, stdout, stderr) = sync_to(&machine, "aws-secrets-manager", &[], &envs).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("nothing to write"), "{stdout}");
    assert_eq!(
        moto.faults().writes(),
        writes,
        "an unchanged vault writes nothing"
    );

    // No key, no profile, no role: the error says what to set.
    let nowhere = machine.home.join("no-such-file").display().to_string();
    let envs = [
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ("AWS_SHARED_CREDENTIALS_FILE", nowhere.clone()),
        ("AWS_CONFIG_FILE", nowhere),
    ];
    let (code, stdout, stderr) = sync_to(&machine, "aws", &[], &envs).await;
    assert_ne!(code, Some(0), "{stdout}");
    assert!(
        stderr.contains("no AWS credentials found") && stderr.contains("AWS_PROFILE"),
        "{stderr}"
    );
    assert_eq!(moto.faults().writes(), writes);
}

/// A `gh` that runs `script` (for `gh auth token`, the only command vsync
/// runs), first on the PATH returned.
fn fake_gh(machine: &Machine, script: &str) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;

    let bin = machine.home.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gh = bin.join("gh");
    std::fs::write(&gh, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o700)).unwrap();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&rest))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_github_token_comes_from_a_file_or_the_gh_cli() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;

    // --gh-token-file: read from a file, not from the command line.
    let token_file = machine.home.join("gh-token");
    std::fs::write(&token_file, format!("{}\n", GithubFake::TOKEN)).unwrap();
    let flag = format!("--gh-token-file={}", token_file.display());
    let output = sync_command(&machine, &fake, &["--gh-repo=acme/api", &flag])
        .env_remove("GITHUB_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(value(&fake, "API_KEY").as_deref(), Some("k-123"));

    // No variable, no flag: `gh auth token` for the API's host, as
    // upstream's `gh secret set` would have authenticated.
    let host = fake
        .endpoint()
        .split("://")
        .nth(1)
        .unwrap()
        .split([':', '/'])
        .next()
        .unwrap()
        .to_owned();
    let bin = fake_gh(
        &machine,
        &format!(
            "[ \"$*\" = \"auth token --hostname {host}\" ] || exit 1\n\
             [ -z \"$AWS_SECRET_ACCESS_KEY$VAULT_TOKEN$AZURE_CLIENT_SECRET\" ] || exit 1\n\
             echo {}",
            GithubFake::TOKEN
        ),
    );
    // `gh` must not see the cloud credentials vsync itself was given.
    let output = sync_command(&machine, &fake, &["--detailed-exitcode"])
        .env_remove("GITHUB_TOKEN")
        .env("AWS_SECRET_ACCESS_KEY", "not-for-gh")
        .env("VAULT_TOKEN", "not-for-gh")
        .env("AZURE_CLIENT_SECRET", "not-for-gh")
        .env("PATH", &bin)
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---- Azure Key Vault ------------------------------------------------------

/// The binary's settings for the Key Vault fake with the harness's service
/// principal: the fake serves the vault and Entra ID's token endpoint (so
/// it is the authority host too), its CA is read from a 0600 file, and
/// challenge resource verification is off because the vault is on
/// 127.0.0.1, outside `vault.azure.net`.
fn azure_envs(
    machine: &Machine,
    server: &vsync_testcontainers::KeyVaultServer,
) -> Vec<(&'static str, String)> {
    use vsync_testcontainers::KeyVaultServer;

    let ca_file = machine.home.join("keyvault-ca.pem");
    write_private(&ca_file, server.ca_pem());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_target_with_a_client_secret_creates_then_writes_nothing() {
    use vsync_testcontainers::KeyVaultServer;

    let server = KeyVaultServer::start().await.unwrap();
    let machine = machine_with_vault().await;
    let envs = azure_envs(&machine, &server);

    let (code, stdout, stderr) =
        sync_to(&machine, "azure", &["--azure-vault=acme-prod"], &envs).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 created"), "{stdout}");
    assert_eq!(
        server.names(),
        ["API-KEY", "DATABASE-URL", "SERVICE-ACCOUNT-PATH"],
        "`_` becomes `-`"
    );
    assert_eq!(
        server.value("DATABASE-URL").as_deref(),
        Some("postgres://app:s3cret@db/app")
    );
    assert_eq!(server.value("API-KEY").as_deref(), Some("k-123"));
    assert_eq!(
        server
            .tags("API-KEY")
            .and_then(|tags| tags.get("managed-by").cloned())
            .as_deref(),
        Some("vsync")
    );
    assert_eq!(
        server.token_requests(),
        1,
        "one token for the whole sync, not one per request"
    );
    assert!(
        server.bearer_requests() >= 4,
        "the listing and three writes"
    );
    for output in [&stdout, &stderr] {
        assert!(!output.contains("s3cret"), "values never printed");
        assert!(!output.contains(KeyVaultServer::CLIENT_SECRET));
        assert!(!output.contains(KeyVaultServer::TOKEN));
    }

    let base = vsync_local::ConfigBase::at(machine.home.join(".config/vsync"));
    let config = vsync_local::EnvConfig::load_for(&base, "acme_web", "dev").unwrap();
    assert_eq!(
        serde_json::Value::Object(config.sync.unwrap()),
        serde_json::json!({"azure": {"vaultName": "acme-prod"}}),
        "--azure-vault is saved for next time, under upstream's field name"
    );

    // No --azure-vault this time; nothing changed.
    let (code, stdout, stderr) = sync_to(&machine, "azure", &["--detailed-exitcode"], &envs).await;
    assert_eq!(code, Some(10), "{stdout}\n{stderr}");
    assert_eq!(
        server.versions("DATABASE-URL"),
        1,
        "an unchanged value adds no version"
    );
    assert_eq!(server.versions("API-KEY"), 1);
    assert_eq!(server.token_requests(), 2, "one more run, one more token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_refusals_name_the_fix_and_never_show_the_secret() {
    use vsync_testcontainers::KeyVaultServer;

    let server = KeyVaultServer::start().await.unwrap();
    let machine = machine_with_vault().await;
    let envs = azure_envs(&machine, &server);
    let without = |name: &str| -> Vec<(&'static str, String)> {
        envs.iter()
            .filter(|(key, _)| *key != name)
            .cloned()
            .collect()
    };

    // The vault on 127.0.0.1 answers with a challenge for vault.azure.net:
    // refused before any token is fetched or sent.
    let (code, stdout, stderr) = sync_to(
        &machine,
        "azure",
        &["--azure-vault=acme-prod"],
        &without("VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION"),
    )
    .await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=1"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    assert_eq!(server.bearer_requests(), 0, "no token reached the vault");
    assert_eq!(server.token_requests(), 0, "no token was even fetched");

    // A wrong client secret: Entra ID's reason, not the secret.
    let wrong = "Wr0ng~client.secret_for-the-test";
    let mut wrong_secret = without("AZURE_CLIENT_SECRET");
    wrong_secret.push(("AZURE_CLIENT_SECRET", wrong.to_owned()));
    let (code, stdout, stderr) = sync_to(&machine, "azure", &[], &wrong_secret).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
    assert!(stderr.contains("Invalid client secret"), "{stderr}");
    for output in [&stdout, &stderr] {
        assert!(!output.contains(wrong), "{output}");
        assert!(!output.contains(KeyVaultServer::CLIENT_SECRET), "{output}");
    }
    assert_eq!(server.token_requests(), 1);
    assert_eq!(server.bearer_requests(), 0);

    // Part of the client-secret triple: the missing variable is named.
    let (code, _, stderr) = sync_to(&machine, "azure", &[], &without("AZURE_TENANT_ID")).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("AZURE_TENANT_ID is not set"), "{stderr}");
    assert!(server.names().is_empty(), "nothing was written");
}

/// `contents` written as a 0600 file at `path`.
fn write_private(path: &std::path::Path, contents: &str) {
    use std::io::Write as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).unwrap();
    file.write_all(contents.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_target_uses_application_default_credentials_one_token_per_sync() {
    use vsync_testcontainers::GcpSecretManagerServer as Gcp;
    let gcp = Gcp::start("acme-prod").await.unwrap();
    let machine = machine_with_vault().await;
    let secrets = tempfile::tempdir().unwrap();
    let adc = secrets.path().join("adc.json");
    write_private(&adc, &gcp.authorized_user_json());
    let envs = [
        ("VSYNC_GCP_ENDPOINT", gcp.endpoint()),
        ("GOOGLE_APPLICATION_CREDENTIALS", adc.display().to_string()),
    ];
    let never_printed = [Gcp::REFRESH_TOKEN, Gcp::OAUTH_CLIENT_SECRET, "ya29."];

    let (code, stdout, stderr) =
        sync_to(&machine, "gcp", &["--gcp-project=acme-prod"], &envs).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("3 created"), "{stdout}");
    assert_eq!(gcp.value("API_KEY").as_deref(), Some(&b"k-123"[..]));
    assert_eq!(gcp.token_requests(), 1, "one token for the whole sync");
    for secret in never_printed {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }

    let (code, stdout, _) = sync_to(
        &machine,
        "gcp-secret-manager",
        &["--detailed-exitcode"],
        &envs,
    )
    .await;
    assert_eq!(code, Some(10), "{stdout}");
    assert_eq!(gcp.version_count("DATABASE_URL"), 1);
    assert_eq!(gcp.token_requests(), 2, "one token per sync");

    // No GOOGLE_APPLICATION_CREDENTIALS: gcloud's application-default
    // credentials in HOME are found instead.
    write_private(
        &machine
            .home
            .join(".config/gcloud/application_default_credentials.json"),
        &gcp.authorized_user_json(),
    );
    let (code, stdout, stderr) = sync_to(
        &machine,
        "gcp",
        &["--detailed-exitcode"],
        &[("VSYNC_GCP_ENDPOINT", gcp.endpoint())],
    )
    .await;
    assert_eq!(code, Some(10), "{stdout}\n{stderr}");
    assert_eq!(gcp.token_requests(), 3);
}

/// No credentials anywhere and no metadata server: the probe gives up (after
/// its configured 5s for a silent server, at once for a refused one) with a
/// message naming what to set. No wall-clock bound is asserted: "gives up"
/// is the exit code plus the timeout the message reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_target_without_any_credentials_gives_up_and_names_what_to_set() {
    let gcp = vsync_testcontainers::GcpSecretManagerServer::start("acme-prod")
        .await
        .unwrap();
    let machine = machine_with_vault().await;
    // A "metadata server" that accepts connections and never answers, as a
    // network that black-holes metadata.google.internal would: the kernel
    // completes the handshake into the backlog; nothing ever reads it.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Held for the whole test, so no other process can answer on it.
    let refusing = vsync_testcontainers::unreachable::RefusingAddr::bind().unwrap();
    for (metadata_host, what_happened) in [
        (black_hole.local_addr().unwrap(), "did not answer within 5s"),
        (refusing.addr(), "could not be reached (Connection refused"),
    ] {
        let envs = [
            ("VSYNC_GCP_ENDPOINT", gcp.endpoint()),
            ("GCE_METADATA_HOST", metadata_host.to_string()),
        ];
        let (code, stdout, stderr) =
            sync_to(&machine, "gcp", &["--gcp-project=acme-prod"], &envs).await;
        assert_eq!(code, Some(2), "{stdout}\n{stderr}");
        for needed in [
            "no Google credentials found",
            what_happened,
            "gcloud auth application-default login",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_OAUTH_ACCESS_TOKEN",
            &metadata_host.to_string(),
        ] {
            assert!(stderr.contains(needed), "{needed:?} missing from {stderr}");
        }
    }
    // The timeout came from waiting on the black hole, not from failing to
    // reach it: the probe's connection is still queued there.
    black_hole.set_nonblocking(true).unwrap();
    assert!(
        black_hole.accept().is_ok(),
        "the metadata probe connected to the silent server"
    );
    assert_eq!(gcp.list_calls(), 0, "Secret Manager was never called");
    assert!(gcp.names().is_empty());
}

/// A passphrase rotation keeps what the env's sync records know: the next
/// sync, after one rotation and after another, still writes nothing. A
/// machine left with the old passphrase is refused, not run blind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_rotation_keeps_what_the_sync_records_know() {
    let fake = GithubFake::start().await.unwrap();
    let machine = machine_with_vault().await;
    machine.ok(&["push", "dev"]).await;
    let args = ["--gh-repo=acme/api", "--inline-file-suffix=_PATH"];
    let (code, stdout, stderr) = sync(&machine, &fake, &args).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let puts = fake.counts().puts;
    let old_passphrase = std::fs::read_to_string(machine.key_file()).unwrap();

    for _ in 0..2 {
        machine
            .ok(&["rotate-passphrase", "--env=dev", "--generate", "--no-audit"])
            .await;
        let (code, stdout, stderr) = sync(&machine, &fake, &args).await;
        assert_eq!(code, Some(0), "{stdout}\n{stderr}");
        assert!(stdout.contains("nothing to write"), "{stdout}");
        assert_eq!(fake.counts().puts, puts);
    }

    std::fs::write(machine.key_file(), old_passphrase).unwrap();
    let (code, stdout, stderr) = sync(&machine, &fake, &args).await;
    assert_eq!(code, Some(5), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("was its passphrase rotated on another machine?"),
        "{stderr}"
    );
    assert_eq!(fake.counts().puts, puts);
}
