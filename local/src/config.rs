//! The per-(repo, env) config `<base>/<repo>/env_<env-lower>`: upstream's
//! `ConfigFile` schema v1, stored as raw gzip of compact JSON (mode 0600,
//! directories 0700), validated on load and on save with upstream's rules.
//!
//! Keys are written in the order upstream's `init` writes them; keys this
//! version does not know are kept and written back. Errors name the file and
//! the field, never a value: the secret access key is zeroized on drop and
//! redacted from `Debug`.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use flate2::Compression;
use flate2::GzBuilder;
use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vsync_crypto::Zeroizing;
use vsync_engine::vault_fs::{NotPlain, check_plain_relative};

use crate::fsutil;
use crate::paths::{ConfigBase, PathsError};

/// The only config schema version.
pub const CONFIG_VERSION: u32 = 1;

/// Decompressed configs larger than this are refused (a config is a few
/// hundred bytes; anything near this is a decompression bomb).
const MAX_JSON_LEN: u64 = 4 << 20;

/// The OS byte Node's zlib writes into a gzip header on Unix.
const GZIP_OS_UNIX: u8 = 3;

/// The endpoint scheme that marks a local-directory store.
const FILE_SCHEME: &str = "file://";

/// Why a config could not be read, validated or written. No variant carries
/// a config value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No config exists for the (repo, env) pair.
    #[error("no config for {repo}/{env} at {path}; run `vsync init {env}` or import a .share")]
    NoConfig {
        /// The repo.
        repo: String,
        /// The env.
        env: String,
        /// Where the config was looked for.
        path: PathBuf,
    },
    /// The config file does not exist.
    #[error("no vsync config at {path}; run `vsync init <env>` or import a .share")]
    NotFound {
        /// The path looked at.
        path: PathBuf,
    },
    /// Reading or writing the file failed.
    #[error("{path}: {source}; check the file and its directory permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The file is not gzip-compressed JSON of an object.
    #[error(
        "{path} is not a vsync config ({reason}); restore it from a backup, re-import the .share or re-run `vsync init <env>`"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, without content.
        reason: &'static str,
    },
    /// A field breaks the schema.
    #[error(
        "{path}: field `{field}` {problem}; fix it, re-import the .share or re-run `vsync init <env>`"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted field name, e.g. `s3.bucket`.
        field: String,
        /// What is wrong, without the value.
        problem: &'static str,
    },
    /// A vault folder given to `init` that could reach outside the repo.
    #[error("vault folder {problem}; pass a path like infra/vault/dev to --vault-folder")]
    InvalidVaultFolder {
        /// What is wrong, without the value.
        problem: &'static str,
    },
    /// A local store directory that is not absolute.
    #[error(
        "local store directory {0} must be an absolute path; pass an absolute directory for the store"
    )]
    LocalStoreNotAbsolute(PathBuf),
    /// The repo or env cannot name a config path.
    #[error(transparent)]
    Paths(#[from] PathsError),
    /// A directory or file on the way is not this user's alone.
    #[error(transparent)]
    NotPrivate(#[from] fsutil::NotPrivate),
}

/// The `s3` block: where bundles live and the credentials to reach them.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Config {
    /// Endpoint URL (`https://…`, `host:port`, or `file://<dir>` for the
    /// local store).
    pub endpoint: String,
    /// Region (`auto`, `us-east-1`, `local`, …).
    pub region: String,
    /// Bucket name.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key; wiped on drop, never printed.
    pub secret_access_key: Zeroizing<String>,
    /// Whether a scheme-less endpoint gets `https://`.
    pub use_ssl: bool,
    /// Keys this version does not know, written back unchanged.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The key, in the `s3` block of an env config and in a profile, that forces
/// a provider preset (`hetzner`, `minio`, …) instead of detecting it from
/// the endpoint's host. Upstream ignores unknown keys, so configs carrying
/// it stay readable by upstream vsync, and this crate writes it back
/// unchanged like any other unknown key.
pub const PROVIDER_KEY: &str = "provider";

impl S3Config {
    /// The forced provider preset's name, if one is set.
    pub fn provider(&self) -> Option<&str> {
        self.extra.get(PROVIDER_KEY).and_then(Value::as_str)
    }

    /// Forces a provider preset (`None` goes back to detection).
    pub fn set_provider(&mut self, provider: Option<&str>) {
        match provider {
            Some(name) => {
                self.extra.insert(PROVIDER_KEY.to_owned(), name.into());
            }
            None => {
                self.extra.remove(PROVIDER_KEY);
            }
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("use_ssl", &self.use_ssl)
            .field("extra_keys", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The `encryption` block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Encryption {
    /// The PBKDF2 salt, used as UTF-8 bytes verbatim.
    pub salt: String,
    /// Keys this version does not know.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The `files` block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Files {
    /// The vault folder relative to the vault root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_folder: Option<String>,
    /// Keys this version does not know.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The `audit` block.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Audit {
    /// Whether push/pull/export/import append to the bucket's audit log.
    pub enabled: bool,
    /// Keys this version does not know.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl Default for Audit {
    /// Upstream fills an absent `audit` with `{enabled: true}`.
    fn default() -> Self {
        Self {
            enabled: true,
            extra: Map::new(),
        }
    }
}

/// The `sync` block: per-platform routing remembered by `vsync sync`, one
/// object per platform keyed by its short name (`sync.gh`, `sync.aws`). This
/// crate knows no platform: each block is kept as written and handed to the
/// platform that owns it (`vsync-platforms`), which reads its fields.
pub type SyncTargets = Map<String, Value>;

/// The `exec` block: the env's own trust mode, what `vsync exec --mode
/// custom` applies (saved by `vsync config exec`). Entries are variable
/// names or name prefixes ending in `*` (`LC_*`; `*` alone is every name).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecPolicy {
    /// The parent's variables a child inherits (vsync's own credentials
    /// never: the built-in strip list applies in every mode).
    #[serde(default)]
    pub inherit: Vec<String>,
    /// More of the parent's variables a child never gets.
    #[serde(default)]
    pub strip: Vec<String>,
    /// The child's output is always redacted (`--no-redact` refused).
    #[serde(default)]
    pub always_redact: bool,
    /// Keys this version does not know.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Checks an [`ExecPolicy`] entry: a variable name (`[A-Za-z_][A-Za-z0-9_]*`),
/// optionally ending in `*` to match every name it starts.
pub fn check_name_pattern(pattern: &str) -> Result<(), &'static str> {
    let name = pattern.strip_suffix('*').unwrap_or(pattern);
    let mut chars = name.chars();
    let valid_start = match chars.next() {
        None => pattern == "*",
        Some(first) => first == '_' || first.is_ascii_alphabetic(),
    };
    if valid_start && chars.all(|c| c == '_' || c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err("must be a variable name ([A-Za-z_][A-Za-z0-9_]*), optionally ending in *")
    }
}

/// One (repo, env) config, upstream's `ConfigFile` v1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EnvConfig {
    version: u32,
    /// The store.
    pub s3: S3Config,
    /// The encryption salt.
    pub encryption: Encryption,
    /// The vault folder override; written only when it differs from the
    /// default (see [`EnvConfig::set_vault_folder`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Files>,
    /// The audit switch (`{enabled: true}` when absent from the file).
    #[serde(default)]
    pub audit: Audit,
    /// The profile `init` used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_profile: Option<String>,
    /// The bucket prefix (with trailing `/`); `<repo>/<env>/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Sync targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncTargets>,
    /// The custom exec trust mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecPolicy>,
    /// Keys this version does not know (e.g. `lastPush`).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A fresh salt as upstream's `init` makes it: 18 random bytes, standard
/// base64 with the `=` stripped, always 24 characters of `[A-Za-z0-9+/]`.
pub fn generate_salt() -> String {
    let bytes: [u8; 18] = fsutil::random_bytes();
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Checks a vault folder (`files.vaultFolder`, `init --vault-folder=`): a
/// relative path of plain components separated by `/`, so that `pull`
/// (which replaces the folder) and `push` (which uploads it) can only ever
/// touch a directory inside the working tree. `..`, `.`, empty components,
/// absolute paths, `\`, NUL and a `.git` component (a pull would write git
/// hooks) are refused; the problem is returned without the value.
pub fn check_vault_folder(folder: &str) -> Result<(), &'static str> {
    check_plain_relative(folder).map_err(|problem| match problem {
        NotPlain::Absolute => {
            "must be relative to the repo root (e.g. infra/vault/dev), not absolute"
        }
        NotPlain::Dot => "must name plain folders inside the repo (no `.` or `..` components)",
        other => other.problem(),
    })?;
    if folder
        .split('/')
        .any(|component| component.eq_ignore_ascii_case(".git"))
    {
        return Err("must not be inside the `.git` directory");
    }
    Ok(())
}

/// The default vault folder of an env: `infra/vault/<env-lowercased>`.
pub fn default_vault_folder(env: &str) -> String {
    format!("infra/vault/{}", env.to_lowercase())
}

impl EnvConfig {
    /// A config for `s3` with `salt`, audit on, default vault folder.
    pub fn new(s3: S3Config, salt: String) -> Self {
        Self {
            version: CONFIG_VERSION,
            s3,
            encryption: Encryption {
                salt,
                extra: Map::new(),
            },
            files: None,
            audit: Audit::default(),
            init_profile: None,
            prefix: None,
            sync: None,
            exec: None,
            extra: Map::new(),
        }
    }

    /// A config for the local directory store at `store_dir`, kept
    /// upstream-valid: endpoint `file://<store_dir>`, region `local`, bucket
    /// `vsync`, both credentials `local` (upstream requires non-empty
    /// strings) and `useSsl` false.
    pub fn local_store(store_dir: &Path, salt: String) -> Result<Self, ConfigError> {
        if !store_dir.is_absolute() {
            return Err(ConfigError::LocalStoreNotAbsolute(store_dir.to_path_buf()));
        }
        let s3 = S3Config {
            endpoint: format!("{FILE_SCHEME}{}", store_dir.display()),
            region: "local".to_owned(),
            bucket: "vsync".to_owned(),
            access_key_id: "local".to_owned(),
            secret_access_key: Zeroizing::new("local".to_owned()),
            use_ssl: false,
            extra: Map::new(),
        };
        Ok(Self::new(s3, salt))
    }

    /// The store directory when the endpoint is `file://<absolute dir>`.
    pub fn local_store_dir(&self) -> Option<PathBuf> {
        let rest = self.s3.endpoint.strip_prefix(FILE_SCHEME)?;
        let dir = Path::new(rest);
        dir.is_absolute().then(|| dir.to_path_buf())
    }

    /// The schema version (always 1).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The vault folder relative to the vault root: `files.vaultFolder`, or
    /// `infra/vault/<env-lowercased>`.
    pub fn vault_folder(&self, env: &str) -> String {
        self.files
            .as_ref()
            .and_then(|files| files.vault_folder.clone())
            .unwrap_or_else(|| default_vault_folder(env))
    }

    /// Sets the vault folder, refused unless [`check_vault_folder`] accepts
    /// it; the `files` block is dropped when `folder` is the default, as
    /// upstream writes it only when it differs.
    pub fn set_vault_folder(&mut self, env: &str, folder: &str) -> Result<(), ConfigError> {
        check_vault_folder(folder)
            .map_err(|problem| ConfigError::InvalidVaultFolder { problem })?;
        let extra = self
            .files
            .take()
            .map(|files| files.extra)
            .unwrap_or_default();
        if folder == default_vault_folder(env) {
            if !extra.is_empty() {
                self.files = Some(Files {
                    vault_folder: None,
                    extra,
                });
            }
        } else {
            self.files = Some(Files {
                vault_folder: Some(folder.to_owned()),
                extra,
            });
        }
        Ok(())
    }

    /// Compact JSON in upstream's key order (the form a `.share` embeds).
    /// Fails only when the config breaks the schema.
    pub fn to_json(&self, origin: &Path) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        let value = serde_json::to_value(self).expect("a config serialises to JSON");
        validate(&value).map_err(|(field, problem)| ConfigError::Invalid {
            path: origin.to_path_buf(),
            field,
            problem,
        })?;
        drop(value);
        Ok(Zeroizing::new(
            serde_json::to_vec(self).expect("a config serialises to JSON"),
        ))
    }

    /// Parses and validates config JSON; `origin` names the source in errors.
    pub fn from_json(json: &[u8], origin: &Path) -> Result<Self, ConfigError> {
        let corrupt = |reason| ConfigError::Corrupt {
            path: origin.to_path_buf(),
            reason,
        };
        let value: Value = serde_json::from_slice(json).map_err(|_| corrupt("not JSON"))?;
        validate(&value).map_err(|(field, problem)| ConfigError::Invalid {
            path: origin.to_path_buf(),
            field,
            problem,
        })?;
        serde_json::from_value(value).map_err(|_| corrupt("fields of the wrong type"))
    }

    /// The on-disk bytes: raw gzip (Node `gzipSync` header: MTIME 0, OS
    /// Unix) of the compact JSON.
    pub fn to_bytes(&self, origin: &Path) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        let json = self.to_json(origin)?;
        let mut compressed = Zeroizing::new(Vec::with_capacity(json.len() + 64));
        let mut gzip = GzBuilder::new()
            .operating_system(GZIP_OS_UNIX)
            .write(&mut *compressed, Compression::new(6));
        gzip.write_all(&json)
            .and_then(|()| gzip.try_finish())
            .expect("gzip into memory cannot fail");
        drop(gzip);
        Ok(compressed)
    }

    /// Parses on-disk bytes; `origin` names the file in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self, ConfigError> {
        let mut json = Zeroizing::new(Vec::new());
        GzDecoder::new(bytes)
            .take(MAX_JSON_LEN)
            .read_to_end(&mut json)
            .map_err(|_| ConfigError::Corrupt {
                path: origin.to_path_buf(),
                reason: "not gzip data",
            })?;
        Self::from_json(&json, origin)
    }

    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound {
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::from_bytes(&bytes, path)
    }

    /// Validates and writes the config to `path` atomically (0600; the
    /// parent directories are created 0700).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let bytes = self.to_bytes(path)?;
        fsutil::write_private_atomic_in_private_dir(path, &bytes).map_err(|source| {
            ConfigError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Reads the config of (`repo`, `env`) under `base`.
    pub fn load_for(base: &ConfigBase, repo: &str, env: &str) -> Result<Self, ConfigError> {
        let path = base.env_config_path(repo, env)?;
        fsutil::check_private_chain(base.dir(), &path)?;
        Self::load(&path).map_err(|err| match err {
            ConfigError::NotFound { path } => ConfigError::NoConfig {
                repo: repo.to_owned(),
                env: env.to_owned(),
                path,
            },
            other => other,
        })
    }

    /// Writes the config of (`repo`, `env`) under `base`; returns its path.
    pub fn save_for(
        &self,
        base: &ConfigBase,
        repo: &str,
        env: &str,
    ) -> Result<PathBuf, ConfigError> {
        let path = base.env_config_path(repo, env)?;
        fsutil::check_private_chain(base.dir(), &path)?;
        self.save(&path)?;
        Ok(path)
    }
}

type Violation = (String, &'static str);

/// Upstream's `validateConfig`, on the JSON value: returns the first
/// offending field and what is wrong with it.
fn validate(value: &Value) -> Result<(), Violation> {
    let violation = |field: &str, problem| Err((field.to_owned(), problem));
    let Some(root) = value.as_object() else {
        return violation("(root)", "must be a JSON object");
    };
    if root.get("version").and_then(Value::as_u64) != Some(u64::from(CONFIG_VERSION)) {
        return violation("version", "must be 1 (this vsync reads config schema v1)");
    }
    let Some(s3) = root.get("s3").and_then(Value::as_object) else {
        return violation("s3", "must be an object");
    };
    for key in [
        "endpoint",
        "region",
        "bucket",
        "accessKeyId",
        "secretAccessKey",
    ] {
        match s3.get(key).and_then(Value::as_str) {
            Some(text) if !text.is_empty() => {}
            _ => return violation(&format!("s3.{key}"), "must be a non-empty string"),
        }
    }
    if !s3.get("useSsl").is_some_and(Value::is_boolean) {
        return violation("s3.useSsl", "must be true or false");
    }
    match root
        .get("encryption")
        .and_then(Value::as_object)
        .and_then(|enc| enc.get("salt"))
        .and_then(Value::as_str)
    {
        Some(salt) if !salt.is_empty() => {}
        _ => return violation("encryption.salt", "must be a non-empty string"),
    }
    if let Some(files) = root.get("files") {
        let Some(files) = files.as_object() else {
            return violation("files", "must be an object");
        };
        match files.get("vaultFolder") {
            None => {}
            Some(Value::String(folder)) => {
                check_vault_folder(folder)
                    .or_else(|problem| violation("files.vaultFolder", problem))?;
            }
            Some(_) => return violation("files.vaultFolder", "must be a string"),
        }
    }
    if let Some(audit) = root.get("audit")
        && !audit
            .as_object()
            .and_then(|audit| audit.get("enabled"))
            .is_some_and(Value::is_boolean)
    {
        return violation("audit.enabled", "must be true or false");
    }
    for key in ["initProfile", "prefix"] {
        if root.get(key).is_some_and(|v| !v.is_string()) {
            return violation(key, "must be a string");
        }
    }
    if let Some(sync) = root.get("sync") {
        let Some(sync) = sync.as_object() else {
            return violation("sync", "must be an object");
        };
        // Each platform checks its own fields when it is used; here only
        // the shape every block shares.
        for (name, block) in sync {
            if !block.is_object() {
                return violation(&format!("sync.{name}"), "must be an object");
            }
        }
    }
    if let Some(exec) = root.get("exec") {
        let Some(exec) = exec.as_object() else {
            return violation("exec", "must be an object");
        };
        for list in ["inherit", "strip"] {
            let Some(entries) = exec.get(list) else {
                continue;
            };
            let Some(entries) = entries.as_array() else {
                return violation(&format!("exec.{list}"), "must be a list of names");
            };
            for (index, entry) in entries.iter().enumerate() {
                let field = format!("exec.{list}[{index}]");
                match entry.as_str() {
                    Some(pattern) => {
                        check_name_pattern(pattern).or_else(|p| violation(&field, p))?
                    }
                    None => return violation(&field, "must be a string"),
                }
            }
        }
        if exec.get("alwaysRedact").is_some_and(|v| !v.is_boolean()) {
            return violation("exec.alwaysRedact", "must be true or false");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::mode;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn sample() -> EnvConfig {
        let mut cfg = EnvConfig::new(
            S3Config {
                endpoint: "https://s3.example.com".to_owned(),
                region: "auto".to_owned(),
                bucket: "team-secrets".to_owned(),
                access_key_id: "AKIAEXAMPLE123".to_owned(),
                secret_access_key: Zeroizing::new(SECRET.to_owned()),
                use_ssl: true,
                extra: Map::new(),
            },
            "abcdefghijklmnopqrstuvwx".to_owned(),
        );
        cfg.init_profile = Some("work".to_owned());
        cfg.prefix = Some("acme_web/dev/".to_owned());
        cfg
    }

    fn gzip(json: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut gz = flate2::write::GzEncoder::new(&mut out, Compression::default());
        gz.write_all(json.as_bytes()).unwrap();
        gz.finish().unwrap();
        out
    }

    #[test]
    fn json_is_compact_in_upstream_key_order() {
        let json = sample().to_json(Path::new("x")).unwrap();
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            format!(
                r#"{{"version":1,"s3":{{"endpoint":"https://s3.example.com","region":"auto","bucket":"team-secrets","accessKeyId":"AKIAEXAMPLE123","secretAccessKey":"{SECRET}","useSsl":true}},"encryption":{{"salt":"abcdefghijklmnopqrstuvwx"}},"audit":{{"enabled":true}},"initProfile":"work","prefix":"acme_web/dev/"}}"#
            )
        );
    }

    #[test]
    fn save_load_round_trip_with_private_modes_and_node_gzip_header() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path().join("vsync"));
        let mut cfg = sample();
        cfg.set_vault_folder("dev", "secrets/dev").unwrap();
        cfg.sync = serde_json::json!({"aws": {"region": "eu-west-1", "secretPrefix": "acme/"}})
            .as_object()
            .cloned();
        let path = cfg.save_for(&base, "acme_web", "Dev").unwrap();
        assert_eq!(path, tmp.path().join("vsync/acme_web/env_dev"));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&tmp.path().join("vsync/acme_web")), 0o700);
        assert_eq!(mode(&tmp.path().join("vsync")), 0o700);
        let bytes = fs::read(&path).unwrap();
        // Node's gzipSync header: magic, deflate, no flags, MTIME 0, XFL 0, OS 3.
        assert_eq!(bytes[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        let loaded = EnvConfig::load_for(&base, "acme_web", "dev").unwrap();
        assert_eq!(loaded, cfg);
        assert_eq!(loaded.vault_folder("dev"), "secrets/dev");
    }

    #[test]
    fn reads_upstream_files_fills_audit_and_keeps_unknown_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("env_dev");
        let json = r#"{"version":1,"s3":{"endpoint":"minio:9000","region":"us-east-1","bucket":"b","accessKeyId":"ak","secretAccessKey":"sk","useSsl":false,"future":1},"encryption":{"salt":"s"},"lastPush":{"ts":"20260101-000000","gen":3}}"#;
        fs::write(&path, gzip(json)).unwrap();
        let cfg = EnvConfig::load(&path).unwrap();
        assert!(cfg.audit.enabled);
        assert_eq!(cfg.vault_folder("DEV"), "infra/vault/dev");
        assert!(cfg.extra.contains_key("lastPush"));
        cfg.save(&path).unwrap();
        let text = String::from_utf8(cfg.to_json(&path).unwrap().to_vec()).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"s3":{"endpoint":"minio:9000","region":"us-east-1","bucket":"b","accessKeyId":"ak","secretAccessKey":"sk","useSsl":false,"future":1},"encryption":{"salt":"s"},"audit":{"enabled":true},"lastPush":{"ts":"20260101-000000","gen":3}}"#
        );
    }

    #[test]
    fn vault_folder_is_written_only_when_not_default() {
        let mut cfg = sample();
        cfg.set_vault_folder("Dev", "infra/vault/dev").unwrap();
        assert!(cfg.files.is_none());
        cfg.set_vault_folder("dev", "x/y").unwrap();
        assert_eq!(
            cfg.files.as_ref().unwrap().vault_folder.as_deref(),
            Some("x/y")
        );
        cfg.set_vault_folder("dev", "infra/vault/dev").unwrap();
        assert!(cfg.files.is_none());
    }

    #[test]
    fn vault_folders_outside_the_tree_are_refused_on_load_share_and_init() {
        for good in ["infra/vault/dev", "secrets", "a/b.c/-d_e", "vault/.hidden"] {
            assert_eq!(check_vault_folder(good), Ok(()), "{good}");
        }
        let bad = [
            "",
            "../victim",
            "infra/../../victim",
            "/etc",
            "/",
            "./infra/vault",
            "infra/vault/",
            "infra//vault",
            "infra\\..\\x",
            "a\0b",
            ".git/hooks",
            "x/.GIT",
            "..",
        ];
        for folder in bad {
            assert!(check_vault_folder(folder).is_err(), "{folder:?} accepted");
            // `init --vault-folder=`
            let mut cfg = sample();
            let err = cfg.set_vault_folder("dev", folder).unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidVaultFolder { .. }),
                "{err}"
            );
            assert!(cfg.files.is_none());
            // a `.share`/`.keytree` payload or a config file on disk
            let mut value: Value =
                serde_json::from_slice(&sample().to_json(Path::new("x")).unwrap()).unwrap();
            value["files"] = serde_json::json!({ "vaultFolder": folder });
            let json = serde_json::to_vec(&value).unwrap();
            let err = EnvConfig::from_json(&json, Path::new("team.share")).unwrap_err();
            match &err {
                ConfigError::Invalid { field, .. } => assert_eq!(field, "files.vaultFolder"),
                other => panic!("{folder:?}: {other}"),
            }
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().join("env_dev");
            fs::write(&path, gzip(std::str::from_utf8(&json).unwrap())).unwrap();
            assert!(EnvConfig::load(&path).is_err(), "{folder:?} loaded");
        }
    }

    #[test]
    fn every_validation_rule_names_the_field_and_never_the_value() {
        let good: Value =
            serde_json::from_slice(&sample().to_json(Path::new("x")).unwrap()).unwrap();
        type Breaker = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("(root)", Box::new(|v| *v = Value::Array(vec![]))),
            ("version", Box::new(|v| v["version"] = 2.into())),
            ("version", Box::new(|v| v["version"] = "1".into())),
            ("s3", Box::new(|v| v["s3"] = Value::Null)),
            ("s3.endpoint", Box::new(|v| v["s3"]["endpoint"] = "".into())),
            ("s3.region", Box::new(|v| v["s3"]["region"] = 5.into())),
            (
                "s3.bucket",
                Box::new(|v| {
                    v["s3"]
                        .as_object_mut()
                        .unwrap()
                        .remove("bucket")
                        .map(drop)
                        .unwrap()
                }),
            ),
            (
                "s3.accessKeyId",
                Box::new(|v| v["s3"]["accessKeyId"] = "".into()),
            ),
            (
                "s3.secretAccessKey",
                Box::new(|v| v["s3"]["secretAccessKey"] = "".into()),
            ),
            ("s3.useSsl", Box::new(|v| v["s3"]["useSsl"] = "true".into())),
            (
                "encryption.salt",
                Box::new(|v| v["encryption"]["salt"] = "".into()),
            ),
            ("files", Box::new(|v| v["files"] = "x".into())),
            (
                "files.vaultFolder",
                Box::new(|v| v["files"] = serde_json::json!({"vaultFolder": 1})),
            ),
            (
                "audit.enabled",
                Box::new(|v| v["audit"] = serde_json::json!({"enabled": "yes"})),
            ),
            ("initProfile", Box::new(|v| v["initProfile"] = 1.into())),
            ("prefix", Box::new(|v| v["prefix"] = Value::Null)),
            ("sync", Box::new(|v| v["sync"] = 1.into())),
            (
                "sync.gh",
                Box::new(|v| v["sync"] = serde_json::json!({"gh": "o/r"})),
            ),
            (
                "exec",
                Box::new(|v| v["exec"] = serde_json::json!(["PATH"])),
            ),
            (
                "exec.inherit",
                Box::new(|v| v["exec"] = serde_json::json!({"inherit": "PATH"})),
            ),
            (
                "exec.inherit[1]",
                Box::new(|v| v["exec"] = serde_json::json!({"inherit": ["PATH", "A=B"]})),
            ),
            (
                "exec.strip[0]",
                Box::new(|v| v["exec"] = serde_json::json!({"strip": ["*X"]})),
            ),
            (
                "exec.alwaysRedact",
                Box::new(|v| v["exec"] = serde_json::json!({"alwaysRedact": "yes"})),
            ),
        ];
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("env_dev");
        for (field, break_it) in cases {
            let mut value = good.clone();
            break_it(&mut value);
            fs::write(&path, gzip(&value.to_string())).unwrap();
            let err = EnvConfig::load(&path).unwrap_err();
            match &err {
                ConfigError::Invalid { field: found, .. } => assert_eq!(found, field),
                other => panic!("{field}: {other:?}"),
            }
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(!text.contains(SECRET), "{text}");
        }
        // Sync blocks are kept as written, in their order, for the
        // platforms to read.
        let mut value = good.clone();
        value["sync"] = serde_json::json!({"gh": {"repo": "o/r"}, "gcp": {"project": "p"},
            "azure": {"vaultName": "v"}, "vault": {"addr": "a", "mount": "m", "secretPath": "s"}});
        let cfg = EnvConfig::from_json(value.to_string().as_bytes(), &path).unwrap();
        assert_eq!(
            serde_json::to_string(&cfg.sync.unwrap()).unwrap(),
            r#"{"gh":{"repo":"o/r"},"gcp":{"project":"p"},"azure":{"vaultName":"v"},"vault":{"addr":"a","mount":"m","secretPath":"s"}}"#
        );
        // Saving an invalid config is refused too, and writes nothing.
        let mut bad = sample();
        bad.encryption.salt.clear();
        let target = tmp.path().join("new/env_dev");
        assert!(matches!(
            bad.save(&target),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(!target.exists());
    }

    #[test]
    fn exec_name_patterns_are_names_or_prefixes() {
        for good in ["PATH", "_X", "LC_*", "*", "a1_"] {
            assert_eq!(check_name_pattern(good), Ok(()), "{good}");
        }
        for bad in ["", "1A", "A-B", "A=B", "**", "*A", "A*B", "A B", "É"] {
            assert!(check_name_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_and_corrupt_files_say_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path());
        let err = EnvConfig::load_for(&base, "acme_web", "dev").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::NoConfig { .. }));
        assert!(text.starts_with("no config for acme_web/dev at "), "{text}");
        assert!(
            text.contains("run `vsync init dev` or import a .share"),
            "{text}"
        );

        let path = tmp.path().join("env_x");
        fs::write(&path, b"plain text").unwrap();
        assert!(matches!(
            EnvConfig::load(&path),
            Err(ConfigError::Corrupt {
                reason: "not gzip data",
                ..
            })
        ));
        fs::write(&path, gzip("{not json")).unwrap();
        assert!(matches!(
            EnvConfig::load(&path),
            Err(ConfigError::Corrupt {
                reason: "not JSON",
                ..
            })
        ));
    }

    #[test]
    fn secret_never_in_debug() {
        let cfg = sample();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert!(debug.contains("AKIAEXAMPLE123"));
    }

    #[test]
    fn salts_are_24_standard_base64_chars() {
        let salts: Vec<String> = (0..50).map(|_| generate_salt()).collect();
        for salt in &salts {
            assert_eq!(salt.len(), 24);
            assert!(
                salt.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
            );
        }
        assert_ne!(salts[0], salts[1]);
    }

    #[test]
    fn local_store_config_is_upstream_valid() {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let cfg = EnvConfig::local_store(&store, generate_salt()).unwrap();
        assert_eq!(cfg.s3.endpoint, format!("file://{}", store.display()));
        assert_eq!(cfg.local_store_dir(), Some(store.clone()));
        let path = tmp.path().join("env_dev");
        cfg.save(&path).unwrap();
        let loaded = EnvConfig::load(&path).unwrap();
        assert_eq!(loaded.local_store_dir(), Some(store));
        assert!(!loaded.s3.use_ssl);
        assert_eq!(loaded.s3.region, "local");
        assert_eq!(sample().local_store_dir(), None);
        assert!(matches!(
            EnvConfig::local_store(Path::new("rel/dir"), generate_salt()),
            Err(ConfigError::LocalStoreNotAbsolute(_))
        ));
    }
}
