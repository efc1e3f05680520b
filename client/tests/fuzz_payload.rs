//! Fuzz target (issue 13, "Fuzzing") for the runtime reader's payload
//! decoding: the decrypted bundle payload (a zip of the vault folder, or
//! JSON) turned into KV pairs and assets. The decoder itself is private
//! (`payload::decode`); `Client::from_payload` is its public entry point and
//! calls nothing else, so it is fuzzed through that (the network path of
//! `open_with` adds only S3 and the KDF, both out of scope here).
//!
//! The payload sits inside an authenticated RQE1 envelope, so only a key
//! holder can choose it; it is still decoded as hostile input (a teammate's
//! machine may be compromised; applications may call `from_payload` on
//! bundles they fetch themselves).
//!
//! Driver and mutators: `crypto/tests/support/fuzz.rs`.

#![forbid(unsafe_code)]

#[path = "../../crypto/tests/support/fuzz.rs"]
mod fuzz;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fuzz::{Mutation, anywhere, apply, mutations, random_after, random_bytes, zip_fields};
use proptest::prelude::*;
use vsync_s3_client::{Client, ErrorClass, Options};

const ENV: &str = "dev";

/// A marker in every seed value: no error message may ever contain it.
const SECRET_MARK: &str = "S3CR3T";

/// A vault: KV pairs (simple enough for every dotenv grammar to carry
/// unchanged) and assets.
#[derive(Debug, Clone)]
struct Vault {
    kv: BTreeMap<String, String>,
    assets: BTreeMap<String, Vec<u8>>,
}

fn vault() -> impl Strategy<Value = Vault> {
    (
        proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,8}", "[a-z0-9]{0,12}", 0..5),
        proptest::collection::btree_map(
            "[a-z]{1,6}(/[a-z]{1,6})?\\.(json|pem|bin)",
            proptest::collection::vec(any::<u8>(), 0..128),
            0..4,
        ),
    )
        .prop_map(|(kv, assets)| Vault {
            kv: kv
                .into_iter()
                .map(|(key, value)| (key, format!("{SECRET_MARK}{value}")))
                .collect(),
            assets,
        })
}

/// The zip `vsync push` writes (via the engine's own packer).
fn zip_payload(vault: &Vault) -> Vec<u8> {
    let source = tempfile::tempdir().unwrap();
    let folder = source.path().join("infra/vault").join(ENV);
    fs::create_dir_all(&folder).unwrap();
    let env_file: String = vault
        .kv
        .iter()
        .map(|(key, value)| format!("{key}={value}\n"))
        .collect();
    fs::write(folder.join(format!(".env.{ENV}")), env_file).unwrap();
    for (name, contents) in &vault.assets {
        let path = folder.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    vsync_engine::bundle::pack(source.path(), &Path::new("infra/vault").join(ENV))
        .unwrap()
        .to_vec()
}

/// The structured JSON payload `{kv, assets}`.
fn json_payload(vault: &Vault) -> Vec<u8> {
    let assets: BTreeMap<&String, String> = vault
        .assets
        .iter()
        .map(|(name, bytes)| (name, STANDARD.encode(bytes)))
        .collect();
    serde_json::to_vec(&serde_json::json!({"kv": vault.kv, "assets": assets})).unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Zip,
    Json,
    FlatJson,
}

#[derive(Debug, Clone)]
enum PayloadInput {
    Valid(Shape, Vault),
    Mutated(Shape, Vault, Vault, Vec<Mutation>),
    Raw(Vec<u8>),
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![Just(Shape::Zip), Just(Shape::Json), Just(Shape::FlatJson)]
}

fn encode(shape: Shape, vault: &Vault) -> Vec<u8> {
    match shape {
        Shape::Zip => zip_payload(vault),
        Shape::Json => json_payload(vault),
        Shape::FlatJson => serde_json::to_vec(&vault.kv).unwrap(),
    }
}

/// Virtual memory of this process, from `/proc/self/status` (Linux only):
/// a buffer reserved from a size field the input does not back shows up
/// here even when it is never touched.
fn vm_size_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmSize:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn fuzz_payload_decode() {
    let input = prop_oneof![
        2 => (shape(), vault()).prop_map(|(shape, vault)| PayloadInput::Valid(shape, vault)),
        6 => (shape(), vault(), vault(), mutations())
            .prop_map(|(shape, vault, other, m)| PayloadInput::Mutated(shape, vault, other, m)),
        1 => random_bytes().prop_map(PayloadInput::Raw),
        1 => random_after(b"PK\x03\x04", 0..200).prop_map(PayloadInput::Raw),
        1 => random_after(b"{", 0..64).prop_map(PayloadInput::Raw),
    ];
    fuzz::fuzz("client-payload-decode", 256, input, |input| {
        let (payload, expected) = match &input {
            PayloadInput::Valid(shape, vault) => (encode(*shape, vault), Some((*shape, vault))),
            PayloadInput::Mutated(shape, vault, other, mutations) => {
                let fields = match shape {
                    Shape::Zip => zip_fields,
                    Shape::Json | Shape::FlatJson => anywhere,
                };
                let payload = apply(
                    &encode(*shape, vault),
                    &encode(*shape, other),
                    mutations,
                    fields,
                );
                (payload, None)
            }
            PayloadInput::Raw(bytes) => (bytes.clone(), None),
        };
        let before = vm_size_kib();
        // No process environment: only the payload decides what is found.
        let options = Options::new().environment(|_| None);
        let result = Client::from_payload(ENV, &payload, options);
        if let (Some(before), Some(after)) = (before, vm_size_kib()) {
            // What the handle holds is bounded by what the payload can
            // inflate to (DEFLATE: ~1032:1), buffers at most doubling, and
            // one read chunk per entry — never by what its headers claim.
            let grown = after.saturating_sub(before) * 1024;
            let entries = zip::ZipArchive::new(std::io::Cursor::new(&payload))
                .map_or(0, |archive| archive.len() as u64);
            let bound = (64 << 20) + 2 * 1100 * payload.len() as u64 + entries * 16384;
            prop_assert!(
                grown <= bound,
                "decoding a {}-byte payload reserved {grown} bytes",
                payload.len()
            );
        }
        match result {
            Ok(client) => {
                for name in client.asset_names() {
                    prop_assert!(
                        !name.starts_with('/') && !name.split('/').any(|part| part == ".."),
                        "asset name {name:?} climbs"
                    );
                }
                if let Some((shape, vault)) = expected {
                    // Round trip: every pair and asset comes back unchanged.
                    let keys: Vec<&str> = client.keys().collect();
                    prop_assert_eq!(
                        keys,
                        vault.kv.keys().map(String::as_str).collect::<Vec<_>>()
                    );
                    for (key, value) in &vault.kv {
                        let found = client.get_env(key).unwrap();
                        prop_assert_eq!(found.expose(), value.as_str());
                    }
                    if !matches!(shape, Shape::FlatJson) {
                        let names: Vec<&str> = client.asset_names().collect();
                        prop_assert_eq!(
                            names,
                            vault.assets.keys().map(String::as_str).collect::<Vec<_>>()
                        );
                        for (name, bytes) in &vault.assets {
                            let found = client.get_as_content(name).unwrap();
                            prop_assert_eq!(found.expose(), bytes.as_slice());
                        }
                    }
                }
            }
            Err(err) => {
                prop_assert!(expected.is_none(), "a valid payload was refused: {err}");
                prop_assert_eq!(err.class(), Some(ErrorClass::BundleCorrupt), "{}", err);
                // JSON errors report positions and asset names only. Names
                // are not secret, so where a splice may have moved value bytes
                // into a name (and in zips, whose errors quote entry names)
                // this is not checked.
                let json = matches!(
                    &input,
                    PayloadInput::Mutated(Shape::Json | Shape::FlatJson, _, _, mutations)
                        if !mutations.iter().any(|m| matches!(m, Mutation::Splice(..)))
                );
                prop_assert!(
                    !(json && err.to_string().contains(SECRET_MARK)),
                    "the error quotes a value: {err}"
                );
            }
        }
        Ok(())
    });
}
