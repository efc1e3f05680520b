//! `Source` implementations that import secrets into the vault: 1Password
//! (Connect API and the `op` CLI), HashiCorp Vault, Azure Key Vault, AWS and
//! GCP Secret Manager, dotenv files. One module per platform behind a cargo
//! feature.
//!
//! Empty until the `Source` trait exists in `vsync-engine`.
