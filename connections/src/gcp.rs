//! GCP: what Secret Manager's sink and source share — which Google
//! credentials to use (given, from the environment, Application Default
//! Credentials, the metadata server), built with bounded token fetches, and
//! their failures turned into messages that say what to fix without quoting
//! a body or a key; the project and endpoint checked once ([`Connection`]),
//! the SDK client set up the one way both use it ([`Connection::configure`]),
//! and the SDK's errors mapped to the engine's taxonomy
//! ([`Connection::classify`]), a refusal naming the credentials to fix.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use google_cloud_auth::build_errors::Error as CredentialsBuildError;
use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use google_cloud_gax::client_builder::ClientBuilder;
use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::NeverRetry;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use vsync_engine::sink::{SinkError, one_line_message};
use zeroize::Zeroizing;

/// How long the first token may take when it comes from the metadata
/// server (which answers in milliseconds where it exists).
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any other token fetch may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
const METADATA_HOST: &str = "metadata.google.internal";
/// Google's public Secret Manager endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";
/// How long one Secret Manager request may take; the engine retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Secret Manager's credentials come from (for the sink and the
/// source alike).
pub enum Auth {
    /// `Bearer <token>`, marked sensitive.
    Token(HeaderValue),
    /// Google's credentials, through `google-cloud-auth`.
    Google(Source),
}

impl Auth {
    /// The credentials the builder was given: an access token before a
    /// credentials file, else Application Default Credentials as the
    /// process environment configures them (the environment
    /// `google-cloud-auth` reads when it builds them).
    pub fn choose(
        access_token: Option<Zeroizing<String>>,
        credentials_file: Option<PathBuf>,
    ) -> Result<Auth, SinkError> {
        Auth::choose_in(access_token, credentials_file, &|name| {
            std::env::var_os(name)
        })
    }

    /// [`Auth::choose`] with Application Default Credentials looked up in
    /// `var` (a variable, `None` when unset): what a report names
    /// ([`Auth::describe`], `vsync doctor`) from the environment it was
    /// given. Nothing is read from the files and nothing is sent.
    pub fn choose_in(
        access_token: Option<Zeroizing<String>>,
        credentials_file: Option<PathBuf>,
        var: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Auth, SinkError> {
        let auth = match (access_token, credentials_file) {
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
            (None, None) => Auth::Google(Source::application_default(var)?),
        };
        Ok(auth)
    }

    /// The credentials for the SDK client.
    pub fn credentials(&self) -> Result<Credentials, SinkError> {
        match self {
            Auth::Token(header) => Ok(Credentials::from(StaticToken {
                header: header.clone(),
            })),
            Auth::Google(source) => source.credentials(),
        }
    }

    /// How a refusal or a report names these credentials: the variable or
    /// file to fix, never a value.
    pub fn describe(&self) -> String {
        match self {
            // The CLI passes GOOGLE_OAUTH_ACCESS_TOKEN; nothing else gives a
            // bare token.
            Auth::Token(_) => "the access token in GOOGLE_OAUTH_ACCESS_TOKEN".to_owned(),
            Auth::Google(source) => source.describe(),
        }
    }

    /// What to do when Google refuses these credentials.
    fn fix(&self) -> &'static str {
        match self {
            Auth::Token(_) => {
                "set a fresh one (`gcloud auth print-access-token`), or unset it to use Application Default Credentials (`gcloud auth application-default login`)"
            }
            Auth::Google(source) => source.fix(),
        }
    }
}

/// One project of Secret Manager at one endpoint, with its credentials:
/// the settings the sink and the source check the same way, and the client
/// they build the same way.
pub struct Connection {
    project: String,
    endpoint: String,
    auth: Auth,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("project", &self.project)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Checks the project id and the endpoint ([`DEFAULT_ENDPOINT`] when
    /// `None`): an id that would change the request path, or an endpoint
    /// that is not `https://` (or plain `http://` to this machine), is
    /// refused before any token is sent. `project_setting` names where the
    /// project is given (`--gcp-project`, `--set project=…`).
    pub fn new(
        project: Option<&str>,
        endpoint: Option<&str>,
        auth: Auth,
        project_setting: &str,
    ) -> Result<Self, SinkError> {
        let project = project.map(str::trim).unwrap_or_default();
        if project.is_empty() {
            return Err(SinkError::Misconfigured(format!(
                "the GCP project is not set ({project_setting})"
            )));
        }
        // Project ids, numbers and domain-scoped ids (`example.com:app`):
        // nothing that ends or extends a path segment.
        if !project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b))
        {
            return Err(SinkError::Misconfigured(format!(
                "{project:?} is not a GCP project id ({project_setting})"
            )));
        }
        let endpoint = endpoint
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let host = endpoint
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default());
        if host.is_none_or(str::is_empty) {
            return Err(SinkError::Misconfigured(format!(
                "the Secret Manager endpoint {endpoint:?} is not an http:// or https:// URL"
            )));
        }
        vsync_engine::sink::require_secure_transport("the Secret Manager endpoint", &endpoint)?;
        Ok(Connection {
            project: project.to_owned(),
            endpoint,
            auth,
        })
    }

    /// `projects/<id>`, the parent of its secrets.
    pub fn parent(&self) -> String {
        format!("projects/{}", self.project)
    }

    /// `projects/<id>/secrets/<secret>`.
    pub fn secret_name(&self, secret: &str) -> String {
        format!("projects/{}/secrets/{secret}", self.project)
    }

    /// `gcp-secret-manager:project=<id>`, with `,endpoint=<url>` when it
    /// is not Google's: how the sink's target and the source's origin
    /// begin.
    pub fn describe(&self) -> String {
        if self.endpoint == DEFAULT_ENDPOINT {
            format!("gcp-secret-manager:project={}", self.project)
        } else {
            format!(
                "gcp-secret-manager:project={},endpoint={}",
                self.project, self.endpoint
            )
        }
    }

    /// The SDK's client builder set up: the endpoint, the credentials, no
    /// retries of its own (the engine retries and paces, once, for every
    /// platform) and each attempt bounded. Must run inside a tokio runtime
    /// (Google's credentials start fetching a token at once).
    pub fn configure<F>(
        &self,
        builder: ClientBuilder<F, Credentials>,
    ) -> Result<ClientBuilder<F, Credentials>, SinkError> {
        Ok(builder
            .with_endpoint(self.endpoint.clone())
            .with_credentials(self.auth.credentials()?)
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(ATTEMPT_TIMEOUT))
    }

    /// Maps an SDK error met `doing` something to `what` to the engine's
    /// taxonomy, keeping the HTTP status, Google's status name and its
    /// (sanitised) message, never a body. A 401 or 403 names the
    /// credentials in use and what to do about them.
    pub fn classify(&self, error: &GaxError, doing: &str, what: &str) -> SinkError {
        let Some(http) = error.http_status_code() else {
            if error.is_connect() || error.is_io() || error.is_timeout() || error.is_transport() {
                return SinkError::Unavailable(format!(
                    "could not reach Secret Manager {doing} {what}: {}",
                    transport_message(error)
                ));
            }
            if error.is_authentication() {
                return match credential_problem(error) {
                    Some(problem) => problem.to_sink_error(),
                    None => SinkError::Denied(format!(
                        "no usable credentials {doing} {what}: {}",
                        self.auth.describe()
                    )),
                };
            }
            if error.is_deserialization() {
                return SinkError::Rejected(format!(
                    "Secret Manager's answer {doing} {what} was not what its API returns"
                ));
            }
            return SinkError::Rejected(format!(
                "{doing} {what} failed before reaching Secret Manager"
            ));
        };
        let status = error.status();
        let detail = match status {
            Some(status) => format!(
                "Secret Manager answered {http} {} {doing} {what}: {}",
                status.code.name(),
                sanitize(&status.message)
            ),
            None => format!("Secret Manager answered {http} {doing} {what}"),
        };
        match (http, status.map(|s| s.code)) {
            (429, _) | (_, Some(Code::ResourceExhausted)) => SinkError::RateLimited {
                retry_after: retry_after(error.http_headers()),
            },
            (401, _) => SinkError::Denied(format!(
                "{detail}; {} was refused: {}",
                self.auth.describe(),
                self.auth.fix()
            )),
            (403, _) => SinkError::Denied(format!(
                "{detail}; {} lacks that permission in project {} (or cannot see the project)",
                self.auth.describe(),
                self.project
            )),
            (404, _) => SinkError::NotFound(detail),
            (409, _) => SinkError::Conflict(detail),
            (500..=599, _) => SinkError::Unavailable(detail),
            _ => SinkError::Rejected(detail),
        }
    }
}

/// The status code of an SDK error, when Google answered one.
pub fn code(error: &GaxError) -> Option<Code> {
    error.status().map(|status| status.code)
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
        one_line_message(&message)
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

/// Which Google credentials, for building them and for naming them in
/// messages.
#[derive(Debug, Clone)]
pub enum Source {
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
    /// `GOOGLE_APPLICATION_CREDENTIALS` that names no readable file. `var`
    /// reads the environment's variables.
    fn application_default(var: &dyn Fn(&str) -> Option<OsString>) -> Result<Source, SinkError> {
        if let Some(path) = var("GOOGLE_APPLICATION_CREDENTIALS") {
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
        let gcloud = gcloud_adc_path(var);
        if let Some(path) = &gcloud {
            match std::fs::metadata(path) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                // Present, or unreadable: the library reads it and fails
                // loudly, as it should.
                _ => return Ok(Source::Gcloud(path.clone())),
            }
        }
        let host = var("GCE_METADATA_HOST")
            .and_then(|host| host.into_string().ok())
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
/// `google-cloud-auth` reads), in the environment `var` reads.
fn gcloud_adc_path(var: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let (root, rest) = if cfg!(windows) {
        ("APPDATA", "gcloud/application_default_credentials.json")
    } else {
        (
            "HOME",
            ".config/gcloud/application_default_credentials.json",
        )
    };
    var(root)
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
            if let Some(gax) = cause.downcast_ref::<google_cloud_gax::error::Error>()
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
pub struct CredentialProblem {
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

    /// The problem in the engine's taxonomy: what to fix (`Misconfigured`),
    /// refused credentials (`Denied`), or a token endpoint that may answer
    /// later (`Unavailable`).
    pub fn to_sink_error(&self) -> SinkError {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn token() -> Auth {
        Auth::choose(Some(Zeroizing::new("ya29.t".to_owned())), None).unwrap()
    }

    #[test]
    fn a_connection_checks_its_project_and_endpoint() {
        let connect = |project: Option<&str>, endpoint: Option<&str>| {
            Connection::new(project, endpoint, token(), "--set project=<id>")
        };
        let google = connect(Some(" acme-prod "), None).unwrap();
        assert_eq!(google.describe(), "gcp-secret-manager:project=acme-prod");
        assert_eq!(google.secret_name("DB"), "projects/acme-prod/secrets/DB");
        let local = connect(Some("example.com:app"), Some("http://127.0.0.1:9/")).unwrap();
        assert_eq!(
            local.describe(),
            "gcp-secret-manager:project=example.com:app,endpoint=http://127.0.0.1:9"
        );
        let missing = connect(None, None).unwrap_err().to_string();
        assert!(missing.contains("--set project=<id>"), "{missing}");
        for project in ["a/b", "a?b", "a b", "a%2Fb", "a#b"] {
            assert!(connect(Some(project), None).is_err(), "{project}");
        }
        for endpoint in [
            "secretmanager.googleapis.com",
            "https://",
            "http://example.com",
        ] {
            assert!(connect(Some("p"), Some(endpoint)).is_err(), "{endpoint}");
        }
        assert_eq!(
            token().describe(),
            "the access token in GOOGLE_OAUTH_ACCESS_TOKEN"
        );
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
            vsync_engine::sink::MAX_MESSAGE_CHARS + 1
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
}
