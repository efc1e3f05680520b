//! A protocol-faithful fake of GitHub's REST API for Actions secrets.
//!
//! No GitHub server installs on a development machine, so the sink is
//! tested against this fake. It is only worth something if it is as strict
//! as GitHub where the sink could go wrong, so it:
//!
//! - holds a real X25519 key pair per target (repository, environment,
//!   organisation), serves it at `…/secrets/public-key`, and **opens every
//!   sealed box** with the secret key: a value the sink sealed wrongly never
//!   reaches the store, and a test reads back the plaintext GitHub would
//!   hand a workflow;
//! - refuses what GitHub refuses, with GitHub's status codes: a missing or
//!   wrong token (401), a token without write access (403), no
//!   `User-Agent` (403), an unknown repository, environment, organisation
//!   or secret (404), a `key_id` that is not the target's current key, an
//!   invalid name, an oversized value, a missing or invalid organisation
//!   `visibility`, a 101st repository secret (422), malformed JSON (400);
//! - stores names upper-case (GitHub folds case) and sets `updated_at` on
//!   every write to the second it happened, GitHub's precision: two writes
//!   in one second share a revision. Tests move the fake's clock on
//!   ([`GithubFake::advance_clock`]) or stop it ([`GithubFake::freeze_clock`])
//!   instead of sleeping;
//! - pages lists with GitHub's `per_page` (default 30, at most 100) and
//!   `page` parameters, `total_count`, and a `Link` header;
//! - clears the repository list of a `selected`-visibility organisation
//!   secret that is updated without `selected_repository_ids`, as GitHub
//!   does — the trap the sink must avoid;
//! - serves [`Faults`] on every listing page, public-key fetch, create,
//!   update and delete (a secondary rate limit, 403 with or without
//!   `Retry-After`; a 502; a 422 for a broken name), and can answer the next
//!   requests with a secondary rate limit (403), an exhausted primary rate
//!   limit (403, `x-ratelimit-remaining: 0`) or a server error (502);
//! - counts requests by kind, for the benchmark and the "one public-key
//!   fetch per sync" test;
//! - serves the API at the root, as GitHub.com does, and under `/api/v3`,
//!   as GitHub Enterprise Server does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_box::SecretKey;
use crypto_box::aead::OsRng;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::HarnessError;
use crate::faults::{Call, Fault, Faults};

/// The REST API version the fake serves (and GitHub's current one).
pub const GITHUB_API_VERSION: &str = "2022-11-28";

/// GitHub's value limit: 48 KB of plaintext.
const MAX_VALUE_BYTES: usize = 48 * 1024;
/// Secrets per repository or environment; organisations hold 1,000.
const MAX_REPO_SECRETS: usize = 100;
const MAX_ORG_SECRETS: usize = 1000;

/// Where a secret lives on GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GithubScope {
    /// Repository secrets of `owner/name`.
    Repository(String),
    /// Secrets of an environment (`owner/name`, environment).
    Environment(String, String),
    /// Organisation secrets.
    Organization(String),
}

impl GithubScope {
    /// GitHub matches owner, repository, environment and organisation
    /// names case-insensitively.
    fn normalized(&self) -> GithubScope {
        match self {
            GithubScope::Repository(repo) => GithubScope::Repository(repo.to_lowercase()),
            GithubScope::Environment(repo, env) => {
                GithubScope::Environment(repo.to_lowercase(), env.to_lowercase())
            }
            GithubScope::Organization(org) => GithubScope::Organization(org.to_lowercase()),
        }
    }

    fn is_org(&self) -> bool {
        matches!(self, GithubScope::Organization(_))
    }

    fn max_secrets(&self) -> usize {
        if self.is_org() {
            MAX_ORG_SECRETS
        } else {
            MAX_REPO_SECRETS
        }
    }
}

/// Requests the fake received (after authentication), by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `GET …/secrets/public-key`.
    pub public_key: usize,
    /// `GET …/secrets` (one per page).
    pub lists: usize,
    /// `GET …/secrets/{name}` and `…/secrets/{name}/repositories`.
    pub reads: usize,
    /// `PUT …/secrets/{name}` (creates and updates, refused ones included).
    pub puts: usize,
    /// `DELETE …/secrets/{name}`.
    pub deletes: usize,
    /// Requests without an `X-GitHub-Api-Version` header.
    pub unversioned: usize,
    /// Requests under GitHub Enterprise Server's `/api/v3` prefix.
    pub enterprise_paths: usize,
}

impl RequestCounts {
    /// Every routed request: key fetches, lists, reads, puts and deletes.
    pub fn total(&self) -> usize {
        self.public_key + self.lists + self.reads + self.puts + self.deletes
    }
}

/// A failure the fake answers instead of the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFailure {
    /// 403 with GitHub's "secondary rate limit" message and no
    /// `Retry-After`, as GitHub sometimes sends it.
    SecondaryRateLimit,
    /// 403 with `x-ratelimit-remaining: 0` and a reset 30 s ahead: the
    /// hourly primary limit is used up.
    PrimaryRateLimit,
    /// 502, as GitHub's front answers when a backend times out.
    ServerError,
}

/// The fake GitHub API, served on `127.0.0.1` with a random port inside
/// the caller's tokio runtime; stopped when dropped.
#[derive(Debug)]
pub struct GithubFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    token: String,
    read_only_token: String,
    faults: Faults,
    counts: Counters,
    injected: Mutex<VecDeque<InjectedFailure>>,
    data: Mutex<Data>,
    /// Secret writes still served before the rest are held
    /// ([`GithubFake::hold_writes_after`]); `None`: none held.
    hold_after: Mutex<Option<usize>>,
    /// Secret writes held so far.
    held: AtomicUsize,
}

#[derive(Debug, Default)]
struct Counters {
    public_key: AtomicUsize,
    lists: AtomicUsize,
    reads: AtomicUsize,
    puts: AtomicUsize,
    deletes: AtomicUsize,
    unversioned: AtomicUsize,
    enterprise_paths: AtomicUsize,
}

#[derive(Debug, Default)]
struct Data {
    /// Seconds added to the wall clock ([`GithubFake::advance_clock`]).
    clock_offset: u64,
    /// The second every write gets while the clock is frozen.
    frozen_at: Option<u64>,
    /// Key ids handed out so far.
    keys_issued: u64,
    /// Repository ids by lower-case `owner/name`.
    repositories: HashMap<String, u64>,
    /// Organisations (lower-case) that exist.
    organizations: Vec<String>,
    targets: HashMap<GithubScope, Target>,
}

struct Target {
    key: SecretKey,
    key_id: String,
    secrets: BTreeMap<String, Stored>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("key_id", &self.key_id)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

struct Stored {
    value: Zeroizing<Vec<u8>>,
    created_at: u64,
    updated_at: u64,
    /// Organisation secrets only: `all`, `private` or `selected`.
    visibility: Option<String>,
    selected: Vec<u64>,
}

impl GithubFake {
    /// The token every request must carry (`Authorization: Bearer …`).
    pub const TOKEN: &'static str = "ghp_vsyncFakeToken0000000000000000000000";
    /// A token that may read but not write (GitHub answers 403).
    pub const READ_ONLY_TOKEN: &'static str = "ghp_vsyncFakeReadOnly00000000000000000000";

    /// Starts the fake with organisation `acme`, its repositories
    /// `acme/api` and `acme/web`, and environments `dev` and `prod` on
    /// `acme/api`.
    pub async fn start() -> Result<Self, HarnessError> {
        let shared = Arc::new(Shared {
            token: Self::TOKEN.to_owned(),
            read_only_token: Self::READ_ONLY_TOKEN.to_owned(),
            faults: Faults::default(),
            counts: Counters::default(),
            injected: Mutex::new(VecDeque::new()),
            data: Mutex::new(Data::default()),
            hold_after: Mutex::new(None),
            held: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| HarnessError::io("binding the GitHub fake", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the GitHub fake's address", e))?;
        // Without it Nagle's algorithm holds small responses back for a
        // delayed ACK, which would dominate the benchmark.
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let fake = GithubFake { addr, shared, task };
        fake.add_organization("acme");
        fake.add_repository("acme/api");
        fake.add_repository("acme/web");
        fake.add_environment("acme/api", "dev");
        fake.add_environment("acme/api", "prod");
        Ok(fake)
    }

    /// The API base URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates an organisation (with no secrets).
    pub fn add_organization(&self, org: &str) {
        let mut data = self.data();
        data.organizations.push(org.to_lowercase());
        let scope = GithubScope::Organization(org.to_owned());
        data.add_target(&scope);
    }

    /// Creates repository `owner/name` and answers its id.
    pub fn add_repository(&self, full_name: &str) -> u64 {
        let mut data = self.data();
        let id = 1_296_269 + data.repositories.len() as u64;
        data.repositories.insert(full_name.to_lowercase(), id);
        data.add_target(&GithubScope::Repository(full_name.to_owned()));
        id
    }

    /// Creates environment `env` on repository `owner/name`.
    pub fn add_environment(&self, full_name: &str, env: &str) {
        self.data().add_target(&GithubScope::Environment(
            full_name.to_owned(),
            env.to_owned(),
        ));
    }

    /// The id of repository `owner/name`.
    pub fn repository_id(&self, full_name: &str) -> Option<u64> {
        self.data()
            .repositories
            .get(&full_name.to_lowercase())
            .copied()
    }

    /// The plaintext GitHub would hand a workflow for `name`, if it exists.
    pub fn value(&self, scope: &GithubScope, name: &str) -> Option<Zeroizing<String>> {
        let data = self.data();
        let stored = data
            .target(scope)?
            .secrets
            .get(&name.to_ascii_uppercase())?;
        Some(Zeroizing::new(
            String::from_utf8_lossy(&stored.value).into_owned(),
        ))
    }

    /// Every secret name at `scope`, as GitHub lists them (upper-case).
    pub fn names(&self, scope: &GithubScope) -> Vec<String> {
        self.data()
            .target(scope)
            .map(|target| target.secrets.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The `updated_at` GitHub lists for `name`.
    pub fn updated_at(&self, scope: &GithubScope, name: &str) -> Option<String> {
        let data = self.data();
        let stored = data
            .target(scope)?
            .secrets
            .get(&name.to_ascii_uppercase())?;
        Some(iso8601(stored.updated_at))
    }

    /// Moves the fake's clock `seconds` on (and unfreezes it): the next
    /// write happens that much later, as an edit made by a person would.
    pub fn advance_clock(&self, seconds: u64) {
        let mut data = self.data();
        let later = data.tick() + seconds;
        data.frozen_at = None;
        data.clock_offset = data
            .clock_offset
            .max(later.saturating_sub(wall_clock_seconds()));
    }

    /// Stops the fake's clock at the current second: every write from now
    /// on (until [`GithubFake::advance_clock`]) lands in that one second.
    pub fn freeze_clock(&self) {
        let mut data = self.data();
        let now = data.tick();
        data.frozen_at = Some(now);
    }

    /// Writes `name` the way a person in GitHub's settings page would: not
    /// through the API (no fault, no count), moving `updated_at`. A new
    /// organisation secret gets `private` visibility, the page's default.
    pub fn edit_outside(&self, scope: &GithubScope, name: &str, value: &str) {
        let mut data = self.data();
        let now = data.tick();
        let org = scope.is_org();
        let target = data.target_mut(scope).expect("the fake holds the scope");
        target
            .secrets
            .entry(name.to_ascii_uppercase())
            .and_modify(|stored| {
                stored.value = Zeroizing::new(value.as_bytes().to_vec());
                stored.updated_at = now;
            })
            .or_insert_with(|| Stored {
                value: Zeroizing::new(value.as_bytes().to_vec()),
                created_at: now,
                updated_at: now,
                visibility: org.then(|| "private".to_owned()),
                selected: Vec::new(),
            });
    }

    /// Gives organisation secret `name` the `selected` visibility with
    /// these repositories, as the settings page does.
    pub fn select_repositories(&self, org: &str, name: &str, repository_ids: &[u64]) {
        let mut data = self.data();
        let target = data
            .target_mut(&GithubScope::Organization(org.to_owned()))
            .expect("the fake holds the organisation");
        let stored = target
            .secrets
            .get_mut(&name.to_ascii_uppercase())
            .expect("the secret exists");
        stored.visibility = Some("selected".to_owned());
        stored.selected = repository_ids.to_vec();
    }

    /// An organisation secret's visibility and selected repository ids.
    pub fn visibility(&self, org: &str, name: &str) -> Option<(String, Vec<u64>)> {
        let data = self.data();
        let stored = data
            .target(&GithubScope::Organization(org.to_owned()))?
            .secrets
            .get(&name.to_ascii_uppercase())?;
        Some((stored.visibility.clone()?, stored.selected.clone()))
    }

    /// Replaces the target's key pair, as GitHub does when it rotates keys:
    /// boxes sealed for the previous `key_id` are refused from now on.
    pub fn rotate_key(&self, scope: &GithubScope) {
        let mut data = self.data();
        let key_id = data.next_key_id();
        let target = data.target_mut(scope).expect("the fake holds the scope");
        target.key = SecretKey::generate(&mut OsRng);
        target.key_id = key_id;
    }

    /// The fault injection and write counter the sink suite drives.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Answers the next `count` authenticated requests with `failure`.
    pub fn fail_next_requests(&self, failure: InjectedFailure, count: usize) {
        let mut injected = lock(&self.shared.injected);
        injected.extend(std::iter::repeat_n(failure, count));
    }

    /// Serves `served` more secret writes (creates and updates), then
    /// holds every later one: never answered, never applied — a process
    /// killed mid-apply leaves such requests behind. Held ones stay held;
    /// [`GithubFake::stop_holding`] serves the writes that come after it.
    pub fn hold_writes_after(&self, served: usize) {
        *lock(&self.shared.hold_after) = Some(served);
    }

    /// Serves every secret write from now on.
    pub fn stop_holding(&self) {
        *lock(&self.shared.hold_after) = None;
    }

    /// Secret writes held so far.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Requests received so far, by kind.
    pub fn counts(&self) -> RequestCounts {
        let counts = &self.shared.counts;
        let load = |counter: &AtomicUsize| counter.load(Ordering::SeqCst);
        RequestCounts {
            public_key: load(&counts.public_key),
            lists: load(&counts.lists),
            reads: load(&counts.reads),
            puts: load(&counts.puts),
            deletes: load(&counts.deletes),
            unversioned: load(&counts.unversioned),
            enterprise_paths: load(&counts.enterprise_paths),
        }
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.shared.data)
    }
}

impl Drop for GithubFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Data {
    fn add_target(&mut self, scope: &GithubScope) {
        let key_id = self.next_key_id();
        self.targets
            .entry(scope.normalized())
            .or_insert_with(|| Target {
                key: SecretKey::generate(&mut OsRng),
                key_id,
                secrets: BTreeMap::new(),
            });
    }

    fn next_key_id(&mut self) -> String {
        self.keys_issued += 1;
        // GitHub's key ids are long decimal strings.
        (568_250_167_242_549_743 + self.keys_issued).to_string()
    }

    fn target(&self, scope: &GithubScope) -> Option<&Target> {
        self.targets.get(&scope.normalized())
    }

    fn target_mut(&mut self, scope: &GithubScope) -> Option<&mut Target> {
        self.targets.get_mut(&scope.normalized())
    }

    /// The `updated_at` of a write now: the fake's clock, in whole
    /// seconds as GitHub records them.
    fn tick(&mut self) -> u64 {
        self.frozen_at
            .unwrap_or_else(|| wall_clock_seconds() + self.clock_offset)
    }
}

fn wall_clock_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

// ---- the HTTP side --------------------------------------------------------

/// One request, routed by hand so every path GitHub does not serve gets
/// GitHub's 404 body, and authentication, version checks and injected
/// failures run first for every route.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = header_refusal(&shared, &headers) {
        return refusal;
    }
    let injected = lock(&shared.injected).pop_front();
    if let Some(failure) = injected {
        return injected_response(failure);
    }
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let mut segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    // GitHub Enterprise Server serves the same API under `/api/v3`.
    if segments.starts_with(&["api", "v3"]) {
        segments.drain(..2);
        shared
            .counts
            .enterprise_paths
            .fetch_add(1, Ordering::SeqCst);
    }
    let (scope, rest) = match segments.as_slice() {
        ["repos", owner, repo, "actions", "secrets", rest @ ..] => {
            (GithubScope::Repository(format!("{owner}/{repo}")), rest)
        }
        [
            "repos",
            owner,
            repo,
            "environments",
            env,
            "secrets",
            rest @ ..,
        ] => (
            GithubScope::Environment(format!("{owner}/{repo}"), (*env).to_owned()),
            rest,
        ),
        ["orgs", org, "actions", "secrets", rest @ ..] => {
            (GithubScope::Organization((*org).to_owned()), rest)
        }
        _ => return not_found(),
    };
    let query = Paging::parse(uri.query());
    let counts = &shared.counts;
    match (&method, rest) {
        (&Method::GET, []) => {
            counts.lists.fetch_add(1, Ordering::SeqCst);
            match shared.faults.on_call(Call::List) {
                Some(fault) => fault_response(fault, "the list could not be read."),
                None => list(&shared, &scope, &query, uri.path()),
            }
        }
        (&Method::GET, ["public-key"]) => {
            counts.public_key.fetch_add(1, Ordering::SeqCst);
            match shared.faults.on_call(Call::Read) {
                Some(fault) => fault_response(fault, "the key could not be read."),
                None => public_key(&shared, &scope),
            }
        }
        (&Method::GET, [name]) => {
            counts.reads.fetch_add(1, Ordering::SeqCst);
            get_secret(&shared, &scope, name)
        }
        (&Method::GET, [name, "repositories"]) if scope.is_org() => {
            counts.reads.fetch_add(1, Ordering::SeqCst);
            selected_repositories(&shared, &scope, name, &query, uri.path())
        }
        (&Method::PUT, [name]) => {
            counts.puts.fetch_add(1, Ordering::SeqCst);
            if let Some(refusal) = write_refusal(&shared, &headers) {
                return refusal;
            }
            let hold = match &mut *lock(&shared.hold_after) {
                Some(0) => true,
                Some(served) => {
                    *served -= 1;
                    false
                }
                None => false,
            };
            if hold {
                shared.held.fetch_add(1, Ordering::SeqCst);
                return std::future::pending().await;
            }
            put_secret(&shared, &scope, name, &body)
        }
        (&Method::DELETE, [name]) => {
            counts.deletes.fetch_add(1, Ordering::SeqCst);
            if let Some(refusal) = write_refusal(&shared, &headers) {
                return refusal;
            }
            delete_secret(&shared, &scope, name)
        }
        _ => not_found(),
    }
}

/// GitHub's answer to a request without a `User-Agent`, with an unknown
/// API version, or without valid credentials; `None` to serve it.
fn header_refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    if !headers.contains_key(header::USER_AGENT) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        ));
    }
    match headers.get("x-github-api-version") {
        None => {
            shared.counts.unversioned.fetch_add(1, Ordering::SeqCst);
        }
        Some(version) if version.as_bytes() == GITHUB_API_VERSION.as_bytes() => {}
        Some(version) => {
            return Some(error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Unsupported 'X-GitHub-Api-Version' header: {}",
                    String::from_utf8_lossy(version.as_bytes())
                ),
            ));
        }
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("token "))
        });
    match presented {
        None => Some(error(StatusCode::UNAUTHORIZED, "Requires authentication")),
        Some(token) if token == shared.token || token == shared.read_only_token => None,
        Some(_) => Some(error(StatusCode::UNAUTHORIZED, "Bad credentials")),
    }
}

/// GitHub's answer to a write with a read-only token; `None` to serve it.
fn write_refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let read_only = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.ends_with(&shared.read_only_token));
    read_only.then(|| {
        error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        )
    })
}

fn injected_response(failure: InjectedFailure) -> Response {
    match failure {
        InjectedFailure::SecondaryRateLimit => {
            fault_response(Fault::Throttle { retry_after: false }, "")
        }
        InjectedFailure::PrimaryRateLimit => {
            let reset = wall_clock_seconds() + 30;
            let mut response = error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 1.",
            );
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
            response
        }
        InjectedFailure::ServerError => fault_response(Fault::Unavailable, ""),
    }
}

/// A [`Fault`] answered the way GitHub does: its secondary rate limit (403,
/// with `Retry-After` only when the fault asks — GitHub sends it sometimes),
/// its front's 502, or a 422 refusing the write with `refused`.
fn fault_response(fault: Fault, refused: &str) -> Response {
    match fault {
        Fault::Throttle { retry_after } => {
            let mut response = error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            if retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
        Fault::Unavailable => error(StatusCode::BAD_GATEWAY, "Server Error"),
        Fault::Break => unprocessable(refused),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest/actions/secrets",
            "status": status.as_u16().to_string(),
        })
        .to_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

fn unprocessable(message: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Invalid request.\n\n{message}"),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// GitHub's `per_page` (default 30, capped at 100) and `page` (from 1).
struct Paging {
    per_page: usize,
    page: usize,
}

impl Paging {
    fn parse(query: Option<&str>) -> Self {
        let mut paging = Paging {
            per_page: 30,
            page: 1,
        };
        for pair in query.unwrap_or_default().split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let Ok(number) = value.parse::<usize>() else {
                continue;
            };
            match key {
                "per_page" if number > 0 => paging.per_page = number.min(100),
                "page" if number > 0 => paging.page = number,
                _ => {}
            }
        }
        paging
    }

    /// The items of this page, and the `Link` header pointing at the next
    /// and last pages.
    fn slice<'a, T>(&self, items: &'a [T], path: &str) -> (&'a [T], Option<String>) {
        let start = (self.page - 1)
            .saturating_mul(self.per_page)
            .min(items.len());
        let end = start.saturating_add(self.per_page).min(items.len());
        let last = items.len().div_ceil(self.per_page).max(1);
        let link = |page: usize, rel: &str| {
            format!(
                "<{path}?per_page={}&page={page}>; rel=\"{rel}\"",
                self.per_page
            )
        };
        let mut links = Vec::new();
        if self.page < last {
            links.push(link(self.page + 1, "next"));
            links.push(link(last, "last"));
        }
        if self.page > 1 {
            links.push(link(1, "first"));
            links.push(link((self.page - 1).min(last), "prev"));
        }
        let header = (!links.is_empty()).then(|| links.join(", "));
        (&items[start..end], header)
    }
}

fn with_link(mut response: Response, link: Option<String>) -> Response {
    if let Some(link) = link.and_then(|link| HeaderValue::from_str(&link).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

fn secret_json(scope: &GithubScope, name: &str, stored: &Stored) -> Value {
    let mut secret = json!({
        "name": name,
        "created_at": iso8601(stored.created_at),
        "updated_at": iso8601(stored.updated_at),
    });
    if let (GithubScope::Organization(org), Some(visibility)) = (scope, &stored.visibility) {
        secret["visibility"] = json!(visibility);
        if visibility == "selected" {
            secret["selected_repositories_url"] = json!(format!(
                "https://api.github.com/orgs/{org}/actions/secrets/{name}/repositories"
            ));
        }
    }
    secret
}

fn list(shared: &Shared, scope: &GithubScope, paging: &Paging, path: &str) -> Response {
    let data = lock(&shared.data);
    let Some(target) = data.target(scope) else {
        return not_found();
    };
    let all: Vec<Value> = target
        .secrets
        .iter()
        .map(|(name, stored)| secret_json(scope, name, stored))
        .collect();
    let (page, link) = paging.slice(&all, path);
    with_link(
        json_response(
            StatusCode::OK,
            &json!({ "total_count": all.len(), "secrets": page }),
        ),
        link,
    )
}

fn public_key(shared: &Shared, scope: &GithubScope) -> Response {
    let data = lock(&shared.data);
    let Some(target) = data.target(scope) else {
        return not_found();
    };
    json_response(
        StatusCode::OK,
        &json!({
            "key_id": target.key_id,
            "key": BASE64.encode(target.key.public_key().as_bytes()),
        }),
    )
}

fn get_secret(shared: &Shared, scope: &GithubScope, name: &str) -> Response {
    let data = lock(&shared.data);
    let Some(target) = data.target(scope) else {
        return not_found();
    };
    let upper = name.to_ascii_uppercase();
    match target.secrets.get(&upper) {
        Some(stored) => json_response(StatusCode::OK, &secret_json(scope, &upper, stored)),
        None => not_found(),
    }
}

fn selected_repositories(
    shared: &Shared,
    scope: &GithubScope,
    name: &str,
    paging: &Paging,
    path: &str,
) -> Response {
    let data = lock(&shared.data);
    let Some(stored) = data
        .target(scope)
        .and_then(|target| target.secrets.get(&name.to_ascii_uppercase()))
    else {
        return not_found();
    };
    if stored.visibility.as_deref() != Some("selected") {
        return error(
            StatusCode::CONFLICT,
            "The visibility of this secret is not set to 'selected'.",
        );
    }
    let repositories: Vec<Value> = stored
        .selected
        .iter()
        .map(|id| {
            let full_name = data
                .repositories
                .iter()
                .find(|(_, repo_id)| *repo_id == id)
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            json!({ "id": id, "full_name": full_name })
        })
        .collect();
    let (page, link) = paging.slice(&repositories, path);
    with_link(
        json_response(
            StatusCode::OK,
            &json!({ "total_count": repositories.len(), "repositories": page }),
        ),
        link,
    )
}

#[derive(Deserialize)]
struct PutBody {
    encrypted_value: Option<String>,
    key_id: Option<String>,
    visibility: Option<String>,
    selected_repository_ids: Option<Vec<u64>>,
}

/// GitHub's name rules: `[A-Za-z0-9_]`, not starting with a digit, not
/// starting with `GITHUB_`.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Some(
            "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_). Spaces are not allowed.",
        );
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Some("Secret names must not start with a number.");
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Some("Secret names must not start with the GITHUB_ prefix.");
    }
    None
}

fn put_secret(shared: &Shared, scope: &GithubScope, name: &str, body: &[u8]) -> Response {
    let mut data = lock(&shared.data);
    if data.target(scope).is_none() {
        return not_found();
    }
    if let Some(problem) = name_problem(name) {
        return unprocessable(problem);
    }
    let Ok(request) = serde_json::from_slice::<PutBody>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(key_id) = request.key_id else {
        return unprocessable("\"key_id\" wasn't supplied.");
    };
    let Some(encrypted) = request.encrypted_value else {
        return unprocessable("\"encrypted_value\" wasn't supplied.");
    };
    let visibility = if scope.is_org() {
        match request.visibility.as_deref() {
            None => return unprocessable("\"visibility\" wasn't supplied."),
            Some(visibility @ ("all" | "private" | "selected")) => Some(visibility.to_owned()),
            Some(_) => {
                return unprocessable("visibility must be one of: all, private, selected.");
            }
        }
    } else {
        None
    };
    let selected = request.selected_repository_ids.unwrap_or_default();
    if !selected.is_empty() && visibility.as_deref() != Some("selected") {
        return unprocessable(
            "selected_repository_ids may only be given when visibility is 'selected'.",
        );
    }
    if let Some(unknown) = selected
        .iter()
        .find(|id| !data.repositories.values().any(|known| known == *id))
    {
        return unprocessable(&format!("repository {unknown} does not exist."));
    }
    let upper = name.to_ascii_uppercase();
    let target = data.target(scope).expect("checked above");
    if key_id != target.key_id {
        return unprocessable("key_id does not match the current public key.");
    }
    let Ok(sealed) = BASE64.decode(encrypted.as_bytes()) else {
        return unprocessable("encrypted_value is not valid base64.");
    };
    let Ok(plaintext) = target.key.unseal(&sealed).map(Zeroizing::new) else {
        return unprocessable("encrypted_value could not be decrypted with the current key.");
    };
    if plaintext.len() > MAX_VALUE_BYTES {
        return unprocessable("the secret value is larger than 48 KB.");
    }
    let exists = target.secrets.contains_key(&upper);
    if !exists && target.secrets.len() >= scope.max_secrets() {
        return unprocessable(&format!(
            "the maximum of {} secrets has been reached.",
            scope.max_secrets()
        ));
    }
    if let Some(fault) = shared.faults.on_write(&upper) {
        return fault_response(fault, "the secret could not be saved.");
    }
    let now = data.tick();
    let target = data.target_mut(scope).expect("checked above");
    match target.secrets.get_mut(&upper) {
        Some(stored) => {
            stored.value = plaintext;
            stored.updated_at = now;
            stored.visibility = visibility;
            stored.selected = selected;
            StatusCode::NO_CONTENT.into_response()
        }
        None => {
            target.secrets.insert(
                upper,
                Stored {
                    value: plaintext,
                    created_at: now,
                    updated_at: now,
                    visibility,
                    selected,
                },
            );
            StatusCode::CREATED.into_response()
        }
    }
}

fn delete_secret(shared: &Shared, scope: &GithubScope, name: &str) -> Response {
    let mut data = lock(&shared.data);
    let upper = name.to_ascii_uppercase();
    let exists = data
        .target(scope)
        .is_some_and(|target| target.secrets.contains_key(&upper));
    if !exists {
        return not_found();
    }
    if let Some(fault) = shared.faults.on_write(&upper) {
        return fault_response(fault, "the secret could not be deleted.");
    }
    data.target_mut(scope)
        .expect("checked above")
        .secrets
        .remove(&upper);
    StatusCode::NO_CONTENT.into_response()
}

/// Decodes `%XX` escapes in a path segment (invalid escapes stay as they
/// are, as GitHub's router does not match them either).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form GitHub lists timestamps in.
fn iso8601(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_githubs_form() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_704_880_800), "2024-01-10T10:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn paging_follows_githubs_parameters() {
        let paging = Paging::parse(Some("per_page=500&page=2"));
        assert_eq!((paging.per_page, paging.page), (100, 2));
        let paging = Paging::parse(None);
        assert_eq!((paging.per_page, paging.page), (30, 1));
        let items: Vec<u32> = (0..65).collect();
        let (page, link) = Paging::parse(Some("per_page=30&page=3")).slice(&items, "/x");
        assert_eq!(page, &items[60..]);
        assert!(link.unwrap().contains("rel=\"first\""));
        let (page, link) = Paging::parse(Some("per_page=30&page=1")).slice(&items, "/x");
        assert_eq!(page.len(), 30);
        assert!(link.unwrap().contains("page=2>; rel=\"next\""));
    }

    #[test]
    fn names_follow_githubs_rules() {
        assert!(name_problem("DB_PASS").is_none());
        assert!(name_problem("_x").is_none());
        assert!(name_problem("db-pass").is_some());
        assert!(name_problem("1PASS").is_some());
        assert!(name_problem("github_token").is_some());
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("my%20env"), "my env");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
