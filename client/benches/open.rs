//! `open()` against the local S3 server (s3s-fs from the test harness) for
//! 1 KB, 1 MB and 10 MB bundles, next to the bare PBKDF2-SHA256 600k floor
//! measured in the same run. Target: open ≤ 1.1 × the floor up to 1 MB.
//!
//! Each bundle is pushed as `vsync push` writes it: a vault folder with a
//! `.env.dev` and one incompressible asset of the given size, zipped by
//! `bundle::pack` and published by `vault::publish`.
//!
//! `open-1-iteration` opens the same bundles re-published under a blob with
//! one PBKDF2 iteration: the network round trips plus decrypt and unzip,
//! without the KDF — the part `open()` overlaps with the derivation. On the
//! 2-core VMs here it mostly measures how slowly an idle CPU wakes: at 10 MB
//! it took 130 ms with the machine idle and 56 ms with a busy loop on the
//! other core (and inside `open/10MB` the derivation keeps a core busy, so
//! the same path hides behind it: 78.8 ms in all against a 62.2 ms KDF).
//! Its downloads also pass the harness's write-serialising front.
//!
//! `after-key` is the part nothing can overlap, measured without any I/O:
//! from the downloaded bundle and the derived key to an open handle and
//! back (decrypt in place, unzip, wipe on drop).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vsync_backends::s3::{Proxy, S3Store};
use vsync_crypto::config_blob::RuntimeConfig;
use vsync_crypto::{DEFAULT_ITERATIONS, Key, Zeroizing, rqe1, rqem};
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::{self, Layout};
use vsync_s3_client::{Client, Options, open_with};
use vsync_testcontainers::S3Server;

const PASSPHRASE: &str = "bXlrZXljaGFpbnZhbHVlLW5vdC1hLXJlYWwtb25lLTEyMzQ=";
const SALT: &str = "NvTGExRJ8+Kn8dwdXrPv0w";
const BUCKET: &str = "vsync-bench";
const SIZES: [(&str, usize); 3] = [("1KB", 1 << 10), ("1MB", 1 << 20), ("10MB", 10 << 20)];

/// Deterministic incompressible bytes (xorshift64).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(S3Server::start()).expect("s3s-fs starts");
    runtime.block_on(server.create_bucket(BUCKET)).unwrap();
    let store = Arc::new(
        S3Store::builder()
            .endpoint(server.endpoint())
            .region(server.region())
            .bucket(BUCKET)
            .credentials(server.access_key(), server.secret_key())
            .proxy(Proxy::Disabled)
            .build()
            .unwrap(),
    );
    let key = Key::derive(PASSPHRASE.as_bytes(), SALT.as_bytes(), DEFAULT_ITERATIONS);
    let one = NonZeroU32::MIN;
    let cheap_key = Key::derive(PASSPHRASE.as_bytes(), SALT.as_bytes(), one);

    let mut floor = c.benchmark_group("floor");
    floor.sample_size(10);
    floor.bench_function("pbkdf2-sha256-600k", |b| {
        b.iter(|| Key::derive(PASSPHRASE.as_bytes(), SALT.as_bytes(), DEFAULT_ITERATIONS))
    });
    floor.finish();

    let mut blobs = Vec::new();
    for (label, size) in SIZES {
        let repo = tempfile::tempdir().unwrap();
        let folder = Path::new("infra/vault/dev");
        std::fs::create_dir_all(repo.path().join(folder)).unwrap();
        std::fs::write(
            repo.path().join(folder).join(".env.dev"),
            "DATABASE_URL=postgres://bench\nAPI_TOKEN=\"tok\"\n",
        )
        .unwrap();
        std::fs::write(repo.path().join(folder).join("blob.bin"), noise(size)).unwrap();
        let zip = vsync_engine::bundle::pack(repo.path(), folder).unwrap();
        let publish = |prefix: String, key: &Key, iterations: NonZeroU32| {
            let layout = Layout::new(&prefix).unwrap();
            runtime
                .block_on(vault::publish(
                    &*store,
                    &layout,
                    key,
                    &zip,
                    None,
                    Timestamp::now(),
                ))
                .unwrap();
            RuntimeConfig {
                endpoint: server.endpoint(),
                region: server.region().into(),
                bucket: BUCKET.into(),
                access_key_id: Zeroizing::new(server.access_key().into()),
                secret_access_key: Zeroizing::new(server.secret_key().into()),
                prefix,
                env: "dev".into(),
                salt: Zeroizing::new(SALT.into()),
                iterations,
            }
            .encode()
        };
        let full = publish(format!("bench/{label}/"), &key, DEFAULT_ITERATIONS);
        let cheap = publish(format!("bench-1/{label}/"), &cheap_key, one);
        let ts = "20250101-000000";
        let envelope = rqe1::seal(&key, &rqem::wrap(ts, &zip).unwrap());
        blobs.push((label, size, full, cheap, envelope));
    }

    let mut after_key = c.benchmark_group("after-key");
    for (label, size, _, _, envelope) in &blobs {
        after_key.throughput(Throughput::Bytes(*size as u64));
        after_key.bench_with_input(
            BenchmarkId::from_parameter(label),
            envelope,
            |b, envelope| {
                b.iter_batched(
                    || envelope.clone(),
                    |envelope| {
                        let plaintext = rqe1::open_owned(&key, envelope).unwrap();
                        let payload = rqem::unwrap(&plaintext).unwrap().payload;
                        let vault = Client::from_payload("dev", payload, Options::new()).unwrap();
                        assert_eq!(
                            vault.get_as_content("blob.bin").unwrap().expose().len(),
                            *size
                        );
                    },
                    criterion::BatchSize::LargeInput,
                )
            },
        );
    }
    after_key.finish();

    for (group_name, cheap) in [("open", false), ("open-1-iteration", true)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(10);
        for (label, size, full, cheap_blob, _) in &blobs {
            let blob = if cheap { cheap_blob } else { full };
            group.throughput(Throughput::Bytes(*size as u64));
            group.bench_with_input(BenchmarkId::from_parameter(label), blob, |b, blob| {
                b.iter(|| {
                    runtime
                        .block_on(open_with(blob, PASSPHRASE, Options::new()))
                        .unwrap()
                })
            });
            // Outside the timing: the bundle really was read.
            let vault = runtime
                .block_on(open_with(blob, PASSPHRASE, Options::new()))
                .unwrap();
            assert_eq!(
                vault.get_as_content("blob.bin").unwrap().expose().len(),
                *size
            );
        }
        group.finish();
    }
    drop(server);
}

criterion_group!(open, benches);
criterion_main!(open);
