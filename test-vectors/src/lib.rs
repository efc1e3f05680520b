//! The vsync conformance corpus: the project's own deterministic generator
//! ([`generate`]), a loader for any corpus directory with upstream's layout
//! ([`corpus`]), and the checks that drive every vector through the real
//! implementation ([`check`]).
//!
//! A corpus is one directory per category holding `<name>.json` plus an
//! optional `<name>.bin` of raw wire bytes; category `README.md` files and
//! `"placeholder": true` vectors are not vectors.

#![forbid(unsafe_code)]

pub mod check;
pub mod corpus;
mod fixed_iv;
pub mod generate;

use std::path::PathBuf;

use vsync_crypto::config_blob::RuntimeConfig;

/// The project's committed corpus, `test-vectors/corpus/`.
pub fn own_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Where the upstream corpus lives: `$VSYNC_UPSTREAM_CORPUS`, else
/// `../shared/vsync-conformance` beside the repository root.
pub fn upstream_corpus_dir() -> PathBuf {
    match std::env::var_os("VSYNC_UPSTREAM_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vsync-conformance"),
    }
}

/// A decoded config as the corpus writes `expected.config_json`: the ten
/// wire fields under their camelCase names, in wire order.
pub fn config_json(config: &RuntimeConfig) -> serde_json::Value {
    serde_json::json!({
        "v": 1,
        "endpoint": config.endpoint,
        "region": config.region,
        "bucket": config.bucket,
        "accessKeyId": config.access_key_id.as_str(),
        "secretAccessKey": config.secret_access_key.as_str(),
        "prefix": config.prefix,
        "env": config.env,
        "salt": config.salt.as_str(),
        "iterations": config.iterations.get(),
    })
}
