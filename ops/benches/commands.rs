//! One key derivation per command (issue 16 item 7): `push`, `pull` (plain,
//! `--force`, `--backup`), `sync --dry-run` and `status --check-remote` on
//! the local directory store, each next to the bare PBKDF2-SHA256 600k
//! derivation measured in the same run and reported as a ratio to it.
//! Target: every command ≤ 1.2 × the bare derivation.
//!
//! The commands run through the same `vsync-ops` functions the CLI calls,
//! with the CLI's defaults (audit log on), on a git checkout and a file
//! keystore in a temporary directory. `sync --dry-run` plans against
//! GitHub Actions served by the harness's in-process GitHub fake: no
//! installed service, no credentials. Each pushed version needs a new
//! second, so `push` rotates over a pool of envs and only times a push
//! whose previous version is at least a second old (the wait, when there is
//! one, is untimed).
//!
//! What a command spends beyond the derivation is mostly its durable
//! writes (each one an fsync: the rolling backup, the unpacked files, the
//! ledger, the store's objects, the audit log) and its `git` processes, so
//! the ratios depend on the disk as much as on vsync: compare them within
//! one run on one machine.
//!
//! Run: `cargo bench -p vsync-ops --bench commands`.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vsync_crypto::kdf::derivations_on_this_thread;
use vsync_crypto::{DEFAULT_ITERATIONS, Key};
use vsync_engine::sync::SyncOptions;
use vsync_ops::{
    Context, InitOptions, PullOptions, PushOptions, Quiet, StatusOptions, SyncRequest, init, pull,
    push, status, sync,
};
use vsync_testcontainers::GithubFake;

/// A keystore value and a salt shaped like the ones `init` makes.
const PASSPHRASE: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";
const SALT: &str = "NvTGExRJ8+Kn8dwdXrPv0w";
const TARGET_RATIO: f64 = 1.2;
/// Envs `push` rotates over.
const PUSH_POOL: usize = 24;
/// A version name holds whole seconds: a push within the second of the
/// env's last version would wait for the next one.
const VERSION_RESOLUTION: Duration = Duration::from_millis(1_050);

/// The repo every benchmark machine holds.
const REPO: &str = "acme";

/// A git checkout of repo [`REPO`] with a file keystore and the local
/// store, all in a temporary directory.
struct Machine {
    _tmp: tempfile::TempDir,
    ctx: Context,
}

impl Machine {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let checkout = tmp.path().join("checkout");
        std::fs::create_dir_all(&checkout).expect("the checkout");
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&checkout)
            .status()
            .expect("git runs");
        assert!(git.success(), "git init");
        let ctx = Context::sandboxed(tmp.path(), checkout, REPO);
        Machine { _tmp: tmp, ctx }
    }

    /// `vsync init <env>` with the CLI's defaults, and a `.env.<env>`.
    fn init_env(&self, env: &str) {
        let options = InitOptions {
            local: true,
            audit: true,
            ..InitOptions::default()
        };
        let report = init(&self.ctx, env, &options).expect("init");
        std::fs::write(
            report.vault_dir.join(format!(".env.{env}")),
            "DATABASE_URL=postgres://app:s3cret@db/app\nAPI_KEY=k-123\nLOG_LEVEL=info\n",
        )
        .expect("the .env file");
    }

    fn plain_backups(&self) -> PathBuf {
        self.ctx
            .base
            .plain_backups_dir(REPO)
            .expect("a backups folder")
    }
}

/// One timed run: how long it took and how many PBKDF2 derivations it ran.
#[derive(Clone, Copy)]
struct Sample {
    time: Duration,
    derivations: u64,
}

/// Runs `command`, timed and its derivations counted (the command's future
/// runs on this thread: `block_on` polls it here).
fn measure(command: impl FnOnce()) -> Sample {
    let derivations = derivations_on_this_thread();
    let started = Instant::now();
    command();
    Sample {
        time: started.elapsed(),
        derivations: derivations_on_this_thread() - derivations,
    }
}

/// Per-sample times (the mean of criterion's iterations) and the most
/// derivations one run took, per benchmark in the order they ran.
#[derive(Default)]
struct Runs(RefCell<Vec<(&'static str, Vec<Duration>, u64)>>);

impl Runs {
    /// `iters` runs of `run`; answers their total time, for criterion.
    fn time(&self, name: &'static str, iters: u64, run: &mut dyn FnMut() -> Sample) -> Duration {
        let samples: Vec<Sample> = (0..iters).map(|_| run()).collect();
        let total: Duration = samples.iter().map(|sample| sample.time).sum();
        let derivations = samples.iter().map(|s| s.derivations).max().unwrap_or(0);
        let per_run = total / u32::try_from(iters).expect("few iterations");
        let mut runs = self.0.borrow_mut();
        match runs.iter_mut().find(|(known, ..)| *known == name) {
            Some((_, times, most)) => {
                times.push(per_run);
                *most = (*most).max(derivations);
            }
            None => runs.push((name, vec![per_run], derivations)),
        }
        total
    }

    /// Each benchmark's median as a ratio to the first (the bare
    /// derivation).
    fn report(&self) {
        let runs = self.0.borrow();
        let median = |times: &[Duration]| {
            let mut times = times.to_vec();
            times.sort();
            times[times.len() / 2].as_secs_f64()
        };
        let Some((floor_name, floor_times, _)) = runs.first() else {
            return;
        };
        let floor = median(floor_times);
        println!(
            "\nmedian per run, as a ratio to {floor_name} (target ≤ {TARGET_RATIO:.2}×), and PBKDF2 derivations per run:"
        );
        for (name, times, derivations) in runs.iter() {
            let time = median(times);
            let ratio = time / floor;
            let verdict = if ratio <= TARGET_RATIO {
                ""
            } else {
                "  over target"
            };
            println!(
                "  {name:<24} {:>7.1} ms  {ratio:>5.2}×  {derivations} derivation(s){verdict}",
                time * 1e3
            );
        }
    }
}

fn commands(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runs = Runs::default();

    let mut group = c.benchmark_group("commands");
    group.sample_size(10);

    group.bench_function("pbkdf2-sha256-600k", |b| {
        b.iter_custom(|iters| {
            runs.time("pbkdf2-sha256-600k", iters, &mut || {
                measure(|| {
                    std::hint::black_box(Key::derive(
                        PASSPHRASE.as_bytes(),
                        SALT.as_bytes(),
                        DEFAULT_ITERATIONS,
                    ));
                })
            })
        })
    });

    // `push`: a pool of envs, each with one version already published.
    let pusher = Machine::new();
    let mut pool: VecDeque<(String, Instant)> = (0..PUSH_POOL)
        .map(|n| {
            let env = format!("p{n}");
            pusher.init_env(&env);
            runtime
                .block_on(push(&pusher.ctx, &env, &PushOptions::default(), &Quiet))
                .expect("the first push");
            (env, Instant::now())
        })
        .collect();
    group.bench_function("push", |b| {
        b.iter_custom(|iters| {
            runs.time("push", iters, &mut || {
                let (env, pushed_at) = pool.pop_front().expect("a pooled env");
                std::thread::sleep(VERSION_RESOLUTION.saturating_sub(pushed_at.elapsed()));
                let sample = measure(|| {
                    runtime
                        .block_on(push(&pusher.ctx, &env, &PushOptions::default(), &Quiet))
                        .expect("push");
                });
                pool.push_back((env, Instant::now()));
                sample
            })
        })
    });

    // Everything else works on one published env, `dev`.
    let machine = Machine::new();
    machine.init_env("dev");
    runtime
        .block_on(push(&machine.ctx, "dev", &PushOptions::default(), &Quiet))
        .expect("the first push");
    let pulls = [
        ("pull", PullOptions::default()),
        (
            "pull --force",
            PullOptions {
                force: true,
                ..PullOptions::default()
            },
        ),
        (
            "pull --backup",
            PullOptions {
                backup: true,
                ..PullOptions::default()
            },
        ),
    ];
    for (name, options) in pulls {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runs.time(name, iters, &mut || {
                    // A plain `--backup` copy is named to the second and
                    // never overwritten.
                    match std::fs::remove_dir_all(machine.plain_backups()) {
                        Ok(()) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                        Err(err) => panic!("removing the plain backups: {err}"),
                    }
                    measure(|| {
                        let report = runtime
                            .block_on(pull(&machine.ctx, "dev", &options, &Quiet))
                            .expect("pull");
                        assert!(report.encrypted_backup.is_some());
                    })
                })
            })
        });
    }

    let fake = runtime
        .block_on(GithubFake::start())
        .expect("the GitHub fake starts");
    let endpoint = fake.endpoint();
    let environment = |name: &str| match name {
        "GITHUB_API_URL" => Some(endpoint.clone()),
        "GITHUB_TOKEN" => Some(GithubFake::TOKEN.to_owned()),
        _ => None,
    };
    let request = SyncRequest {
        flags: vec![("gh-repo".into(), "acme/api".into())],
        options: SyncOptions {
            dry_run: true,
            ..SyncOptions::default()
        },
        ..SyncRequest::default()
    };
    group.bench_function("sync --dry-run", |b| {
        b.iter_custom(|iters| {
            runs.time("sync --dry-run", iters, &mut || {
                measure(|| {
                    let outcome = runtime
                        .block_on(sync(
                            &machine.ctx,
                            "dev",
                            "gh",
                            &request,
                            &environment,
                            &Quiet,
                        ))
                        .expect("sync --dry-run");
                    assert_eq!(outcome.report.secrets.len(), 3);
                })
            })
        })
    });

    group.bench_function("status --check-remote", |b| {
        b.iter_custom(|iters| {
            runs.time("status --check-remote", iters, &mut || {
                measure(|| {
                    let report = runtime
                        .block_on(status(&machine.ctx, StatusOptions { check_remote: true }))
                        .expect("status");
                    assert!(report.envs.iter().all(|env| env.ok()));
                })
            })
        })
    });
    group.finish();
    runs.report();
    drop(fake);
}

criterion_group!(benches, commands);
criterion_main!(benches);
