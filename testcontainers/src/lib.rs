//! The integration-test harness: starts real services as local processes on
//! 127.0.0.1 with random ports, and tears them down when a test ends.
//!
//! No Docker engine runs on the development machines or in CI, so instead of
//! containers the harness spawns real server binaries that
//! `scripts/install-services` installs from the package registries.
//!
//! - [`S3Server`]: a real S3-compatible server (`s3s-fs`) with conditional
//!   writes (`If-None-Match: *`, `If-Match`), for the S3 store.
//! - [`EtagUnquotingProxy`]: a reverse proxy in front of it that returns ETags
//!   unquoted, the way Hetzner Object Storage does.
//! - [`ForwardProxy`]: a plain HTTP forward proxy that counts requests, to
//!   prove that a client honours `HTTP_PROXY`.
//!
//! - [`GithubFake`]: a protocol-faithful fake of GitHub's Actions secrets
//!   API (no GitHub server installs here) that opens every sealed box.
//! - [`MotoServer`]: moto's server, a real AWS Secrets Manager endpoint
//!   with IAM authentication, behind a front that injects faults, counts
//!   writes and answers as AWS does where moto differs.
//! - [`KeyVaultServer`]: a protocol-faithful fake of the Azure Key Vault
//!   secrets API over TLS (with a CA it generates), for the Key Vault sink
//!   and source.
//! - [`GcpSecretManagerServer`]: a protocol-faithful fake of Google Cloud
//!   Secret Manager's REST API (Google ships no local emulator).
//! - [`VaultServer`]: a protocol-faithful fake of HashiCorp Vault's KV v2
//!   HTTP API (no Vault server installs from the registries used here).
//! - [`OnePasswordConnectServer`]: a protocol-faithful fake of the
//!   1Password Connect server's REST API (vaults, items, fields), for the
//!   1Password source.
//!
//! - [`faults`]: the fault injection (throttles with or without
//!   `Retry-After` and 5xx answers on lists, reads and writes; broken writes)
//!   and write counters every platform fake shares, for the sink suite.
//! - [`unreachable`]: a loopback address that refuses connections and that
//!   no other process can take while a test holds it.
//!
//! Every handle stops its service when dropped.
#![forbid(unsafe_code)]

mod azure;
mod fake_http;
pub mod faults;
mod gcp;
mod github;
mod moto;
mod onepassword;
mod proxy;
mod s3;
mod service;
pub mod unreachable;
mod vault;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

pub use azure::{BrokenListing, KeyVaultServer};
pub use gcp::GcpSecretManagerServer;
pub use github::{GITHUB_API_VERSION, GithubFake, GithubScope, InjectedFailure, RequestCounts};
pub use moto::MotoServer;
pub use onepassword::{FakeField, FakeItem, OnePasswordConnectServer};
pub use proxy::{ClockSkewProxy, EtagUnquotingProxy, ForwardProxy};
pub use s3::S3Server;
pub use vault::VaultServer;

/// Why a service of the harness could not be started or driven.
///
/// `Debug` prints the same text as `Display`: tests `.expect()` these
/// results, and the message (e.g. "run `scripts/install-services`", the
/// server's output) is what the reader of a failed test needs.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// The service's binary is not installed where the harness looks.
    #[error(
        "{binary} not found (looked in: {}); run `scripts/install-services` \
         or point {env_var} at the binary",
        display_paths(searched)
    )]
    BinaryNotFound {
        /// Name of the missing binary, e.g. `s3s-fs`.
        binary: &'static str,
        /// Environment variable that overrides the lookup.
        env_var: &'static str,
        /// Every path that was tried.
        searched: Vec<PathBuf>,
    },

    /// An I/O operation of the harness failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The service process exited before it was ready.
    #[error("{binary} exited during startup ({status}); its output:\n{output}")]
    ExitedDuringStartup {
        /// Name of the binary.
        binary: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stdout and stderr.
        output: String,
    },

    /// The service did not become ready within the bounded wait.
    #[error("{binary} was not ready after {waited:?}; its output so far:\n{output}")]
    StartupTimeout {
        /// Name of the binary.
        binary: &'static str,
        /// How long the harness waited.
        waited: Duration,
        /// What it printed on stdout and stderr.
        output: String,
    },

    /// A bucket name that S3 would reject.
    #[error(
        "invalid S3 bucket name {0:?}: 3-63 chars of a-z, 0-9, '.', '-', starting and ending with a letter or digit"
    )]
    InvalidBucketName(String),

    /// An endpoint that is not `http://HOST:PORT` or does not resolve.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl HarnessError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nowhere".to_owned();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_error_says_how_to_install() {
        let err = HarnessError::BinaryNotFound {
            binary: "s3s-fs",
            env_var: "VSYNC_S3S_FS_BIN",
            searched: vec![PathBuf::from("/tools/bin/s3s-fs")],
        };
        let message = err.to_string();
        assert!(message.contains("scripts/install-services"), "{message}");
        assert!(message.contains("/tools/bin/s3s-fs"), "{message}");
        assert!(message.contains("VSYNC_S3S_FS_BIN"), "{message}");
    }
}
