//! RQE1 decrypt at the default 600,000 PBKDF2 iterations, next to a bare
//! PBKDF2 run, so the KDF floor and the decrypt overhead per size are both
//! visible. `open` (pre-derived key) isolates the AES-GCM cost.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vsync_crypto::{DEFAULT_ITERATIONS, Key, rqe1};

const PASSWORD: &[u8] = b"correct horse battery staple";
const SALT: &[u8] = b"NvTGExRJ8+Kn8dwdXrPv0w";
const SIZES: [(&str, usize); 3] = [("1KB", 1 << 10), ("1MB", 1 << 20), ("10MB", 10 << 20)];

fn benches(c: &mut Criterion) {
    let mut kdf = c.benchmark_group("kdf");
    kdf.sample_size(10);
    kdf.bench_function("pbkdf2-sha256-600k", |b| {
        b.iter(|| Key::derive(PASSWORD, SALT, DEFAULT_ITERATIONS))
    });
    kdf.finish();

    let key = Key::derive(PASSWORD, SALT, DEFAULT_ITERATIONS);
    let mut decrypt = c.benchmark_group("rqe1-decrypt-600k");
    decrypt.sample_size(10);
    for (label, size) in SIZES {
        let envelope = rqe1::seal(&key, &vec![0x5a; size]);
        decrypt.throughput(Throughput::Bytes(size as u64));
        decrypt.bench_with_input(
            BenchmarkId::from_parameter(label),
            &envelope,
            |b, envelope| {
                b.iter(|| rqe1::decrypt(PASSWORD, SALT, DEFAULT_ITERATIONS, envelope).unwrap())
            },
        );
    }
    decrypt.finish();

    let mut open = c.benchmark_group("rqe1-open-derived-key");
    for (label, size) in SIZES {
        let envelope = rqe1::seal(&key, &vec![0x5a; size]);
        open.throughput(Throughput::Bytes(size as u64));
        open.bench_with_input(
            BenchmarkId::from_parameter(label),
            &envelope,
            |b, envelope| b.iter(|| rqe1::open(&key, envelope).unwrap()),
        );
    }
    open.finish();
}

criterion_group!(rqe1_benches, benches);
criterion_main!(rqe1_benches);
