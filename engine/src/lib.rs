//! The vsync domain: the bundle a vault folder travels in ([`bundle`]), the
//! `.env.<env>` line rules ([`dotenv`]), where encrypted bundles live ([`store`]), how a vault is
//! published to and fetched from a store without ever losing a version or
//! accepting a rollback ([`vault`]), and the timestamps that name versions
//! ([`timestamp`]).
//!
//! Depends on `vsync-crypto` only; store implementations live in
//! `vsync-backends`. The `Source`/`Sink` traits and sync orchestration land
//! with the sink issue.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod dotenv;
pub mod store;
pub mod timestamp;
pub mod vault;
