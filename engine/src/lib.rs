//! The vsync domain: the bundle a vault folder travels in ([`bundle`]), the
//! `.env.<env>` line rules ([`dotenv`]), where encrypted bundles live ([`store`]), how a vault is
//! published to and fetched from a store without ever losing a version or
//! accepting a rollback ([`vault`]), and the timestamps that name versions
//! ([`timestamp`]). [`vault_fs`] reads and writes the vault folder without
//! following a symlink anywhere below the repository root.
//!
//! [`sink`] is the trait every platform the vault fans out to implements,
//! and [`sync`] plans and applies a sync onto one sink: preflight, a diff
//! without plaintext state, paced and retried writes, ownership-safe prune.
//!
//! [`source`] is the trait every platform secrets are imported from
//! implements, and [`import`] plans an import: the source read within its
//! budget, names turned into keys, a three-way diff against the vault.
//!
//! Depends on `vsync-crypto` only; store implementations live in
//! `vsync-backends`, sinks in `vsync-sinks`.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod dotenv;
pub mod environment;
pub mod import;
pub mod sink;
pub mod source;
pub mod store;
pub mod sync;
pub mod timestamp;
pub mod vault;
pub mod vault_fs;
