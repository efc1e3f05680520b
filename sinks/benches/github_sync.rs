//! `vsync sync` of 500 changed secrets to a GitHub organisation (cap 1,000)
//! against the harness's GitHub fake, then a re-sync of the unchanged
//! vault: the API calls per kind and the wall time of each.
//!
//! The design targets: one public-key fetch and 500 writes for the first
//! sync, no write for the second. Writes run unpaced (16 in flight) to
//! measure vsync's own overhead — sealing, planning, the record — since
//! GitHub's real budget (80 content-creating requests a minute) would make
//! the run take minutes of waiting.
//!
//! Run: `cargo bench -p vsync-sinks --no-default-features --features github --bench github_sync`.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use vsync_backends::fs::FsStore;
use vsync_crypto::Key;
use vsync_crypto::fingerprint::FingerprintKey;
use vsync_engine::sink::{RateBudget, SecretValue, Sink};
use vsync_engine::sync::{Action, Desired, RecordStore, Silent, SyncOptions, SyncStatus, sync};
use vsync_engine::vault::Layout;
use vsync_sinks::github::GithubSink;
use vsync_testcontainers::{GithubFake, RequestCounts};

const SECRETS: usize = 500;
const IN_FLIGHT: usize = 16;
const ROUNDS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "github_sync: {SECRETS} secrets to an organisation target, unpaced with {IN_FLIGHT} in flight, {ROUNDS} rounds"
    );
    let mut first = Vec::new();
    let mut second = Vec::new();
    for round in 1..=ROUNDS {
        let (changed, unchanged) = runtime.block_on(round_trip(round));
        first.push(changed);
        second.push(unchanged);
    }
    first.sort();
    second.sort();
    println!(
        "median: first sync {:.1} ms ({:.2} ms per secret), unchanged re-sync {:.1} ms",
        millis(first[ROUNDS / 2]),
        millis(first[ROUNDS / 2]) / SECRETS as f64,
        millis(second[ROUNDS / 2]),
    );
}

/// One fresh fake and vault: the first sync, then the unchanged re-sync.
async fn round_trip(round: usize) -> (Duration, Duration) {
    let fake = GithubFake::start().await.expect("the GitHub fake starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = FsStore::open(dir.path().join("store")).expect("the local store");
    let key = Key::derive(
        b"bench passphrase",
        b"bench salt",
        NonZeroU32::new(1).expect("one"),
    );
    let layout = Layout::for_repo_env("acme/api", "prod");
    let fingerprints = FingerprintKey::derive(&key);
    let desired: Vec<Desired> = (0..SECRETS)
        .map(|i| Desired {
            key: format!("SERVICE_{i:03}_TOKEN"),
            value: SecretValue::from_text(&format!("tok_live_{i:03}_{}", "x".repeat(64 + i % 64))),
        })
        .collect();
    let options = SyncOptions {
        rate: Some(RateBudget::unpaced(IN_FLIGHT)),
        ..SyncOptions::default()
    };
    let sink = || {
        GithubSink::builder()
            .base_url(fake.endpoint())
            .token(GithubFake::TOKEN)
            .organization("acme")
            .build()
            .expect("valid settings")
    };

    let mut timings = Vec::new();
    for (label, expected) in [
        ("first sync", SyncStatus::Applied),
        ("re-sync", SyncStatus::NoOp),
    ] {
        // A new sink per run, as every `vsync sync` builds one.
        let sink = sink();
        let records = RecordStore::new(&store, &layout, &sink.target(), &key);
        let before = fake.counts();
        let started = Instant::now();
        let report = sync(&sink, &desired, &records, &fingerprints, &options, &Silent)
            .await
            .expect("the sync runs");
        let elapsed = started.elapsed();
        let calls = since(before, fake.counts());
        assert_eq!(report.status, expected, "{label}: {:?}", report.warnings);
        println!(
            "round {round} {label:>10}: {:>8.1} ms  created {:>3}, unchanged {:>3}; API calls: public-key {}, list pages {}, reads {}, writes {}, deletes {}",
            millis(elapsed),
            report.count(Action::Create),
            report.count(Action::Unchanged),
            calls.public_key,
            calls.lists,
            calls.reads,
            calls.puts,
            calls.deletes,
        );
        if round == 1 && label == "first sync" {
            let paced = sink.capabilities().rate.minimum_duration(SECRETS);
            println!(
                "        (GitHub's real limits, 80 writes a minute and 500 an hour, make {SECRETS} writes take at least {:.0} min)",
                paced.as_secs_f64() / 60.0
            );
        }
        timings.push(elapsed);
    }
    (timings[0], timings[1])
}

fn since(before: RequestCounts, after: RequestCounts) -> RequestCounts {
    RequestCounts {
        public_key: after.public_key - before.public_key,
        lists: after.lists - before.lists,
        reads: after.reads - before.reads,
        puts: after.puts - before.puts,
        deletes: after.deletes - before.deletes,
        unversioned: after.unversioned - before.unversioned,
        enterprise_paths: after.enterprise_paths - before.enterprise_paths,
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
