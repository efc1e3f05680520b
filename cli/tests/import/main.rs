//! `vsync import <env> --from <platform>` end to end through the binary,
//! one module per source, each against its harness service.

#[path = "../common/mod.rs"]
mod common;

mod aws;
mod azure;
mod dotenv;
mod gcp;
mod onepassword;
mod roundtrip;
mod vault;

/// Runs `command`: its exit code and everything it printed (stdout, then
/// stderr), checked that none of `never_shown` appears in it.
async fn output_without(
    mut command: tokio::process::Command,
    never_shown: &[&str],
) -> (Option<i32>, String) {
    let output = command.output().await.unwrap();
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in never_shown {
        assert!(!both.contains(secret), "a value was printed:\n{both}");
    }
    (output.status.code(), both)
}

/// A `.env` text's entries, sorted by key, checked to read as written.
fn sorted_entries(text: &str) -> Vec<(String, String)> {
    let parsed = vsync_engine::dotenv::parse(text);
    assert_eq!(parsed.problems, []);
    let mut entries: Vec<(String, String)> = parsed
        .entries
        .into_iter()
        .map(|entry| (entry.key, entry.value.to_string()))
        .collect();
    entries.sort();
    entries
}
