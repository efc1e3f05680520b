//! Google Cloud Secret Manager as a sink: one secret per vault key, in one
//! project, the way upstream's `gcloud secrets create|versions add
//! --project=<p>` writes them.
//!
//! # Names
//!
//! No transform: the vault key is the secret id. Ids are 1–255 characters
//! of ASCII letters, digits, `_` and `-`, case-sensitive; a key with any
//! other character (a `.`, say) is refused before the first write.
//!
//! # Writes
//!
//! A new name is created (automatic replication, label
//! `managed-by=vsync`), then its value is added as the first version. An
//! update only adds a version: the engine asks for one only when the value
//! differs, and every version is an immutable copy, so adding one for an
//! unchanged value would grow the history for nothing. Creation tolerates
//! `ALREADY_EXISTS` (a retry after a throttled first version, or a
//! concurrent creator), and an update whose secret was deleted since the
//! listing creates it again. An existing secret without a `managed-by`
//! label gets `managed-by=vsync` added to its labels (guarded by the
//! listing's etag) before vsync first writes it; one naming another tool is
//! left alone, so prune keeps its hands off. Delete is `DeleteSecret`,
//! immediate, with every version; a secret already gone counts as deleted.
//! Each version is sent with its CRC32C so Google verifies it.
//!
//! # Inventory, reads and revisions
//!
//! The listing (`secrets.list`, up to 25,000 per page by default) carries
//! names and labels but nothing that moves when a version is added: the
//! secret's etag changes only when the secret resource itself does, and a
//! secret has no update time. So the inventory reports no revision, and the
//! engine reads (`versions/latest:access`) each secret it syncs that already
//! exists, comparing fingerprints, which finds every edit made elsewhere.
//! Knowing whether a secret changed costs one call per secret whatever the
//! sink does; `access` is the cheapest (it draws on the 90,000/min access
//! quota, where a `versions/latest` metadata get would draw on the 600/min
//! read quota), and secrets the vault does not hold are never read. An
//! unchanged vault of N existing secrets costs one list call per page plus N
//! access calls, and no write. A `404` on access (no secret, or no version
//! yet) reads as absent. So does a `FAILED_PRECONDITION`: someone disabled
//! or destroyed the newest version, `latest` does not fall back to an older
//! one, and applications reading it get nothing. The engine plans a listed
//! secret that reads as absent as a create, whatever its record says, so
//! the sync adds a fresh version. The secret itself still exists, so that
//! create answers `ALREADY_EXISTS`, and the sink labels it first if it was
//! listed without a `managed-by` label. A write reports the new version
//! number as its revision.
//!
//! # Why the Google SDK, and how it is set up
//!
//! `google-cloud-secretmanager-v1` speaks REST/JSON over HTTP/1 with
//! `reqwest`, takes any endpoint (tests point it at a local plain-http fake)
//! and any credentials provider. The project and endpoint checks, the
//! client setup (its own retries switched off: the engine retries and
//! paces, once, for every platform) and the error mapping are the
//! connection's ([`vsync_connections::gcp::Connection`]), shared with the
//! source.
//!
//! # Credentials
//!
//! In this order:
//!
//! 1. an access token given to the builder (the CLI passes
//!    `GOOGLE_OAUTH_ACCESS_TOKEN`, e.g. from `gcloud auth
//!    print-access-token`), sent as it is;
//! 2. a credentials file given to the builder;
//! 3. otherwise Google's Application Default Credentials, through
//!    `google-cloud-auth`: the JSON file `GOOGLE_APPLICATION_CREDENTIALS`
//!    names (a service-account key, an `authorized_user` file, a workload
//!    identity federation or impersonation config), else gcloud's
//!    `~/.config/gcloud/application_default_credentials.json` (written by
//!    `gcloud auth application-default login`), else the metadata server
//!    of GCE, GKE or Cloud Run (`metadata.google.internal`, or
//!    `GCE_METADATA_HOST`).
//!
//! The source is chosen when the sink is built (a
//! `GOOGLE_APPLICATION_CREDENTIALS` naming no file is refused there), and
//! the first token is fetched on the first call, once per sink: the
//! library caches it and refreshes it before it expires, so a sync costs
//! one token request (none for a service-account key, which signs its own
//! JWT).
//!
//! The metadata server is the fallback when nothing is configured, which on
//! a laptop means it does not exist. `google-cloud-auth` asks it once, but
//! with no timeout at all (a network that resolves or black-holes
//! `metadata.google.internal` would hang the sync for the OS's connect
//! timeout, or forever), so the sink bounds that first token (and the
//! universe-domain lookup made with it) to 5 seconds, and any other token
//! fetch to 30, and turns the failure into one message that names what to
//! set. Credential failures are `Misconfigured` (nothing configured, a file
//! that is not a credentials file), `Denied` (Google refused them, e.g. a
//! revoked refresh token: `invalid_grant`) or `Unavailable` (the token
//! endpoint did not answer); their messages carry the HTTP status and
//! OAuth error code, never a response body, a token or a key.
//!
//! # Limits
//!
//! 64 KiB per version; values are bytes (binary is fine); empty values are
//! refused by Google ("Field [payload] is required"), so they are refused
//! in preflight. Writes: 600 per minute per project, and creating a secret
//! costs two (create, then the first version), so the declared budget is
//! 300 changes a minute. `AddSecretVersion` is also limited per secret
//! (2 qps), which one change per secret per sync never approaches.
//!
//! # Errors and secrets
//!
//! Errors keep the HTTP status, Google's status name and its message, with
//! any double-quoted text in the message replaced by `"…"`: Google quotes
//! the offending input there (e.g. a payload that failed to decode), and
//! that input may be a value. A 401 or 403 names the credentials in use.
//! Values the sink copies are wiped when dropped; copies inside the SDK and
//! the HTTP stack are beyond its reach.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use google_cloud_gax::error::rpc::Code;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::{Replication, Secret, SecretPayload, replication};
use google_cloud_wkt::FieldMask;
use tokio::sync::OnceCell;
use vsync_engine::sink::{
    Alphabet, Applied, Batch, Capabilities, Change, Deletion, MANAGED_BY, NameRules, RateBudget,
    RemoteSecret, SecretValue, Sink, SinkError, WriteLimit,
};
use zeroize::Zeroizing;

pub use vsync_connections::gcp::DEFAULT_ENDPOINT;
use vsync_connections::gcp::{Auth, Connection, code};

const MAX_VALUE_BYTES: usize = 64 * 1024;
/// `secrets.list`'s largest page: fewer pages, fewer calls.
const DEFAULT_PAGE_SIZE: i32 = 25_000;

/// Builds a [`GcpSecretManagerSink`]; see the module documentation.
#[derive(Default)]
pub struct GcpSecretManagerSinkBuilder {
    project: Option<String>,
    endpoint: Option<String>,
    access_token: Option<Zeroizing<String>>,
    credentials_file: Option<PathBuf>,
    page_size: Option<i32>,
}

impl GcpSecretManagerSinkBuilder {
    /// The project id (upstream's `--gcp-project`).
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The API endpoint; [`DEFAULT_ENDPOINT`] when not set (a regional or
    /// Private Service Connect endpoint, or a test server, otherwise).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// An OAuth 2 access token (`GOOGLE_OAUTH_ACCESS_TOKEN`, or the output
    /// of `gcloud auth print-access-token`); it wins over any other
    /// credentials. Without one, the sink uses [`Self::credentials_file`]
    /// or else Application Default Credentials.
    pub fn access_token(mut self, token: &str) -> Self {
        self.access_token = Some(Zeroizing::new(token.to_owned()));
        self
    }

    /// A Google credentials JSON file to use instead of Application Default
    /// Credentials: a service-account key, an `authorized_user` file, a
    /// workload identity federation (`external_account`) or
    /// `impersonated_service_account` config.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Secrets per `secrets.list` page (1–25,000; 25,000 when not set).
    pub fn page_size(mut self, page_size: i32) -> Self {
        self.page_size = Some(page_size);
        self
    }

    /// Checks the settings and builds the sink. Nothing is sent yet (the
    /// SDK client is made on first use, because making it is async).
    pub fn build(self) -> Result<GcpSecretManagerSink, SinkError> {
        let page_size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=DEFAULT_PAGE_SIZE).contains(&page_size) {
            return Err(SinkError::Misconfigured(format!(
                "the page size {page_size} is outside 1..=25000"
            )));
        }
        let auth = Auth::choose(self.access_token, self.credentials_file)?;
        let connection = Connection::new(
            self.project.as_deref(),
            self.endpoint.as_deref(),
            auth,
            "--gcp-project",
        )?;
        Ok(GcpSecretManagerSink {
            client: OnceCell::new(),
            connection,
            page_size,
            capabilities: capabilities(),
            listed: Mutex::new(HashMap::new()),
        })
    }
}

fn capabilities() -> Capabilities {
    Capabilities {
        readable: true,
        names: NameRules {
            max_len: 255,
            alphabet: Alphabet::AsciiAlphanumericAnd("_-"),
            leading_digit: true,
            reserved_prefixes: &[],
            case_insensitive: false,
            refuses_arn_suffix: false,
        },
        max_value_bytes: MAX_VALUE_BYTES,
        max_secrets: None,
        text_only: false,
        empty_values: false,
        tags: true,
        deletion: Deletion::Immediate,
        batch: Batch::One,
        // 600 write requests a minute per project; a new name costs two
        // (CreateSecret, then AddSecretVersion).
        rate: RateBudget {
            max_in_flight: 10,
            limits: const { &[WriteLimit::per_minute(300)] },
        },
    }
}

/// What the last listing said about a secret: enough to label it without
/// clobbering a concurrent label edit.
struct Listed {
    labels: HashMap<String, String>,
    etag: String,
}

/// The GCP Secret Manager sink; see the module documentation.
pub struct GcpSecretManagerSink {
    client: OnceCell<SecretManagerService>,
    connection: Connection,
    page_size: i32,
    capabilities: Capabilities,
    listed: Mutex<HashMap<String, Listed>>,
}

impl std::fmt::Debug for GcpSecretManagerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpSecretManagerSink")
            .field("target", &self.target())
            .finish_non_exhaustive()
    }
}

type GaxError = google_cloud_secretmanager_v1::Error;

impl GcpSecretManagerSink {
    /// Starts a builder.
    pub fn builder() -> GcpSecretManagerSinkBuilder {
        GcpSecretManagerSinkBuilder::default()
    }

    /// The SDK client, made on first use.
    async fn client(&self) -> Result<&SecretManagerService, SinkError> {
        self.client
            .get_or_try_init(|| async {
                self.connection
                    .configure(SecretManagerService::builder())?
                    .build()
                    .await
                    .map_err(|e| SinkError::Misconfigured(format!("Secret Manager client: {e}")))
            })
            .await
    }

    fn parent(&self) -> String {
        self.connection.parent()
    }

    fn secret_name(&self, id: &str) -> String {
        self.connection.secret_name(id)
    }

    /// Creates the empty secret `id`, labelled; `Ok` when it exists already
    /// (after labelling it, if it was listed without a label: the engine
    /// plans a listed secret whose newest version is disabled as absent).
    async fn create(&self, id: &str) -> Result<(), SinkError> {
        let secret = Secret::new()
            .set_replication(Replication::new().set_automatic(replication::Automatic::new()))
            .set_labels([MANAGED_BY]);
        match self
            .client()
            .await?
            .create_secret()
            .set_parent(self.parent())
            .set_secret_id(id)
            .set_secret(secret)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if code(&error) == Some(Code::AlreadyExists) => self.ensure_label(id).await,
            Err(error) => Err(self.connection.classify(&error, "creating", id)),
        }
    }

    /// Adds `managed-by=vsync` to a listed secret that has no `managed-by`
    /// label, keeping its other labels; guarded by the listing's etag.
    async fn ensure_label(&self, id: &str) -> Result<(), SinkError> {
        let (labels, etag) = {
            let listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
            match listed.get(id) {
                Some(found) if !found.labels.contains_key(MANAGED_BY.0) => {
                    let mut labels = found.labels.clone();
                    labels.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());
                    (labels, found.etag.clone())
                }
                // Labelled already, or not listed by this sink.
                _ => return Ok(()),
            }
        };
        let secret = Secret::new()
            .set_name(self.secret_name(id))
            .set_labels(labels.clone())
            .set_etag(etag);
        match self
            .client()
            .await?
            .update_secret()
            .set_secret(secret)
            .set_update_mask(FieldMask::default().set_paths(["labels"]))
            .send()
            .await
        {
            Ok(updated) => {
                let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
                listed.insert(
                    id.to_owned(),
                    Listed {
                        labels,
                        etag: updated.etag,
                    },
                );
                Ok(())
            }
            // Deleted since it was listed: `put` creates it again, labelled.
            Err(error) if code(&error) == Some(Code::NotFound) => Ok(()),
            Err(error) if code(&error) == Some(Code::FailedPrecondition) => {
                Err(SinkError::Conflict(format!(
                    "{id}: its labels changed since it was listed; run the sync again"
                )))
            }
            Err(error) => Err(self.connection.classify(&error, "labelling", id)),
        }
    }

    /// Adds `value` as the newest version of `id`; answers its number.
    async fn add_version(
        &self,
        client: &SecretManagerService,
        id: &str,
        value: &SecretValue,
    ) -> Result<String, GaxError> {
        let payload = SecretPayload::new()
            .set_data(value.as_bytes().to_vec())
            .set_data_crc32c(crc32c(value.as_bytes()));
        let version = client
            .add_secret_version()
            .set_parent(self.secret_name(id))
            .set_payload(payload)
            .send()
            .await?;
        Ok(version
            .name
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned())
    }

    async fn put(&self, id: &str, value: &SecretValue, exists: bool) -> Result<Applied, SinkError> {
        if exists {
            self.ensure_label(id).await?;
        } else {
            self.create(id).await?;
        }
        let client = self.client().await?;
        let version = match self.add_version(client, id, value).await {
            Ok(version) => version,
            // Deleted since it was listed: create it again.
            Err(error) if code(&error) == Some(Code::NotFound) => {
                self.create(id).await?;
                self.add_version(client, id, value)
                    .await
                    .map_err(|error| self.connection.classify(&error, "adding a version to", id))?
            }
            Err(error) => return Err(self.connection.classify(&error, "adding a version to", id)),
        };
        Ok(Applied {
            revision: Some(version),
        })
    }

    async fn delete(&self, id: &str) -> Result<Applied, SinkError> {
        match self
            .client()
            .await?
            .delete_secret()
            .set_name(self.secret_name(id))
            .send()
            .await
        {
            Ok(()) => Ok(Applied::default()),
            Err(error) if code(&error) == Some(Code::NotFound) => Ok(Applied::default()),
            Err(error) => Err(self.connection.classify(&error, "deleting", id)),
        }
    }
}

/// CRC32C (Castagnoli, `CRC-32/ISCSI`), which Secret Manager checks on
/// every version sent with one and returns with every payload, as the API's
/// `int64` field carries it.
fn crc32c(data: &[u8]) -> i64 {
    // A CRC-32 is below 2^32, so it always fits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as i64
}

#[async_trait::async_trait]
impl Sink for GcpSecretManagerSink {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn target(&self) -> String {
        self.connection.describe()
    }

    fn map_name(&self, key: &str) -> String {
        key.to_owned()
    }

    async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError> {
        let mut found = Vec::new();
        let mut listed = HashMap::new();
        let mut token = String::new();
        loop {
            let page = self
                .client()
                .await?
                .list_secrets()
                .set_parent(self.parent())
                .set_page_size(self.page_size)
                .set_page_token(token)
                .send()
                .await
                .map_err(|error| {
                    self.connection
                        .classify(&error, "listing the secrets of", &self.parent())
                })?;
            for secret in page.secrets {
                let id = secret
                    .name
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let managed =
                    secret.labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1);
                found.push(RemoteSecret {
                    name: id.clone(),
                    revision: None,
                    managed: Some(managed),
                    value: None,
                });
                listed.insert(
                    id,
                    Listed {
                        labels: secret.labels,
                        etag: secret.etag,
                    },
                );
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        *self.listed.lock().unwrap_or_else(|e| e.into_inner()) = listed;
        Ok(found)
    }

    async fn read(&self, name: &str) -> Result<Option<SecretValue>, SinkError> {
        let response = match self
            .client()
            .await?
            .access_secret_version()
            .set_name(format!("{}/versions/latest", self.secret_name(name)))
            .send()
            .await
        {
            Ok(response) => response,
            // No secret or no version yet; or the newest version is
            // disabled or destroyed (`FAILED_PRECONDITION`).
            Err(error)
                if matches!(
                    code(&error),
                    Some(Code::NotFound | Code::FailedPrecondition)
                ) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(self.connection.classify(&error, "reading", name)),
        };
        let Some(payload) = response.payload else {
            return Ok(None);
        };
        let value = SecretValue::new(Zeroizing::new(payload.data.to_vec()));
        if let Some(expected) = payload.data_crc32c
            && expected != crc32c(value.as_bytes())
        {
            return Err(SinkError::Unavailable(format!(
                "{name}: the value read does not match its CRC32C (corrupted in transit)"
            )));
        }
        Ok(Some(value))
    }

    async fn apply_one(&self, change: &Change<'_>) -> Result<Applied, SinkError> {
        match change {
            Change::Put {
                name,
                value,
                exists,
            } => self.put(name, value, *exists).await,
            Change::Delete { name } => self.delete(name).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn builder_refuses_incomplete_settings() {
        let no_project = GcpSecretManagerSink::builder().access_token("t").build();
        assert!(
            matches!(no_project, Err(SinkError::Misconfigured(m)) if m.contains("--gcp-project"))
        );
        let empty_token = GcpSecretManagerSink::builder()
            .project("p")
            .access_token(" ")
            .build();
        assert!(
            matches!(empty_token, Err(SinkError::Misconfigured(m)) if m.contains("GOOGLE_OAUTH_ACCESS_TOKEN"))
        );
        let no_file = GcpSecretManagerSink::builder()
            .project("p")
            .credentials_file("/nonexistent/vsync/sa.json")
            .build();
        assert!(
            matches!(no_file, Err(SinkError::Misconfigured(m)) if m.contains("/nonexistent/vsync/sa.json") && m.contains("does not exist"))
        );
        let bad_page = GcpSecretManagerSink::builder()
            .project("p")
            .access_token("t")
            .page_size(0)
            .build();
        assert!(matches!(bad_page, Err(SinkError::Misconfigured(_))));
        let sink = GcpSecretManagerSink::builder()
            .project("acme-prod")
            .access_token("t")
            .build()
            .unwrap();
        assert_eq!(sink.target(), "gcp-secret-manager:project=acme-prod");
    }
}
