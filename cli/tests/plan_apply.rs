//! `vsync plan --out` and `vsync plan apply` end to end through the binary:
//! two envs, each synced to three platforms' harness services, one of them
//! fed by an import; a reviewed artifact applied, re-applied, refused when
//! stale or edited; an apply killed mid-way and resumed without a write
//! made twice; never a value in any output.

mod common;

use std::time::Duration;

use common::Machine;
use vsync_testcontainers::{GcpSecretManagerServer, GithubFake, GithubScope, VaultServer};

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----";

/// The harness services, and the variables that point vsync at them.
struct Services {
    github: GithubFake,
    vault: VaultServer,
    gcp: GcpSecretManagerServer,
}

impl Services {
    async fn start() -> Self {
        Services {
            github: GithubFake::start().await.unwrap(),
            vault: VaultServer::start().await.unwrap(),
            gcp: GcpSecretManagerServer::start("acme-prod").await.unwrap(),
        }
    }

    fn command(&self, machine: &Machine, args: &[&str]) -> tokio::process::Command {
        let mut command = machine.command(args);
        command
            .env("GITHUB_API_URL", self.github.endpoint())
            .env("GITHUB_TOKEN", GithubFake::TOKEN)
            .env("VAULT_TOKEN", VaultServer::ROOT_TOKEN)
            .env("VSYNC_GCP_ENDPOINT", self.gcp.endpoint())
            .env(
                "GOOGLE_OAUTH_ACCESS_TOKEN",
                GcpSecretManagerServer::ADMIN_TOKEN,
            );
        command
    }

    async fn run(&self, machine: &Machine, args: &[&str]) -> (Option<i32>, String, String) {
        let output = self.command(machine, args).output().await.unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// Writes every platform served so far.
    fn writes(&self) -> [usize; 3] {
        [
            self.github.faults().writes(),
            self.vault.faults().writes(),
            self.gcp.faults().writes(),
        ]
    }
}

/// The GitHub environment of `acme/api` an env syncs to (its name, by
/// default).
fn environment(env: &str) -> GithubScope {
    GithubScope::Environment("acme/api".to_owned(), env.to_owned())
}

/// Every value of the test: none may appear in any output.
const VALUES: &[&str] = &[
    "dev-db-password-5c1e",
    "dev-api-key-77aa41",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "prod-db-password-0f9b",
    "prod-api-key-3d6e20",
    "imported-token-a81c3f",
    "prod-api-key-rotated-e4",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_envs_three_targets_and_an_import_reviewed_applied_and_guarded() {
    let services = Services::start().await;
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    machine.ok(&["init", "prod"]).await;
    // One GCP project in the harness: the two envs' names differ.
    std::fs::write(
        machine.vault().join(".env.dev"),
        format!(
            "DEV_DB_URL=postgres://app:dev-db-password-5c1e@db/app\nDEV_API_KEY=dev-api-key-77aa41\nDEV_PEM=\"{PEM}\"\n"
        ),
    )
    .unwrap();
    let prod_env = machine.checkout.join("infra/vault/prod/.env.prod");
    std::fs::write(
        &prod_env,
        "PROD_DB_URL=postgres://app:prod-db-password-0f9b@db/app\nPROD_API_KEY=prod-api-key-3d6e20\n",
    )
    .unwrap();
    let source = machine.home.join("handed-over.env");
    std::fs::write(&source, "NEW_TOKEN=imported-token-a81c3f\n").unwrap();
    let vault_addr = services.vault.address();
    let plan_file = format!(
        r#"version = 1

[[env.dev.import]]
from = "dotenv"
settings = {{ file = "{source}" }}

[[env.dev.sync]]
to = "gh"
settings = {{ repo = "acme/api" }}

[[env.dev.sync]]
to = "vault"
settings = {{ addr = "{vault_addr}", secretPath = "apps/dev" }}

[[env.dev.sync]]
to = "gcp"
settings = {{ project = "acme-prod" }}

[[env.prod.sync]]
to = "gh"
settings = {{ repo = "acme/api" }}

[[env.prod.sync]]
to = "vault"
settings = {{ addr = "{vault_addr}", secretPath = "apps/prod" }}
on-failure = "continue"

[[env.prod.sync]]
to = "gcp"
settings = {{ project = "acme-prod" }}
"#,
        source = source.display()
    );
    std::fs::write(machine.checkout.join("vsync.toml"), &plan_file).unwrap();
    let mut outputs = Vec::new();

    // The plan: six targets and the import, reviewed as Markdown, kept.
    let (code, markdown, stderr) = services
        .run(&machine, &["plan", "--out", "plan.json", "--markdown"])
        .await;
    assert_eq!(code, Some(0), "{markdown}\n{stderr}");
    assert_eq!(markdown.matches("| dev | ").count(), 4, "{markdown}");
    assert_eq!(markdown.matches("| prod | ").count(), 3, "{markdown}");
    // dev's targets are planned after its import: four names each.
    assert!(
        markdown.contains("| 4 | 0 | 0 | 0 | 0 | 0 | 4 |"),
        "{markdown}"
    );
    assert_eq!(services.writes(), [0, 0, 0], "planning writes nothing");
    let artifact = std::fs::read_to_string(machine.checkout.join("plan.json")).unwrap();
    let reviewed: serde_json::Value = serde_json::from_str(&artifact).unwrap();
    assert_eq!(reviewed["targets"].as_array().unwrap().len(), 6);
    assert!(
        reviewed["imports"][0]["lines"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "key": "NEW_TOKEN", "action": "add" })),
        "{reviewed}"
    );
    outputs.extend([markdown, stderr, artifact]);

    // Applied as reviewed: the import pushed, then every target.
    let (code, json, stderr) = services
        .run(&machine, &["plan", "apply", "plan.json", "--json"])
        .await;
    assert_eq!(code, Some(0), "{json}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["imports"][0]["result"], "applied");
    assert!(report["imports"][0]["pushed"].is_string(), "{json}");
    for target in report["targets"].as_array().unwrap() {
        assert_eq!(target["result"], "applied", "{json}");
    }
    let github = &services.github;
    assert_eq!(
        github
            .value(&environment("dev"), "NEW_TOKEN")
            .as_deref()
            .map(String::as_str),
        Some("imported-token-a81c3f")
    );
    assert_eq!(
        github
            .value(&environment("prod"), "PROD_API_KEY")
            .as_deref()
            .map(String::as_str),
        Some("prod-api-key-3d6e20")
    );
    let dev_map = services.vault.data("secret", "apps/dev").unwrap();
    assert_eq!(dev_map["DEV_PEM"], PEM, "multiline, byte for byte");
    assert_eq!(
        services.gcp.value("PROD_DB_URL").as_deref(),
        Some(&b"postgres://app:prod-db-password-0f9b@db/app"[..])
    );
    assert_eq!(
        services.gcp.value("NEW_TOKEN").as_deref(),
        Some(&b"imported-token-a81c3f"[..])
    );
    let dev_env = std::fs::read_to_string(machine.vault().join(".env.dev")).unwrap();
    assert!(dev_env.contains("NEW_TOKEN="), "the import is in the vault");
    let applied = services.writes();
    outputs.extend([json, stderr]);

    // The same artifact again: everything reviewed is done; nothing written.
    let (code, stdout, stderr) = services
        .run(
            &machine,
            &["plan", "apply", "plan.json", "--detailed-exitcode"],
        )
        .await;
    assert_eq!(code, Some(10), "{stdout}\n{stderr}");
    assert_eq!(services.writes(), applied);
    outputs.extend([stdout, stderr]);

    // A new plan, then someone pushes prod: the plan is stale.
    let (code, stdout, stderr) = services
        .run(&machine, &["plan", "--out", "plan2.json", "--json"])
        .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    outputs.extend([stdout, stderr]);
    let fresh = std::fs::read_to_string(machine.checkout.join("plan2.json")).unwrap();
    std::fs::write(
        &prod_env,
        "PROD_DB_URL=postgres://app:prod-db-password-0f9b@db/app\nPROD_API_KEY=prod-api-key-rotated-e4\n",
    )
    .unwrap();
    machine.ok(&["push", "prod"]).await;
    let (code, stdout, stderr) = services
        .run(&machine, &["plan", "apply", "plan2.json"])
        .await;
    assert_eq!(code, Some(14), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("env prod: the vault was pushed since the plan"),
        "{stderr}"
    );
    assert!(stderr.contains("the values to sync changed"), "{stderr}");
    assert_eq!(services.writes(), applied, "a stale plan writes nothing");
    outputs.extend([stdout, stderr]);

    // An edited artifact does not verify.
    let mut edited: serde_json::Value = serde_json::from_str(&fresh).unwrap();
    edited["targets"][0]["lines"][0]["action"] = "create".into();
    std::fs::write(machine.checkout.join("edited.json"), edited.to_string()).unwrap();
    let (code, stdout, stderr) = services
        .run(&machine, &["plan", "apply", "edited.json"])
        .await;
    assert_eq!(code, Some(5), "{stdout}\n{stderr}");
    assert!(stderr.contains("does not verify"), "{stderr}");
    outputs.extend([stdout, stderr]);

    // prod's passphrase rotated since the plan: its tag no longer verifies,
    // and since prod was pushed (the rotation) the plan is stale, not forged.
    machine
        .ok(&[
            "rotate-passphrase",
            "--env=prod",
            "--generate",
            "--no-audit",
        ])
        .await;
    let (code, stdout, stderr) = services
        .run(&machine, &["plan", "apply", "plan2.json"])
        .await;
    assert_eq!(code, Some(14), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("env prod: the vault was pushed since the plan")
            && stderr.contains("under another key"),
        "{stderr}"
    );
    outputs.extend([stdout, stderr]);

    // Without an artifact: planned and applied in one go; the rotated key
    // reaches prod's three targets, nothing else is written.
    let (code, stdout, stderr) = services.run(&machine, &["plan", "apply"]).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        github
            .value(&environment("prod"), "PROD_API_KEY")
            .as_deref()
            .map(String::as_str),
        Some("prod-api-key-rotated-e4")
    );
    let [gh, _, gcp] = services.writes();
    assert_eq!((gh, gcp), (applied[0] + 1, applied[2] + 1));
    outputs.extend([stdout, stderr]);

    // A mistake in vsync.toml points at its line.
    std::fs::write(
        machine.checkout.join("vsync.toml"),
        plan_file.replace("on-failure = \"continue\"", "on-failure = \"carry-on\""),
    )
    .unwrap();
    let (code, stdout, stderr) = services.run(&machine, &["plan", "apply"]).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("vsync.toml:26:"), "{stderr}");
    outputs.extend([stdout, stderr]);

    for output in &outputs {
        for value in VALUES {
            assert!(!output.contains(value), "{value} shown in:\n{output}");
        }
        assert!(!output.contains(GithubFake::TOKEN));
        assert!(!output.contains(VaultServer::ROOT_TOKEN));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_mid_way_resumes_without_writing_anything_twice() {
    let services = Services::start().await;
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let env_file: String = (1..=30)
        .map(|n| format!("KEY_{n:02}=value-{n:02}-c0ffee\n"))
        .collect();
    std::fs::write(machine.vault().join(".env.dev"), env_file).unwrap();
    std::fs::write(
        machine.checkout.join("vsync.toml"),
        "version = 1\n\n[[env.dev.sync]]\nto = \"gh\"\nsettings = { repo = \"acme/api\" }\n",
    )
    .unwrap();
    let (code, stdout, stderr) = services
        .run(&machine, &["plan", "--out", "plan.json"])
        .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    // GitHub takes 12 writes, then leaves the rest unanswered.
    let github = &services.github;
    github.hold_writes_after(12);
    let mut apply = services
        .command(&machine, &["plan", "apply", "plan.json"])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while github.held() == 0 || github.faults().writes() < 12 {
        assert!(tokio::time::Instant::now() < deadline, "the apply stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The 12 answered writes are in the record (as a plan sees them)
    // before the process dies.
    loop {
        let (_, json, _) = services.run(&machine, &["plan", "--json"]).await;
        let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
        let unchanged = plan["targets"][0]["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|line| line["action"] == "unchanged")
            .count();
        if unchanged == 12 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    apply.kill().await.unwrap(); // SIGKILL
    assert_eq!(github.faults().writes(), 12);

    // The same artifact again: the rest, and only the rest.
    github.stop_holding();
    let (code, stdout, stderr) = services
        .run(&machine, &["plan", "apply", "plan.json"])
        .await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("18 written, 0 failed, 12 unchanged"),
        "{stdout}"
    );
    assert_eq!(
        github.faults().writes(),
        30,
        "each of the 30 names written exactly once"
    );
    for n in 1..=30 {
        let name = format!("KEY_{n:02}");
        assert_eq!(
            github
                .value(&environment("dev"), &name)
                .as_deref()
                .map(String::as_str),
            Some(format!("value-{n:02}-c0ffee").as_str())
        );
    }
}
