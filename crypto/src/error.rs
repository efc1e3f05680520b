//! The 7-class error taxonomy shared by every vsync reader, and the typed
//! errors of this crate that map onto it.
//!
//! Messages never carry secret material: no passphrase, key, plaintext or
//! decoded config value ever reaches a `Display` or `Debug` string here.

use std::fmt;

/// The seven error classes of the vsync runtime contract (spec v0.12 §6.4).
///
/// Conformance vectors name these by their canonical strings
/// (`"WrongPassphraseError"`, …); loaders must match on the class, never on
/// "some error".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// Config or passphrase unset, unreadable, or not a `vsync-cfg-v1:` blob.
    ConfigMissing,
    /// A config blob this reader does not understand: inner `v` ≠ 1, standard
    /// base64 body, salt shorter than 16 characters.
    ConfigUnsupportedVersion,
    /// The object store could not be reached or refused the request.
    S3Unreachable,
    /// The bucket is reachable but holds no manifest/pointer for the prefix.
    ManifestNotFound,
    /// AES-GCM authentication failed: wrong passphrase or a tampered envelope.
    WrongPassphrase,
    /// Structurally invalid data: short or mis-tagged envelopes, mismatched
    /// seals, undecodable blobs or payloads.
    BundleCorrupt,
    /// An envelope of a format version this reader does not know.
    UnsupportedSpecVersion,
}

impl ErrorClass {
    /// Every class, in the order of the taxonomy table.
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::ConfigMissing,
        ErrorClass::ConfigUnsupportedVersion,
        ErrorClass::S3Unreachable,
        ErrorClass::ManifestNotFound,
        ErrorClass::WrongPassphrase,
        ErrorClass::BundleCorrupt,
        ErrorClass::UnsupportedSpecVersion,
    ];

    /// The canonical class name used by the conformance corpus and by every
    /// upstream runtime library (e.g. `"WrongPassphraseError"`).
    pub const fn canonical_name(self) -> &'static str {
        match self {
            ErrorClass::ConfigMissing => "ConfigMissingError",
            ErrorClass::ConfigUnsupportedVersion => "ConfigUnsupportedVersionError",
            ErrorClass::S3Unreachable => "S3UnreachableError",
            ErrorClass::ManifestNotFound => "ManifestNotFoundError",
            ErrorClass::WrongPassphrase => "WrongPassphraseError",
            ErrorClass::BundleCorrupt => "BundleCorruptError",
            ErrorClass::UnsupportedSpecVersion => "UnsupportedSpecVersionError",
        }
    }

    /// The upstream TypeScript error code (e.g. `"VSYNC_WRONG_PASSPHRASE"`).
    pub const fn code(self) -> &'static str {
        match self {
            ErrorClass::ConfigMissing => "VSYNC_CONFIG_MISSING",
            ErrorClass::ConfigUnsupportedVersion => "VSYNC_CONFIG_UNSUPPORTED_VERSION",
            ErrorClass::S3Unreachable => "VSYNC_S3_UNREACHABLE",
            ErrorClass::ManifestNotFound => "VSYNC_MANIFEST_NOT_FOUND",
            ErrorClass::WrongPassphrase => "VSYNC_WRONG_PASSPHRASE",
            ErrorClass::BundleCorrupt => "VSYNC_BUNDLE_CORRUPT",
            ErrorClass::UnsupportedSpecVersion => "VSYNC_UNSUPPORTED_SPEC_VERSION",
        }
    }

    /// Looks a class up by its canonical name; `None` for anything else.
    pub fn from_canonical_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|class| class.canonical_name() == name)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical_name())
    }
}

/// The wire formats this crate reads and writes, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The `RQE1` AES-256-GCM envelope.
    Rqe1,
    /// The `RQEM0001` timestamp seal.
    Rqem0001,
    /// The `SLS1` `.share` file.
    Share,
    /// The `VKT1` `.keytree` file.
    KeyTree,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Rqe1 => "RQE1 envelope",
            Format::Rqem0001 => "RQEM0001 seal",
            Format::Share => ".share file (SLS1)",
            Format::KeyTree => ".keytree file (VKT1)",
        })
    }
}

/// Errors of the vsync envelope formats. Each maps onto one [`ErrorClass`]
/// through [`Error::class`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than the format's fixed header (and tag) need.
    #[error("{format} is truncated: {len} bytes, at least {min} required")]
    TooShort {
        /// The format being read.
        format: Format,
        /// Bytes present.
        len: usize,
        /// Bytes required at minimum.
        min: usize,
    },
    /// The leading magic bytes are not the format's.
    #[error("not a {format}: the magic bytes do not match")]
    BadMagic {
        /// The format that was expected.
        format: Format,
    },
    /// A `.share` was given where a `.keytree` was expected, or the reverse.
    #[error("expected a {expected} but this is a {found}")]
    WrongFileKind {
        /// The format that was expected.
        expected: Format,
        /// The format the magic bytes announce.
        found: Format,
    },
    /// An `RQE1`-family envelope announcing a version this reader lacks.
    #[error(
        "{format} version byte {found:#04x} is not supported; this vsync reads version 1 — upgrade vsync"
    )]
    UnsupportedVersion {
        /// The format being read.
        format: Format,
        /// The version byte found.
        found: u8,
    },
    /// AES-GCM authentication failed. A wrong passphrase and a tampered
    /// ciphertext or tag are indistinguishable by design.
    #[error("decryption failed: wrong passphrase or key, or the data was tampered with")]
    AuthenticationFailed,
    /// A seal timestamp that is not 15 ASCII characters (`YYYYMMDD-HHmmss`).
    #[error("RQEM0001 timestamp must be 15 ASCII characters (YYYYMMDD-HHmmss)")]
    InvalidTimestamp,
    /// The sealed timestamp differs from the one the pointer names.
    #[error(
        "pointer claims {expected} but the bundle was sealed as {found} — refusing; possible bucket tampering or rollback"
    )]
    TimestampMismatch {
        /// The timestamp the pointer (manifest, `latest`) names.
        expected: String,
        /// The timestamp sealed inside the bundle.
        found: String,
    },
    /// A manifest meta cell (`{"gen":…}`) that is not the documented JSON.
    #[error("manifest meta: {0}")]
    InvalidManifestMeta(&'static str),
    /// The payload inside an authenticated frame could not be decoded.
    #[error("{format} payload is damaged: {reason}")]
    CorruptPayload {
        /// The format being read.
        format: Format,
        /// What failed, without any payload content.
        reason: &'static str,
    },
    /// `VSYNC_CONFIG` does not start with `vsync-cfg-v1:`.
    #[error(
        "the config is not a vsync-cfg-v1 blob (it must start with `vsync-cfg-v1:`); mint one with `vsync runtime-token`"
    )]
    ConfigPrefixMissing,
    /// The blob body uses standard base64 (`+`, `/`, `=`), which v1 rejects.
    #[error(
        "the config blob uses standard base64 (`+`, `/` or `=`); vsync-cfg-v1 is base64url without padding — re-mint it with `vsync runtime-token`"
    )]
    ConfigStandardBase64,
    /// The inner `v` field is not 1.
    #[error(
        "config blob version {0} is not supported (this vsync reads v1); upgrade vsync or re-mint the blob"
    )]
    ConfigVersion(String),
    /// The blob's salt is shorter than the 16-character floor.
    #[error(
        "config blob salt is {0} characters, at least 16 are required; re-mint the blob with `vsync runtime-token`"
    )]
    ConfigSaltTooShort(usize),
    /// The blob could not be decoded (base64url, gzip, JSON, fields).
    #[error("config blob is damaged: {0}; re-mint it with `vsync runtime-token`")]
    ConfigCorrupt(String),
}

impl Error {
    /// The taxonomy class this error belongs to.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::TooShort { .. }
            | Error::BadMagic { .. }
            | Error::WrongFileKind { .. }
            | Error::InvalidTimestamp
            | Error::TimestampMismatch { .. }
            | Error::InvalidManifestMeta(_)
            | Error::CorruptPayload { .. }
            | Error::ConfigCorrupt(_) => ErrorClass::BundleCorrupt,
            Error::UnsupportedVersion { .. } => ErrorClass::UnsupportedSpecVersion,
            Error::AuthenticationFailed => ErrorClass::WrongPassphrase,
            Error::ConfigPrefixMissing => ErrorClass::ConfigMissing,
            Error::ConfigStandardBase64
            | Error::ConfigVersion(_)
            | Error::ConfigSaltTooShort(_) => ErrorClass::ConfigUnsupportedVersion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for class in ErrorClass::ALL {
            assert_eq!(
                ErrorClass::from_canonical_name(class.canonical_name()),
                Some(class)
            );
            assert!(seen.insert(class.canonical_name()));
            assert!(class.canonical_name().ends_with("Error"));
            assert!(class.code().starts_with("VSYNC_"));
        }
        assert_eq!(
            ErrorClass::from_canonical_name("CorruptEnvelopeError"),
            None
        );
    }
}
