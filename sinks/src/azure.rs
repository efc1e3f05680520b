//! Azure Key Vault secrets (`vsync sync <env> azure --azure-vault=<name>`).
//!
//! Talks to the Key Vault data plane through Microsoft's SDK
//! (`azure_security_keyvault_secrets`, REST api-version 7.6), with the SDK's
//! own retries turned off: the engine retries 429 and 5xx, once, for every
//! platform.
//!
//! # Names
//!
//! Key Vault names are 1–127 characters of `[0-9A-Za-z-]` and
//! case-insensitive. [`Sink::map_name`] turns `_` and `.` into `-`
//! (`DATABASE_URL` → `DATABASE-URL`, `app.db_pass` → `app-db-pass`) and
//! leaves everything else alone, so a key with any other character is
//! refused by preflight with the grammar in the message. The transform is
//! lossy: `A_B` and `A-B` (or `db_pass` and `DB-PASS`, as case is folded)
//! land on one secret, and preflight refuses the pair before any write.
//! Upstream vsync passes names through untranslated and lets Azure reject
//! every `_`; translating is what `.env` keys need to be usable at all.
//!
//! # Ownership, revisions, values
//!
//! Every write tags the new version `managed-by=vsync`; the inventory
//! reports that tag in [`RemoteSecret::managed`], and keeps the other tags
//! and the content type of each secret so an update carries them over
//! (tags belong to a version in Key Vault: a set without them drops them).
//! The revision is `attributes.updated` (Unix seconds, what the list
//! returns without reading any value), suffixed with `/unlabelled` when the
//! current version lacks vsync's tag and `/disabled` when it is disabled: a
//! portal edit creates an untagged version, and disabling a version (`az
//! keyvault secret set-attributes --enabled false`) moves `updated` by whole
//! seconds only, so either moves the revision even within the second of
//! vsync's own write. A disabled secret is listed but cannot be read (403
//! `SecretDisabled`): the engine then reports it unreadable and leaves it
//! alone rather than vouching for it from its record. Values are text (JSON
//! strings) of at most 25,600 characters; empty values are stored.
//!
//! # Soft delete
//!
//! Deleting a secret keeps its name reserved while it can be recovered. A
//! set on such a name answers 409 `ObjectIsDeletedButRecoverable`; the sink
//! then recovers it (`POST /deletedsecrets/{name}/recover`, which keeps its
//! history and is what the secret's owner can undo), waits until it reads
//! back and sets the new value. Deletes, recoveries and purges finish
//! asynchronously on the service, so `ObjectIsBeingDeleted` and
//! `ObjectIsBeingRecovered` are waited out with a bounded backoff
//! ([`KeyVaultSinkBuilder::state_change_timeout`]). Prune deletes (soft);
//! with [`KeyVaultSinkBuilder::purge_on_delete`] it also purges.
//!
//! # Authentication and TLS
//!
//! The connection — credentials, the HTTPS client, Entra ID's error
//! answers — is `vsync_connections::azure`'s, shared with the Key Vault
//! source. A service principal's client secret
//! ([`KeyVaultSinkBuilder::client_secret`], what `AZURE_TENANT_ID`,
//! `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` hold) is presented to
//! Microsoft Entra ID's token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`,
//! the authority being [`KeyVaultSinkBuilder::authority_host`]) once, and
//! the token reused until five minutes before it expires, so a sync fetches
//! one token, not one per request. Or whatever [`Auth::from_env`] picks (a
//! managed identity, the `az` CLI's login), any other [`TokenCredential`],
//! or a bearer token obtained elsewhere ([`StaticToken`]). The SDK
//! discovers the token's scope from Key Vault's 401 challenge and, by
//! default, refuses a challenge whose resource is not the vault's own
//! domain, so a wrong vault URL never receives a token.
//!
//! Tokens and the client secret only travel over https, through one HTTPS
//! client shared by the vault and the token endpoint, with the SDK's
//! retries off for both; an extra CA (a TLS-inspecting proxy, a private
//! endpoint, the test harness) is added with
//! [`KeyVaultSinkBuilder::extra_ca_pem`] and trusted for both.
//!
//! Errors carry the HTTP status and Key Vault's error code and message, or
//! Entra ID's error description, never a request or response body. The
//! builder keeps the client secret in a wiping buffer; the copy handed to
//! `azure_identity` (and the form body it sends) are the SDK's, which does
//! not wipe them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::http::RequestContent;
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SecretClientListSecretPropertiesOptions, SetSecretParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures_util::StreamExt;
use tokio::time::Instant;
use vsync_connections::azure::{
    API_VERSION, ClientSecret, Failure, Listing, MAX_PAGE, vault_url_of_name,
};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{
    Alphabet, Applied, Batch, Capabilities, Change, Deletion, MANAGED_BY, NameRules, RateBudget,
    RemoteSecret, SecretValue, Sink, SinkError, WriteLimit,
};

pub use vsync_connections::azure::{Auth, StaticToken, TokenCredential};

/// The first wait while Key Vault finishes a delete, recovery or purge.
const FIRST_POLL: Duration = Duration::from_millis(100);
/// The longest single wait between two polls.
const MAX_POLL: Duration = Duration::from_secs(2);

/// The platform's limits (learn.microsoft.com: "About Azure Key Vault
/// secrets", "Azure Key Vault service limits", resource naming rules).
fn capabilities() -> Capabilities {
    Capabilities {
        readable: true,
        names: NameRules {
            max_len: 127,
            alphabet: Alphabet::AsciiAlphanumericAnd("-"),
            leading_digit: true,
            reserved_prefixes: &[],
            case_insensitive: true,
            refuses_arn_suffix: false,
        },
        // "Secret is beyond the maximum permitted length of 25600
        // characters": counting bytes is never more permissive.
        max_value_bytes: 25_600,
        max_secrets: None,
        text_only: true,
        empty_values: true,
        tags: true,
        deletion: Deletion::Recoverable,
        batch: Batch::One,
        // 4,000 transactions per 10 s per vault and region; concurrency is
        // undocumented, 8 keeps a sync from crowding out the applications
        // that read the same vault.
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

/// Builds a [`KeyVaultSink`].
#[must_use]
#[derive(Debug)]
pub struct KeyVaultSinkBuilder {
    vault_url: Option<String>,
    problem: Option<String>,
    auth: Option<Auth>,
    authority_host: Option<String>,
    extra_ca_pem: Option<Vec<u8>>,
    verify_challenge_resource: bool,
    page_size: u32,
    purge_on_delete: bool,
    state_change_timeout: Duration,
}

impl KeyVaultSinkBuilder {
    /// The vault by name (upstream's `--azure-vault=<name>`), in the public
    /// cloud: `https://<name>.vault.azure.net`.
    pub fn vault_name(mut self, name: &str) -> Self {
        match vault_url_of_name(name) {
            Ok(url) => self.vault_url = Some(url),
            Err(problem) => self.problem = Some(problem),
        }
        self
    }

    /// The vault's full URL, for sovereign clouds
    /// (`https://<name>.vault.azure.cn`), private endpoints and tests.
    /// Overrides [`KeyVaultSinkBuilder::vault_name`].
    pub fn vault_url(mut self, url: impl Into<String>) -> Self {
        self.vault_url = Some(url.into());
        self.problem = None;
        self
    }

    /// How to authenticate, e.g. as [`Auth::from_env`] picks from the
    /// environment. Replaces a credential, client secret or access token
    /// given before.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// How to get access tokens. Replaces a client secret or access token
    /// given before.
    pub fn credential(self, credential: Arc<dyn TokenCredential>) -> Self {
        self.auth(Auth::Credential(credential))
    }

    /// Uses a bearer token obtained elsewhere ([`StaticToken`]).
    pub fn access_token(self, token: impl Into<String>) -> Self {
        self.credential(Arc::new(StaticToken::new(token)))
    }

    /// Authenticates as a service principal with a client secret (what
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` hold),
    /// through Microsoft Entra ID at [`KeyVaultSinkBuilder::authority_host`].
    /// The secret is kept in a wiping buffer and never shown. Replaces a
    /// credential or access token given before.
    pub fn client_secret(
        self,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: &str,
    ) -> Self {
        self.auth(Auth::ClientSecret(ClientSecret::new(
            tenant_id,
            client_id,
            Zeroizing::new(secret.to_owned()),
        )))
    }

    /// The Microsoft Entra ID authority the client secret is presented to
    /// (`AZURE_AUTHORITY_HOST`'s meaning: `https://login.microsoftonline.us`
    /// for Azure Government, `https://login.chinacloudapi.cn` for Azure
    /// China). Default `https://login.microsoftonline.com`; the sink reads
    /// no environment variable itself. Only used with a client secret, and
    /// replaces the one an [`Auth::ClientSecret`] names.
    pub fn authority_host(mut self, url: impl Into<String>) -> Self {
        self.authority_host = Some(url.into());
        self
    }

    /// Trusts one more CA (PEM, one or more certificates) besides the
    /// system's, for a TLS-inspecting proxy, a private CA or a test server.
    pub fn extra_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.extra_ca_pem = Some(pem.as_ref().to_vec());
        self
    }

    /// Whether the resource in the vault's authentication challenge must be
    /// the vault URL's own domain (default `true`; the other Azure SDKs
    /// call turning it off `DisableChallengeResourceVerification`). Turn it
    /// off only for a vault served from an address without such a domain
    /// (an emulator on `127.0.0.1`); with it off, the token goes to
    /// whatever the URL points at.
    pub fn verify_challenge_resource(mut self, verify: bool) -> Self {
        self.verify_challenge_resource = verify;
        self
    }

    /// Secrets per listing page, 1–25 (Key Vault's maximum and default is 25).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = size;
        self
    }

    /// Whether prune also purges what it deletes (default `false`: deleted
    /// secrets stay recoverable for the vault's retention period). Needs
    /// the secrets/purge permission, which "Key Vault Secrets Officer"
    /// lacks.
    pub fn purge_on_delete(mut self, purge: bool) -> Self {
        self.purge_on_delete = purge;
        self
    }

    /// How long one write waits for Key Vault to finish a delete, recovery
    /// or purge before failing as unavailable (default 60 s).
    pub fn state_change_timeout(mut self, timeout: Duration) -> Self {
        self.state_change_timeout = timeout;
        self
    }

    /// Checks the settings and builds the sink; no request is sent yet.
    pub fn build(self) -> Result<KeyVaultSink, SinkError> {
        if let Some(problem) = self.problem {
            return Err(SinkError::Misconfigured(problem));
        }
        let Some(raw_url) = self.vault_url else {
            return Err(SinkError::Misconfigured(
                "no Azure Key Vault given: set the vault name (--azure-vault) or its URL".into(),
            ));
        };
        let Some(auth) = self.auth else {
            return Err(SinkError::Misconfigured(
                "no Azure credential: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or pass an access token".into(),
            ));
        };
        let auth = match (auth, self.authority_host) {
            (Auth::ClientSecret(secret), Some(authority)) => {
                Auth::ClientSecret(secret.authority_host(authority))
            }
            (auth, _) => auth,
        };
        if !(1..=MAX_PAGE).contains(&self.page_size) {
            return Err(SinkError::Misconfigured(format!(
                "page size {} is out of range: Key Vault pages hold 1 to {MAX_PAGE} secrets",
                self.page_size
            )));
        }
        let connection =
            vsync_connections::azure::connect(&raw_url, auth, self.extra_ca_pem.as_deref())?;
        let target = connection.vault_label();
        let url = &connection.vault_url;
        let options = SecretClientOptions {
            api_version: API_VERSION.to_owned(),
            client_options: connection.client_options,
            verify_challenge_resource: Some(self.verify_challenge_resource),
        };
        let client = SecretClient::new(url.as_str(), connection.credential, Some(options))
            .map_err(|error| {
                SinkError::Misconfigured(format!("could not set up the Key Vault client: {error}"))
            })?;
        Ok(KeyVaultSink {
            client,
            target,
            capabilities: capabilities(),
            page_size: self.page_size,
            purge_on_delete: self.purge_on_delete,
            state_change_timeout: self.state_change_timeout,
            kept: Mutex::new(HashMap::new()),
        })
    }
}

/// The tags and content type a secret's current version carries, carried
/// over to the versions vsync writes.
#[derive(Debug, Clone, Default)]
struct Kept {
    tags: HashMap<String, String>,
    content_type: Option<String>,
}

/// The vault's secrets as a [`Sink`].
pub struct KeyVaultSink {
    client: SecretClient,
    target: String,
    capabilities: Capabilities,
    page_size: u32,
    purge_on_delete: bool,
    state_change_timeout: Duration,
    /// From the last inventory, by lower-cased name.
    kept: Mutex<HashMap<String, Kept>>,
}

impl KeyVaultSink {
    /// A builder with the defaults: 25 secrets per page, challenge
    /// resource verified, no purge, 60 s for state changes.
    pub fn builder() -> KeyVaultSinkBuilder {
        KeyVaultSinkBuilder {
            vault_url: None,
            problem: None,
            auth: None,
            authority_host: None,
            extra_ca_pem: None,
            verify_challenge_resource: true,
            page_size: MAX_PAGE,
            purge_on_delete: false,
            state_change_timeout: Duration::from_secs(60),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets `name`, recovering it first when it is soft-deleted, and
    /// waiting out deletions and recoveries still in progress.
    async fn put(&self, name: &str, value: &SecretValue) -> Result<Applied, SinkError> {
        let Some(text) = value.as_text() else {
            return Err(SinkError::Rejected(format!(
                "{name}: Key Vault stores text only and the value is not UTF-8"
            )));
        };
        let mut poll = Poll::new(self.state_change_timeout);
        let mut recovered = false;
        loop {
            let failure = match self.set(name, text).await {
                Ok(applied) => return Ok(applied),
                Err(failure) => failure,
            };
            match failure.inner_code() {
                Some("ObjectIsDeletedButRecoverable") if !recovered => {
                    self.recover(name, &mut poll).await?;
                    recovered = true;
                }
                Some(code @ ("ObjectIsBeingDeleted" | "ObjectIsBeingRecovered")) => {
                    if !poll.wait().await {
                        return Err(SinkError::Unavailable(format!(
                            "setting {name}: Key Vault still answers {code} after {:?}",
                            self.state_change_timeout
                        )));
                    }
                }
                _ => return Err(failure.into_sink_error(&format!("setting {name}"))),
            }
        }
    }

    /// One `PUT /secrets/{name}`: the value tagged `managed-by=vsync`, with
    /// the tags and content type the inventory saw. The copies of the value
    /// made here are wiped; the SDK's request and response buffers are not
    /// ours to wipe.
    async fn set(&self, name: &str, text: &str) -> Result<Applied, Failure> {
        let kept = self.kept().get(&name.to_ascii_lowercase()).cloned();
        let kept = kept.unwrap_or_default();
        let mut tags = kept.tags;
        tags.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());
        let mut parameters = SetSecretParameters {
            value: Some(text.to_owned()),
            tags: Some(tags),
            content_type: kept.content_type,
            ..SetSecretParameters::default()
        };
        let body = azure_core::json::to_json(&parameters);
        drop(Zeroizing::new(parameters.value.take()));
        let body: RequestContent<SetSecretParameters> =
            body.map_err(|error| Failure::of(&error))?.into();
        let response = self
            .client
            .set_secret(name, body, None)
            .await
            .map_err(|error| Failure::of(&error))?;
        let mut secret = response.into_model().map_err(|error| Failure::of(&error))?;
        drop(Zeroizing::new(secret.value.take()));
        let revision = revision(secret.attributes.as_ref(), secret.tags.as_ref());
        Ok(Applied { revision })
    }

    /// Recovers a soft-deleted `name` and waits until it reads back.
    async fn recover(&self, name: &str, poll: &mut Poll) -> Result<(), SinkError> {
        let context = format!("recovering the soft-deleted secret {name}");
        loop {
            match self.client.recover_deleted_secret(name, None).await {
                Ok(_) => break,
                Err(error) => {
                    let failure = Failure::of(&error);
                    if failure.status() == Some(404) {
                        // Recovered or purged meanwhile: the next set decides.
                        return Ok(());
                    }
                    if failure.inner_code() == Some("ObjectIsBeingDeleted") && poll.wait().await {
                        continue;
                    }
                    return Err(failure.into_sink_error(&context));
                }
            }
        }
        // Recovery finishes asynchronously; until then the secret is 404.
        loop {
            match self.client.get_secret(name, None).await {
                Ok(response) => {
                    if let Ok(mut secret) = response.into_model() {
                        drop(Zeroizing::new(secret.value.take()));
                    }
                    return Ok(());
                }
                Err(error) => {
                    let failure = Failure::of(&error);
                    // Recovered with its current version disabled (it was
                    // disabled before it was deleted): it exists, and the
                    // set that follows adds an enabled version.
                    if failure.inner_code() == Some("SecretDisabled") {
                        return Ok(());
                    }
                    if failure.status() != Some(404) {
                        return Err(failure.into_sink_error(&context));
                    }
                    if !poll.wait().await {
                        return Err(SinkError::Unavailable(format!(
                            "{context}: still not readable after {:?}",
                            self.state_change_timeout
                        )));
                    }
                }
            }
        }
    }

    /// Deletes `name` (soft), then purges it when configured to.
    async fn delete(&self, name: &str) -> Result<Applied, SinkError> {
        let recoverable = match self.client.delete_secret(name, None).await {
            Ok(response) => response
                .into_model()
                .map(|deleted| deleted.recovery_id.is_some())
                .unwrap_or(true),
            Err(error) => {
                let failure = Failure::of(&error);
                if failure.status() != Some(404) {
                    return Err(failure.into_sink_error(&format!("deleting {name}")));
                }
                false // already gone
            }
        };
        self.kept().remove(&name.to_ascii_lowercase());
        if self.purge_on_delete && recoverable {
            self.purge(name).await?;
        }
        Ok(Applied::default())
    }

    /// Purges a deleted `name`. The delete finishes asynchronously: until
    /// it has, a purge answers 404 or 409 `ObjectIsBeingDeleted`.
    async fn purge(&self, name: &str) -> Result<(), SinkError> {
        let mut poll = Poll::new(self.state_change_timeout);
        loop {
            match self.client.purge_deleted_secret(name, None).await {
                Ok(_) => return Ok(()),
                Err(error) => {
                    let failure = Failure::of(&error);
                    let in_progress = failure.status() == Some(404)
                        || failure.inner_code() == Some("ObjectIsBeingDeleted");
                    if in_progress && poll.wait().await {
                        continue;
                    }
                    if failure.status() == Some(404) {
                        // Never showed up as deleted: purged by someone else.
                        return Ok(());
                    }
                    return Err(failure.into_sink_error(&format!("purging {name}")));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Sink for KeyVaultSink {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn map_name(&self, key: &str) -> String {
        key.chars()
            .map(|c| if c == '_' || c == '.' { '-' } else { c })
            .collect()
    }

    async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError> {
        let options = SecretClientListSecretPropertiesOptions {
            maxresults: Some(i32::try_from(self.page_size).unwrap_or(25)),
            ..SecretClientListSecretPropertiesOptions::default()
        };
        let failed =
            |error: azure_core::Error| Failure::of(&error).into_sink_error("listing secrets");
        let mut pages = self
            .client
            .list_secret_properties(Some(options))
            .map_err(failed)?
            .into_pages();
        // Each next page only on this vault, once: the pager would take
        // the token wherever a page's link points.
        let mut listing = Listing::new(self.client.endpoint(), "/secrets", "listing secrets");
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed)?.into_model().map_err(failed)?.value;
            listing.page(page.len(), pages.continuation())?;
            items.extend(page);
        }
        let mut found = Vec::new();
        let mut kept = HashMap::new();
        for item in items {
            let name = item
                .resource_id()
                .map_err(|error| {
                    SinkError::Rejected(format!(
                        "listing secrets: an item without a usable id: {error}"
                    ))
                })?
                .name;
            let managed = is_managed(item.tags.as_ref());
            let revision = revision(item.attributes.as_ref(), item.tags.as_ref());
            kept.insert(
                name.to_ascii_lowercase(),
                Kept {
                    tags: item.tags.unwrap_or_default(),
                    content_type: item.content_type,
                },
            );
            found.push(RemoteSecret {
                name,
                revision,
                managed: Some(managed),
                value: None,
            });
        }
        *self.kept() = kept;
        Ok(found)
    }

    async fn read(&self, name: &str) -> Result<Option<SecretValue>, SinkError> {
        let context = format!("reading {name}");
        let response = match self.client.get_secret(name, None).await {
            Ok(response) => response,
            Err(error) => {
                let failure = Failure::of(&error);
                if failure.status() == Some(404) {
                    return Ok(None);
                }
                return Err(failure.into_sink_error(&context));
            }
        };
        let mut secret = response
            .into_model()
            .map_err(|error| Failure::of(&error).into_sink_error(&context))?;
        let text = Zeroizing::new(secret.value.take());
        match text.as_deref() {
            Some(text) => Ok(Some(SecretValue::from_text(text))),
            None => Err(SinkError::Rejected(format!(
                "{context}: the response carries no value"
            ))),
        }
    }

    async fn apply_one(&self, change: &Change<'_>) -> Result<Applied, SinkError> {
        match change {
            Change::Put { name, value, .. } => self.put(name, value).await,
            Change::Delete { name } => self.delete(name).await,
        }
    }
}

fn is_managed(tags: Option<&HashMap<String, String>>) -> bool {
    tags.and_then(|tags| tags.get(MANAGED_BY.0))
        .is_some_and(|value| value == MANAGED_BY.1)
}

/// The current version's revision (see the module documentation), if Key
/// Vault said when it was updated.
fn revision(
    attributes: Option<&SecretAttributes>,
    tags: Option<&HashMap<String, String>>,
) -> Option<String> {
    let attributes = attributes?;
    let mut revision = attributes.updated?.unix_timestamp().to_string();
    if !is_managed(tags) {
        revision.push_str("/unlabelled");
    }
    if attributes.enabled == Some(false) {
        revision.push_str("/disabled");
    }
    Some(revision)
}

/// A bounded exponential backoff while Key Vault finishes a state change.
struct Poll {
    deadline: Instant,
    delay: Duration,
}

impl Poll {
    fn new(timeout: Duration) -> Self {
        Poll {
            deadline: Instant::now() + timeout,
            delay: FIRST_POLL,
        }
    }

    /// Waits before the next attempt; `false` when the time is up.
    async fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.delay.min(self.deadline - now)).await;
        self.delay = (self.delay * 2).min(MAX_POLL);
        true
    }
}

#[cfg(test)]
mod tests {
    use azure_core::time::OffsetDateTime;

    use super::*;

    fn sink() -> KeyVaultSink {
        KeyVaultSink::builder()
            .vault_name("acme-prod")
            .access_token("token")
            .build()
            .unwrap()
    }

    #[test]
    fn names_map_underscores_and_dots_to_hyphens() {
        let sink = sink();
        assert_eq!(sink.map_name("DATABASE_URL"), "DATABASE-URL");
        assert_eq!(sink.map_name("app.db_pass"), "app-db-pass");
        assert_eq!(sink.map_name("A__B"), "A--B");
        let rules = &sink.capabilities().names;
        assert!(rules.check(&sink.map_name("DATABASE_URL")).is_ok());
        assert!(rules.check(&sink.map_name("APP:NAME")).is_err());
        assert!(rules.check(&"A".repeat(128)).is_err());
        assert_eq!(rules.fold("db-pass"), rules.fold("DB-PASS"));
    }

    #[test]
    fn target_names_the_vault_host() {
        assert_eq!(
            sink().target(),
            "azure-key-vault:vault=acme-prod.vault.azure.net"
        );
        let local = KeyVaultSink::builder()
            .vault_url("https://127.0.0.1:8443/")
            .access_token("token")
            .build()
            .unwrap();
        assert_eq!(local.target(), "azure-key-vault:vault=127.0.0.1:8443");
    }

    #[test]
    fn bad_settings_are_refused_with_what_to_fix() {
        let refused = |builder: KeyVaultSinkBuilder| match builder.build() {
            Err(SinkError::Misconfigured(message)) => message,
            Err(other) => panic!("expected Misconfigured, got {other:?}"),
            Ok(_) => panic!("expected a refusal"),
        };
        let token = || KeyVaultSink::builder().access_token("token");
        assert!(refused(token().vault_name("my_vault")).contains("not a Key Vault name"));
        assert!(refused(token().vault_name("ab")).contains("3-24"));
        assert!(refused(token()).contains("--azure-vault"));
        assert!(refused(token().vault_url("http://127.0.0.1:8080")).contains("https"));
        assert!(refused(token().vault_url("https://v.vault.azure.net/secrets")).contains("root"));
        assert!(refused(KeyVaultSink::builder().vault_name("acme")).contains("AZURE_CLIENT_ID"));
        assert!(refused(token().vault_name("acme").page_size(26)).contains("1 to 25"));
        assert!(refused(token().vault_name("acme").extra_ca_pem("not pem")).contains("PEM"));
    }

    #[test]
    fn client_secret_settings_are_checked_and_never_shown() {
        let refused = |builder: KeyVaultSinkBuilder| match builder.build() {
            Err(SinkError::Misconfigured(message)) => {
                assert!(!message.contains("hunter2-secret"), "{message}");
                message
            }
            Err(other) => panic!("expected Misconfigured, got {other:?}"),
            Ok(_) => panic!("expected a refusal"),
        };
        let acme = || KeyVaultSink::builder().vault_name("acme");
        let secret =
            |tenant: &str, client: &str| acme().client_secret(tenant, client, "hunter2-secret");
        let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert!(secret(tenant, "app").build().is_ok());
        assert!(
            secret("contoso.onmicrosoft.com", "app")
                .authority_host("https://login.microsoftonline.us/")
                .build()
                .is_ok()
        );
        assert!(refused(secret("", "app")).contains("tenant ID"));
        assert!(refused(secret("a/b", "app")).contains("tenant ID"));
        assert!(refused(secret(tenant, " ")).contains("client ID"));
        assert!(refused(acme().client_secret(tenant, "app", "")).contains("client secret"));
        assert!(
            refused(secret(tenant, "app").authority_host("http://login.example")).contains("https")
        );
        assert!(
            refused(secret(tenant, "app").authority_host("https://login.example/tenant"))
                .contains("bare https origin")
        );
        assert!(refused(secret(tenant, "app").authority_host("login")).contains("not a URL"));

        let builder = secret(tenant, "app");
        let shown = format!("{builder:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        // The last way to authenticate given wins.
        assert!(
            format!("{:?}", builder.access_token("t"))
                .contains("Credential(StaticToken(<redacted>))")
        );
    }

    #[test]
    fn revisions_move_when_the_label_goes_or_the_version_is_disabled() {
        let attributes = |enabled| SecretAttributes {
            updated: Some(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()),
            enabled,
            ..SecretAttributes::default()
        };
        let labelled = HashMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())]);
        let at = |enabled, tags| revision(Some(&attributes(enabled)), tags);
        assert_eq!(at(Some(true), Some(&labelled)).unwrap(), "1700000000");
        assert_eq!(at(None, Some(&labelled)).unwrap(), "1700000000");
        assert_eq!(at(Some(true), None).unwrap(), "1700000000/unlabelled");
        assert_eq!(
            at(Some(false), Some(&labelled)).unwrap(),
            "1700000000/disabled"
        );
        assert_eq!(
            at(Some(false), None).unwrap(),
            "1700000000/unlabelled/disabled"
        );
        assert_eq!(revision(None, Some(&labelled)), None);
    }
}
