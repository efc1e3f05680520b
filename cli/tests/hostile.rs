//! Hostile input and careless use, through the `vsync` binary on the local
//! directory store: crafted `.share` files, hand-edited configs, a shared
//! HOME, a rolled-back or far-future pointer, secrets in argv. Each test is
//! one finding of the security review (issue 13).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Machine;
use serde_json::Value;

const SHARE_PASSPHRASE: &str = "correct-horse-battery";

/// A machine with env `dev` of repo `acme_web` initialised on its local
/// store and one version pushed.
async fn pushed() -> Machine {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    std::fs::write(machine.vault().join(".env.dev"), "API_KEY=one\n").unwrap();
    machine.ok(&["push", "dev"]).await;
    machine
}

fn passphrase_file(machine: &Machine) -> PathBuf {
    let path = machine.home.join("share-passphrase");
    std::fs::write(&path, SHARE_PASSPHRASE).unwrap();
    path
}

/// Exports `dev` to `<home>/dev.share`, then lets `edit` change the share's
/// JSON payload (as an attacker holding the passphrase would) and seals it
/// again.
async fn crafted_share(machine: &Machine, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let share = machine.home.join("dev.share");
    let passphrase = passphrase_file(machine);
    machine
        .ok(&[
            "export",
            "dev",
            &format!("--out={}", share.display()),
            &format!("--passphrase-file={}", passphrase.display()),
        ])
        .await;
    let sealed = std::fs::read(&share).unwrap();
    let json = vsync_crypto::frame::open_share(SHARE_PASSPHRASE, &sealed).unwrap();
    let mut payload: Value = serde_json::from_slice(&json).unwrap();
    edit(&mut payload);
    let crafted = machine.home.join("crafted.share");
    std::fs::write(
        &crafted,
        vsync_crypto::frame::seal_share(SHARE_PASSPHRASE, payload.to_string().as_bytes()),
    )
    .unwrap();
    crafted
}

async fn import(machine: &Machine, share: &Path, extra: &[&str]) -> std::process::Output {
    let passphrase = passphrase_file(machine);
    let mut args = vec![
        "import".to_owned(),
        "dev".to_owned(),
        share.display().to_string(),
        format!("--passphrase-file={}", passphrase.display()),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    machine.run(&args).await
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn config_path(machine: &Machine) -> PathBuf {
    machine.home.join(".config/vsync/acme_web/env_dev")
}

/// Rewrites the machine's env config by hand (gzip JSON), bypassing every
/// check vsync makes when it saves one.
fn edit_config(machine: &Machine, edit: impl FnOnce(&mut Value)) {
    let path = config_path(machine);
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut json)
        .unwrap();
    let mut config: Value = serde_json::from_str(&json).unwrap();
    edit(&mut config);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(config.to_string().as_bytes()).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
}

/// The local store's object for `key` under the env's prefix.
fn store_object(machine: &Machine, key: &str) -> PathBuf {
    machine
        .home
        .join(".local/share/vsync/store/acme_web/dev")
        .join(key)
}

fn current_version(machine: &Machine) -> String {
    std::fs::read_to_string(store_object(machine, "latest")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_folders_outside_the_repo_are_refused_at_init_import_and_load() {
    // `init --vault-folder=` that climbs out or is absolute.
    let machine = Machine::new();
    for folder in [
        "../victim",
        "/tmp/victim",
        "infra/../../victim",
        ".git/hooks",
    ] {
        let stderr = machine
            .fails(
                &[
                    "init",
                    "dev",
                    "--repo=acme_web",
                    &format!("--vault-folder={folder}"),
                ],
                2,
            )
            .await;
        assert!(stderr.contains("vault folder"), "{folder}: {stderr}");
        assert!(!config_path(&machine).exists(), "{folder}");
    }

    // A `.share` carrying such a folder: refused, nothing saved.
    let alice = pushed().await;
    let bob = Machine::new();
    let victim = bob.home.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("precious"), "keep me").unwrap();
    for folder in ["../victim", "/etc"] {
        let share = crafted_share(&alice, |payload| {
            payload["config"]["files"] = serde_json::json!({ "vaultFolder": folder });
        })
        .await;
        let output = import(&bob, &share, &[]).await;
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("files.vaultFolder"),
            "{}",
            stderr(&output)
        );
        assert!(!config_path(&bob).exists());
    }

    // A config edited on disk: `pull --force` would have emptied the folder
    // outside the repo; `push` would have uploaded it.
    let victim = alice.home.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("precious"), "keep me").unwrap();
    for folder in ["../victim", "/etc"] {
        edit_config(&alice, |config| {
            config["files"] = serde_json::json!({ "vaultFolder": folder });
        });
        for verb in [&["pull", "dev", "--force"][..], &["push", "dev", "--force"]] {
            let stderr = alice.fails(verb, 2).await;
            assert!(stderr.contains("files.vaultFolder"), "{verb:?}: {stderr}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("precious")).unwrap(),
        "keep me"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_never_silently_replaces_a_different_key() {
    let alice = pushed().await;
    let share = crafted_share(&alice, |_| {}).await;
    // Bob has his own `dev` of the same repo, with his own key and version.
    let bob = pushed().await;
    let bob_key = std::fs::read(bob.key_file()).unwrap();
    let output = import(&bob, &share, &[]).await;
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("--force"), "{}", stderr(&output));
    assert_eq!(std::fs::read(bob.key_file()).unwrap(), bob_key);
    bob.ok(&["pull", "dev"]).await;

    let output = import(&bob, &share, &["--force"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("replaced"));
    assert_eq!(
        std::fs::read(bob.key_file()).unwrap(),
        std::fs::read(alice.key_file()).unwrap()
    );
    // The same share again changes nothing and needs no --force.
    let output = import(&bob, &share, &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("unchanged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_from_a_share_is_shown_and_kept_only_when_accepted() {
    let alice = pushed().await;
    let share = crafted_share(&alice, |payload| {
        payload["config"]["sync"] = serde_json::json!({
            "vault": {"addr": "https://vault.attacker.example", "mount": "secret", "secretPath": "loot"}
        });
        // A policy that would hand a custom-mode command every variable.
        payload["config"]["exec"] = serde_json::json!({"inherit": ["*"], "alwaysRedact": false});
    })
    .await;
    let read_config = |machine: &Machine| {
        let mut json = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(config_path(machine)).unwrap())
            .read_to_string(&mut json)
            .unwrap();
        serde_json::from_str::<Value>(&json).unwrap()
    };
    let read_sync = |machine: &Machine| read_config(machine)["sync"].clone();

    let bob = Machine::new();
    let output = import(&bob, &share, &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("dropped") && stderr(&output).contains("vault.attacker.example"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(r#"exec policy {"inherit":["*"]"#),
        "{}",
        stderr(&output)
    );
    assert_eq!(read_sync(&bob), Value::Null);
    assert_eq!(read_config(&bob)["exec"], Value::Null);
    bob.ok(&["pull", "dev"]).await;
    // A sync without routing of Bob's own names what is missing instead of
    // sending his token to the share's address.
    let output = bob
        .command(&["sync", "dev", "vault"])
        .env("VAULT_TOKEN", "bobs-token")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--vault-addr"),
        "{}",
        stderr(&output)
    );

    let carol = Machine::new();
    let output = import(&carol, &share, &["--accept-routing"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("kept"), "{}", stderr(&output));
    assert_eq!(
        read_sync(&carol)["vault"]["addr"],
        "https://vault.attacker.example"
    );
    assert_eq!(read_config(&carol)["exec"]["inherit"][0], "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_never_sent_over_plain_http() {
    let machine = pushed().await;
    let output = machine
        .command(&[
            "sync",
            "dev",
            "vault",
            "--vault-addr=http://vault.example.com:8200",
            "--vault-path=app",
        ])
        .env("VAULT_TOKEN", "s.token")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("https://"), "{}", stderr(&output));

    let output = machine
        .command(&["sync", "dev", "gh", "--gh-repo=acme/web"])
        .env("GITHUB_TOKEN", "ghp_token")
        .env("GITHUB_API_URL", "http://ghe.example.com/api/v3")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("https://"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_and_key_directories_other_users_can_write_are_refused() {
    let machine = pushed().await;
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let base = machine.home.join(".config/vsync");
    let key_dir = base.join(".keystore/acme_web");
    for dir in [base.clone(), base.join("acme_web"), key_dir.clone()] {
        set_mode(&dir, 0o777);
        let output = machine.run(&["push", "dev", "--force"]).await;
        assert!(!output.status.success(), "{}", dir.display());
        let stderr = stderr(&output);
        assert!(
            stderr.contains(&dir.display().to_string()) && stderr.contains("chmod go-w"),
            "{stderr}"
        );
        set_mode(&dir, 0o700);
    }
    set_mode(&machine.key_file(), 0o666);
    let stderr = stderr(&machine.run(&["push", "dev", "--force"]).await);
    assert!(stderr.contains("dev.key"), "{stderr}");
    set_mode(&machine.key_file(), 0o600);
    machine.ok(&["push", "dev", "--force"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_removes_the_files_a_teammate_deleted() {
    let alice = pushed().await;
    std::fs::write(alice.vault().join("old.pem"), "retired key").unwrap();
    std::fs::create_dir_all(alice.vault().join("tls")).unwrap();
    std::fs::write(alice.vault().join("tls/old.crt"), "retired cert").unwrap();
    alice.ok(&["push", "dev"]).await;
    // Bob onboards from a share; the config names Alice's local store,
    // which both reach on this one file system.
    let share = crafted_share(&alice, |_| {}).await;
    let bob = Machine::new();
    let output = import(&bob, &share, &[]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    bob.ok(&["pull", "dev"]).await;
    assert!(bob.vault().join("old.pem").exists());

    std::fs::remove_file(alice.vault().join("old.pem")).unwrap();
    std::fs::remove_dir_all(alice.vault().join("tls")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    alice.ok(&["push", "dev"]).await;
    let output = bob.run(&["pull", "dev"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("removed old.pem"),
        "{}",
        stderr(&output)
    );
    assert!(!bob.vault().join("old.pem").exists());
    assert!(!bob.vault().join("tls").exists());
    assert!(bob.vault().join(".env.dev").exists());
    // So Bob's next push does not bring them back.
    bob.ok(&["push", "dev"]).await;
    alice.ok(&["pull", "dev"]).await;
    assert!(!alice.vault().join("old.pem").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_high_water_mark_never_goes_down() {
    let machine = pushed().await;
    let first = current_version(&machine);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    std::fs::write(machine.vault().join(".env.dev"), "API_KEY=two\n").unwrap();
    machine.ok(&["push", "dev"]).await;
    let second = current_version(&machine);
    assert!(first < second);

    machine
        .ok(&["pull", "dev", &format!("--at={first}"), "--force"])
        .await;
    machine
        .ok(&["pull", "dev", "--accept-rollback", "--force"])
        .await;
    // Someone with write access to the bucket points it back.
    std::fs::write(store_object(&machine, "latest"), &first).unwrap();
    let stderr = machine.fails(&["pull", "dev"], 4).await;
    assert!(stderr.contains("rollback"), "{stderr}");
    let status = machine.ok(&["status", "--check-remote", "--json"]).await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_ne!(status["envs"][0]["remote"]["state"], "in-sync", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_never_shows_the_credentials_of_the_origin_url() {
    let machine = Machine::new();
    let git = std::process::Command::new("git")
        .args([
            "remote",
            "add",
            "origin",
            "https://x-access-token:ghp_leakedToken123@github.com/Acme/Web.git",
        ])
        .current_dir(&machine.checkout)
        .status()
        .unwrap();
    assert!(git.success());
    machine.ok(&["init", "dev"]).await;
    for args in [&["status"][..], &["status", "--json"]] {
        let output = machine.run(args).await;
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
        assert!(!all.contains("ghp_leakedToken123"), "{all}");
        assert!(!all.contains("x-access-token"), "{all}");
        assert!(all.contains("github.com/Acme/Web.git"), "{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_shares_are_kept_out_of_git() {
    let machine = pushed().await;
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(&machine.checkout)
            .output()
            .unwrap()
    };
    assert!(
        git(&["check-ignore", "-q", "infra/vault/dev/.env.dev"])
            .status
            .success()
    );
    let untracked = String::from_utf8(git(&["status", "--porcelain"]).stdout).unwrap();
    assert!(!untracked.contains("infra/"), "{untracked}");

    let passphrase = passphrase_file(&machine);
    let output = machine
        .run(&[
            "export",
            "dev",
            &format!("--passphrase-file={}", passphrase.display()),
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("inside the git working tree"),
        "{}",
        stderr(&output)
    );
    // The passphrase the user chose is never echoed back.
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SHARE_PASSPHRASE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_in_the_far_future_yields_to_push_force() {
    let machine = pushed().await;
    let current = current_version(&machine);
    let future = "20991231-235959";
    std::fs::copy(
        store_object(&machine, &format!("versions/{current}.enc")),
        store_object(&machine, &format!("versions/{future}.enc")),
    )
    .unwrap();
    std::fs::write(store_object(&machine, "latest"), future).unwrap();

    let stderr = machine.fails(&["push", "dev"], 4).await;
    assert!(stderr.contains("--force"), "{stderr}");
    let output = machine.run(&["push", "dev", "--force"]).await;
    assert!(output.status.success(), "{}", self::stderr(&output));
    assert!(
        self::stderr(&output).contains(future),
        "{}",
        self::stderr(&output)
    );
    assert_eq!(current_version(&machine), "21000101-000000");
    machine.ok(&["pull", "dev"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_given_as_flag_values_are_warned_about() {
    let machine = pushed().await;
    let output = machine
        .run(&[
            "export",
            "dev",
            "--passphrase=correct-horse-battery",
            &format!("--out={}", machine.home.join("x.share").display()),
        ])
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--passphrase puts a secret in the process list"),
        "{}",
        stderr(&output)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("correct-horse-battery"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_pull_waits_for_the_first_instead_of_interleaving() {
    use tokio::io::AsyncBufReadExt;

    let machine = pushed().await;
    // Another vsync holding the env's lock, as a running pull would.
    let held = std::fs::File::open(config_path(&machine).with_file_name(".env_dev.lock"))
        .expect("push left the env's lock file");
    held.lock().unwrap();
    let mut pull = machine
        .command(&["pull", "dev", "--force"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(pull.stderr.take().unwrap()).lines();
    let mut before_release = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let waiting = line.contains("another vsync is working on acme_web/dev");
        before_release.push(line);
        if waiting {
            break;
        }
    }
    // Nothing was touched while it waited.
    assert_eq!(before_release.len(), 1, "{before_release:?}");
    drop(held);
    while lines.next_line().await.unwrap().is_some() {}
    assert!(pull.wait().await.unwrap().success());
}
