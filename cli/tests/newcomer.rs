//! A newcomer's first five minutes through the `vsync` binary: the keystore
//! fallback on a machine without a keychain, completions and man pages.

mod common;

use common::{Machine, tree};

/// The note printed when no OS keychain answers.
const NO_KEYCHAIN: &str = "no OS keychain answers";

impl Machine {
    /// Runs with no keystore chosen and a D-Bus session bus that does not
    /// exist: a headless machine without a keychain.
    async fn run_without_keychain(&self, args: &[&str]) -> std::process::Output {
        let mut command = self.command(args);
        command.env_remove("VSYNC_KEYSTORE").env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}/no-session-bus", self.home.display()),
        );
        command.output().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_keychain_the_fallback_is_noted_once_and_remembered() {
    let machine = Machine::new();
    let mut notes = Vec::new();
    for args in [
        &["init", "dev", "--repo=demo"][..],
        &["push", "dev"],
        &["versions", "dev"],
    ] {
        let output = machine.run_without_keychain(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "vsync {args:?}: {stderr}");
        notes.extend(
            stderr
                .lines()
                .filter(|line| line.contains(NO_KEYCHAIN))
                .map(str::to_owned),
        );
    }
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let remembered = machine.home.join(".config/vsync/.keystore-fallback");
    assert!(
        notes[0].contains(&remembered.display().to_string()),
        "{}",
        notes[0]
    );
    assert!(notes[0].contains("VSYNC_KEYSTORE=keychain"), "{}", notes[0]);
    // The key went to the file keystore, and status says why.
    assert!(
        machine
            .home
            .join(".config/vsync/.keystore/demo/dev.key")
            .is_file()
    );
    let status = machine.run_without_keychain(&["status"]).await;
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("file keystore at") && stdout.contains("remembered in"),
        "{stdout}"
    );

    // Forgetting the choice asks the keychain again.
    std::fs::remove_file(&remembered).unwrap();
    let again = machine.run_without_keychain(&["versions", "dev"]).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains(NO_KEYCHAIN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_loads_the_completions() {
    let machine = Machine::new();
    let script = machine.ok(&["completions", "bash"]).await;
    assert!(script.contains("complete -F"), "{script}");
    let path = machine.home.join("vsync.bash");
    std::fs::write(&path, &script).unwrap();
    // Sourced, the script registers completion for `vsync` with bash.
    let bash = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p vsync", path.display()))
        .output()
        .unwrap();
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );
    assert!(String::from_utf8_lossy(&bash.stdout).contains("vsync"));
    // Every verb is offered, the registry's aliases among them.
    for verb in ["push", "pull", "sync", "import", "kv-pull", "completions"] {
        assert!(script.contains(verb), "{verb} is not completed");
    }
    for shell in ["zsh", "fish", "powershell"] {
        let script = machine.ok(&["completions", shell]).await;
        assert!(script.contains("push"), "{shell}: {script}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn man_pages_cover_every_command() {
    let machine = Machine::new();
    let page = machine.ok(&["man"]).await;
    assert!(
        page.starts_with(".ie") || page.contains(".TH vsync"),
        "{page}"
    );
    let dir = machine.home.join("man");
    machine.ok(&["man", "--dir", dir.to_str().unwrap()]).await;
    for name in ["vsync.1", "vsync-push.1", "vsync-sync.1", "vsync-import.1"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(text.contains(".TH"), "{name} is missing or empty");
    }
}

#[test]
fn readme_command_one_tours_the_vault_and_leaves_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/quickstart");
    let output = std::process::Command::new(script)
        .env("VSYNC_BIN", env!("CARGO_BIN_EXE_vsync"))
        .env("HOME", home.path())
        .env("TMPDIR", tmp.path())
        .env("VSYNC_KEYSTORE", "keychain")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Each step as a user types it, in order, and what it answers.
    let mut rest = &*stdout;
    for expected in [
        "$ vsync init dev --repo=demo",
        "initialised demo/dev",
        "$ vsync push dev",
        "generation 1",
        "$ vsync push dev",
        "generation 2",
        "$ vsync versions dev",
        "(2 versions)",
        "$ vsync pull dev --backup",
        "the previous vault folder was copied to",
        "$ cat infra/vault/dev/.env.dev",
        "DATABASE_URL=postgres://localhost/app\nAPI_KEY=s3cr3t\nFEATURE_FLAG=on\n",
        "$ vsync status --check-remote",
        "ok (in-sync)",
    ] {
        let at = rest
            .find(expected)
            .unwrap_or_else(|| panic!("{expected:?} missing or out of order in:\n{stdout}"));
        rest = &rest[at + expected.len()..];
    }
    // The tour kept to its throwaway directory (even with the keychain
    // asked for by name) and removed it.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// One finding of `vsync doctor --json`.
#[derive(Debug)]
struct Finding {
    subject: String,
    check: String,
    verdict: String,
    detail: String,
    fix: Option<String>,
}

impl Machine {
    /// `vsync doctor --json` with `extra` variables: its exit code and
    /// findings.
    async fn doctor(&self, extra: &[(&str, &str)]) -> (i32, Vec<Finding>) {
        let mut command = self.command(&["doctor", "--json"]);
        command.envs(extra.iter().copied());
        let output = command.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let doc: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("{err}: {stdout}\n{output:?}"));
        let text = |value: &serde_json::Value| value.as_str().unwrap().to_owned();
        let findings = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| Finding {
                subject: text(&finding["subject"]),
                check: text(&finding["check"]),
                verdict: text(&finding["verdict"]),
                detail: text(&finding["detail"]),
                fix: finding["fix"].as_str().map(str::to_owned),
            })
            .collect::<Vec<_>>();
        let healthy = doc["healthy"].as_bool().unwrap();
        let code = output.status.code().unwrap();
        assert_eq!(healthy, code == 0, "{findings:#?}");
        (code, findings)
    }
}

/// The problems among `findings`, as (check, subject).
fn problems(findings: &[Finding]) -> Vec<(&str, &str)> {
    findings
        .iter()
        .filter(|finding| finding.verdict == "problem")
        .map(|finding| (finding.check.as_str(), finding.subject.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_fresh_setup_and_writes_nothing() {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=demo"]).await;
    std::fs::write(machine.vault().join(".env.dev"), "A=1\n").unwrap();
    machine.ok(&["push", "dev"]).await;
    let before = tree(&machine.home);
    let (code, findings) = machine.doctor(&[]).await;
    assert_eq!(code, 0, "{findings:#?}");
    for check in [
        "keystore",
        "permissions",
        "key",
        "store",
        "clock",
        "gitignore",
    ] {
        assert!(
            findings
                .iter()
                .any(|finding| finding.check == check && finding.verdict == "ok"),
            "no ok {check} in {findings:#?}"
        );
    }
    // Without a keychain, doctor reports the fallback but does not
    // remember it: it writes nothing at all.
    let output = machine.run_without_keychain(&["doctor"]).await;
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("warning  keystore"));
    assert_eq!(tree(&machine.home), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_loose_modes_a_skewed_clock_and_an_unignored_vault() {
    use std::os::unix::fs::PermissionsExt;

    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=demo"]).await;
    std::fs::write(machine.vault().join(".env.dev"), "A=1\n").unwrap();
    machine.ok(&["push", "dev"]).await;
    let config = machine.home.join(".config/vsync/demo/env_dev");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Backups kept in a directory anyone can write.
    let backups = machine.home.join("shared-backups");
    std::fs::create_dir(&backups).unwrap();
    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A machine whose clock ran a century ahead published last.
    let pointer = machine
        .home
        .join(".local/share/vsync/store/demo/dev/latest");
    std::fs::write(&pointer, "21261201-000000").unwrap();
    // And the vault folder's own .gitignore is gone.
    std::fs::remove_file(machine.vault().join(".gitignore")).unwrap();

    let (code, findings) = machine
        .doctor(&[("VSYNC_BACKUP_DIR", backups.to_str().unwrap())])
        .await;
    assert_eq!(code, 1);
    let config_subject = config.display().to_string();
    let base_subject = backups.display().to_string();
    let mut found = problems(&findings);
    found.sort();
    let mut expected = vec![
        ("clock", "demo/dev"),
        ("gitignore", "demo/dev"),
        ("permissions", base_subject.as_str()),
        ("permissions", config_subject.as_str()),
    ];
    expected.sort();
    assert_eq!(found, expected, "{findings:#?}");
    let fix_of = |check: &str, subject: &str| {
        let finding = findings
            .iter()
            .find(|finding| finding.check == check && finding.subject == subject)
            .unwrap();
        finding.fix.clone().unwrap()
    };
    assert_eq!(
        fix_of("permissions", &config_subject),
        format!("chmod 600 {config_subject}")
    );
    assert!(fix_of("permissions", &base_subject).contains("chmod go-w"));
    assert!(fix_of("clock", "demo/dev").contains("vsync push --force"));
    assert!(fix_of("gitignore", "demo/dev").contains("infra/vault/dev/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_dead_store_and_a_target_without_credentials() {
    let server = common::s3_server().await;
    let machine = Machine::new();
    machine
        .init_on_bucket("dev", &server, &server.endpoint())
        .await;
    std::fs::write(machine.vault().join(".env.dev"), "A=1\n").unwrap();
    machine.ok(&["push", "dev"]).await;
    // Routing for GitHub is saved even though no token is found (the sync
    // fails before any request).
    let bin = machine.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::os::unix::fs::symlink(git.trim(), bin.join("git")).unwrap();
    // A PATH without the `gh` CLI, so no logged-in gh answers for GitHub.
    let path = bin.display().to_string();
    let sync = machine
        .command(&["sync", "dev", "gh", "--gh-repo=acme/web", "--dry-run"])
        .env("PATH", &path)
        .output()
        .await
        .unwrap();
    assert!(!sync.status.success());

    let (code, findings) = machine.doctor(&[("PATH", &path)]).await;
    assert_eq!(
        problems(&findings),
        [("credentials", "demo/dev → gh")],
        "{findings:#?}"
    );
    assert_eq!(code, 1);
    let credentials = findings
        .iter()
        .find(|finding| finding.check == "credentials")
        .unwrap();
    assert!(
        credentials.detail.contains("GITHUB_TOKEN"),
        "{credentials:?}"
    );
    // With a token in the environment the target is ready (nothing is sent).
    let (code, findings) = machine
        .doctor(&[("PATH", &path), ("GITHUB_TOKEN", "ghp_not_a_real_token")])
        .await;
    assert_eq!(code, 0, "{findings:#?}");
    assert!(
        findings
            .iter()
            .all(|finding| !finding.detail.contains("ghp_not_a_real_token"))
    );
    // Which source the token would come from is named.
    let credentials = findings
        .iter()
        .find(|finding| finding.check == "credentials")
        .unwrap();
    assert!(
        credentials
            .detail
            .ends_with("credentials from GITHUB_TOKEN"),
        "{credentials:?}"
    );

    server.stop().await.unwrap();
    let (code, findings) = machine.doctor(&[("PATH", &path)]).await;
    assert_eq!(code, 1);
    let store = findings
        .iter()
        .find(|finding| finding.check == "store")
        .unwrap();
    assert_eq!(store.verdict, "problem", "{store:?}");
    assert!(store.detail.contains("does not answer") || store.detail.contains("did not answer"));
    assert!(store.fix.as_deref().unwrap().contains("endpoint"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_compares_the_buckets_clock_with_this_one() {
    let server = common::s3_server().await;
    let machine = Machine::new();
    // Two views of one bucket: its server's clock an hour ahead, and two
    // minutes behind.
    let mut proxies = Vec::new();
    for (env, offset) in [("ahead", 3600), ("behind", -120)] {
        let proxy = vsync_testcontainers::ClockSkewProxy::start(&server.endpoint(), offset)
            .await
            .unwrap();
        machine
            .init_on_bucket(env, &server, &proxy.endpoint())
            .await;
        proxies.push(proxy);
    }
    let (code, findings) = machine.doctor(&[]).await;
    let clock = |env: &str| {
        findings
            .iter()
            .find(|finding| {
                finding.check == "bucket clock" && finding.subject == format!("demo/{env}")
            })
            .unwrap_or_else(|| panic!("no bucket clock for {env}: {findings:#?}"))
    };
    // An hour off: S3 would refuse every signed request.
    let ahead = clock("ahead");
    assert_eq!(ahead.verdict, "problem", "{ahead:?}");
    assert!(
        ahead.detail.contains("ahead of this machine's"),
        "{ahead:?}"
    );
    assert!(ahead.fix.as_deref().unwrap().contains("NTP"));
    // The SDK signs by the server's clock, so the real server behind the
    // proxy refuses: the store's problem names the clock too.
    let store = findings
        .iter()
        .find(|finding| finding.check == "store" && finding.subject == "demo/ahead")
        .unwrap();
    assert!(store.detail.contains("clock"), "{store:?}");
    // Two minutes: pushes of machines with right clocks can look ahead.
    let behind = clock("behind");
    assert_eq!(behind.verdict, "warning", "{behind:?}");
    assert!(
        behind.detail.contains("behind this machine's"),
        "{behind:?}"
    );
    assert_eq!(code, 1);
}
