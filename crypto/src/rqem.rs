//! `RQEM0001`: the timestamp seal that makes rollbacks detectable, and the
//! manifest meta cell that carries the generation counter.
//!
//! ```text
//! offset 0   8 bytes   magic "RQEM0001"
//! offset 8   15 bytes  timestamp, ASCII YYYYMMDD-HHmmss (UTC)
//! offset 23  rest      payload (opaque)
//! ```
//!
//! The CLI seals the bundle as `RQE1(RQEM0001(ts) ‖ zip)`, so the timestamp
//! is authenticated; a reader compares it with the timestamp the pointer
//! names and refuses a mismatch.

use serde_json::{Map, Value};

use crate::error::{Error, Format};

/// The eight magic bytes.
pub const MAGIC: &[u8; 8] = b"RQEM0001";
/// Length of the ASCII timestamp.
pub const TS_LEN: usize = 15;
/// Magic plus timestamp.
pub const HEADER_LEN: usize = MAGIC.len() + TS_LEN;

/// A parsed seal, borrowing from the sealed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// The embedded timestamp (`YYYYMMDD-HHmmss`).
    pub ts: &'a str,
    /// Everything after the header.
    pub payload: &'a [u8],
}

/// Prepends the seal header. Refuses a timestamp that is not 15 ASCII
/// characters, as upstream does.
pub fn wrap(ts: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
    if ts.len() != TS_LEN || !ts.is_ascii() {
        return Err(Error::InvalidTimestamp);
    }
    let mut sealed = Vec::with_capacity(HEADER_LEN + payload.len());
    sealed.extend_from_slice(MAGIC);
    sealed.extend_from_slice(ts.as_bytes());
    sealed.extend_from_slice(payload);
    Ok(sealed)
}

/// Splits a seal into its timestamp and payload. Too short, wrong magic or a
/// non-ASCII timestamp are all `BundleCorrupt`.
pub fn unwrap(sealed: &[u8]) -> Result<Sealed<'_>, Error> {
    if sealed.len() < HEADER_LEN {
        return Err(Error::TooShort {
            format: Format::Rqem0001,
            len: sealed.len(),
            min: HEADER_LEN,
        });
    }
    if &sealed[..MAGIC.len()] != MAGIC {
        return Err(Error::BadMagic {
            format: Format::Rqem0001,
        });
    }
    let ts = std::str::from_utf8(&sealed[MAGIC.len()..HEADER_LEN])
        .ok()
        .filter(|ts| ts.is_ascii())
        .ok_or(Error::InvalidTimestamp)?;
    Ok(Sealed {
        ts,
        payload: &sealed[HEADER_LEN..],
    })
}

/// Unwraps and requires the embedded timestamp to equal `expected_ts` (an
/// exact string comparison), returning the payload.
pub fn unwrap_expecting<'a>(sealed: &'a [u8], expected_ts: &str) -> Result<&'a [u8], Error> {
    let seal = unwrap(sealed)?;
    if seal.ts != expected_ts {
        return Err(Error::TimestampMismatch {
            expected: expected_ts.to_owned(),
            found: seal.ts.to_owned(),
        });
    }
    Ok(seal.payload)
}

/// The manifest meta cell: `{"gen":N,"prev_gen":M,"rotated_at":"…"}`, every
/// field optional. An absent cell means generation 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestMeta {
    /// `gen`: grows on every push and rotation (upstream only bumps it on
    /// rotation; readers only ever compare it).
    pub generation: Option<u64>,
    /// `prev_gen`: the generation before the last rotation.
    pub previous_generation: Option<u64>,
    /// `rotated_at`: ISO-8601 time of the last rotation.
    pub rotated_at: Option<String>,
}

impl ManifestMeta {
    /// The generation, 0 when absent.
    pub fn generation(&self) -> u64 {
        self.generation.unwrap_or(0)
    }

    /// Parses the cell with upstream's rules: empty or blank text is an empty
    /// cell; the root must be an object; unknown keys are dropped; a present
    /// field of the wrong type is an error.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value =
            serde_json::from_str(text).map_err(|_| Error::InvalidManifestMeta("not valid JSON"))?;
        let Value::Object(fields) = value else {
            return Err(Error::InvalidManifestMeta("must be a JSON object"));
        };
        Ok(Self {
            generation: non_negative_integer(&fields, "gen", "gen must be a non-negative integer")?,
            previous_generation: non_negative_integer(
                &fields,
                "prev_gen",
                "prev_gen must be a non-negative integer",
            )?,
            rotated_at: match fields.get("rotated_at") {
                None => None,
                Some(Value::String(at)) => Some(at.clone()),
                Some(_) => return Err(Error::InvalidManifestMeta("rotated_at must be a string")),
            },
        })
    }

    /// Serialises like upstream's `JSON.stringify`: present keys only, in the
    /// order `gen`, `prev_gen`, `rotated_at`, no whitespace.
    pub fn to_json(&self) -> String {
        let mut fields = Map::new();
        if let Some(generation) = self.generation {
            fields.insert("gen".into(), generation.into());
        }
        if let Some(previous) = self.previous_generation {
            fields.insert("prev_gen".into(), previous.into());
        }
        if let Some(at) = &self.rotated_at {
            fields.insert("rotated_at".into(), at.clone().into());
        }
        // Inserted in wire order, which is also sorted order, so the output is
        // the same whether or not serde_json preserves insertion order.
        Value::Object(fields).to_string()
    }
}

fn non_negative_integer(
    fields: &Map<String, Value>,
    name: &str,
    complaint: &'static str,
) -> Result<Option<u64>, Error> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_u64()
            .or_else(|| {
                // JSON.stringify writes integral doubles without a fraction,
                // but accept `3.0` from hand-written cells.
                number
                    .as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or(Error::InvalidManifestMeta(complaint)),
        Some(_) => Err(Error::InvalidManifestMeta(complaint)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    #[test]
    fn wrap_unwrap_round_trip() {
        let sealed = wrap("20260429-103045", b"{\"gen\":1}").unwrap();
        assert_eq!(&sealed[..23], b"RQEM000120260429-103045");
        let seal = unwrap(&sealed).unwrap();
        assert_eq!(seal.ts, "20260429-103045");
        assert_eq!(seal.payload, b"{\"gen\":1}");
    }

    #[test]
    fn wrap_refuses_bad_timestamps() {
        assert_eq!(wrap("2026", b""), Err(Error::InvalidTimestamp));
        assert_eq!(wrap("20260429-10304é", b""), Err(Error::InvalidTimestamp));
    }

    #[test]
    fn mismatch_is_bundle_corrupt_and_names_both_timestamps() {
        let sealed = wrap("20260429-103045", b"x").unwrap();
        let err = unwrap_expecting(&sealed, "20260501-091500").unwrap_err();
        assert_eq!(err.class(), ErrorClass::BundleCorrupt);
        let message = err.to_string();
        assert!(message.contains("20260501-091500") && message.contains("20260429-103045"));
    }

    #[test]
    fn non_ascii_timestamp_is_corrupt() {
        let mut sealed = wrap("20260429-103045", b"").unwrap();
        sealed[10] = 0xff;
        assert_eq!(
            unwrap(&sealed).unwrap_err().class(),
            ErrorClass::BundleCorrupt
        );
    }

    #[test]
    fn meta_serialises_in_upstream_key_order() {
        let meta = ManifestMeta {
            generation: Some(3),
            previous_generation: Some(2),
            rotated_at: Some("2026-05-01T09:15:00.000Z".into()),
        };
        assert_eq!(
            meta.to_json(),
            r#"{"gen":3,"prev_gen":2,"rotated_at":"2026-05-01T09:15:00.000Z"}"#
        );
        assert_eq!(ManifestMeta::parse(&meta.to_json()).unwrap(), meta);
        assert_eq!(ManifestMeta::default().to_json(), "{}");
    }

    #[test]
    fn meta_parse_rules() {
        assert_eq!(ManifestMeta::parse("  \n").unwrap().generation(), 0);
        assert_eq!(
            ManifestMeta::parse(r#"{"gen":7,"x":1}"#)
                .unwrap()
                .generation(),
            7
        );
        assert!(ManifestMeta::parse("[1]").is_err());
        assert!(ManifestMeta::parse(r#"{"gen":-1}"#).is_err());
        assert!(ManifestMeta::parse(r#"{"gen":"1"}"#).is_err());
        assert!(ManifestMeta::parse(r#"{"gen":1.5}"#).is_err());
        assert!(ManifestMeta::parse(r#"{"rotated_at":5}"#).is_err());
        assert_eq!(
            ManifestMeta::parse(r#"{"gen":2.0}"#).unwrap().generation(),
            2
        );
    }
}
