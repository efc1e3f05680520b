//! Named S3 profiles `<base>/profiles/<name>.json` (upstream v0.13+): plain
//! pretty JSON (2 spaces, trailing newline), mode 0600 in a 0700 directory,
//! written atomically through `<file>.tmp.<pid>.<rand>`. `init` copies a
//! profile into a new env config; `list` shows them with the access key
//! masked.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vsync_crypto::Zeroizing;

use crate::config::{PROVIDER_KEY, S3Config};
use crate::fsutil;
use crate::paths::ConfigBase;

/// The only profile schema version.
pub const PROFILE_VERSION: u32 = 1;

/// Longest profile name.
pub const MAX_NAME_LEN: usize = 64;

/// How a secret access key is shown.
pub const SECRET_MASK: &str = "****";

/// Why a profile could not be read, written or removed. Never carries the
/// secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The name breaks the grammar.
    #[error(
        "profile name {0:?} is invalid; use 1 to 64 characters from letters, digits, `.`, `_` and `-`"
    )]
    InvalidName(String),
    /// A profile of that name exists and overwriting was not asked for.
    #[error(
        "profile {name:?} already exists at {path}; pick another name or remove it first with `vsync profile remove {name}`"
    )]
    Exists {
        /// The name.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// No profile of that name.
    #[error(
        "no profile {name:?} at {path}; see `vsync profile list`, or create it with `vsync profile add {name}`"
    )]
    NotFound {
        /// The name.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file is not a valid profile.
    #[error("profile file {path} is invalid: {problem}; fix it or re-add the profile")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (field name, never value).
        problem: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}; check the profiles directory permissions")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ProfileError + '_ {
    move |source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One profile.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    version: u32,
    /// Endpoint URL.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Bucket prefix for every env made from this profile (ends in `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key; wiped on drop, never printed.
    pub secret_access_key: Zeroizing<String>,
    /// Keys this version does not know, written back unchanged.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key_id", &mask_access_key(&self.access_key_id))
            .field("secret_access_key", &SECRET_MASK)
            .finish_non_exhaustive()
    }
}

/// Adds the trailing `/` upstream's `add` enforces; an empty prefix is none.
fn normalize_prefix(prefix: Option<&str>) -> Option<String> {
    let prefix = prefix?.trim();
    if prefix.is_empty() {
        None
    } else if prefix.ends_with('/') {
        Some(prefix.to_owned())
    } else {
        Some(format!("{prefix}/"))
    }
}

impl Profile {
    /// A profile; `prefix` gets a trailing `/` when it lacks one.
    pub fn new(
        endpoint: &str,
        region: &str,
        bucket: &str,
        access_key_id: &str,
        secret_access_key: Zeroizing<String>,
        prefix: Option<&str>,
    ) -> Self {
        Self {
            version: PROFILE_VERSION,
            endpoint: endpoint.to_owned(),
            region: region.to_owned(),
            bucket: bucket.to_owned(),
            prefix: normalize_prefix(prefix),
            access_key_id: access_key_id.to_owned(),
            secret_access_key,
            extra: Map::new(),
        }
    }

    /// The forced provider preset (key [`PROVIDER_KEY`]), copied into the
    /// config of every env made from this profile.
    pub fn provider(&self) -> Option<&str> {
        self.extra.get(PROVIDER_KEY).and_then(Value::as_str)
    }

    /// Forces a provider preset for envs made from this profile.
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

    /// `useSsl` as `init` derives it: false only for `http://` endpoints.
    pub fn use_ssl(&self) -> bool {
        !self.endpoint.starts_with("http://")
    }

    /// The `s3` block of an env config made from this profile.
    pub fn s3_config(&self) -> S3Config {
        let mut s3 = S3Config {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            use_ssl: self.use_ssl(),
            extra: Map::new(),
        };
        s3.set_provider(self.provider());
        s3
    }

    /// The env prefix `init` derives: `<profile prefix><env>/`, or `None`
    /// when the profile has no prefix (then `<repo>/<env>/` is the default).
    pub fn env_prefix(&self, env: &str) -> Option<String> {
        self.prefix.as_ref().map(|prefix| format!("{prefix}{env}/"))
    }

    /// `JSON.stringify(profile, null, 2) + "\n"`.
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(serde_json::to_string_pretty(self).expect("serialises"));
        text.push('\n');
        text
    }

    /// Parses and validates profile JSON; `path` names it in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, ProfileError> {
        let invalid = |problem: String| ProfileError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        let value: Value =
            serde_json::from_slice(bytes).map_err(|_| invalid("not JSON".to_owned()))?;
        let root = value
            .as_object()
            .ok_or_else(|| invalid("not a JSON object".to_owned()))?;
        if root.get("version").and_then(Value::as_u64) != Some(u64::from(PROFILE_VERSION)) {
            return Err(invalid("`version` must be 1".to_owned()));
        }
        for key in [
            "endpoint",
            "region",
            "bucket",
            "accessKeyId",
            "secretAccessKey",
        ] {
            if root
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(invalid(format!("`{key}` must be a non-empty string")));
            }
        }
        if root.get("prefix").is_some_and(|prefix| !prefix.is_string()) {
            return Err(invalid("`prefix` must be a string".to_owned()));
        }
        serde_json::from_value(value).map_err(|_| invalid("fields of the wrong type".to_owned()))
    }
}

/// Checks the name grammar `[A-Za-z0-9._-]+`, at most 64 characters (and not
/// `.`/`..`, which would not name a file).
pub fn check_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ProfileError::InvalidName(name.to_owned()))
    }
}

/// `<base>/profiles/<name>.json`.
pub fn profile_path(base: &ConfigBase, name: &str) -> Result<PathBuf, ProfileError> {
    check_name(name)?;
    Ok(base.profiles_dir().join(format!("{name}.json")))
}

/// Saves `profile` as `name`; an existing profile is replaced only with
/// `force`. The prefix gets its trailing `/`. Returns the file written.
pub fn add(
    base: &ConfigBase,
    name: &str,
    profile: &Profile,
    force: bool,
) -> Result<PathBuf, ProfileError> {
    let path = profile_path(base, name)?;
    if !force && fs::symlink_metadata(&path).is_ok() {
        return Err(ProfileError::Exists {
            name: name.to_owned(),
            path,
        });
    }
    let mut profile = profile.clone();
    profile.prefix = normalize_prefix(profile.prefix.as_deref());
    let json = profile.to_json();
    fsutil::write_private_atomic_in_private_dir(&path, json.as_bytes()).map_err(io_at(&path))?;
    Ok(path)
}

/// Reads the profile `name`.
pub fn get(base: &ConfigBase, name: &str) -> Result<Profile, ProfileError> {
    let path = profile_path(base, name)?;
    let bytes = match fs::read(&path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(ProfileError::NotFound {
                name: name.to_owned(),
                path,
            });
        }
        Err(err) => return Err(io_at(&path)(err)),
    };
    Profile::from_json(&bytes, &path)
}

/// Every valid profile, sorted by name; unreadable or invalid files are
/// skipped silently, as upstream does. No profiles directory is no profiles.
pub fn list(base: &ConfigBase) -> Result<Vec<(String, Profile)>, ProfileError> {
    let dir = base.profiles_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(io_at(&dir)(err)),
    };
    let mut profiles = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if check_name(name).is_err() {
            continue;
        }
        if let Ok(profile) = get(base, name) {
            profiles.push((name.to_owned(), profile));
        }
    }
    profiles.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(profiles)
}

/// Deletes the profile `name`. Env configs made from it keep working (they
/// hold a copy).
pub fn remove(base: &ConfigBase, name: &str) -> Result<(), ProfileError> {
    let path = profile_path(base, name)?;
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err(ProfileError::NotFound {
            name: name.to_owned(),
            path,
        }),
        Err(err) => Err(io_at(&path)(err)),
    }
}

/// Upstream's one-time migration of the legacy (v0.3–v0.12) `defaults`
/// file, run on every CLI start: when `<base>/defaults` exists and
/// `<base>/profiles/` does not, rename it to `defaults.bak` (mode kept) and
/// create `profiles/` (0700). Returns the notice to print once, if it ran.
pub fn migrate_legacy_defaults(base: &ConfigBase) -> Result<Option<String>, ProfileError> {
    let defaults = base.legacy_defaults_path();
    let profiles = base.profiles_dir();
    if !defaults.is_file() || fs::symlink_metadata(&profiles).is_ok() {
        return Ok(None);
    }
    let backup = defaults.with_file_name("defaults.bak");
    fs::rename(&defaults, &backup).map_err(io_at(&defaults))?;
    fsutil::create_private_dir_all(&profiles).map_err(io_at(&profiles))?;
    Ok(Some(format!(
        "vsync now uses named profiles: the old defaults file was moved to {}; create a profile with `vsync profile add <name>`",
        backup.display()
    )))
}

/// Upstream's access-key mask: up to 4 characters are all `*`; 5 to 8 show
/// stars then the last 4; longer keys show the first 4, `len - 8` stars and
/// the last 4.
pub fn mask_access_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let len = chars.len();
    let tail: String = chars[len.saturating_sub(4)..].iter().collect();
    match len {
        0..=4 => "*".repeat(len),
        5..=8 => format!("{}{tail}", "*".repeat(len - 4)),
        _ => {
            let head: String = chars[..4].iter().collect();
            format!("{head}{}{tail}", "*".repeat((len - 8).max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::mode;

    const SECRET: &str = "sEcReTsEcReTsEcReT/0123456789";

    fn sample(prefix: Option<&str>) -> Profile {
        Profile::new(
            "https://abc.r2.cloudflarestorage.com",
            "auto",
            "team",
            "AKIAIOSFODNN7EXAMPLE",
            Zeroizing::new(SECRET.to_owned()),
            prefix,
        )
    }

    #[test]
    fn a_forced_provider_survives_the_file_and_reaches_env_configs() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path());
        let mut profile = sample(None);
        assert_eq!(profile.s3_config().provider(), None);
        profile.set_provider(Some("hetzner"));
        add(&base, "rgw", &profile, false).unwrap();
        let loaded = get(&base, "rgw").unwrap();
        assert_eq!(loaded.provider(), Some("hetzner"));
        let mut s3 = loaded.s3_config();
        assert_eq!(s3.provider(), Some("hetzner"));
        s3.set_provider(None);
        assert_eq!(s3.provider(), None);
        let text = fs::read_to_string(profile_path(&base, "rgw").unwrap()).unwrap();
        assert!(text.contains(r#""provider": "hetzner""#), "{text}");
    }

    #[test]
    fn json_is_upstream_pretty_with_newline() {
        assert_eq!(
            *sample(Some("acme")).to_json(),
            format!(
                "{{\n  \"version\": 1,\n  \"endpoint\": \"https://abc.r2.cloudflarestorage.com\",\n  \"region\": \"auto\",\n  \"bucket\": \"team\",\n  \"prefix\": \"acme/\",\n  \"accessKeyId\": \"AKIAIOSFODNN7EXAMPLE\",\n  \"secretAccessKey\": \"{SECRET}\"\n}}\n"
            )
        );
        assert!(!sample(None).to_json().contains("prefix"));
    }

    #[test]
    fn add_get_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path().join("vsync"));
        assert!(list(&base).unwrap().is_empty());
        let mut profile = sample(None);
        profile.prefix = Some("team".to_owned());
        let path = add(&base, "work", &profile, false).unwrap();
        assert_eq!(path, tmp.path().join("vsync/profiles/work.json"));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&base.profiles_dir()), 0o700);
        let loaded = get(&base, "work").unwrap();
        assert_eq!(loaded.prefix.as_deref(), Some("team/"));
        assert_eq!(loaded.env_prefix("dev").as_deref(), Some("team/dev/"));

        let err = add(&base, "work", &sample(None), false).unwrap_err();
        assert!(matches!(err, ProfileError::Exists { .. }), "{err}");
        add(&base, "work", &sample(None), true).unwrap();
        assert_eq!(get(&base, "work").unwrap().prefix, None);

        add(&base, "a.home-2", &sample(None), false).unwrap();
        // Invalid and foreign files are skipped.
        fs::write(base.profiles_dir().join("broken.json"), "{").unwrap();
        fs::write(base.profiles_dir().join("notes.txt"), "x").unwrap();
        fs::write(
            base.profiles_dir().join("empty.json"),
            r#"{"version":1,"endpoint":"","region":"r","bucket":"b","accessKeyId":"a","secretAccessKey":"s"}"#,
        )
        .unwrap();
        let names: Vec<String> = list(&base).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a.home-2", "work"]);
        assert!(matches!(
            get(&base, "broken"),
            Err(ProfileError::Invalid { .. })
        ));

        remove(&base, "work").unwrap();
        let err = remove(&base, "work").unwrap_err();
        assert!(matches!(err, ProfileError::NotFound { .. }));
        assert!(err.to_string().contains("vsync profile add work"), "{err}");
        assert!(matches!(
            get(&base, "work"),
            Err(ProfileError::NotFound { .. })
        ));
    }

    #[test]
    fn legacy_defaults_migrate_once() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path());
        assert_eq!(migrate_legacy_defaults(&base).unwrap(), None);
        fs::write(tmp.path().join("defaults"), b"gz").unwrap();
        let notice = migrate_legacy_defaults(&base).unwrap().unwrap();
        assert!(notice.contains("defaults.bak"), "{notice}");
        assert!(!tmp.path().join("defaults").exists());
        assert_eq!(fs::read(tmp.path().join("defaults.bak")).unwrap(), b"gz");
        assert_eq!(mode(&base.profiles_dir()), 0o700);
        fs::write(tmp.path().join("defaults"), b"again").unwrap();
        assert_eq!(migrate_legacy_defaults(&base).unwrap(), None);
        assert!(tmp.path().join("defaults").exists());
    }

    #[test]
    fn name_grammar() {
        for good in ["a", "A-b_c.d", &"x".repeat(64)] {
            check_name(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(
                matches!(check_name(bad), Err(ProfileError::InvalidName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn masks_follow_upstream_rules() {
        assert_eq!(mask_access_key(""), "");
        assert_eq!(mask_access_key("abc"), "***");
        assert_eq!(mask_access_key("abcd"), "****");
        assert_eq!(mask_access_key("abcde"), "*bcde");
        assert_eq!(mask_access_key("abcdefgh"), "****efgh");
        assert_eq!(mask_access_key("abcdefghi"), "abcd*fghi");
        assert_eq!(
            mask_access_key("AKIAIOSFODNN7EXAMPLE"),
            "AKIA************MPLE"
        );
    }

    #[test]
    fn use_ssl_and_s3_block() {
        let mut profile = sample(None);
        assert!(profile.use_ssl());
        let s3 = profile.s3_config();
        assert_eq!(s3.bucket, "team");
        assert_eq!(s3.secret_access_key.as_str(), SECRET);
        assert!(s3.use_ssl);
        profile.endpoint = "http://127.0.0.1:9000".to_owned();
        assert!(!profile.s3_config().use_ssl);
        profile.endpoint = "minio.local:9000".to_owned();
        assert!(profile.use_ssl());
    }

    #[test]
    fn secret_never_in_debug_or_errors() {
        let profile = sample(None);
        let debug = format!("{profile:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!debug.contains("AKIAIOSFODNN7EXAMPLE"), "{debug}");
        let err = Profile::from_json(
            format!(r#"{{"version":1,"endpoint":"e","region":"r","bucket":"","accessKeyId":"a","secretAccessKey":"{SECRET}"}}"#).as_bytes(),
            Path::new("p.json"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("`bucket`"), "{err}");
        assert!(!err.to_string().contains(SECRET));
        assert!(!format!("{err:?}").contains(SECRET));
    }
}
