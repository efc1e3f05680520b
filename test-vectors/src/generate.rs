//! The deterministic corpus generator (upstream `generate-test-vectors`,
//! spec v0.12 §7.2).
//!
//! Every IV and salt comes from `SHA-256("vsync-vec-v0.12|<category>|<name>|<label>")`:
//! the IV is the first 12 bytes of the `iv` seed, the salt string is the
//! standard base64 of the first 16 bytes of the `salt` seed. So every RQE1
//! and RQEM0001 fixture is byte-identical to upstream's. Config blobs go
//! through our own gzip encoder, whose DEFLATE stream differs from Bun's, so
//! those `.bin` files decode to the same JSON but are not the same bytes.

use std::fs;
use std::io;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vsync_crypto::config_blob::{self, RuntimeConfig};
use vsync_crypto::{DEFAULT_ITERATIONS, Zeroizing, rqem};

use crate::corpus::Category;
use crate::fixed_iv::dangerous_seal_with_fixed_iv;

/// The `generated_by` stamp of this generator's vectors.
pub const GENERATED_BY: &str = concat!("vsync-rs@", env!("CARGO_PKG_VERSION"));
/// The corpus spec version.
pub const SPEC_VERSION: &str = "v0.12";

/// One generated vector, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedVector {
    /// Its category.
    pub category: Category,
    /// Its file stem.
    pub name: &'static str,
    /// The JSON document text (2-space indent, trailing newline).
    pub json: String,
    /// The `.bin` wire bytes, if the vector has any.
    pub bin: Option<Vec<u8>>,
}

/// `SHA-256("vsync-vec-v0.12|<category>|<name>|<label>")`.
pub fn seed(category: Category, name: &str, label: &str) -> [u8; 32] {
    Sha256::digest(format!("vsync-vec-v0.12|{category}|{name}|{label}")).into()
}

fn seeded_salt(category: Category, name: &str) -> String {
    STANDARD.encode(&seed(category, name, "salt")[..16])
}

/// An RQE1 envelope with the seeded IV and salt; returns `(salt, envelope)`.
fn seeded_envelope(
    category: Category,
    name: &str,
    passphrase: &str,
    plaintext: &[u8],
) -> (String, Vec<u8>) {
    let salt = seeded_salt(category, name);
    let iv: [u8; 12] = seed(category, name, "iv")[..12]
        .try_into()
        .expect("12 of 32 bytes");
    // The IV is public (seeded), which is what makes the corpus reproducible
    // and why this sealing lives only in this crate.
    let envelope = dangerous_seal_with_fixed_iv(
        passphrase.as_bytes(),
        salt.as_bytes(),
        DEFAULT_ITERATIONS,
        &iv,
        plaintext,
    );
    (salt, envelope)
}

fn document(category: Category, description: &str, inputs: Value, expected: Value) -> String {
    let doc = json!({
        "category": category.dir_name(),
        "description": description,
        "inputs": inputs,
        "expected": expected,
        "generated_by": GENERATED_BY,
        "spec_version": SPEC_VERSION,
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("a JSON value always serialises");
    text.push('\n');
    text
}

struct Builder(Vec<GeneratedVector>);

impl Builder {
    fn add(
        &mut self,
        category: Category,
        name: &'static str,
        description: &str,
        inputs: Value,
        expected: Value,
        bin: Option<Vec<u8>>,
    ) {
        let json = document(category, description, inputs, expected);
        self.0.push(GeneratedVector {
            category,
            name,
            json,
            bin,
        });
    }
}

const CORRECT_PASSPHRASE: &str = "correct horse battery staple";

/// Every vector of the corpus, in category then name order.
pub fn corpus() -> Vec<GeneratedVector> {
    let mut corpus = Builder(Vec::new());
    rqe1_decrypt(&mut corpus);
    rqe1_decrypt_error(&mut corpus);
    rqem0001_manifest(&mut corpus);
    config_blob(&mut corpus);
    fallback_chain(&mut corpus);
    asset_path(&mut corpus);
    error_taxonomy(&mut corpus);
    let mut vectors = corpus.0;
    vectors.sort_by(|a, b| (a.category, a.name).cmp(&(b.category, b.name)));
    vectors
}

fn rqe1_decrypt(corpus: &mut Builder) {
    let category = Category::Rqe1Decrypt;
    let cases: [(&str, &str, &[u8]); 3] = [
        (
            "empty-plaintext",
            "Decrypt an empty-payload RQE1 envelope; expected plaintext is zero bytes",
            b"",
        ),
        (
            "hello-world",
            "Decrypt a passphrase-derived RQE1 envelope; expect 'hello world' UTF-8",
            b"hello world",
        ),
        (
            "non-utf8-bytes",
            "Decrypt RQE1 envelope whose plaintext is binary (not valid UTF-8); loaders compare on hex only",
            &[0xff, 0xfe, 0xfd, 0x00, 0x01, 0xc3, 0x28, 0xa0, 0xa1],
        ),
    ];
    for (name, description, plaintext) in cases {
        let (salt, envelope) = seeded_envelope(category, name, CORRECT_PASSPHRASE, plaintext);
        // `plaintext_utf8` is omitted for plaintexts that are not UTF-8.
        let expected = match std::str::from_utf8(plaintext) {
            Ok(utf8) => {
                json!({"plaintext_hex": hex::encode(plaintext), "plaintext_utf8": utf8, "error": null})
            }
            Err(_) => json!({"plaintext_hex": hex::encode(plaintext), "error": null}),
        };
        corpus.add(
            category,
            name,
            description,
            json!({"passphrase": CORRECT_PASSPHRASE, "salt": salt}),
            expected,
            Some(envelope),
        );
    }
}

/// One `rqe1-decrypt-error` vector: an envelope of `plaintext` under the
/// correct passphrase, damaged by `mutate`, read with `vector_passphrase`.
struct DecryptErrorCase {
    name: &'static str,
    description: &'static str,
    vector_passphrase: &'static str,
    plaintext: &'static [u8],
    mutate: fn(&mut Vec<u8>),
    error: &'static str,
}

fn rqe1_decrypt_error(corpus: &mut Builder) {
    let category = Category::Rqe1DecryptError;
    let cases = [
        DecryptErrorCase {
            name: "bad-gcm-tag",
            description: "RQE1 envelope final byte XOR 0xFF (GCM tag invalid) → WrongPassphraseError",
            vector_passphrase: CORRECT_PASSPHRASE,
            plaintext: b"payload",
            mutate: |envelope| *envelope.last_mut().expect("an envelope is never empty") ^= 0xff,
            error: "WrongPassphraseError",
        },
        DecryptErrorCase {
            name: "corrupt-magic",
            description: "RQE1 magic byte 0 flipped (R→X) → BundleCorruptError",
            vector_passphrase: CORRECT_PASSPHRASE,
            plaintext: b"payload",
            mutate: |envelope| envelope[0] = b'X',
            error: "BundleCorruptError",
        },
        DecryptErrorCase {
            name: "truncated-ciphertext",
            description: "RQE1 envelope structurally truncated to 30 bytes — below the 48-byte minimum (magic+salt+IV+tag) → BundleCorruptError",
            vector_passphrase: CORRECT_PASSPHRASE,
            plaintext: b"longer payload to clearly survive header",
            mutate: |envelope| envelope.truncate(30),
            error: "BundleCorruptError",
        },
        DecryptErrorCase {
            name: "wrong-passphrase",
            description: "Valid RQE1 envelope; inputs.passphrase is wrong → WrongPassphraseError",
            vector_passphrase: "definitely-not-the-passphrase",
            plaintext: b"the real secret",
            mutate: |_| {},
            error: "WrongPassphraseError",
        },
        DecryptErrorCase {
            name: "wrong-version",
            description: "RQE1 magic byte 3 flipped (1→2) → UnsupportedSpecVersionError",
            vector_passphrase: CORRECT_PASSPHRASE,
            plaintext: b"payload",
            mutate: |envelope| envelope[3] = b'2',
            error: "UnsupportedSpecVersionError",
        },
    ];
    for case in cases {
        let (salt, mut envelope) =
            seeded_envelope(category, case.name, CORRECT_PASSPHRASE, case.plaintext);
        (case.mutate)(&mut envelope);
        corpus.add(
            category,
            case.name,
            case.description,
            json!({"passphrase": case.vector_passphrase, "salt": salt}),
            json!({"plaintext_hex": null, "error": case.error}),
            Some(envelope),
        );
    }
}

fn rqem0001_manifest(corpus: &mut Builder) {
    let category = Category::Rqem0001Manifest;
    let seal = |ts: &str, payload: &[u8]| {
        rqem::wrap(ts, payload).expect("fixture timestamps are 15 ASCII chars")
    };
    let positives: [(&str, &str, &str, &[u8]); 2] = [
        (
            "positive-basic",
            "RQEM0001 manifest sealed at ts=20260429-103045; matches remote",
            "20260429-103045",
            br#"{ "gen": 1, "hello": "world" }"#,
        ),
        (
            "positive-gen-counter",
            "RQEM0001 manifest with gen=42; embedded ts matches remote",
            "20260501-091500",
            br#"{ "gen": 42 }"#,
        ),
    ];
    for (name, description, ts, payload) in positives {
        corpus.add(
            category,
            name,
            description,
            json!({"passphrase": "n/a — plaintext manifest layer", "remote_ts": ts}),
            json!({"embedded_ts": ts, "payload_hex": hex::encode(payload), "error": null}),
            Some(seal(ts, payload)),
        );
    }
    corpus.add(
        category,
        "ts-mismatch",
        "Manifest embedded ts (20260429…) != remote ts (20260501…) → BundleCorruptError",
        json!({"passphrase": "n/a", "remote_ts": "20260501-091500"}),
        json!({"embedded_ts": "20260429-103045", "payload_hex": null, "error": "BundleCorruptError"}),
        Some(seal("20260429-103045", b"payload")),
    );
    let mut wrong_magic = seal("20260429-103045", b"payload");
    wrong_magic[0] = b'X';
    corpus.add(
        category,
        "wrong-magic",
        "RQEM0001 magic byte 0 flipped (R→X) → BundleCorruptError",
        json!({"passphrase": "n/a", "remote_ts": "20260429-103045"}),
        json!({"embedded_ts": null, "payload_hex": null, "error": "BundleCorruptError"}),
        Some(wrong_magic),
    );
}

fn config_blob(corpus: &mut Builder) {
    let category = Category::ConfigBlob;
    let runtime_config = |endpoint: &str,
                          region: &str,
                          bucket: &str,
                          key_id: &str,
                          secret: &str,
                          prefix: &str,
                          env: &str,
                          salt: &str| RuntimeConfig {
        endpoint: endpoint.into(),
        region: region.into(),
        bucket: bucket.into(),
        access_key_id: Zeroizing::new(key_id.into()),
        secret_access_key: Zeroizing::new(secret.into()),
        prefix: prefix.into(),
        env: env.into(),
        salt: Zeroizing::new(salt.into()),
        iterations: DEFAULT_ITERATIONS,
    };
    let positives = [
        (
            "positive-aws",
            "VSYNC_CONFIG for AWS S3 (us-east-1) — typical cloud shape; carries salt+iterations per v0.12 §2.1",
            runtime_config(
                "https://s3.amazonaws.com",
                "us-east-1",
                "acme-secrets",
                "AKIAEXAMPLE0000000000",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "myapp/",
                "prod",
                "NvTGExRJ8+Kn8dwdXrPv0w==",
            ),
        ),
        (
            "positive-minio",
            "VSYNC_CONFIG for self-hosted MinIO — http endpoint, no prefix; carries salt+iterations per v0.12 §2.1",
            runtime_config(
                "http://minio.internal:9000",
                "us-east-1",
                "secrets",
                "minioadmin",
                "minioadmin",
                "",
                "dev",
                "UME0UbAv7viJRLZ9vEQZ3w==",
            ),
        ),
        (
            "positive-r2",
            "VSYNC_CONFIG for Cloudflare R2 — explicit endpoint, region=auto; carries salt+iterations per v0.12 §2.1",
            runtime_config(
                "https://abc123.r2.cloudflarestorage.com",
                "auto",
                "acme-vault",
                "r2_access_key_id_example",
                "r2_secret_access_key_example",
                "web/",
                "staging",
                "f5n4vsEWbGjjHc47wtnMJQ==",
            ),
        ),
    ];
    for (name, description, config) in positives {
        corpus.add(
            category,
            name,
            description,
            json!({}),
            json!({"config_json": crate::config_json(&config), "error": null}),
            Some(config.encode().as_bytes().to_vec()),
        );
    }
    let negative = |error: &str| json!({"config_json": null, "error": error});
    corpus.add(
        category,
        "negative-malformed-gzip",
        "Correct magic, base64url-no-pad body decodes to non-gzip bytes → BundleCorruptError",
        json!({}),
        negative("BundleCorruptError"),
        Some(b"vsync-cfg-v1:AAECAwQFBgcICQ".to_vec()),
    );
    corpus.add(
        category,
        "negative-unknown-version",
        "Magic + gzip + base64url all valid but inner v=99 → ConfigUnsupportedVersionError",
        json!({}),
        negative("ConfigUnsupportedVersionError"),
        Some(
            config_blob::encode_json(br#"{"v":99,"endpoint":"https://s3.example.com","region":"us-east-1","bucket":"acme","accessKeyId":"k","secretAccessKey":"s","prefix":"","env":"prod"}"#)
                .as_bytes()
                .to_vec(),
        ),
    );
    corpus.add(
        category,
        "negative-wrong-magic",
        "Raw JSON pasted without the vsync-cfg-v1: prefix → ConfigMissingError",
        json!({}),
        negative("ConfigMissingError"),
        Some(br#"{"v":1,"endpoint":"https://s3.amazonaws.com","region":"us-east-1","bucket":"acme-secrets","accessKeyId":"AKIAEXAMPLE0000000000","secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","prefix":"myapp/","env":"prod"}"#.to_vec()),
    );
}

fn fallback_chain(corpus: &mut Builder) {
    let category = Category::FallbackChain;
    let cases = [
        (
            "default-hit",
            "Key absent from vault and env → defaults are the floor",
            json!({"bin": null, "vault": {}, "env": {}, "defaults": {"PORT": "8080"}, "queries": ["PORT"]}),
            json!({"key": "PORT", "value": "8080", "source": "default", "has": true}),
        ),
        (
            "env-hit",
            "Key absent from vault, present in env and defaults → env wins",
            json!({"bin": null, "vault": {}, "env": {"STRIPE_KEY": "sk_live_env"}, "defaults": {"STRIPE_KEY": "sk_test_default"}, "queries": ["STRIPE_KEY"]}),
            json!({"key": "STRIPE_KEY", "value": "sk_live_env", "source": "env", "has": true}),
        ),
        (
            "missing",
            "Key nowhere; value is null, source is 'missing', has is false",
            json!({"bin": null, "vault": {"OTHER": "x"}, "env": {"ANOTHER": "y"}, "defaults": {"THIRD": "z"}, "queries": ["DATABASE_URL"]}),
            json!({"key": "DATABASE_URL", "value": null, "source": "missing", "has": false}),
        ),
        (
            "vault-hit",
            "Key present in vault, env, AND defaults → vault wins",
            json!({"bin": null, "vault": {"DATABASE_URL": "postgres://vault"}, "env": {"DATABASE_URL": "postgres://env"}, "defaults": {"DATABASE_URL": "postgres://default"}, "queries": ["DATABASE_URL"]}),
            json!({"key": "DATABASE_URL", "value": "postgres://vault", "source": "vault", "has": true}),
        ),
    ];
    for (name, description, inputs, result) in cases {
        corpus.add(
            category,
            name,
            description,
            inputs,
            json!({"results": [result], "error": null}),
            None,
        );
    }
}

/// A fake PEM private key (not a real key).
const FAKE_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDFAKEKEYBYTESxx\n-----END PRIVATE KEY-----\n";
/// A GCP-shaped service-account JSON, 2-space indented, no trailing newline.
const FAKE_SERVICE_ACCOUNT: &str = "{\n  \"type\": \"service_account\",\n  \"project_id\": \"example-project\",\n  \"private_key_id\": \"abc123\",\n  \"client_email\": \"svc@example.iam.gserviceaccount.com\"\n}";

fn asset_path(corpus: &mut Builder) {
    let category = Category::AssetPath;
    let cases = [
        (
            "pem-key",
            "Materialize a fake PEM private key to a 0600 tempfile; bytes match exactly",
            "TLS_PRIVATE_KEY_PEM",
            FAKE_PEM,
        ),
        (
            "service-account-json",
            "Materialize a GCP-shaped service-account JSON to a 0600 tempfile",
            "GOOGLE_APPLICATION_CREDENTIALS_JSON",
            FAKE_SERVICE_ACCOUNT,
        ),
    ];
    for (name, description, key, asset) in cases {
        corpus.add(
            category,
            name,
            description,
            json!({"key": key, "vault": {key: "<binary — see .bin>"}}),
            json!({"bytes_hex": hex::encode(asset), "mode_octal": "0600", "error": null}),
            Some(asset.as_bytes().to_vec()),
        );
    }
}

fn error_taxonomy(corpus: &mut Builder) {
    let category = Category::ErrorTaxonomy;
    let error = |class: &str| json!({"error": class});
    let (salt, envelope) = seeded_envelope(
        category,
        "wrong-passphrase",
        "real-passphrase",
        b"real-secret",
    );
    corpus.add(
        category,
        "wrong-passphrase",
        "Class identity: same wrong-passphrase blob must surface WrongPassphraseError in every lib",
        json!({"passphrase": "wrong-passphrase", "salt": salt}),
        error("WrongPassphraseError"),
        Some(envelope),
    );
    let mutated: [(&str, &str, usize, u8, &str); 2] = [
        (
            "bundle-corrupt",
            "Magic flipped on the inner bundle → BundleCorruptError (not WrongPassphraseError)",
            0,
            b'X',
            "BundleCorruptError",
        ),
        (
            "unsupported-spec-version",
            "RQE1 envelope advertised as v2 — lib understands v1 only → UnsupportedSpecVersionError",
            3,
            b'2',
            "UnsupportedSpecVersionError",
        ),
    ];
    for (name, description, offset, byte, class) in mutated {
        let (salt, mut envelope) = seeded_envelope(category, name, "passphrase", b"payload");
        envelope[offset] = byte;
        corpus.add(
            category,
            name,
            description,
            json!({"passphrase": "passphrase", "salt": salt}),
            error(class),
            Some(envelope),
        );
    }
    corpus.add(
        category,
        "config-missing",
        "VSYNC_CONFIG and VSYNC_PASSPHRASE both unset at Open() → ConfigMissingError",
        json!({"bin": null, "env": {}}),
        error("ConfigMissingError"),
        None,
    );
    corpus.add(
        category,
        "config-unsupported-version",
        "Inner JSON v=99; loader must surface ConfigUnsupportedVersionError, not a generic decode error",
        json!({"bin": "see-bin"}),
        error("ConfigUnsupportedVersionError"),
        Some(config_blob::encode_json(br#"{"v":99,"endpoint":"https://s3.example.com"}"#).as_bytes().to_vec()),
    );
    corpus.add(
        category,
        "manifest-not-found",
        "Bucket reachable but <prefix><env>/latest.manifest is 404 → ManifestNotFoundError",
        json!({"bin": null, "scenario": "manifest-404"}),
        error("ManifestNotFoundError"),
        None,
    );
    corpus.add(
        category,
        "s3-unreachable",
        "Open() fails when S3 endpoint is unreachable / IAM rejects (4xx/5xx) → S3UnreachableError",
        json!({"bin": null, "scenario": "network-error-or-iam-403"}),
        error("S3UnreachableError"),
        None,
    );
}

/// Writes the corpus under `root`: in each category directory every file but
/// `README.md` is removed first (as upstream's generator does), then the
/// vectors are written. Returns the number of vectors written.
pub fn write(root: &Path) -> io::Result<usize> {
    let vectors = corpus();
    for category in Category::ALL {
        let dir = root.join(category.dir_name());
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_file() && path.file_name().is_some_and(|name| name != "README.md") {
                fs::remove_file(path)?;
            }
        }
    }
    for vector in &vectors {
        let dir = root.join(vector.category.dir_name());
        fs::write(dir.join(format!("{}.json", vector.name)), &vector.json)?;
        if let Some(bin) = &vector.bin {
            fs::write(dir.join(format!("{}.bin", vector.name)), bin)?;
        }
    }
    Ok(vectors.len())
}
