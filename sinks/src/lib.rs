//! `Sink` implementations that fan the vault out to platforms: GitHub Actions
//! (sealed boxes), GCP Secret Manager, AWS Secrets Manager, Azure Key Vault and
//! HashiCorp Vault KV v2. One module per platform behind a cargo feature;
//! every sink takes a base URL so tests and self-hosted or enterprise
//! endpoints work. The trait, planning, pacing and retries live in
//! `vsync-engine`; a sink only lists, reads and writes.

#![forbid(unsafe_code)]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "vault")]
pub mod vault_kv;
