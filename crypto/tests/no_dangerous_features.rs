//! Issue 13 item 14: fixed-IV sealing must not be reachable from anything
//! shipped.
//!
//! It used to be the `deterministic-iv` feature of this crate, enabled by a
//! normal dependency of the corpus generator; Cargo unifies features across
//! everything one command builds, so `cargo build --workspace` linked
//! fixed-IV sealing into the very `vsync-crypto` the `vsync` binary uses.
//! These tests ask Cargo itself (`cargo tree`, offline and against the
//! committed lock file) which features of `vsync-crypto` each build turns
//! on, so they fail the moment any crate re-enables such a feature,
//! whatever it is called.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The only feature Cargo may report for `vsync-crypto`: the implicit
/// `default` (empty). Adding a real feature means reviewing it here.
const ALLOWED: &[&str] = &["default"];

/// Words that mark a capability that must never reach a shipped build.
const FORBIDDEN_WORDS: &[&str] = &["deterministic", "dangerous", "fixed", "iv", "insecure"];

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crypto/ sits in the workspace root")
}

/// Runs `cargo tree` offline against the committed lock file (no network,
/// no lock rewrite) and returns its stdout.
fn cargo_tree(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["tree", "--offline", "--locked", "--color", "never"])
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cargo tree prints UTF-8")
}

/// The features of `vsync-crypto` a build selected by `selection` unifies,
/// as `cargo tree -e features -i vsync-crypto` reports them for the host
/// target (`--target all` would need every platform's crates downloaded,
/// and no `vsync-crypto` dependency is platform-specific).
fn crypto_features(selection: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["-e", "features", "-i", "vsync-crypto", "--prefix", "none"];
    args.extend_from_slice(selection);
    let tree = cargo_tree(&args);
    assert!(
        tree.lines().any(|line| line.starts_with("vsync-crypto v")),
        "cargo tree did not list vsync-crypto for {selection:?}:\n{tree}"
    );
    tree.lines()
        .filter_map(|line| line.strip_prefix("vsync-crypto feature \""))
        .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
        .collect()
}

fn assert_no_dangerous_feature(selection: &[&str]) {
    let features = crypto_features(selection);
    for feature in &features {
        let lower = feature.to_ascii_lowercase();
        let words: Vec<&str> = lower.split(['-', '_']).collect();
        assert!(
            !FORBIDDEN_WORDS.iter().any(|word| words.contains(word)),
            "`{selection:?}` turns on the dangerous vsync-crypto feature {feature:?}"
        );
        assert!(
            ALLOWED.contains(&feature.as_str()),
            "`{selection:?}` turns on vsync-crypto feature {feature:?}, which is not reviewed; \
             if it is safe for the shipped binary, add it to ALLOWED"
        );
    }
}

/// What `cargo build --workspace` (and `cargo test --workspace`, which adds
/// dev-dependencies) links: every member's features unified.
#[test]
fn workspace_build_unifies_no_dangerous_crypto_feature() {
    assert_no_dangerous_feature(&["--workspace"]);
    assert_no_dangerous_feature(&["--workspace", "-e", "normal,build,dev"]);
}

/// What `cargo build -p vsync` / `cargo install` links for the binary.
#[test]
fn vsync_binary_build_has_no_dangerous_crypto_feature() {
    assert_no_dangerous_feature(&["-p", "vsync"]);
}

/// The runtime library applications link, and the bindings built on it.
#[test]
fn runtime_library_build_has_no_dangerous_crypto_feature() {
    assert_no_dangerous_feature(&["-p", "vsync-s3-client"]);
}

/// Fixed-IV sealing now lives in the corpus generator, so nothing shipped
/// may depend on that crate (not even indirectly).
#[test]
fn shipped_packages_never_depend_on_the_vector_generator() {
    for package in ["vsync", "vsync-s3-client", "vsync-ops", "vsync-engine"] {
        let tree = cargo_tree(&["-p", package, "-e", "normal,build", "--prefix", "none"]);
        assert!(
            tree.lines().any(|line| line.starts_with(package)),
            "cargo tree -p {package} printed nothing useful:\n{tree}"
        );
        assert!(
            !tree
                .lines()
                .any(|line| line.starts_with("vsync-test-vectors")),
            "{package} depends on vsync-test-vectors, which can seal with a fixed IV"
        );
    }
}

/// This crate declares no feature at all, so there is nothing to unify.
#[test]
fn crypto_manifest_declares_no_feature() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .expect("crypto/Cargo.toml is readable");
    let declares_features = manifest
        .lines()
        .any(|line| line.trim_start().starts_with("[features]"));
    assert!(
        !declares_features,
        "crypto/Cargo.toml declares [features]; review them against FORBIDDEN_WORDS and ALLOWED"
    );
}
