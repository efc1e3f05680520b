//! `vsync push` and `vsync pull` against a hostile file system and hostile
//! bundles (issue 13, items 5 and 10), end to end through the binary on the
//! local directory store:
//!
//! - a symlink anywhere from the repo root to the vault folder (`infra`,
//!   `infra/vault`, the folder itself) or a symlinked directory inside it is
//!   refused by both commands before anything is read or written;
//! - a bundle that inflates past the size limits, or holds too many entries,
//!   is refused as a bad bundle (exit 5) and writes nothing;
//! - an encrypted bundle larger than any the limits allow is refused while
//!   it downloads, before it is held in memory.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::Machine;

/// A machine with `dev` initialised on the local store and a vault holding
/// `.env.dev` and `tls/server.key`.
async fn machine() -> Machine {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=demo"]).await;
    write(
        &machine.vault().join(".env.dev"),
        b"DATABASE_URL=postgres://db\n",
    );
    write(&machine.vault().join("tls/server.key"), b"KEY");
    machine
}

fn write(path: &Path, contents: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A directory outside the checkout shaped like `infra/`, holding
/// `vault/dev/.env.dev` with `OUTSIDE=1`.
fn outside_tree(machine: &Machine) -> PathBuf {
    let outside = machine.home.join("outside");
    write(&outside.join("vault/dev/.env.dev"), b"OUTSIDE=1\n");
    outside
}

/// Replaces the directory `link` (relative to the checkout) by a symlink to
/// `target`.
fn replace_with_symlink(machine: &Machine, link: &str, target: &Path) {
    let path = machine.checkout.join(link);
    if path.exists() {
        std::fs::remove_dir_all(&path).unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    symlink(target, &path).unwrap();
}

async fn published_versions(machine: &Machine) -> usize {
    let json = machine.ok(&["versions", "dev", "--json"]).await;
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    doc["versions"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_refuses_a_symlink_anywhere_on_the_way_to_or_inside_the_vault() {
    for (link, target) in [
        ("infra", ""),
        ("infra/vault", "vault"),
        ("infra/vault/dev", "vault/dev"),
        ("infra/vault/dev/tls", "vault"),
    ] {
        let machine = machine().await;
        let outside = outside_tree(&machine);
        replace_with_symlink(&machine, link, &outside.join(target));
        let stderr = machine.fails(&["push", "dev"], 2).await;
        let shown = machine.checkout.join(link);
        assert!(
            stderr.contains(&shown.display().to_string()) && stderr.contains("symlink"),
            "{link}: {stderr}"
        );
        assert!(
            stderr.contains("replace it with the real directory"),
            "{stderr}"
        );
        assert!(!stderr.contains("OUTSIDE"), "{stderr}");
        assert_eq!(published_versions(&machine).await, 0, "{link}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_refuses_to_read_or_write_through_a_symlink_on_the_way() {
    for (link, target) in [
        ("infra", ""),
        ("infra/vault", "vault"),
        ("infra/vault/dev", "vault/dev"),
        ("infra/vault/dev/tls", "vault"),
    ] {
        let machine = machine().await;
        machine.ok(&["push", "dev"]).await;
        let outside = outside_tree(&machine);
        replace_with_symlink(&machine, link, &outside.join(target));
        for flags in [&["pull", "dev"][..], &["pull", "dev", "--force"]] {
            let stderr = machine.fails(flags, 2).await;
            let shown = machine.checkout.join(link);
            assert!(
                stderr.contains(&shown.display().to_string()) && stderr.contains("symlink"),
                "{link} {flags:?}: {stderr}"
            );
            // Nothing outside the checkout was written, replaced or removed.
            assert_eq!(
                std::fs::read(outside.join("vault/dev/.env.dev")).unwrap(),
                b"OUTSIDE=1\n",
                "{link} {flags:?}"
            );
            let listed: Vec<_> = walk(&outside);
            assert_eq!(
                listed,
                ["vault", "vault/dev", "vault/dev/.env.dev"],
                "{link} {flags:?}"
            );
        }
    }
}

/// Every path under `dir`, relative and sorted.
fn walk(dir: &Path) -> Vec<String> {
    fn go(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            out.push(name.clone());
            if entry.file_type().unwrap().is_dir() {
                go(&entry.path(), &format!("{name}/"), out);
            }
        }
    }
    let mut out = Vec::new();
    go(dir, "", &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_past_the_limits_is_refused_with_exit_5_and_writes_nothing() {
    let machine = machine().await;
    write(&machine.vault().join("big.bin"), &vec![0u8; 200 << 10]);
    machine.ok(&["push", "dev"]).await;
    std::fs::remove_dir_all(machine.vault()).unwrap();

    for (var, value, says) in [
        ("VSYNC_MAX_ENTRY_BYTES", "100000", "per file"),
        ("VSYNC_MAX_BUNDLE_BYTES", "150000", "in total"),
        ("VSYNC_MAX_BUNDLE_ENTRIES", "2", "entries"),
    ] {
        let output = machine
            .command(&["pull", "dev", "--force"])
            .env(var, value)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(5), "{var}: {stderr}");
        assert!(stderr.contains(says) && stderr.contains(var), "{stderr}");
        assert!(stderr.contains("nothing was written"), "{stderr}");
        let written = std::fs::read_dir(machine.vault())
            .map(|entries| entries.count())
            .unwrap_or(0);
        assert_eq!(written, 0, "{var}: files were written");
    }

    // A nonsense limit is a setup error, not a bad bundle.
    let output = machine
        .command(&["pull", "dev", "--force"])
        .env("VSYNC_MAX_BUNDLE_BYTES", "lots")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");

    // Within the defaults the same bundle pulls.
    machine.ok(&["pull", "dev", "--force"]).await;
    assert_eq!(
        std::fs::read(machine.vault().join("big.bin"))
            .unwrap()
            .len(),
        200 << 10
    );

    // Push refuses a folder no machine with the same limits could pull.
    let output = machine
        .command(&["push", "dev"])
        .env("VSYNC_MAX_ENTRY_BYTES", "100000")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("big.bin"), "{stderr}");
    assert_eq!(published_versions(&machine).await, 1);
}

/// Every file below `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_ending(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_encrypted_bundle_is_refused_before_it_is_read_whole() {
    let machine = machine().await;
    machine.ok(&["push", "dev"]).await;
    let bundles = files_ending(&machine.home, ".enc");
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    // Larger than the inflated limit plus the 16 MiB allowed for headers.
    std::fs::write(&bundles[0], vec![0u8; (1 << 20) + (16 << 20) + 1]).unwrap();
    std::fs::remove_dir_all(machine.vault()).unwrap();

    let output = machine
        .command(&["pull", "dev", "--force"])
        .env("VSYNC_MAX_BUNDLE_BYTES", (1u32 << 20).to_string())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "a bad bundle: {stderr}");
    assert!(
        stderr.contains("larger than") && stderr.contains("refusing to download"),
        "{stderr}"
    );
    assert!(!machine.vault().exists(), "nothing was written");
}
