//! Drives each vector through the real implementation and judges the result.

use std::fmt;

use serde_json::Value;
use vsync_crypto::config_blob::RuntimeConfig;
use vsync_crypto::{DEFAULT_ITERATIONS, Error, ErrorClass, rqe1, rqem};

use crate::corpus::{Category, Vector};

/// What checking one vector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The implementation produced exactly the expected result.
    Passed,
    /// The vector exercises the runtime library (`vsync-s3-client`), which
    /// does not exist yet; it was not run and does not count as passed.
    Pending(&'static str),
    /// The implementation disagreed with the vector.
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed => f.write_str("passed"),
            Outcome::Pending(why) => write!(f, "pending: {why}"),
            Outcome::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

const RUNTIME_LIBRARY_PENDING: &str = "needs the runtime library (vsync-s3-client)";

/// Checks one vector.
pub fn check(vector: &Vector) -> Outcome {
    let result = match vector.category {
        Category::Rqe1Decrypt | Category::Rqe1DecryptError => check_rqe1(vector),
        Category::Rqem0001Manifest => check_rqem(vector),
        Category::ConfigBlob => check_config_blob(vector),
        Category::ErrorTaxonomy => match vector.name.as_str() {
            "config-missing" | "s3-unreachable" | "manifest-not-found" => {
                return Outcome::Pending(RUNTIME_LIBRARY_PENDING);
            }
            "config-unsupported-version" => check_config_blob(vector),
            "wrong-passphrase" | "bundle-corrupt" | "unsupported-spec-version" => {
                check_rqe1(vector)
            }
            other => Err(format!("unknown error-taxonomy scenario `{other}`")),
        },
        Category::FallbackChain | Category::AssetPath => {
            return Outcome::Pending(RUNTIME_LIBRARY_PENDING);
        }
    };
    match result {
        Ok(()) => Outcome::Passed,
        Err(why) => Outcome::Failed(why),
    }
}

/// The class named by `expected.error`, `None` for a positive vector.
fn expected_class(vector: &Vector) -> Result<Option<ErrorClass>, String> {
    match vector.expected("error") {
        Value::Null => Ok(None),
        Value::String(name) => ErrorClass::from_canonical_name(name)
            .map(Some)
            .ok_or_else(|| format!("expected.error `{name}` is not a canonical class name")),
        other => Err(format!(
            "expected.error must be a string or null, got {other}"
        )),
    }
}

/// Compares an error outcome with the expected class; `Ok(Some(value))` means
/// the call succeeded where success was expected.
fn judge<T>(vector: &Vector, result: Result<T, Error>) -> Result<Option<T>, String> {
    match (expected_class(vector)?, result) {
        (None, Ok(value)) => Ok(Some(value)),
        (None, Err(err)) => Err(format!("expected success, got {} ({err})", err.class())),
        (Some(class), Err(err)) if err.class() == class => Ok(None),
        (Some(class), Err(err)) => Err(format!("expected {class}, got {} ({err})", err.class())),
        (Some(class), Ok(_)) => Err(format!("expected {class}, got success")),
    }
}

fn bin(vector: &Vector) -> Result<&[u8], String> {
    vector
        .bin
        .as_deref()
        .ok_or_else(|| "the vector has no .bin".to_owned())
}

fn input_str<'a>(vector: &'a Vector, field: &str) -> Result<&'a str, String> {
    vector
        .input(field)
        .as_str()
        .ok_or_else(|| format!("inputs.{field} must be a string"))
}

fn expect_eq(what: &str, actual: &Value, expected: &Value) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected}, got {actual}"))
    }
}

fn check_rqe1(vector: &Vector) -> Result<(), String> {
    let passphrase = input_str(vector, "passphrase")?;
    let salt = input_str(vector, "salt")?;
    let result = rqe1::decrypt(
        passphrase.as_bytes(),
        salt.as_bytes(),
        DEFAULT_ITERATIONS,
        bin(vector)?,
    );
    let Some(plaintext) = judge(vector, result)? else {
        return Ok(());
    };
    expect_eq(
        "plaintext_hex",
        &Value::from(hex::encode(plaintext.as_slice())),
        vector.expected("plaintext_hex"),
    )?;
    match vector.expected("plaintext_utf8") {
        Value::Null => Ok(()),
        utf8 => expect_eq(
            "plaintext_utf8",
            &Value::from(String::from_utf8_lossy(&plaintext)),
            utf8,
        ),
    }
}

fn check_rqem(vector: &Vector) -> Result<(), String> {
    let sealed = bin(vector)?;
    // The embedded timestamp is pinned even for vectors whose comparison fails.
    let embedded = rqem::unwrap(sealed).ok().map(|seal| seal.ts);
    expect_eq(
        "embedded_ts",
        &Value::from(embedded),
        vector.expected("embedded_ts"),
    )?;
    let result = match vector.input("remote_ts").as_str() {
        Some(remote_ts) => rqem::unwrap_expecting(sealed, remote_ts),
        None => rqem::unwrap(sealed).map(|seal| seal.payload),
    };
    let Some(payload) = judge(vector, result)? else {
        return Ok(());
    };
    expect_eq(
        "payload_hex",
        &Value::from(hex::encode(payload)),
        vector.expected("payload_hex"),
    )
}

fn check_config_blob(vector: &Vector) -> Result<(), String> {
    let blob = std::str::from_utf8(bin(vector)?).map_err(|_| "the .bin is not UTF-8 text")?;
    let Some(config) = judge(vector, RuntimeConfig::decode(blob))? else {
        return Ok(());
    };
    expect_eq(
        "config_json",
        &crate::config_json(&config),
        vector.expected("config_json"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::load;
    use crate::own_corpus_dir;

    fn own_vector(id: &str) -> Vector {
        load(&own_corpus_dir())
            .unwrap()
            .into_iter()
            .find(|vector| vector.id() == id)
            .unwrap_or_else(|| panic!("{id} is in the corpus"))
    }

    #[test]
    fn a_wrong_plaintext_expectation_fails() {
        let mut vector = own_vector("rqe1-decrypt/hello-world");
        assert_eq!(check(&vector), Outcome::Passed);
        vector.doc["expected"]["plaintext_hex"] = "68656c6c6f".into();
        assert!(matches!(check(&vector), Outcome::Failed(_)));
    }

    #[test]
    fn a_different_error_class_fails() {
        let mut vector = own_vector("rqe1-decrypt-error/wrong-version");
        assert_eq!(check(&vector), Outcome::Passed);
        vector.doc["expected"]["error"] = "BundleCorruptError".into();
        assert!(matches!(check(&vector), Outcome::Failed(_)));
    }

    #[test]
    fn non_canonical_class_names_fail() {
        let mut vector = own_vector("rqe1-decrypt-error/corrupt-magic");
        vector.doc["expected"]["error"] = "CorruptEnvelopeError".into();
        assert!(matches!(check(&vector), Outcome::Failed(_)));
    }

    #[test]
    fn expecting_an_error_from_a_valid_envelope_fails() {
        let mut vector = own_vector("rqem0001-manifest/positive-basic");
        vector.doc["expected"]["error"] = "BundleCorruptError".into();
        assert!(matches!(check(&vector), Outcome::Failed(_)));
    }

    #[test]
    fn a_changed_config_field_fails() {
        let mut vector = own_vector("config-blob/positive-r2");
        vector.doc["expected"]["config_json"]["region"] = "us-east-1".into();
        assert!(matches!(check(&vector), Outcome::Failed(_)));
    }

    #[test]
    fn runtime_library_vectors_are_pending_not_passed() {
        for id in [
            "fallback-chain/vault-hit",
            "asset-path/pem-key",
            "error-taxonomy/s3-unreachable",
        ] {
            assert!(
                matches!(check(&own_vector(id)), Outcome::Pending(_)),
                "{id}"
            );
        }
    }
}
