//! A protocol-faithful fake of HashiCorp Vault's KV HTTP API (versions 1
//! and 2) and of the AppRole and Kubernetes logins, for the Vault KV sink
//! and the Vault source.
//!
//! No Vault server installs from the registries this harness may use, so
//! this fake answers the subset vsync speaks, the way Vault 1.x does:
//!
//! - `GET /v1/<mount>/data/<path>[?version=N]`: the map and its version
//!   metadata; `404 {"errors":[]}` when the secret (or that version) does
//!   not exist.
//! - `POST /v1/<mount>/data/<path>` with `{"data":{…},"options":{"cas":N}}`:
//!   a new version. `cas` must equal the current version (0: the secret must
//!   not exist yet), else `400 check-and-set parameter did not match the
//!   current version`; `cas_required` secrets refuse a write without it.
//!   Old versions beyond `max_versions` (10 when unset) are dropped.
//! - `GET`/`POST /v1/<mount>/metadata/<path>`: the secret's metadata,
//!   including `custom_metadata` (at most 64 keys, keys ≤ 128 bytes, values
//!   ≤ 512 bytes, as Vault checks) and each version's `deletion_time` and
//!   `destroyed`.
//! - `LIST /v1/<mount>/metadata/<folder>` (or `GET …?list=true`): the
//!   folder's secrets and subfolders (`name/`), sorted, in `data.keys`;
//!   `404 {"errors":[]}` for an empty or absent folder. A secret is listed
//!   while its metadata exists, even when its current version is deleted.
//! - `DELETE /v1/<mount>/data/<path>` (`vault kv delete`: a soft delete of
//!   the current version), `POST /v1/<mount>/delete/<path>` and
//!   `/undelete/<path>` with `{"versions":[…]}`, and `POST
//!   /v1/<mount>/destroy/<path>` (`vault kv destroy`: the data is wiped for
//!   good); each answers `204`. Reading a deleted or destroyed version
//!   answers `404` with Vault's whole response envelope, `data.data` null
//!   and `data.metadata` naming the version with its `deletion_time` or
//!   `destroyed: true`, not `{"errors":[]}`. The secret's current version
//!   stays the deleted one, so a check-and-set write must still name it.
//! - A KV version 1 mount ([`VaultServer::mount_kv1`]): `GET
//!   /v1/<mount>/<path>` reads the map (no versions, no metadata), `LIST`
//!   lists a folder as above.
//! - `GET /v1/sys/internal/ui/mounts/<path>`: the mount holding the path
//!   with its `type` and `options.version` (none for KV v1), `403` for a
//!   path under no mount, as Vault answers so mounts cannot be probed.
//!   There is no `sys/mounts`: mounts are set up through
//!   [`VaultServer::mount_kv2`] and [`VaultServer::mount_kv1`].
//! - `POST /v1/auth/<mount>/login`, needing no token: AppRole (`role_id`,
//!   `secret_id`; bad ones answer `400 invalid role or secret ID`) at
//!   `approle`, Kubernetes (`role`, `jwt`; an unknown role `400`, a JWT the
//!   cluster does not vouch for `403 permission denied`) at `kubernetes`,
//!   and wherever [`VaultServer::enable_approle`] and
//!   [`VaultServer::enable_kubernetes`] put them. A login issues a fresh
//!   token in the `auth` block, allowed to read and list.
//! - `X-Vault-Token` (or `Authorization: Bearer`) must be a known token, else
//!   `403 permission denied`; the read-only token and issued tokens get the
//!   same 403 on writes. A path under no mount answers `404 no handler for
//!   route`, the way Vault does. When started in a namespace, only requests
//!   carrying that `X-Vault-Namespace` (logins included) see its mounts.
//!
//! Faults ([`Faults`]), checked once the token, namespace, mount and
//! request have passed Vault's checks: every `LIST` calls
//! [`Faults::on_call`] with [`Call::List`] (Vault does not page a listing,
//! so one request is one page), every data or metadata read with
//! [`Call::Read`] (the sink's inventory is one data read). A data write calls
//! [`Faults::on_write`] once per key whose value it adds, changes or removes
//! (once with the path when it changes none), stopping at the first fault;
//! a metadata write (the sink's `managed-by` label), a delete, undelete or
//! destroy calls it once with the path, so the counter sees every write
//! request. Logins and the mount lookup are not armed. One function,
//! `fault_response`, answers them all as Vault
//! does: a throttle is the rate-limit quota's `429`, with `Retry-After`
//! unless the harness asks for none; an outage `503` "Vault is sealed"; a
//! write touching a broken key is refused whole with a `400`, because Vault
//! applies a map write all or nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::HarnessError;
use crate::fake_http::{FakeServer, rfc3339_now};
use crate::faults::{Call, Fault, Faults};

/// Vault's default for a secret whose `max_versions` is 0.
const DEFAULT_MAX_VERSIONS: u64 = 10;

/// A running Vault KV fake on `127.0.0.1` with a random port; stops when
/// dropped. A KV v2 engine is mounted at `secret/` (as on a dev server),
/// AppRole at `auth/approle` and Kubernetes at `auth/kubernetes`.
#[derive(Debug)]
pub struct VaultServer {
    server: FakeServer,
    state: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    namespace: Option<String>,
    faults: Faults,
    mounts: Mutex<HashMap<String, HashMap<String, Secret>>>,
    access: Mutex<Access>,
}

/// Who may log in where, and what the logins handed out.
#[derive(Debug)]
struct Access {
    /// The mounts of `mounts` that are KV version 1.
    kv1: HashSet<String>,
    /// Auth mount path → method (`approle`, `kubernetes`).
    auth: HashMap<String, &'static str>,
    /// Tokens the logins issued (read and list only).
    issued: HashSet<String>,
}

#[derive(Debug)]
struct Secret {
    current_version: u64,
    oldest_version: u64,
    max_versions: u64,
    cas_required: bool,
    custom_metadata: BTreeMap<String, String>,
    created_time: String,
    updated_time: String,
    versions: BTreeMap<u64, Version>,
}

#[derive(Debug)]
struct Version {
    data: Map<String, Value>,
    created_time: String,
    /// RFC 3339 once soft-deleted, else empty (as Vault prints it).
    deletion_time: String,
    destroyed: bool,
}

impl Version {
    /// Neither soft-deleted nor destroyed: a read serves its data.
    fn is_live(&self) -> bool {
        self.deletion_time.is_empty() && !self.destroyed
    }
}

impl Secret {
    fn new() -> Self {
        let now = rfc3339_now();
        Secret {
            current_version: 0,
            oldest_version: 0,
            max_versions: 0,
            cas_required: false,
            custom_metadata: BTreeMap::new(),
            created_time: now.clone(),
            updated_time: now,
            versions: BTreeMap::new(),
        }
    }

    /// The current version, unless it is deleted or destroyed.
    fn current(&self) -> Option<&Version> {
        self.versions
            .get(&self.current_version)
            .filter(|v| v.is_live())
    }

    /// Stores `data` as the next version and drops versions past
    /// `max_versions`.
    fn push(&mut self, data: Map<String, Value>) -> u64 {
        let now = rfc3339_now();
        self.current_version += 1;
        self.versions.insert(
            self.current_version,
            Version {
                data,
                created_time: now.clone(),
                deletion_time: String::new(),
                destroyed: false,
            },
        );
        self.updated_time = now;
        let keep = if self.max_versions == 0 {
            DEFAULT_MAX_VERSIONS
        } else {
            self.max_versions
        };
        while self.versions.len() as u64 > keep {
            self.versions.pop_first();
        }
        self.oldest_version = self.versions.keys().next().copied().unwrap_or(0);
        self.current_version
    }

    fn custom_metadata_json(&self) -> Value {
        if self.custom_metadata.is_empty() {
            Value::Null
        } else {
            json!(self.custom_metadata)
        }
    }

    fn version_metadata(&self, number: u64, version: &Version) -> Value {
        json!({
            "created_time": version.created_time,
            "custom_metadata": self.custom_metadata_json(),
            "deletion_time": version.deletion_time,
            "destroyed": version.destroyed,
            "version": number,
        })
    }
}

impl VaultServer {
    /// The token with read and write access to every mount.
    pub const ROOT_TOKEN: &'static str = "hvs.vsync-fake-root-token";
    /// A token whose policy allows reads only: writes answer 403.
    pub const READ_ONLY_TOKEN: &'static str = "hvs.vsync-fake-read-only-token";
    /// The AppRole role id the `approle` auth method knows.
    pub const ROLE_ID: &'static str = "vsync-fake-role-id";
    /// The secret id that goes with [`VaultServer::ROLE_ID`].
    pub const SECRET_ID: &'static str = "vsync-fake-secret-id";
    /// The role the `kubernetes` auth method knows.
    pub const K8S_ROLE: &'static str = "vsync-app";
    /// The service-account JWT the `kubernetes` auth method accepts for
    /// [`VaultServer::K8S_ROLE`] (Vault would have the cluster's
    /// TokenReview check it).
    pub const K8S_JWT: &'static str = "eyJhbGciOiJSUzI1NiJ9.vsync-fake-service-account.c2ln";

    /// Starts the fake with `secret/` mounted, in the root namespace.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(None).await
    }

    /// Starts the fake with `secret/` mounted inside the Enterprise
    /// namespace `namespace`: requests must carry `X-Vault-Namespace`.
    pub async fn start_in_namespace(namespace: &str) -> Result<Self, HarnessError> {
        Self::start_with(Some(namespace.trim_matches('/').to_owned())).await
    }

    async fn start_with(namespace: Option<String>) -> Result<Self, HarnessError> {
        let state = Arc::new(Shared {
            namespace,
            faults: Faults::default(),
            mounts: Mutex::new(HashMap::from([("secret".to_owned(), HashMap::new())])),
            access: Mutex::new(Access {
                kv1: HashSet::new(),
                auth: HashMap::from([
                    ("approle".to_owned(), "approle"),
                    ("kubernetes".to_owned(), "kubernetes"),
                ]),
                issued: HashSet::new(),
            }),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let server = FakeServer::start(router).await?;
        Ok(VaultServer { server, state })
    }

    /// The server address, e.g. `http://127.0.0.1:41234` (`VAULT_ADDR`).
    pub fn address(&self) -> String {
        self.server.endpoint()
    }

    /// The fault injection and write counter of this fake.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Mounts another KV v2 engine at `mount` (e.g. `kv/team-a`).
    pub fn mount_kv2(&self, mount: &str) {
        self.state
            .mounts()
            .entry(mount.trim_matches('/').to_owned())
            .or_default();
    }

    /// Mounts a KV version 1 engine at `mount`, as `vault secrets enable
    /// -path=<mount> kv` makes one (no version option): unversioned
    /// secrets, read at `<mount>/<path>` and listed there.
    pub fn mount_kv1(&self, mount: &str) {
        let mount = mount.trim_matches('/').to_owned();
        self.state.mounts().entry(mount.clone()).or_default();
        self.state.access().kv1.insert(mount);
    }

    /// Enables the AppRole auth method at `auth/<path>` (besides
    /// `auth/approle`), knowing [`VaultServer::ROLE_ID`].
    pub fn enable_approle(&self, path: &str) {
        self.enable_auth(path, "approle");
    }

    /// Enables the Kubernetes auth method at `auth/<path>` (besides
    /// `auth/kubernetes`), knowing [`VaultServer::K8S_ROLE`].
    pub fn enable_kubernetes(&self, path: &str) {
        self.enable_auth(path, "kubernetes");
    }

    fn enable_auth(&self, path: &str, method: &'static str) {
        self.state
            .access()
            .auth
            .insert(path.trim_matches('/').to_owned(), method);
    }

    /// Successful logins so far (AppRole and Kubernetes).
    pub fn logins(&self) -> usize {
        self.state.access().issued.len()
    }

    /// Removes the secret with all its versions and metadata, as `vault kv
    /// metadata delete` (KV v2) or `vault kv delete` (KV v1) does: listings
    /// no longer show it.
    pub fn remove_outside(&self, mount: &str, path: &str) {
        if let Some(secrets) = self.state.mounts().get_mut(mount.trim_matches('/')) {
            secrets.remove(path.trim_matches('/'));
        }
    }

    /// Soft-deletes (`vault kv delete`) or, with `destroy`, destroys
    /// (`vault kv destroy`) the secret's current version. Its metadata
    /// stays, so listings still show it, and a read answers 404 with that
    /// version's metadata.
    pub fn delete_current_outside(&self, mount: &str, path: &str, destroy: bool) {
        let mut mounts = self.state.mounts();
        let secret = mounts
            .get_mut(mount.trim_matches('/'))
            .and_then(|secrets| secrets.get_mut(path.trim_matches('/')))
            .expect("the secret exists");
        let current = secret.current_version;
        let version = secret
            .versions
            .get_mut(&current)
            .expect("a current version");
        if destroy {
            version.destroyed = true;
            version.data = Map::new();
        } else {
            version.deletion_time = rfc3339_now();
        }
    }

    /// The current version's map at `mount`/`path`, if the secret exists and
    /// that version is neither deleted nor destroyed.
    pub fn data(&self, mount: &str, path: &str) -> Option<Map<String, Value>> {
        self.with_secret(mount, path, |secret| {
            secret.and_then(|s| s.current().map(|v| v.data.clone()))
        })
    }

    /// The secret's current version (0 when it does not exist).
    pub fn current_version(&self, mount: &str, path: &str) -> u64 {
        self.with_secret(mount, path, |secret| {
            secret.map_or(0, |s| s.current_version)
        })
    }

    /// The secret's `custom_metadata`.
    pub fn custom_metadata(&self, mount: &str, path: &str) -> BTreeMap<String, String> {
        self.with_secret(mount, path, |secret| {
            secret
                .map(|s| s.custom_metadata.clone())
                .unwrap_or_default()
        })
    }

    /// Sets `key` in the secret's map as a person would with
    /// `vault kv patch` (creating the secret if needed): a new version,
    /// without check-and-set, faults or write counting, and without touching
    /// `custom_metadata`. On a KV v1 mount, the map is simply rewritten.
    pub fn edit_outside(&self, mount: &str, path: &str, key: &str, value: Value) {
        let mut mounts = self.state.mounts();
        let secrets = mounts
            .get_mut(mount.trim_matches('/'))
            .expect("the mount exists");
        let secret = secrets
            .entry(path.trim_matches('/').to_owned())
            .or_insert_with(Secret::new);
        let mut data = secret.current().map(|v| v.data.clone()).unwrap_or_default();
        data.insert(key.to_owned(), value);
        secret.push(data);
    }

    /// Replaces the secret's `custom_metadata`, as `vault kv metadata put
    /// -custom-metadata=…` does.
    pub fn set_custom_metadata(&self, mount: &str, path: &str, labels: &[(&str, &str)]) {
        let mut mounts = self.state.mounts();
        let secrets = mounts
            .get_mut(mount.trim_matches('/'))
            .expect("the mount exists");
        let secret = secrets
            .entry(path.trim_matches('/').to_owned())
            .or_insert_with(Secret::new);
        secret.custom_metadata = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    }

    fn with_secret<T>(&self, mount: &str, path: &str, f: impl FnOnce(Option<&Secret>) -> T) -> T {
        let mounts = self.state.mounts();
        f(mounts
            .get(mount.trim_matches('/'))
            .and_then(|secrets| secrets.get(path.trim_matches('/'))))
    }
}

impl Shared {
    fn mounts(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Secret>>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn access(&self) -> MutexGuard<'_, Access> {
        self.access.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

/// Vault's response envelope around `data`.
fn ok(data: Value) -> Response {
    axum::Json(envelope(data)).into_response()
}

fn envelope(data: Value) -> Value {
    json!({
        "request_id": "00000000-0000-0000-0000-000000000000",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "mount_type": "kv",
    })
}

fn permission_denied() -> Response {
    errors(StatusCode::FORBIDDEN, &["permission denied"])
}

async fn handle(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(route) = uri.path().strip_prefix("/v1/") else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let route = route.trim_end_matches('/');
    let namespace = headers
        .get("x-vault-namespace")
        .and_then(|v| v.to_str().ok())
        .map(|ns| ns.trim_matches('/'))
        .filter(|ns| !ns.is_empty());
    let no_handler = || {
        errors(
            StatusCode::NOT_FOUND,
            &[&format!(
                "no handler for route \"{route}\". route entry not found."
            )],
        )
    };
    // Logins are the one kind of request that carries no token.
    if let Some(auth_mount) = route
        .strip_prefix("auth/")
        .and_then(|rest| rest.strip_suffix("/login"))
    {
        if namespace != state.namespace.as_deref() {
            return no_handler();
        }
        return login(&state, auth_mount, &method, &body).unwrap_or_else(no_handler);
    }
    let token = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    let writable = match token {
        Some(VaultServer::ROOT_TOKEN) => true,
        Some(VaultServer::READ_ONLY_TOKEN) => false,
        Some(token) if state.access().issued.contains(token) => false,
        _ => return permission_denied(),
    };
    if namespace != state.namespace.as_deref() {
        return no_handler();
    }
    // `LIST`, or `GET` with `?list=true` for clients that cannot send
    // a custom method.
    let listing = method.as_str() == "LIST"
        || (method == Method::GET
            && uri
                .query()
                .is_some_and(|q| q.split('&').any(|pair| pair == "list=true")));
    if let Some(path) = route.strip_prefix("sys/internal/ui/mounts/") {
        return ui_mount(&state, path);
    }

    let mut mounts = state.mounts();
    // The longest mount that prefixes the route, as Vault's router does.
    let Some(mount) = mounts
        .keys()
        .filter(|mount| route == mount.as_str() || route.starts_with(&format!("{mount}/")))
        .max_by_key(|mount| mount.len())
        .cloned()
    else {
        return no_handler();
    };
    let rest = route[mount.len()..].trim_start_matches('/');
    let secrets = mounts.get_mut(&mount).expect("found above");
    let faults = &state.faults;
    if state.access().kv1.contains(&mount) {
        return kv1(faults, secrets, route, rest, &method, listing);
    }
    let (kind, path) = match rest.split_once('/') {
        Some((kind @ ("data" | "metadata" | "delete" | "undelete" | "destroy"), path))
            if !path.is_empty() =>
        {
            (kind, path.to_owned())
        }
        // The mount's top folder.
        None if listing && rest == "metadata" => ("metadata", String::new()),
        _ => {
            return errors(
                StatusCode::NOT_FOUND,
                &[&format!("unsupported path \"{route}\"")],
            );
        }
    };
    if method != Method::GET && !listing && !writable {
        return permission_denied();
    }
    if listing {
        if kind != "metadata" {
            return errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]);
        }
        if let Some(fault) = faults.on_call(Call::List) {
            return fault_response(fault, route, &path);
        }
        return list_keys(secrets, &path);
    }
    if method == Method::GET
        && matches!(kind, "data" | "metadata")
        && let Some(fault) = faults.on_call(Call::Read)
    {
        return fault_response(fault, route, &path);
    }
    match (kind, method) {
        ("data", Method::GET) => read_data(secrets.get(&path), uri.query()),
        ("data", Method::POST | Method::PUT) => write_data(faults, secrets, route, &path, &body),
        ("data", Method::DELETE) => delete_latest(faults, secrets, route, &path),
        ("metadata", Method::GET) => read_metadata(secrets.get(&path)),
        ("metadata", Method::POST | Method::PUT) => {
            write_metadata(faults, secrets, route, &path, &body)
        }
        (kind @ ("delete" | "undelete" | "destroy"), Method::POST | Method::PUT) => {
            let change = match kind {
                "delete" => VersionChange::Delete,
                "undelete" => VersionChange::Undelete,
                _ => VersionChange::Destroy,
            };
            change_versions(faults, secrets, route, &path, &body, change)
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

/// `POST auth/<mount>/login` of the AppRole or Kubernetes method: a token
/// with read and list access, in Vault's `auth` block. Vault answers bad
/// AppRole credentials with `400 invalid role or secret ID` (it does not
/// say which is wrong), an unknown Kubernetes role with `400`, and a JWT
/// the cluster does not vouch for with `403 permission denied`. `None`:
/// no auth method is mounted there.
fn login(state: &Shared, auth_mount: &str, method: &Method, body: &[u8]) -> Option<Response> {
    let mut access = state.access();
    let kind = *access.auth.get(auth_mount)?;
    if !matches!(*method, Method::POST | Method::PUT) {
        return Some(errors(
            StatusCode::METHOD_NOT_ALLOWED,
            &["unsupported operation"],
        ));
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Some(errors(StatusCode::BAD_REQUEST, &["error parsing JSON"]));
    };
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let refusal = match kind {
        "approle" if field("role_id").is_empty() => {
            Some((StatusCode::BAD_REQUEST, "missing role_id".to_owned()))
        }
        "approle"
            if field("role_id") != VaultServer::ROLE_ID
                || field("secret_id") != VaultServer::SECRET_ID =>
        {
            Some((
                StatusCode::BAD_REQUEST,
                "invalid role or secret ID".to_owned(),
            ))
        }
        "kubernetes" if field("role").is_empty() => {
            Some((StatusCode::BAD_REQUEST, "missing role".to_owned()))
        }
        "kubernetes" if field("role") != VaultServer::K8S_ROLE => Some((
            StatusCode::BAD_REQUEST,
            format!("invalid role name \"{}\"", field("role")),
        )),
        "kubernetes" if field("jwt").is_empty() => {
            Some((StatusCode::BAD_REQUEST, "missing jwt".to_owned()))
        }
        "kubernetes" if field("jwt") != VaultServer::K8S_JWT => {
            Some((StatusCode::FORBIDDEN, "permission denied".to_owned()))
        }
        _ => None,
    };
    if let Some((status, message)) = refusal {
        return Some(errors(status, &[&message]));
    }
    let token = format!("hvs.vsync-fake-login-{}", access.issued.len() + 1);
    access.issued.insert(token.clone());
    let mut answer = envelope(Value::Null);
    answer["auth"] = json!({
        "client_token": token,
        "accessor": format!("accessor-{}", access.issued.len()),
        "policies": ["default", "reader"],
        "token_policies": ["default", "reader"],
        "metadata": { "role_name": if kind == "approle" { "vsync" } else { VaultServer::K8S_ROLE } },
        "lease_duration": 2_764_800,
        "renewable": true,
        "entity_id": "00000000-0000-0000-0000-000000000001",
        "token_type": "service",
        "orphan": true,
    });
    Some(axum::Json(answer).into_response())
}

/// `GET sys/internal/ui/mounts/<path>`: the mount holding `path`, its type
/// and options (`{"version":"2"}` for KV v2, none for a KV v1 mount made
/// without a version option), as the Vault CLI asks before every `kv`
/// command. A path under no mount answers `403`, not `404`, so the
/// endpoint cannot be used to discover mounts.
fn ui_mount(state: &Shared, path: &str) -> Response {
    let mounts = state.mounts();
    let Some(mount) = mounts
        .keys()
        .filter(|mount| path == mount.as_str() || path.starts_with(&format!("{mount}/")))
        .max_by_key(|mount| mount.len())
    else {
        return permission_denied();
    };
    let options = if state.access().kv1.contains(mount) {
        Value::Null
    } else {
        json!({ "version": "2" })
    };
    ok(json!({
        "accessor": format!("kv_{:08x}", mount.len()),
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false },
        "description": "",
        "external_entropy_access": false,
        "local": false,
        "options": options,
        "path": format!("{mount}/"),
        "seal_wrap": false,
        "type": "kv",
        "uuid": "00000000-0000-0000-0000-000000000002",
    }))
}

/// A KV version 1 mount: `GET <mount>/<path>` reads the secret's map,
/// `LIST` lists a folder. Faults as on KV v2: a listing is a
/// [`Call::List`], a read a [`Call::Read`]. The harness writes through
/// [`VaultServer::edit_outside`].
fn kv1(
    faults: &Faults,
    secrets: &HashMap<String, Secret>,
    route: &str,
    path: &str,
    method: &Method,
    listing: bool,
) -> Response {
    if listing {
        if let Some(fault) = faults.on_call(Call::List) {
            return fault_response(fault, route, path);
        }
        return list_keys(secrets, path);
    }
    if *method != Method::GET || path.is_empty() {
        return errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]);
    }
    if let Some(fault) = faults.on_call(Call::Read) {
        return fault_response(fault, route, path);
    }
    match secrets.get(path).and_then(Secret::current) {
        Some(version) => ok(Value::Object(version.data.clone())),
        None => errors(StatusCode::NOT_FOUND, &[]),
    }
}

/// A folder's entries, as Vault lists them: the names of its secrets and
/// of its subfolders (with a trailing `/`), sorted, in `data.keys`; `404`
/// with no error message when the folder holds nothing. A KV v2 secret is
/// listed while its metadata exists, whatever its versions' state.
fn list_keys(secrets: &HashMap<String, Secret>, folder: &str) -> Response {
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let keys: BTreeSet<String> = secrets
        .keys()
        .filter_map(|path| path.strip_prefix(&prefix))
        .map(|rest| match rest.split_once('/') {
            Some((subfolder, _)) => format!("{subfolder}/"),
            None => rest.to_owned(),
        })
        .collect();
    if keys.is_empty() {
        return errors(StatusCode::NOT_FOUND, &[]);
    }
    ok(json!({ "keys": keys }))
}

/// A [`Fault`] answered the way Vault does: a rate-limit quota's `429`
/// naming the request path (with `Retry-After` when the harness allows it:
/// Vault sends one with its rate-limit response headers), a sealed Vault's
/// `503`, or a `400` for a write the harness refuses (`name` is the key or
/// path refused).
fn fault_response(fault: Fault, route: &str, name: &str) -> Response {
    match fault {
        Fault::Throttle { retry_after } => {
            let mut response = errors(
                StatusCode::TOO_MANY_REQUESTS,
                &[&format!(
                    "request path \"{route}\": rate limit quota exceeded"
                )],
            );
            if retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
        Fault::Unavailable => errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]),
        Fault::Break => errors(
            StatusCode::BAD_REQUEST,
            &[&format!(
                "1 error occurred:\n\t* the harness refuses writes of {name:?}\n\n"
            )],
        ),
    }
}

fn read_data(secret: Option<&Secret>, query: Option<&str>) -> Response {
    let Some(secret) = secret else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let requested = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("version="))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&v| v != 0)
        .unwrap_or(secret.current_version);
    match secret.versions.get(&requested) {
        Some(version) if version.is_live() => ok(json!({
            "data": version.data,
            "metadata": secret.version_metadata(requested, version),
        })),
        // Vault answers a deleted or destroyed version with its metadata
        // (and null data) under a 404, not with `{"errors":[]}`.
        Some(version) => (
            StatusCode::NOT_FOUND,
            axum::Json(envelope(json!({
                "data": null,
                "metadata": secret.version_metadata(requested, version),
            }))),
        )
            .into_response(),
        None => errors(StatusCode::NOT_FOUND, &[]),
    }
}

fn write_data(
    faults: &Faults,
    secrets: &mut HashMap<String, Secret>,
    route: &str,
    path: &str,
    body: &[u8],
) -> Response {
    let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else {
        return errors(StatusCode::BAD_REQUEST, &["error parsing JSON"]);
    };
    let Some(Value::Object(data)) = request.remove("data") else {
        return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
    };
    let cas = match request.get("options").and_then(|o| o.get("cas")) {
        None => None,
        Some(cas) => match cas.as_u64() {
            Some(cas) => Some(cas),
            None => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    &["error parsing check-and-set parameter"],
                );
            }
        },
    };
    let existing = secrets.get(path);
    let current_version = existing.map_or(0, |s| s.current_version);
    match cas {
        Some(cas) if cas != current_version => {
            return errors(
                StatusCode::BAD_REQUEST,
                &["check-and-set parameter did not match the current version"],
            );
        }
        None if existing.is_some_and(|s| s.cas_required) => {
            return errors(
                StatusCode::BAD_REQUEST,
                &["check-and-set parameter required for this call"],
            );
        }
        _ => {}
    }

    let empty = Map::new();
    let before = existing
        .and_then(Secret::current)
        .map_or(&empty, |v| &v.data);
    let mut changed: Vec<&str> = data
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(value))
        .map(|(key, _)| key.as_str())
        .chain(
            before
                .keys()
                .filter(|key| !data.contains_key(*key))
                .map(String::as_str),
        )
        .collect();
    changed.sort_unstable();
    if changed.is_empty() {
        changed.push(path);
    }
    for key in changed {
        if let Some(fault) = faults.on_write(key) {
            return fault_response(fault, route, key);
        }
    }

    let secret = secrets.entry(path.to_owned()).or_insert_with(Secret::new);
    let version = secret.push(data);
    ok(secret.version_metadata(version, &secret.versions[&version]))
}

fn read_metadata(secret: Option<&Secret>) -> Response {
    let Some(secret) = secret else {
        return errors(StatusCode::NOT_FOUND, &[]);
    };
    let versions: Map<String, Value> = secret
        .versions
        .iter()
        .map(|(number, version)| {
            (
                number.to_string(),
                json!({
                    "created_time": version.created_time,
                    "deletion_time": version.deletion_time,
                    "destroyed": version.destroyed,
                }),
            )
        })
        .collect();
    ok(json!({
        "cas_required": secret.cas_required,
        "created_time": secret.created_time,
        "current_version": secret.current_version,
        "custom_metadata": secret.custom_metadata_json(),
        "delete_version_after": "0s",
        "max_versions": secret.max_versions,
        "oldest_version": secret.oldest_version,
        "updated_time": secret.updated_time,
        "versions": versions,
    }))
}

fn write_metadata(
    faults: &Faults,
    secrets: &mut HashMap<String, Secret>,
    route: &str,
    path: &str,
    body: &[u8],
) -> Response {
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(request)) => request,
        // An empty body is a valid (no-op) metadata write.
        _ if body.is_empty() => Map::new(),
        _ => return errors(StatusCode::BAD_REQUEST, &["error parsing JSON"]),
    };
    let custom = match request.get("custom_metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(labels)) => {
            let mut parsed = BTreeMap::new();
            for (key, value) in labels {
                let Value::String(value) = value else {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &["custom_metadata values must be strings"],
                    );
                };
                parsed.insert(key.clone(), value.clone());
            }
            if let Some(problem) = custom_metadata_problem(&parsed) {
                return errors(StatusCode::BAD_REQUEST, &[&problem]);
            }
            Some(parsed)
        }
        Some(_) => {
            return errors(
                StatusCode::BAD_REQUEST,
                &["custom_metadata must be a map of strings"],
            );
        }
    };
    if let Some(fault) = faults.on_write(path) {
        return fault_response(fault, route, path);
    }
    let secret = secrets.entry(path.to_owned()).or_insert_with(Secret::new);
    if let Some(custom) = custom {
        secret.custom_metadata = custom;
    }
    if let Some(max) = request.get("max_versions").and_then(Value::as_u64) {
        secret.max_versions = max;
    }
    if let Some(required) = request.get("cas_required").and_then(Value::as_bool) {
        secret.cas_required = required;
    }
    secret.updated_time = rfc3339_now();
    StatusCode::NO_CONTENT.into_response()
}

/// `vault kv delete`: soft-deletes the current version. Vault answers 204
/// whether or not there was anything to delete.
fn delete_latest(
    faults: &Faults,
    secrets: &mut HashMap<String, Secret>,
    route: &str,
    path: &str,
) -> Response {
    let Some(secret) = secrets.get_mut(path) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if let Some(fault) = faults.on_write(path) {
        return fault_response(fault, route, path);
    }
    let current = secret.current_version;
    if let Some(version) = secret.versions.get_mut(&current)
        && version.is_live()
    {
        version.deletion_time = rfc3339_now();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// What `POST <mount>/{delete,undelete,destroy}/<path>` does to each
/// version it names.
#[derive(Debug, Clone, Copy)]
enum VersionChange {
    Delete,
    Undelete,
    Destroy,
}

fn change_versions(
    faults: &Faults,
    secrets: &mut HashMap<String, Secret>,
    route: &str,
    path: &str,
    body: &[u8],
    change: VersionChange,
) -> Response {
    let numbers: Option<Vec<u64>> =
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|request| {
                request
                    .get("versions")?
                    .as_array()?
                    .iter()
                    .map(Value::as_u64)
                    .collect()
            });
    let numbers = match numbers {
        Some(numbers) if !numbers.is_empty() => numbers,
        _ => return errors(StatusCode::BAD_REQUEST, &["no version number provided"]),
    };
    let Some(secret) = secrets.get_mut(path) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if let Some(fault) = faults.on_write(path) {
        return fault_response(fault, route, path);
    }
    for number in numbers {
        let Some(version) = secret.versions.get_mut(&number) else {
            continue;
        };
        match change {
            VersionChange::Delete if version.is_live() => version.deletion_time = rfc3339_now(),
            // A destroyed version stays destroyed.
            VersionChange::Undelete if !version.destroyed => version.deletion_time.clear(),
            VersionChange::Destroy => {
                version.destroyed = true;
                version.data = Map::new();
            }
            _ => {}
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Vault's limits on `custom_metadata`.
fn custom_metadata_problem(labels: &BTreeMap<String, String>) -> Option<String> {
    if labels.len() > 64 {
        return Some(format!(
            "custom_metadata has {} keys, the limit is 64",
            labels.len()
        ));
    }
    labels.iter().find_map(|(key, value)| {
        if key.len() > 128 {
            Some(format!(
                "custom_metadata key {key:?} is longer than 128 bytes"
            ))
        } else if value.len() > 512 {
            Some(format!(
                "custom_metadata value for {key:?} is longer than 512 bytes"
            ))
        } else {
            None
        }
    })
}
