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
//! yet) and a `FAILED_PRECONDITION` (the latest version is disabled or
//! destroyed) both read as absent, so the sync adds a fresh version. A write
//! reports the new version number as its revision.
//!
//! # Why the Google SDK, and how it is set up
//!
//! `google-cloud-secretmanager-v1` speaks REST/JSON over HTTP/1 with
//! `reqwest`, takes any endpoint (tests point it at a local plain-http fake)
//! and any credentials provider. Its own retries are switched off: the
//! engine retries and paces, once, for every platform.
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
//! that input may be a value. Values the sink copies are wiped when dropped;
//! copies inside the SDK and the HTTP stack are beyond its reach.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use google_cloud_auth::build_errors::Error as CredentialsBuildError;
use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model::{Replication, Secret, SecretPayload, replication};
use google_cloud_wkt::FieldMask;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::sync::OnceCell;
use vsync_engine::sink::{
    Alphabet, Applied, Batch, Capabilities, Change, Deletion, MANAGED_BY, NameRules, RateBudget,
    RemoteSecret, SecretValue, Sink, SinkError, WriteLimit, one_line_message,
};
use zeroize::Zeroizing;

/// Google's public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// `secrets.list`'s largest page: fewer pages, fewer calls.
const DEFAULT_PAGE_SIZE: i32 = 25_000;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the first token may take when it comes from the metadata
/// server (which answers in milliseconds where it exists).
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any other token fetch may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
const METADATA_HOST: &str = "metadata.google.internal";

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
        let project = self
            .project
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                SinkError::Misconfigured("the GCP project is not set (--gcp-project)".into())
            })?;
        if project.contains('/') {
            return Err(SinkError::Misconfigured(format!(
                "{project:?} is not a GCP project id"
            )));
        }
        let endpoint = self
            .endpoint
            .as_deref()
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim_end_matches('/')
            .to_owned();
        match url::Url::parse(&endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => {
                return Err(SinkError::Misconfigured(format!(
                    "the Secret Manager endpoint {endpoint:?} is not an http:// or https:// URL"
                )));
            }
        }
        vsync_engine::sink::require_secure_transport("the Secret Manager endpoint", &endpoint)?;
        let page_size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=DEFAULT_PAGE_SIZE).contains(&page_size) {
            return Err(SinkError::Misconfigured(format!(
                "the page size {page_size} is outside 1..=25000"
            )));
        }
        let auth = match (self.access_token, self.credentials_file) {
            (Some(token), _) => {
                if token.trim().is_empty() {
                    return Err(SinkError::Misconfigured(
                        "the GCP access token is empty (GOOGLE_OAUTH_ACCESS_TOKEN)".into(),
                    ));
                }
                let bearer = Zeroizing::new(format!("Bearer {}", token.as_str()));
                let mut header = HeaderValue::from_str(&bearer).map_err(|_| {
                    SinkError::Misconfigured(
                        "the GCP access token has characters a header cannot carry".into(),
                    )
                })?;
                header.set_sensitive(true);
                Auth::Token(header)
            }
            (None, Some(path)) => {
                check_file(&path, "the GCP credentials file is")?;
                Auth::Google(Source::File(path))
            }
            (None, None) => Auth::Google(Source::application_default()?),
        };
        Ok(GcpSecretManagerSink {
            client: OnceCell::new(),
            auth,
            project,
            endpoint,
            page_size,
            capabilities: capabilities(),
            listed: Mutex::new(HashMap::new()),
        })
    }
}

/// Where the sink's credentials come from.
enum Auth {
    /// `Bearer <token>`, marked sensitive.
    Token(HeaderValue),
    /// Google's credentials, through `google-cloud-auth`.
    Google(Source),
}

/// Which Google credentials, for building them and for naming them in
/// messages.
#[derive(Debug, Clone)]
enum Source {
    /// A file given to the builder.
    File(PathBuf),
    /// The file `GOOGLE_APPLICATION_CREDENTIALS` names.
    EnvFile(PathBuf),
    /// gcloud's application-default credentials.
    Gcloud(PathBuf),
    /// Nothing configured: the metadata server.
    Metadata {
        /// `metadata.google.internal`, or `GCE_METADATA_HOST`.
        host: String,
        /// gcloud's file, which does not exist.
        gcloud: Option<PathBuf>,
    },
}

/// What to do about missing or unusable credentials; the message names
/// what to set.
const ADC_HELP: &str = "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key or credentials file, or GOOGLE_OAUTH_ACCESS_TOKEN to an access token";

impl Source {
    /// Picks the source as Application Default Credentials do (the same
    /// order as `google-cloud-auth`, which builds them later), refusing a
    /// `GOOGLE_APPLICATION_CREDENTIALS` that names no readable file.
    fn application_default() -> Result<Source, SinkError> {
        if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            let path = PathBuf::from(path);
            if path.as_os_str().is_empty() {
                return Err(SinkError::Misconfigured(
                    "GOOGLE_APPLICATION_CREDENTIALS is set but empty: set it to the path of a \
                     credentials JSON file, or unset it"
                        .into(),
                ));
            }
            check_file(&path, "GOOGLE_APPLICATION_CREDENTIALS names")?;
            return Ok(Source::EnvFile(path));
        }
        let gcloud = gcloud_adc_path();
        if let Some(path) = &gcloud {
            match std::fs::metadata(path) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                // Present, or unreadable: the library reads it and fails
                // loudly, as it should.
                _ => return Ok(Source::Gcloud(path.clone())),
            }
        }
        let host = std::env::var("GCE_METADATA_HOST")
            .ok()
            .unwrap_or_else(|| METADATA_HOST.to_owned());
        Ok(Source::Metadata { host, gcloud })
    }

    /// The credentials, wrapped so that fetching a token is bounded and its
    /// failures say what to fix. Must run inside a tokio runtime (the
    /// library starts fetching the first token at once).
    fn credentials(&self) -> Result<Credentials, SinkError> {
        let inner = match self {
            Source::File(path) => credentials_from_file(path)?,
            _ => google_cloud_auth::credentials::Builder::default()
                .build()
                .map_err(|error| self.build_problem(&error))?,
        };
        let first = match self {
            Source::Metadata { .. } => METADATA_TIMEOUT,
            _ => TOKEN_TIMEOUT,
        };
        Ok(Credentials::from(Bounded {
            inner,
            source: self.clone(),
            first_deadline: tokio::time::Instant::now() + first,
            first,
            ready: AtomicBool::new(false),
        }))
    }

    /// How messages name these credentials.
    fn describe(&self) -> String {
        match self {
            Source::File(path) => format!("the credentials file {}", path.display()),
            Source::EnvFile(path) => format!(
                "the credentials file {} (GOOGLE_APPLICATION_CREDENTIALS)",
                path.display()
            ),
            Source::Gcloud(path) => format!(
                "gcloud's application-default credentials ({})",
                path.display()
            ),
            Source::Metadata { host, .. } => format!("the metadata server ({host})"),
        }
    }

    /// What to do when these credentials are refused.
    fn fix(&self) -> &'static str {
        match self {
            Source::Gcloud(_) => {
                "run `gcloud auth application-default login` again, or set GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_OAUTH_ACCESS_TOKEN"
            }
            Source::EnvFile(_) => {
                "check the file GOOGLE_APPLICATION_CREDENTIALS names (a disabled or deleted key, a revoked login), or point it at another"
            }
            Source::File(_) => "check the credentials file, or use another",
            Source::Metadata { .. } => {
                "check the service account attached to this VM, pod or service, or set GOOGLE_APPLICATION_CREDENTIALS"
            }
        }
    }

    /// Nothing configured and no metadata server: the message for it.
    fn nothing_configured(&self, what_happened: &str) -> CredentialProblem {
        let (host, gcloud) = match self {
            Source::Metadata { host, gcloud } => (host.as_str(), gcloud.as_deref()),
            _ => (METADATA_HOST, None),
        };
        let gcloud = gcloud.map_or_else(
            || "there are no gcloud application-default credentials".to_owned(),
            |path| format!("{} does not exist", path.display()),
        );
        CredentialProblem::misconfigured(format!(
            "no Google credentials found: GOOGLE_OAUTH_ACCESS_TOKEN and \
             GOOGLE_APPLICATION_CREDENTIALS are not set, {gcloud}, and the metadata \
             server ({host}), which exists only on Google Cloud (GCE, GKE, Cloud Run), \
             {what_happened}; {ADC_HELP}"
        ))
    }

    /// The message for a credentials file the library would not load.
    fn build_problem(&self, error: &CredentialsBuildError) -> SinkError {
        let what = self.describe();
        let message = if error.is_loading() {
            format!("cannot read {what}: {error}")
        } else if error.is_parsing() {
            format!(
                "{what} is not a usable credentials file: {}",
                parse_detail(error)
            )
        } else if error.is_unknown_type() || error.is_not_supported() {
            format!(
                "{what} has a credentials `type` this vsync cannot use (it takes \
                 service_account, authorized_user, external_account and \
                 impersonated_service_account)"
            )
        } else {
            format!("{what} is not a usable credentials file: {error}")
        };
        SinkError::Misconfigured(message)
    }

    /// Maps a failure to get a token to what the user should do.
    fn token_problem(&self, error: &CredentialsError) -> CredentialProblem {
        let found = Found::in_chain(error);
        let what = self.describe();
        if let Source::Metadata { host, .. } = self {
            return match found.status {
                None => self.nothing_configured(&match found.transport {
                    Some(reason) => format!("could not be reached ({reason})"),
                    None => "did not answer with a token".to_owned(),
                }),
                Some(status @ (429 | 500..=599)) => CredentialProblem {
                    kind: ProblemKind::Unavailable,
                    message: format!(
                        "the metadata server ({host}) answered HTTP {status} when asked for a token"
                    ),
                },
                Some(status) => CredentialProblem::misconfigured(format!(
                    "the metadata server ({host}) answered HTTP {status} when asked for a token \
                     (no service account attached?); {}",
                    self.fix()
                )),
            };
        }
        match found.status {
            Some(status) => {
                let code = found
                    .oauth_error
                    .map(|code| format!(" {code}"))
                    .unwrap_or_default();
                let message = format!(
                    "Google refused {what}: the token endpoint answered HTTP {status}{code}; {}",
                    self.fix()
                );
                match status {
                    429 | 500..=599 => CredentialProblem {
                        kind: ProblemKind::Unavailable,
                        message: format!(
                            "could not get an access token for {what}: the token endpoint answered HTTP {status}{code}"
                        ),
                    },
                    400 | 401 | 403 => CredentialProblem {
                        kind: ProblemKind::Denied,
                        message,
                    },
                    _ => CredentialProblem::misconfigured(message),
                }
            }
            None => match found.transport {
                Some(reason) => CredentialProblem {
                    kind: ProblemKind::Unavailable,
                    message: format!("could not reach the token endpoint for {what}: {reason}"),
                },
                None if found.key_problem => CredentialProblem::misconfigured(format!(
                    "the private key in {what} cannot be used (it must be the unencrypted \
                     PKCS #8 RSA key of a Google service-account key file)"
                )),
                None => CredentialProblem::misconfigured(format!(
                    "could not get an access token with {what}; {}",
                    self.fix()
                )),
            },
        }
    }

    fn timed_out(&self, after: Duration) -> CredentialProblem {
        let secs = after.as_secs();
        match self {
            Source::Metadata { .. } => {
                self.nothing_configured(&format!("did not answer within {secs}s"))
            }
            _ => CredentialProblem {
                kind: ProblemKind::Unavailable,
                message: format!(
                    "the token endpoint for {} did not answer within {secs}s",
                    self.describe()
                ),
            },
        }
    }
}

/// Refuses a credentials path that is not a file (`what` names where the
/// path came from), so a typo shows when the sink is built.
fn check_file(path: &Path, what: &str) -> Result<(), SinkError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(SinkError::Misconfigured(format!(
            "{what} {}, which is not a file",
            path.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(
            SinkError::Misconfigured(format!("{what} {}, which does not exist", path.display())),
        ),
        Err(error) => Err(SinkError::Misconfigured(format!(
            "{what} {}, which cannot be read: {error}",
            path.display()
        ))),
    }
}

/// Where gcloud writes application-default credentials (the path
/// `google-cloud-auth` reads).
fn gcloud_adc_path() -> Option<PathBuf> {
    let (root, rest) = if cfg!(windows) {
        ("APPDATA", "gcloud/application_default_credentials.json")
    } else {
        (
            "HOME",
            ".config/gcloud/application_default_credentials.json",
        )
    };
    std::env::var_os(root)
        .filter(|root| !root.is_empty())
        .map(|root| PathBuf::from(root).join(rest))
}

/// Credentials from a file given to the builder, built the way
/// Application Default Credentials build the file they find.
fn credentials_from_file(path: &Path) -> Result<Credentials, SinkError> {
    let source = Source::File(path.to_owned());
    let what = source.describe();
    let text = std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|error| SinkError::Misconfigured(format!("cannot read {what}: {error}")))?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|error| {
        SinkError::Misconfigured(format!(
            "{what} is not a usable credentials file: {}",
            json_detail(&error)
        ))
    })?;
    use google_cloud_auth::credentials::{
        external_account, impersonated, service_account, user_account,
    };
    let kind = json.get("type").and_then(serde_json::Value::as_str);
    let built = match kind {
        Some("authorized_user") => user_account::Builder::new(json).build(),
        Some("service_account") => service_account::Builder::new(json).build(),
        Some("external_account") => external_account::Builder::new(json).build(),
        Some("impersonated_service_account") => impersonated::Builder::new(json).build(),
        _ => {
            return Err(SinkError::Misconfigured(format!(
                "{what} has no credentials `type` this vsync can use (it takes \
                 service_account, authorized_user, external_account and \
                 impersonated_service_account)"
            )));
        }
    };
    built.map_err(|error| source.build_problem(&error))
}

/// A JSON error without the offending text (which may be a key): where it
/// is, or which field is missing.
fn json_detail(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if error.is_data()
        && let Some(field) = message.strip_prefix("missing field ")
    {
        let field = field.split(" at line").next().unwrap_or(field);
        return format!("the field {field} is missing");
    }
    // Errors from an already parsed value have no position.
    let at = match error.line() {
        0 => String::new(),
        line => format!(" (line {line}, column {})", error.column()),
    };
    match error.classify() {
        serde_json::error::Category::Data => format!("a field has the wrong type{at}"),
        _ => format!("it is not JSON{at}"),
    }
}

/// The detail of a parsing failure of the library's, from its JSON error.
fn parse_detail(error: &CredentialsBuildError) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            return json_detail(json);
        }
        source = cause.source();
    }
    "it is not a Google credentials JSON file".to_owned()
}

/// What a token failure's error chain says, without its bodies.
#[derive(Default)]
struct Found {
    /// The HTTP status the token endpoint or metadata server answered.
    status: Option<u16>,
    /// The OAuth error code (`invalid_grant`) of the answer.
    oauth_error: Option<String>,
    /// Why the server could not be reached (refused, not found, timed out).
    transport: Option<String>,
    /// The key could not be used to sign.
    key_problem: bool,
}

impl Found {
    fn in_chain(error: &CredentialsError) -> Found {
        let mut found = Found::default();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = source {
            if let Some(http) = cause.downcast_ref::<reqwest::Error>() {
                if let Some(status) = http.status() {
                    found.status.get_or_insert(status.as_u16());
                } else if http.is_timeout() {
                    found
                        .transport
                        .get_or_insert_with(|| "timed out".to_owned());
                } else if http.is_connect() {
                    found.transport.get_or_insert_with(|| innermost(cause));
                }
            }
            if let Some(gax) = cause.downcast_ref::<GaxError>()
                && let Some(status) = gax.http_status_code()
            {
                found.status.get_or_insert(status);
            }
            let text = cause.to_string();
            if cause.is::<CredentialsError>()
                && let Some(code) = oauth_error_code(&text)
            {
                found.oauth_error.get_or_insert(code);
            }
            // The library's and rustls's "failed to parse … private key …".
            if text.contains("private key") {
                found.key_problem = true;
            }
            source = cause.source();
        }
        found
    }
}

/// The innermost cause's description (the OS's "Connection refused", the
/// resolver's "Name or service not known"), which carries no body.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(cause) = last.source() {
        last = cause;
    }
    one_line_message(&last.to_string())
}

/// The `error` code of an OAuth error body quoted in a library message
/// (`…, body=<{"error":"invalid_grant",…}>`), when it is a plain code.
fn oauth_error_code(message: &str) -> Option<String> {
    let body = message.split_once("body=<")?.1;
    let body = &body[..body.rfind('>')?];
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let code = value.get("error")?.as_str()?;
    (!code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    .then(|| code.to_owned())
}

#[derive(Debug, Clone, Copy)]
enum ProblemKind {
    Misconfigured,
    Denied,
    Unavailable,
}

/// A credentials failure as the sink reports it: the error `Bounded`
/// hands the SDK, found again by [`classify`].
#[derive(Debug, Clone)]
struct CredentialProblem {
    kind: ProblemKind,
    message: String,
}

impl CredentialProblem {
    fn misconfigured(message: String) -> Self {
        CredentialProblem {
            kind: ProblemKind::Misconfigured,
            message,
        }
    }

    fn to_sink_error(&self) -> SinkError {
        let message = self.message.clone();
        match self.kind {
            ProblemKind::Misconfigured => SinkError::Misconfigured(message),
            ProblemKind::Denied => SinkError::Denied(message),
            ProblemKind::Unavailable => SinkError::Unavailable(message),
        }
    }
}

impl std::fmt::Display for CredentialProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CredentialProblem {}

/// Google credentials with bounded token fetches and failures that say
/// what to fix (see the module documentation).
struct Bounded {
    inner: Credentials,
    source: Source,
    /// When the first token must have arrived (counted from when the
    /// library started fetching it).
    first_deadline: tokio::time::Instant,
    first: Duration,
    /// A token arrived once: later fetches get [`TOKEN_TIMEOUT`] each.
    ready: AtomicBool,
}

impl std::fmt::Debug for Bounded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bounded")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Bounded {
    fn deadline(&self) -> (tokio::time::Instant, Duration) {
        if self.ready.load(Ordering::Acquire) {
            (tokio::time::Instant::now() + TOKEN_TIMEOUT, TOKEN_TIMEOUT)
        } else {
            (self.first_deadline, self.first)
        }
    }
}

impl CredentialsProvider for Bounded {
    async fn headers(
        &self,
        extensions: http::Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        let (deadline, budget) = self.deadline();
        match tokio::time::timeout_at(deadline, self.inner.headers(extensions)).await {
            Ok(Ok(headers)) => {
                self.ready.store(true, Ordering::Release);
                Ok(headers)
            }
            Ok(Err(error)) => Err(CredentialsError::from_source(
                error.is_transient(),
                self.source.token_problem(&error),
            )),
            Err(_elapsed) => Err(CredentialsError::from_source(
                true,
                self.source.timed_out(budget),
            )),
        }
    }

    async fn universe_domain(&self) -> Option<String> {
        // Asks the metadata server when that is the source; unanswered, the
        // default universe (googleapis.com) is assumed and the token fetch
        // reports the problem.
        let (deadline, _) = self.deadline();
        tokio::time::timeout_at(deadline, self.inner.universe_domain())
            .await
            .unwrap_or(None)
    }
}

/// A fixed bearer token as Google credentials.
struct StaticToken {
    header: HeaderValue,
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl CredentialsProvider for StaticToken {
    async fn headers(
        &self,
        _extensions: http::Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, self.header.clone());
        Ok(CacheableResource::New {
            entity_tag: EntityTag::new(),
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
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
    auth: Auth,
    project: String,
    endpoint: String,
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
                let credentials = match &self.auth {
                    Auth::Token(header) => Credentials::from(StaticToken {
                        header: header.clone(),
                    }),
                    Auth::Google(source) => source.credentials()?,
                };
                SecretManagerService::builder()
                    .with_endpoint(self.endpoint.clone())
                    .with_credentials(credentials)
                    .with_retry_policy(NeverRetry)
                    .with_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build()
                    .await
                    .map_err(|e| SinkError::Misconfigured(format!("Secret Manager client: {e}")))
            })
            .await
    }

    fn parent(&self) -> String {
        format!("projects/{}", self.project)
    }

    fn secret_name(&self, id: &str) -> String {
        format!("projects/{}/secrets/{id}", self.project)
    }

    /// Creates the empty secret `id`, labelled; `Ok` when it exists already.
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
            Err(error) if code(&error) == Some(Code::AlreadyExists) => Ok(()),
            Err(error) => Err(classify(&error, "creating", id)),
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
            Err(error) => Err(classify(&error, "labelling", id)),
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
                    .map_err(|error| classify(&error, "adding a version to", id))?
            }
            Err(error) => return Err(classify(&error, "adding a version to", id)),
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
            Err(error) => Err(classify(&error, "deleting", id)),
        }
    }
}

fn code(error: &GaxError) -> Option<Code> {
    error.status().map(|status| status.code)
}

/// Maps an SDK error to the engine's taxonomy, keeping the status, Google's
/// status name and its (sanitised) message, never a body.
fn classify(error: &GaxError, doing: &str, id: &str) -> SinkError {
    let Some(http) = error.http_status_code() else {
        if error.is_connect() || error.is_io() || error.is_timeout() || error.is_transport() {
            return SinkError::Unavailable(format!(
                "could not reach Secret Manager {doing} {id}: {}",
                transport_message(error)
            ));
        }
        if error.is_authentication() {
            return match credential_problem(error) {
                Some(problem) => problem.to_sink_error(),
                None => SinkError::Denied(format!("no usable credentials {doing} {id}")),
            };
        }
        if error.is_deserialization() {
            return SinkError::Rejected(format!(
                "Secret Manager's answer {doing} {id} was not what its API returns"
            ));
        }
        return SinkError::Rejected(format!(
            "{doing} {id} failed before reaching Secret Manager"
        ));
    };
    let status = error.status();
    let detail = match status {
        Some(status) => format!(
            "Secret Manager answered {http} {} {doing} {id}: {}",
            status.code.name(),
            sanitize(&status.message)
        ),
        None => format!("Secret Manager answered {http} {doing} {id}"),
    };
    match (http, status.map(|s| s.code)) {
        (429, _) | (_, Some(Code::ResourceExhausted)) => SinkError::RateLimited {
            retry_after: retry_after(error.http_headers()),
        },
        (401 | 403, _) => SinkError::Denied(detail),
        (404, _) => SinkError::NotFound(detail),
        (409, _) => SinkError::Conflict(detail),
        (500..=599, _) => SinkError::Unavailable(detail),
        _ => SinkError::Rejected(detail),
    }
}

/// The [`CredentialProblem`] behind an authentication error.
fn credential_problem(error: &GaxError) -> Option<&CredentialProblem> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(problem) = cause.downcast_ref::<CredentialProblem>() {
            return Some(problem);
        }
        source = cause.source();
    }
    None
}

/// A transport error's description: the error's chain, which names the
/// endpoint and the cause (refused, reset, timed out), never a body.
fn transport_message(error: &GaxError) -> String {
    let mut message = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if message.is_empty() {
        "the connection failed".to_owned()
    } else {
        message
    }
}

fn retry_after(headers: Option<&HeaderMap>) -> Option<Duration> {
    headers?
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Google's message on one line, capped, with double-quoted text (echoed
/// input, possibly a value) replaced by `"…"`.
fn sanitize(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("\"…\"");
            }
            ('"', true) => quoted = false,
            (_, true) => {}
            (c, false) if c.is_whitespace() => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            (c, false) => out.push(c),
        }
    }
    one_line_message(&out)
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
        if self.endpoint == DEFAULT_ENDPOINT {
            format!("gcp-secret-manager:project={}", self.project)
        } else {
            format!(
                "gcp-secret-manager:project={},endpoint={}",
                self.project, self.endpoint
            )
        }
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
                .map_err(|error| classify(&error, "listing the secrets of", &self.parent()))?;
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
            Err(error)
                if matches!(
                    code(&error),
                    Some(Code::NotFound | Code::FailedPrecondition)
                ) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(classify(&error, "reading", name)),
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
    use vsync_engine::sink::MAX_MESSAGE_CHARS;

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn messages_lose_quoted_input_and_stay_short() {
        assert_eq!(
            sanitize(
                "Invalid value at 'payload.data' (TYPE_BYTES), Base64 decoding failed for \"hunter2\""
            ),
            "Invalid value at 'payload.data' (TYPE_BYTES), Base64 decoding failed for \"…\""
        );
        assert_eq!(
            sanitize("Secret [projects/p/secrets/A]\n  not found."),
            "Secret [projects/p/secrets/A] not found."
        );
        assert_eq!(
            sanitize(&"x".repeat(1000)).chars().count(),
            MAX_MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(Some(&headers)), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn only_a_plain_oauth_error_code_is_taken_from_a_body() {
        assert_eq!(
            oauth_error_code(
                "failed to refresh user access token, body=<{\"error\": \"invalid_grant\", \"error_description\": \"Bad Request\"}> and future attempts will not succeed"
            )
            .as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(
            oauth_error_code("body=<{\"error\": \"ya29.echoed-token\"}>"),
            None
        );
        assert_eq!(oauth_error_code("body=<<html>oops</html>>"), None);
        assert_eq!(oauth_error_code("no body here"), None);
    }

    #[test]
    fn json_details_never_quote_the_file() {
        let missing =
            serde_json::from_str::<std::collections::BTreeMap<String, u8>>("{\"a\": \"hunter2\"}")
                .unwrap_err();
        let detail = json_detail(&missing);
        assert!(detail.contains("wrong type (line 1"), "{detail}");
        assert!(!detail.contains("hunter2"), "{detail}");
        let syntax = serde_json::from_str::<serde_json::Value>("{hunter2").unwrap_err();
        assert!(json_detail(&syntax).starts_with("it is not JSON (line 1"));
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
