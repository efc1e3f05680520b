//! Redaction throughput for `vsync exec`: 100 random 16–64-byte secrets with
//! all their forms, over 4 MiB of log-like text with some of those forms
//! embedded, streamed in 8 KiB chunks (a pipe read's size) and, for
//! comparison, as one buffer. Target: at least 200 MB/s on one core.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vsync_redact::{REPLACEMENT, Redactor};

const SECRETS: usize = 100;
const TEXT_LEN: usize = 4 << 20;
const CHUNK: usize = 8 << 10;
/// Characters of API tokens and generated passwords, punctuation included so
/// that the percent- and JSON-encoded forms differ from the literal.
const SECRET_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&*+-./:=?@^_~\"";

/// xorshift64*: deterministic input without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn secrets(rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..SECRETS)
        .map(|_| {
            let len = 16 + rng.below(49);
            (0..len).map(|_| *rng.pick(SECRET_CHARS)).collect()
        })
        .collect()
}

/// Service-log lines; one in 50 prints a secret in one of its forms.
fn log_text(rng: &mut Rng, secrets: &[Vec<u8>]) -> Vec<u8> {
    const LEVELS: [&str; 4] = ["INFO ", "DEBUG", "WARN ", "ERROR"];
    const ROUTES: [&str; 5] = [
        "/api/v1/users",
        "/api/v1/orders",
        "/healthz",
        "/api/v2/search",
        "/static/app.js",
    ];
    let mut text = Vec::with_capacity(TEXT_LEN + 512);
    while text.len() < TEXT_LEN {
        let millis = rng.below(86_400_000);
        let line = format!(
            "2025-03-14T{:02}:{:02}:{:02}.{:03}Z {} http: GET {}/{} status={} took={}ms request_id={:016x} user_agent=\"Mozilla/5.0 (X11; Linux x86_64)\"",
            millis / 3_600_000,
            millis / 60_000 % 60,
            millis / 1000 % 60,
            millis % 1000,
            rng.pick(&LEVELS),
            rng.pick(&ROUTES),
            rng.below(100_000),
            rng.pick(&[200, 200, 200, 201, 304, 404, 500]),
            rng.below(2000),
            rng.next(),
        );
        text.extend_from_slice(line.as_bytes());
        if rng.below(50) == 0 {
            let secret = rng.pick(secrets);
            let form = match rng.below(4) {
                0 => secret.clone(),
                1 => STANDARD.encode(secret).into_bytes(),
                2 => URL_SAFE_NO_PAD.encode(secret).into_bytes(),
                _ => hex::encode(secret).into_bytes(),
            };
            text.extend_from_slice(b" token=");
            text.extend_from_slice(&form);
        }
        text.push(b'\n');
    }
    text
}

fn benches(c: &mut Criterion) {
    let mut rng = Rng(0x5eed_f00d_7e57);
    let secrets = secrets(&mut rng);
    let text = log_text(&mut rng, &secrets);
    let redactor = Redactor::new(&secrets).unwrap();
    let redactions = redactor
        .redact(&text)
        .windows(REPLACEMENT.len())
        .filter(|window| *window == REPLACEMENT)
        .count();
    eprintln!(
        "{redactor:?}, longest pattern {} bytes, {redactions} redactions in {} bytes of text",
        redactor.max_pattern_len(),
        text.len()
    );

    let mut group = c.benchmark_group("redact-100-secrets");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    group.bench_function("stream-8KiB-chunks", |b| {
        b.iter(|| {
            let mut stream = redactor.stream();
            let mut emitted = 0;
            for chunk in text.chunks(CHUNK) {
                emitted += black_box(stream.push(chunk)).len();
            }
            emitted + stream.finish().len()
        })
    });
    group.bench_function("whole-buffer", |b| {
        b.iter(|| redactor.redact(black_box(&text)).len())
    });
    group.finish();
}

criterion_group!(redact_benches, benches);
criterion_main!(redact_benches);
