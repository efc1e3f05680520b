//! The one error type of the runtime library, classified into the 7-class
//! taxonomy every vsync reader shares.

use std::fmt;

use vsync_crypto::ErrorClass;
use vsync_engine::store::StoreError;
use vsync_engine::vault::VaultError;

/// Why opening or checking a vault failed.
///
/// [`Error::class`] gives the taxonomy class (`ConfigMissingError`, …,
/// `UnsupportedSpecVersionError`); the message names the fix. Messages name
/// environment variables, files, buckets, prefixes and version timestamps,
/// never a secret value, the passphrase, the access keys or the salt.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("vsync: {message}")]
pub struct Error {
    class: Option<ErrorClass>,
    message: String,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("class", &self.class)
            .field("message", &self.message)
            .finish()
    }
}

impl Error {
    pub(crate) fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Error {
            class: Some(class),
            message: message.into(),
        }
    }

    /// The taxonomy class. `None` only for the one failure outside the
    /// taxonomy: asking a handle built from in-memory content
    /// ([`crate::Client::from_payload`]) about a bucket it does not have.
    pub fn class(&self) -> Option<ErrorClass> {
        self.class
    }

    /// The message without the `vsync: ` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn unbound() -> Self {
        Error {
            class: None,
            message: "this handle was built from in-memory content and has no bucket to ask; open it with open() or open_with() to check for new versions".into(),
        }
    }

    pub(crate) fn config_missing(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::ConfigMissing, message)
    }

    pub(crate) fn bundle_corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::BundleCorrupt, message)
    }
}

/// Where a vault lives, for messages: bucket, prefix, env.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub(crate) store: String,
    pub(crate) prefix: String,
    pub(crate) env: String,
}

impl Place {
    pub(crate) fn manifest_not_found(&self) -> Error {
        let env = &self.env;
        let lower = env.to_lowercase();
        let mut message = format!(
            "no vault under prefix {:?} in {}: neither `{0}latest` (written by vsync push) nor `{0}manifest` exists — run `vsync push {env}` once",
            self.prefix, self.store
        );
        // The usual cause after "I did push": the blob's prefix is not where
        // the CLI wrote (`<repo>/<env>/`, env lowercased).
        if self.prefix.is_empty() {
            message.push_str(&format!(
                "; the blob's prefix is empty, but the CLI pushes under `<repo>/{lower}/` — re-mint the blob with `vsync runtime-token --env={env}`"
            ));
        } else if !self.prefix.ends_with(&format!("/{lower}/"))
            && self.prefix != format!("{lower}/")
        {
            message.push_str(&format!(
                "; the blob's prefix does not end with `{lower}/` although its env is {env:?} — check that the blob was minted for this env (`vsync runtime-token --env={env}`)"
            ));
        } else if self.prefix.chars().any(char::is_uppercase) {
            message.push_str(
                "; the prefix holds upper-case letters but the CLI lowercases the env in object keys — re-mint the blob",
            );
        } else {
            message.push_str(&format!(
                "; if you already pushed, check that the blob's prefix matches the repo the CLI pushed from (`vsync runtime-token --env={env}` prints the right one)"
            ));
        }
        Error::new(ErrorClass::ManifestNotFound, message)
    }

    pub(crate) fn vault_error(&self, error: VaultError) -> Error {
        let env = &self.env;
        match error {
            VaultError::Store { store, source } => {
                let hint = match &source {
                    StoreError::AccessDenied { .. } => format!(
                        " — the bucket refused the blob's access key: check that it is still active and may s3:GetObject on `{}*`, or re-mint the blob with `vsync runtime-token --env={env}`",
                        self.prefix
                    ),
                    StoreError::Misconfigured(_) => format!(
                        " — fix the blob's bucket or region (re-mint it with `vsync runtime-token --env={env}`)"
                    ),
                    _ => " — check the blob's endpoint, the network, and HTTPS_PROXY/NO_PROXY"
                        .to_owned(),
                };
                Error::new(
                    ErrorClass::S3Unreachable,
                    format!("cannot read the vault from {store}: {source}{hint}"),
                )
            }
            VaultError::NoVault { .. } => self.manifest_not_found(),
            VaultError::Crypto { ts, source } => match source.class() {
                ErrorClass::WrongPassphrase => Error::new(
                    ErrorClass::WrongPassphrase,
                    format!(
                        "VSYNC_PASSPHRASE does not decrypt version {ts} of env {env:?} (wrong passphrase, or the bundle was tampered with) — set VSYNC_PASSPHRASE to this env's passphrase; after `vsync rotate-passphrase` use the new one"
                    ),
                ),
                ErrorClass::UnsupportedSpecVersion => Error::new(
                    ErrorClass::UnsupportedSpecVersion,
                    format!("version {ts} of env {env:?}: {source}"),
                ),
                class => Error::new(
                    class,
                    format!(
                        "version {ts} of env {env:?} is damaged: {source} — push the env again with `vsync push {env}`"
                    ),
                ),
            },
            VaultError::BundleMissing { ts } => Error::bundle_corrupt(format!(
                "the pointer under {:?} in {} names version {ts}, but that bundle is missing (torn state: a push was interrupted or the bucket was edited) — retry, or run `vsync push {env}` again",
                self.prefix, self.store
            )),
            VaultError::PointerCorrupt { key } => Error::bundle_corrupt(format!(
                "{key} in {} does not hold a version timestamp; the bucket was edited by hand or is damaged — run `vsync push {env}` again",
                self.store
            )),
            // Writer-side conflicts never reach a reader; upstream maps any
            // other fetcher failure to S3UnreachableError.
            other => Error::new(
                ErrorClass::S3Unreachable,
                format!("reading the vault from {} failed: {other}", self.store),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(prefix: &str, env: &str) -> Place {
        Place {
            store: "s3://acme at https://s3.example.com".into(),
            prefix: prefix.into(),
            env: env.into(),
        }
    }

    #[test]
    fn manifest_not_found_names_the_push_and_prefix_fixes() {
        let plain = place("acme/web/dev/", "dev").manifest_not_found();
        assert_eq!(plain.class(), Some(ErrorClass::ManifestNotFound));
        assert!(
            plain.message().contains("run `vsync push dev` once"),
            "{plain}"
        );

        let empty = place("", "dev").manifest_not_found();
        assert!(empty.message().contains("prefix is empty"), "{empty}");

        let other_env = place("acme/prod/", "dev").manifest_not_found();
        assert!(
            other_env.message().contains("does not end with `dev/`"),
            "{other_env}"
        );

        let upper = place("Acme/dev/", "dev").manifest_not_found();
        assert!(upper.message().contains("upper-case"), "{upper}");
        assert!(upper.to_string().starts_with("vsync: "));
    }

    #[test]
    fn vault_errors_map_onto_the_taxonomy() {
        let p = place("acme/dev/", "dev");
        let ts: vsync_engine::timestamp::Timestamp = "20260429-103045".parse().unwrap();
        let cases = [
            (
                VaultError::Store {
                    store: "s3://acme".into(),
                    source: StoreError::AccessDenied {
                        key: "acme/dev/latest".into(),
                        detail: "HTTP 403".into(),
                    },
                },
                ErrorClass::S3Unreachable,
                "s3:GetObject",
            ),
            (
                VaultError::Store {
                    store: "s3://acme".into(),
                    source: StoreError::Unreachable("connection refused".into()),
                },
                ErrorClass::S3Unreachable,
                "HTTPS_PROXY",
            ),
            (
                VaultError::Crypto {
                    ts: ts.clone(),
                    source: vsync_crypto::Error::AuthenticationFailed,
                },
                ErrorClass::WrongPassphrase,
                "VSYNC_PASSPHRASE",
            ),
            (
                VaultError::Crypto {
                    ts: ts.clone(),
                    source: vsync_crypto::Error::UnsupportedVersion {
                        format: vsync_crypto::Format::Rqe1,
                        found: b'2',
                    },
                },
                ErrorClass::UnsupportedSpecVersion,
                "upgrade vsync",
            ),
            (
                VaultError::Crypto {
                    ts: ts.clone(),
                    source: vsync_crypto::Error::TimestampMismatch {
                        expected: ts.to_string(),
                        found: "20250101-000000".into(),
                    },
                },
                ErrorClass::BundleCorrupt,
                "refusing",
            ),
            (
                VaultError::BundleMissing { ts },
                ErrorClass::BundleCorrupt,
                "torn state",
            ),
        ];
        for (error, class, hint) in cases {
            let mapped = p.vault_error(error);
            assert_eq!(mapped.class(), Some(class), "{mapped}");
            assert!(mapped.message().contains(hint), "{mapped}");
        }
    }
}
