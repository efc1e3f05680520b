//! ISO-8601 renderings of instants as Node's `Date.toISOString()` writes
//! them, built on the engine's `YYYYMMDD-HHmmss` [`Timestamp`].

use std::time::{SystemTime, UNIX_EPOCH};

use vsync_engine::timestamp::Timestamp;

/// Seconds and milliseconds since the epoch (clamped at the epoch).
fn split(at: SystemTime) -> (u64, u32) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    (since.as_secs(), since.subsec_millis())
}

/// `YYYY-MM-DDTHH:mm:ss` from a `YYYYMMDD-HHmmss` timestamp.
fn iso_seconds(ts: &Timestamp) -> String {
    let s = ts.as_str();
    format!(
        "{}-{}-{}T{}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// `toISOString()`: `2026-05-25T14:23:00.123Z` (ledger, audit log,
/// `.keytree` and rotation stamps).
pub fn iso_millis(at: SystemTime) -> String {
    let (secs, millis) = split(at);
    format!("{}.{millis:03}Z", iso_seconds(&Timestamp::from_unix(secs)))
}

/// The `--backup` directory stamp: `toISOString()` with `:` → `-` and the
/// milliseconds removed, e.g. `2026-05-25T14-23-00Z`.
pub(crate) fn iso_backup_stamp(at: SystemTime) -> String {
    let (secs, _) = split(at);
    format!(
        "{}Z",
        iso_seconds(&Timestamp::from_unix(secs)).replace(':', "-")
    )
}

/// The `YYYYMMDD-HHmmss` timestamp of an instant.
pub(crate) fn timestamp(at: SystemTime) -> Timestamp {
    Timestamp::from_unix(split(at).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_like_node() {
        let at = UNIX_EPOCH + Duration::from_millis(1_779_719_020_045);
        assert_eq!(iso_millis(at), "2026-05-25T14:23:40.045Z");
        assert_eq!(iso_backup_stamp(at), "2026-05-25T14-23-40Z");
        assert_eq!(timestamp(at).as_str(), "20260525-142340");
    }
}
