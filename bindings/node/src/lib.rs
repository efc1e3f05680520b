//! `vsync-s3-client` for Node.js: the vsync runtime reader as a Node-API
//! addon built with napi-rs, wrapped by the package's `index.js` /
//! `index.mjs` (CommonJS and ES modules) and typed by `index.d.ts`.
//!
//! Applications call `open()` at boot (the `VSYNC_CONFIG` /
//! `VSYNC_PASSPHRASE` variables, or their `_FILE` forms) or
//! `openWith({config, passphrase})`, both returning Promises, then read
//! values from memory with the vault → process env → defaults → missing
//! fallback chain: `getEnv`, `hasEnv`, `envSource`, `getAsContent`,
//! `generation`, and ask the bucket with `remoteGeneration` /
//! `hasNewVersion`. The names, the behaviour and the seven error classes
//! under `VSyncError` (each with its `code`) are upstream's (spec v0.12 §6).
//!
//! This crate only wraps the Rust reader `vsync-s3-client`: the `_FILE`
//! bootstrap rules, the key derivation, the decryption, the anti-rollback
//! check, the payload formats and the fallback chain are all that crate's,
//! so every language binding reads a vault exactly the same way. What is
//! added here is the Node surface: the async exports run on napi-rs's tokio
//! runtime (the fetch and the KDF never block the event loop), and a
//! failure comes back as a plain `{code, message}` object ([`Failure`])
//! that `index.js` turns into the matching JS error class (napi-rs rejects
//! a Promise only with its own status codes, so the class travels as data).
//!
//! Secrets: values stay in the Rust client's wiping buffers; an accessor
//! copies one value straight into the JS string or `Buffer` it returns (JS
//! strings cannot be wiped), the config and passphrase passed to `openWith`
//! are wiped after use, and error messages never carry a value, the
//! passphrase, the access keys or the salt. `close()` wipes every value at
//! once.
//!
//! Unsafe code: none is written here. `#![forbid(unsafe_code)]` (the
//! workspace lint) is impossible for this crate: the code `#[napi]` expands
//! to (the Node-API glue and the module-registration constructors) is
//! `unsafe` under its own `#[allow(unsafe_code)]`, which a `forbid`
//! refuses to compile. The crate takes the workspace lints with
//! `unsafe_code = "deny"` instead (see `Cargo.toml`), so any hand-written
//! `unsafe` here is still a compile error unless someone allows it openly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{Buffer, BufferSlice, Either};
use napi::{Env, JsString};
use napi_derive::napi;
use vsync_s3_client::{Client, Error, ErrorClass, Options};
use zeroize::Zeroizing;

/// A reader error as data: `class_name` is the canonical class name
/// (`WrongPassphraseError`, …; `VSyncError` for the one failure outside the
/// taxonomy) and `message` the reader's message, which names the fix and
/// never a secret. `index.js` throws the class of that name.
#[napi(object)]
pub struct Failure {
    /// Always true: tells a failure from a result.
    pub vsync_failure: bool,
    /// The canonical class name.
    pub class_name: String,
    /// `vsync: …`, safe to log.
    pub message: String,
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure {
            vsync_failure: true,
            class_name: class_name(err.class()).to_owned(),
            message: err.to_string(),
        }
    }
}

/// The class name JS code throws: the taxonomy's canonical name, or the
/// root class for the one failure outside the taxonomy (a handle with no
/// bucket asked about one), as upstream raises it.
fn class_name(class: Option<ErrorClass>) -> &'static str {
    class.map_or("VSyncError", ErrorClass::canonical_name)
}

/// A result or a reader failure, as `index.js` receives it.
pub type Outcome<T> = Either<T, Failure>;

fn outcome<T>(result: Result<T, Error>) -> Outcome<T> {
    match result {
        Ok(value) => Either::A(value),
        Err(err) => Either::B(err.into()),
    }
}

/// The options of an open call: the defaults at the bottom of the chain.
fn options(defaults: Option<HashMap<String, String>>) -> Options {
    // The values move into the client's wiping buffers.
    Options::new().defaults(defaults.unwrap_or_default())
}

/// An open vault: one env's decrypted values and assets, in memory. The
/// package's `Vault` class wraps it; application code never sees this one.
#[napi]
pub struct NativeVault {
    /// `None` once closed. The `Arc` lets a remote query in flight keep the
    /// vault alive while JS closes the handle; the values are wiped when the
    /// last reference goes.
    inner: Mutex<Option<Arc<Client>>>,
    /// The redacted description, kept for `toString` after `close`.
    description: String,
}

impl NativeVault {
    fn new(client: Client) -> Self {
        let description = format!("{client:?}");
        NativeVault {
            inner: Mutex::new(Some(Arc::new(client))),
            description,
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<Client>>> {
        // No panic happens while the lock is held (only a clone or a take
        // does); recover rather than poison every later call.
        self.inner.lock().unwrap_or_else(|err| err.into_inner())
    }

    /// The open client, or the closed-handle failure.
    fn client(&self) -> Result<Arc<Client>, Failure> {
        self.slot().as_ref().map(Arc::clone).ok_or_else(closed)
    }
}

fn closed() -> Failure {
    Failure {
        vsync_failure: true,
        class_name: "VSyncError".to_owned(),
        message: "vsync: handle is closed — open the vault again to read from it".to_owned(),
    }
}

#[napi]
impl NativeVault {
    /// The value of `key` from the vault, else the process environment (read
    /// now), else the defaults; `null` when it is nowhere.
    ///
    /// The value goes from the client's wiping buffer straight into the JS
    /// string, with no intermediate Rust copy left unwiped.
    #[napi]
    pub fn get_env<'env>(
        &self,
        env: &'env Env,
        key: String,
    ) -> napi::Result<Outcome<Option<JsString<'env>>>> {
        let client = match self.client() {
            Ok(client) => client,
            Err(failure) => return Ok(Either::B(failure)),
        };
        match client.get_env(&key) {
            Some(value) => Ok(Either::A(Some(env.create_string(value.expose())?))),
            None => Ok(Either::A(None)),
        }
    }

    /// Whether `key` is in the vault, the environment (an empty value
    /// counts) or the defaults.
    #[napi]
    pub fn has_env(&self, key: String) -> Outcome<bool> {
        match self.client() {
            Ok(client) => Either::A(client.has_env(&key)),
            Err(failure) => Either::B(failure),
        }
    }

    /// `"vault"`, `"env"`, `"default"` or `"missing"`.
    #[napi]
    pub fn env_source(&self, key: String) -> Outcome<&'static str> {
        match self.client() {
            Ok(client) => Either::A(client.env_source(&key).as_str()),
            Err(failure) => Either::B(failure),
        }
    }

    /// The bytes of the asset `name`, else the UTF-8 bytes of the vault
    /// value `name`; `null` when neither exists (`index.js` throws).
    ///
    /// The bytes are copied from the client's wiping buffer straight into
    /// the JS `Buffer`.
    #[napi]
    pub fn get_as_content<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> napi::Result<Outcome<Option<BufferSlice<'env>>>> {
        let client = match self.client() {
            Ok(client) => client,
            Err(failure) => return Ok(Either::B(failure)),
        };
        match client.get_as_content(&name) {
            Some(content) => Ok(Either::A(Some(BufferSlice::copy_from(
                env,
                content.expose(),
            )?))),
            None => Ok(Either::A(None)),
        }
    }

    /// The generation read at open (0 when the bucket has none).
    #[napi]
    pub fn generation(&self) -> Outcome<i64> {
        match self.client() {
            Ok(client) => Either::A(saturate(client.generation())),
            Err(failure) => Either::B(failure),
        }
    }

    /// The timestamp (`YYYYMMDD-HHmmss`) of the bundle read at open; `null`
    /// for a `fromPayload` handle.
    #[napi]
    pub fn version(&self) -> Outcome<Option<String>> {
        match self.client() {
            Ok(client) => Either::A(client.version().map(str::to_owned)),
            Err(failure) => Either::B(failure),
        }
    }

    /// The env the handle holds.
    #[napi]
    pub fn env(&self) -> Outcome<String> {
        match self.client() {
            Ok(client) => Either::A(client.env().to_owned()),
            Err(failure) => Either::B(failure),
        }
    }

    /// The bucket's current generation (one small read of the pointer).
    #[napi]
    pub async fn remote_generation(&self) -> Outcome<i64> {
        let client = match self.client() {
            Ok(client) => client,
            Err(failure) => return Either::B(failure),
        };
        // A payload handle's client answers "no bucket" at once, no I/O.
        outcome(client.remote_generation().await.map(saturate))
    }

    /// Whether anything was pushed or rotated since the handle was opened.
    #[napi]
    pub async fn has_new_version(&self) -> Outcome<bool> {
        let client = match self.client() {
            Ok(client) => client,
            Err(failure) => return Either::B(failure),
        };
        outcome(client.has_new_version().await)
    }

    /// Wipes every value now (once no remote query holds the vault).
    /// Idempotent.
    #[napi]
    pub fn close(&self) {
        let taken = self.slot().take();
        drop(taken);
    }

    /// Whether `close` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.slot().is_none()
    }

    /// `<vsync:redacted gen=N env=E>`, never a value.
    #[napi]
    pub fn describe(&self) -> String {
        self.description.clone()
    }
}

fn saturate(generation: u64) -> i64 {
    i64::try_from(generation).unwrap_or(i64::MAX)
}

/// Opens the vault named by `VSYNC_CONFIG` / `VSYNC_CONFIG_FILE` with the
/// passphrase in `VSYNC_PASSPHRASE` / `VSYNC_PASSPHRASE_FILE`, off the JS
/// thread.
#[napi]
pub async fn open(defaults: Option<HashMap<String, String>>) -> Outcome<NativeVault> {
    let opened = vsync_s3_client::open(options(defaults)).await;
    outcome(opened.map(NativeVault::new))
}

/// Opens the vault named by the `vsync-cfg-v1:` blob `config` with
/// `passphrase` (both verbatim), off the JS thread.
#[napi]
pub async fn open_with(
    config: Option<String>,
    passphrase: Option<String>,
    defaults: Option<HashMap<String, String>>,
) -> Outcome<NativeVault> {
    // A missing value is refused like an empty one, by the Rust client
    // (ConfigMissingError); both copies are wiped after the call.
    let config = Zeroizing::new(config.unwrap_or_default());
    let passphrase = Zeroizing::new(passphrase.unwrap_or_default());
    let opened = vsync_s3_client::open_with(&config, &passphrase, options(defaults)).await;
    outcome(opened.map(NativeVault::new))
}

/// Builds a handle from an already decrypted bundle payload (a zip of the
/// vault folder as `vsync push` writes it, or JSON `{kv, assets}` / flat),
/// with no bucket behind it.
#[napi]
pub fn from_payload(
    env: String,
    payload: Buffer,
    defaults: Option<HashMap<String, String>>,
) -> Outcome<NativeVault> {
    let built = Client::from_payload(&env, &payload, options(defaults));
    outcome(built.map(NativeVault::new))
}
