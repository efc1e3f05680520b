//! `vsync import` of 1,000 text secrets from each source's harness service
//! (the same harnesses the shared Source suite runs against: moto for AWS,
//! the Key Vault, Secret Manager, Vault and 1Password Connect fakes, a real
//! `.env` file), then a re-import of the unchanged source: the API calls
//! per kind, the plan's writes and the wall time of each.
//!
//! The design targets (issue 14): a first import makes no more calls than
//! the listing's pages plus ⌈n / batch size⌉ reads where the platform has a
//! batch read (pages + n where it reads one secret a call), and a re-import
//! of an unchanged source writes nothing (and, where the listing carries a
//! revision, reads nothing). A platform over its bound is named under the
//! table.
//!
//! Each platform's service is started and seeded once (seeding moto takes
//! far longer than an import); each of the 3 rounds imports it into a fresh,
//! empty vault and then re-imports it unchanged, and the times shown are
//! the medians of the rounds. The import runs as the suite's
//! `Vault::import` does, unpaced (`RateBudget::unpaced(4)`): this measures
//! vsync's own overhead and the call counts, not the platforms' real pacing
//! or network latency. Each import's source is built before its timer
//! starts (Key Vault's harness waits there for the second of its last
//! write to end).
//!
//! Run: `cargo bench -p vsync-sources --bench import --profile dev`. The dev
//! profile reuses the debug build of the tests; a release build of every
//! platform SDK takes too long on a small machine, so the times are of
//! unoptimised code and only comparable with each other.

#[path = "../tests/suite/mod.rs"]
mod suite;

use std::time::{Duration, Instant};

use suite::{Harness, Vault};
use vsync_engine::import::ImportAction;
use vsync_testcontainers::faults::Call;

const SECRETS: usize = 1000;
const ROUNDS: usize = 3;

/// What one import cost.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Cost {
    /// List and read calls, `None` for a source without platform calls.
    calls: Option<(usize, usize)>,
    writes: usize,
}

/// One platform's figures over the rounds.
struct Row {
    platform: &'static str,
    batch: usize,
    pages: usize,
    first: Cost,
    again: Cost,
    first_times: Vec<Duration>,
    again_times: Vec<Duration>,
    steady: bool,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "import: {SECRETS} text secrets from each harness service, unpaced, {ROUNDS} rounds (one seeded service per platform, a fresh vault per round)"
    );
    let rows = runtime.block_on(async {
        vec![
            measure("aws", &suite::aws::start().await).await,
            measure("azure", &suite::azure::KeyVault::start().await).await,
            measure("gcp", &suite::gcp::Gcp::start().await).await,
            measure("vault", &suite::vault::VaultKv::start().await).await,
            measure("onepassword", &suite::onepassword::Connect::start().await).await,
            measure("dotenv", &suite::dotenv::EnvFile::new()).await,
        ]
    });
    print_table(&rows);
}

/// Seeds `harness` with the secrets, then runs the rounds.
async fn measure(platform: &'static str, harness: &dyn Harness) -> Row {
    let secrets: Vec<(String, String)> = (0..SECRETS)
        .map(|i| {
            (
                format!("BENCH_{i:04}_TOKEN"),
                format!("tok_{i:04}_{}", "x".repeat(32 + i % 32)),
            )
        })
        .collect();
    let started = Instant::now();
    harness.put_many(&secrets).await;
    println!(
        "{platform:>12}: seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let batch = harness.source().capabilities().batch;
    let mut costs = Vec::new();
    let (mut first_times, mut again_times) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let mut vault = Vault::new();
        let (first, elapsed) = import(harness, &mut vault).await;
        first_times.push(elapsed);
        let (again, elapsed) = import(harness, &mut vault).await;
        again_times.push(elapsed);
        costs.push((first, again));
    }
    let (first, again) = costs[0];
    Row {
        platform,
        batch,
        pages: SECRETS.div_ceil(harness.page_size()),
        first,
        again,
        first_times,
        again_times,
        steady: costs.iter().all(|cost| *cost == costs[0]),
    }
}

/// One import of a fresh source into `vault`: what it cost and how long
/// it took.
async fn import(harness: &dyn Harness, vault: &mut Vault) -> (Cost, Duration) {
    let source = harness.source();
    let counts = || {
        harness
            .faults()
            .map(|faults| (faults.calls(Call::List), faults.calls(Call::Read)))
    };
    let before = counts();
    let started = Instant::now();
    let plan = vault.import(source.as_ref()).await;
    let elapsed = started.elapsed();
    let calls = before
        .zip(counts())
        .map(|((lists, reads), (lists_after, reads_after))| {
            (lists_after - lists, reads_after - reads)
        });
    let imported = plan.count(ImportAction::Add) + plan.count(ImportAction::Unchanged);
    assert_eq!(
        imported,
        SECRETS,
        "{}: {:?}",
        plan.origin,
        plan.lines.iter().take(3).collect::<Vec<_>>()
    );
    (
        Cost {
            calls,
            writes: plan.writes.len(),
        },
        elapsed,
    )
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| platform | batch | list calls | read calls | bound | first import ms | re-import reads | re-import writes | re-import ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    for row in rows {
        let bound = row.pages
            + if row.batch > 1 {
                SECRETS.div_ceil(row.batch.min(SECRETS))
            } else {
                SECRETS
            };
        let dash = || "-".to_owned();
        let (lists, reads, bound_text) = match row.first.calls {
            Some((lists, reads)) => {
                if lists + reads > bound {
                    notes.push(format!(
                        "{}: {} calls over its bound of {bound}",
                        row.platform,
                        lists + reads
                    ));
                }
                (lists.to_string(), reads.to_string(), bound.to_string())
            }
            None => (dash(), dash(), dash()),
        };
        let again_reads = row
            .again
            .calls
            .map_or_else(dash, |(_, reads)| reads.to_string());
        let batch = if row.batch >= SECRETS {
            "all".to_owned()
        } else {
            row.batch.to_string()
        };
        println!(
            "| {} | {batch} | {lists} | {reads} | {bound_text} | {:.1} | {again_reads} | {} | {:.1} |",
            row.platform,
            median_ms(&row.first_times),
            row.again.writes,
            median_ms(&row.again_times),
        );
        if row.first.writes != SECRETS {
            notes.push(format!(
                "{}: the first import wrote {} of {SECRETS}",
                row.platform, row.first.writes
            ));
        }
        if row.again.writes != 0 {
            notes.push(format!("{}: the re-import rewrote something", row.platform));
        }
        if !row.steady {
            notes.push(format!(
                "{}: the call counts differed between rounds (round 1 shown)",
                row.platform
            ));
        }
    }
    println!();
    if notes.is_empty() {
        println!("every platform within its bound; no re-import wrote anything");
    }
    for line in notes {
        println!("note: {line}");
    }
}

fn median_ms(times: &[Duration]) -> f64 {
    let mut times = times.to_vec();
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}
