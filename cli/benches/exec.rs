//! `vsync exec dev -- true` as a whole process (issue 17): how much vsync
//! adds to starting a command, from each place it reads secrets, next to
//! `true` alone, tsafe's `exec -- true` and the bare PBKDF2-SHA256 600k
//! derivation, all measured in one run, round by round (each round runs
//! every command once, so drift of the machine hits them alike). Target:
//! every vsync row ≤ 1.2 × the derivation.
//!
//! - vault folder: `.env.dev` read as `sync` reads it (no key needed);
//! - `--remote`: the env's current version from the harness S3 server, its
//!   key from the file keystore, derived once;
//! - `VSYNC_CONFIG`: no local state at all, the runtime library's bootstrap
//!   (blob + passphrase in the environment), as in a container.
//!
//! The env holds 20 secrets; tsafe's vault the same 20. tsafe is found on
//! PATH (`cargo install tsafe-cli@4.1.0 --locked`, which needs Debian's
//! libdbus-1-dev and pkg-config); without it its row says so.
//!
//! Run: `cargo bench -p vsync --bench exec --profile dev` (the dev profile
//! builds every dependency and `vsync-crypto` optimised).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Machine;
use support::{median, ms, path};

const ROUNDS: usize = 25;
const SECRETS: usize = 20;
const TARGET_RATIO: f64 = 1.2;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server = runtime
        .block_on(vsync_testcontainers::S3Server::start())
        .expect("start s3s-fs (scripts/install-services)");
    runtime
        .block_on(server.create_bucket("vault"))
        .expect("a bucket");
    let machine = Machine::new();
    runtime.block_on(machine.init_on_bucket("dev", &server, &server.endpoint()));
    let dotenv: String = (0..SECRETS)
        .map(|index| format!("SECRET_{index}=value-of-secret-number-{index:04}\n"))
        .collect();
    std::fs::write(machine.vault().join(".env.dev"), &dotenv).expect("the .env");
    runtime.block_on(machine.ok(&["push", "dev"]));
    let blob = runtime.block_on(machine.ok(&["runtime-token", "--env=dev"]));
    let key = std::fs::read_to_string(machine.home.join(".config/vsync/.keystore/demo/dev.key"))
        .expect("the env's key");
    let container = tempfile::tempdir().expect("a container directory");
    let tsafe_home = tempfile::tempdir().expect("tsafe's home");
    let tsafe = tsafe_vault(tsafe_home.path(), &dotenv);

    let vsync = env!("CARGO_BIN_EXE_vsync");
    let on_machine = |extra: &[&str]| {
        let mut command = Command::new(vsync);
        command
            .arg("exec")
            .arg("dev")
            .args(extra)
            .args(["--", "true"])
            .current_dir(&machine.checkout)
            .env_clear()
            .env("PATH", path())
            .env("HOME", &machine.home)
            .env("VSYNC_KEYSTORE", "file");
        command
    };
    let mut bootstrap = Command::new(vsync);
    bootstrap
        .args(["exec", "dev", "--", "true"])
        .current_dir(container.path())
        .env_clear()
        .env("PATH", path())
        .env("HOME", container.path())
        .env("VSYNC_CONFIG", blob.trim())
        .env("VSYNC_PASSPHRASE", key.trim());
    let mut bare = Command::new("true");
    bare.env_clear().env("PATH", path());

    let mut rows: Vec<(&str, Option<Command>, Vec<Duration>)> = vec![
        ("true", Some(bare), Vec::new()),
        (
            "vsync exec dev (vault folder)",
            Some(on_machine(&[])),
            Vec::new(),
        ),
        (
            "vsync exec dev --remote",
            Some(on_machine(&["--remote"])),
            Vec::new(),
        ),
        ("vsync exec dev (VSYNC_CONFIG)", Some(bootstrap), Vec::new()),
        ("tsafe exec", tsafe, Vec::new()),
    ];
    let iterations = vsync_crypto::DEFAULT_ITERATIONS;
    let mut derivations = Vec::new();
    for round in 0..=ROUNDS {
        for (name, command, times) in &mut rows {
            let Some(command) = command else { continue };
            let started = Instant::now();
            let status = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("the command starts");
            let took = started.elapsed();
            assert!(status.success(), "{name} failed: {status}");
            // Round 0 warms caches and is not counted.
            if round > 0 {
                times.push(took);
            }
        }
        let started = Instant::now();
        let derived =
            vsync_crypto::Key::derive(key.trim().as_bytes(), b"NvTGExRJ8+Kn8dwd", iterations);
        let took = started.elapsed();
        drop(derived);
        if round > 0 {
            derivations.push(took);
        }
    }

    let floor = median(&mut derivations);
    let baseline = median(&mut rows[0].2);
    println!(
        "{ROUNDS} rounds, medians; {SECRETS} secrets; PBKDF2-SHA256 600k in-process: {:.1} ms",
        ms(floor)
    );
    println!("| command | median ms | over `true` ms | ÷ PBKDF2 | target ≤ {TARGET_RATIO} |");
    println!("|---|---:|---:|---:|---|");
    for (name, _, times) in &mut rows {
        if times.is_empty() {
            println!("| {name} | not run (tsafe not on PATH) | | | |");
            continue;
        }
        let time = median(times);
        let ratio = time.as_secs_f64() / floor.as_secs_f64();
        let verdict = match (*name).starts_with("vsync") {
            true if ratio <= TARGET_RATIO => "met",
            true => "MISSED",
            false => "",
        };
        println!(
            "| {name} | {:.1} | {:.1} | {ratio:.2} | {verdict} |",
            ms(time),
            ms(time.saturating_sub(baseline))
        );
    }
}

/// A tsafe vault in `home` holding the same secrets, and the command that
/// runs `true` under it; `None` without tsafe on PATH.
fn tsafe_vault(home: &Path, dotenv: &str) -> Option<Command> {
    let tsafe = vsync_engine::environment::find_program(&path().to_string_lossy(), "tsafe")?;
    let command = |args: &[&str]| {
        let mut command = Command::new(&tsafe);
        command
            .args(args)
            .env_clear()
            .env("PATH", path())
            .env("HOME", home)
            .env("TSAFE_PASSWORD", "bench-password-of-tsafe")
            .env("TSAFE_NONINTERACTIVE", "1")
            .stdin(Stdio::null());
        command
    };
    let ok = |mut command: Command| {
        let output = command.output().expect("tsafe runs");
        assert!(output.status.success(), "tsafe: {output:?}");
    };
    ok(command(&["init"]));
    for line in dotenv.lines() {
        let (name, value) = line.split_once('=').expect("NAME=value");
        ok(command(&["set", name, value]));
    }
    Some(command(&["exec", "--", "true"]))
}
