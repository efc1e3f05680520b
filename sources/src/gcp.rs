//! Google Cloud Secret Manager as a source: the secrets of one project
//! (optionally only those a list `filter` selects), each one's newest
//! enabled version. `vsync import dev --from gcp --set project=acme-prod
//! [--set filter=labels.team=api]`.
//!
//! # Connection
//!
//! The sink's, through [`vsync_connections::gcp`]: the same project and
//! endpoint checks, the same credentials (`GOOGLE_OAUTH_ACCESS_TOKEN`, else
//! Application Default Credentials, with bounded token fetches), the same
//! SDK client (`google-cloud-secretmanager-v1`, its own retries off: the
//! engine retries and paces) and the same error mapping. A refused
//! credential is [`SinkError::Denied`] naming the credential in use and
//! what to do about it.
//!
//! # Listing
//!
//! `secrets.list` in pages of [`PAGE_SIZE`], the `filter` setting passed
//! as Secret Manager's own list filter (`labels.team=api`, `name:app_`,
//! combined with `AND`/`OR`; a filter Google cannot parse is its
//! `400 INVALID_ARGUMENT`, reported as [`SinkError::Rejected`]). Pages are
//! kept small (250, not the sink's 25,000) because the SDK reads a whole
//! answer into memory before vsync sees it: a smaller page bounds what an
//! honest server sends, and a page longer than asked for is refused. Paging
//! stops with an error when a page token comes back a second time or after
//! 10,000 pages, so a server that loops cannot keep vsync listing for ever.
//! Every listed name must be a secret's resource name with a valid id
//! (1–255 of `[A-Za-z0-9_-]`), and none may be listed twice.
//!
//! The listing has no revision: a secret's `etag` changes only when the
//! secret resource itself does (labels, rotation), not when a version is
//! added or disabled, as Google documents ("updating a secret version does
//! not affect the secret ETag"), and a secret has no update time. So the
//! source declares `metadata: false` and every import reads every secret
//! it lists: one `access` call each, drawing on the 90,000-a-minute access
//! quota rather than the 600-a-minute quota a version listing would use.
//!
//! # Reads
//!
//! One secret per call ([`SourceCapabilities::batch`] 1: Secret Manager has
//! no batch read). `versions/latest:access` answers the newest version
//! whatever its state: when a person has disabled or destroyed it, Google
//! answers `400 FAILED_PRECONDITION` rather than falling back to an older
//! one; when the secret has no version at all, `404 NOT_FOUND`. Either way
//! the source then lists the secret's versions with the filter
//! `state:ENABLED` and a page of one (Google lists newest first) and
//! accesses that version by number, so a rolled-back secret imports the
//! value applications would be told to pin. What that finds:
//!
//! - an enabled version: its value;
//! - none (every version disabled or destroyed, or none ever added): the
//!   secret goes to [`ReadBatch::disabled`], reported as disabled at the
//!   source and the vault left alone;
//! - the secret itself gone (`404` on the version listing: deleted since
//!   the listing): left out, as the trait asks.
//!
//! Each payload's `dataCrc32c`, when Google sends one, is checked
//! (a mismatch is [`SinkError::Unavailable`], retried: the bytes were
//! corrupted on the way), and a payload over Google's 64 KiB limit is
//! refused.
//!
//! # Values
//!
//! Bytes, as stored. A payload that is not UTF-8 (a DER certificate, a
//! keystore) is declared possible ([`SourceCapabilities::binary`]) and the
//! engine writes it to an asset file. A JSON secret is one value, imported
//! whole under the secret's name: Secret Manager has no notion of fields.
//! Names are the secret ids, unchanged: the sink writes vault keys as ids
//! without a transform, so there is none to undo.
//!
//! # Secrets
//!
//! Errors carry names, statuses and Google's messages with any quoted text
//! cut (Google may echo input), never a value. Values vsync copies are
//! wiped when dropped; copies inside the SDK and the HTTP stack are beyond
//! its reach.

use std::collections::HashSet;

use google_cloud_gax::error::rpc::Code;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::secret_version::State;
use google_cloud_secretmanager_v1::model::{AccessSecretVersionResponse, SecretVersion};
use tokio::sync::OnceCell;
use vsync_connections::gcp::{Auth, Connection, code};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{RateBudget, SecretValue, SinkError, WriteLimit, one_line_message};
use vsync_engine::source::{ListedSecret, ReadBatch, Source, SourceCapabilities, SourceValue};

/// Secrets per `secrets.list` page (see the module documentation).
pub const PAGE_SIZE: i32 = 250;
/// Pages a listing may take: 2.5 million secrets, far past any project.
const MAX_PAGES: usize = 10_000;
/// Google's page tokens are short; a longer one is not Google's.
const MAX_TOKEN_BYTES: usize = 4096;
/// Google's largest payload.
const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Builds a [`GcpSecretManagerSource`]; see the module documentation.
#[derive(Default)]
pub struct GcpSecretManagerSourceBuilder {
    project: Option<String>,
    endpoint: Option<String>,
    access_token: Option<Zeroizing<String>>,
    filter: Option<String>,
}

impl GcpSecretManagerSourceBuilder {
    /// The project id (`--set project=…`).
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The API endpoint; Google's when not set (a regional or Private
    /// Service Connect endpoint, or a test server, otherwise).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// An OAuth 2 access token (`GOOGLE_OAUTH_ACCESS_TOKEN`); without one,
    /// Application Default Credentials.
    pub fn access_token(mut self, token: &str) -> Self {
        self.access_token = Some(Zeroizing::new(token.to_owned()));
        self
    }

    /// Secret Manager's list filter (`labels.team=api`, `name:app_`);
    /// every secret of the project when not set.
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Checks the settings and builds the source. Nothing is sent yet (the
    /// SDK client is made on first use, because making it is async).
    pub fn build(self) -> Result<GcpSecretManagerSource, SinkError> {
        let auth = Auth::choose(self.access_token, None)?;
        let connection = Connection::new(
            self.project.as_deref(),
            self.endpoint.as_deref(),
            auth,
            "--set project=<id>",
        )?;
        let filter = self
            .filter
            .map(|filter| filter.trim().to_owned())
            .filter(|filter| !filter.is_empty());
        Ok(GcpSecretManagerSource {
            connection,
            filter,
            client: OnceCell::new(),
            capabilities: SourceCapabilities {
                metadata: false,
                binary: true,
                batch: 1,
                // 90,000 accesses a minute per project.
                rate: RateBudget {
                    max_in_flight: 10,
                    limits: const { &[WriteLimit::per_minute(90_000)] },
                },
            },
        })
    }
}

/// The GCP Secret Manager source; see the module documentation.
pub struct GcpSecretManagerSource {
    connection: Connection,
    filter: Option<String>,
    client: OnceCell<SecretManagerService>,
    capabilities: SourceCapabilities,
}

impl std::fmt::Debug for GcpSecretManagerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpSecretManagerSource")
            .field("origin", &self.origin())
            .finish_non_exhaustive()
    }
}

/// What reading a secret, or one of its versions, found.
enum Found {
    Value(SecretValue),
    /// No enabled version: disabled or destroyed (`FAILED_PRECONDITION`),
    /// or none ever added.
    Unusable,
    /// No such secret: deleted since it was listed.
    Gone,
}

impl GcpSecretManagerSource {
    /// Starts a builder.
    pub fn builder() -> GcpSecretManagerSourceBuilder {
        GcpSecretManagerSourceBuilder::default()
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

    /// What is listed, for messages.
    fn scope(&self) -> String {
        match &self.filter {
            Some(filter) => format!("{} (filter {filter})", self.connection.parent()),
            None => self.connection.parent(),
        }
    }

    /// One secret's newest enabled version.
    async fn read_one(&self, id: &str) -> Result<Found, SinkError> {
        if let found @ Found::Value(_) = self.access(id, "latest").await? {
            return Ok(found);
        }
        // The newest version is disabled or destroyed, or there is none.
        Ok(match self.newest_enabled(id).await? {
            // Disabled or gone since the version listing: `access` says so.
            Newest::Version(number) => self.access(id, &number).await?,
            Newest::NoneEnabled => Found::Unusable,
            Newest::SecretGone => Found::Gone,
        })
    }

    /// Accesses version `version` (a number, or `latest`) of `id`.
    async fn access(&self, id: &str, version: &str) -> Result<Found, SinkError> {
        let name = format!("{}/versions/{version}", self.connection.secret_name(id));
        match self
            .client()
            .await?
            .access_secret_version()
            .set_name(name)
            .send()
            .await
        {
            Ok(response) => value_of(id, response).map(Found::Value),
            Err(error) => match code(&error) {
                Some(Code::FailedPrecondition) => Ok(Found::Unusable),
                Some(Code::NotFound) => Ok(Found::Gone),
                _ => Err(self.connection.classify(&error, "reading", id)),
            },
        }
    }

    /// The newest enabled version of `id`, from its version listing
    /// (newest first), filtered by state, one version long.
    async fn newest_enabled(&self, id: &str) -> Result<Newest, SinkError> {
        let page = match self
            .client()
            .await?
            .list_secret_versions()
            .set_parent(self.connection.secret_name(id))
            .set_filter("state:ENABLED")
            .set_page_size(1)
            .send()
            .await
        {
            Ok(page) => page,
            Err(error) if code(&error) == Some(Code::NotFound) => return Ok(Newest::SecretGone),
            Err(error) => {
                return Err(self
                    .connection
                    .classify(&error, "listing the versions of", id));
            }
        };
        match page.versions.first() {
            Some(version) => version_number(id, version).map(Newest::Version),
            None => Ok(Newest::NoneEnabled),
        }
    }
}

/// What a secret's version listing found.
enum Newest {
    /// The number of its newest enabled version.
    Version(String),
    /// No enabled version.
    NoneEnabled,
    /// No such secret: deleted since it was listed.
    SecretGone,
}

/// The number of a version listed as `id`'s newest enabled one, checked:
/// `projects/…/secrets/<id>/versions/<n>`, enabled.
fn version_number(id: &str, version: &SecretVersion) -> Result<String, SinkError> {
    version
        .name
        .strip_prefix("projects/")
        .and_then(|rest| rest.split_once("/secrets/"))
        .and_then(|(_, rest)| rest.split_once("/versions/"))
        .filter(|(secret, number)| {
            *secret == id
                && (1..=19).contains(&number.len())
                && !number.starts_with('0')
                && number.bytes().all(|b| b.is_ascii_digit())
                && version.state == State::Enabled
        })
        .map(|(_, number)| number.to_owned())
        .ok_or_else(|| {
            SinkError::Rejected(format!(
                "Secret Manager listed {:?} as the newest enabled version of {id}",
                one_line_message(&version.name)
            ))
        })
}

/// The value of an access answer, checked: a payload, within Google's
/// size limit, matching its checksum when it carries one.
fn value_of(id: &str, response: AccessSecretVersionResponse) -> Result<SecretValue, SinkError> {
    let Some(payload) = response.payload else {
        return Err(SinkError::Rejected(format!(
            "Secret Manager answered no payload reading {id}"
        )));
    };
    if payload.data.len() > MAX_VALUE_BYTES {
        return Err(SinkError::Rejected(format!(
            "Secret Manager answered {} bytes reading {id}, over its {MAX_VALUE_BYTES}-byte limit",
            payload.data.len()
        )));
    }
    let value = SecretValue::new(Zeroizing::new(payload.data.to_vec()));
    if let Some(expected) = payload.data_crc32c
        && expected != crc32c(value.as_bytes())
    {
        return Err(SinkError::Unavailable(format!(
            "{id}: the value read does not match its CRC32C (corrupted in transit)"
        )));
    }
    Ok(value)
}

/// CRC32C (Castagnoli), as the API's `int64` field carries it.
fn crc32c(data: &[u8]) -> i64 {
    // A CRC-32 is below 2^32, so it always fits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as i64
}

/// Whether `id` is a secret id Google accepts.
fn valid_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The id of a listed secret, from its resource name
/// (`projects/<id or number>/secrets/<id>`).
fn secret_id(name: &str) -> Result<&str, SinkError> {
    name.strip_prefix("projects/")
        .and_then(|rest| rest.split_once("/secrets/"))
        .filter(|(project, id)| !project.is_empty() && !project.contains('/') && valid_id(id))
        .map(|(_, id)| id)
        .ok_or_else(|| {
            SinkError::Rejected(format!(
                "Secret Manager listed {:?}, which is not a secret's resource name",
                one_line_message(name)
            ))
        })
}

/// Guards a paged listing against a server that never stops.
#[derive(Default)]
struct Pages {
    seen: HashSet<String>,
}

impl Pages {
    /// The token of the next page to ask for, `None` when the listing is
    /// complete; an error for a token seen before (a loop), an oversized
    /// one, or one page too many.
    fn next(&mut self, token: String) -> Result<Option<String>, SinkError> {
        if token.is_empty() {
            return Ok(None);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(SinkError::Rejected(format!(
                "Secret Manager answered a page token of {} bytes; listing stopped",
                token.len()
            )));
        }
        if self.seen.len() + 1 >= MAX_PAGES {
            return Err(SinkError::Rejected(format!(
                "Secret Manager's listing went past {MAX_PAGES} pages; listing stopped"
            )));
        }
        if !self.seen.insert(token.clone()) {
            return Err(SinkError::Rejected(
                "Secret Manager answered the page token of an earlier page again; listing stopped rather than loop"
                    .into(),
            ));
        }
        Ok(Some(token))
    }
}

#[async_trait::async_trait]
impl Source for GcpSecretManagerSource {
    fn capabilities(&self) -> &SourceCapabilities {
        &self.capabilities
    }

    fn origin(&self) -> String {
        match &self.filter {
            Some(filter) => format!("{},filter={filter}", self.connection.describe()),
            None => self.connection.describe(),
        }
    }

    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
        let client = self.client().await?;
        let mut listed = Vec::new();
        let mut names = HashSet::new();
        let mut pages = Pages::default();
        let mut token = String::new();
        loop {
            let mut request = client
                .list_secrets()
                .set_parent(self.connection.parent())
                .set_page_size(PAGE_SIZE)
                .set_page_token(token);
            if let Some(filter) = &self.filter {
                request = request.set_filter(filter);
            }
            let page = request.send().await.map_err(|error| {
                self.connection
                    .classify(&error, "listing the secrets of", &self.scope())
            })?;
            if page.secrets.len() > PAGE_SIZE as usize {
                return Err(SinkError::Rejected(format!(
                    "Secret Manager answered {} secrets on a page of {PAGE_SIZE}",
                    page.secrets.len()
                )));
            }
            for secret in &page.secrets {
                let id = secret_id(&secret.name)?;
                if !names.insert(id.to_owned()) {
                    return Err(SinkError::Rejected(format!(
                        "Secret Manager listed the secret {id} twice"
                    )));
                }
                listed.push(ListedSecret::named(id));
            }
            match pages.next(page.next_page_token)? {
                Some(next) => token = next,
                None => return Ok(listed),
            }
        }
    }

    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
        let mut batch = ReadBatch::default();
        for secret in secrets {
            match self.read_one(&secret.name).await? {
                Found::Value(value) => batch.values.push(SourceValue {
                    secret: secret.name.clone(),
                    name: secret.name.clone(),
                    value,
                }),
                Found::Unusable => batch.disabled.push(secret.name.clone()),
                Found::Gone => {}
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_secretmanager_v1::model::SecretPayload;

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn listed_names_must_be_secret_resource_names() {
        assert_eq!(
            secret_id("projects/acme/secrets/DB_PASS").unwrap(),
            "DB_PASS"
        );
        // Google names the project by number in what it answers.
        assert_eq!(secret_id("projects/123456/secrets/a-b_1").unwrap(), "a-b_1");
        for hostile in [
            "DB_PASS",
            "projects//secrets/A",
            "projects/acme/secrets/",
            "projects/acme/secrets/../../x",
            "projects/acme/secrets/A/versions/1",
            "projects/a/b/secrets/A",
            "projects/acme/secrets/a.b",
            &format!("projects/acme/secrets/{}", "A".repeat(256)),
        ] {
            let error = secret_id(hostile).unwrap_err();
            assert!(matches!(error, SinkError::Rejected(_)), "{hostile}");
        }
    }

    #[test]
    fn a_listed_newest_version_must_be_an_enabled_version_of_the_secret() {
        let version = |name: &str, state| SecretVersion::new().set_name(name).set_state(state);
        let ok = version("projects/1/secrets/A/versions/12", State::Enabled);
        assert_eq!(version_number("A", &ok).unwrap(), "12");
        for (name, state) in [
            ("projects/1/secrets/A/versions/12", State::Disabled),
            ("projects/1/secrets/B/versions/12", State::Enabled),
            ("projects/1/secrets/A/versions/latest", State::Enabled),
            ("projects/1/secrets/A/versions/0", State::Enabled),
            ("projects/1/secrets/A/versions/1/../2", State::Enabled),
            ("projects/1/secrets/A/versions/", State::Enabled),
            ("A/versions/1", State::Enabled),
        ] {
            assert!(
                version_number("A", &version(name, state)).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn paging_stops_at_a_repeated_token() {
        let mut pages = Pages::default();
        assert_eq!(pages.next("a".into()).unwrap().as_deref(), Some("a"));
        assert_eq!(pages.next("b".into()).unwrap().as_deref(), Some("b"));
        // A loop of two pages, not just the same token twice in a row.
        let error = pages.next("a".into()).unwrap_err();
        assert!(error.to_string().contains("earlier page"), "{error}");
        assert_eq!(Pages::default().next(String::new()).unwrap(), None);
        assert!(Pages::default().next("t".repeat(5000)).is_err());
    }

    #[test]
    fn paging_stops_after_too_many_pages() {
        let mut pages = Pages::default();
        let error = (0..MAX_PAGES)
            .map(|page| pages.next(page.to_string()))
            .find_map(Result::err)
            .expect("a bound");
        assert!(error.to_string().contains("10000 pages"), "{error}");
    }

    fn answer(data: &[u8], crc: Option<i64>) -> AccessSecretVersionResponse {
        let mut payload = SecretPayload::new().set_data(data.to_vec());
        payload.data_crc32c = crc;
        AccessSecretVersionResponse::new().set_payload(payload)
    }

    #[test]
    fn payloads_are_checked_and_errors_hold_no_value() {
        let value = value_of("A", answer(b"hunter2", Some(crc32c(b"hunter2")))).unwrap();
        assert_eq!(value.as_bytes(), b"hunter2");
        assert!(value_of("A", answer(b"\xff\x00", None)).is_ok());
        let corrupted = value_of("A", answer(b"hunter2", Some(crc32c(b"hunter3")))).unwrap_err();
        assert!(
            matches!(corrupted, SinkError::Unavailable(_)),
            "{corrupted:?}"
        );
        let huge = value_of("A", answer(&[b'x'; MAX_VALUE_BYTES + 1], None)).unwrap_err();
        assert!(matches!(huge, SinkError::Rejected(_)), "{huge:?}");
        let empty = value_of("A", AccessSecretVersionResponse::new()).unwrap_err();
        assert!(matches!(empty, SinkError::Rejected(_)), "{empty:?}");
        for error in [corrupted, huge, empty] {
            assert!(!format!("{error} {error:?}").contains("hunter"));
        }
    }

    #[test]
    fn the_builder_checks_its_settings_and_describes_its_scope() {
        let source = |project: &str, endpoint: &str| {
            GcpSecretManagerSource::builder()
                .project(project)
                .endpoint(endpoint)
                .access_token("t")
                .build()
        };
        let missing = GcpSecretManagerSource::builder()
            .access_token("t")
            .build()
            .unwrap_err();
        assert!(
            missing.to_string().contains("--set project=<id>"),
            "{missing}"
        );
        for project in ["acme/other", "acme?x", "acme prod"] {
            assert!(source(project, "https://x").is_err(), "{project}");
        }
        let clear = source("acme", "http://secretmanager.example").unwrap_err();
        assert!(clear.to_string().contains("https://"), "{clear}");
        let blank = GcpSecretManagerSource::builder()
            .project("acme")
            .access_token("t")
            .filter("  ")
            .build()
            .unwrap();
        assert_eq!(blank.origin(), "gcp-secret-manager:project=acme");
        let scoped = GcpSecretManagerSource::builder()
            .project("acme")
            .access_token("t")
            .filter(" labels.team=api ")
            .build()
            .unwrap();
        assert_eq!(
            scoped.origin(),
            "gcp-secret-manager:project=acme,filter=labels.team=api"
        );
        let caps = scoped.capabilities();
        assert!(!caps.metadata && caps.binary && caps.batch == 1);
    }
}
