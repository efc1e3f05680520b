//! A protocol-faithful fake of the Azure Key Vault secrets data plane, for
//! the Key Vault sink and source.
//!
//! No Key Vault server installs from a package registry, so this fake
//! speaks the documented REST API (api-version 7.5 / 7.6) over **TLS**:
//! Azure SDKs refuse to send a bearer token to a plain `http` endpoint, so
//! the harness generates a throw-away CA ([`KeyVaultServer::ca_pem`]) and a
//! certificate for `127.0.0.1` signed by it.
//!
//! What it reproduces, because the sink depends on each of these:
//! - **Challenge-based auth**: a request without a valid bearer token gets
//!   401 with `WWW-Authenticate: Bearer authorization="…",
//!   resource="https://vault.azure.net"` (the SDK sends its first request
//!   without a token, and without its body, to discover the scope); a token
//!   without write permission gets 403 `Forbidden` / `AccessDenied` on writes.
//! - `api-version` required and checked: an unpublished one answers Key
//!   Vault's "The specified version (…) is not recognized."; the published
//!   versions older than 7.5 (2015-06-01, 2016-10-01, 7.0–7.4), which the
//!   service still serves, are refused by this fake only, with a message
//!   saying so, because it speaks only the 7.5/7.6 shapes the sink sends;
//!   names `[0-9A-Za-z-]{1,127}`,
//!   compared case-insensitively, stored with the case of their creation;
//!   values up to 25,600 characters; at most 15 tags.
//! - Every set adds a version; `attributes.updated` is in **seconds**, as
//!   Key Vault's is; `tags` belong to the version, so a console edit (a new
//!   version without tags) drops vsync's label.
//! - Listing pages through `nextLink` (`$skiptoken`), `maxresults` 1–25.
//! - **Soft delete**: a deleted secret is listed under `/deletedsecrets`;
//!   setting its name answers 409 `Conflict` with inner error
//!   `ObjectIsDeletedButRecoverable` until it is recovered or purged. The
//!   service finishes deletes, recoveries and purges asynchronously; with
//!   [`KeyVaultServer::set_transition_delay`] the fake does too (409
//!   `ObjectIsBeingDeleted` / `ObjectIsBeingRecovered`, 404 on a secret
//!   being recovered), so a test can prove the sink waits.
//! - [`Faults`], checked after authentication, the api-version, the name
//!   grammar and the caller's permissions: every listing page (of secrets or
//!   of deleted secrets) calls [`Faults::on_call`] with [`Call::List`],
//!   every get of a secret or a deleted secret with [`Call::Read`]; a set,
//!   delete, recover or purge calls [`Faults::on_write`] only once it has
//!   passed its own checks (value size, tags, soft-delete state, existence),
//!   so a write Key Vault refuses is never counted. One function,
//!   `fault_response`, answers them all: 429 `Throttled` with
//!   `Retry-After: 1` (unless the harness asks for none), 503
//!   `ServiceUnavailable`, and 400 `BadParameter` for a broken name.
//!
//! For the clients' defences it can also **misbehave** on purpose
//! ([`KeyVaultServer::break_listing`], [`BrokenListing`]): listing pages
//! that link back to the first page, link to another server, are padded
//! past a size, or list a name Key Vault would never hold.
//!
//! It also plays **Microsoft Entra ID's token endpoint** for the
//! client-credentials grant (`POST /{tenant}/oauth2/v2.0/token`, the path
//! `azure_identity` joins to `AZURE_AUTHORITY_HOST`, so the authority host
//! is [`KeyVaultServer::url`]): a form with `grant_type=client_credentials`,
//! `client_id`, `client_secret` and `scope=https://vault.azure.net/.default`
//! for [`KeyVaultServer::TENANT_ID`], [`KeyVaultServer::CLIENT_ID`] and
//! [`KeyVaultServer::CLIENT_SECRET`] gets `{"token_type":"Bearer",
//! "expires_in":3599,"ext_expires_in":3599,"access_token":TOKEN}`; anything
//! else gets Entra ID's OAuth error JSON (`error`, `error_description`
//! starting with the `AADSTS` code and ending with trace and correlation
//! ids, `error_codes`, …): 401 `invalid_client` AADSTS7000215 for a wrong
//! secret, 400 `unauthorized_client` AADSTS700016 for an unknown client,
//! AADSTS90002 for an unknown tenant, AADSTS1002012 / AADSTS500011 for a
//! scope without `/.default` or for another resource, AADSTS900144 for a
//! missing parameter. [`KeyVaultServer::token_requests`] counts them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::HarnessError;
use crate::faults::{Call, Fault, Faults};

/// The api-versions the fake accepts (the GA versions the sink may send).
const API_VERSIONS: &[&str] = &["7.5", "7.6"];
/// Older GA api-versions Key Vault publishes and still serves, which this
/// fake does not speak.
const OLDER_PUBLISHED_API_VERSIONS: &[&str] = &[
    "2015-06-01",
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
];
/// Key Vault's largest page.
const MAX_PAGE: usize = 25;
/// "Secret is beyond the maximum permitted length of 25600 characters."
const MAX_VALUE_CHARS: usize = 25_600;
/// Key Vault allows 15 tags per object.
const MAX_TAGS: usize = 15;
/// The audience in Key Vault's challenge, as the public cloud sends it
/// (the authority names the vault's tenant, [`KeyVaultServer::TENANT_ID`]).
const CHALLENGE: &str = "Bearer authorization=\"https://login.microsoftonline.com/4f6c2a9e-8d3b-4e1f-a7c5-2b9d0e6f1a38\", resource=\"https://vault.azure.net\"";
/// The only scope the token endpoint issues tokens for: Key Vault's.
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// A running fake Key Vault on `https://127.0.0.1:<random port>`; stops when
/// dropped.
#[derive(Debug)]
pub struct KeyVaultServer {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    faults: Faults,
    vault: Mutex<Vault>,
    /// Requests that carried an `Authorization` header, valid or not.
    bearer_requests: AtomicUsize,
    /// `GET /secrets` pages served.
    list_pages: AtomicUsize,
    /// Requests to the token endpoint, granted or not.
    token_requests: AtomicUsize,
}

/// How the fake's `GET /secrets` pages misbehave, for tests of what a
/// client refuses. Key Vault itself never answers so; a compromised or
/// impersonated endpoint, or a proxy gone wrong, might.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokenListing {
    /// Every page's `nextLink` points back at the first page: a loop.
    LinksBack,
    /// Every page's `nextLink` points at this origin (another server).
    LinksTo(String),
    /// Every page carries an extra field of this many bytes.
    Padded(usize),
    /// Every page also lists an item whose id ends in this name.
    ListsName(String),
}

impl BrokenListing {
    fn apply(&self, base: &str, page: &mut Value) {
        match self {
            BrokenListing::LinksBack => {
                page["nextLink"] = json!(format!("{base}/secrets?api-version=7.6&maxresults=25"));
            }
            BrokenListing::LinksTo(origin) => {
                page["nextLink"] = json!(format!("{origin}/secrets?api-version=7.6&$skiptoken=00"));
            }
            BrokenListing::Padded(bytes) => page["padding"] = json!(" ".repeat(*bytes)),
            BrokenListing::ListsName(name) => {
                if let Some(items) = page["value"].as_array_mut() {
                    items.push(json!({
                        "id": format!("{base}/secrets/{name}"),
                        "attributes": {"enabled": true, "created": 1, "updated": 1},
                    }));
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Vault {
    /// Live secrets by folded (lower-case) name.
    live: BTreeMap<String, Secret>,
    /// Soft-deleted secrets by folded name.
    deleted: BTreeMap<String, Deleted>,
    /// Asynchronous operations still running, by folded name.
    pending: BTreeMap<String, Pending>,
    /// How long deletes, recoveries and purges take to finish.
    transition: Duration,
    /// How listing pages misbehave, if they do.
    broken_listing: Option<BrokenListing>,
    next_version: u64,
}

#[derive(Debug, Clone)]
struct Secret {
    name: String,
    versions: Vec<Version>,
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    value: String,
    content_type: Option<String>,
    tags: BTreeMap<String, String>,
    /// Off after a person disables the version: listed, never served.
    enabled: bool,
    created: u64,
    updated: u64,
}

#[derive(Debug)]
struct Deleted {
    secret: Secret,
    deleted_date: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    Deleting,
    Recovering,
    Purging,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    kind: Transition,
    until: Instant,
}

/// Who a bearer token authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// secrets/get, list, set, delete, recover, purge.
    Officer,
    /// secrets/get and list only.
    Reader,
}

impl KeyVaultServer {
    /// The bearer token with every secrets permission.
    pub const TOKEN: &'static str = "vsync-test-officer-token";
    /// A bearer token with secrets/get and secrets/list only.
    pub const READER_TOKEN: &'static str = "vsync-test-reader-token";
    /// The directory (tenant) the token endpoint serves.
    pub const TENANT_ID: &'static str = "4f6c2a9e-8d3b-4e1f-a7c5-2b9d0e6f1a38";
    /// The application (client) ID of the service principal that may get
    /// [`KeyVaultServer::TOKEN`].
    pub const CLIENT_ID: &'static str = "0b8e5d27-61c4-4a9f-b3e2-7c1d9f4a6e05";
    /// That service principal's client secret (Entra ID's secrets carry
    /// `~`, `.`, `_` and `-`).
    pub const CLIENT_SECRET: &'static str = "Xq48Q~vsync.test-client_secret~0123456789";

    /// Generates a CA and a certificate for `127.0.0.1`, and starts serving.
    pub async fn start() -> Result<Self, HarnessError> {
        let (ca_pem, tls) = tls_config()?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| HarnessError::io("binding the Key Vault fake", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the Key Vault fake's address", e))?;
        let state = Arc::new(Shared {
            faults: Faults::default(),
            vault: Mutex::new(Vault::default()),
            bearer_requests: AtomicUsize::new(0),
            list_pages: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
        });
        let base = format!("https://{addr}");
        let served = Arc::clone(&state);
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let task = tokio::spawn(async move {
            // Aborting this task drops the set, and with it every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let state = Arc::clone(&served);
                let base = base.clone();
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return; // a client that distrusts the CA hangs up here
                    };
                    let service = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        let base = base.clone();
                        async move { Ok::<_, Infallible>(handle(&state, &base, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            ca_pem,
            state,
            task,
        })
    }

    /// The vault URL, e.g. `https://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The fault injection and write counters of this vault.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Makes deletes, recoveries and purges take `delay` to finish, as
    /// they do on the service.
    pub fn set_transition_delay(&self, delay: Duration) {
        self.vault().transition = delay;
    }

    /// Makes every `GET /secrets` page misbehave as `how` says (`None`:
    /// answer as Key Vault does again).
    pub fn break_listing(&self, how: Option<BrokenListing>) {
        self.vault().broken_listing = how;
    }

    /// The current value of a live secret.
    pub fn value(&self, name: &str) -> Option<String> {
        let mut vault = self.vault();
        vault.settle();
        vault
            .visible(name)
            .and_then(|secret| secret.versions.last())
            .map(|version| version.value.clone())
    }

    /// The tags of a live secret's current version.
    pub fn tags(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let mut vault = self.vault();
        vault.settle();
        vault
            .visible(name)
            .and_then(|secret| secret.versions.last())
            .map(|version| version.tags.clone())
    }

    /// The content type of a live secret's current version.
    pub fn content_type(&self, name: &str) -> Option<String> {
        let mut vault = self.vault();
        vault.settle();
        vault
            .visible(name)
            .and_then(|secret| secret.versions.last())
            .and_then(|version| version.content_type.clone())
    }

    /// Adds a tag and sets the content type of a live secret's current
    /// version, the way the portal's "update properties" does (no new
    /// version, `updated` moves).
    pub fn annotate_outside(&self, name: &str, tag: &str, value: &str, content_type: Option<&str>) {
        let mut vault = self.vault();
        vault.settle();
        if let Some(version) = vault
            .live
            .get_mut(&fold(name))
            .and_then(|secret| secret.versions.last_mut())
        {
            version.tags.insert(tag.to_owned(), value.to_owned());
            version.content_type = content_type.map(str::to_owned);
            version.updated = now();
        }
    }

    /// How many versions a live secret has.
    pub fn versions(&self, name: &str) -> usize {
        let mut vault = self.vault();
        vault.settle();
        vault
            .visible(name)
            .map_or(0, |secret| secret.versions.len())
    }

    /// Every live secret's name, as created.
    pub fn names(&self) -> Vec<String> {
        let mut vault = self.vault();
        vault.settle();
        vault
            .live
            .iter()
            .filter(|(folded, _)| !vault.is_pending(folded, Transition::Recovering))
            .map(|(_, secret)| secret.name.clone())
            .collect()
    }

    /// Every soft-deleted secret's name (deletions still running included).
    pub fn deleted_names(&self) -> Vec<String> {
        let mut vault = self.vault();
        vault.settle();
        vault
            .deleted
            .values()
            .map(|deleted| deleted.secret.name.clone())
            .collect()
    }

    /// Sets `name` the way a person in the portal does: a new version,
    /// without tags.
    pub fn set_outside(&self, name: &str, value: &str) {
        let mut vault = self.vault();
        vault.settle();
        vault.set(name, value.to_owned(), None, BTreeMap::new());
    }

    /// Disables the current version of `name` the way a person in the
    /// portal does (`az keyvault secret set-attributes --enabled false`):
    /// it stays listed, and reading it is forbidden.
    pub fn disable_outside(&self, name: &str) {
        let mut vault = self.vault();
        vault.settle();
        let secret = vault
            .live
            .get_mut(&fold(name))
            .unwrap_or_else(|| panic!("{name} exists"));
        let version = secret.versions.last_mut().expect("a secret has a version");
        version.enabled = false;
        version.updated = now();
    }

    /// Soft-deletes `name` the way a person in the portal does.
    pub fn delete_outside(&self, name: &str) {
        let mut vault = self.vault();
        vault.settle();
        vault.delete(&fold(name));
    }

    /// How many requests carried an `Authorization` header.
    pub fn bearer_requests(&self) -> usize {
        self.state.bearer_requests.load(Ordering::SeqCst)
    }

    /// How many `GET /secrets` pages were served.
    pub fn list_pages(&self) -> usize {
        self.state.list_pages.load(Ordering::SeqCst)
    }

    /// How many requests the token endpoint received, granted or not.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    fn vault(&self) -> std::sync::MutexGuard<'_, Vault> {
        self.state.vault.lock().expect("vault lock")
    }
}

impl Drop for KeyVaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tls_config() -> Result<(String, rustls::ServerConfig), HarnessError> {
    let tls_error = |what: &str, e: &dyn std::fmt::Display| HarnessError::Io {
        context: format!("generating the Key Vault fake's {what}"),
        source: std::io::Error::other(e.to_string()),
    };
    let ca_key = rcgen::KeyPair::generate().map_err(|e| tls_error("CA key", &e))?;
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("CA", &e))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "vsync test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| tls_error("CA", &e))?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = rcgen::KeyPair::generate().map_err(|e| tls_error("server key", &e))?;
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(|e| tls_error("server certificate", &e))?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "vsync Key Vault fake");
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| tls_error("server certificate", &e))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS config", &e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .map_err(|e| tls_error("TLS config", &e))?;
    Ok((ca_cert.pem(), config))
}

fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Vault {
    /// Finishes the asynchronous operations whose time has come.
    fn settle(&mut self) {
        let now = Instant::now();
        self.pending.retain(|_, pending| pending.until > now);
    }

    fn is_pending(&self, folded: &str, kind: Transition) -> bool {
        self.pending
            .get(folded)
            .is_some_and(|pending| pending.kind == kind)
    }

    fn start(&mut self, folded: &str, kind: Transition) {
        if !self.transition.is_zero() {
            self.pending.insert(
                folded.to_owned(),
                Pending {
                    kind,
                    until: Instant::now() + self.transition,
                },
            );
        }
    }

    /// A live secret that has finished any recovery.
    fn visible(&self, name: &str) -> Option<&Secret> {
        let folded = fold(name);
        if self.is_pending(&folded, Transition::Recovering) {
            return None;
        }
        self.live.get(&folded)
    }

    fn set(
        &mut self,
        name: &str,
        value: String,
        content_type: Option<String>,
        tags: BTreeMap<String, String>,
    ) -> &Secret {
        self.next_version += 1;
        // 32 hex digits, like Key Vault's version ids.
        let id = format!(
            "{:016x}{:016x}",
            self.next_version.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            self.next_version
        );
        let time = now();
        let secret = self.live.entry(fold(name)).or_insert_with(|| Secret {
            name: name.to_owned(),
            versions: Vec::new(),
        });
        secret.versions.push(Version {
            id,
            value,
            content_type,
            tags,
            enabled: true,
            created: time,
            updated: time,
        });
        secret
    }

    fn delete(&mut self, folded: &str) -> Option<&Deleted> {
        let secret = self.live.remove(folded)?;
        self.deleted.insert(
            folded.to_owned(),
            Deleted {
                secret,
                deleted_date: now(),
            },
        );
        self.start(folded, Transition::Deleting);
        self.deleted.get(folded)
    }
}

// ---- HTTP ----------------------------------------------------------------

type FakeBody = Full<Bytes>;

async fn handle(state: &Shared, base: &str, req: Request<Incoming>) -> Response<FakeBody> {
    if req.method() == Method::POST
        && let Some(tenant) = token_path(req.uri().path())
    {
        let tenant = tenant.to_owned();
        return token(state, &tenant, req).await;
    }
    let caller = match authenticate(state, &req) {
        Ok(caller) => caller,
        Err(message) => return challenge(message),
    };
    let query = parse_query(req.uri().query().unwrap_or(""));
    match query.get("api-version") {
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        }
        Some(version) if OLDER_PUBLISHED_API_VERSIONS.contains(&version.as_str()) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                &format!(
                    "api-version {version} is a published Key Vault version, but this test fake serves only {}.",
                    API_VERSIONS.join(" and ")
                ),
            );
        }
        Some(version) if !API_VERSIONS.contains(&version.as_str()) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                &format!(
                    "The specified version ({version}) is not recognized. Consider using the latest supported version (7.6)."
                ),
            );
        }
        Some(_) => {}
    }
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    let route = (method.as_str(), segments.as_slice());
    let name = segments.get(1).copied().unwrap_or("");
    if segments.len() >= 2 && !valid_name(name) {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            None,
            &format!(
                "The request URI contains an invalid name: {name}. Names may contain only 0-9, a-z, A-Z and -, up to 127 characters."
            ),
        );
    }
    let is_write = method == Method::PUT || method == Method::DELETE || method == Method::POST;
    if is_write && caller == Caller::Reader {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            Some("AccessDenied"),
            "The user, group or application does not have the secrets permission needed for this operation.",
        );
    }
    let read = match route {
        ("GET", ["secrets" | "deletedsecrets"]) => Some(Call::List),
        ("GET", ["secrets" | "deletedsecrets", ..]) => Some(Call::Read),
        _ => None,
    };
    if let Some(fault) = read.and_then(|call| state.faults.on_call(call)) {
        return fault_response(fault);
    }

    let body = if method == Method::PUT {
        match Limited::new(req.into_body(), 1 << 20).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    None,
                    "The request body could not be read.",
                );
            }
        }
    } else {
        Bytes::new()
    };

    let faults = &state.faults;
    let mut vault = state.vault.lock().expect("vault lock");
    vault.settle();
    match route {
        ("GET", ["secrets"]) => list(state, &vault, base, &query),
        ("GET", ["deletedsecrets"]) => list_deleted(&vault, base, &query),
        ("GET", ["secrets", name]) => get(&vault, base, name, None),
        ("GET", ["secrets", name, version]) => get(&vault, base, name, Some(version)),
        ("PUT", ["secrets", name]) => set(faults, &mut vault, base, name, &body),
        ("DELETE", ["secrets", name]) => delete(faults, &mut vault, base, name),
        ("GET", ["deletedsecrets", name]) => get_deleted(&vault, base, name),
        ("DELETE", ["deletedsecrets", name]) => purge(faults, &mut vault, name),
        ("POST", ["deletedsecrets", name, "recover"]) => recover(faults, &mut vault, base, name),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadParameter",
            None,
            "The fake does not serve this operation.",
        ),
    }
}

/// The caller a request's bearer token authenticates, or why it does not.
fn authenticate(state: &Shared, req: &Request<Incoming>) -> Result<Caller, &'static str> {
    let Some(header) = req.headers().get(header::AUTHORIZATION) else {
        return Err("AKV10000: Request is missing a Bearer or PoP token.");
    };
    state.bearer_requests.fetch_add(1, Ordering::SeqCst);
    match header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")) {
        Some(KeyVaultServer::TOKEN) => Ok(Caller::Officer),
        Some(KeyVaultServer::READER_TOKEN) => Ok(Caller::Reader),
        _ => Err("AKV10022: Invalid audience or the token could not be validated."),
    }
}

// ---- Entra ID's token endpoint ---------------------------------------------

/// The tenant of a `/{tenant}/oauth2/v2.0/token` path.
fn token_path(path: &str) -> Option<&str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] => Some(tenant),
        _ => None,
    }
}

/// The client-credentials grant, as Entra ID answers it.
async fn token(state: &Shared, tenant: &str, req: Request<Incoming>) -> Response<FakeBody> {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let body = match Limited::new(req.into_body(), 1 << 16).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    // Anything but a form reads as no parameters at all.
    let form = if is_form {
        parse_query(&String::from_utf8_lossy(&body))
    } else {
        BTreeMap::new()
    };
    let missing = |parameter: &str| {
        entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            &format!("The request body must contain the following parameter: '{parameter}'."),
        )
    };
    if tenant != KeyVaultServer::TENANT_ID {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
    }
    let Some(grant_type) = form.get("grant_type") else {
        return missing("grant_type");
    };
    if grant_type != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = form.get("client_id") else {
        return missing("client_id");
    };
    if client_id != KeyVaultServer::CLIENT_ID {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    }
    match form.get("client_secret") {
        None => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            );
        }
        Some(secret) if secret != KeyVaultServer::CLIENT_SECRET => {
            return entra_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
        Some(_) => {}
    }
    let Some(scope) = form.get("scope") else {
        return missing("scope");
    };
    let Some(resource) = scope.strip_suffix("/.default") else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    };
    if scope != VAULT_SCOPE {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500_011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        );
    }
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": KeyVaultServer::TOKEN,
        }),
    );
    no_store(&mut response);
    response
}

/// Entra ID's OAuth 2.0 error: `error_description` starts with the
/// AADSTS code and ends with the trace and correlation ids and the time.
fn entra_error(status: StatusCode, error: &str, code: u32, message: &str) -> Response<FakeBody> {
    static REQUESTS: AtomicUsize = AtomicUsize::new(0);
    let n = REQUESTS.fetch_add(1, Ordering::Relaxed) as u64;
    let id = |salt: u64| {
        let x = (n ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            (x >> 20) & 0xfff,
            x & 0xffff_ffff_ffff
        )
    };
    let trace_id = id(0x5eed);
    let correlation_id = id(0xc0ffee);
    let timestamp = utc_timestamp(now());
    let mut response = json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    );
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response<FakeBody>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `YYYY-MM-DD hh:mm:ssZ`, the form of Entra ID's error timestamps.
fn utc_timestamp(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let seconds = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn challenge(message: &str) -> Response<FakeBody> {
    let mut response = error(StatusCode::UNAUTHORIZED, "Unauthorized", None, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    );
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<FakeBody> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn error(status: StatusCode, code: &str, inner: Option<&str>, message: &str) -> Response<FakeBody> {
    let mut detail = json!({ "code": code, "message": message });
    if let Some(inner) = inner {
        detail["innererror"] = json!({ "code": inner });
    }
    json_response(status, &json!({ "error": detail }))
}

/// A [`Fault`] answered the way Key Vault does: 429 `Throttled` (with
/// `Retry-After` in seconds unless the harness asks for none), 503
/// `ServiceUnavailable`, or 400 `BadParameter` for a write the harness
/// refuses.
fn fault_response(fault: Fault) -> Response<FakeBody> {
    match fault {
        Fault::Throttle { retry_after } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttled",
                None,
                "Request was not processed because too many requests were received.",
            );
            if retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
        Fault::Unavailable => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            None,
            "The service is unavailable (fault injected by the test).",
        ),
        Fault::Break => error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            None,
            "The request was refused (fault injected by the test).",
        ),
    }
}

fn not_found(name: &str) -> Response<FakeBody> {
    error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        None,
        &format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command."
        ),
    )
}

fn deleted_not_found(name: &str) -> Response<FakeBody> {
    error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        None,
        &format!("Deleted Secret not found: {name}"),
    )
}

fn conflict(inner: &str, message: String) -> Response<FakeBody> {
    error(StatusCode::CONFLICT, "Conflict", Some(inner), &message)
}

fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let digits = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(digits, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn attributes(version: &Version) -> Value {
    json!({
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    })
}

/// A secret bundle: the current version, with its value when `value`.
fn bundle(base: &str, secret: &Secret, value: bool) -> Value {
    let version = secret.versions.last().expect("a secret has a version");
    version_bundle(base, secret, version, value)
}

fn version_bundle(base: &str, secret: &Secret, version: &Version, value: bool) -> Value {
    let mut body = Map::new();
    if value {
        body.insert("value".into(), json!(version.value));
    }
    body.insert(
        "id".into(),
        json!(format!("{base}/secrets/{}/{}", secret.name, version.id)),
    );
    body.insert("attributes".into(), attributes(version));
    if !version.tags.is_empty() {
        body.insert("tags".into(), json!(version.tags));
    }
    if let Some(content_type) = &version.content_type {
        body.insert("contentType".into(), json!(content_type));
    }
    Value::Object(body)
}

fn deleted_bundle(base: &str, deleted: &Deleted) -> Value {
    let mut body = bundle(base, &deleted.secret, false);
    body["recoveryId"] = json!(format!("{base}/deletedsecrets/{}", deleted.secret.name));
    body["deletedDate"] = json!(deleted.deleted_date);
    body["scheduledPurgeDate"] = json!(deleted.deleted_date + 90 * 24 * 3600);
    body
}

/// The page size asked for, or why Key Vault refuses it.
fn page_size(query: &BTreeMap<String, String>) -> Result<usize, String> {
    match query.get("maxresults") {
        None => Ok(MAX_PAGE),
        Some(raw) => match raw.parse::<usize>() {
            Ok(size) if (1..=MAX_PAGE).contains(&size) => Ok(size),
            _ => Err(format!(
                "invalid maxresults {raw}: it must be between 1 and {MAX_PAGE}"
            )),
        },
    }
}

/// One page of `items` (folded name, JSON) after `$skiptoken`, with the
/// `nextLink` of the next page.
fn page(
    base: &str,
    collection: &str,
    query: &BTreeMap<String, String>,
    items: Vec<(&String, Value)>,
) -> Response<FakeBody> {
    match page_body(base, collection, query, items) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(response) => *response,
    }
}

/// The body of [`page`], or the error Key Vault answers for its query.
fn page_body(
    base: &str,
    collection: &str,
    query: &BTreeMap<String, String>,
    items: Vec<(&String, Value)>,
) -> Result<Value, Box<Response<FakeBody>>> {
    let size = match page_size(query) {
        Ok(size) => size,
        Err(message) => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                &message,
            )));
        }
    };
    // The token is opaque to clients: here the hex of the last folded name served.
    let after = match query.get("$skiptoken").map(|token| unhex(token)) {
        None => None,
        Some(Some(after)) => Some(after),
        Some(None) => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                None,
                "invalid $skiptoken",
            )));
        }
    };
    let rest: Vec<(&String, Value)> = items
        .into_iter()
        .filter(|(folded, _)| {
            after
                .as_ref()
                .is_none_or(|after| folded.as_str() > after.as_str())
        })
        .collect();
    let more = rest.len() > size;
    let served: Vec<(&String, Value)> = rest.into_iter().take(size).collect();
    let next_link = match (more, served.last()) {
        (true, Some((last, _))) => json!(format!(
            "{base}/{collection}?api-version=7.6&$skiptoken={}&maxresults={size}",
            hex(last)
        )),
        _ => Value::Null,
    };
    let value: Vec<Value> = served.into_iter().map(|(_, item)| item).collect();
    Ok(json!({ "value": value, "nextLink": next_link }))
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn list(
    state: &Shared,
    vault: &Vault,
    base: &str,
    query: &BTreeMap<String, String>,
) -> Response<FakeBody> {
    let items = vault
        .live
        .iter()
        .filter(|(folded, _)| !vault.is_pending(folded, Transition::Recovering))
        .map(|(folded, secret)| {
            let version = secret.versions.last().expect("a secret has a version");
            let mut item = Map::new();
            item.insert(
                "id".into(),
                json!(format!("{base}/secrets/{}", secret.name)),
            );
            item.insert("attributes".into(), attributes(version));
            if !version.tags.is_empty() {
                item.insert("tags".into(), json!(version.tags));
            }
            if let Some(content_type) = &version.content_type {
                item.insert("contentType".into(), json!(content_type));
            }
            (folded, Value::Object(item))
        })
        .collect();
    let mut body = match page_body(base, "secrets", query, items) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    if let Some(broken) = &vault.broken_listing {
        broken.apply(base, &mut body);
    }
    state.list_pages.fetch_add(1, Ordering::SeqCst);
    json_response(StatusCode::OK, &body)
}

fn list_deleted(vault: &Vault, base: &str, query: &BTreeMap<String, String>) -> Response<FakeBody> {
    let items = vault
        .deleted
        .iter()
        .filter(|(folded, _)| !vault.is_pending(folded, Transition::Deleting))
        .map(|(folded, deleted)| (folded, deleted_bundle(base, deleted)))
        .collect();
    page(base, "deletedsecrets", query, items)
}

fn get(vault: &Vault, base: &str, name: &str, version: Option<&str>) -> Response<FakeBody> {
    let Some(secret) = vault.visible(name) else {
        return not_found(name);
    };
    let version = match version {
        None => secret.versions.last(),
        Some(id) => secret.versions.iter().find(|version| version.id == id),
    };
    match version {
        Some(version) if !version.enabled => error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            Some("SecretDisabled"),
            "Operation get is not allowed on a disabled secret.",
        ),
        Some(version) => {
            json_response(StatusCode::OK, &version_bundle(base, secret, version, true))
        }
        None => not_found(name),
    }
}

fn set(
    faults: &Faults,
    vault: &mut Vault,
    base: &str,
    name: &str,
    body: &[u8],
) -> Response<FakeBody> {
    let folded = fold(name);
    match vault.pending.get(&folded).map(|pending| pending.kind) {
        Some(Transition::Deleting | Transition::Purging) => {
            return conflict(
                "ObjectIsBeingDeleted",
                format!("Secret {name} is currently being deleted."),
            );
        }
        Some(Transition::Recovering) => {
            return conflict(
                "ObjectIsBeingRecovered",
                format!(
                    "Secret {name} is currently being recovered and cannot be re-created; retry later."
                ),
            );
        }
        None => {}
    }
    if vault.deleted.contains_key(&folded) {
        return conflict(
            "ObjectIsDeletedButRecoverable",
            format!(
                "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
            ),
        );
    }
    let bad = |message: &str| error(StatusCode::BAD_REQUEST, "BadParameter", None, message);
    let Ok(Value::Object(mut parameters)) = serde_json::from_slice::<Value>(body) else {
        return bad("The request body is not a JSON object.");
    };
    let value = match parameters.remove("value") {
        Some(Value::String(value)) => value,
        _ => return bad("Property value is required and must be a string."),
    };
    if value.chars().count() > MAX_VALUE_CHARS {
        return bad("Secret is beyond the maximum permitted length of 25600 characters.");
    }
    let content_type = match parameters.remove("contentType") {
        None | Some(Value::Null) => None,
        Some(Value::String(content_type)) if content_type.len() <= 255 => Some(content_type),
        Some(_) => return bad("contentType must be a string of at most 255 characters."),
    };
    let tags = match parameters.remove("tags") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(tags)) => {
            let mut parsed = BTreeMap::new();
            for (key, value) in tags {
                let Value::String(value) = value else {
                    return bad("tag values must be strings.");
                };
                parsed.insert(key, value);
            }
            if parsed.len() > MAX_TAGS {
                return bad("An object may have at most 15 tags.");
            }
            parsed
        }
        Some(_) => return bad("tags must be an object."),
    };
    if let Some(fault) = faults.on_write(name) {
        return fault_response(fault);
    }
    let secret = vault.set(name, value, content_type, tags);
    json_response(StatusCode::OK, &bundle(base, secret, true))
}

fn delete(faults: &Faults, vault: &mut Vault, base: &str, name: &str) -> Response<FakeBody> {
    let folded = fold(name);
    if vault.is_pending(&folded, Transition::Recovering) {
        return conflict(
            "ObjectIsBeingRecovered",
            format!("Secret {name} is currently being recovered."),
        );
    }
    if !vault.live.contains_key(&folded) {
        return not_found(name);
    }
    if let Some(fault) = faults.on_write(name) {
        return fault_response(fault);
    }
    match vault.delete(&folded) {
        Some(deleted) => json_response(StatusCode::OK, &deleted_bundle(base, deleted)),
        None => not_found(name),
    }
}

fn get_deleted(vault: &Vault, base: &str, name: &str) -> Response<FakeBody> {
    let folded = fold(name);
    match vault.deleted.get(&folded) {
        Some(deleted) if !vault.is_pending(&folded, Transition::Deleting) => {
            json_response(StatusCode::OK, &deleted_bundle(base, deleted))
        }
        _ => deleted_not_found(name),
    }
}

fn purge(faults: &Faults, vault: &mut Vault, name: &str) -> Response<FakeBody> {
    let folded = fold(name);
    if vault.is_pending(&folded, Transition::Deleting) {
        return conflict(
            "ObjectIsBeingDeleted",
            format!("Secret {name} is currently being deleted."),
        );
    }
    if !vault.deleted.contains_key(&folded) {
        return deleted_not_found(name);
    }
    if let Some(fault) = faults.on_write(name) {
        return fault_response(fault);
    }
    vault.deleted.remove(&folded);
    vault.start(&folded, Transition::Purging);
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn recover(faults: &Faults, vault: &mut Vault, base: &str, name: &str) -> Response<FakeBody> {
    let folded = fold(name);
    if vault.is_pending(&folded, Transition::Deleting) {
        return conflict(
            "ObjectIsBeingDeleted",
            format!("Secret {name} is currently being deleted."),
        );
    }
    if !vault.deleted.contains_key(&folded) {
        return deleted_not_found(name);
    }
    if let Some(fault) = faults.on_write(name) {
        return fault_response(fault);
    }
    let Some(deleted) = vault.deleted.remove(&folded) else {
        return deleted_not_found(name);
    };
    let body = bundle(base, &deleted.secret, false);
    vault.live.insert(folded.clone(), deleted.secret);
    vault.start(&folded, Transition::Recovering);
    json_response(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_decoded() {
        let query = parse_query("api-version=7.6&%24skiptoken=6162&maxresults=10");
        assert_eq!(query.get("$skiptoken").map(String::as_str), Some("6162"));
        assert_eq!(query.get("maxresults").map(String::as_str), Some("10"));
        assert_eq!(unhex("6162").as_deref(), Some("ab"));
        assert_eq!(unhex("6"), None);
    }

    #[test]
    fn pages_hold_1_to_25_secrets() {
        let ask = |size: &str| page_size(&parse_query(&format!("maxresults={size}")));
        assert_eq!(ask("1"), Ok(1));
        assert_eq!(ask("25"), Ok(25));
        assert!(ask("26").is_err());
        assert!(ask("0").is_err());
        assert_eq!(
            page_size(&BTreeMap::new()),
            Ok(25),
            "the default is the maximum"
        );
    }

    #[test]
    fn token_paths_and_timestamps() {
        assert_eq!(
            token_path("/4f6c2a9e-8d3b-4e1f-a7c5-2b9d0e6f1a38/oauth2/v2.0/token"),
            Some("4f6c2a9e-8d3b-4e1f-a7c5-2b9d0e6f1a38")
        );
        assert_eq!(token_path("/t/oauth2/token"), None);
        assert_eq!(token_path("/secrets"), None);
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc_timestamp(1_743_801_004), "2025-04-04 21:10:04Z");
        assert_eq!(utc_timestamp(951_825_600), "2000-02-29 12:00:00Z");
    }

    #[test]
    fn names_follow_key_vault_grammar() {
        assert!(valid_name("DATABASE-URL"));
        assert!(valid_name("1st-secret"));
        assert!(!valid_name("DATABASE_URL"));
        assert!(!valid_name("a.b"));
        assert!(!valid_name(&"a".repeat(128)));
        assert!(!valid_name(""));
    }
}
