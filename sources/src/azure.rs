//! Azure Key Vault as a source: `vsync import <env> --from azure --set
//! vaultName=<name>`, and tsafe's `vsync kv-pull <env>`.
//!
//! The connection — credentials (a service principal, `AZURE_ACCESS_TOKEN`,
//! a managed identity, the `az` CLI), the HTTPS client with its extra CA
//! and its cap on answers — and the reading of Key Vault's errors are
//! `vsync_connections::azure`'s, shared with the Key Vault sink. Calls go
//! through Microsoft's SDK (`azure_security_keyvault_secrets`, REST
//! api-version 7.6) with its retries off: the engine paces and retries.
//!
//! # Listing
//!
//! `GET /secrets` in pages of 25 (Key Vault's largest), following each
//! page's `nextLink` only to this vault's own `/secrets` — the SDK's pager
//! would take the bearer token wherever a link points — and never to a
//! link followed before; a listing past
//! [`MAX_LISTED`](vsync_connections::azure::MAX_LISTED) secrets is refused
//! ([`Listing`]). Every listed name must be a Key Vault name
//! (`[0-9A-Za-z-]{1,127}`), listed once (names are case-insensitive): a
//! name is put into the path of its read, so anything else could reach
//! another path on the vault. Soft-deleted secrets live apart
//! (`/deletedsecrets`) and are not listed: for an import they are gone.
//!
//! # Revisions
//!
//! A listing names each secret without its version id; what moves when a
//! value changes is `attributes.updated`, in whole seconds. Two versions
//! written within one second carry the same `updated`, so a revision read
//! in the second it was written could miss a second write in that same
//! second — and the next import, seeing an unchanged revision, would not
//! read it again. A secret's `updated` is therefore its revision only once
//! its second is over by the vault's clock (the `Date` of the listing
//! page): until then it has none, and the next import reads it again.
//!
//! # Disabled, values, content types
//!
//! A secret whose current version is disabled is listed with
//! `enabled: false`: reported, not read (Key Vault refuses to read it:
//! 403 `SecretDisabled`). One disabled between the listing and its read is
//! reported the same way; one deleted in between is left out. Values are
//! text (a JSON string, up to 25,600 characters), imported byte for byte:
//! a JSON secret is one value, not split into keys, and a file `az keyvault
//! secret set --encoding base64` stored arrives as its base64 text. The
//! content type (`application/json`, `application/x-pem-file`, the
//! certificate secrets Key Vault manages) is listed, nothing more. A
//! secret's expiry and activation dates are not consulted: Key Vault's get
//! serves the current version regardless, and so does the import.
//!
//! # Names
//!
//! Key Vault names allow only letters, digits and `-`, so the Key Vault
//! sink writes the vault key `DB_PASS` as `DB-PASS` (and `app.db_pass` as
//! `app-db-pass`). [`Source::unmap_name`] reverses that transform:
//! `DB-PASS` is imported as `DB_PASS`. A name that really had a `-` (or a
//! `.`, which the sink also writes as `-`) comes back with `_`;
//! `--map OLD=NEW` renames it.
//!
//! Errors carry the HTTP status and Key Vault's error code and message, or
//! the credential's complaint, never a body or a value. The copies of a
//! value made here are wiped; the SDK's response buffers are not ours to
//! wipe.

use std::collections::HashSet;
use std::time::Duration;

use azure_core::http::headers::HeaderName;
use azure_core::time::OffsetDateTime;
use azure_security_keyvault_secrets::models::{
    SecretClientListSecretPropertiesOptions, SecretProperties,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures_util::StreamExt;
use vsync_connections::azure::{API_VERSION, Connection, Failure, Listing, MAX_PAGE};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{RateBudget, SecretValue, SinkError, WriteLimit, one_line_message};
use vsync_engine::source::{ListedSecret, ReadBatch, Source, SourceCapabilities, SourceValue};

pub use vsync_connections::azure::{Auth, StaticToken, TokenCredential, connect};

/// What listing errors start with.
const LISTING: &str = "listing secrets";

/// What the source can do: listings carry `updated`, values are text, one
/// secret per read. "Azure Key Vault service limits": 4,000 secret
/// transactions other than creates per 10 seconds, per vault and region
/// (the subscription's limit is five times that). How many may be in
/// flight is undocumented; 8, as the sink, leaves room for the
/// applications reading the same vault.
fn capabilities() -> SourceCapabilities {
    SourceCapabilities {
        metadata: true,
        binary: false,
        batch: 1,
        rate: RateBudget {
            max_in_flight: 8,
            limits: const {
                &[WriteLimit {
                    writes: 4_000,
                    per: Duration::from_secs(10),
                }]
            },
        },
    }
}

/// A Key Vault's secrets, read.
pub struct KeyVaultSource {
    client: SecretClient,
    origin: String,
    caps: SourceCapabilities,
}

impl KeyVaultSource {
    /// Reads the vault `connection` reaches (see [`connect`]).
    /// `verify_challenge_resource` as for the sink: whether the resource in
    /// the vault's authentication challenge must be in the vault URL's own
    /// domain; off only for a vault served from an address without one (a
    /// test fake on `127.0.0.1`). No request is sent yet.
    pub fn new(connection: Connection, verify_challenge_resource: bool) -> Result<Self, SinkError> {
        let origin = connection.vault_label();
        let options = SecretClientOptions {
            api_version: API_VERSION.to_owned(),
            client_options: connection.client_options,
            verify_challenge_resource: Some(verify_challenge_resource),
        };
        let client = SecretClient::new(
            connection.vault_url.as_str(),
            connection.credential,
            Some(options),
        )
        .map_err(|error| {
            SinkError::Misconfigured(format!("could not set up the Key Vault client: {error}"))
        })?;
        Ok(KeyVaultSource {
            client,
            origin,
            caps: capabilities(),
        })
    }
}

/// Whether `name` is a Key Vault secret name: 1–127 letters, digits and
/// `-`.
fn is_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// One listed item as the engine sees it; `listed_at` is the `Date` of its
/// page (see the module documentation on revisions).
fn listed(
    item: SecretProperties,
    listed_at: Option<OffsetDateTime>,
) -> Result<ListedSecret, SinkError> {
    let name = item
        .resource_id()
        .ok()
        .map(|id| id.name)
        .filter(|name| is_secret_name(name))
        .ok_or_else(|| {
            SinkError::Rejected(format!(
                "{LISTING}: an item's id ({}) does not name a Key Vault secret",
                one_line_message(item.id.as_deref().unwrap_or("none"))
            ))
        })?;
    let attributes = item.attributes.unwrap_or_default();
    let updated = attributes.updated;
    let settled = updated.filter(|updated| {
        listed_at.is_some_and(|now| updated.unix_timestamp() < now.unix_timestamp())
    });
    Ok(ListedSecret {
        name,
        revision: settled.map(|updated| updated.unix_timestamp().to_string()),
        updated_at: updated.map(|updated| azure_core::time::to_rfc3339(&updated)),
        // Absent means enabled: Key Vault's default.
        enabled: attributes.enabled != Some(false),
        content_type: item.content_type.map(|text| one_line_message(&text)),
    })
}

#[async_trait::async_trait]
impl Source for KeyVaultSource {
    fn capabilities(&self) -> &SourceCapabilities {
        &self.caps
    }

    fn origin(&self) -> String {
        self.origin.clone()
    }

    /// The Key Vault sink's `_` → `-` undone (see the module
    /// documentation): `DB-PASS` → `DB_PASS`.
    fn unmap_name(&self, name: &str) -> String {
        name.replace('-', "_")
    }

    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
        let failed = |error: azure_core::Error| Failure::of(&error).into_sink_error(LISTING);
        let options = SecretClientListSecretPropertiesOptions {
            maxresults: Some(MAX_PAGE as i32),
            ..SecretClientListSecretPropertiesOptions::default()
        };
        let mut pages = self
            .client
            .list_secret_properties(Some(options))
            .map_err(failed)?
            .into_pages();
        let mut listing = Listing::new(self.client.endpoint(), "/secrets", LISTING);
        let mut names = HashSet::new();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed)?;
            let listed_at = page
                .headers()
                .get_optional_str(&HeaderName::from_static("date"))
                .and_then(|date| azure_core::time::parse_rfc7231(date).ok());
            let items = page.into_model().map_err(failed)?.value;
            listing.page(items.len(), pages.continuation())?;
            for item in items {
                let secret = listed(item, listed_at)?;
                if !names.insert(secret.name.to_ascii_lowercase()) {
                    return Err(SinkError::Rejected(format!(
                        "{LISTING}: {} is listed twice",
                        secret.name
                    )));
                }
                found.push(secret);
            }
        }
        Ok(found)
    }

    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
        let mut batch = ReadBatch::default();
        for secret in secrets {
            let context = format!("reading {}", secret.name);
            let response = match self.client.get_secret(&secret.name, None).await {
                Ok(response) => response,
                Err(error) => {
                    let failure = Failure::of(&error);
                    match (failure.status(), failure.inner_code()) {
                        // Deleted since the listing.
                        (Some(404), _) => continue,
                        // Disabled since the listing.
                        (Some(403), Some("SecretDisabled")) => {
                            batch.disabled.push(secret.name.clone());
                            continue;
                        }
                        _ => return Err(failure.into_sink_error(&context)),
                    }
                }
            };
            let mut bundle = response
                .into_model()
                .map_err(|error| Failure::of(&error).into_sink_error(&context))?;
            let text = Zeroizing::new(bundle.value.take());
            let Some(text) = text.as_deref() else {
                return Err(SinkError::Rejected(format!(
                    "{context}: the response carries no value"
                )));
            };
            batch.values.push(SourceValue {
                secret: secret.name.clone(),
                name: secret.name.clone(),
                value: SecretValue::from_text(text),
            });
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use azure_security_keyvault_secrets::models::SecretAttributes;

    use super::*;

    fn item(id: &str, updated: i64, enabled: Option<bool>) -> SecretProperties {
        let attributes = SecretAttributes {
            updated: Some(OffsetDateTime::from_unix_timestamp(updated).unwrap()),
            enabled,
            ..SecretAttributes::default()
        };
        // Non-exhaustive: built field by field.
        let mut item = SecretProperties::default();
        item.id = Some(id.to_owned());
        item.attributes = Some(attributes);
        item.content_type = Some("application/json".into());
        item
    }

    fn at(seconds: i64) -> Option<OffsetDateTime> {
        Some(OffsetDateTime::from_unix_timestamp(seconds).unwrap())
    }

    #[test]
    fn a_revision_is_the_updated_second_once_that_second_is_over() {
        let id = "https://acme.vault.azure.net/secrets/DB-PASS";
        let settled = listed(item(id, 1_700_000_000, None), at(1_700_000_001)).unwrap();
        assert_eq!(settled.name, "DB-PASS");
        assert_eq!(settled.revision.as_deref(), Some("1700000000"));
        assert_eq!(settled.updated_at.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert!(settled.enabled);
        assert_eq!(settled.content_type.as_deref(), Some("application/json"));
        // Written in the second it was listed: a second write in that
        // second would carry the same `updated`, so no revision yet.
        let racy = listed(item(id, 1_700_000_000, Some(true)), at(1_700_000_000)).unwrap();
        assert_eq!(racy.revision, None);
        assert_eq!(
            listed(item(id, 1_700_000_000, None), None)
                .unwrap()
                .revision,
            None
        );
        assert!(!listed(item(id, 1, Some(false)), at(2)).unwrap().enabled);
    }

    #[test]
    fn listed_ids_must_name_a_secret() {
        for id in [
            "https://acme.vault.azure.net/secrets/DB_PASS",
            "https://acme.vault.azure.net/secrets/a%2F..%2Fkeys",
            "https://acme.vault.azure.net/keys/DB-PASS",
            "https://acme.vault.azure.net/secrets",
            "not a url",
        ] {
            let error = listed(item(id, 1, None), at(2)).unwrap_err();
            assert!(
                matches!(&error, SinkError::Rejected(message) if message.contains("does not name a Key Vault secret")),
                "{id}: {error:?}"
            );
        }
        assert!(is_secret_name(&"a".repeat(127)));
        assert!(!is_secret_name(&"a".repeat(128)));
    }
}
