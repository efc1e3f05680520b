//! The connection to each platform that vsync both reads from and writes
//! to — credentials, client setup — written once and used by its store,
//! its sink and its source alike. One module per platform behind a cargo
//! feature.

#![forbid(unsafe_code)]

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "vault")]
pub mod vault;
