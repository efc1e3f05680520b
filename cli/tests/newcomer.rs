//! A newcomer's first five minutes through the `vsync` binary: the keystore
//! fallback on a machine without a keychain, completions and man pages.

mod common;

use common::Machine;

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
