//! The runtime reader library applications link: [`open()`] at boot does one
//! round trip to the bucket, then [`Client::get_env`], [`Client::has_env`],
//! [`Client::env_source`] and [`Client::get_as_content`] answer from memory
//! with the locked vault → process env → defaults → missing fallback chain.
//!
//! ```no_run
//! # async fn boot() -> Result<(), vsync_s3_client::Error> {
//! use vsync_s3_client::{Options, open};
//!
//! // VSYNC_CONFIG (or _FILE) and VSYNC_PASSPHRASE (or _FILE) name the vault.
//! let vault = open(Options::new().default_value("PORT", "8080")).await?;
//! let database_url = vault.get_env("DATABASE_URL").expect("DATABASE_URL is set");
//! let service_account = vault.get_as_content("gcp-sa.json");
//! // Later, e.g. in /healthz: did anyone push or rotate since boot?
//! let stale = vault.has_new_version().await?;
//! # let _ = (database_url, service_account, stale);
//! # Ok(()) }
//! ```
//!
//! [`blocking`] offers the same without an async runtime.
//!
//! # What `open` reads
//!
//! Both bucket layouts under the blob's prefix: the CLI's (`latest` naming
//! `versions/<ts>.enc`, generation in `latest.meta`) and the documented
//! library layout (`manifest`, a plaintext RQEM0001 seal, naming `v=<ts>`).
//! The bundle is `RQE1(RQEM0001(ts) ‖ payload)`; its sealed timestamp must
//! equal the pointer's, or the bundle is refused (`BundleCorruptError`).
//! The payload is a zip of the vault folder (as `vsync push` writes it) or
//! JSON `{kv, assets}` / flat; see [`Client`] for how KV pairs and assets are
//! named. The key derivation (PBKDF2, deliberately slow) runs on a blocking
//! thread while the pointer and the bundle are downloaded, so the network
//! round trips hide behind it.
//!
//! # Secrets
//!
//! Values are kept in wiping buffers and wiped when the [`Client`] is
//! dropped or closed; they are handed out as [`SecretString`] /
//! [`SecretBytes`], which print as `<redacted>`. The handle's `Debug` is
//! `<vsync:redacted gen=N env=E>`. Errors never carry values, the passphrase,
//! the access keys or the salt.
//!
//! Depends on `vsync-crypto`, `vsync-engine` and the S3 store only, never on
//! sources or sinks.

#![forbid(unsafe_code)]

pub mod blocking;
mod bootstrap;
mod error;
mod payload;
mod secret;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::sync::Arc;

use vsync_backends::s3::{Proxy, S3Store};
use vsync_crypto::Zeroizing;
use vsync_crypto::config_blob::RuntimeConfig;
use vsync_engine::store::Store;
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::{self, Derivation, Layout, RemoteHead};

pub use error::Error;
use error::Place;
pub use secret::{SecretBytes, SecretString};
pub use vsync_crypto::ErrorClass;

/// Where a lookup's value came from, in the locked order of the fallback
/// chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The vault's KV pairs (the decrypted bundle).
    Vault,
    /// The process environment, read at lookup time.
    Env,
    /// The defaults passed at open.
    Default,
    /// Nowhere.
    Missing,
}

impl Source {
    /// `vault`, `env`, `default` or `missing`, as every vsync library names
    /// them.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Vault => "vault",
            Source::Env => "env",
            Source::Default => "default",
            Source::Missing => "missing",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Lookup = dyn Fn(&str) -> Option<OsString> + Send + Sync;

/// Where environment variables come from: the process environment, or a
/// function standing in for it.
#[derive(Clone, Default)]
pub(crate) enum Environment {
    #[default]
    Process,
    Custom(Arc<Lookup>),
}

impl Environment {
    pub(crate) fn get(&self, name: &str) -> Option<OsString> {
        match self {
            Environment::Process => bootstrap::process_env(name),
            Environment::Custom(lookup) => lookup(name),
        }
    }
}

/// What `open` takes besides the config and passphrase: the defaults at the
/// bottom of the fallback chain and, optionally, a stand-in for the process
/// environment.
#[derive(Clone, Default)]
pub struct Options {
    defaults: BTreeMap<String, Zeroizing<String>>,
    environment: Environment,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("defaults", &self.defaults.keys().collect::<Vec<_>>())
            .field(
                "environment",
                &match self.environment {
                    Environment::Process => "process",
                    Environment::Custom(_) => "custom",
                },
            )
            .finish()
    }
}

impl Options {
    /// No defaults; the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one default (the last step of the fallback chain).
    pub fn default_value(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults
            .insert(key.into(), Zeroizing::new(value.into()));
        self
    }

    /// Adds several defaults.
    pub fn defaults<K, V>(mut self, defaults: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        for (key, value) in defaults {
            self = self.default_value(key, value);
        }
        self
    }

    /// Replaces the process environment with `lookup`, both for
    /// [`open()`]'s `VSYNC_*` variables and for the env step of the fallback
    /// chain (called at every lookup, never cached). For tests, and for
    /// applications whose configuration is not the process environment.
    pub fn environment(
        mut self,
        lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static,
    ) -> Self {
        self.environment = Environment::Custom(Arc::new(lookup));
        self
    }
}

/// The bucket a handle was opened from, for `remote_generation`.
struct Remote {
    store: Arc<dyn Store>,
    layout: Layout,
    place: Place,
}

/// An open vault: the decrypted KV pairs and assets of one env, in memory.
///
/// - **KV pairs** come from the bundle's `.env.<env>` (upstream's dotenv line
///   rules plus double-quoted values spanning lines, e.g. a PEM: values
///   verbatim after stripping one pair of surrounding quotes; no `${VAULT_ROOT}`/`${HOME}`/`~/` expansion and no `_PATH`/`_FILE`
///   references, which are `vsync sync` features tied to the pusher's
///   machine), or from a JSON payload's `kv`.
/// - **Assets** are every other file of the vault folder, named by their
///   path relative to it with `/` separators (`gcp-sa.json`,
///   `tls/server.crt`), or a JSON payload's `assets`.
///
/// Handles are independent: open one per env, side by side. A handle is
/// `Send + Sync`; share it behind an `Arc`. Dropping it (or [`Client::close`])
/// wipes every value.
pub struct Client {
    env: String,
    kv: BTreeMap<String, Zeroizing<String>>,
    assets: BTreeMap<String, Zeroizing<Vec<u8>>>,
    defaults: BTreeMap<String, Zeroizing<String>>,
    environment: Environment,
    version: Option<Timestamp>,
    generation: u64,
    remote: Option<Remote>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<vsync:redacted gen={} env={}>",
            self.generation, self.env
        )
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Opens the vault named by `VSYNC_CONFIG` / `VSYNC_CONFIG_FILE` with the
/// passphrase in `VSYNC_PASSPHRASE` / `VSYNC_PASSPHRASE_FILE` (read once,
/// now). `<NAME>_FILE` wins when set and non-empty; a file's trailing
/// whitespace is stripped, a direct value is used verbatim; a world-writable
/// file is refused (`ConfigMissingError`).
pub async fn open(options: Options) -> Result<Client, Error> {
    let inputs = bootstrap::resolve(&options.environment)?;
    open_with(&inputs.config, &inputs.passphrase, options).await
}

/// Opens the vault named by the `vsync-cfg-v1:` blob `config` with
/// `passphrase` (both verbatim): one read of the pointer and one of the
/// bundle, then everything is in memory.
pub async fn open_with(config: &str, passphrase: &str, options: Options) -> Result<Client, Error> {
    let (config, layout) = decode_config(config, passphrase)?;
    // Started before the S3 client is built: building it (TLS roots,
    // connectors) is work the derivation can hide too.
    let derivation = start_derivation(&config, passphrase);
    let store = S3Store::builder()
        .endpoint(config.endpoint.as_str())
        .region(config.region.as_str())
        .bucket(config.bucket.as_str())
        .credentials(
            config.access_key_id.as_str(),
            config.secret_access_key.as_str(),
        )
        .proxy(Proxy::FromEnv)
        .build()
        .map_err(|err| {
            Error::new(
                ErrorClass::S3Unreachable,
                format!(
                    "the blob's bucket settings are unusable: {err} — re-mint the blob with `vsync runtime-token --env={}`",
                    config.env
                ),
            )
        })?;
    open_on(Arc::new(store), config, layout, derivation, options).await
}

/// Like [`open_with`], but reads from `store` instead of the S3 bucket the
/// blob names; the blob still gives the prefix, env, salt and iterations.
/// For a local-directory vault (`vsync_backends::fs::FsStore`) in
/// development, or a custom transport.
pub async fn open_with_store(
    store: Arc<dyn Store>,
    config: &str,
    passphrase: &str,
    options: Options,
) -> Result<Client, Error> {
    let (config, layout) = decode_config(config, passphrase)?;
    let derivation = start_derivation(&config, passphrase);
    open_on(store, config, layout, derivation, options).await
}

/// The KDF dominates `open`: it runs on a blocking thread while the store
/// is set up and the pointer and the bundle are downloaded.
fn start_derivation(config: &RuntimeConfig, passphrase: &str) -> Derivation {
    Derivation::start(
        passphrase.as_bytes(),
        config.salt.as_bytes(),
        config.iterations,
    )
}

fn decode_config(config: &str, passphrase: &str) -> Result<(RuntimeConfig, Layout), Error> {
    if config.is_empty() {
        return Err(Error::config_missing(
            "the config is empty — pass the blob `vsync runtime-token --env=<env>` prints",
        ));
    }
    if passphrase.is_empty() {
        return Err(Error::config_missing(
            "the passphrase is empty — pass the env's passphrase",
        ));
    }
    let config = RuntimeConfig::decode(config)
        .map_err(|err| Error::new(err.class(), format!("VSYNC_CONFIG: {err}")))?;
    let layout = Layout::new(&config.prefix).map_err(|err| {
        Error::new(
            ErrorClass::ManifestNotFound,
            format!(
                "the blob's {err}, so no vault can be found under it — re-mint the blob with `vsync runtime-token --env={}`",
                config.env
            ),
        )
    })?;
    Ok((config, layout))
}

async fn open_on(
    store: Arc<dyn Store>,
    config: RuntimeConfig,
    layout: Layout,
    derivation: Derivation,
    options: Options,
) -> Result<Client, Error> {
    let place = Place {
        store: store.describe(),
        prefix: config.prefix.clone(),
        env: config.env.clone(),
    };
    let head = vault::remote_head(&*store, &layout)
        .await
        .map_err(|err| place.vault_error(err))?
        .ok_or_else(|| place.manifest_not_found())?;
    let fetched = vault::fetch_deriving(&*store, &layout, &head, None, derivation)
        .await
        .map_err(|err| place.vault_error(err))?;
    let contents = payload::decode(fetched.payload(), &config.env).map_err(|why| {
        Error::bundle_corrupt(format!(
            "version {} of env {:?}: {why} — push the env again with `vsync push {}`",
            head.ts, config.env, config.env
        ))
    })?;
    Ok(Client {
        env: config.env.clone(),
        kv: contents.kv,
        assets: contents.assets,
        defaults: options.defaults,
        environment: options.environment,
        version: Some(head.ts),
        generation: head.generation,
        remote: Some(Remote {
            store,
            layout,
            place,
        }),
    })
}

/// What the bucket points at now: version and generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteVersion {
    /// The current bundle's timestamp (`YYYYMMDD-HHmmss`).
    pub version: String,
    /// The generation counter from `latest.meta` (0 when absent, as in
    /// buckets written by the upstream CLI).
    pub generation: u64,
}

impl Client {
    /// Builds a handle from an already decrypted bundle payload (a zip of the
    /// vault folder, or JSON), with no bucket behind it: generation 0, no
    /// version, and [`Client::remote_generation`] fails. For tests and for
    /// applications that fetch bundles themselves.
    pub fn from_payload(env: &str, payload: &[u8], options: Options) -> Result<Client, Error> {
        let contents = payload::decode(payload, env).map_err(Error::bundle_corrupt)?;
        Ok(Client {
            env: env.to_owned(),
            kv: contents.kv,
            assets: contents.assets,
            defaults: options.defaults,
            environment: options.environment,
            version: None,
            generation: 0,
            remote: None,
        })
    }

    fn lookup(&self, key: &str) -> (Source, Option<SecretString>) {
        if let Some(value) = self.kv.get(key) {
            return (Source::Vault, Some(SecretString::new(value.as_str())));
        }
        if let Some(value) = self.environment.get(key) {
            // A variable that is not UTF-8 is still "defined"; its bytes are
            // converted lossily rather than skipped. (The process keeps its
            // own copy of every variable; only ours is wiped.)
            let value = value
                .into_string()
                .unwrap_or_else(|raw| raw.to_string_lossy().into_owned());
            return (Source::Env, Some(SecretString::new(value)));
        }
        if let Some(value) = self.defaults.get(key) {
            return (Source::Default, Some(SecretString::new(value.as_str())));
        }
        (Source::Missing, None)
    }

    /// The value of `key` from the vault, else the process environment (read
    /// now), else the defaults; `None` when it is nowhere.
    pub fn get_env(&self, key: &str) -> Option<SecretString> {
        self.lookup(key).1
    }

    /// Whether `key` is in the vault, the environment (an empty value counts)
    /// or the defaults.
    pub fn has_env(&self, key: &str) -> bool {
        self.env_source(key) != Source::Missing
    }

    /// Which step of the fallback chain answers for `key`. Safe to log.
    pub fn env_source(&self, key: &str) -> Source {
        if self.kv.contains_key(key) {
            Source::Vault
        } else if self.environment.get(key).is_some() {
            Source::Env
        } else if self.defaults.contains_key(key) {
            Source::Default
        } else {
            Source::Missing
        }
    }

    /// The bytes of the asset `name` (its path relative to the vault folder,
    /// e.g. `tls/server.crt`), else the UTF-8 bytes of the vault KV `name`;
    /// `None` when neither exists. The environment and defaults are not
    /// consulted.
    pub fn get_as_content(&self, name: &str) -> Option<SecretBytes> {
        self.assets
            .get(name)
            .map(|bytes| SecretBytes::new(bytes.to_vec()))
            .or_else(|| {
                self.kv
                    .get(name)
                    .map(|value| SecretBytes::new(value.as_bytes().to_vec()))
            })
    }

    /// The vault's KV names, sorted. Safe to log.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.kv.keys().map(String::as_str)
    }

    /// The vault's asset names, sorted. Safe to log.
    pub fn asset_names(&self) -> impl Iterator<Item = &str> {
        self.assets.keys().map(String::as_str)
    }

    /// The env this handle holds (the blob's `env`).
    pub fn env(&self) -> &str {
        &self.env
    }

    /// The generation read at open (`latest.meta`'s `gen`; 0 when absent).
    /// Safe to log.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The timestamp of the bundle read at open; `None` for a handle built
    /// by [`Client::from_payload`].
    pub fn version(&self) -> Option<&str> {
        self.version.as_ref().map(Timestamp::as_str)
    }

    /// Reads the bucket's pointer (`latest` + `latest.meta`, or `manifest`)
    /// without fetching the bundle or changing this handle.
    pub async fn remote_version(&self) -> Result<RemoteVersion, Error> {
        let remote = self.remote.as_ref().ok_or_else(Error::unbound)?;
        let head: RemoteHead = vault::remote_head(&*remote.store, &remote.layout)
            .await
            .map_err(|err| remote.place.vault_error(err))?
            .ok_or_else(|| remote.place.manifest_not_found())?;
        Ok(RemoteVersion {
            version: head.ts.as_str().to_owned(),
            generation: head.generation,
        })
    }

    /// The bucket's current generation (one small read of the pointer, no
    /// state change).
    pub async fn remote_generation(&self) -> Result<u64, Error> {
        Ok(self.remote_version().await?.generation)
    }

    /// Whether anything was pushed or rotated since this handle was opened:
    /// the bucket points at a newer version **or** a higher generation.
    /// (Upstream compares generations only, which its CLI bumps on rotation
    /// alone; the version comparison also catches pushes by CLIs that write
    /// no generation.) Restart, or open a new handle, to pick it up.
    pub async fn has_new_version(&self) -> Result<bool, Error> {
        let remote = self.remote_version().await?;
        let newer_version = self
            .version
            .as_ref()
            .is_some_and(|local| remote.version.as_str() > local.as_str());
        Ok(newer_version || remote.generation > self.generation)
    }

    /// Closes the handle, wiping every value now. (Dropping it does the
    /// same; after `close` the handle is gone, so no accessor can be called
    /// on a closed vault.)
    pub fn close(self) {
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> Options {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        Options::new().environment(move |name| map.get(name).cloned())
    }

    #[test]
    fn fallback_chain_in_locked_order() {
        let options = env_of(&[("A", "env-a"), ("B", "env-b"), ("EMPTY", "")]).defaults([
            ("A", "def-a"),
            ("B", "def-b"),
            ("C", "def-c"),
        ]);
        let vault = Client::from_payload("dev", br#"{"A":"vault-a"}"#, options).unwrap();
        let answer = |key: &str| {
            (
                vault.get_env(key).map(|v| v.expose().to_owned()),
                vault.env_source(key),
                vault.has_env(key),
            )
        };
        assert_eq!(answer("A"), (Some("vault-a".into()), Source::Vault, true));
        assert_eq!(answer("B"), (Some("env-b".into()), Source::Env, true));
        assert_eq!(answer("EMPTY"), (Some(String::new()), Source::Env, true));
        assert_eq!(answer("C"), (Some("def-c".into()), Source::Default, true));
        assert_eq!(answer("D"), (None, Source::Missing, false));
        assert_eq!(Source::Default.to_string(), "default");
    }

    #[test]
    fn env_is_read_at_lookup_time() {
        let value = Arc::new(std::sync::Mutex::new(None::<String>));
        let seen = Arc::clone(&value);
        let options = Options::new().environment(move |name| {
            (name == "LATE")
                .then(|| seen.lock().unwrap().clone().map(OsString::from))
                .flatten()
        });
        let vault = Client::from_payload("dev", b"{}", options).unwrap();
        assert_eq!(vault.env_source("LATE"), Source::Missing);
        *value.lock().unwrap() = Some("now".into());
        assert_eq!(vault.env_source("LATE"), Source::Env);
        assert_eq!(vault.get_env("LATE").unwrap().expose(), "now");
    }

    #[test]
    fn get_as_content_prefers_assets_then_kv_never_env() {
        let payload =
            br#"{"kv":{"K":"kv-value","both":"kv"},"assets":{"both":"YXNzZXQ=","a.pem":"UEVN"}}"#;
        let vault = Client::from_payload(
            "dev",
            payload,
            env_of(&[("E", "x")]).default_value("D", "y"),
        )
        .unwrap();
        let content = |name: &str| vault.get_as_content(name).map(|b| b.expose().to_vec());
        assert_eq!(content("both"), Some(b"asset".to_vec()));
        assert_eq!(content("a.pem"), Some(b"PEM".to_vec()));
        assert_eq!(content("K"), Some(b"kv-value".to_vec()));
        assert_eq!(content("E"), None);
        assert_eq!(content("D"), None);
        assert_eq!(vault.keys().collect::<Vec<_>>(), ["K", "both"]);
        assert_eq!(vault.asset_names().collect::<Vec<_>>(), ["a.pem", "both"]);
    }

    #[test]
    fn debug_is_redacted() {
        let vault = Client::from_payload(
            "prod",
            br#"{"SECRET":"hunter2"}"#,
            Options::new().default_value("D", "default-secret"),
        )
        .unwrap();
        assert_eq!(format!("{vault:?}"), "<vsync:redacted gen=0 env=prod>");
        assert_eq!(vault.to_string(), "<vsync:redacted gen=0 env=prod>");
        let value = vault.get_env("SECRET").unwrap();
        assert_eq!(format!("{value:?}"), "<redacted>");
        let options = format!("{:?}", Options::new().default_value("D", "default-secret"));
        assert!(!options.contains("default-secret"), "{options}");
        vault.close();
    }

    #[test]
    fn a_payload_handle_has_no_bucket() {
        let vault = Client::from_payload("dev", b"{}", Options::new()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime.block_on(vault.has_new_version()).unwrap_err();
        assert_eq!(err.class(), None);
        assert_eq!(vault.version(), None);
    }

    #[test]
    fn open_with_rejects_empty_and_bad_inputs_before_any_io() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let class = |config: &str, passphrase: &str| {
            runtime
                .block_on(open_with(config, passphrase, Options::new()))
                .unwrap_err()
                .class()
        };
        assert_eq!(class("", "p"), Some(ErrorClass::ConfigMissing));
        assert_eq!(class("vsync-cfg-v1:x", ""), Some(ErrorClass::ConfigMissing));
        assert_eq!(class("{\"v\":1}", "p"), Some(ErrorClass::ConfigMissing));
        assert_eq!(
            class("vsync-cfg-v1:a+b", "p"),
            Some(ErrorClass::ConfigUnsupportedVersion)
        );
        assert_eq!(
            class("vsync-cfg-v1:AAECAwQFBgcICQ", "p"),
            Some(ErrorClass::BundleCorrupt)
        );
        let no_slash = RuntimeConfig {
            endpoint: "http://127.0.0.1:9".into(),
            region: "us-east-1".into(),
            bucket: "acme".into(),
            access_key_id: Zeroizing::new("ak".into()),
            secret_access_key: Zeroizing::new("sk".into()),
            prefix: "acme/dev".into(),
            env: "dev".into(),
            salt: Zeroizing::new("0123456789abcdef".into()),
            iterations: std::num::NonZeroU32::new(1).unwrap(),
        };
        let err = runtime
            .block_on(open_with(&no_slash.encode(), "p", Options::new()))
            .unwrap_err();
        assert_eq!(err.class(), Some(ErrorClass::ManifestNotFound));
        assert!(err.message().contains("must end with `/`"), "{err}");
    }
}
