//! GitHub Actions secrets: repository, environment and organisation
//! targets, over GitHub's REST API (`octocrab` for transport and auth).
//!
//! # Targets
//!
//! - **environment** (upstream's default: `vsync sync <env> gh` writes the
//!   secrets of the GitHub environment named after the vsync env):
//!   `/repos/{owner}/{repo}/environments/{env}/secrets`;
//! - **repository**: `/repos/{owner}/{repo}/actions/secrets`;
//! - **organisation**: `/orgs/{org}/actions/secrets`. GitHub requires a
//!   `visibility` on every write, and a `selected` secret written without
//!   its repository ids loses them, so an update first reads the secret's
//!   current visibility (and, for `selected`, its repository list) and
//!   sends them back unchanged; the configured [`Visibility`] only applies
//!   to secrets vsync creates.
//!
//! # Names
//!
//! `map_name` upper-cases the vault key: GitHub stores every secret name
//! upper-case and compares names case-insensitively, so upper-casing makes
//! the planned name the listed one, and the engine's case-folding check
//! refuses `db_pass` next to `DB_PASS` before any write. Nothing else is
//! translated (upstream's "no magic" rule): `db-pass` is refused, not
//! rewritten, as are names starting with a digit or with `GITHUB_`.
//!
//! # Values
//!
//! Every value is sealed (libsodium `crypto_box_seal`) with the target's
//! public key, fetched once per sink instance — one `vsync sync` run — and
//! shared by every write of the run. The API is write-only: listings carry
//! names and `updated_at`, never values, so `read` refuses and the engine
//! compares through its fingerprints, using `updated_at` as the revision
//! that reveals edits made elsewhere. GitHub's timestamps have one-second
//! precision, so an edit in the same second as vsync's write goes
//! unnoticed; every plan that vouches for a value by its revision says so
//! ([`Sink::drift_blind_spot`]). An empty value is stored (the API accepts
//! a sealed empty string, as `gh secret set` sends one), though a workflow
//! cannot tell it from an unset secret.
//!
//! # Errors
//!
//! Statuses map to [`SinkError`] for the engine's retry policy: 429, and 403
//! with a rate-limit message or an exhausted `x-ratelimit-remaining`, are
//! [`SinkError::RateLimited`] with GitHub's `Retry-After` or
//! `x-ratelimit-reset` (a minute when GitHub names neither, as its docs
//! advise); 5xx and transport failures are `Unavailable`; 401 and other
//! 403s `Denied`; 404 `NotFound`; other 4xx `Rejected`. Messages carry the
//! method, path, status and GitHub's `message` field, never a request body.
//! The sink neither retries nor paces: the engine does both, within
//! [`RateBudget`] seeded from GitHub's secondary limits.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_box::PublicKey;
use crypto_box::aead::OsRng;
use http::header::{ACCEPT, HeaderMap, HeaderValue, RETRY_AFTER};
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use vsync_engine::sink::{
    Alphabet, Applied, Batch, Capabilities, Change, Deletion, NameRules, RateBudget, RemoteSecret,
    SecretValue, Sink, SinkError, WriteLimit, one_line_message,
};
use zeroize::Zeroizing;

/// GitHub.com's API; GitHub Enterprise Server serves `https://HOST/api/v3`.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// GitHub's documented value limit.
const MAX_VALUE_BYTES: usize = 48 * 1024;
/// GitHub's largest `per_page`; also the default, for the fewest requests.
const MAX_PAGE_SIZE: u8 = 100;
/// How long GitHub asks a client to wait on a rate limit that names no
/// time ("wait for at least one minute before retrying").
const UNNAMED_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Which repositories may use an organisation secret vsync creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every repository of the organisation.
    All,
    /// Private and internal repositories (the default, as `gh secret set`).
    Private,
    /// Only these repository ids.
    Selected(Vec<u64>),
}

impl Visibility {
    fn as_str(&self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Private => "private",
            Visibility::Selected(_) => "selected",
        }
    }
}

#[derive(Debug, Clone)]
enum Scope {
    Repository {
        owner: String,
        repo: String,
    },
    Environment {
        owner: String,
        repo: String,
        environment: String,
    },
    Organization {
        org: String,
        visibility: Visibility,
    },
}

/// The public key a target's values are sealed with.
#[derive(Debug)]
struct SealingKey {
    id: String,
    key: PublicKey,
}

/// A [`Sink`] writing GitHub Actions secrets of one repository,
/// environment or organisation. Build it with [`GithubSink::builder`].
pub struct GithubSink {
    client: Octocrab,
    scope: Scope,
    /// The API host, for [`Sink::target`], unless it is GitHub.com.
    host: Option<String>,
    page_size: u8,
    public_key: OnceCell<SealingKey>,
    capabilities: Capabilities,
}

/// Settings for a [`GithubSink`]: a token, and exactly one of
/// [`repository`](Self::repository) (optionally with an
/// [`environment`](Self::environment)) or
/// [`organization`](Self::organization).
#[derive(Default)]
pub struct GithubSinkBuilder {
    base_url: Option<String>,
    token: Option<Zeroizing<String>>,
    repository: Option<String>,
    environment: Option<String>,
    organization: Option<String>,
    visibility: Option<Visibility>,
    page_size: Option<u8>,
}

// By hand, so the token never reaches a log through `{:?}`.
impl std::fmt::Debug for GithubSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubSinkBuilder")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("repository", &self.repository)
            .field("environment", &self.environment)
            .field("organization", &self.organization)
            .field("visibility", &self.visibility)
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl std::fmt::Debug for GithubSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubSink")
            .field("target", &self.target())
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl GithubSink {
    /// Starts the settings of a sink.
    pub fn builder() -> GithubSinkBuilder {
        GithubSinkBuilder::default()
    }
}

impl GithubSinkBuilder {
    /// The REST API root: [`DEFAULT_BASE_URL`] unless set; GitHub
    /// Enterprise Server is `https://HOST/api/v3`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The token sent as `Authorization: Bearer …` (the CLI passes
    /// `GITHUB_TOKEN` or `GH_TOKEN`): a fine-grained token with the
    /// "Secrets" (or, for organisations, "Organization secrets") write
    /// permission, or a classic token with `repo` / `admin:org`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Zeroizing::new(token.into()));
        self
    }

    /// Repository secrets of `owner/name` (upstream's `--gh-repo`).
    pub fn repository(mut self, full_name: impl Into<String>) -> Self {
        self.repository = Some(full_name.into());
        self
    }

    /// With [`repository`](Self::repository): the secrets of this
    /// deployment environment instead (upstream names it after the vsync
    /// env).
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    /// Organisation secrets of `org`.
    pub fn organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }

    /// With [`organization`](Self::organization): who may use the secrets
    /// vsync creates ([`Visibility::Private`] unless set). Existing
    /// secrets keep their own visibility.
    pub fn visibility(mut self, visibility: Visibility) -> Self {
        self.visibility = Some(visibility);
        self
    }

    /// Secrets per listed page, 1 to 100 (default 100, GitHub's maximum).
    pub fn page_size(mut self, size: u8) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Checks the settings and builds the sink. Makes no request, but must
    /// run inside a tokio runtime: the HTTP client starts its worker task
    /// there.
    pub fn build(self) -> Result<GithubSink, SinkError> {
        let misconfigured = |message: String| SinkError::Misconfigured(message);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(misconfigured(
                "GitHub: the sink must be built inside a tokio runtime".into(),
            ));
        }
        let token = self.token.ok_or_else(|| {
            misconfigured("GitHub: no token (set GITHUB_TOKEN or GH_TOKEN)".into())
        })?;
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(misconfigured(
                "GitHub: the token is empty or contains spaces or non-ASCII characters".into(),
            ));
        }
        let scope = match (self.repository, self.environment, self.organization) {
            (Some(repository), environment, None) => {
                let (owner, repo) = split_repository(&repository)?;
                if self.visibility.is_some() {
                    return Err(misconfigured(
                        "GitHub: a visibility applies to organisation secrets only".into(),
                    ));
                }
                match environment {
                    None => Scope::Repository { owner, repo },
                    Some(environment) => {
                        if environment.trim().is_empty()
                            || environment.chars().count() > 255
                            || environment.chars().any(char::is_control)
                        {
                            return Err(misconfigured(format!(
                                "GitHub: {environment:?} is not an environment name (1-255 characters, no control characters)"
                            )));
                        }
                        Scope::Environment {
                            owner,
                            repo,
                            environment,
                        }
                    }
                }
            }
            (None, None, Some(org)) => {
                if !is_slug(&org, "-") {
                    return Err(misconfigured(format!(
                        "GitHub: {org:?} is not an organisation name (letters, digits and '-')"
                    )));
                }
                Scope::Organization {
                    org,
                    visibility: self.visibility.unwrap_or(Visibility::Private),
                }
            }
            (None, Some(_), _) => {
                return Err(misconfigured(
                    "GitHub: an environment needs its repository (owner/name)".into(),
                ));
            }
            (Some(_), _, Some(_)) => {
                return Err(misconfigured(
                    "GitHub: choose a repository or an organisation, not both".into(),
                ));
            }
            (None, None, None) => {
                return Err(misconfigured(
                    "GitHub: no target; give a repository (owner/name) or an organisation".into(),
                ));
            }
        };
        let page_size = self.page_size.unwrap_or(MAX_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(misconfigured(format!(
                "GitHub: a page holds 1 to {MAX_PAGE_SIZE} secrets, not {page_size}"
            )));
        }

        let base_url = self
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL)
            .trim_end_matches('/');
        let uri: Uri = base_url
            .parse()
            .map_err(|_| misconfigured(format!("GitHub: {base_url:?} is not a URL")))?;
        let host = match (uri.scheme_str(), uri.authority()) {
            (Some("https" | "http"), Some(authority)) => authority.as_str().to_ascii_lowercase(),
            _ => {
                return Err(misconfigured(format!(
                    "GitHub: {base_url:?} is not an http(s) URL with a host (e.g. https://api.github.com or https://HOST/api/v3)"
                )));
            }
        };
        vsync_engine::sink::require_secure_transport("GitHub: the API URL", base_url)?;
        let client = Octocrab::builder()
            .base_uri(uri)
            .map_err(|error| misconfigured(format!("GitHub: the base URL: {error}")))?
            // The token was checked above: octocrab panics on a token that is
            // not a valid header value.
            .personal_token(token.as_str().to_owned())
            .add_header(ACCEPT, "application/vnd.github+json".to_owned())
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|error| misconfigured(format!("GitHub: the HTTP client: {error}")))?;
        let max_secrets = match scope {
            Scope::Organization { .. } => 1000,
            _ => 100,
        };
        Ok(GithubSink {
            client,
            scope,
            host: (host != "api.github.com").then_some(host),
            page_size,
            public_key: OnceCell::new(),
            capabilities: capabilities(max_secrets),
        })
    }
}

/// What GitHub documents: names `[A-Za-z0-9_]`, no leading digit, no
/// `GITHUB_` prefix, case-insensitive (no length limit is documented);
/// 48 KB text values; 100 secrets per repository or environment, 1,000 per
/// organisation (of which a workflow sees only the first 100 by name);
/// no labels; deletion is immediate; about 80 content-creating requests a
/// minute (and 500 an hour, which a longer sync meets as 403/429 that the
/// engine waits out) with at most 100 concurrent requests — a few in
/// flight keep the pace, and GitHub asks integrators not to run many.
fn capabilities(max_secrets: usize) -> Capabilities {
    Capabilities {
        readable: false,
        names: NameRules {
            max_len: usize::MAX,
            alphabet: Alphabet::AsciiAlphanumericAnd("_"),
            leading_digit: false,
            reserved_prefixes: &["GITHUB_"],
            case_insensitive: true,
            refuses_arn_suffix: false,
        },
        max_value_bytes: MAX_VALUE_BYTES,
        max_secrets: Some(max_secrets),
        text_only: true,
        empty_values: true,
        tags: false,
        deletion: Deletion::Immediate,
        batch: Batch::One,
        // Secondary limits: 80 content-creating requests a minute and 500
        // an hour, shared by everything the token does.
        rate: RateBudget {
            max_in_flight: 10,
            limits: const { &[WriteLimit::per_minute(80), WriteLimit::per_hour(500)] },
        },
    }
}

fn split_repository(full_name: &str) -> Result<(String, String), SinkError> {
    match full_name.split_once('/') {
        Some((owner, repo)) if is_slug(owner, "-") && is_slug(repo, "-._") => {
            Ok((owner.to_owned(), repo.to_owned()))
        }
        _ => Err(SinkError::Misconfigured(format!(
            "GitHub: {full_name:?} is not a repository; expected owner/name"
        ))),
    }
}

fn is_slug(text: &str, extra: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Percent-encodes one path segment: environment names may hold spaces and
/// other characters a URL path cannot.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct SecretList {
    total_count: usize,
    secrets: Vec<ListedSecret>,
}

#[derive(Deserialize)]
struct ListedSecret {
    name: String,
    updated_at: String,
}

#[derive(Deserialize)]
struct PublicKeyBody {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct OrgSecret {
    visibility: String,
}

#[derive(Deserialize)]
struct RepositoryList {
    total_count: usize,
    repositories: Vec<RepositoryId>,
}

#[derive(Deserialize)]
struct RepositoryId {
    id: u64,
}

#[derive(Serialize)]
struct PutSecret<'a> {
    encrypted_value: String,
    key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selected_repository_ids: Option<Vec<u64>>,
}

/// A response, read whole (GitHub's bodies here are small).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl GithubSink {
    /// The path of the target's secrets collection.
    fn secrets_path(&self) -> String {
        match &self.scope {
            Scope::Repository { owner, repo } => {
                format!(
                    "/repos/{}/{}/actions/secrets",
                    segment(owner),
                    segment(repo)
                )
            }
            Scope::Environment {
                owner,
                repo,
                environment,
            } => format!(
                "/repos/{}/{}/environments/{}/secrets",
                segment(owner),
                segment(repo),
                segment(environment)
            ),
            Scope::Organization { org, .. } => format!("/orgs/{}/actions/secrets", segment(org)),
        }
    }

    fn secret_path(&self, name: &str) -> String {
        format!("{}/{}", self.secrets_path(), segment(name))
    }

    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Answer, SinkError> {
        let sent = if method == Method::PUT {
            self.client._put(path, body).await
        } else if method == Method::DELETE {
            self.client._delete(path, body).await
        } else {
            self.client._get(path).await
        };
        let transport = |error: &dyn std::fmt::Display| {
            SinkError::Unavailable(format!("GitHub: {method} {path}: {error}"))
        };
        let response = sent.map_err(|error| transport(&error))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|error| transport(&error))?
            .to_bytes()
            .to_vec();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, SinkError> {
        let answer = self.call(Method::GET, path, None::<&()>).await?;
        if !answer.status.is_success() {
            return Err(classify("GET", path, &answer));
        }
        serde_json::from_slice(&answer.body).map_err(|error| {
            SinkError::Rejected(format!("GitHub: GET {path}: unexpected response ({error})"))
        })
    }

    /// The target's public key: fetched on first use, then shared by every
    /// write of this sink (a failed fetch is tried again by the next write).
    async fn sealing_key(&self) -> Result<&SealingKey, SinkError> {
        self.public_key
            .get_or_try_init(|| async {
                let path = format!("{}/public-key", self.secrets_path());
                let body: PublicKeyBody = self.get_json(&path).await?;
                let bytes: [u8; 32] = BASE64
                    .decode(body.key.as_bytes())
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or_else(|| {
                        SinkError::Rejected(format!(
                            "GitHub: GET {path}: the key is not a base64 32-byte X25519 public key"
                        ))
                    })?;
                Ok(SealingKey {
                    id: body.key_id,
                    key: PublicKey::from(bytes),
                })
            })
            .await
    }

    /// The visibility (and, for `selected`, the repository ids) an
    /// existing organisation secret has, so an update keeps them; `None`
    /// when the secret does not exist.
    async fn current_visibility(
        &self,
        name: &str,
    ) -> Result<Option<(String, Option<Vec<u64>>)>, SinkError> {
        let path = self.secret_path(name);
        let answer = self.call(Method::GET, &path, None::<&()>).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(classify("GET", &path, &answer));
        }
        let secret: OrgSecret = serde_json::from_slice(&answer.body).map_err(|error| {
            SinkError::Rejected(format!("GitHub: GET {path}: unexpected response ({error})"))
        })?;
        if secret.visibility != "selected" {
            return Ok(Some((secret.visibility, None)));
        }
        let mut ids = Vec::new();
        for page in 1.. {
            let listing: RepositoryList = self
                .get_json(&format!(
                    "{path}/repositories?per_page={MAX_PAGE_SIZE}&page={page}"
                ))
                .await?;
            let received = listing.repositories.len();
            ids.extend(listing.repositories.into_iter().map(|repo| repo.id));
            if received == 0 || ids.len() >= listing.total_count {
                break;
            }
        }
        Ok(Some((secret.visibility, Some(ids))))
    }

    async fn put(
        &self,
        name: &str,
        value: &SecretValue,
        exists: bool,
    ) -> Result<Applied, SinkError> {
        let key = self.sealing_key().await?;
        let sealed = key.key.seal(&mut OsRng, value.as_bytes()).map_err(|_| {
            SinkError::Rejected(format!("GitHub: {name}: the value could not be sealed"))
        })?;
        let (visibility, selected_repository_ids) = match &self.scope {
            Scope::Organization { visibility, .. } => {
                let existing = if exists {
                    self.current_visibility(name).await?
                } else {
                    None
                };
                match existing {
                    Some((current, ids)) => (Some(current), ids),
                    None => (
                        Some(visibility.as_str().to_owned()),
                        match visibility {
                            Visibility::Selected(ids) => Some(ids.clone()),
                            _ => None,
                        },
                    ),
                }
            }
            _ => (None, None),
        };
        let body = PutSecret {
            encrypted_value: BASE64.encode(sealed),
            key_id: &key.id,
            visibility: visibility.as_deref(),
            selected_repository_ids,
        };
        let path = self.secret_path(name);
        let answer = self.call(Method::PUT, &path, Some(&body)).await?;
        if answer.status.is_success() {
            // 201 (created) or 204 (updated), without a body: the engine
            // lists the target again for the new `updated_at`.
            Ok(Applied::default())
        } else {
            Err(classify("PUT", &path, &answer))
        }
    }

    async fn delete(&self, name: &str) -> Result<Applied, SinkError> {
        let path = self.secret_path(name);
        let answer = self.call(Method::DELETE, &path, None::<&()>).await?;
        // GitHub answers 404 for a secret that is already gone: the name is
        // absent either way. (A missing repository or a token without
        // access fails the inventory before any delete is planned.)
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            Ok(Applied::default())
        } else {
            Err(classify("DELETE", &path, &answer))
        }
    }
}

/// Maps a failed response to the engine's error taxonomy. Only the status,
/// the rate-limit headers and GitHub's `message` field are used: a body
/// may echo the request, and nothing else is needed.
fn classify(method: &str, path: &str, answer: &Answer) -> SinkError {
    let message = github_message(&answer.body);
    let status = answer.status;
    let text = match &message {
        Some(message) => format!("GitHub: {method} {path}: {status}: {message}"),
        None => format!("GitHub: {method} {path}: {status}"),
    };
    let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (answer.headers.contains_key(RETRY_AFTER)
                || header_u64(&answer.headers, "x-ratelimit-remaining") == Some(0)
                || message
                    .as_deref()
                    .is_some_and(|message| message.to_ascii_lowercase().contains("rate limit"))));
    if rate_limited {
        return SinkError::RateLimited {
            retry_after: Some(rate_limit_wait(&answer.headers)),
        };
    }
    match status.as_u16() {
        401 | 403 => SinkError::Denied(text),
        404 => SinkError::NotFound(text),
        409 => SinkError::Conflict(text),
        500..=599 => SinkError::Unavailable(text),
        _ => SinkError::Rejected(text),
    }
}

/// GitHub's documented order: `Retry-After` seconds; else, with
/// `x-ratelimit-remaining: 0`, until `x-ratelimit-reset` (Unix seconds);
/// else at least a minute.
fn rate_limit_wait(headers: &HeaderMap) -> Duration {
    if let Some(seconds) = header_u64(headers, RETRY_AFTER.as_str()) {
        return Duration::from_secs(seconds);
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0)
        && let Some(reset) = header_u64(headers, "x-ratelimit-reset")
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        return Duration::from_secs(reset.saturating_sub(now).max(1));
    }
    UNNAMED_RATE_LIMIT_WAIT
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|value: &HeaderValue| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// GitHub's `message`, on one line and bounded.
fn github_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    let message = serde_json::from_slice::<ErrorBody>(body).ok()?.message?;
    let one_line = one_line_message(&message);
    (!one_line.is_empty()).then_some(one_line)
}

#[async_trait::async_trait]
impl Sink for GithubSink {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn drift_blind_spot(&self) -> Option<&'static str> {
        Some(
            "GitHub records when a secret changed to the second: an edit made on GitHub in the same second as vsync's last write to it does not show as drift",
        )
    }

    /// `github-actions:[host=HOST,]repo=owner/name[,environment=env]` or
    /// `github-actions:[host=HOST,]org=org`, lower-cased because GitHub
    /// matches these names case-insensitively.
    fn target(&self) -> String {
        let host = self
            .host
            .as_ref()
            .map(|host| format!("host={host},"))
            .unwrap_or_default();
        let place = match &self.scope {
            Scope::Repository { owner, repo } => format!("repo={owner}/{repo}"),
            Scope::Environment {
                owner,
                repo,
                environment,
            } => format!("repo={owner}/{repo},environment={environment}"),
            Scope::Organization { org, .. } => format!("org={org}"),
        };
        format!("github-actions:{host}{}", place.to_lowercase())
    }

    fn map_name(&self, key: &str) -> String {
        key.to_ascii_uppercase()
    }

    async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for page in 1.. {
            let path = format!(
                "{}?per_page={}&page={page}",
                self.secrets_path(),
                self.page_size
            );
            let listing: SecretList = self.get_json(&path).await?;
            let mut new = 0;
            for secret in listing.secrets {
                // A secret created while paging shifts the pages; list it once.
                if seen.insert(secret.name.clone()) {
                    new += 1;
                    found.push(RemoteSecret {
                        name: secret.name,
                        revision: Some(secret.updated_at),
                        managed: None,
                        value: None,
                    });
                }
            }
            if new == 0 || found.len() >= listing.total_count {
                break;
            }
        }
        Ok(found)
    }

    async fn read(&self, _name: &str) -> Result<Option<SecretValue>, SinkError> {
        Err(SinkError::Rejected(
            "GitHub Actions secrets are write-only: the API never returns a value".into(),
        ))
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

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_the_engines_taxonomy() {
        let denied = classify(
            "GET",
            "/x",
            &answer(401, &[], r#"{"message":"Bad credentials"}"#),
        );
        assert!(matches!(&denied, SinkError::Denied(m) if m.contains("Bad credentials")));
        let forbidden = answer(
            403,
            &[],
            r#"{"message":"Resource not accessible by integration"}"#,
        );
        assert!(matches!(
            classify("PUT", "/x", &forbidden),
            SinkError::Denied(_)
        ));
        let secondary = answer(
            403,
            &[],
            r#"{"message":"You have exceeded a secondary rate limit."}"#,
        );
        assert!(matches!(
            classify("PUT", "/x", &secondary),
            SinkError::RateLimited { retry_after: Some(wait) } if wait == UNNAMED_RATE_LIMIT_WAIT
        ));
        let throttled = answer(429, &[("retry-after", "7")], "");
        assert!(matches!(
            classify("PUT", "/x", &throttled),
            SinkError::RateLimited { retry_after: Some(wait) } if wait == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify("GET", "/x", &answer(404, &[], "")),
            SinkError::NotFound(_)
        ));
        assert!(matches!(
            classify("PUT", "/x", &answer(422, &[], "{}")),
            SinkError::Rejected(_)
        ));
        assert!(matches!(
            classify("PUT", "/x", &answer(502, &[], "<html>")),
            SinkError::Unavailable(_)
        ));
    }

    #[test]
    fn an_exhausted_primary_limit_waits_until_the_reset() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reset = (now + 120).to_string();
        let exhausted = answer(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
            r#"{"message":"API rate limit exceeded"}"#,
        );
        match classify("GET", "/x", &exhausted) {
            SinkError::RateLimited {
                retry_after: Some(wait),
            } => {
                assert!((110..=120).contains(&wait.as_secs()), "{wait:?}");
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
    }

    #[test]
    fn errors_keep_githubs_message_only() {
        let body = r#"{"message":"Invalid request.\n\n\"key_id\" wasn't supplied.","errors":["echo: hunter2"]}"#;
        let error = classify(
            "PUT",
            "/repos/a/b/actions/secrets/X",
            &answer(422, &[], body),
        );
        let text = error.to_string();
        assert!(
            text.contains("Invalid request. \"key_id\" wasn't supplied."),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn debug_output_never_shows_the_token() {
        let builder = GithubSink::builder()
            .token("ghp_SuperSecretToken")
            .repository("acme/api");
        assert!(!format!("{builder:?}").contains("SuperSecret"));
        let sink = builder.build().unwrap();
        let shown = format!("{sink:?}");
        assert!(!shown.contains("SuperSecret"), "{shown}");
        assert!(shown.contains("repo=acme/api"), "{shown}");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("prod"), "prod");
        assert_eq!(segment("my env/β"), "my%20env%2F%CE%B2");
    }
}
