//! A protocol-faithful fake of Google Cloud Secret Manager's REST API (v1),
//! for the GCP sink and source.
//!
//! Google ships no local Secret Manager emulator, so this fake answers the
//! subset vsync speaks, with the real API's paths, JSON shapes, status codes
//! and error body (`{"error":{"code","message","status"}}`):
//!
//! - `GET /v1/projects/{p}/secrets?pageSize=&pageToken=&filter=`: secrets
//!   in name order; `pageSize` 0 or absent picks 25, values over 25,000 are
//!   capped (as Google documents); an unknown `pageToken` is
//!   `400 INVALID_ARGUMENT`. `filter` takes the part of Google's grammar
//!   the `filter` module describes (`labels.team=api`, `name:app_`, `AND`,
//!   `OR`) and refuses the rest with `400 INVALID_ARGUMENT`; with a filter,
//!   `totalSize` is 0, as Google answers.
//! - `GET …/secrets/{s}/versions?pageSize=&pageToken=&filter=`: the
//!   secret's versions newest first, with their `state` (no payload);
//!   `filter` takes `state:ENABLED` (and the other states); `404 NOT_FOUND`
//!   when the secret does not exist.
//! - `POST /v1/projects/{p}/secrets?secretId=`: needs a `replication`;
//!   `409 ALREADY_EXISTS` when the secret exists; ids are 1–255 characters
//!   of `[A-Za-z0-9_-]`; labels follow Google's rules.
//! - `GET`, `PATCH ?updateMask=labels` (with an optional `etag`: a stale one
//!   is `400 FAILED_PRECONDITION`) and `DELETE /v1/projects/{p}/secrets/{s}`.
//! - `POST …/secrets/{s}:addVersion` with `{"payload":{"data":"<base64>"}}`:
//!   an empty payload is `400 INVALID_ARGUMENT` ("Field [payload] is
//!   required."), one over 65,536 bytes too; `404 NOT_FOUND` when the secret
//!   does not exist; a `dataCrc32c` that does not match the data is
//!   `400 INVALID_ARGUMENT`.
//! - `GET …/secrets/{s}/versions/{latest|N}:access`: the payload, base64, with
//!   its CRC32C; `404 NOT_FOUND` when there is no such version. `latest` is
//!   the newest version whatever its state, so when a person has disabled or
//!   destroyed it ([`GcpSecretManagerServer::disable_version_outside`],
//!   [`GcpSecretManagerServer::destroy_version_outside`]) the access answers
//!   `400 FAILED_PRECONDITION` "Secret Version […] is in DISABLED state."
//!   (or `DESTROYED`), as Google does, rather than an older version.
//! - `Authorization: Bearer` must carry a known token, else
//!   `401 UNAUTHENTICATED`; the read-only token (a viewer and accessor) gets
//!   `403 PERMISSION_DENIED` on writes, and any token gets 403 on another
//!   project, as Google answers for projects the caller cannot see. Known
//!   tokens are the constants below, access tokens the fake's token endpoint
//!   issued, and self-signed JWTs of its service account (both with the
//!   admin role).
//! - `POST /token`: Google's OAuth 2 token endpoint, for Application
//!   Default Credentials: an `authorized_user` file's refresh token, or a
//!   service account's signed JWT assertion (see the `oauth` module).
//!   [`GcpSecretManagerServer::authorized_user_json`] and
//!   [`GcpSecretManagerServer::service_account_key_json`] write credentials
//!   files whose `token_uri` is the fake.
//!
//! Faults ([`Faults`]), once a request has passed the authentication,
//! permission and validation checks Google makes: every `secrets.list` and
//! `versions.list` page calls [`Faults::on_call`] with [`Call::List`], every
//! secret `GET` and version access with [`Call::Read`]; every write (create, label patch,
//! `addVersion`, `DELETE`) calls [`Faults::on_write`] with the secret id,
//! so the counter sees every write request Google would bill against the
//! 600-a-minute write quota (a new secret with its first value is two). One
//! function, `fault_response`, answers them all: a throttle is
//! `429 RESOURCE_EXHAUSTED` with no `Retry-After` (Google never sends one,
//! whatever the harness allows), an outage `503 UNAVAILABLE`, a broken
//! write `400 FAILED_PRECONDITION`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::{Map, Value, json};

use crate::HarnessError;
use crate::fake_http::{FakeServer, rfc3339_now};
use crate::faults::{Call, Fault, Faults};
use filter::{Filter, Listing, Subject};

mod filter;
mod oauth;

const MAX_PAYLOAD: usize = 65_536;
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 25_000;

/// A running Secret Manager fake on `127.0.0.1` with a random port, serving
/// one project; stops when dropped.
#[derive(Debug)]
pub struct GcpSecretManagerServer {
    server: FakeServer,
    state: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    project: String,
    faults: Faults,
    secrets: Mutex<BTreeMap<String, Secret>>,
    list_calls: AtomicUsize,
    access_calls: AtomicUsize,
    etags: AtomicUsize,
    oauth: oauth::Issuer,
}

#[derive(Debug)]
struct Secret {
    create_time: String,
    labels: BTreeMap<String, String>,
    etag: String,
    /// Version `n` is `versions[n - 1]`.
    versions: Vec<Version>,
}

#[derive(Debug)]
struct Version {
    /// Empty once destroyed: Google wipes the payload.
    data: Vec<u8>,
    state: VersionState,
    create_time: String,
}

impl Version {
    fn new(data: Vec<u8>) -> Self {
        Version {
            data,
            state: VersionState::Enabled,
            create_time: rfc3339_now(),
        }
    }
}

/// A version's `state`, as Google names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionState {
    Enabled,
    Disabled,
    Destroyed,
}

impl VersionState {
    fn name(self) -> &'static str {
        match self {
            VersionState::Enabled => "ENABLED",
            VersionState::Disabled => "DISABLED",
            VersionState::Destroyed => "DESTROYED",
        }
    }
}

impl GcpSecretManagerServer {
    /// A token with the Secret Manager Admin role on the project.
    pub const ADMIN_TOKEN: &'static str = "ya29.vsync-fake-admin-token";
    /// A token with the Viewer and Secret Accessor roles only: writes
    /// answer 403.
    pub const READ_ONLY_TOKEN: &'static str = "ya29.vsync-fake-read-only-token";
    /// The OAuth client of [`Self::authorized_user_json`] (gcloud's own
    /// client, for `gcloud auth application-default login`).
    pub const OAUTH_CLIENT_ID: &'static str = "764086051850-vsyncfake.apps.googleusercontent.com";
    /// Its client secret.
    pub const OAUTH_CLIENT_SECRET: &'static str = "d-vsync-fake-client-secret";
    /// The refresh token of a user with the admin role.
    pub const REFRESH_TOKEN: &'static str = "1//vsync-fake-refresh-token";

    /// Starts the fake serving `project`.
    pub async fn start(project: &str) -> Result<Self, HarnessError> {
        let state = Arc::new(Shared {
            project: project.to_owned(),
            faults: Faults::default(),
            secrets: Mutex::new(BTreeMap::new()),
            list_calls: AtomicUsize::new(0),
            access_calls: AtomicUsize::new(0),
            etags: AtomicUsize::new(0),
            oauth: oauth::Issuer::new(project),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let server = FakeServer::start(router).await?;
        state.oauth.set_endpoint(&server.endpoint());
        Ok(GcpSecretManagerServer { server, state })
    }

    /// The fake's OAuth 2 token endpoint (`<endpoint>/token`).
    pub fn token_uri(&self) -> String {
        self.state.oauth.token_uri().to_owned()
    }

    /// An `authorized_user` credentials file, as `gcloud auth
    /// application-default login` writes it, for a user with the admin
    /// role, with `token_uri` at the fake.
    pub fn authorized_user_json(&self) -> String {
        self.authorized_user_json_with(Self::REFRESH_TOKEN)
    }

    /// The same with another refresh token (a revoked one, say).
    pub fn authorized_user_json_with(&self, refresh_token: &str) -> String {
        serde_json::to_string_pretty(&json!({
            "account": "",
            "client_id": Self::OAUTH_CLIENT_ID,
            "client_secret": Self::OAUTH_CLIENT_SECRET,
            "refresh_token": refresh_token,
            "token_uri": self.token_uri(),
            "type": "authorized_user",
            "universe_domain": "googleapis.com",
        }))
        .expect("JSON")
    }

    /// A `service_account` key file (JSON, with an RSA private key the fake
    /// generated on first use) for an account with the admin role, with
    /// `token_uri` at the fake.
    pub fn service_account_key_json(&self) -> zeroize::Zeroizing<String> {
        self.state.oauth.service_account_key_json()
    }

    /// The email of that service account.
    pub fn service_account_email(&self) -> String {
        self.state.oauth.service_account_email()
    }

    /// Requests to `POST /token`, answered or refused.
    pub fn token_requests(&self) -> usize {
        self.state.oauth.token_requests()
    }

    /// Secret Manager calls authenticated with a service account's
    /// self-signed JWT.
    pub fn signed_jwt_calls(&self) -> usize {
        self.state.oauth.signed_jwt_calls()
    }

    /// The endpoint to use instead of `https://secretmanager.googleapis.com`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The fault injection and write counter of this fake.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// The bytes `versions/latest:access` answers for `secret`: none when
    /// it has no version or its newest one is disabled or destroyed.
    pub fn value(&self, secret: &str) -> Option<Vec<u8>> {
        self.state
            .secrets()
            .get(secret)
            .and_then(|s| s.versions.last())
            .filter(|v| v.state == VersionState::Enabled)
            .map(|v| v.data.clone())
    }

    /// Every secret id in the project.
    pub fn names(&self) -> Vec<String> {
        self.state.secrets().keys().cloned().collect()
    }

    /// How many versions `secret` has (0 when it does not exist).
    pub fn version_count(&self, secret: &str) -> usize {
        self.state
            .secrets()
            .get(secret)
            .map_or(0, |s| s.versions.len())
    }

    /// The labels of `secret`.
    pub fn labels(&self, secret: &str) -> BTreeMap<String, String> {
        self.state
            .secrets()
            .get(secret)
            .map(|s| s.labels.clone())
            .unwrap_or_default()
    }

    /// Adds a version the way a person in the console does, creating the
    /// secret (without labels) if needed; not counted, never faulted.
    pub fn add_version_outside(&self, secret: &str, data: &[u8]) {
        let etag = self.state.next_etag();
        let mut secrets = self.state.secrets();
        let entry = secrets
            .entry(secret.to_owned())
            .or_insert_with(|| Secret::new(BTreeMap::new(), etag));
        entry.versions.push(Version::new(data.to_vec()));
    }

    /// Creates `secret` with no version (and no labels), as `gcloud secrets
    /// create` without `--data-file` does; not counted, never faulted.
    pub fn create_outside(&self, secret: &str) {
        let etag = self.state.next_etag();
        self.state
            .secrets()
            .entry(secret.to_owned())
            .or_insert_with(|| Secret::new(BTreeMap::new(), etag));
    }

    /// Disables version `version` (1-based) of `secret`, as `gcloud secrets
    /// versions disable` does: it stays listed, its payload is kept, and
    /// accessing it (or `latest`, when it is the newest) is refused. Not
    /// counted, never faulted.
    pub fn disable_version_outside(&self, secret: &str, version: usize) {
        self.set_version_state(secret, version, VersionState::Disabled);
    }

    /// Destroys version `version` (1-based) of `secret`, as `gcloud secrets
    /// versions destroy` does: its payload is wiped for good. Not counted,
    /// never faulted.
    pub fn destroy_version_outside(&self, secret: &str, version: usize) {
        self.set_version_state(secret, version, VersionState::Destroyed);
    }

    fn set_version_state(&self, secret: &str, version: usize, state: VersionState) {
        let mut secrets = self.state.secrets();
        let found = secrets
            .get_mut(secret)
            .and_then(|s| s.versions.get_mut(version.checked_sub(1)?))
            .unwrap_or_else(|| panic!("{secret} has a version {version}"));
        found.state = state;
        if state == VersionState::Destroyed {
            found.data.clear();
        }
    }

    /// Replaces the labels of `secret` (which must exist), as
    /// `gcloud secrets update --update-labels` would.
    pub fn set_labels(&self, secret: &str, labels: &[(&str, &str)]) {
        let etag = self.state.next_etag();
        let mut secrets = self.state.secrets();
        let entry = secrets.get_mut(secret).expect("the secret exists");
        entry.labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        entry.etag = etag;
    }

    /// Deletes `secret` the way a person in the console does.
    pub fn delete_outside(&self, secret: &str) {
        self.state.secrets().remove(secret);
    }

    /// `secrets.list` calls served (one per page; faulted ones excluded).
    pub fn list_calls(&self) -> usize {
        self.state.list_calls.load(Ordering::SeqCst)
    }

    /// `versions.access` calls served (faulted ones excluded).
    pub fn access_calls(&self) -> usize {
        self.state.access_calls.load(Ordering::SeqCst)
    }
}

impl Shared {
    fn secrets(&self) -> MutexGuard<'_, BTreeMap<String, Secret>> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_etag(&self) -> String {
        format!("\"{}\"", self.etags.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

impl Secret {
    fn new(labels: BTreeMap<String, String>, etag: String) -> Self {
        Secret {
            create_time: rfc3339_now(),
            labels,
            etag,
            versions: Vec::new(),
        }
    }

    fn json(&self, name: &str) -> Value {
        let mut secret = json!({
            "name": name,
            "replication": { "automatic": {} },
            "createTime": self.create_time,
            "etag": self.etag,
        });
        if !self.labels.is_empty() {
            secret["labels"] = json!(self.labels);
        }
        secret
    }
}

fn error(status: StatusCode, rpc_status: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error": { "code": status.as_u16(), "message": message, "status": rpc_status }
        })),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn not_found(what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("{what} not found or has no versions."),
    )
}

fn denied(permission: &str, resource: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        &format!(
            "Permission '{permission}' denied for resource '{resource}' (or it may not exist)."
        ),
    )
}

/// A query parameter, percent- and `+`-decoded as the SDK encodes it.
fn query_param(uri: &Uri, key: &str) -> Option<String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri)
        .ok()?
        .0
        .remove(key)
}

/// What a request asks for, parsed from its path.
enum Route<'a> {
    Secrets,
    Secret(&'a str),
    AddVersion(&'a str),
    Versions(&'a str),
    Access(&'a str, &'a str),
}

fn route(rest: &str) -> Option<Route<'_>> {
    if rest == "secrets" {
        return Some(Route::Secrets);
    }
    let rest = rest.strip_prefix("secrets/")?;
    if let Some(secret) = rest.strip_suffix(":addVersion") {
        return Some(Route::AddVersion(secret));
    }
    if let Some(secret) = rest.strip_suffix("/versions") {
        return (!secret.contains('/')).then_some(Route::Versions(secret));
    }
    if let Some((secret, version)) = rest.split_once("/versions/") {
        return Some(Route::Access(secret, version.strip_suffix(":access")?));
    }
    (!rest.contains('/')).then_some(Route::Secret(rest))
}

async fn handle(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == "/token" {
        return if method == Method::POST {
            state.oauth.token(&headers, &body)
        } else {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "INVALID_ARGUMENT",
                "Method not allowed.",
            )
        };
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let writable = match token {
        Some(GcpSecretManagerServer::ADMIN_TOKEN) => true,
        Some(GcpSecretManagerServer::READ_ONLY_TOKEN) => false,
        Some(token) if state.oauth.accepts(token) => true,
        _ => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential.",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
            );
            return response;
        }
    };
    let path = uri.path();
    let Some((project, rest)) = path
        .strip_prefix("/v1/projects/")
        .and_then(|p| p.split_once('/'))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("The requested URL {path} was not found on this server."),
        );
    };
    let parent = format!("projects/{project}");
    if project != state.project {
        return denied("secretmanager.secrets.list", &parent);
    }
    let Some(route) = route(rest) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("The requested URL {path} was not found on this server."),
        );
    };
    let writes = !matches!(method, Method::GET);
    if writes && !writable {
        let permission = match route {
            Route::AddVersion(_) => "secretmanager.versions.add",
            Route::Secrets => "secretmanager.secrets.create",
            _ if method == Method::DELETE => "secretmanager.secrets.delete",
            _ => "secretmanager.secrets.update",
        };
        return denied(permission, &format!("{parent}/{rest}"));
    }
    match (route, method) {
        (Route::Secrets, Method::GET) => list(&state, &parent, &uri),
        (Route::Secrets, Method::POST) => create(&state, &parent, &uri, &body),
        (Route::Secret(id), Method::GET) => get_secret(&state, &parent, id),
        (Route::Secret(id), Method::PATCH) => update_labels(&state, &parent, id, &uri, &body),
        (Route::Secret(id), Method::DELETE) => delete(&state, &parent, id, &uri),
        (Route::AddVersion(id), Method::POST) => add_version(&state, &parent, id, &body),
        (Route::Versions(id), Method::GET) => list_versions(&state, &parent, id, &uri),
        (Route::Access(id, version), Method::GET) => access(&state, &parent, id, version),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "INVALID_ARGUMENT",
            "Method not allowed.",
        ),
    }
}

/// What a listing request asks for, as Google reads it.
struct PageQuery {
    size: usize,
    /// The key of the last item of the previous page (an id, a version
    /// number), so pages stay correct while items come and go.
    after: Option<String>,
    filter: Option<Filter>,
}

impl PageQuery {
    /// The query of a listing, or why Google would answer
    /// `400 INVALID_ARGUMENT`.
    fn parse(uri: &Uri, listing: Listing) -> Result<PageQuery, String> {
        let size = match query_param(uri, "pageSize").map(|size| size.parse::<i64>()) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(size)) if size < 0 => return Err("page_size must not be negative.".into()),
            Some(Ok(0)) => DEFAULT_PAGE_SIZE,
            Some(Ok(size)) => (size as usize).min(MAX_PAGE_SIZE),
            Some(Err(_)) => return Err("Invalid value for page_size.".into()),
        };
        let after = match query_param(uri, "pageToken").filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => match URL_SAFE
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(after) => Some(after),
                None => return Err("Invalid page token.".into()),
            },
        };
        let filter = match query_param(uri, "filter").filter(|f| !f.trim().is_empty()) {
            None => None,
            Some(text) => match Filter::parse(&text, listing) {
                Ok(filter) => Some(filter),
                Err(reason) => return Err(format!("Invalid filter [{text}]: {reason}.")),
            },
        };
        Ok(PageQuery {
            size,
            after,
            filter,
        })
    }

    /// One page of `items` (`(key, JSON)` pairs in listing order, already
    /// past the token and filtered) under `field`, with the token of the
    /// next page when there is one. `total` is the unfiltered count, which
    /// Google reports as 0 when a filter is given.
    fn page(
        &self,
        field: &str,
        items: impl Iterator<Item = (String, Value)>,
        total: usize,
    ) -> Response {
        let mut page: Vec<(String, Value)> = items.take(self.size + 1).collect();
        let more = page.len() > self.size;
        page.truncate(self.size);
        let total = if self.filter.is_some() { 0 } else { total };
        let mut response = json!({ "totalSize": total });
        if more && let Some((last, _)) = page.last() {
            response["nextPageToken"] = json!(URL_SAFE.encode(last.as_bytes()));
        }
        // Google omits empty repeated fields.
        if !page.is_empty() {
            response[field] = Value::Array(page.into_iter().map(|(_, item)| item).collect());
        }
        axum::Json(response).into_response()
    }
}

fn list(state: &Shared, parent: &str, uri: &Uri) -> Response {
    let query = match PageQuery::parse(uri, Listing::Secrets) {
        Ok(query) => query,
        Err(problem) => return invalid(&problem),
    };
    if let Some(fault) = state.faults.on_call(Call::List) {
        return fault_response(fault, Quota::Read, parent);
    }
    state.list_calls.fetch_add(1, Ordering::SeqCst);
    let secrets = state.secrets();
    let items = secrets
        .iter()
        .filter(|(id, _)| query.after.as_ref().is_none_or(|after| *id > after))
        .filter(|(id, secret)| {
            query.filter.as_ref().is_none_or(|filter| {
                filter.matches(&Subject {
                    id,
                    labels: &secret.labels,
                    state: None,
                })
            })
        })
        .map(|(id, secret)| (id.clone(), secret.json(&format!("{parent}/secrets/{id}"))));
    query.page("secrets", items, secrets.len())
}

fn list_versions(state: &Shared, parent: &str, id: &str, uri: &Uri) -> Response {
    let query = match PageQuery::parse(uri, Listing::Versions) {
        Ok(query) => query,
        Err(problem) => return invalid(&problem),
    };
    let after = match query.after.as_deref().map(str::parse::<usize>) {
        None => None,
        Some(Ok(number)) => Some(number),
        Some(Err(_)) => return invalid("Invalid page token."),
    };
    let name = format!("{parent}/secrets/{id}");
    let secrets = state.secrets();
    let Some(secret) = secrets.get(id) else {
        return not_found(&format!("Secret [{name}]"));
    };
    if let Some(fault) = state.faults.on_call(Call::List) {
        return fault_response(fault, Quota::Read, &name);
    }
    let no_labels = BTreeMap::new();
    // Newest first, as Google lists them.
    let items = (1..=secret.versions.len())
        .rev()
        .zip(secret.versions.iter().rev())
        .filter(|(number, _)| after.is_none_or(|after| *number < after))
        .filter(|(_, version)| {
            query.filter.as_ref().is_none_or(|filter| {
                filter.matches(&Subject {
                    id,
                    labels: &no_labels,
                    state: Some(version.state.name()),
                })
            })
        })
        .map(|(number, version)| {
            (
                number.to_string(),
                json!({
                    "name": format!("{name}/versions/{number}"),
                    "createTime": version.create_time,
                    "state": version.state.name(),
                    "replicationStatus": { "automatic": {} },
                }),
            )
        });
    query.page("versions", items, secret.versions.len())
}

fn get_secret(state: &Shared, parent: &str, id: &str) -> Response {
    let name = format!("{parent}/secrets/{id}");
    if let Some(fault) = state.faults.on_call(Call::Read) {
        return fault_response(fault, Quota::Read, &name);
    }
    match state.secrets().get(id) {
        Some(secret) => axum::Json(secret.json(&name)).into_response(),
        None => not_found(&format!("Secret [{name}]")),
    }
}

fn valid_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Google's label rules: keys 1–63 characters of lowercase letters, digits,
/// `_` and `-`, starting with a letter; values up to 63 of the same.
fn labels_problem(labels: &Map<String, Value>) -> Option<String> {
    let allowed = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    if labels.len() > 64 {
        return Some("A secret may have at most 64 labels.".into());
    }
    labels.iter().find_map(|(key, value)| {
        let value = value.as_str()?;
        let key_ok = (1..=63).contains(&key.len())
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && allowed(key);
        let value_ok = value.len() <= 63 && allowed(value);
        (!key_ok || !value_ok).then(|| format!("Invalid label {key:?}."))
    })
}

/// The labels of a `Secret` in a request, or why they are invalid.
fn parse_labels(secret: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    match secret.get("labels") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(labels)) => {
            if let Some(problem) = labels_problem(labels) {
                return Err(problem);
            }
            labels
                .iter()
                .map(|(k, v)| match v {
                    Value::String(v) => Ok((k.clone(), v.clone())),
                    _ => Err("Label values must be strings.".to_owned()),
                })
                .collect()
        }
        Some(_) => Err("Invalid labels.".to_owned()),
    }
}

fn create(state: &Shared, parent: &str, uri: &Uri, body: &[u8]) -> Response {
    let Some(id) = query_param(uri, "secretId") else {
        return invalid("Field [secret_id] is required.");
    };
    let id = id.as_str();
    if !valid_id(id) {
        return invalid(&format!(
            "Secret id [{id}] is invalid: ids are 1 to 255 characters of letters, digits, underscores and hyphens."
        ));
    }
    let Ok(Value::Object(secret)) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    let has_replication = secret
        .get("replication")
        .and_then(Value::as_object)
        .is_some_and(|r| r.contains_key("automatic") || r.contains_key("userManaged"));
    if !has_replication {
        return invalid("Field [replication] is required.");
    }
    let labels = match parse_labels(&secret) {
        Ok(labels) => labels,
        Err(problem) => return invalid(&problem),
    };
    let etag = state.next_etag();
    let mut secrets = state.secrets();
    let name = format!("{parent}/secrets/{id}");
    if secrets.contains_key(id) {
        return error(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            &format!("Secret [{name}] already exists."),
        );
    }
    // A create is a write request of its own (it counts against the write
    // quota), even though it stores no value yet.
    if let Some(fault) = state.faults.on_write(id) {
        return fault_response(fault, Quota::Write, &name);
    }
    let secret = Secret::new(labels, etag);
    let response = secret.json(&name);
    secrets.insert(id.to_owned(), secret);
    axum::Json(response).into_response()
}

fn update_labels(state: &Shared, parent: &str, id: &str, uri: &Uri, body: &[u8]) -> Response {
    let mask = query_param(uri, "updateMask").unwrap_or_default();
    if mask.is_empty() {
        return invalid("Field [update_mask] is required.");
    }
    if mask.split(',').any(|field| field != "labels") {
        return invalid("This fake updates labels only.");
    }
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    let labels = match parse_labels(&patch) {
        Ok(labels) => labels,
        Err(problem) => return invalid(&problem),
    };
    let etag = state.next_etag();
    let mut secrets = state.secrets();
    let name = format!("{parent}/secrets/{id}");
    let Some(secret) = secrets.get_mut(id) else {
        return not_found(&format!("Secret [{name}]"));
    };
    if let Some(expected) = patch
        .get("etag")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        && expected != secret.etag
    {
        return error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            &format!(
                "The etag provided in the request does not match the etag of Secret [{name}]."
            ),
        );
    }
    if let Some(fault) = state.faults.on_write(id) {
        return fault_response(fault, Quota::Write, &name);
    }
    secret.labels = labels;
    secret.etag = etag;
    axum::Json(secret.json(&name)).into_response()
}

/// The quota a faulted call draws on, named in Google's throttling message.
#[derive(Debug, Clone, Copy)]
enum Quota {
    Read,
    Access,
    Write,
}

/// A [`Fault`] answered the way Secret Manager does. Throttling is
/// `429 RESOURCE_EXHAUSTED` naming the exhausted quota and, unlike GitHub or
/// Key Vault, no `Retry-After` even when the harness would allow one: Google
/// never says when to come back, so the caller's own backoff must cope. An
/// outage is `503 UNAVAILABLE`; a write the harness refuses is
/// `400 FAILED_PRECONDITION`.
fn fault_response(fault: Fault, quota: Quota, resource: &str) -> Response {
    match fault {
        Fault::Throttle { retry_after: _ } => {
            let metric = match quota {
                Quota::Read => "Read requests",
                Quota::Access => "Access requests",
                Quota::Write => "Write requests",
            };
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                &format!(
                    "Quota exceeded for quota metric '{metric}' and limit '{metric} per minute' of service 'secretmanager.googleapis.com'."
                ),
            )
        }
        Fault::Unavailable => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.",
        ),
        Fault::Break => error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            &format!("The harness refuses writes of [{resource}]."),
        ),
    }
}

fn delete(state: &Shared, parent: &str, id: &str, uri: &Uri) -> Response {
    let name = format!("{parent}/secrets/{id}");
    // An empty etag (clients send `etag=`) means "no condition".
    let etag = query_param(uri, "etag").filter(|e| !e.is_empty());
    let mut secrets = state.secrets();
    match secrets.get(id) {
        None => return not_found(&format!("Secret [{name}]")),
        Some(secret) if etag.as_ref().is_some_and(|e| *e != secret.etag) => {
            return error(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                &format!(
                    "The etag provided in the request does not match the etag of Secret [{name}]."
                ),
            );
        }
        Some(_) => {}
    }
    if let Some(fault) = state.faults.on_write(id) {
        return fault_response(fault, Quota::Write, &name);
    }
    secrets.remove(id);
    axum::Json(json!({})).into_response()
}

fn add_version(state: &Shared, parent: &str, id: &str, body: &[u8]) -> Response {
    let name = format!("{parent}/secrets/{id}");
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return invalid("Invalid JSON payload received.");
    };
    let encoded = request
        .get("payload")
        .and_then(|p| p.get("data"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if encoded.is_empty() {
        return invalid("Field [payload] is required.");
    }
    let Ok(data) = STANDARD
        .decode(encoded)
        .or_else(|_| URL_SAFE.decode(encoded))
    else {
        return invalid("Invalid value at 'payload.data' (TYPE_BYTES), Base64 decoding failed.");
    };
    let checksum = request.get("payload").and_then(|p| p.get("dataCrc32c"));
    if let Some(checksum) = checksum {
        // int64 travels as a JSON string; accept a number too.
        let claimed = checksum
            .as_str()
            .and_then(|c| c.parse::<i64>().ok())
            .or_else(|| checksum.as_i64());
        if claimed.and_then(|claimed| u64::try_from(claimed).ok()) != Some(crc32c(&data)) {
            return invalid("Checksum mismatch: data_crc32c does not match the payload data.");
        }
    }
    if data.len() > MAX_PAYLOAD {
        return invalid(&format!(
            "Secret Payload cannot be larger than {MAX_PAYLOAD} bytes."
        ));
    }
    let etag = state.next_etag();
    let mut secrets = state.secrets();
    let Some(secret) = secrets.get_mut(id) else {
        return not_found(&format!("Secret [{name}]"));
    };
    if let Some(fault) = state.faults.on_write(id) {
        return fault_response(fault, Quota::Write, &name);
    }
    secret.versions.push(Version::new(data));
    axum::Json(json!({
        "name": format!("{name}/versions/{}", secret.versions.len()),
        "createTime": rfc3339_now(),
        "state": "ENABLED",
        "replicationStatus": { "automatic": {} },
        "etag": etag,
        "clientSpecifiedPayloadChecksum": checksum.is_some(),
    }))
    .into_response()
}

fn access(state: &Shared, parent: &str, id: &str, version: &str) -> Response {
    let requested = format!("{parent}/secrets/{id}/versions/{version}");
    if let Some(fault) = state.faults.on_call(Call::Read) {
        return fault_response(fault, Quota::Access, &requested);
    }
    state.access_calls.fetch_add(1, Ordering::SeqCst);
    let secrets = state.secrets();
    let versions: &[Version] = secrets.get(id).map_or(&[], |s| &s.versions);
    let number = match version {
        "latest" => versions.len(),
        number => match number.parse::<usize>() {
            Ok(number) if number > 0 => number,
            _ => return invalid(&format!("Invalid secret version [{version}].")),
        },
    };
    let name = format!("{parent}/secrets/{id}/versions/{number}");
    match number.checked_sub(1).and_then(|index| versions.get(index)) {
        Some(found) if found.state == VersionState::Enabled => axum::Json(json!({
            "name": name,
            "payload": {
                "data": STANDARD.encode(&found.data),
                "dataCrc32c": crc32c(&found.data).to_string(),
            },
        }))
        .into_response(),
        // `latest` names the newest version whatever its state: Google
        // refuses it rather than falling back to an older one, and names
        // the version it resolved to.
        Some(found) => error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            &format!(
                "Secret Version [{name}] is in {} state.",
                found.state.name()
            ),
        ),
        None => not_found(&format!("Secret Version [{requested}]")),
    }
}

/// CRC32C (Castagnoli, `CRC-32/ISCSI`), which Google returns with every
/// payload.
fn crc32c(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn routes_parse_the_rest_paths() {
        assert!(matches!(route("secrets"), Some(Route::Secrets)));
        assert!(matches!(
            route("secrets/A_b-1"),
            Some(Route::Secret("A_b-1"))
        ));
        assert!(matches!(
            route("secrets/X:addVersion"),
            Some(Route::AddVersion("X"))
        ));
        assert!(matches!(
            route("secrets/X/versions/latest:access"),
            Some(Route::Access("X", "latest"))
        ));
        assert!(matches!(
            route("secrets/X/versions"),
            Some(Route::Versions("X"))
        ));
        assert!(route("secrets/X/versions/latest").is_none());
        assert!(route("secrets/X/Y/versions").is_none());
        assert!(route("locations").is_none());
    }

    #[test]
    fn label_rules() {
        let ok = json!({"managed-by": "vsync"});
        assert_eq!(labels_problem(ok.as_object().unwrap()), None);
        let upper = json!({"Managed": "x"});
        assert!(labels_problem(upper.as_object().unwrap()).is_some());
    }
}
