//! A protocol-faithful fake of the 1Password Connect server's REST API
//! (v1), for the 1Password source.
//!
//! A Connect server is a container image that syncs with 1Password.com; no
//! package registry this harness may use ships one, so this fake answers the
//! read subset vsync speaks, with the real API's paths, JSON shapes, status
//! codes and error body (`{"status":N,"message":"…"}`), as documented in
//! 1Password's Connect API reference and OpenAPI specification:
//!
//! - `Authorization: Bearer <token>` must carry [`OnePasswordConnectServer::TOKEN`],
//!   else `401 {"status":401,"message":"Invalid bearer token"}`, before
//!   anything else is looked at.
//! - `GET /v1/vaults[?filter=name eq "…"]`: the vaults the token can read
//!   (`id`, `name`, `description`, `attributeVersion`, `contentVersion`,
//!   `items`, `type`, `createdAt`, `updatedAt`). The specification filters
//!   on `name`, 1Password's Go SDK sends `title`: both are accepted.
//! - `GET /v1/vaults/{vaultUuid}/items[?filter=title eq "…" | tag eq "…"]`:
//!   the vault's active items as summaries (`id`, `title`, `version`,
//!   `vault`, `category`, `tags`, `createdAt`, `updatedAt`, `lastEditedBy`,
//!   `favorite`), without fields; archived items are left out, as the
//!   server does. The whole collection in one answer: Connect does not page.
//!   `404 vault {id} not found` for an unknown vault.
//! - `GET /v1/vaults/{vaultUuid}/items/{itemUuid}`: the full item, with
//!   `sections` and `fields` (`id`, `type`, `purpose`, `label`, `value`,
//!   `section`), an OTP field also carrying its current `totp` code; an
//!   archived item is still served, with `"state":"ARCHIVED"`.
//!   `404 item {id} not found` / `404 vault {id} not found`.
//! - A path id that is not 26 characters of `[a-z0-9]` is refused with
//!   `400` (the specification's UUID pattern); a filter other than
//!   `<attribute> eq "<text>"` too. Any other path is a `404`, any other
//!   method a `405`: the fake serves reads only, items are put and deleted
//!   through its back door ([`OnePasswordConnectServer::put`],
//!   [`OnePasswordConnectServer::add`], [`OnePasswordConnectServer::delete`],
//!   [`OnePasswordConnectServer::archive`]).
//!
//! Faults ([`Faults`]), once a request has passed the token and path
//! checks: every vault or item listing calls [`Faults::on_call`] with
//! [`Call::List`], every item `GET` with [`Call::Read`]. `fault_response`
//! answers a throttle with `429` and `Retry-After` (unless the harness asks
//! for none), an outage with `503`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::HarnessError;
use crate::fake_http::{FakeServer, rfc3339_now};
use crate::faults::{Call, Fault, Faults};

/// A running Connect fake on `127.0.0.1` with a random port; stops when
/// dropped. It starts with no vault: [`OnePasswordConnectServer::add_vault`].
#[derive(Debug)]
pub struct OnePasswordConnectServer {
    server: FakeServer,
    state: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    faults: Faults,
    ids: IdSource,
    vaults: Mutex<Vec<FakeVault>>,
}

#[derive(Debug)]
struct FakeVault {
    id: String,
    name: String,
    created_at: String,
    updated_at: String,
    content_version: u64,
    /// By item id.
    items: BTreeMap<String, StoredItem>,
}

#[derive(Debug, Clone)]
struct StoredItem {
    id: String,
    title: String,
    category: String,
    tags: Vec<String>,
    version: u64,
    archived: bool,
    created_at: String,
    updated_at: String,
    fields: Vec<StoredField>,
}

#[derive(Debug, Clone)]
struct StoredField {
    id: String,
    label: String,
    value: String,
    kind: String,
    purpose: String,
    section: Option<String>,
}

/// An item as a person would save it in 1Password.
#[derive(Debug, Clone, Copy)]
pub struct FakeItem<'a> {
    /// Its title (the fake's back door finds items by it).
    pub title: &'a str,
    /// The category (`LOGIN`, `PASSWORD`, `API_CREDENTIAL`, `SECURE_NOTE`, …).
    pub category: &'a str,
    /// Its tags.
    pub tags: &'a [&'a str],
    /// Its fields, in order.
    pub fields: &'a [FakeField<'a>],
}

/// One field of a [`FakeItem`].
#[derive(Debug, Clone, Copy)]
pub struct FakeField<'a> {
    /// The label people see.
    pub label: &'a str,
    /// The value (empty: a field left blank).
    pub value: &'a str,
    /// `STRING`, `CONCEALED`, `OTP`, `URL`, …
    pub kind: &'a str,
    /// `USERNAME`, `PASSWORD`, `NOTES`, or empty.
    pub purpose: &'a str,
    /// The id of the section it is in, if any.
    pub section: Option<&'a str>,
}

impl<'a> FakeField<'a> {
    /// A concealed field outside any section (a password, an API key).
    pub fn concealed(label: &'a str, value: &'a str) -> Self {
        FakeField {
            label,
            value,
            kind: "CONCEALED",
            purpose: "",
            section: None,
        }
    }
}

impl<'a> FakeItem<'a> {
    /// An API credential item holding `fields`.
    pub fn credential(title: &'a str, fields: &'a [FakeField<'a>]) -> Self {
        FakeItem {
            title,
            category: "API_CREDENTIAL",
            tags: &[],
            fields,
        }
    }
}

impl OnePasswordConnectServer {
    /// The Connect token (`OP_CONNECT_TOKEN`) the fake accepts.
    pub const TOKEN: &'static str = "eyJhbGciOiJFUzI1NiJ9.vsync-fake-connect-token.c2lnbmF0dXJl";

    /// Starts the fake, with no vault.
    pub async fn start() -> Result<Self, HarnessError> {
        let state = Arc::new(Shared {
            faults: Faults::default(),
            ids: IdSource::new(),
            vaults: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let server = FakeServer::start(router).await?;
        Ok(OnePasswordConnectServer { server, state })
    }

    /// The server's address, e.g. `http://127.0.0.1:41234`
    /// (`OP_CONNECT_HOST`).
    pub fn host(&self) -> String {
        self.server.endpoint()
    }

    /// The fault injection and call counters of this fake.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Creates a vault named `name`; its id.
    pub fn add_vault(&self, name: &str) -> String {
        let now = rfc3339_now();
        let id = self.state.ids.next();
        self.state.vaults().push(FakeVault {
            id: id.clone(),
            name: name.to_owned(),
            created_at: now.clone(),
            updated_at: now,
            content_version: 1,
            items: BTreeMap::new(),
        });
        id
    }

    /// Saves `item` in the vault `vault_id`, as a person would in the app:
    /// a new item, or (when an active item has that title) a new version of
    /// it whose fields are `item`'s. The item's id.
    pub fn put(&self, vault_id: &str, item: &FakeItem<'_>) -> String {
        self.save(vault_id, item, true)
    }

    /// Saves `item` as a new item even when an active item has its title
    /// (1Password allows two items with one title). The new item's id.
    pub fn add(&self, vault_id: &str, item: &FakeItem<'_>) -> String {
        self.save(vault_id, item, false)
    }

    fn save(&self, vault_id: &str, item: &FakeItem<'_>, replace: bool) -> String {
        let now = rfc3339_now();
        let mut vaults = self.state.vaults();
        let vault = find_vault(&mut vaults, vault_id);
        let existing = vault
            .items
            .values()
            .find(|stored| replace && stored.title == item.title && !stored.archived)
            .map(|stored| stored.id.clone());
        let fields = item
            .fields
            .iter()
            .map(|field| StoredField {
                id: self.state.ids.next(),
                label: field.label.to_owned(),
                value: field.value.to_owned(),
                kind: field.kind.to_owned(),
                purpose: field.purpose.to_owned(),
                section: field.section.map(str::to_owned),
            })
            .collect();
        let tags = item.tags.iter().map(|tag| (*tag).to_owned()).collect();
        let id = match existing {
            Some(id) => {
                let stored = vault.items.get_mut(&id).expect("found above");
                stored.version += 1;
                stored.updated_at = now.clone();
                stored.category = item.category.to_owned();
                stored.tags = tags;
                stored.fields = fields;
                id
            }
            None => {
                let id = self.state.ids.next();
                vault.items.insert(
                    id.clone(),
                    StoredItem {
                        id: id.clone(),
                        title: item.title.to_owned(),
                        category: item.category.to_owned(),
                        tags,
                        version: 1,
                        archived: false,
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        fields,
                    },
                );
                id
            }
        };
        vault.content_version += 1;
        vault.updated_at = now;
        id
    }

    /// Deletes the active item titled `title` for good (no-op when there
    /// is none).
    pub fn delete(&self, vault_id: &str, title: &str) {
        let mut vaults = self.state.vaults();
        let vault = find_vault(&mut vaults, vault_id);
        vault
            .items
            .retain(|_, stored| stored.title != title || stored.archived);
        vault.content_version += 1;
    }

    /// Moves the active item titled `title` to the Archive: listings leave
    /// it out, a `GET` by id still serves it.
    pub fn archive(&self, vault_id: &str, title: &str) {
        let mut vaults = self.state.vaults();
        let vault = find_vault(&mut vaults, vault_id);
        for stored in vault.items.values_mut() {
            if stored.title == title && !stored.archived {
                stored.archived = true;
                stored.version += 1;
                stored.updated_at = rfc3339_now();
            }
        }
        vault.content_version += 1;
    }
}

fn find_vault<'v>(vaults: &'v mut [FakeVault], id: &str) -> &'v mut FakeVault {
    vaults
        .iter_mut()
        .find(|vault| vault.id == id)
        .expect("the vault exists")
}

impl Shared {
    fn vaults(&self) -> MutexGuard<'_, Vec<FakeVault>> {
        self.vaults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ids in Connect's form: 26 characters of `[a-z0-9]`, unique within the
/// fake and differing between runs.
#[derive(Debug)]
struct IdSource {
    seed: u64,
    next: Mutex<u64>,
}

impl IdSource {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| now.as_nanos() as u64);
        IdSource {
            seed,
            next: Mutex::new(0),
        }
    }

    fn next(&self) -> String {
        let counter = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        // The counter in base 36 (unique), after random-looking letters.
        let mut id = Vec::with_capacity(26);
        let mut mix = splitmix(self.seed ^ counter);
        let mut rest = counter;
        for position in 0..26 {
            let digit = if position >= 14 {
                let digit = rest % 36;
                rest /= 36;
                digit
            } else {
                mix = splitmix(mix);
                mix % 36
            };
            id.push(ALPHABET[digit as usize]);
        }
        String::from_utf8(id).expect("ASCII")
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "status": status.as_u16(), "message": message })),
    )
        .into_response()
}

/// The specification's pattern for vault and item ids.
fn is_uuid(id: &str) -> bool {
    id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

async fn handle(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        == Some(OnePasswordConnectServer::TOKEN);
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "Invalid bearer token");
    }
    let segments: Vec<&str> = uri
        .path()
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .collect();
    let route = match segments.as_slice() {
        ["v1", "vaults"] => Route::Vaults,
        ["v1", "vaults", vault, "items"] => Route::Items(vault),
        ["v1", "vaults", vault, "items", item] => Route::Item(vault, item),
        _ => return error(StatusCode::NOT_FOUND, "Not found"),
    };
    if method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    for id in route.ids() {
        if !is_uuid(id) {
            return error(StatusCode::BAD_REQUEST, &format!("Invalid UUID {id:?}"));
        }
    }
    let filter = match Query::<HashMap<String, String>>::try_from_uri(&uri) {
        Ok(Query(query)) => match query.get("filter").map(|text| Filter::parse(text)) {
            None => None,
            Some(Some(filter)) => Some(filter),
            Some(None) => return error(StatusCode::BAD_REQUEST, "Invalid filter query"),
        },
        Err(_) => return error(StatusCode::BAD_REQUEST, "Invalid query"),
    };
    let call = match route {
        Route::Vaults | Route::Items(_) => Call::List,
        Route::Item(..) => Call::Read,
    };
    if let Some(fault) = state.faults.on_call(call) {
        return fault_response(fault);
    }
    let vaults = state.vaults();
    match route {
        Route::Vaults => list_vaults(&vaults, filter.as_ref()),
        Route::Items(vault) => match vaults.iter().find(|v| v.id == vault) {
            Some(vault) => list_items(vault, filter.as_ref()),
            None => vault_not_found(vault),
        },
        Route::Item(vault, item) => match vaults.iter().find(|v| v.id == vault) {
            Some(found) => match found.items.get(item) {
                Some(stored) => axum::Json(full_item(found, stored)).into_response(),
                None => error(StatusCode::NOT_FOUND, &format!("item {item} not found")),
            },
            None => vault_not_found(vault),
        },
    }
}

#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    Vaults,
    Items(&'a str),
    Item(&'a str, &'a str),
}

impl<'a> Route<'a> {
    fn ids(self) -> Vec<&'a str> {
        match self {
            Route::Vaults => Vec::new(),
            Route::Items(vault) => vec![vault],
            Route::Item(vault, item) => vec![vault, item],
        }
    }
}

fn vault_not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("vault {id} not found"))
}

/// A SCIM `eq` filter: `<attribute> eq "<text>"`, `\"` and `\\` escaped.
#[derive(Debug)]
struct Filter {
    attribute: String,
    value: String,
}

impl Filter {
    fn parse(text: &str) -> Option<Filter> {
        let (attribute, rest) = text.trim().split_once(' ')?;
        let quoted = rest.trim_start().strip_prefix("eq")?.trim_start();
        let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
        let mut value = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?),
                '"' => return None,
                c => value.push(c),
            }
        }
        Some(Filter {
            attribute: attribute.to_owned(),
            value,
        })
    }
}

fn list_vaults(vaults: &[FakeVault], filter: Option<&Filter>) -> Response {
    let mut listed = Vec::new();
    for vault in vaults {
        let keep = match filter {
            None => true,
            Some(filter) if matches!(filter.attribute.as_str(), "name" | "title") => {
                vault.name == filter.value
            }
            Some(_) => return error(StatusCode::BAD_REQUEST, "Invalid filter attribute"),
        };
        if !keep {
            continue;
        }
        listed.push(json!({
            "id": vault.id,
            "name": vault.name,
            "description": "",
            "attributeVersion": 1,
            "contentVersion": vault.content_version,
            "items": vault.items.values().filter(|item| !item.archived).count(),
            "type": "USER_CREATED",
            "createdAt": vault.created_at,
            "updatedAt": vault.updated_at,
        }));
    }
    axum::Json(Value::Array(listed)).into_response()
}

fn list_items(vault: &FakeVault, filter: Option<&Filter>) -> Response {
    let mut listed = Vec::new();
    for item in vault.items.values().filter(|item| !item.archived) {
        let keep = match filter {
            None => true,
            Some(filter) => match filter.attribute.as_str() {
                "title" => item.title == filter.value,
                "tag" => item.tags.contains(&filter.value),
                _ => return error(StatusCode::BAD_REQUEST, "Invalid filter attribute"),
            },
        };
        if keep {
            listed.push(summary(vault, item));
        }
    }
    axum::Json(Value::Array(listed)).into_response()
}

fn summary(vault: &FakeVault, item: &StoredItem) -> Value {
    let mut summary = json!({
        "id": item.id,
        "title": item.title,
        "version": item.version,
        "vault": { "id": vault.id },
        "category": item.category,
        "tags": item.tags,
        "favorite": false,
        "createdAt": item.created_at,
        "updatedAt": item.updated_at,
        "lastEditedBy": "vsyncfakeuser0000000000000",
    });
    if item.archived {
        summary["state"] = "ARCHIVED".into();
    }
    summary
}

fn full_item(vault: &FakeVault, item: &StoredItem) -> Value {
    let mut full = summary(vault, item);
    let mut sections: Vec<&str> = Vec::new();
    let fields: Vec<Value> = item
        .fields
        .iter()
        .map(|field| {
            let mut json = json!({
                "id": field.id,
                "type": field.kind,
                "label": field.label,
            });
            if !field.purpose.is_empty() {
                json["purpose"] = field.purpose.as_str().into();
            }
            // Connect leaves `value` out of a field left blank.
            if !field.value.is_empty() {
                json["value"] = field.value.as_str().into();
            }
            if field.kind == "OTP" {
                json["totp"] = "123456".into();
            }
            if let Some(section) = &field.section {
                json["section"] = json!({ "id": section });
                if !sections.contains(&section.as_str()) {
                    sections.push(section);
                }
            }
            json
        })
        .collect();
    full["sections"] = sections
        .iter()
        .map(|id| json!({ "id": id, "label": id }))
        .collect();
    full["fields"] = fields.into();
    full
}

/// A [`Fault`] answered as a Connect server does: `429` (with
/// `Retry-After` unless the harness asks for none) or `503`. Reads are
/// never refused outright, so `Break` (armed for writes) is a `400`.
fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Throttle { retry_after } => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            if retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
        Fault::Unavailable => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The 1Password Connect server is not ready: its sync with 1Password.com is incomplete",
        ),
        Fault::Break => error(StatusCode::BAD_REQUEST, "The harness refuses this request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_connects_pattern_and_are_unique() {
        let ids = IdSource::new();
        let made: Vec<String> = (0..2000).map(|_| ids.next()).collect();
        assert!(made.iter().all(|id| is_uuid(id)), "{:?}", &made[..3]);
        let unique: std::collections::HashSet<&String> = made.iter().collect();
        assert_eq!(unique.len(), made.len());
    }

    #[test]
    fn filters_are_scim_eq_with_escapes() {
        let filter = Filter::parse(r#"title eq "say \"hi\" \\ now""#).unwrap();
        assert_eq!(
            (filter.attribute.as_str(), filter.value.as_str()),
            ("title", r#"say "hi" \ now"#)
        );
        for bad in [
            "title",
            r#"title co "x""#,
            r#"title eq x"#,
            r#"title eq "a"b""#,
        ] {
            assert!(Filter::parse(bad).is_none(), "{bad}");
        }
    }
}
