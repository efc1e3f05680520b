//! `Sink` implementations that fan the vault out to platforms: GitHub Actions
//! (sealed boxes), GCP Secret Manager, AWS Secrets Manager, Azure Key Vault and
//! HashiCorp Vault KV v2. One module per platform behind a cargo feature.
//!
//! Empty until the `Sink` trait exists in `vsync-engine`.
