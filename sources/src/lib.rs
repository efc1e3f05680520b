//! `Source` implementations that import secrets into the vault: 1Password
//! (Connect API and the `op` CLI), HashiCorp Vault, Azure Key Vault, AWS and
//! GCP Secret Manager, dotenv files. One module per platform behind a cargo
//! feature; each only lists and reads — pacing, retries, naming and the
//! diff against the vault are the engine's ([`vsync_engine::import`]).

#![forbid(unsafe_code)]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "dotenv")]
pub mod dotenv;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "onepassword")]
pub mod onepassword;
#[cfg(feature = "vault")]
pub mod vault;
