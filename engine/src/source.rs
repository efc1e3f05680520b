//! The `Source` trait: a platform secrets are imported from into the vault
//! (a cloud secret manager, HashiCorp Vault, 1Password, a `.env` file).
//!
//! A source only lists and reads. Everything else — pacing within the
//! platform's budget, retries of 429 and 5xx, concurrency, the name rules,
//! the diff against the vault and its conflicts — is the engine's
//! ([`crate::import`]), written once, with the machinery sinks use. Failures
//! use the same taxonomy as sinks ([`SinkError`]): a platform call fails the
//! same ways whichever direction the values travel.

use crate::sink::{RateBudget, SecretValue, SinkError};

/// What a source can do, declared up front so the engine can plan its calls.
#[derive(Debug, Clone)]
pub struct SourceCapabilities {
    /// Whether the listing carries a revision or update time, so a
    /// re-import can tell an unchanged secret without reading it.
    pub metadata: bool,
    /// Whether values may be binary (AWS `SecretBinary`); the others are
    /// always UTF-8 text.
    pub binary: bool,
    /// How many secrets one [`Source::read`] call takes (AWS
    /// `BatchGetSecretValue`: 20); 1 where the platform reads one at a time.
    pub batch: usize,
    /// The platform's documented read limits.
    pub rate: RateBudget,
}

/// One secret as the source lists it, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSecret {
    /// The platform's name for it.
    pub name: String,
    /// What changes whenever its value changes (a version id), when listed.
    pub revision: Option<String>,
    /// When it was last changed (RFC 3339), when listed.
    pub updated_at: Option<String>,
    /// Disabled secrets are reported and not read: their values cannot be
    /// read (Key Vault, Secret Manager) or are not meant to be used.
    pub enabled: bool,
    /// The platform's content type, when it has one (Key Vault).
    pub content_type: Option<String>,
}

impl ListedSecret {
    /// An enabled secret with no metadata.
    pub fn named(name: impl Into<String>) -> Self {
        ListedSecret {
            name: name.into(),
            revision: None,
            updated_at: None,
            enabled: true,
            content_type: None,
        }
    }
}

/// One value a read produced. Most platforms give one value per secret;
/// where a secret is a map (a Vault KV secret, a 1Password item, an AWS
/// JSON secret split on request) each field is a value of its own.
#[derive(Debug, Clone)]
pub struct SourceValue {
    /// The listed secret it came from.
    pub secret: String,
    /// The name it proposes for the vault key: the secret's name, or the
    /// field's. The engine's name rules turn it into the key.
    pub name: String,
    /// The value, byte for byte as the platform holds it.
    pub value: SecretValue,
}

/// What one [`Source::read`] call found.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    /// The values read.
    pub values: Vec<SourceValue>,
    /// Secrets the listing showed as enabled whose value turned out to be
    /// unusable (GCP: no enabled version left): reported like a disabled
    /// secret, the vault left alone.
    pub disabled: Vec<String>,
}

impl From<Vec<SourceValue>> for ReadBatch {
    fn from(values: Vec<SourceValue>) -> Self {
        ReadBatch {
            values,
            disabled: Vec::new(),
        }
    }
}

/// A platform secrets are read from.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// What the source can do.
    fn capabilities(&self) -> &SourceCapabilities;

    /// A stable description of what is read, e.g.
    /// `vault-kv:addr=https://vault:8200,path=secret/app`: it keys the
    /// record of the last import, and is printed in reports.
    fn origin(&self) -> String;

    /// The name a platform name stands for, undoing the platform's name
    /// transform where it has one (Key Vault cannot hold `_`, so a sink
    /// writes `DB-PASS` for `DB_PASS`, and a source reads it back).
    fn unmap_name(&self, name: &str) -> String {
        name.to_owned()
    }

    /// Every secret within the source's scope, paging inside.
    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError>;

    /// The values of `secrets` (at most [`SourceCapabilities::batch`] of
    /// them). A secret deleted since the listing is left out, not an error;
    /// one found unusable goes to [`ReadBatch::disabled`].
    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError>;
}
