//! HashiCorp Vault KV (versions 1 and 2) as a source: the secrets at a path
//! and everything under it; each secret's map fields become keys.
//!
//! # Scope
//!
//! `mount` (default `secret`) and `path` (default: the whole mount) name a
//! folder: its secrets are listed, and with `recursive` (the default) those
//! of every subfolder, walked one `LIST` per folder. When `path` is not a
//! folder (its `LIST` answers 404), it names one secret: the layout the
//! Vault KV sink writes (`vault kv put secret/apps/api K1=v1 K2=v2`), so
//! what the sink wrote imports back. A path that is neither is refused as
//! not found when the secret is read, rather than imported as nothing. (A
//! secret that shares its name with a folder — `app` beside `app/…` — is
//! therefore not read when `path` names that folder; Vault allows both.)
//!
//! Vault does not page a listing, so one `LIST` is one page, however long.
//! Its answer is hostile like any other: each name is checked (no `/`
//! inside, no `.`/`..`, no control characters, bounded length, no
//! repeats), the walk stops at [`MAX_DEPTH`] folders deep and
//! [`MAX_LISTED`] entries in all, and every body is capped at
//! [`MAX_BODY_BYTES`] while it is received, before it is parsed.
//!
//! # KV version
//!
//! Detected once per run from `GET /v1/sys/internal/ui/mounts/<mount>`
//! (what the Vault CLI asks before every `kv` command): `options.version`
//! `"2"` is KV v2, anything else KV v1. Vault grants that endpoint to any
//! token holding a capability anywhere under the mount, and answers `403`
//! both to a token without one and for a mount that does not exist; the
//! source then assumes **KV v2** (Vault's default `secret/` mount, and what
//! the sink writes) rather than trying `sys/mounts`, which needs a broader
//! policy still. The first `LIST` then tells the real story: `403` is
//! access denied naming the credential, Vault's `no handler for route` is
//! a missing mount. A `mount` that is a path inside a mount is refused with
//! the mount named.
//!
//! KV v2 lists `<mount>/metadata/<folder>` and reads
//! `<mount>/data/<secret>`; KV v1 lists and reads `<mount>/<path>`.
//!
//! # Values, deleted and disabled secrets
//!
//! Each field of a secret's map is one value: the secret's path (relative
//! to the mount) is [`SourceValue::secret`], the field name is the proposed
//! key. A string field is taken as it is, any other JSON value (a number,
//! a list, an object) as its compact JSON text. Values are text: Vault
//! stores JSON, which carries no bytes.
//!
//! KV v2 keeps a secret's metadata when its current version is deleted
//! (`vault kv delete`) or destroyed, so the listing still shows it; the
//! read then answers 404 with that version's metadata, and the secret is
//! left out, as deleted. Vault has no disabled state.
//!
//! A `LIST` returns names only — no version — so the listing carries no
//! revision ([`SourceCapabilities::metadata`] is false): every import reads
//! every secret, one request each (Vault has no batch read).
//!
//! # Credentials
//!
//! [`Auth`]: a token, or an AppRole or Kubernetes login made once per run,
//! on the first call. `401`/`403` is [`SinkError::Denied`] naming the
//! credential to fix; a login Vault refuses (AppRole answers `400`) too.
//! `X-Vault-Namespace` goes with every request, logins included, when a
//! namespace is set.
//!
//! # Transport
//!
//! Requests go through the client [`vsync_connections::vault`] sets up for
//! the sink too (address checks, https unless loopback, CA roots,
//! timeout), but are sent here rather than through `vaultrs`: the source
//! needs each body capped before it is buffered, `Retry-After` on a
//! rate-limit quota's 429 (`vaultrs` exposes neither), and the body of a
//! 404 (a deleted version's metadata). Only Vault's `errors` messages are
//! ever copied into an error, never another body. Maps read are wiped when
//! dropped; copies inside the HTTP stack and the JSON parser are beyond
//! reach.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vsync_connections::vault::{Connection, read_token_file, status_error};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{RateBudget, SecretValue, SinkError, one_line_message};
use vsync_engine::source::{ListedSecret, ReadBatch, Source, SourceCapabilities, SourceValue};
use zeroize::Zeroize;

pub use vsync_connections::vault::Auth;

/// The largest response body received. A KV entry is at most 1 MiB on
/// integrated storage (512 KiB on Consul) before JSON escaping; a listing
/// of [`MAX_LISTED`] names fits with room to spare.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The deepest folder the walk enters below `path`.
pub const MAX_DEPTH: usize = 32;

/// The most secrets and folders one listing walks through: past it the
/// answer is refused as absurd rather than read one secret at a time.
pub const MAX_LISTED: usize = 100_000;

/// The longest name of one secret or folder in a listing.
pub const MAX_NAME_BYTES: usize = 512;

/// Builds a [`VaultSource`]; see the module documentation.
#[derive(Default)]
pub struct VaultSourceBuilder {
    address: Option<String>,
    mount: Option<String>,
    path: Option<String>,
    recursive: Option<bool>,
    namespace: Option<String>,
    auth: Option<Auth>,
}

impl VaultSourceBuilder {
    /// The Vault server, e.g. `https://vault.example.com:8200`
    /// (`VAULT_ADDR`).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The KV mount; `secret` when not set.
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self
    }

    /// The folder (or single secret) under the mount; the whole mount when
    /// not set.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Whether subfolders are walked too; `true` when not set.
    pub fn recursive(mut self, recursive: bool) -> Self {
        self.recursive = Some(recursive);
        self
    }

    /// The Vault Enterprise / HCP namespace, sent as `X-Vault-Namespace`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// How to authenticate.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Checks the settings and builds the source. Nothing is sent yet.
    pub fn build(self) -> Result<VaultSource, SinkError> {
        let mount = vault_path("mount", self.mount.as_deref().unwrap_or("secret"))?;
        if mount.is_empty() {
            return Err(SinkError::Misconfigured("the Vault mount is empty".into()));
        }
        let path = vault_path("path", self.path.as_deref().unwrap_or_default())?;
        let auth = self
            .auth
            .ok_or_else(|| SinkError::Misconfigured("no Vault credentials were given".into()))?;
        if let Auth::Token { token, from } = &auth
            && token.trim().is_empty()
        {
            return Err(SinkError::Misconfigured(format!("{from} is empty")));
        }
        let Connection {
            client,
            address,
            namespace,
        } = vsync_connections::vault::connect_without_token(
            self.address,
            self.namespace,
            Vec::new(),
        )?;
        let mut base = Url::parse(&address)
            .map_err(|e| SinkError::Misconfigured(format!("the Vault address: {e}")))?;
        base.path_segments_mut()
            .map_err(|()| SinkError::Misconfigured("the Vault address has no path".into()))?
            .pop_if_empty()
            .push("v1");
        Ok(VaultSource {
            http: client.http.http,
            base,
            address,
            namespace,
            mount,
            path,
            recursive: self.recursive.unwrap_or(true),
            auth,
            capabilities: SourceCapabilities {
                metadata: false,
                binary: false,
                batch: 1,
                // Vault documents no read limit; operators' rate-limit
                // quotas answer 429 with Retry-After, which the engine
                // honours.
                rate: RateBudget::unpaced(8),
            },
            session: Mutex::new(None),
        })
    }
}

/// A path from the settings, as `/`-separated segments without empty ones;
/// `.`, `..` and control characters are refused, so nothing but the
/// segments given reaches the URL.
fn vault_path(what: &str, given: &str) -> Result<String, SinkError> {
    let segments: Vec<&str> = given.split('/').filter(|s| !s.is_empty()).collect();
    if segments
        .iter()
        .any(|s| matches!(*s, "." | "..") || s.chars().any(char::is_control))
    {
        return Err(SinkError::Misconfigured(format!(
            "the Vault {what} {given:?} holds a `.` or `..` segment or a control character"
        )));
    }
    Ok(segments.join("/"))
}

/// The Vault source; see the module documentation.
pub struct VaultSource {
    http: reqwest::Client,
    /// `<address>/v1`.
    base: Url,
    address: String,
    namespace: Option<String>,
    mount: String,
    path: String,
    recursive: bool,
    auth: Auth,
    capabilities: SourceCapabilities,
    /// The token and KV version, found on the first call of a run.
    session: Mutex<Option<Arc<Session>>>,
}

impl std::fmt::Debug for VaultSource {
    // By hand: the session holds the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSource")
            .field("origin", &self.origin())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

struct Session {
    token: Zeroizing<String>,
    kv: Kv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kv {
    V1,
    V2,
}

/// One answer from Vault, its body capped and wiped when dropped.
struct Answer {
    status: u16,
    body: Zeroizing<Vec<u8>>,
    retry_after: Option<Duration>,
}

/// Vault's error body.
#[derive(Deserialize)]
struct Errors {
    errors: Vec<String>,
}

/// Vault's response envelope.
#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct Keys {
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct MountInfo {
    #[serde(rename = "type")]
    kind: String,
    /// The mount holding the path asked about (older Vaults leave it out).
    #[serde(default)]
    path: String,
    options: Option<MountOptions>,
}

#[derive(Deserialize)]
struct MountOptions {
    version: Option<String>,
}

#[derive(Deserialize)]
struct LoginAnswer {
    auth: Option<LoginAuth>,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: Zeroizing<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Login<'a> {
    AppRole {
        role_id: &'a str,
        secret_id: &'a str,
    },
    Kubernetes {
        role: &'a str,
        jwt: &'a str,
    },
}

/// A KV v2 read: the map, and the version's metadata (present on a 404
/// for a deleted or destroyed version).
#[derive(Deserialize)]
struct VersionRead {
    data: Option<SecretMap>,
    metadata: Option<Map<String, Value>>,
}

/// A KV map, wiped when dropped.
#[derive(Deserialize)]
#[serde(transparent)]
struct SecretMap(Map<String, Value>);

impl Drop for SecretMap {
    fn drop(&mut self) {
        for value in self.0.values_mut() {
            wipe(value);
        }
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A field's value: a string as it is, any other JSON as compact JSON text.
fn field_value(value: &Value) -> SecretValue {
    match value {
        Value::String(text) => SecretValue::from_text(text),
        other => SecretValue::new(Zeroizing::new(
            serde_json::to_vec(other).unwrap_or_default(),
        )),
    }
}

/// One name of a listing, checked: `(name, is a folder)`.
fn listed_entry(key: &str) -> Option<(&str, bool)> {
    let (name, folder) = match key.strip_suffix('/') {
        Some(name) => (name, true),
        None => (key, false),
    };
    let sound = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.contains('/')
        && !matches!(name, "." | "..")
        && !name.chars().any(char::is_control);
    sound.then_some((name, folder))
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

impl VaultSource {
    /// Starts a builder.
    pub fn builder() -> VaultSourceBuilder {
        VaultSourceBuilder::default()
    }

    /// `<address>/v1/<each segment of each part>`, every segment
    /// percent-encoded on its own.
    fn url(&self, parts: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked when built").extend(
            parts
                .iter()
                .flat_map(|part| part.split('/'))
                .filter(|s| !s.is_empty()),
        );
        url
    }

    /// Sends one request and receives its answer, the body capped.
    async fn send(
        &self,
        method: Method,
        url: Url,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, SinkError> {
        let mut request = self
            .http
            .request(method, url.clone())
            .header("X-Vault-Request", "true");
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                SinkError::Misconfigured(format!(
                    "{} is not a valid token (it holds characters no HTTP header can carry)",
                    self.auth.describe()
                ))
            })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let unreachable = |error: reqwest::Error| {
            let mut chain = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                chain.push_str(": ");
                chain.push_str(&cause.to_string());
                source = cause.source();
            }
            SinkError::Unavailable(format!(
                "could not reach Vault at {}: {}",
                self.address,
                one_line_message(&chain)
            ))
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let too_large = || {
            SinkError::Rejected(format!(
                "Vault's answer to {} is larger than {MAX_BODY_BYTES} bytes",
                url.path()
            ))
        };
        let announced = response.content_length().unwrap_or(0);
        if announced > MAX_BODY_BYTES as u64 {
            return Err(too_large());
        }
        let mut body = Zeroizing::new(Vec::with_capacity(announced.max(8 * 1024) as usize));
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            let needed = body.len() + chunk.len();
            if needed > MAX_BODY_BYTES {
                return Err(too_large());
            }
            if needed > body.capacity() {
                // Grown by hand, so the old buffer is wiped, not left
                // behind by a reallocation.
                let mut bigger = Zeroizing::new(Vec::with_capacity(
                    needed.max(body.capacity() * 2).min(MAX_BODY_BYTES),
                ));
                bigger.extend_from_slice(&body);
                body = bigger;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// A failed answer in the engine's taxonomy, with Vault's messages (and
    /// only those). A refusal names the credential to fix.
    fn failure(&self, answer: &Answer, doing: &str) -> SinkError {
        let message = serde_json::from_slice::<Errors>(&answer.body)
            .map(|errors| {
                let joined: Vec<String> =
                    errors.errors.iter().map(|e| one_line_message(e)).collect();
                one_line_message(&joined.join("; "))
            })
            .unwrap_or_default();
        let status = answer.status;
        let detail = if message.is_empty() {
            format!("Vault answered {status} {doing}")
        } else {
            format!("Vault answered {status} {doing}: {message}")
        };
        match status {
            401 | 403 => SinkError::Denied(format!(
                "{detail}; check {} (it needs to list and read there)",
                self.auth.describe()
            )),
            _ => status_error(status, answer.retry_after, detail),
        }
    }

    fn unexpected(&self, what: &str) -> SinkError {
        SinkError::Rejected(format!(
            "Vault's answer {what} is not what a KV mount answers; is {} a KV mount?",
            self.mount
        ))
    }

    /// The run's token and KV version, found on the first call.
    async fn session(&self) -> Result<Arc<Session>, SinkError> {
        if let Some(session) = self.lock().clone() {
            return Ok(session);
        }
        let token = self.login().await?;
        let kv = self.kv_version(&token).await?;
        let session = Arc::new(Session { token, kv });
        *self.lock() = Some(Arc::clone(&session));
        Ok(session)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Session>>> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token: the one given, or one an AppRole or Kubernetes login
    /// hands out.
    async fn login(&self) -> Result<Zeroizing<String>, SinkError> {
        let (mount, body) = match &self.auth {
            Auth::Token { token, .. } => return Ok(Zeroizing::new(token.trim().to_owned())),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => (mount, Login::AppRole { role_id, secret_id }.to_json()),
            Auth::Kubernetes {
                mount,
                role,
                jwt_file,
            } => {
                let jwt = read_token_file(jwt_file).map_err(|error| {
                    SinkError::Misconfigured(format!(
                        "VAULT_K8S_ROLE is set but the service-account token {} cannot be read ({error}); set VAULT_K8S_TOKEN_PATH",
                        jwt_file.display()
                    ))
                })?;
                (mount, Login::Kubernetes { role, jwt: &jwt }.to_json())
            }
        };
        let url = self.url(&["auth", mount, "login"]);
        let answer = self.send(Method::POST, url, None, Some(body)).await?;
        if answer.status != 200 {
            let error = self.failure(&answer, &format!("logging in at auth/{mount}"));
            return Err(match (answer.status, error) {
                // AppRole answers bad credentials with 400, Kubernetes an
                // unknown role: refusals of the credential all the same.
                (400, SinkError::Rejected(detail)) => {
                    SinkError::Denied(format!("{detail}; check {}", self.auth.describe()))
                }
                (_, error) => error,
            });
        }
        serde_json::from_slice::<LoginAnswer>(&answer.body)
            .ok()
            .and_then(|answer| answer.auth)
            .map(|auth| auth.client_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                SinkError::Rejected(format!(
                    "Vault's answer to the login at auth/{mount} holds no token"
                ))
            })
    }

    /// The mount's KV version (see the module documentation).
    async fn kv_version(&self, token: &str) -> Result<Kv, SinkError> {
        let url = self.url(&["sys/internal/ui/mounts", &self.mount]);
        let answer = self.send(Method::GET, url, Some(token), None).await?;
        match answer.status {
            200 => {}
            // Denied, a missing mount, or a Vault without the endpoint:
            // KV v2, and the listing reports what is wrong.
            401 | 403 | 404 => return Ok(Kv::V2),
            _ => {
                let doing = format!("looking up the mount {}", self.mount);
                return Err(self.failure(&answer, &doing));
            }
        }
        let info = serde_json::from_slice::<Envelope<MountInfo>>(&answer.body)
            .ok()
            .and_then(|envelope| envelope.data)
            .ok_or_else(|| self.unexpected("describing the mount"))?;
        let actual = info.path.trim_matches('/');
        if !actual.is_empty() && actual != self.mount {
            return Err(SinkError::Misconfigured(format!(
                "{} is not a mount but a path inside the mount {actual:?}: set mount={actual:?} and put the rest in path",
                self.mount
            )));
        }
        if !matches!(info.kind.as_str(), "kv" | "generic") {
            return Err(SinkError::Misconfigured(format!(
                "the mount {} is a {:?} secrets engine, not KV",
                self.mount, info.kind
            )));
        }
        let v2 = info.options.and_then(|o| o.version).as_deref() == Some("2");
        Ok(if v2 { Kv::V2 } else { Kv::V1 })
    }

    /// The names in one folder; `None` when Vault has nothing there.
    async fn list_folder(
        &self,
        session: &Session,
        folder: &str,
    ) -> Result<Option<Vec<String>>, SinkError> {
        let mut url = match session.kv {
            Kv::V2 => self.url(&[&self.mount, "metadata", folder]),
            Kv::V1 => self.url(&[&self.mount, folder]),
        };
        url.set_query(Some("list=true"));
        let answer = self
            .send(Method::GET, url, Some(&session.token), None)
            .await?;
        let location = join(&self.mount, folder);
        if answer.status == 404 && self.no_message(&answer) {
            return Ok(None);
        }
        if answer.status != 200 {
            return Err(self.failure(&answer, &format!("listing {location}")));
        }
        serde_json::from_slice::<Envelope<Keys>>(&answer.body)
            .ok()
            .and_then(|envelope| envelope.data)
            .map(|keys| Some(keys.keys))
            .ok_or_else(|| self.unexpected(&format!("listing {location}")))
    }

    /// A 404 without an error message: nothing at that path. One with a
    /// message ("no handler for route") is a missing mount.
    fn no_message(&self, answer: &Answer) -> bool {
        serde_json::from_slice::<Errors>(&answer.body).is_ok_and(|e| e.errors.is_empty())
    }

    /// Every secret in scope (see the module documentation).
    async fn walk(&self, session: &Session) -> Result<Vec<ListedSecret>, SinkError> {
        let mut found = Vec::new();
        let mut walked = 0usize;
        let mut folders = VecDeque::from([(self.path.clone(), 0usize)]);
        while let Some((folder, depth)) = folders.pop_front() {
            let Some(keys) = self.list_folder(session, &folder).await? else {
                if folder == self.path && !self.path.is_empty() {
                    // Not a folder: the path names one secret.
                    return Ok(vec![ListedSecret::named(self.path.clone())]);
                }
                // An empty mount, or a folder emptied since its parent
                // was listed.
                continue;
            };
            let location = join(&self.mount, &folder);
            let mut seen = HashSet::with_capacity(keys.len());
            for key in &keys {
                let absurd = |why: &str| {
                    SinkError::Rejected(format!("Vault's listing of {location} {why}; refused"))
                };
                let (name, is_folder) = listed_entry(key)
                    .ok_or_else(|| absurd("holds a name that is not one path segment"))?;
                if !seen.insert(key.as_str()) {
                    return Err(absurd("names an entry twice"));
                }
                walked += 1;
                if walked > MAX_LISTED {
                    return Err(absurd(&format!(
                        "takes the walk past {MAX_LISTED} secrets and folders"
                    )));
                }
                let path = join(&folder, name);
                if !is_folder {
                    found.push(ListedSecret::named(path));
                } else if self.recursive {
                    if depth + 1 > MAX_DEPTH {
                        return Err(absurd(&format!("goes deeper than {MAX_DEPTH} folders")));
                    }
                    folders.push_back((path, depth + 1));
                }
            }
        }
        Ok(found)
    }

    /// One secret's map; `None` when it is gone, or its current version
    /// deleted or destroyed.
    async fn read_secret(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<Option<SecretMap>, SinkError> {
        let url = match session.kv {
            Kv::V2 => self.url(&[&self.mount, "data", name]),
            Kv::V1 => self.url(&[&self.mount, name]),
        };
        let answer = self
            .send(Method::GET, url, Some(&session.token), None)
            .await?;
        let location = join(&self.mount, name);
        match answer.status {
            200 => {}
            404 if session.kv == Kv::V2
                && serde_json::from_slice::<Envelope<VersionRead>>(&answer.body)
                    .ok()
                    .and_then(|envelope| envelope.data)
                    .is_some_and(|read| read.metadata.is_some()) =>
            {
                // The current version is deleted or destroyed.
                return Ok(None);
            }
            404 if self.no_message(&answer) => {
                if name == self.path {
                    return Err(SinkError::NotFound(format!(
                        "nothing at {location}: no secret, and no folder holding any"
                    )));
                }
                // Deleted since the listing.
                return Ok(None);
            }
            _ => return Err(self.failure(&answer, &format!("reading {location}"))),
        }
        let map = match session.kv {
            Kv::V2 => serde_json::from_slice::<Envelope<VersionRead>>(&answer.body)
                .ok()
                .and_then(|envelope| envelope.data)
                .and_then(|read| read.data),
            Kv::V1 => serde_json::from_slice::<Envelope<SecretMap>>(&answer.body)
                .ok()
                .and_then(|envelope| envelope.data),
        };
        map.map(Some)
            .ok_or_else(|| self.unexpected(&format!("reading {location}")))
    }
}

impl Login<'_> {
    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("two strings serialise")
    }
}

#[async_trait::async_trait]
impl Source for VaultSource {
    fn capabilities(&self) -> &SourceCapabilities {
        &self.capabilities
    }

    fn origin(&self) -> String {
        let mut origin = format!(
            "vault-kv:addr={},mount={},path={}",
            self.address, self.mount, self.path
        );
        if let Some(namespace) = &self.namespace {
            origin.push_str(",namespace=");
            origin.push_str(namespace);
        }
        if !self.recursive {
            origin.push_str(",recursive=false");
        }
        origin
    }

    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
        let session = self.session().await?;
        self.walk(&session).await
    }

    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
        let session = self.session().await?;
        let mut values = Vec::new();
        for secret in secrets {
            let Some(map) = self.read_secret(&session, &secret.name).await? else {
                continue;
            };
            values.extend(map.0.iter().map(|(field, value)| SourceValue {
                secret: secret.name.clone(),
                name: field.clone(),
                value: field_value(value),
            }));
        }
        Ok(values.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_names_are_single_segments() {
        assert_eq!(listed_entry("DB"), Some(("DB", false)));
        assert_eq!(listed_entry("team/"), Some(("team", true)));
        for absurd in [
            "",
            "/",
            "a/b",
            "a//",
            "../",
            "..",
            ".",
            "a\nb",
            &"x".repeat(513),
        ] {
            assert_eq!(listed_entry(absurd), None, "{absurd:?}");
        }
    }

    #[test]
    fn fields_keep_strings_and_give_other_json_as_compact_text() {
        let text = |value: Value| field_value(&value).as_text().unwrap().to_owned();
        assert_eq!(text(Value::String(" a\nb ".into())), " a\nb ");
        assert_eq!(
            text(serde_json::json!({"a": [1, true, null]})),
            r#"{"a":[1,true,null]}"#
        );
        assert_eq!(text(serde_json::json!(42)), "42");
    }

    #[test]
    fn settings_paths_are_normalised_and_dot_segments_refused() {
        let build = |mount: &str, path: &str| {
            VaultSource::builder()
                .address("http://127.0.0.1:8200")
                .mount(mount)
                .path(path)
                .auth(Auth::token("t"))
                .build()
        };
        let source = build("/kv/team/", "//apps/api/").unwrap();
        assert_eq!(
            source.origin(),
            "vault-kv:addr=http://127.0.0.1:8200,mount=kv/team,path=apps/api"
        );
        assert_eq!(
            source.url(&["kv/team", "metadata", "apps/a b?#"]).as_str(),
            "http://127.0.0.1:8200/v1/kv/team/metadata/apps/a%20b%3F%23"
        );
        assert!(matches!(
            build("secret", "apps/../sys"),
            Err(SinkError::Misconfigured(_))
        ));
        assert!(matches!(build("/", ""), Err(SinkError::Misconfigured(_))));
        let no_token = VaultSource::builder()
            .address("http://127.0.0.1:8200")
            .auth(Auth::token(" "))
            .build();
        assert!(matches!(no_token, Err(SinkError::Misconfigured(m)) if m.contains("VAULT_TOKEN")));
        let plain_http = VaultSource::builder()
            .address("http://vault.example.com:8200")
            .auth(Auth::token("t"))
            .build();
        assert!(matches!(plain_http, Err(SinkError::Misconfigured(_))));
    }
}
