//! Shared driver and mutators for the proptest-based fuzz targets of every
//! crate (included with `#[path]`, so it is not a test target itself).
//!
//! Stable Rust has no `cargo fuzz`, so each target is a proptest strategy
//! that starts from VALID inputs (what the writers produce) and mutates them
//! the way a coverage fuzzer would — flip and set bytes, write interesting
//! integers into the length and count fields of the format, truncate,
//! insert, remove, duplicate, splice in bytes of another valid input — plus
//! plain random bytes.
//!
//! Budget: by default a modest case count (`PROPTEST_CASES` overrides it) so
//! `cargo test` stays fast. With `VSYNC_FUZZ_SECONDS=N` (`scripts/fuzz`) a
//! target instead runs batches until N seconds have passed. Either way it
//! prints one `fuzz-target <name>: executions=… failures=… seconds=…` line
//! (visible with `--nocapture`); a failure is shrunk to a minimal input by
//! proptest and fails the test with that input.

#![allow(dead_code)] // each test file uses a different part of this module

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per batch in timed mode: small enough to check the clock often,
/// large enough that creating a runner is noise.
const BATCH: u32 = 256;

/// The time budget per target when `VSYNC_FUZZ_SECONDS` is set.
pub fn budget() -> Option<Duration> {
    let seconds: f64 = std::env::var("VSYNC_FUZZ_SECONDS").ok()?.parse().ok()?;
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Runners built by hand have no source file to persist into; say so
        // instead of letting proptest warn on every run.
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

/// Runs `test` over `strategy` for the default case count or, in timed mode,
/// until the budget is spent; panics with the shrunk input on a failure
/// (a panic inside `test` counts as a failure: proptest catches it).
pub fn fuzz<S: Strategy>(
    target: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let executions = AtomicU64::new(0);
    let counted = |value: S::Value| {
        executions.fetch_add(1, Ordering::Relaxed);
        test(value)
    };
    let started = Instant::now();
    let result = match budget() {
        None => {
            let cases = std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|cases| cases.parse().ok())
                .unwrap_or(default_cases);
            TestRunner::new(config(cases)).run(&strategy, counted)
        }
        Some(budget) => loop {
            let batch = TestRunner::new(config(BATCH)).run(&strategy, counted);
            if batch.is_err() || started.elapsed() >= budget {
                break batch;
            }
        },
    };
    println!(
        "fuzz-target {target}: executions={} failures={} seconds={:.1}",
        executions.load(Ordering::Relaxed),
        u8::from(result.is_err()),
        started.elapsed().as_secs_f64()
    );
    if let Err(err) = result {
        panic!("fuzz target {target} failed: {err}");
    }
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Write an interesting little-endian integer (1, 2 or 4 bytes) at a
    /// structural offset of the format (a length, count or size field), or
    /// anywhere when the format names none.
    Field(Index, Width, Interesting),
    /// Keep only a prefix.
    Truncate(Index),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove up to `n` bytes.
    Remove(Index, usize),
    /// Repeat a slice in place.
    Duplicate(Index, usize),
    /// Insert a slice of the other valid input (crossover).
    Splice(Index, Index, usize),
}

/// Width of a [`Mutation::Field`] write.
#[derive(Debug, Clone, Copy)]
pub enum Width {
    /// One byte.
    U8,
    /// Two bytes, little-endian.
    U16,
    /// Four bytes, little-endian.
    U32,
}

/// Values that break length arithmetic.
#[derive(Debug, Clone, Copy)]
pub enum Interesting {
    /// 0.
    Zero,
    /// 1.
    One,
    /// The width's maximum.
    Max,
    /// The width's maximum signed value.
    SignedMax,
    /// The input's length, minus or plus a little.
    InputLen(i8),
    /// Anything.
    Any(u32),
}

impl Interesting {
    fn value(self, width: Width, input_len: usize) -> u32 {
        let max = match width {
            Width::U8 => 0xff,
            Width::U16 => 0xffff,
            Width::U32 => u32::MAX,
        };
        match self {
            Interesting::Zero => 0,
            Interesting::One => 1,
            Interesting::Max => max,
            Interesting::SignedMax => max >> 1,
            Interesting::InputLen(delta) => {
                (input_len as i64 + i64::from(delta)).clamp(0, i64::from(max)) as u32
            }
            Interesting::Any(value) => value & max,
        }
    }
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![Just(Width::U8), Just(Width::U16), Just(Width::U32)]
}

fn interesting() -> impl Strategy<Value = Interesting> {
    prop_oneof![
        Just(Interesting::Zero),
        Just(Interesting::One),
        Just(Interesting::Max),
        Just(Interesting::SignedMax),
        any::<i8>().prop_map(Interesting::InputLen),
        any::<u32>().prop_map(Interesting::Any),
    ]
}

/// One random mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        3 => (any::<Index>(), width(), interesting())
            .prop_map(|(at, width, value)| Mutation::Field(at, width, value)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, n)| Mutation::Remove(at, n)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..64)
            .prop_map(|(at, from, n)| Mutation::Splice(at, from, n)),
    ]
}

/// One to four mutations.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..=4)
}

/// Applies `mutations` to `input` in order. `fields` lists the structural
/// offsets of the format (lengths, counts, sizes) for [`Mutation::Field`];
/// `other` is a second valid input for [`Mutation::Splice`].
pub fn apply(
    input: &[u8],
    other: &[u8],
    mutations: &[Mutation],
    fields: impl Fn(&[u8]) -> Vec<usize>,
) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for mutation in mutations {
        let len = bytes.len();
        // An index into the current bytes, or into the gaps between them.
        let pos = |at: &Index| if len == 0 { 0 } else { at.index(len) };
        let gap = |at: &Index| at.index(len + 1);
        match mutation {
            Mutation::Flip(at, mask) if len > 0 => bytes[pos(at)] ^= mask,
            Mutation::Set(at, byte) if len > 0 => bytes[pos(at)] = *byte,
            Mutation::Field(at, width, value) => {
                let offsets = fields(&bytes);
                let offset = if offsets.is_empty() {
                    gap(at)
                } else {
                    offsets[at.index(offsets.len())]
                };
                let value = value.value(*width, len);
                let le = value.to_le_bytes();
                let width = match width {
                    Width::U8 => 1,
                    Width::U16 => 2,
                    Width::U32 => 4,
                };
                for (i, byte) in le[..width].iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(offset + i) {
                        *slot = *byte;
                    }
                }
            }
            Mutation::Truncate(at) => bytes.truncate(gap(at)),
            Mutation::Insert(at, extra) => {
                let at = gap(at);
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Remove(at, n) if len > 0 => {
                let at = pos(at);
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::Duplicate(at, n) if len > 0 => {
                let at = pos(at);
                let copy = bytes[at..(at + n).min(len)].to_vec();
                bytes.splice(at..at, copy);
            }
            Mutation::Splice(at, from, n) if !other.is_empty() => {
                let from = from.index(other.len());
                let chunk = &other[from..(from + n).min(other.len())];
                let at = gap(at);
                bytes.splice(at..at, chunk.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

/// No structural offsets: [`Mutation::Field`] writes anywhere.
pub fn anywhere(_: &[u8]) -> Vec<usize> {
    Vec::new()
}

/// Random bytes, mostly short, sometimes long.
pub fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => proptest::collection::vec(any::<u8>(), 64..4096),
    ]
}

/// Random bytes that start with `prefix` (so the parser gets past the magic).
pub fn random_after(prefix: &'static [u8], len: Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), len).prop_map(move |tail| {
        let mut bytes = prefix.to_vec();
        bytes.extend(tail);
        bytes
    })
}

/// The length, count, size and offset fields of a zip archive: every local
/// header, central directory record and end-of-central-directory record
/// found by its signature (so mutations hit what the reader trusts).
pub fn zip_fields(zip: &[u8]) -> Vec<usize> {
    const LOCAL: (&[u8], &[usize]) = (b"PK\x03\x04", &[6, 8, 14, 18, 22, 26, 28]);
    const CENTRAL: (&[u8], &[usize]) = (
        b"PK\x01\x02",
        &[4, 8, 10, 16, 20, 24, 28, 30, 32, 38, 40, 42],
    );
    const END: (&[u8], &[usize]) = (b"PK\x05\x06", &[8, 10, 12, 16, 20]);
    let mut fields = Vec::new();
    for at in 0..zip.len().saturating_sub(3) {
        for (signature, offsets) in [LOCAL, CENTRAL, END] {
            if &zip[at..at + 4] == signature {
                fields.extend(offsets.iter().map(|offset| at + offset));
            }
        }
    }
    fields
}
