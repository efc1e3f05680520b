//! Fuzz targets (issue 13, "Fuzzing") for every parser of untrusted bytes in
//! this crate: `RQE1` open, `RQEM0001` unwrap and the manifest meta cell,
//! the `SLS1`/`VKT1` frames and the `.share` payload, and the
//! `vsync-cfg-v1:` config blob.
//!
//! Each target starts from valid writer output and mutates it (see
//! `support/fuzz.rs`), and also feeds random bytes. It asserts that the
//! parser never panics, that every error falls in the documented class for
//! its input, that declared lengths beyond the input are refused before any
//! work is done, and that what the parser accepts round-trips through the
//! writer. Key derivation (PBKDF2, 600,000 iterations) is kept out of the
//! per-case path: keys are derived once, and the frames are fuzzed through
//! `frame::split` (exactly the structural half of `open_share`/`open_keytree`)
//! plus a small end-to-end target.

#![forbid(unsafe_code)]

#[path = "support/fuzz.rs"]
mod fuzz;

use std::io::Write;
use std::num::NonZeroU32;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use fuzz::{Mutation, anywhere, apply, mutations, random_after, random_bytes};
use proptest::prelude::*;
use vsync_crypto::config_blob::{self, RuntimeConfig};
use vsync_crypto::frame::{self, FrameKind};
use vsync_crypto::rqem::{self, ManifestMeta};
use vsync_crypto::{DEFAULT_ITERATIONS, Error, ErrorClass, Key, Zeroizing, rqe1};

/// A cheap key: the iteration count does not change the envelope format.
static KEY: LazyLock<Key> =
    LazyLock::new(|| Key::derive(b"fuzz passphrase", b"fuzzsalt00000000", one()));

fn one() -> NonZeroU32 {
    NonZeroU32::new(1).unwrap()
}

/// The class `rqe1::open` must report for an envelope that is not the
/// untouched original: the structural checks in upstream's order, else the
/// tag fails.
fn expected_rqe1_class(envelope: &[u8]) -> ErrorClass {
    if envelope.len() < rqe1::MIN_LEN || envelope[..3] != rqe1::MAGIC[..3] {
        ErrorClass::BundleCorrupt
    } else if envelope[3] != rqe1::MAGIC[3] {
        ErrorClass::UnsupportedSpecVersion
    } else {
        ErrorClass::WrongPassphrase
    }
}

/// Where RQE1's structure lives: the version byte and the IV/ciphertext and
/// ciphertext/tag boundaries.
fn rqe1_fields(envelope: &[u8]) -> Vec<usize> {
    let mut fields = vec![3, rqe1::MAGIC.len(), rqe1::HEADER_LEN];
    fields.extend(envelope.len().checked_sub(rqe1::TAG_LEN));
    fields
}

#[derive(Debug, Clone)]
enum Rqe1Input {
    /// A valid envelope of `plaintext`, then `mutations` (splicing from an
    /// envelope of `other`).
    Mutated {
        plaintext: Vec<u8>,
        other: Vec<u8>,
        mutations: Vec<Mutation>,
    },
    /// Raw bytes, random or behind a valid magic.
    Raw(Vec<u8>),
}

fn rqe1_input() -> impl Strategy<Value = Rqe1Input> {
    let plaintext = || proptest::collection::vec(any::<u8>(), 0..512);
    prop_oneof![
        6 => (plaintext(), plaintext(), mutations()).prop_map(|(plaintext, other, mutations)| {
            Rqe1Input::Mutated { plaintext, other, mutations }
        }),
        1 => random_bytes().prop_map(Rqe1Input::Raw),
        1 => random_after(b"RQE1", 0..96).prop_map(Rqe1Input::Raw),
    ]
}

#[test]
fn fuzz_rqe1_open() {
    fuzz::fuzz("rqe1-open", 512, rqe1_input(), |input| {
        let (envelope, original) = match input {
            Rqe1Input::Mutated {
                plaintext,
                other,
                mutations,
            } => {
                let valid = rqe1::seal(&KEY, &plaintext);
                // Round trip first: what the writer produced opens to its input.
                let opened = rqe1::open(&KEY, &valid).unwrap();
                prop_assert_eq!(opened.as_slice(), &plaintext[..]);
                let mutated = apply(&valid, &rqe1::seal(&KEY, &other), &mutations, rqe1_fields);
                (mutated, Some((valid, plaintext)))
            }
            Rqe1Input::Raw(bytes) => (bytes, None),
        };
        match rqe1::open(&KEY, &envelope) {
            Ok(plaintext) => {
                // GCM: only the untouched envelope authenticates (a mutation
                // list can cancel out, e.g. a truncation past the end).
                prop_assert!(original.is_some(), "random bytes authenticated");
                let (valid, original) = original.unwrap();
                prop_assert_eq!(&envelope, &valid);
                prop_assert_eq!(plaintext.as_slice(), &original[..]);
            }
            Err(err) => {
                prop_assert_eq!(err.class(), expected_rqe1_class(&envelope));
                // The structural verdict comes before any cryptography.
                if err.class() != ErrorClass::WrongPassphrase {
                    prop_assert_eq!(Err(err), rqe1::check_header(&envelope));
                }
            }
        }
        // The password path classifies the same way (1 iteration keeps it cheap).
        if let Err(err) = rqe1::decrypt(b"other", b"fuzzsalt00000000", one(), &envelope) {
            prop_assert_eq!(err.class(), expected_rqe1_class(&envelope));
        } else {
            prop_assert!(false, "a key from another password opened an envelope");
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum RqemInput {
    Mutated {
        ts: String,
        payload: Vec<u8>,
        mutations: Vec<Mutation>,
    },
    Raw(Vec<u8>),
}

fn timestamp() -> impl Strategy<Value = String> {
    "[0-9]{8}-[0-9]{6}"
}

#[test]
fn fuzz_rqem0001_unwrap() {
    let input = prop_oneof![
        6 => (timestamp(), proptest::collection::vec(any::<u8>(), 0..128), mutations())
            .prop_map(|(ts, payload, mutations)| RqemInput::Mutated { ts, payload, mutations }),
        1 => random_bytes().prop_map(RqemInput::Raw),
        1 => random_after(b"RQEM0001", 0..40).prop_map(RqemInput::Raw),
    ];
    fuzz::fuzz("rqem0001-unwrap", 512, input, |input| {
        let (sealed, expected_ts) = match input {
            RqemInput::Mutated {
                ts,
                payload,
                mutations,
            } => {
                let valid = rqem::wrap(&ts, &payload).unwrap();
                prop_assert_eq!(rqem::unwrap_expecting(&valid, &ts).unwrap(), &payload[..]);
                let fields = |_: &[u8]| vec![rqem::MAGIC.len(), rqem::HEADER_LEN];
                (apply(&valid, &payload, &mutations, fields), Some(ts))
            }
            RqemInput::Raw(bytes) => (bytes, None),
        };
        match rqem::unwrap(&sealed) {
            Ok(seal) => {
                prop_assert_eq!(seal.ts.len(), rqem::TS_LEN);
                prop_assert!(seal.ts.is_ascii());
                // Accepted means the writer reproduces it byte for byte.
                prop_assert_eq!(rqem::wrap(seal.ts, seal.payload).unwrap(), sealed.clone());
                if let Some(expected) = expected_ts {
                    match rqem::unwrap_expecting(&sealed, &expected) {
                        Ok(payload) => {
                            prop_assert_eq!(seal.ts, expected.as_str());
                            prop_assert_eq!(payload, seal.payload);
                        }
                        Err(err) => {
                            prop_assert_ne!(seal.ts, expected.as_str());
                            prop_assert_eq!(err.class(), ErrorClass::BundleCorrupt);
                        }
                    }
                }
            }
            Err(err) => {
                prop_assert_eq!(err.class(), ErrorClass::BundleCorrupt);
                if sealed.len() < rqem::HEADER_LEN {
                    let too_short =
                        matches!(err, Error::TooShort { len, .. } if len == sealed.len());
                    prop_assert!(too_short, "{err:?}");
                }
            }
        }
        Ok(())
    });
}

fn meta() -> impl Strategy<Value = ManifestMeta> {
    (
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<String>()),
    )
        .prop_map(
            |(generation, previous_generation, rotated_at)| ManifestMeta {
                generation,
                previous_generation,
                rotated_at,
            },
        )
}

#[derive(Debug, Clone)]
enum MetaInput {
    /// A valid cell (as the writer emits it), mutated.
    Mutated(ManifestMeta, Vec<Mutation>),
    /// JSON-shaped text from a grammar of likely tokens.
    Tokens(Vec<&'static str>),
    /// Any text.
    Text(String),
}

#[test]
fn fuzz_manifest_meta_parse() {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"gen\"",
        "\"prev_gen\"",
        "\"rotated_at\"",
        "\"x\"",
        "0",
        "-1",
        "3.0",
        "3.5",
        "1e3",
        "1e400",
        "18446744073709551616",
        "18446744073709551615",
        "null",
        "true",
        "\"2026\"",
        " ",
        "\n",
        "\u{feff}",
    ];
    let input = prop_oneof![
        4 => (meta(), mutations()).prop_map(|(meta, mutations)| MetaInput::Mutated(meta, mutations)),
        3 => proptest::collection::vec(proptest::sample::select(TOKENS), 0..16).prop_map(MetaInput::Tokens),
        1 => any::<String>().prop_map(MetaInput::Text),
    ];
    fuzz::fuzz("manifest-meta-parse", 512, input, |input| {
        let text = match input {
            MetaInput::Mutated(meta, mutations) => {
                let json = meta.to_json();
                prop_assert_eq!(ManifestMeta::parse(&json).unwrap(), meta);
                let bytes = apply(json.as_bytes(), b"", &mutations, anywhere);
                String::from_utf8_lossy(&bytes).into_owned()
            }
            MetaInput::Tokens(tokens) => tokens.concat(),
            MetaInput::Text(text) => text,
        };
        match ManifestMeta::parse(&text) {
            // Whatever is accepted survives the writer and the parser again.
            Ok(meta) => prop_assert_eq!(ManifestMeta::parse(&meta.to_json()).unwrap(), meta),
            Err(err) => prop_assert_eq!(err.class(), ErrorClass::BundleCorrupt),
        }
        Ok(())
    });
}

/// One sealed file of each kind, with what it holds and the key its salt
/// derives (the only PBKDF2 runs at the real iteration count).
struct FrameSeed {
    kind: FrameKind,
    file: Vec<u8>,
    /// What `open` returns: for a share, the base64 text of the gzip.
    plaintext: Vec<u8>,
    key: Key,
}

const FRAME_PASSPHRASE: &str = "fuzz share passphrase";
const EXPORT_JSON: &[u8] = br#"{"version":2,"repo":"acme","env":"dev","config":{},"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#;
const KEYTREE_JSON: &[u8] = br#"{"version":1,"entries":[],"profiles":[]}"#;

static FRAME_SEEDS: LazyLock<[FrameSeed; 2]> = LazyLock::new(|| {
    let seed = |kind, file: Vec<u8>, expected_json: &[u8]| {
        let parts = frame::split(kind, &file).unwrap();
        let key = Key::derive(FRAME_PASSPHRASE.as_bytes(), parts.salt, DEFAULT_ITERATIONS);
        let plaintext = rqe1::open(&key, parts.envelope).unwrap().to_vec();
        if kind == FrameKind::Share {
            assert_eq!(
                frame::decode_share_text(&plaintext).unwrap().as_slice(),
                expected_json
            );
        } else {
            assert_eq!(plaintext, expected_json);
        }
        FrameSeed {
            kind,
            file,
            plaintext,
            key,
        }
    };
    [
        seed(
            FrameKind::Share,
            frame::seal_share(FRAME_PASSPHRASE, EXPORT_JSON),
            EXPORT_JSON,
        ),
        seed(
            FrameKind::KeyTree,
            frame::seal_keytree(FRAME_PASSPHRASE, KEYTREE_JSON),
            KEYTREE_JSON,
        ),
    ]
});

/// The frame's structure: the salt-length byte and where the salt, the
/// inner magic, its version byte and the tag start.
fn frame_fields(file: &[u8]) -> Vec<usize> {
    let mut fields = vec![4, 5];
    if let Some(&salt_len) = file.get(4) {
        let inner = 5 + usize::from(salt_len);
        fields.extend([inner, inner + 3, inner + rqe1::HEADER_LEN]);
    }
    fields.extend(file.len().checked_sub(rqe1::TAG_LEN));
    fields
}

fn frame_kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![Just(FrameKind::Share), Just(FrameKind::KeyTree)]
}

#[derive(Debug, Clone)]
enum FrameInput {
    /// Seed `seed` (0 share, 1 keytree) mutated, read as `kind`.
    Mutated {
        kind: FrameKind,
        seed: usize,
        mutations: Vec<Mutation>,
    },
    Raw(FrameKind, Vec<u8>),
}

fn frame_input() -> impl Strategy<Value = FrameInput> {
    prop_oneof![
        6 => (frame_kind(), 0usize..2, mutations())
            .prop_map(|(kind, seed, mutations)| FrameInput::Mutated { kind, seed, mutations }),
        1 => (frame_kind(), random_bytes()).prop_map(|(kind, bytes)| FrameInput::Raw(kind, bytes)),
        1 => (frame_kind(), random_after(b"SLS1", 0..80)).prop_map(|(kind, bytes)| FrameInput::Raw(kind, bytes)),
        1 => (frame_kind(), random_after(b"VKT1\x18", 0..80)).prop_map(|(kind, bytes)| FrameInput::Raw(kind, bytes)),
    ]
}

fn frame_bytes(input: &FrameInput) -> (FrameKind, Vec<u8>) {
    match input {
        FrameInput::Mutated {
            kind,
            seed,
            mutations,
        } => {
            let seeds = &*FRAME_SEEDS;
            let file = apply(
                &seeds[*seed].file,
                &seeds[1 - seed].file,
                mutations,
                frame_fields,
            );
            (*kind, file)
        }
        FrameInput::Raw(kind, bytes) => (*kind, bytes.clone()),
    }
}

#[test]
fn fuzz_sls1_vkt1_frames() {
    fuzz::fuzz("sls1-vkt1-split", 512, frame_input(), |input| {
        let (kind, file) = frame_bytes(&input);
        let (magic, other_magic) = match kind {
            FrameKind::Share => (frame::SHARE_MAGIC, frame::KEYTREE_MAGIC),
            FrameKind::KeyTree => (frame::KEYTREE_MAGIC, frame::SHARE_MAGIC),
        };
        match frame::split(kind, &file) {
            Err(err) => {
                prop_assert!(
                    matches!(
                        err.class(),
                        ErrorClass::BundleCorrupt | ErrorClass::UnsupportedSpecVersion
                    ),
                    "{err:?}"
                );
                if file.len() >= 5 && &file[..4] == other_magic {
                    prop_assert!(matches!(err, Error::WrongFileKind { .. }), "{err:?}");
                }
                // A salt length beyond the file is refused as such.
                if file.len() >= 5 && &file[..4] == magic {
                    let declared = 5 + usize::from(file[4]);
                    if declared > file.len() {
                        prop_assert_eq!(
                            &err,
                            &Error::TooShort {
                                format: err_format(kind),
                                len: file.len(),
                                min: declared
                            }
                        );
                    }
                }
            }
            Ok(parts) => {
                prop_assert_eq!(&file[..4], &magic[..]);
                prop_assert_eq!(parts.salt, &file[5..5 + usize::from(file[4])]);
                prop_assert_eq!(parts.envelope, &file[5 + parts.salt.len()..]);
                prop_assert!(rqe1::check_header(parts.envelope).is_ok());
                // Past the structure, decrypt with the key the seed's salt
                // derives; any other salt derives another key, which is the
                // end-to-end target's business (it pays for PBKDF2).
                for seed in FRAME_SEEDS.iter().filter(|seed| seed.kind == kind) {
                    let seed_parts = frame::split(kind, &seed.file).unwrap();
                    if parts.salt != seed_parts.salt {
                        continue;
                    }
                    match rqe1::open(&seed.key, parts.envelope) {
                        Ok(plaintext) => {
                            prop_assert_eq!(parts.envelope, seed_parts.envelope);
                            prop_assert_eq!(plaintext.as_slice(), &seed.plaintext[..]);
                        }
                        Err(err) => prop_assert_eq!(err.class(), ErrorClass::WrongPassphrase),
                    }
                }
            }
        }
        Ok(())
    });
}

fn err_format(kind: FrameKind) -> vsync_crypto::Format {
    match kind {
        FrameKind::Share => vsync_crypto::Format::Share,
        FrameKind::KeyTree => vsync_crypto::Format::KeyTree,
    }
}

/// The whole `open_share`/`open_keytree` path, PBKDF2 included, so the
/// composition `split` → derive → open → decode is fuzzed too. Few cases:
/// every input that passes the structure costs one 600,000-iteration run.
#[test]
fn fuzz_sls1_vkt1_open_end_to_end() {
    fuzz::fuzz("sls1-vkt1-open", 6, frame_input(), |input| {
        let (kind, file) = frame_bytes(&input);
        let opened = match kind {
            FrameKind::Share => frame::open_share(FRAME_PASSPHRASE, &file),
            FrameKind::KeyTree => frame::open_keytree(FRAME_PASSPHRASE, &file),
        };
        let seed = FRAME_SEEDS.iter().find(|seed| seed.file == file);
        match (opened, seed) {
            (Ok(json), Some(seed)) if seed.kind == kind => {
                let expected = if kind == FrameKind::Share {
                    EXPORT_JSON
                } else {
                    KEYTREE_JSON
                };
                prop_assert_eq!(json.as_slice(), expected);
            }
            (Ok(_), _) => prop_assert!(false, "a mutated frame opened"),
            (Err(err), _) => {
                // Same verdict as the structural half when that refuses.
                if let Err(structural) = frame::split(kind, &file) {
                    prop_assert_eq!(err, structural);
                } else {
                    prop_assert_eq!(err.class(), ErrorClass::WrongPassphrase);
                }
            }
        }
        Ok(())
    });
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(6));
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[derive(Debug, Clone)]
enum ShareTextInput {
    /// base64(gzip(json)) as the writer makes it, then mutated.
    Mutated(Vec<u8>, Vec<Mutation>),
    /// Valid base64 of mutated gzip bytes.
    MutatedGzip(Vec<u8>, Vec<Mutation>),
    Raw(Vec<u8>),
}

/// The `.share` plaintext decoder: authenticated, but chosen by whoever
/// sent the share, so hostile.
#[test]
fn fuzz_share_payload_decode() {
    let json = || proptest::collection::vec(any::<u8>(), 0..256);
    let input = prop_oneof![
        3 => (json(), mutations()).prop_map(|(json, m)| ShareTextInput::Mutated(json, m)),
        3 => (json(), mutations()).prop_map(|(json, m)| ShareTextInput::MutatedGzip(json, m)),
        1 => random_bytes().prop_map(ShareTextInput::Raw),
    ];
    fuzz::fuzz("share-payload-decode", 512, input, |input| {
        let text = match input {
            ShareTextInput::Mutated(json, mutations) => {
                let text = STANDARD.encode(gzip(&json));
                // Round trip, with the trailing newline a text editor adds.
                let decoded = frame::decode_share_text(format!("{text}\n").as_bytes()).unwrap();
                prop_assert_eq!(decoded.as_slice(), &json[..]);
                apply(text.as_bytes(), b"", &mutations, anywhere)
            }
            ShareTextInput::MutatedGzip(json, mutations) => {
                // Gzip header: flags, the ISIZE/CRC trailer.
                let fields = |gz: &[u8]| {
                    let mut fields = vec![3, 4, 8, 9];
                    fields.extend(gz.len().checked_sub(8));
                    fields.extend(gz.len().checked_sub(4));
                    fields
                };
                STANDARD
                    .encode(apply(&gzip(&json), &[], &mutations, fields))
                    .into_bytes()
            }
            ShareTextInput::Raw(bytes) => bytes,
        };
        match frame::decode_share_text(&text) {
            Ok(json) => prop_assert!(json.len() <= 16 << 20),
            Err(err) => prop_assert!(
                matches!(
                    err,
                    Error::CorruptPayload {
                        format: vsync_crypto::Format::Share,
                        ..
                    }
                ),
                "{err:?}"
            ),
        }
        Ok(())
    });
}

/// A decompression bomb in a `.share`: 32 MiB of zeros gzip to ~32 KiB;
/// the decoder stops at 16 MiB instead of inflating it all.
#[test]
fn share_payload_bomb_is_cut_off() {
    let bomb = gzip(&vec![0u8; 32 << 20]);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let json = frame::decode_share_text(STANDARD.encode(&bomb).as_bytes()).unwrap();
    assert_eq!(json.len(), 16 << 20);
}

fn sample_config() -> RuntimeConfig {
    RuntimeConfig {
        endpoint: "https://s3.example.com".into(),
        region: "auto".into(),
        bucket: "acme".into(),
        access_key_id: Zeroizing::new("AKIAFUZZSEED0000".into()),
        secret_access_key: Zeroizing::new("fuzz-seed-secret-access-key".into()),
        prefix: "web/prod/".into(),
        env: "prod".into(),
        salt: Zeroizing::new("NvTGExRJ8+Kn8dwdXrPv0w".into()),
        iterations: DEFAULT_ITERATIONS,
    }
}

/// The sample's JSON exactly as the writer puts it in the blob.
fn sample_json() -> String {
    serde_json::json!({
        "v": 1,
        "endpoint": "https://s3.example.com",
        "region": "auto",
        "bucket": "acme",
        "accessKeyId": "AKIAFUZZSEED0000",
        "secretAccessKey": "fuzz-seed-secret-access-key",
        "prefix": "web/prod/",
        "env": "prod",
        "salt": "NvTGExRJ8+Kn8dwdXrPv0w",
        "iterations": 600000,
    })
    .to_string()
}

fn config() -> impl Strategy<Value = RuntimeConfig> {
    (
        (any::<String>(), any::<String>(), any::<String>()),
        (any::<String>(), any::<String>()),
        (any::<String>(), any::<String>()),
        "\\PC{16,40}",
        // Up to the default: whatever cap the reader puts on iterations, it
        // must accept the count every writer uses.
        1u32..=600_000,
    )
        .prop_map(
            |((endpoint, region, bucket), (access, secret), (prefix, env), salt, iterations)| {
                RuntimeConfig {
                    endpoint,
                    region,
                    bucket,
                    access_key_id: Zeroizing::new(access),
                    secret_access_key: Zeroizing::new(secret),
                    prefix,
                    env,
                    salt: Zeroizing::new(salt),
                    iterations: NonZeroU32::new(iterations).unwrap(),
                }
            },
        )
}

#[derive(Debug, Clone)]
enum BlobInput {
    /// The blob text, mutated.
    Blob(Vec<Mutation>),
    /// The inner JSON, mutated, then encoded.
    Json(Vec<Mutation>),
    /// The gzip stream, mutated, then base64url-encoded.
    Gzip(Vec<Mutation>),
    /// The prefix and anything.
    Body(String),
    Text(String),
}

/// Decodes `blob`; checks the class and that no error quotes a secret.
fn check_decode(blob: &str) -> Result<Option<RuntimeConfig>, TestCaseError> {
    match RuntimeConfig::decode(blob) {
        Ok(config) => {
            prop_assert!(config.salt.chars().count() >= config_blob::MIN_SALT_LEN);
            // Accepted means it re-encodes to a blob that decodes the same.
            prop_assert_eq!(&RuntimeConfig::decode(&config.encode()).unwrap(), &config);
            Ok(Some(config))
        }
        Err(err) => {
            prop_assert!(
                matches!(
                    err.class(),
                    ErrorClass::ConfigMissing
                        | ErrorClass::ConfigUnsupportedVersion
                        | ErrorClass::BundleCorrupt
                ),
                "{err:?}"
            );
            let message = err.to_string();
            for secret in ["AKIAFUZZSEED", "fuzz-seed-secret", "NvTGExRJ8"] {
                prop_assert!(
                    !message.contains(secret),
                    "error quotes a secret: {message}"
                );
            }
            Ok(None)
        }
    }
}

#[test]
fn fuzz_config_blob_decode() {
    let input = prop_oneof![
        3 => mutations().prop_map(BlobInput::Blob),
        3 => mutations().prop_map(BlobInput::Json),
        2 => mutations().prop_map(BlobInput::Gzip),
        1 => "[A-Za-z0-9_\\- \n+/=]{0,200}".prop_map(BlobInput::Body),
        1 => any::<String>().prop_map(BlobInput::Text),
    ];
    fuzz::fuzz("config-blob-decode", 512, input, |input| {
        let blob = match input {
            BlobInput::Blob(mutations) => {
                let blob = sample_config().encode();
                let bytes = apply(blob.as_bytes(), b"", &mutations, anywhere);
                String::from_utf8_lossy(&bytes).into_owned()
            }
            BlobInput::Json(mutations) => {
                let json = apply(sample_json().as_bytes(), b"", &mutations, anywhere);
                config_blob::encode_json(&json).as_str().to_owned()
            }
            BlobInput::Gzip(mutations) => {
                let gz = apply(&gzip(sample_json().as_bytes()), b"", &mutations, anywhere);
                let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(gz);
                format!("{}{body}", config_blob::PREFIX)
            }
            BlobInput::Body(body) => format!("{}{body}", config_blob::PREFIX),
            BlobInput::Text(text) => text,
        };
        check_decode(&blob)?;
        Ok(())
    });
}

#[test]
fn fuzz_config_blob_round_trip() {
    fuzz::fuzz("config-blob-round-trip", 256, config(), |config| {
        let blob = config.encode();
        prop_assert!(!blob[config_blob::PREFIX.len()..].contains(['+', '/', '=']));
        prop_assert_eq!(check_decode(&blob)?, Some(config));
        Ok(())
    });
}

/// A config whose JSON inflates past the 64 KiB cap is refused as corrupt
/// (the inflater stops there), not buffered whole.
#[test]
fn config_blob_bomb_is_refused() {
    let padded = sample_json().replacen('{', &format!("{{{}", " ".repeat(1 << 20)), 1);
    let blob = config_blob::encode_json(padded.as_bytes());
    assert!(blob.len() < 8 << 10, "{}", blob.len());
    let err = RuntimeConfig::decode(&blob).unwrap_err();
    assert_eq!(err.class(), ErrorClass::BundleCorrupt);
    // The same JSON without the padding is fine: the cap is the reason.
    assert_eq!(
        RuntimeConfig::decode(&config_blob::encode_json(sample_json().as_bytes())).unwrap(),
        sample_config()
    );
}
