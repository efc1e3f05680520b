//! Version timestamps: `YYYYMMDD-HHmmss` in UTC, the name of every bundle
//! and the value sealed inside it. Their fixed width makes string order equal
//! time order, which is what the anti-rollback checks rely on.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A validated `YYYYMMDD-HHmmss` UTC timestamp.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(String);

/// A string that is not a `YYYYMMDD-HHmmss` timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version timestamp (expected YYYYMMDD-HHmmss, e.g. 20260429-103045)")]
pub struct InvalidTimestamp(pub String);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        Self::from_unix(secs)
    }

    /// The timestamp of a Unix time in seconds.
    pub fn from_unix(secs: u64) -> Self {
        let days = i64::try_from(secs / 86_400).expect("u64 seconds / 86400 fits i64");
        let (year, month, day) = civil_from_days(days);
        let rest = secs % 86_400;
        Timestamp(format!(
            "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        ))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Seconds since the Unix epoch (0 for instants before it).
    pub fn unix_seconds(&self) -> u64 {
        let number = |range: std::ops::Range<usize>| self.0[range].parse::<i64>().unwrap_or(0);
        let days = days_from_civil(number(0..4), number(4..6), number(6..8));
        let secs = days * 86_400 + number(9..11) * 3600 + number(11..13) * 60 + number(13..15);
        u64::try_from(secs).unwrap_or(0)
    }
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let shape_ok = bytes.len() == 15
            && bytes[8] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 8 || b.is_ascii_digit());
        let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
        if shape_ok
            && (1..=12).contains(&number(4..6))
            && (1..=31).contains(&number(6..8))
            && number(9..11) < 24
            && number(11..13) < 60
            && number(13..15) < 61
        {
            Ok(Timestamp(text.to_owned()))
        } else {
            Err(InvalidTimestamp(text.to_owned()))
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * shifted_month + 2) / 5 + 1).expect("1..=31");
    let month = u32::try_from(if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    })
    .expect("1..=12");
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01, the inverse of
/// [`civil_from_days`] (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp::from_unix(0).as_str(), "19700101-000000");
        // 2026-04-29T10:30:45Z
        assert_eq!(
            Timestamp::from_unix(1_777_458_645).as_str(),
            "20260429-103045"
        );
        // 2024-02-29T23:59:59Z, a leap day
        assert_eq!(
            Timestamp::from_unix(1_709_251_199).as_str(),
            "20240229-235959"
        );
    }

    #[test]
    fn parses_only_the_fixed_format() {
        assert!("20260429-103045".parse::<Timestamp>().is_ok());
        for bad in [
            "2026042-103045",
            "20261329-103045",
            "20260429_103045",
            "20260429-253045",
            "../../etc/passwd",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn unix_seconds_inverts_from_unix() {
        for secs in [
            0,
            59,
            86_399,
            951_782_400,
            1_709_251_199,
            1_777_458_645,
            4_102_444_800,
        ] {
            assert_eq!(Timestamp::from_unix(secs).unix_seconds(), secs, "{secs}");
        }
    }

    #[test]
    fn order_is_time_order() {
        assert!(Timestamp::from_unix(1_000) < Timestamp::from_unix(1_001));
        assert!(Timestamp::from_unix(86_399) < Timestamp::from_unix(86_400));
    }
}
