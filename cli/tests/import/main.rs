//! `vsync import <env> --from <platform>` end to end through the binary,
//! one module per source, each against its harness service.

#[path = "../common/mod.rs"]
mod common;

mod aws;
mod azure;
mod dotenv;
mod gcp;
mod onepassword;
mod roundtrip;
mod vault;
