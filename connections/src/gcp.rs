//! GCP: the credentials Secret Manager's sink and source share — which
//! Google credentials to use (given, from the environment, Application
//! Default Credentials, the metadata server), built with bounded token
//! fetches, and their failures turned into messages that say what to fix
//! without quoting a body or a key.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use google_cloud_auth::build_errors::Error as CredentialsBuildError;
use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use vsync_engine::sink::{SinkError, one_line_message};
use zeroize::Zeroizing;

/// How long the first token may take when it comes from the metadata
/// server (which answers in milliseconds where it exists).
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any other token fetch may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
const METADATA_HOST: &str = "metadata.google.internal";
/// Where the sink's credentials come from.
pub enum Auth {
    /// `Bearer <token>`, marked sensitive.
    Token(HeaderValue),
    /// Google's credentials, through `google-cloud-auth`.
    Google(Source),
}

impl Auth {
    /// The credentials the builder was given: an access token before a
    /// credentials file, else Application Default Credentials.
    pub fn choose(
        access_token: Option<Zeroizing<String>>,
        credentials_file: Option<PathBuf>,
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
            (None, None) => Auth::Google(Source::application_default()?),
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
