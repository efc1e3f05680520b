//! `vsync-cfg-v1:`: the runtime bootstrap blob applications receive in
//! `VSYNC_CONFIG` — `vsync-cfg-v1:` + base64url-no-pad(gzip(JSON)).
//!
//! The JSON carries `v, endpoint, region, bucket, accessKeyId,
//! secretAccessKey, prefix, env, salt, iterations` (that order on the wire).
//! The salt is used as a UTF-8 string verbatim ("Convention A").

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::gzip;
use crate::kdf::MAX_ITERATIONS;

/// The ASCII prefix every v1 blob starts with.
pub const PREFIX: &str = "vsync-cfg-v1:";

/// The shortest salt a v1 reader accepts.
pub const MIN_SALT_LEN: usize = 16;

/// A real blob is a few hundred bytes; a body inflating past this is a
/// decompression bomb, not a config.
const MAX_JSON_LEN: u64 = 64 * 1024;

const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The decoded runtime config. Credentials and the salt are wiped on drop and
/// redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Full endpoint URL including the scheme, no trailing slash.
    pub endpoint: String,
    /// Region, passed through (`auto` for R2).
    pub region: String,
    /// Bucket name.
    pub bucket: String,
    /// Access key id (meant to be a scoped read-only key).
    pub access_key_id: Zeroizing<String>,
    /// Secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// Object key prefix, normally `<repo>/<env>/`; may be empty.
    pub prefix: String,
    /// The env name, informational.
    pub env: String,
    /// The PBKDF2 salt string, used verbatim.
    pub salt: Zeroizing<String>,
    /// PBKDF2 iterations.
    pub iterations: NonZeroU32,
}

impl fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("v", &1)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("env", &self.env)
            .field("prefix", &self.prefix)
            .field("iterations", &self.iterations)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("salt", &"<redacted>")
            .finish()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireConfig<'a> {
    v: u32,
    endpoint: &'a str,
    region: &'a str,
    bucket: &'a str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    prefix: &'a str,
    env: &'a str,
    salt: &'a str,
    iterations: u32,
}

/// First pass: only `v`, so the version is judged before any other field.
#[derive(Deserialize)]
struct VersionProbe {
    v: Option<serde_json::Value>,
}

/// Second pass: every field, secrets straight into wiping buffers.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    access_key_id: Option<Zeroizing<String>>,
    secret_access_key: Option<Zeroizing<String>>,
    prefix: Option<String>,
    env: Option<String>,
    salt: Option<Zeroizing<String>>,
    iterations: Option<serde_json::Number>,
}

impl RuntimeConfig {
    /// Encodes the blob as `vsync runtime-token` does: compact JSON in wire
    /// key order, gzip with a zero MTIME, base64url without padding.
    pub fn encode(&self) -> Zeroizing<String> {
        let json = Zeroizing::new(
            serde_json::to_vec(&WireConfig {
                v: 1,
                endpoint: &self.endpoint,
                region: &self.region,
                bucket: &self.bucket,
                access_key_id: &self.access_key_id,
                secret_access_key: &self.secret_access_key,
                prefix: &self.prefix,
                env: &self.env,
                salt: &self.salt,
                iterations: self.iterations.get(),
            })
            .expect("a struct of strings always serialises"),
        );
        encode_json(&json)
    }

    /// Decodes a blob with the v1 reader rules, in their order:
    ///
    /// 1. no `vsync-cfg-v1:` prefix → `ConfigMissing`
    /// 2. `+`, `/` or `=` in the body → `ConfigUnsupportedVersion`
    /// 3. base64url, gzip or JSON failure, root not an object → `BundleCorrupt`
    /// 4. `v` ≠ 1 (judged before any other field) → `ConfigUnsupportedVersion`
    /// 5. a missing or mistyped field, `iterations` not a positive integer
    ///    or above [`MAX_ITERATIONS`] → `BundleCorrupt`
    /// 6. salt shorter than 16 characters → `ConfigUnsupportedVersion`
    ///
    /// Unknown fields are ignored. ASCII whitespace around and inside the body
    /// (a pasted trailing newline) is not part of base64url and is skipped.
    pub fn decode(blob: &str) -> Result<Self, Error> {
        let body = blob
            .strip_prefix(PREFIX)
            .ok_or(Error::ConfigPrefixMissing)?;
        let body: Zeroizing<Vec<u8>> = Zeroizing::new(
            body.bytes()
                .filter(|byte| !byte.is_ascii_whitespace())
                .collect(),
        );
        if body.iter().any(|byte| matches!(byte, b'+' | b'/' | b'=')) {
            return Err(Error::ConfigStandardBase64);
        }
        let corrupt = |reason: &str| Error::ConfigCorrupt(reason.to_owned());
        let compressed = Zeroizing::new(
            BASE64URL
                .decode(body.as_slice())
                .map_err(|_| corrupt("the body is not base64url"))?,
        );
        let json = gzip::decompress(&compressed, MAX_JSON_LEN)
            .map_err(|_| corrupt("the body is not gzip"))?;
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(corrupt("the JSON root is not an object"));
        }
        // serde_json's messages quote offending values, which may be secrets:
        // report positions only.
        let json_error = |err: serde_json::Error| {
            Error::ConfigCorrupt(format!(
                "invalid JSON or a field of the wrong type at line {} column {}",
                err.line(),
                err.column()
            ))
        };
        let probe: VersionProbe = serde_json::from_slice(&json).map_err(json_error)?;
        match probe.v {
            Some(v) if v.as_u64() == Some(1) => {}
            Some(serde_json::Value::Number(v)) => return Err(Error::ConfigVersion(v.to_string())),
            Some(_) => return Err(Error::ConfigVersion("(not a number)".into())),
            None => return Err(Error::ConfigVersion("(missing)".into())),
        }
        let raw: RawConfig = serde_json::from_slice(&json).map_err(json_error)?;
        fn required<T>(field: Option<T>, name: &str) -> Result<T, Error> {
            field.ok_or_else(|| Error::ConfigCorrupt(format!("field `{name}` is missing")))
        }
        let iterations = required(raw.iterations, "iterations")?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new)
            .ok_or_else(|| corrupt("field `iterations` must be a positive integer"))?;
        // Judged before anything derives a key: the count is not
        // authenticated, and PBKDF2 at billions of iterations never ends.
        if iterations.get() > MAX_ITERATIONS {
            return Err(Error::ConfigCorrupt(format!(
                "field `iterations` is {iterations}, above the {MAX_ITERATIONS} a reader accepts (vsync writes {}); regenerate the blob with `vsync runtime-token`",
                crate::kdf::DEFAULT_ITERATIONS
            )));
        }
        let salt = required(raw.salt, "salt")?;
        let salt_chars = salt.chars().count();
        if salt_chars < MIN_SALT_LEN {
            return Err(Error::ConfigSaltTooShort(salt_chars));
        }
        Ok(RuntimeConfig {
            endpoint: required(raw.endpoint, "endpoint")?,
            region: required(raw.region, "region")?,
            bucket: required(raw.bucket, "bucket")?,
            access_key_id: required(raw.access_key_id, "accessKeyId")?,
            secret_access_key: required(raw.secret_access_key, "secretAccessKey")?,
            prefix: required(raw.prefix, "prefix")?,
            env: required(raw.env, "env")?,
            salt,
            iterations,
        })
    }
}

/// Wraps arbitrary JSON bytes as a `vsync-cfg-v1:` blob without validating
/// them. [`RuntimeConfig::encode`] is the normal writer; this one also lets
/// the vector generator build deliberately invalid blobs.
pub fn encode_json(json: &[u8]) -> Zeroizing<String> {
    let compressed = gzip::compress(json);
    let mut blob = Zeroizing::new(String::from(PREFIX));
    BASE64URL.encode_string(compressed.as_slice(), &mut blob);
    blob
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;
    use crate::error::ErrorClass;

    fn sample() -> RuntimeConfig {
        RuntimeConfig {
            endpoint: "https://s3.example.com".into(),
            region: "auto".into(),
            bucket: "acme".into(),
            access_key_id: Zeroizing::new("AKIAEXAMPLE".into()),
            secret_access_key: Zeroizing::new("very/secret+key".into()),
            prefix: "web/prod/".into(),
            env: "prod".into(),
            salt: Zeroizing::new("NvTGExRJ8+Kn8dwdXrPv0w".into()),
            iterations: NonZeroU32::new(600_000).unwrap(),
        }
    }

    fn class_of(blob: &str) -> ErrorClass {
        RuntimeConfig::decode(blob).unwrap_err().class()
    }

    #[test]
    fn round_trip() {
        let blob = sample().encode();
        assert!(blob.starts_with(PREFIX));
        assert!(!blob[PREFIX.len()..].contains(['+', '/', '=']));
        assert_eq!(RuntimeConfig::decode(&blob).unwrap(), sample());
        assert_eq!(
            RuntimeConfig::decode(&format!("{}\n", *blob)).unwrap(),
            sample()
        );
    }

    #[test]
    fn wire_json_key_order() {
        let blob = sample().encode();
        let compressed = BASE64URL.decode(&blob[PREFIX.len()..]).unwrap();
        let mut json = String::new();
        GzDecoder::new(compressed.as_slice())
            .read_to_string(&mut json)
            .unwrap();
        let order: Vec<usize> = [
            "\"v\"",
            "\"endpoint\"",
            "\"region\"",
            "\"bucket\"",
            "\"accessKeyId\"",
            "\"secretAccessKey\"",
            "\"prefix\"",
            "\"env\"",
            "\"salt\"",
            "\"iterations\"",
        ]
        .iter()
        .map(|key| json.find(key).unwrap())
        .collect();
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{json}");
        assert_eq!(&compressed[4..8], &[0, 0, 0, 0], "gzip MTIME must be zero");
    }

    #[test]
    fn debug_is_redacted() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("AKIAEXAMPLE"));
        assert!(!shown.contains("very/secret+key"));
        assert!(!shown.contains("NvTGExRJ8"));
        assert!(shown.contains("acme"));
    }

    #[test]
    fn reader_rules_in_order() {
        assert_eq!(class_of(""), ErrorClass::ConfigMissing);
        assert_eq!(class_of("{\"v\":1}"), ErrorClass::ConfigMissing);
        assert_eq!(
            class_of("vsync-cfg-v1:H4sI+AAA"),
            ErrorClass::ConfigUnsupportedVersion
        );
        assert_eq!(class_of("vsync-cfg-v1:!!!"), ErrorClass::BundleCorrupt);
        assert_eq!(
            class_of("vsync-cfg-v1:AAECAwQFBgcICQ"),
            ErrorClass::BundleCorrupt
        );
        assert_eq!(class_of(&encode_json(b"[1,2]")), ErrorClass::BundleCorrupt);
        assert_eq!(
            class_of(&encode_json(b"{not json")),
            ErrorClass::BundleCorrupt
        );
        // v is judged before the missing fields.
        assert_eq!(
            class_of(&encode_json(br#"{"v":99}"#)),
            ErrorClass::ConfigUnsupportedVersion
        );
        assert_eq!(
            class_of(&encode_json(br#"{"v":"1"}"#)),
            ErrorClass::ConfigUnsupportedVersion
        );
        assert_eq!(
            class_of(&encode_json(br#"{"v":1}"#)),
            ErrorClass::BundleCorrupt
        );
    }

    fn with_field(name: &str, value: serde_json::Value) -> Zeroizing<String> {
        let blob = sample().encode();
        let compressed = BASE64URL.decode(&blob[PREFIX.len()..]).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_reader(GzDecoder::new(compressed.as_slice())).unwrap();
        json[name] = value;
        encode_json(json.to_string().as_bytes())
    }

    #[test]
    fn field_rules() {
        use serde_json::json;
        assert_eq!(
            class_of(&with_field("iterations", json!(0))),
            ErrorClass::BundleCorrupt
        );
        assert_eq!(
            class_of(&with_field("iterations", json!(-5))),
            ErrorClass::BundleCorrupt
        );
        assert_eq!(
            class_of(&with_field("iterations", json!("600000"))),
            ErrorClass::BundleCorrupt
        );
        assert_eq!(
            class_of(&with_field("salt", json!("short"))),
            ErrorClass::ConfigUnsupportedVersion
        );
        assert_eq!(
            class_of(&with_field("bucket", json!(5))),
            ErrorClass::BundleCorrupt
        );
        let decoded = RuntimeConfig::decode(&with_field("unknownField", json!(true))).unwrap();
        assert_eq!(decoded, sample());
    }

    #[test]
    fn iterations_past_the_cap_are_refused_without_deriving() {
        use serde_json::json;
        let started = std::time::Instant::now();
        for n in [4_000_000_000u64, u64::from(u32::MAX), 10_000_001] {
            let err = RuntimeConfig::decode(&with_field("iterations", json!(n))).unwrap_err();
            assert_eq!(err.class(), ErrorClass::BundleCorrupt, "{n}");
            assert!(err.to_string().contains("10000000"), "{err}");
        }
        // Refused on sight: nothing derived a key.
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let at_cap = RuntimeConfig::decode(&with_field("iterations", json!(MAX_ITERATIONS)));
        assert_eq!(at_cap.unwrap().iterations.get(), MAX_ITERATIONS);
    }

    #[test]
    fn errors_never_quote_field_values() {
        // serde_json would say `invalid type: string "LEAK-ME", expected …`.
        let blob = with_field("iterations", serde_json::json!("LEAK-ME"));
        let message = RuntimeConfig::decode(&blob).unwrap_err().to_string();
        assert!(message.contains("line 1 column"), "{message}");
        assert!(!message.contains("LEAK-ME"), "{message}");
    }
}
