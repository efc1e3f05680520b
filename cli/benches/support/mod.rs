//! What the whole-process benchmarks share: the medians they report.

use std::ffi::OsString;
use std::time::Duration;

/// The caller's `PATH`, for the commands a benchmark runs.
pub fn path() -> OsString {
    std::env::var_os("PATH").unwrap_or_default()
}

/// The median of `times` (sorted in place).
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// `time` in milliseconds.
pub fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1000.0
}
