//! Drives each vector through the real implementation and judges the result:
//! envelopes through `vsync-crypto`, the runtime-library categories
//! (`fallback-chain`, `asset-path`, the bootstrap and bucket scenarios of
//! `error-taxonomy`) through the public API of `vsync-s3-client`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use vsync_backends::fs::FsStore;
use vsync_crypto::config_blob::RuntimeConfig;
use vsync_crypto::{DEFAULT_ITERATIONS, Error, ErrorClass, Zeroizing, rqe1, rqem};
use vsync_s3_client::{Client, Options, blocking};

use crate::corpus::{Category, Vector};

/// What checking one vector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The implementation produced exactly the expected result.
    Passed,
    /// The implementation disagreed with the vector.
    Failed(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Passed => f.write_str("passed"),
            Outcome::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

/// Checks one vector.
pub fn check(vector: &Vector) -> Outcome {
    let result = match vector.category {
        Category::Rqe1Decrypt | Category::Rqe1DecryptError => check_rqe1(vector),
        Category::Rqem0001Manifest => check_rqem(vector),
        Category::ConfigBlob => check_config_blob(vector),
        Category::FallbackChain => check_fallback_chain(vector),
        Category::AssetPath => check_asset(vector),
        Category::ErrorTaxonomy => match vector.name.as_str() {
            "config-missing" => check_config_missing(vector),
            "s3-unreachable" => check_s3_unreachable(vector),
            "manifest-not-found" => check_manifest_not_found(vector),
            "config-unsupported-version" => check_config_blob(vector),
            "wrong-passphrase" | "bundle-corrupt" | "unsupported-spec-version" => {
                check_rqe1(vector)
            }
            other => Err(format!("unknown error-taxonomy scenario `{other}`")),
        },
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

/// [`judge`] for the runtime library's errors.
fn judge_client<T>(
    vector: &Vector,
    result: Result<T, vsync_s3_client::Error>,
) -> Result<Option<T>, String> {
    let name = |class: Option<ErrorClass>| {
        class.map_or("an unclassified error".to_owned(), |class| {
            class.to_string()
        })
    };
    match (expected_class(vector)?, result) {
        (None, Ok(value)) => Ok(Some(value)),
        (None, Err(err)) => Err(format!(
            "expected success, got {} ({err})",
            name(err.class())
        )),
        (Some(class), Err(err)) if err.class() == Some(class) => Ok(None),
        (Some(class), Err(err)) => Err(format!(
            "expected {class}, got {} ({err})",
            name(err.class())
        )),
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

/// `inputs.<field>` as a map of strings; `Null` is an empty map.
fn input_map(vector: &Vector, field: &str) -> Result<Vec<(String, String)>, String> {
    match vector.input(field) {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| {
                value
                    .as_str()
                    .map(|value| (key.clone(), value.to_owned()))
                    .ok_or_else(|| format!("inputs.{field}.{key} must be a string"))
            })
            .collect(),
        other => Err(format!("inputs.{field} must be an object, got {other}")),
    }
}

/// The process environment of the vector, `inputs.env` exactly: nothing
/// else is defined (so the queried keys are unset), read at every lookup.
fn vector_environment(vector: &Vector) -> Result<Options, String> {
    let env: HashMap<String, OsString> = input_map(vector, "env")?
        .into_iter()
        .map(|(key, value)| (key, OsString::from(value)))
        .collect();
    Ok(Options::new().environment(move |name| env.get(name).cloned()))
}

/// The env name the runtime-library vectors are opened as.
const ENV: &str = "dev";

/// Zips a vault folder holding `files` exactly as `vsync push` does, with
/// the engine's packer: entries `infra/vault/dev/<name>`.
fn pushed_zip(files: &[(&str, &[u8])]) -> Result<Zeroizing<Vec<u8>>, String> {
    let repo = tempfile::tempdir().map_err(|err| format!("temp dir: {err}"))?;
    let folder = Path::new("infra/vault").join(ENV);
    for (name, contents) in files {
        let path = repo.path().join(&folder).join(name);
        let parent = path.parent().expect("a file below the vault folder");
        std::fs::create_dir_all(parent).map_err(|err| format!("vault folder: {err}"))?;
        std::fs::write(&path, contents).map_err(|err| format!("vault file: {err}"))?;
    }
    vsync_engine::bundle::pack(repo.path(), &folder).map_err(|err| format!("pack: {err}"))
}

/// `fallback-chain`: a handle whose vault holds `inputs.vault`, opened with
/// `inputs.defaults`, in the environment `inputs.env`; every query must give
/// the expected value, source and presence. The vault is built twice, as the
/// CLI's zip (a `.env.dev`) and as a JSON `{"kv": …}` payload.
fn check_fallback_chain(vector: &Vector) -> Result<(), String> {
    let vault = input_map(vector, "vault")?;
    let defaults = input_map(vector, "defaults")?;
    let queries = vector
        .input("queries")
        .as_array()
        .ok_or("inputs.queries must be an array")?;

    let mut payloads = vec![(
        "JSON payload",
        Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "kv": vector.input("vault") }))
                .expect("JSON values serialise"),
        ),
    )];
    if vault
        .iter()
        .all(|(key, value)| !key.contains(['=', '\n', '\r']) && !value.contains(['\n', '\r']))
    {
        let env_file: String = vault
            .iter()
            .map(|(key, value)| format!("{key}=\"{value}\"\n"))
            .collect();
        payloads.push((
            "zip payload",
            pushed_zip(&[(&format!(".env.{ENV}"), env_file.as_bytes())])?,
        ));
    }

    for (shape, payload) in payloads {
        let options = vector_environment(vector)?.defaults(defaults.clone());
        let Some(client) = judge_client(vector, Client::from_payload(ENV, &payload, options))?
        else {
            return Ok(());
        };
        let results: Vec<Value> = queries
            .iter()
            .map(|query| {
                let key = query.as_str().ok_or("inputs.queries must hold strings")?;
                Ok(serde_json::json!({
                    "key": key,
                    "value": client.get_env(key).map(|value| value.expose().to_owned()),
                    "source": client.env_source(key).as_str(),
                    "has": client.has_env(key),
                }))
            })
            .collect::<Result<_, String>>()?;
        expect_eq(
            &format!("results ({shape})"),
            &Value::Array(results),
            vector.expected("results"),
        )?;
    }
    Ok(())
}

/// `asset-path`: the `.bin` bytes as the vault asset `inputs.key` (a file of
/// that name in the vault folder of a pushed zip, and a JSON `assets` entry);
/// the bytes accessor must return them exactly. The vectors' `mode_octal`
/// belonged to the path accessor upstream removed in 0.11, which this
/// library does not have.
fn check_asset(vector: &Vector) -> Result<(), String> {
    let key = input_str(vector, "key")?;
    let bytes = bin(vector)?;
    let json = serde_json::json!({ "assets": { key: STANDARD.encode(bytes) } });
    let payloads = [
        ("zip payload", pushed_zip(&[(key, bytes)])?),
        (
            "JSON payload",
            Zeroizing::new(serde_json::to_vec(&json).expect("JSON values serialise")),
        ),
    ];
    for (shape, payload) in payloads {
        let Some(client) =
            judge_client(vector, Client::from_payload(ENV, &payload, Options::new()))?
        else {
            return Ok(());
        };
        let content = client
            .get_as_content(key)
            .map(|content| hex::encode(content.expose()));
        expect_eq(
            &format!("bytes_hex ({shape})"),
            &Value::from(content),
            vector.expected("bytes_hex"),
        )?;
    }
    Ok(())
}

/// A well-formed blob for a bucket at `endpoint` (one PBKDF2 iteration: these
/// scenarios fail before any bundle is decrypted).
fn blob(endpoint: &str) -> Zeroizing<String> {
    RuntimeConfig {
        endpoint: endpoint.to_owned(),
        region: "us-east-1".into(),
        bucket: "vsync-conformance".into(),
        access_key_id: Zeroizing::new("conformance-access-key".into()),
        secret_access_key: Zeroizing::new("conformance-secret-key".into()),
        prefix: format!("conformance/{ENV}/"),
        env: ENV.into(),
        salt: Zeroizing::new("conformance-salt-0123".into()),
        iterations: NonZeroU32::MIN,
    }
    .encode()
}

const PASSPHRASE: &str = "conformance passphrase";

/// `config-missing`: `open()` resolving its bootstrap from the vector's
/// environment (`inputs.env`, empty: neither variable nor `_FILE` set).
fn check_config_missing(vector: &Vector) -> Result<(), String> {
    judge_client(vector, blocking::open(vector_environment(vector)?)).map(drop)
}

/// An endpoint where nothing can ever listen: port 0 is not a port a server
/// can bind (binding 0 asks for any free port), so every connection fails
/// at once (Linux: connection refused), and no other process can take it
/// the way it could take a port found free and released. (This crate has no
/// socket API that binds without listening, which is what
/// `vsync_testcontainers::unreachable` uses elsewhere.)
const UNREACHABLE_ENDPOINT: &str = "http://127.0.0.1:0";

/// `s3-unreachable` (network-error half): `open_with` a blob whose endpoint
/// is unreachable ([`UNREACHABLE_ENDPOINT`]), through the real S3 store. The
/// IAM-403 half needs a server; `client/tests/s3.rs` runs it against s3s-fs.
fn check_s3_unreachable(vector: &Vector) -> Result<(), String> {
    let blob = blob(UNREACHABLE_ENDPOINT);
    judge_client(
        vector,
        blocking::open_with(&blob, PASSPHRASE, Options::new()),
    )
    .map(drop)
}

/// `manifest-not-found`: a reachable, empty store (the local-directory
/// store over an empty directory): neither `latest` nor `manifest` exists
/// under the prefix.
fn check_manifest_not_found(vector: &Vector) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|err| format!("temp dir: {err}"))?;
    let store = FsStore::open(dir.path().join("bucket")).map_err(|err| format!("store: {err}"))?;
    let blob = blob("http://unused.invalid");
    judge_client(
        vector,
        blocking::open_with_store(Arc::new(store), &blob, PASSPHRASE, Options::new()),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::load;
    use crate::own_corpus_dir;

    fn own_vector(id: &str) -> Vector {
        load(&own_corpus_dir())
            .unwrap()
            .vectors
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
    fn runtime_library_vectors_pass() {
        for id in [
            "fallback-chain/vault-hit",
            "fallback-chain/env-hit",
            "fallback-chain/default-hit",
            "fallback-chain/missing",
            "asset-path/pem-key",
            "asset-path/service-account-json",
            "error-taxonomy/config-missing",
            "error-taxonomy/s3-unreachable",
            "error-taxonomy/manifest-not-found",
        ] {
            assert_eq!(check(&own_vector(id)), Outcome::Passed, "{id}");
        }
    }

    #[test]
    fn a_wrong_fallback_source_fails() {
        let mut vector = own_vector("fallback-chain/env-hit");
        vector.doc["expected"]["results"][0]["source"] = "default".into();
        assert!(matches!(check(&vector), Outcome::Failed(_)));
        let mut vector = own_vector("fallback-chain/vault-hit");
        vector.doc["inputs"]["vault"] = serde_json::json!({});
        assert!(matches!(check(&vector), Outcome::Failed(_)));
    }

    #[test]
    fn wrong_asset_bytes_fail() {
        let mut vector = own_vector("asset-path/pem-key");
        vector.bin.as_mut().unwrap()[0] ^= 1;
        assert!(matches!(check(&vector), Outcome::Failed(_)));
    }

    #[test]
    fn a_bootstrap_that_is_present_is_not_config_missing() {
        let mut vector = own_vector("error-taxonomy/config-missing");
        // With both variables set, open() gets past the bootstrap and fails
        // on the (unreachable) bucket instead.
        let blob = blob(UNREACHABLE_ENDPOINT);
        vector.doc["inputs"]["env"] = serde_json::json!({
            "VSYNC_CONFIG": blob.as_str(),
            "VSYNC_PASSPHRASE": "p",
        });
        match check(&vector) {
            Outcome::Failed(why) => assert!(why.contains("got S3UnreachableError"), "{why}"),
            Outcome::Passed => panic!("a present bootstrap passed as config-missing"),
        }
    }
}
