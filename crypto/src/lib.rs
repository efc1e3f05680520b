//! The vsync envelopes, byte-compatible with upstream vsync and pinned by its
//! conformance corpus:
//!
//! - [`rqe1`]: the AES-256-GCM envelope around every bundle, backup and share;
//! - [`rqem`]: the `RQEM0001` timestamp seal (anti-rollback) and the manifest
//!   meta cell carrying the generation counter;
//! - [`frame`]: the `SLS1` `.share` and `VKT1` `.keytree` passphrase frames;
//! - [`config_blob`]: the `vsync-cfg-v1:` runtime bootstrap blob;
//! - [`kdf`]: PBKDF2-HMAC-SHA256 key derivation, and the per-command
//!   [`KeyCache`] that runs it once per key;
//! - [`fingerprint`]: keyed HMAC fingerprints of secret values, so sync can
//!   tell a changed value from an unchanged one without keeping plaintext;
//! - [`error`]: the 7-class error taxonomy and this crate's typed errors.
//!
//! Pure functions over bytes: no I/O, no clocks, no logging. Keys and
//! plaintexts live in [`zeroize::Zeroizing`] buffers and are wiped on drop.

#![forbid(unsafe_code)]

pub mod config_blob;
pub mod error;
pub mod fingerprint;
pub mod frame;
mod gzip;
pub mod kdf;
pub mod rqe1;
pub mod rqem;

pub use error::{Error, ErrorClass, Format};
pub use kdf::{DEFAULT_ITERATIONS, Key, KeyCache};
pub use zeroize::Zeroizing;
