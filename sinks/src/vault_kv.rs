//! HashiCorp Vault KV version 2 as a sink: every vault key becomes one key
//! of **one** secret at `<mount>/<path>`, the way upstream's
//! `vault kv put -mount=<mount> <path> K1=v1 K2=v2 …` writes it.
//!
//! # Names
//!
//! No transform: a vault key is the map key as is. Vault accepts any string
//! as a map key, so the grammar is [`Alphabet::Any`] with no length limit,
//! case-sensitive.
//!
//! # One secret, written with check-and-set
//!
//! The whole map is one Vault entry, so the sink takes every change in one
//! [`Sink::apply`] call ([`Batch::All`]) and writes the new map once, with
//! `options.cas` set to the version the map was read at (`cas=0` when the
//! secret does not exist yet). That version is the one [`Sink::inventory`]
//! saw, so the plan the engine made from that inventory is applied only if
//! nobody wrote the secret in between: a console edit between plan and
//! apply makes Vault answer "check-and-set parameter did not match the
//! current version", reported as [`SinkError::Conflict`], and nothing is
//! lost (the next sync sees the edit as drift). Keys vsync does not manage
//! stay in the map untouched, whatever their JSON type.
//!
//! Vault applies a map write all or nothing. When a write of several
//! changes is refused with a 4xx that is neither about credentials nor a
//! check-and-set conflict, the sink splits the changes in halves and writes
//! each half, then keeps splitting the half that is refused, so one change
//! Vault will not take (say, a value that pushes the map over the storage
//! entry limit) does not hold back the others and is named in the report.
//! When both halves are refused, the cause is not one change and the search
//! stops, so a refusal unrelated to the changes costs two extra requests,
//! not one per change.
//!
//! # Inventory, revisions and drift
//!
//! One read of the secret lists every key *with its value*, so the engine
//! never reads per key. KV v2 versions the whole secret, not its keys, so
//! every key's `revision` is the secret's version. That is enough for
//! drift detection: for a readable sink the engine compares fingerprints of
//! the listed values with what it recorded, and uses the revision only to
//! skip reads when a value is absent from the listing, which never happens
//! here. A write to any key moves every key's revision; the engine then
//! refreshes its record without writing to Vault.
//!
//! A `404` on the data read means no secret yet (an empty inventory); the
//! metadata is then read too, because a secret whose latest version was
//! deleted (`vault kv delete`) still has a current version that
//! check-and-set must name. A `404` that carries an error message ("no
//! handler for route") means the mount does not exist: [`SinkError::NotFound`].
//!
//! # Ownership label
//!
//! KV v2 keeps `custom_metadata` per secret. Before writing, the sink adds
//! `managed-by=vsync` there (keeping every other label) unless the secret
//! already has a `managed-by` label; one naming another tool is left alone,
//! and [`RemoteSecret::managed`] then says `Some(false)` for every key, so
//! prune keeps its hands off. Vault has no check-and-set for metadata, so a
//! label edit racing the sink's can be lost; labels are not secrets.
//!
//! # Limits
//!
//! KV v2 has no value limit of its own; the storage backend's entry limit
//! caps the whole map (integrated storage: 1 MiB by default; Consul:
//! 512 KiB). The sink declares 511 KiB per value (512 KiB less room for the
//! JSON around it), the largest value that fits an entry on either backend;
//! several large values can still
//! overflow the entry together, and Vault then refuses the write (which the
//! split above narrows down to the value that did not fit). Values are
//! stored as JSON strings, so they must be UTF-8 (`text_only`); empty
//! values are fine. Vault documents no write rate limit at this scale
//! (operators may configure rate-limit quotas, answered with 429).
//!
//! # Errors and secrets
//!
//! Vault's error bodies are `{"errors": [...]}` messages about the request,
//! which the sink keeps (normalised, capped); a body that is not that shape
//! is never copied, only its status. `vaultrs` does not expose response
//! headers, so a 429's `Retry-After` is not available and the engine backs
//! off on its own. Values the sink holds (the map it read, the map it
//! writes) are wiped when dropped; copies made inside `vaultrs` and the
//! HTTP stack are beyond its reach.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};
use vaultrs::api::kv2::requests::{
    ReadSecretRequest, SetSecretMetadataRequest, SetSecretRequestOptions,
};
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;
use vsync_connections::vault::{Connection, status_error};
use vsync_engine::sink::{
    Alphabet, Applied, Batch, Capabilities, Change, Deletion, MANAGED_BY, NameRules, RateBudget,
    RemoteSecret, SecretValue, Sink, SinkError, one_line_message,
};
use zeroize::{Zeroize, Zeroizing};

/// The largest value that fits one storage entry on integrated storage and
/// on Consul (512 KiB), less room for the JSON around it.
const MAX_VALUE_BYTES: usize = 512 * 1024 - 1024;

/// Builds a [`VaultKvSink`]; see the module documentation.
#[derive(Default)]
pub struct VaultKvSinkBuilder {
    address: Option<String>,
    mount: Option<String>,
    path: Option<String>,
    token: Option<Zeroizing<String>>,
    namespace: Option<String>,
    ca_certs: Vec<String>,
}

impl VaultKvSinkBuilder {
    /// The Vault server, e.g. `https://vault.example.com:8200` (upstream's
    /// `--vault-addr`, `VAULT_ADDR`).
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The KV v2 mount (upstream's `--vault-mount`); `secret` when not set.
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = Some(mount.into());
        self
    }

    /// The secret's path under the mount, e.g. `apps/api/prod` (upstream's
    /// `--vault-path`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The Vault token (`VAULT_TOKEN`).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(Zeroizing::new(token.to_owned()));
        self
    }

    /// The Vault Enterprise / HCP namespace, sent as `X-Vault-Namespace`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A PEM file of extra CA certificates to trust (`VAULT_CACERT`), for a
    /// server with a private CA.
    pub fn ca_cert(mut self, pem_path: impl Into<String>) -> Self {
        self.ca_certs.push(pem_path.into());
        self
    }

    /// Checks the settings and builds the sink. Nothing is sent yet.
    pub fn build(self) -> Result<VaultKvSink, SinkError> {
        let mount = self
            .mount
            .as_deref()
            .unwrap_or("secret")
            .trim_matches('/')
            .to_owned();
        if mount.is_empty() {
            return Err(SinkError::Misconfigured("the Vault mount is empty".into()));
        }
        let path = self
            .path
            .as_deref()
            .unwrap_or_default()
            .trim_matches('/')
            .to_owned();
        if path.is_empty() {
            return Err(SinkError::Misconfigured(
                "the Vault secret path is not set (--vault-path)".into(),
            ));
        }
        let Connection {
            client,
            address,
            namespace,
        } = vsync_connections::vault::connect(
            self.address,
            self.token,
            self.namespace,
            self.ca_certs,
        )?;
        Ok(VaultKvSink {
            client,
            address,
            mount,
            path,
            namespace,
            capabilities: capabilities(),
            seen: Mutex::new(None),
        })
    }
}

fn capabilities() -> Capabilities {
    Capabilities {
        readable: true,
        names: NameRules {
            max_len: usize::MAX,
            alphabet: Alphabet::Any,
            leading_digit: true,
            reserved_prefixes: &[],
            case_insensitive: false,
            refuses_arn_suffix: false,
        },
        max_value_bytes: MAX_VALUE_BYTES,
        max_secrets: None,
        text_only: true,
        empty_values: true,
        tags: true,
        deletion: Deletion::Immediate,
        batch: Batch::All,
        // One writer per secret: concurrent writes would only fail each
        // other's check-and-set.
        rate: RateBudget::unpaced(1),
    }
}

/// The Vault KV v2 sink; see the module documentation.
pub struct VaultKvSink {
    client: VaultClient,
    address: String,
    mount: String,
    path: String,
    namespace: Option<String>,
    capabilities: Capabilities,
    /// The secret as the last inventory (or this sink's last write) left
    /// it: what `apply` builds on and checks-and-sets against.
    seen: Mutex<Option<Snapshot>>,
}

impl std::fmt::Debug for VaultKvSink {
    // By hand: the client's settings hold the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKvSink")
            .field("target", &self.target())
            .finish_non_exhaustive()
    }
}

/// The secret at one version.
struct Snapshot {
    /// The current version; 0 when the secret does not exist.
    version: u64,
    data: SecretMap,
    custom_metadata: HashMap<String, String>,
}

impl Snapshot {
    fn label(&self) -> Option<&str> {
        self.custom_metadata.get(MANAGED_BY.0).map(String::as_str)
    }
}

/// A KV map, wiped when dropped.
#[derive(Default)]
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

impl VaultKvSink {
    /// Starts a builder.
    pub fn builder() -> VaultKvSinkBuilder {
        VaultKvSinkBuilder::default()
    }

    fn location(&self) -> String {
        format!("{}/{}", self.mount, self.path)
    }

    /// Reads the secret's current version: its map, version and labels.
    async fn fetch(&self) -> Result<Snapshot, SinkError> {
        let request = ReadSecretRequest::builder()
            .mount(self.mount.as_str())
            .path(self.path.as_str())
            .build()
            .expect("mount and path are set");
        match vaultrs::api::exec_with_result(&self.client, request).await {
            Ok(response) => {
                let data = match response.data {
                    Value::Object(map) => SecretMap(map),
                    Value::Null => SecretMap::default(),
                    mut other => {
                        wipe(&mut other);
                        return Err(self.unexpected());
                    }
                };
                Ok(Snapshot {
                    version: response.metadata.version,
                    data,
                    custom_metadata: response.metadata.custom_metadata.unwrap_or_default(),
                })
            }
            Err(error) if is_absent(&error) => {
                match vaultrs::kv2::read_metadata(&self.client, &self.mount, &self.path).await {
                    Ok(metadata) => Ok(Snapshot {
                        version: metadata.current_version,
                        data: SecretMap::default(),
                        custom_metadata: metadata.custom_metadata.unwrap_or_default(),
                    }),
                    Err(error) if is_absent(&error) => Ok(Snapshot {
                        version: 0,
                        data: SecretMap::default(),
                        custom_metadata: HashMap::new(),
                    }),
                    Err(error) => Err(self.classify(error, "reading the metadata of")),
                }
            }
            Err(error) => Err(self.classify(error, "reading")),
        }
    }

    /// Adds `managed-by=vsync` to the secret's labels, unless it has a
    /// `managed-by` label already.
    async fn ensure_label(&self, snapshot: &mut Snapshot) -> Result<(), SinkError> {
        if snapshot.label().is_some() {
            return Ok(());
        }
        let mut labels = snapshot.custom_metadata.clone();
        labels.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());
        let mut request = SetSecretMetadataRequest::builder();
        request.custom_metadata(labels.clone());
        vaultrs::kv2::set_metadata(&self.client, &self.mount, &self.path, Some(&mut request))
            .await
            .map_err(|error| self.classify(error, "labelling"))?;
        snapshot.custom_metadata = labels;
        Ok(())
    }

    /// Writes `snapshot`'s map with `changes` applied, checking-and-setting
    /// against its version; on success the snapshot becomes the new version.
    async fn write(
        &self,
        snapshot: &mut Snapshot,
        changes: &[&Change<'_>],
    ) -> Result<u64, WriteError> {
        let mut data = SecretMap(snapshot.data.0.clone());
        for change in changes {
            match change {
                Change::Put { name, value, .. } => {
                    let Some(text) = value.as_text() else {
                        return Err(WriteError::answered(SinkError::Rejected(format!(
                            "{name}: Vault KV stores text and the value is not UTF-8"
                        ))));
                    };
                    if let Some(mut old) = data
                        .0
                        .insert((*name).to_owned(), Value::String(text.to_owned()))
                    {
                        wipe(&mut old);
                    }
                }
                Change::Delete { name } => {
                    if let Some(mut old) = data.0.remove(*name) {
                        wipe(&mut old);
                    }
                }
            }
        }
        let cas = u32::try_from(snapshot.version).map_err(|_| {
            WriteError::answered(SinkError::Rejected(format!(
                "{}: version {} is beyond what check-and-set can name",
                self.location(),
                snapshot.version
            )))
        })?;
        let options = SetSecretRequestOptions { cas };
        match vaultrs::kv2::set_with_options(
            &self.client,
            &self.mount,
            &self.path,
            &data.0,
            options,
        )
        .await
        {
            Ok(metadata) => {
                snapshot.version = metadata.version;
                snapshot.data = data;
                Ok(metadata.version)
            }
            Err(error) => Err(WriteError {
                answered: answered(&error),
                error: self.classify(error, "writing"),
            }),
        }
    }

    fn unexpected(&self) -> SinkError {
        SinkError::Rejected(format!(
            "Vault's answer for {} is not a KV version 2 secret; is {} a KV v2 mount?",
            self.location(),
            self.mount
        ))
    }

    /// Maps a `vaultrs` error to the engine's taxonomy. Only statuses and
    /// Vault's `errors` messages are kept: other bodies (which may be a read
    /// response, values included) are never copied.
    fn classify(&self, error: ClientError, doing: &str) -> SinkError {
        use rustify::errors::ClientError as Http;
        let location = self.location();
        match error {
            ClientError::APIError { code, errors } => {
                let message = vault_messages(&errors);
                let detail = if message.is_empty() {
                    format!("Vault answered {code} {doing} {location}")
                } else {
                    format!("Vault answered {code} {doing} {location}: {message}")
                };
                if code == 400 && message.contains("check-and-set parameter did not match") {
                    SinkError::Conflict(format!(
                        "{location} was written by someone else since it was read; run the sync again"
                    ))
                } else {
                    status_error(code, None, detail)
                }
            }
            ClientError::RestClientError { source } => match source {
                Http::ServerResponseError { code, .. } => status_error(
                    code,
                    None,
                    format!("Vault answered {code} {doing} {location}"),
                ),
                Http::RequestError { source, .. } | Http::ResponseError { source } => {
                    SinkError::Unavailable(format!(
                        "could not reach Vault at {} {doing} {location}: {source:#}",
                        self.address
                    ))
                }
                Http::ResponseParseError { .. } | Http::ResponseConversionError { .. } => {
                    self.unexpected()
                }
                other => SinkError::Misconfigured(format!("{doing} {location}: {other}")),
            },
            ClientError::JsonParseError { .. }
            | ClientError::ResponseEmptyError
            | ClientError::ResponseDataEmptyError => self.unexpected(),
            other => SinkError::Rejected(format!("{doing} {location}: {other}")),
        }
    }
}

/// A failed write, and whether Vault answered it (so it certainly did not
/// write) or the answer was lost (so the write may have happened).
struct WriteError {
    error: SinkError,
    answered: bool,
}

impl WriteError {
    fn answered(error: SinkError) -> Self {
        WriteError {
            error,
            answered: true,
        }
    }
}

/// Whether Vault answered with a status (as opposed to a transport failure).
fn answered(error: &ClientError) -> bool {
    match error {
        ClientError::APIError { .. } => true,
        ClientError::RestClientError { source } => matches!(
            source,
            rustify::errors::ClientError::ServerResponseError { .. }
        ),
        _ => false,
    }
}

/// A 404 without an error message: the secret (or its current version) does
/// not exist. A 404 with one ("no handler for route") is a missing mount.
fn is_absent(error: &ClientError) -> bool {
    match error {
        ClientError::APIError { code: 404, errors } => errors.is_empty(),
        // A 404 whose body is not `{"errors":[...]}`: a deleted current
        // version answers with its metadata instead.
        ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError { code: 404, .. },
        } => true,
        _ => false,
    }
}

/// Vault's `errors` strings on one line ("1 error occurred:\n\t* …"
/// included), capped.
fn vault_messages(errors: &[String]) -> String {
    let joined = errors
        .iter()
        .map(|error| one_line_message(error))
        .collect::<Vec<_>>()
        .join("; ");
    one_line_message(&joined)
}

fn listed_value(value: &Value) -> SecretValue {
    match value {
        Value::String(text) => SecretValue::from_text(text),
        // A key someone else stored as a number, list or object: its JSON
        // text, so a vault key of that name is compared with something.
        other => SecretValue::new(Zeroizing::new(
            serde_json::to_vec(other).unwrap_or_default(),
        )),
    }
}

#[async_trait::async_trait]
impl Sink for VaultKvSink {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn target(&self) -> String {
        let mut target = format!(
            "vault-kv:addr={},mount={},path={}",
            self.address, self.mount, self.path
        );
        if let Some(namespace) = &self.namespace {
            target.push_str(",namespace=");
            target.push_str(namespace);
        }
        target
    }

    fn map_name(&self, key: &str) -> String {
        key.to_owned()
    }

    async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError> {
        let snapshot = self.fetch().await?;
        let revision = snapshot.version.to_string();
        let managed = snapshot.label() == Some(MANAGED_BY.1);
        let listed = snapshot
            .data
            .0
            .iter()
            .map(|(name, value)| RemoteSecret {
                name: name.clone(),
                revision: Some(revision.clone()),
                managed: Some(managed),
                value: Some(listed_value(value)),
            })
            .collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
        Ok(listed)
    }

    async fn read(&self, name: &str) -> Result<Option<SecretValue>, SinkError> {
        // A fresh read that leaves the inventory's snapshot alone: `apply`
        // must still check-and-set against what the plan was made from.
        let snapshot = self.fetch().await?;
        Ok(snapshot.data.0.get(name).map(listed_value))
    }

    async fn apply_one(&self, change: &Change<'_>) -> Result<Applied, SinkError> {
        // One change is a batch of one: the same check-and-set write.
        self.apply(std::slice::from_ref(change))
            .await
            .pop()
            .unwrap_or_else(|| Err(SinkError::Unavailable("no result for the write".into())))
    }

    async fn apply(&self, changes: &[Change<'_>]) -> Vec<Result<Applied, SinkError>> {
        let every = |error: SinkError| vec![Err(error); changes.len()];
        if changes.is_empty() {
            return Vec::new();
        }
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut snapshot = match seen {
            Some(snapshot) => snapshot,
            None => match self.fetch().await {
                Ok(snapshot) => snapshot,
                Err(error) => return every(error),
            },
        };
        if let Err(error) = self.ensure_label(&mut snapshot).await {
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
            return every(error);
        }

        let mut results: Vec<Option<Result<Applied, SinkError>>> = vec![None; changes.len()];
        let mut settle = |indices: &[usize], outcome: &Result<u64, SinkError>| {
            for &index in indices {
                results[index] = Some(outcome.clone().map(|version| Applied {
                    revision: Some(version.to_string()),
                }));
            }
        };
        // Set once the snapshot can no longer be trusted: a check-and-set
        // conflict (every later write would conflict too) or a write whose
        // answer was lost (it may have happened).
        let mut distrust: Option<SinkError> = None;
        let mut suspects: Vec<(Vec<usize>, SinkError)> = Vec::new();

        let all: Vec<usize> = (0..changes.len()).collect();
        match self
            .write_some(&mut snapshot, changes, &all, &mut distrust)
            .await
        {
            Err(SinkError::Rejected(message)) if all.len() > 1 => {
                suspects.push((all, SinkError::Rejected(message)));
            }
            outcome => settle(&all, &outcome),
        }
        while let Some((group, error)) = suspects.pop() {
            if group.len() == 1 {
                settle(&group, &Err(error));
                continue;
            }
            let (left, right) = group.split_at(group.len() / 2);
            let left_outcome = self
                .write_some(&mut snapshot, changes, left, &mut distrust)
                .await;
            let right_outcome = self
                .write_some(&mut snapshot, changes, right, &mut distrust)
                .await;
            let halves = [
                (left, &left_outcome, right_outcome.is_ok()),
                (right, &right_outcome, left_outcome.is_ok()),
            ];
            for (half, outcome, other_written) in halves {
                match outcome {
                    // The other half went through, so the refusal is about
                    // something in this half: narrow it down.
                    Err(SinkError::Rejected(message)) if other_written && half.len() > 1 => {
                        suspects.push((half.to_vec(), SinkError::Rejected(message.clone())));
                    }
                    outcome => settle(half, outcome),
                }
            }
        }

        if distrust.is_none() {
            *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
        }
        results
            .into_iter()
            .map(|result| result.expect("every change is settled"))
            .collect()
    }
}

impl VaultKvSink {
    /// Writes the changes at `indices`, unless an earlier write left the
    /// snapshot untrustworthy (then they fail with that write's error).
    async fn write_some(
        &self,
        snapshot: &mut Snapshot,
        changes: &[Change<'_>],
        indices: &[usize],
        distrust: &mut Option<SinkError>,
    ) -> Result<u64, SinkError> {
        if let Some(error) = distrust {
            return Err(error.clone());
        }
        let selected: Vec<&Change<'_>> = indices.iter().map(|&index| &changes[index]).collect();
        self.write(snapshot, &selected).await.map_err(|failure| {
            if matches!(failure.error, SinkError::Conflict(_)) || !failure.answered {
                *distrust = Some(failure.error.clone());
            }
            failure.error
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsync_engine::sink::MAX_MESSAGE_CHARS;

    #[test]
    fn vault_messages_are_one_capped_line() {
        let errors = vec!["1 error occurred:\n\t* permission denied\n\n".to_owned()];
        assert_eq!(
            vault_messages(&errors),
            "1 error occurred: * permission denied"
        );
        let long = vec!["x".repeat(1000)];
        assert_eq!(vault_messages(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn builder_refuses_incomplete_settings() {
        let complete = || {
            VaultKvSink::builder()
                .address("http://127.0.0.1:8200")
                .path("apps/api")
                .token("t")
        };
        assert!(complete().build().is_ok());
        let no_path = VaultKvSink::builder()
            .address("http://127.0.0.1:8200")
            .token("t")
            .build();
        assert!(matches!(no_path, Err(SinkError::Misconfigured(m)) if m.contains("--vault-path")));
        let bad_address = complete().address("vault.example.com").build();
        assert!(matches!(bad_address, Err(SinkError::Misconfigured(_))));
        let no_token = complete().token("").build();
        assert!(matches!(no_token, Err(SinkError::Misconfigured(m)) if m.contains("VAULT_TOKEN")));
    }

    #[test]
    fn target_names_address_mount_path_and_namespace() {
        let sink = VaultKvSink::builder()
            .address("https://vault.example.com:8200/")
            .mount("/kv/")
            .path("/apps/api/prod/")
            .token("t")
            .namespace("team-a")
            .build()
            .unwrap();
        assert_eq!(
            sink.target(),
            "vault-kv:addr=https://vault.example.com:8200,mount=kv,path=apps/api/prod,namespace=team-a"
        );
        assert_eq!(sink.map_name("db.password"), "db.password");
    }
}
