//! `vsync plan validate | schema | init` through the binary: a plan file's
//! problems each at their line, the schema, and a first `vsync.toml` from
//! the routing `vsync sync` saved.

mod common;

use common::{Machine, tree};
use vsync_testcontainers::{GithubFake, GithubScope};

/// Writes `text` as the checkout's vsync.toml and runs `vsync plan
/// validate`, which must refuse it; returns what it printed.
async fn refused(machine: &Machine, text: &str) -> String {
    std::fs::write(machine.checkout.join("vsync.toml"), text).unwrap();
    let output = machine
        .command(&["plan", "validate"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_points_at_each_problem_and_says_what_to_write() {
    let machine = Machine::new();
    let stderr = refused(
        &machine,
        "version = 1\n\n[[env.dev.sync]]\nto = \"gh\"\nsettings = { rpo = \"acme/web\" }\nmax-delete = 3\n",
    )
    .await;
    // A shape error stops the read: the misspelt max-deletes, first.
    assert!(
        stderr.contains("vsync.toml:6:1: unknown field `max-delete`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `max-deletes`?"), "{stderr}");

    let stderr = refused(
        &machine,
        "version = 1\n\n[[env.dev.sync]]\nto = \"gh\"\nsettings = { rpo = \"acme/web\" }\n\n[[env.dev.import]]\nfrom = \"awz\"\n",
    )
    .await;
    assert!(
        stderr.contains("vsync.toml:5:14: unknown setting of github-actions `rpo`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("vsync.toml:8:8: unknown import source `awz`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `aws`?"), "{stderr}");

    // Another file, given by path.
    let other = machine.home.join("other.toml");
    std::fs::write(
        &other,
        "version = 1\n[[env.dev.sync]]\nto = \"gh\"\nsettings = { repo = \"acme/web\" }\n",
    )
    .unwrap();
    let stdout = machine
        .ok(&["plan", "validate", "--file", other.to_str().unwrap()])
        .await;
    assert!(
        stdout.contains("ok (1 env(s), 0 import(s), 1 sync target(s))"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_needs_no_setup() {
    let machine = Machine::new();
    let stdout = machine.ok(&["plan", "schema"]).await;
    let schema: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(schema["title"], "vsync.toml");
    assert!(!machine.home.join(".config").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_moves_the_saved_routing_into_a_plan_that_validates() {
    let fake = GithubFake::start().await.unwrap();
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    machine.ok(&["init", "prod"]).await;
    std::fs::write(machine.vault().join(".env.dev"), "API_KEY=k-123456789\n").unwrap();
    let output = machine
        .command(&["sync", "dev", "gh", "--gh-repo=acme/api"])
        .env("GITHUB_API_URL", fake.endpoint())
        .env("GITHUB_TOKEN", GithubFake::TOKEN)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let stdout = machine.ok(&["plan", "init"]).await;
    assert!(stdout.contains("2 env(s), 1 sync target(s)"), "{stdout}");
    let text = std::fs::read_to_string(machine.checkout.join("vsync.toml")).unwrap();
    assert!(text.contains("[[env.dev.sync]]\nto = \"gh\"\n"), "{text}");
    assert!(text.contains("repo = \"acme/api\""), "{text}");
    assert!(!text.contains("k-123456789"));
    machine.ok(&["plan", "validate"]).await;

    // An existing plan is not overwritten without --force.
    let output = machine.command(&["plan", "init"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    machine.ok(&["plan", "init", "--force"]).await;

    // A checkout's vsync.toml symlink, even a dangling one, is never
    // written through: refused without --force, replaced with it.
    let plan = machine.checkout.join("vsync.toml");
    let outside = machine.home.join("bashrc");
    std::fs::remove_file(&plan).unwrap();
    std::os::unix::fs::symlink(&outside, &plan).unwrap();
    let output = machine.command(&["plan", "init"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!outside.exists());
    std::fs::write(&outside, "alias ll='ls -l'\n").unwrap();
    machine.ok(&["plan", "init", "--force"]).await;
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "alias ll='ls -l'\n"
    );
    assert!(!std::fs::symlink_metadata(&plan).unwrap().is_symlink());
    machine.ok(&["plan", "validate"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_every_target_of_every_env_and_writes_nothing() {
    let fake = GithubFake::start().await.unwrap();
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    machine.ok(&["init", "prod"]).await;
    let dev_secret = "dev-secret-value-7f3a9c";
    let prod_secret = "prod-secret-value-51d04b";
    std::fs::write(
        machine.vault().join(".env.dev"),
        format!("API_KEY={dev_secret}\nDEBUG=yes-please\n"),
    )
    .unwrap();
    let prod_vault = machine.checkout.join("infra/vault/prod");
    std::fs::write(
        prod_vault.join(".env.prod"),
        format!("API_KEY={prod_secret}\n"),
    )
    .unwrap();
    let source = machine.home.join("source.env");
    let new_secret = "new-secret-value-9e1d22";
    std::fs::write(
        &source,
        format!("API_KEY={dev_secret}\nNEW_ONE={new_secret}\n"),
    )
    .unwrap();
    std::fs::write(
        machine.checkout.join("vsync.toml"),
        r#"version = 1

[[env.dev.import]]
from = "dotenv"
settings = { file = "SOURCE" }

[[env.dev.sync]]
to = "gh"
settings = { repo = "acme/api" }

[[env.prod.sync]]
to = "gh"
settings = { repo = "acme/api" }
exclude = ["NOT_THERE"]

[[env.prod.sync]]
to = "vault"
settings = { addr = "http://vault.example.com:8200", secretPath = "web" }
"#
        .replace("SOURCE", source.to_str().unwrap()),
    )
    .unwrap();
    let home_before = tree(&machine.home);
    let checkout_before = tree(&machine.checkout);
    let run = |args: &[&str]| {
        let mut full = vec!["plan"];
        full.extend_from_slice(args);
        let mut command = machine.command(&full);
        command
            .env("GITHUB_API_URL", fake.endpoint())
            .env("GITHUB_TOKEN", GithubFake::TOKEN)
            .env("VAULT_TOKEN", "hvs.plan-test-token");
        command
    };

    let output = run(&[]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The vault target is refused (a token over plain http), the others planned.
    assert_eq!(output.status.code(), Some(12), "{stdout}\n{stderr}");
    assert!(stdout.contains("dev -> "), "{stdout}");
    // dev's sync is planned after its import: NEW_ONE is created too.
    assert!(
        stdout.contains("3 create, 0 update, 0 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("create: API_KEY, DEBUG, NEW_ONE"),
        "{stdout}"
    );
    assert!(stdout.contains("1 create, 0 update"), "{stdout}");
    assert!(stdout.contains("prod -> vault: refused:"), "{stdout}");
    assert!(stdout.contains("1 add, 0 change, 1 unchanged"), "{stdout}");
    assert!(stdout.contains("  add: NEW_ONE"), "{stdout}");
    assert!(
        stdout.contains("1 import(s), 3 target(s), 1 refused; nothing was written"),
        "{stdout}"
    );

    // Scoped: one env, one target.
    let output = run(&["--env", "dev", "--target", "github-actions", "--json"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["env"], "dev");
    assert_eq!(targets[0]["result"], "planned");
    let json_text = String::from_utf8_lossy(&output.stdout).into_owned();

    let output = run(&["--markdown"]).output().await.unwrap();
    let markdown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(markdown.contains("| env | target | create |"), "{markdown}");
    assert!(markdown.contains("| prod | vault |"), "{markdown}");
    assert!(
        markdown.contains("| env | import from | add |"),
        "{markdown}"
    );

    let output = run(&["--env", "staging"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    // Nothing anywhere: no secret at GitHub, no routing saved, no record.
    assert_eq!(fake.counts().puts, 0);
    assert_eq!(fake.counts().deletes, 0);
    assert_eq!(tree(&machine.home), home_before);
    assert_eq!(tree(&machine.checkout), checkout_before);
    // And never a value in any output.
    for text in [
        stdout.as_ref(),
        stderr.as_ref(),
        json_text.as_str(),
        markdown.as_str(),
    ] {
        for secret in [
            dev_secret,
            prod_secret,
            new_secret,
            "yes-please",
            "hvs.plan-test-token",
        ] {
            assert!(!text.contains(secret), "{secret} shown in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_are_shown_recorded_in_the_artifact_and_must_match_at_apply() {
    let fake = GithubFake::start().await.unwrap();
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    std::fs::write(
        machine.vault().join(".env.dev"),
        "API_KEY=dev-api-key-0c4d1e\nDEBUG=local-only-19ab\n",
    )
    .unwrap();
    std::fs::write(
        machine.checkout.join("vsync.toml"),
        "version = 1\n\n[[env.dev.sync]]\nto = \"gh\"\nsettings = { repo = \"acme/api\" }\n",
    )
    .unwrap();
    let exclude = ("VSYNC_ENV__DEV__SYNC__GH__EXCLUDE", r#"["DEBUG"]"#);
    let run = |args: &[&str], overrides: &[(&str, &str)]| {
        let mut command = machine.command(args);
        command
            .env("GITHUB_API_URL", fake.endpoint())
            .env("GITHUB_TOKEN", GithubFake::TOKEN)
            .envs(overrides.iter().copied());
        command
    };

    let output = run(&["plan", "validate"], &[exclude])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains(r#"override VSYNC_ENV__DEV__SYNC__GH__EXCLUDE="[\"DEBUG\"]""#),
        "{stdout}"
    );

    // The plan says it was changed, and plans without DEBUG.
    let artifact = machine.home.join("plan.json");
    let output = run(&["plan", "--out", artifact.to_str().unwrap()], &[exclude])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.starts_with("override VSYNC_ENV__DEV__SYNC__GH__EXCLUDE="),
        "{stdout}"
    );
    assert!(stdout.contains("create: API_KEY\n"), "{stdout}");
    let output = run(&["plan", "--markdown"], &[exclude])
        .output()
        .await
        .unwrap();
    let markdown = String::from_utf8_lossy(&output.stdout);
    assert!(
        markdown.contains(r#"- `VSYNC_ENV__DEV__SYNC__GH__EXCLUDE="[\"DEBUG\"]"`"#),
        "{markdown}"
    );
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&artifact).unwrap()).unwrap();
    assert_eq!(
        recorded["overrides"],
        serde_json::json!([{"variable": exclude.0, "value": exclude.1}])
    );

    // Applied without the override, or with another value, it is stale.
    for overrides in [&[][..], &[(exclude.0, r#"["API_KEY"]"#)][..]] {
        let output = run(&["plan", "apply", artifact.to_str().unwrap()], overrides)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(14), "{stderr}");
        assert!(
            stderr.contains(r#"VSYNC_ENV__DEV__SYNC__GH__EXCLUDE was "[\"DEBUG\"]" when planned"#),
            "{stderr}"
        );
    }
    assert_eq!(fake.counts().puts, 0);

    // With it, exactly what was reviewed.
    let output = run(&["plan", "apply", artifact.to_str().unwrap()], &[exclude])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let scope = GithubScope::Environment("acme/api".to_owned(), "dev".to_owned());
    assert_eq!(fake.names(&scope), ["API_KEY"]);

    // A bad override is refused by name, before anything is planned.
    let output = run(&["plan"], &[("VSYNC_ENV__DEV__SYNC__GH__PRUNE", "yes")])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("VSYNC_ENV__DEV__SYNC__GH__PRUNE: takes true or false"),
        "{stderr}"
    );
    assert!(!stderr.contains("dev-api-key-0c4d1e"), "{stderr}");
}
