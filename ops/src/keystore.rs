//! `keystore list | export | import` (§5.14): the machine's env configs and
//! keys as a whole, and the VKT1 `.keytree` file that moves them (and the
//! profiles) to another machine.
//!
//! The `.keytree` payload is upstream's: `{"version":1,"exportedAt":…,
//! "entries":[{"repo","env","config","key"}…],"profiles":[{…,"name"}…]}`.
//! Import validates the whole file before writing anything, never replaces
//! a different existing key, config or profile without `--force`, and says
//! per env and profile what it did.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::Value;
use vsync_crypto::{Error as CryptoError, frame};
use vsync_local::config::ConfigError;
use vsync_local::paths::{RESERVED_REPO_NAMES, check_env_name, check_repo_name};
use vsync_local::profile::{self, Profile, ProfileError};
use vsync_local::{ConfigBase, EnvConfig};
use zeroize::Zeroizing;

use crate::share::{chosen_passphrase, json_string};
use crate::{Context, OpsError};

/// The only `.keytree` payload version.
const KEYTREE_VERSION: u64 = 1;
/// Upstream's `MIN_KEY_LEN`.
const MIN_KEY_LEN: usize = 20;

/// One `<base>/<repo>/env_<env>` config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigFile {
    pub(crate) repo: String,
    pub(crate) env: String,
    pub(crate) path: PathBuf,
}

/// True for env names upstream lists: `[a-z0-9._-]+`, case-insensitive.
fn listed_env_name(env: &str) -> bool {
    !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Every env config under the base, sorted by repo then env. The sibling
/// folders (`profiles`, `backups`, `.keystore`), ledgers
/// (`env_<env>.ledger.json`) and atomic-write leftovers are not configs.
pub(crate) fn config_files(base: &ConfigBase) -> Result<Vec<ConfigFile>, OpsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OpsError::Io { path, source }
    };
    let mut found = Vec::new();
    let repos = match std::fs::read_dir(base.dir()) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(err) => return Err(io(base.dir())(err)),
    };
    for repo_entry in repos {
        let repo_entry = repo_entry.map_err(io(base.dir()))?;
        let Ok(repo) = repo_entry.file_name().into_string() else {
            continue;
        };
        if RESERVED_REPO_NAMES
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(&repo))
            || check_repo_name(&repo).is_err()
            || !repo_entry.path().is_dir()
        {
            continue;
        }
        for env_entry in std::fs::read_dir(repo_entry.path()).map_err(io(&repo_entry.path()))? {
            let env_entry = env_entry.map_err(io(&repo_entry.path()))?;
            let Ok(name) = env_entry.file_name().into_string() else {
                continue;
            };
            let Some(env) = name.strip_prefix("env_") else {
                continue;
            };
            if !listed_env_name(env)
                || env.ends_with(".ledger.json")
                || env.contains(".tmp.")
                || !env_entry.path().is_file()
            {
                continue;
            }
            found.push(ConfigFile {
                repo: repo.clone(),
                env: env.to_owned(),
                path: env_entry.path(),
            });
        }
    }
    found.sort_by(|a, b| (&a.repo, &a.env).cmp(&(&b.repo, &b.env)));
    Ok(found)
}

/// One env as `keystore list` shows it.
#[derive(Debug, Clone)]
pub struct KeystoreEntry {
    /// The repo.
    pub repo: String,
    /// The env (as its config file names it, lowercase).
    pub env: String,
    /// The config file.
    pub config_path: PathBuf,
    /// Whether the config parses; the reason when it does not.
    pub config_error: Option<String>,
    /// `Some(true)` key present, `Some(false)` missing, `None` the keystore
    /// could not answer (see `key_error`).
    pub has_key: Option<bool>,
    /// Why the keystore could not answer.
    pub key_error: Option<String>,
}

/// What `keystore list` found.
#[derive(Debug, Clone)]
pub struct KeystoreListing {
    /// The keystore in use (`Keystore::describe`).
    pub keystore: String,
    /// Every env config, by repo then env.
    pub entries: Vec<KeystoreEntry>,
}

/// Lists every env config on this machine and whether its key is there.
pub fn keystore_list(ctx: &Context) -> Result<KeystoreListing, OpsError> {
    let entries = config_files(&ctx.base)?
        .into_iter()
        .map(|file| {
            let config_error = EnvConfig::load(&file.path).err().map(|err| err.to_string());
            let (has_key, key_error) = match ctx.keystore.get(&file.repo, &file.env) {
                Ok(key) => (Some(key.is_some()), None),
                Err(err) => (None, Some(err.to_string())),
            };
            KeystoreEntry {
                repo: file.repo,
                env: file.env,
                config_path: file.path,
                config_error,
                has_key,
                key_error,
            }
        })
        .collect();
    Ok(KeystoreListing {
        keystore: ctx.keystore.describe(),
        entries,
    })
}

/// Which pairs (and whether the profiles) go into a `.keytree`.
#[derive(Debug, Clone, Default)]
pub struct KeytreeFilter {
    /// Every pair and every profile.
    pub all: bool,
    /// Only these repos (any, when empty).
    pub repos: Vec<String>,
    /// Only these envs (any, when empty).
    pub envs: Vec<String>,
    /// Add the profiles.
    pub profiles: bool,
}

impl KeytreeFilter {
    fn admits(&self, repo: &str, env: &str) -> bool {
        self.all
            || ((self.repos.is_empty() || self.repos.iter().any(|r| r == repo))
                && (self.envs.is_empty() || self.envs.iter().any(|e| e.eq_ignore_ascii_case(env))))
    }
}

/// What `keystore export` wrote.
pub struct KeytreeExportReport {
    /// The `.keytree` file (0600).
    pub path: PathBuf,
    /// The generated passphrase, to show once (never stored); `None` when
    /// the user gave one, which is never echoed back.
    pub generated_passphrase: Option<Zeroizing<String>>,
    /// `<repo>/<env>` of every exported pair.
    pub entries: Vec<String>,
    /// Every exported profile.
    pub profiles: Vec<String>,
    /// Pairs left out, with why (unreadable config, no key).
    pub skipped: Vec<(String, String)>,
}

// Hand-written so the passphrase never reaches a `{:?}`.
impl std::fmt::Debug for KeytreeExportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeytreeExportReport")
            .field("path", &self.path)
            .field(
                "generated_passphrase",
                &self.generated_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("entries", &self.entries)
            .field("profiles", &self.profiles)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// The default file name: `<hostname>.keytree` from `$HOSTNAME` / `$HOST`,
/// characters outside `[A-Za-z0-9._-]` replaced by `-`.
fn default_keytree_name() -> String {
    let host = ["HOSTNAME", "HOST"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "vsync".to_owned());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{host}.keytree")
}

/// A profile's JSON with `"name"` appended, as upstream's
/// `{...profile, name}` spreads it.
fn named_profile_json(name: &str, profile: &Profile) -> Zeroizing<String> {
    let json = Zeroizing::new(serde_json::to_string(profile).expect("a profile serialises"));
    let body = json.strip_suffix('}').expect("a profile is a JSON object");
    Zeroizing::new(format!("{body},\"name\":{}}}", json_string(name).as_str()))
}

/// Writes the pairs `filter` admits (and the profiles, with `--profiles`
/// or `--all`) to a `.keytree` sealed with `passphrase`, or a generated one.
pub fn keystore_export(
    ctx: &Context,
    filter: &KeytreeFilter,
    out: Option<&Path>,
    passphrase: Option<Zeroizing<String>>,
) -> Result<KeytreeExportReport, OpsError> {
    if !filter.all && filter.repos.is_empty() && filter.envs.is_empty() {
        return Err(OpsError::Usage(
            "say what to export: --all, or --repo=<name> / --env=<env> (repeatable; --profiles adds the profiles)".into(),
        ));
    }
    let (passphrase, generated) = chosen_passphrase(passphrase)?;
    let mut entries_json = Vec::new();
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for file in config_files(&ctx.base)? {
        if !filter.admits(&file.repo, &file.env) {
            continue;
        }
        let label = format!("{}/{}", file.repo, file.env);
        let config = match EnvConfig::load(&file.path) {
            Ok(config) => config,
            Err(err) => {
                skipped.push((label, format!("unreadable config: {err}")));
                continue;
            }
        };
        let key = match ctx.keystore.get(&file.repo, &file.env) {
            Ok(Some(key)) => key,
            Ok(None) => {
                skipped.push((label, format!("no key in the {}", ctx.keystore.describe())));
                continue;
            }
            Err(err) => {
                skipped.push((label, err.to_string()));
                continue;
            }
        };
        let config_json = config.to_json(&file.path)?;
        let config_json = std::str::from_utf8(&config_json).expect("serde_json writes UTF-8");
        entries_json.push(Zeroizing::new(format!(
            r#"{{"repo":{},"env":{},"config":{config_json},"key":{}}}"#,
            json_string(&file.repo).as_str(),
            json_string(&file.env).as_str(),
            json_string(&key).as_str(),
        )));
        entries.push(label);
    }
    let mut profiles_json = Vec::new();
    let mut profiles = Vec::new();
    if filter.all || filter.profiles {
        for (name, profile) in profile::list(&ctx.base)? {
            profiles_json.push(named_profile_json(&name, &profile));
            profiles.push(name);
        }
    }
    if entries.is_empty() && profiles.is_empty() {
        let why = if skipped.is_empty() {
            "no env config matches".to_owned()
        } else {
            format!(
                "every match was skipped ({})",
                skipped
                    .iter()
                    .map(|(label, reason)| format!("{label}: {reason}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        return Err(OpsError::Usage(format!(
            "nothing to export: {why}; `vsync keystore list` shows what this machine holds"
        )));
    }
    let join = |parts: &[Zeroizing<String>]| {
        Zeroizing::new(
            parts
                .iter()
                .map(|part| part.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    let payload = Zeroizing::new(format!(
        r#"{{"version":{KEYTREE_VERSION},"exportedAt":{},"entries":[{}],"profiles":[{}]}}"#,
        json_string(&vsync_local::time::iso_millis(SystemTime::now())).as_str(),
        join(&entries_json).as_str(),
        join(&profiles_json).as_str(),
    ));
    let sealed = frame::seal_keytree(&passphrase, payload.as_bytes());
    let path = out.map_or_else(|| ctx.cwd.join(default_keytree_name()), Path::to_path_buf);
    vsync_local::fsutil::write_private_atomic(&path, &sealed).map_err(|source| OpsError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(KeytreeExportReport {
        path,
        generated_passphrase: generated.then_some(passphrase),
        entries,
        profiles,
        skipped,
    })
}

#[derive(Deserialize)]
struct KeytreePayload {
    version: u64,
    entries: Vec<KeytreeEntryIn>,
    profiles: Vec<Value>,
}

#[derive(Deserialize)]
struct KeytreeEntryIn {
    repo: String,
    env: String,
    config: Value,
    key: Zeroizing<String>,
}

/// A validated pair, ready to write.
pub(crate) struct Pair {
    pub(crate) repo: String,
    pub(crate) env: String,
    pub(crate) config: EnvConfig,
    pub(crate) key: Zeroizing<String>,
}

/// What import did with one env or profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// It was not on this machine (or only half of it was) and now is.
    Imported,
    /// It differed and `--force` replaced it.
    Replaced,
    /// This machine already held exactly it.
    Unchanged,
    /// It differs from what this machine holds; left alone (why).
    Skipped(String),
}

/// What `keystore import` did.
#[derive(Debug, Clone)]
pub struct KeytreeImportReport {
    /// Per profile name, in file order.
    pub profiles: Vec<(String, ImportOutcome)>,
    /// Per `<repo>/<env>`, in file order.
    pub entries: Vec<(String, ImportOutcome)>,
    /// The keystore the keys went to.
    pub keystore: String,
}

/// Opens and validates a `.keytree`, then restores its profiles and pairs.
pub fn keystore_import(
    ctx: &Context,
    file: &Path,
    passphrase: &str,
    force: bool,
) -> Result<KeytreeImportReport, OpsError> {
    let bytes = std::fs::read(file).map_err(|source| OpsError::Io {
        path: file.to_owned(),
        source,
    })?;
    let json = frame::open_keytree(passphrase.trim(), &bytes).map_err(|err| match err {
        CryptoError::WrongFileKind { .. } => OpsError::Keytree(format!(
            "{} is a .share (one env), not a .keytree; import it with `vsync import <env> {}`",
            file.display(),
            file.display()
        )),
        other => OpsError::Keytree(format!(
            "{}: {other}; check the passphrase (sent separately from the file) and that the file arrived intact",
            file.display()
        )),
    })?;
    let Validated { profiles, pairs } = validate(&json, file)?;

    let mut report = KeytreeImportReport {
        profiles: Vec::new(),
        entries: Vec::new(),
        keystore: ctx.keystore.describe(),
    };
    let incomplete = |report: &KeytreeImportReport, what: String, err: OpsError| {
        let done: Vec<String> = report
            .profiles
            .iter()
            .map(|(name, outcome)| format!("profile {name}: {}", outcome_word(outcome)))
            .chain(
                report
                    .entries
                    .iter()
                    .map(|(label, outcome)| format!("{label}: {}", outcome_word(outcome))),
            )
            .collect();
        OpsError::Incomplete {
            failed: what,
            reason: err.to_string(),
            done: if done.is_empty() {
                "nothing".to_owned()
            } else {
                done.join(", ")
            },
        }
    };
    for (name, profile) in profiles {
        let outcome = import_profile(ctx, &name, &profile, force)
            .map_err(|err| incomplete(&report, format!("profile {name}"), err))?;
        report.profiles.push((name, outcome));
    }
    for pair in pairs {
        let label = format!("{}/{}", pair.repo, pair.env);
        let outcome = import_pair(ctx, &pair, force, false)
            .map_err(|err| incomplete(&report, label.clone(), err))?;
        report.entries.push((label, outcome));
    }
    Ok(report)
}

/// One word for an outcome, for the INCOMPLETE message.
fn outcome_word(outcome: &ImportOutcome) -> &'static str {
    match outcome {
        ImportOutcome::Imported => "imported",
        ImportOutcome::Replaced => "replaced",
        ImportOutcome::Unchanged => "unchanged",
        ImportOutcome::Skipped(_) => "skipped",
    }
}

/// A `.keytree`'s content once every part of it is valid.
struct Validated {
    profiles: Vec<(String, Profile)>,
    pairs: Vec<Pair>,
}

/// Upstream's all-or-nothing validation, plus the path checks every name
/// must pass before it becomes a file name here.
fn validate(json: &[u8], file: &Path) -> Result<Validated, OpsError> {
    let invalid = |problem: String| {
        OpsError::Keytree(format!(
            "{} is not a valid .keytree: {problem}; nothing was imported — ask for a new export",
            file.display()
        ))
    };
    let payload: KeytreePayload = serde_json::from_slice(json).map_err(|_| {
        invalid("its payload is not the expected JSON (version, entries, profiles)".into())
    })?;
    if payload.version != KEYTREE_VERSION {
        return Err(invalid(format!(
            "payload version {} (this vsync reads version {KEYTREE_VERSION})",
            payload.version
        )));
    }
    let mut profiles = Vec::new();
    for (index, value) in payload.profiles.into_iter().enumerate() {
        let Value::Object(mut fields) = value else {
            return Err(invalid(format!("profile #{} is not an object", index + 1)));
        };
        let name = match fields.remove("name") {
            Some(Value::String(name)) => name,
            _ => return Err(invalid(format!("profile #{} has no name", index + 1))),
        };
        profile::check_name(&name).map_err(|err| invalid(err.to_string()))?;
        let bytes = Zeroizing::new(Value::Object(fields).to_string().into_bytes());
        let profile = Profile::from_json(&bytes, file)
            .map_err(|err| invalid(format!("profile {name}: {err}")))?;
        profiles.push((name, profile));
    }
    let mut pairs = Vec::new();
    for (index, entry) in payload.entries.into_iter().enumerate() {
        let label = format!("entry #{} ({}/{})", index + 1, entry.repo, entry.env);
        if entry.repo.is_empty() || entry.env.is_empty() || entry.key.len() < MIN_KEY_LEN {
            return Err(invalid(format!("{label}: repo, env or key is missing")));
        }
        check_repo_name(&entry.repo).map_err(|err| invalid(format!("{label}: {err}")))?;
        check_env_name(&entry.env).map_err(|err| invalid(format!("{label}: {err}")))?;
        let config_bytes = Zeroizing::new(entry.config.to_string().into_bytes());
        let config = EnvConfig::from_json(&config_bytes, file)
            .map_err(|err| invalid(format!("{label}: {err}")))?;
        pairs.push(Pair {
            repo: entry.repo,
            env: entry.env,
            config,
            key: entry.key,
        });
    }
    Ok(Validated { profiles, pairs })
}

fn import_profile(
    ctx: &Context,
    name: &str,
    profile: &Profile,
    force: bool,
) -> Result<ImportOutcome, OpsError> {
    let existing = match profile::get(&ctx.base, name) {
        Ok(existing) => Some(Ok(existing)),
        Err(ProfileError::NotFound { .. }) => None,
        Err(err) => Some(Err(err)),
    };
    let outcome = match existing {
        None => ImportOutcome::Imported,
        Some(Ok(existing)) if existing == *profile => return Ok(ImportOutcome::Unchanged),
        Some(_) if force => ImportOutcome::Replaced,
        Some(Ok(_)) => {
            return Ok(ImportOutcome::Skipped(
                "a different profile of that name exists; --force replaces it".into(),
            ));
        }
        Some(Err(err)) => {
            return Ok(ImportOutcome::Skipped(format!(
                "the existing profile is unreadable ({err}); --force replaces it"
            )));
        }
    };
    profile::add(&ctx.base, name, profile, force)?;
    Ok(outcome)
}

/// Installs one env's key and config unless this machine holds a different
/// one (then `Skipped`, or replaced with `force`). With `keep_local_routing`
/// the incoming config carries no sync routing or exec policy of its own:
/// what this machine saved is kept and not compared.
pub(crate) fn import_pair(
    ctx: &Context,
    pair: &Pair,
    force: bool,
    keep_local_routing: bool,
) -> Result<ImportOutcome, OpsError> {
    let existing_config = match EnvConfig::load_for(&ctx.base, &pair.repo, &pair.env) {
        Ok(config) => Some(Some(config)),
        Err(ConfigError::NoConfig { .. }) => None,
        // Unreadable: present but different from anything we could write.
        Err(_) => Some(None),
    };
    let mut config = pair.config.clone();
    if keep_local_routing {
        let existing = existing_config.as_ref().and_then(|config| config.as_ref());
        config.sync = existing.and_then(|config| config.sync.clone());
        config.exec = existing.and_then(|config| config.exec.clone());
    }
    let existing_key = ctx.keystore.get(&pair.repo, &pair.env)?;
    let key_differs = existing_key.as_ref().is_some_and(|key| **key != *pair.key);
    let config_differs = existing_config
        .as_ref()
        .is_some_and(|existing| existing.as_ref() != Some(&config));
    if key_differs || config_differs {
        if !force {
            let what = match (key_differs, config_differs) {
                (true, true) => "a different key and config",
                (true, false) => "a different key",
                _ => "a different config",
            };
            return Ok(ImportOutcome::Skipped(format!(
                "this machine holds {what} for it; --force replaces them (bundles sealed with the current key become unreadable here)"
            )));
        }
    } else if existing_key.is_some() && existing_config.is_some() {
        return Ok(ImportOutcome::Unchanged);
    }
    // The key first: a config without its key is what `status` flags as
    // broken, a key without config is invisible until the config follows.
    if existing_key.is_none() || key_differs {
        ctx.keystore.set(&pair.repo, &pair.env, &pair.key)?;
    }
    if existing_config.is_none() || config_differs {
        config.save_for(&ctx.base, &pair.repo, &pair.env)?;
    }
    Ok(if key_differs || config_differs {
        ImportOutcome::Replaced
    } else {
        ImportOutcome::Imported
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files_skip_siblings_ledgers_and_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path());
        for path in [
            "acme_web/env_dev",
            "acme_web/env_prod",
            "acme_web/env_dev.ledger.json",
            "acme_web/env_dev.tmp.123.abcdef",
            "acme_web/notes.txt",
            "acme_web/env_we ird",
            "profiles/env_x",
            "backups/env_y",
            ".keystore/env_z",
            "api/env_staging",
        ] {
            let path = tmp.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        std::fs::write(tmp.path().join("defaults"), b"").unwrap();
        let found: Vec<String> = config_files(&base)
            .unwrap()
            .into_iter()
            .map(|f| format!("{}/{}", f.repo, f.env))
            .collect();
        assert_eq!(found, ["acme_web/dev", "acme_web/prod", "api/staging"]);
        assert!(
            config_files(&ConfigBase::at(tmp.path().join("none")))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn filters_are_an_and_of_ors() {
        let filter = KeytreeFilter {
            repos: vec!["a".into(), "b".into()],
            envs: vec!["dev".into()],
            ..KeytreeFilter::default()
        };
        assert!(filter.admits("a", "dev"));
        assert!(filter.admits("b", "dev"));
        assert!(!filter.admits("a", "prod"));
        assert!(!filter.admits("c", "dev"));
        let envs_only = KeytreeFilter {
            envs: vec!["prod".into()],
            ..KeytreeFilter::default()
        };
        assert!(envs_only.admits("anything", "prod"));
        assert!(
            KeytreeFilter {
                all: true,
                ..KeytreeFilter::default()
            }
            .admits("x", "y")
        );
    }

    #[test]
    fn named_profiles_keep_upstreams_shape() {
        let profile = Profile::new(
            "https://s3.example.com",
            "auto",
            "b",
            "AKIAEXAMPLE",
            Zeroizing::new("secret".into()),
            Some("acme"),
        );
        let json = named_profile_json("work", &profile);
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["name"], "work");
        assert_eq!(value["prefix"], "acme/");
        assert!(json.ends_with(r#","name":"work"}"#), "{}", json.as_str());
    }
}
