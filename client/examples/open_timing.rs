//! Times `open()` in-process, for the cross-language benchmark
//! (`scripts/bench-readers`): reads `VSYNC_CONFIG` / `VSYNC_PASSPHRASE` like
//! any application, opens the vault `N` times (first argument, default 5)
//! and prints one JSON line: each open's milliseconds, and each bare
//! PBKDF2-SHA256 derivation's with the blob's salt and iterations (the
//! floor), measured in the same process right after.

use std::time::Instant;

use vsync_crypto::Key;
use vsync_crypto::config_blob::RuntimeConfig;
use vsync_s3_client::{Options, blocking};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(5, |n| n.parse().expect("a number of opens"));
    let mut opens = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let vault = blocking::open(Options::new()).expect("the vault opens");
        opens.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(vault);
    }
    let blob = std::env::var("VSYNC_CONFIG").expect("VSYNC_CONFIG");
    let passphrase = std::env::var("VSYNC_PASSPHRASE").expect("VSYNC_PASSPHRASE");
    let config = RuntimeConfig::decode(&blob).expect("a valid blob");
    let mut floor = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let key = Key::derive(
            passphrase.as_bytes(),
            config.salt.as_bytes(),
            config.iterations,
        );
        floor.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(key);
    }
    println!("{}", serde_json::json!({ "open": opens, "floor": floor }));
}
