//! The platform registry: everything vsync knows about each secret platform,
//! one module per platform, one line per platform in [`REGISTRY`].
//!
//! A platform module owns its names ([`Platform::name`], the short name
//! that also keys its saved routing, aliases), its routing settings (one
//! serde struct, read from the env config's `sync.<short>` block with
//! upstream's field names, from CLI flags and from `--set field=value`), its
//! credential discovery (the variables the platform's own tooling reads)
//! and the builder of its [`Sink`]. `vsync-ops` and the CLI iterate the
//! registry and name no platform; a platform compiled out by its cargo
//! feature is simply absent from the list.
//!
//! Routing is handed around as a JSON object ([`Routing`]): the saved block
//! merged with this run's settings. Only the platform turns it into its
//! typed struct, refusing fields it does not have with the valid ones named.

#![forbid(unsafe_code)]

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{Sink, SinkError};
use vsync_engine::source::Source;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
#[cfg(feature = "dotenv")]
pub mod dotenv;
#[cfg(feature = "gcp")]
pub mod gcp;
#[cfg(feature = "github")]
pub mod github;
#[cfg(feature = "onepassword")]
pub mod onepassword;
#[cfg(feature = "vault")]
pub mod vault;

/// Every platform this build holds, in the order help text lists them.
pub static REGISTRY: &[&Platform] = &[
    #[cfg(feature = "github")]
    &github::PLATFORM,
    #[cfg(feature = "gcp")]
    &gcp::PLATFORM,
    #[cfg(feature = "aws")]
    &aws::PLATFORM,
    #[cfg(feature = "azure")]
    &azure::PLATFORM,
    #[cfg(feature = "vault")]
    &vault::PLATFORM,
    #[cfg(feature = "onepassword")]
    &onepassword::PLATFORM,
    #[cfg(feature = "dotenv")]
    &dotenv::PLATFORM,
];

/// One secret platform: what it is called, and what syncing to it or
/// importing from it takes (a platform compiled without one side has
/// `None` there, and is absent from that command's help).
#[derive(Debug)]
pub struct Platform {
    /// The long name (`github-actions`), used in reports.
    pub name: &'static str,
    /// Upstream's short name (`gh`): the target on the command line and the
    /// key of the saved routing block (`sync.gh`).
    pub short: &'static str,
    /// What it is, for help text.
    pub about: &'static str,
    /// Syncing to it (`vsync sync`).
    pub sink: Option<&'static SinkSide>,
    /// Importing from it (`vsync import --from`).
    pub source: Option<&'static SourceSide>,
}

/// What syncing to a platform takes.
#[derive(Debug)]
pub struct SinkSide {
    /// Every setting its routing struct has.
    pub settings: &'static [Setting],
    /// The variables its credentials come from, for help text.
    pub credentials: &'static str,
    /// Checks a routing object against the platform's struct.
    pub check: fn(&Routing) -> Result<(), PlatformError>,
    /// Builds its sink from the routing and the environment's credentials.
    pub build: fn(&SinkRequest<'_>) -> Result<Box<dyn Sink>, PlatformError>,
    /// Where `build` would take the credentials from (`vsync doctor`),
    /// decided by the same code, without sending anything and without
    /// naming a value; refused as `build` refuses when none are found.
    pub credential_source: fn(&SinkRequest<'_>) -> Result<CredentialSource, PlatformError>,
}

/// Where a platform's credentials would come from, in words; never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Found here: a variable, a file, a CLI's login (`GITHUB_TOKEN`,
    /// ``~/.vault-token (`vault login`)``, ``the gh CLI's login (`gh auth
    /// token`)``). Whether the platform accepts them is another matter.
    Found(String),
    /// Left to the platform's ambient chain (an instance or pod identity, a
    /// metadata server): what would be tried; only a real call can tell
    /// whether anything answers.
    Ambient(String),
}

/// What importing from a platform takes. Its settings are given with
/// `--set field=value` (in `vsync.toml`, as a table), never saved in the
/// env config: upstream's config has no place for them.
#[derive(Debug)]
pub struct SourceSide {
    /// tsafe's commands that import from this platform (`kv-pull`), kept
    /// as `vsync` commands meaning `vsync import <env> --from <short>`.
    pub aliases: &'static [&'static str],
    /// Every setting its source struct has.
    pub settings: &'static [SourceSetting],
    /// The variables its credentials come from, for help text.
    pub credentials: &'static str,
    /// Builds its source from the settings and the environment.
    pub build: fn(&SourceRequest<'_>) -> Result<Box<dyn Source>, PlatformError>,
}

/// The platform a tsafe-style import command (`kv-pull`) imports from.
pub fn source_alias(command: &str) -> Option<&'static Platform> {
    REGISTRY.iter().copied().find(|platform| {
        platform
            .source
            .is_some_and(|source| source.aliases.contains(&command))
    })
}

/// One field of a platform's source struct.
#[derive(Debug)]
pub struct SourceSetting {
    /// The field's name (`--set <field>=…`).
    pub field: &'static str,
    /// Text or switch.
    pub kind: SettingKind,
    /// Help text.
    pub help: &'static str,
}

/// One field of a platform's routing struct.
#[derive(Debug)]
pub struct Setting {
    /// The field's name in the struct, the saved block and `--set`
    /// (upstream's spelling for saved fields: `secretPrefix`).
    pub field: &'static str,
    /// The upstream-style flag that sets it (`aws-secret-prefix` for
    /// `--aws-secret-prefix`).
    pub flag: &'static str,
    /// Whether a given value is saved into `sync.<short>` for next time.
    pub saved: Saved,
    /// The value the platform uses when none is given. A saved setting's
    /// default is written when its block is first written, as upstream
    /// requires (Vault's mount `secret`).
    pub default: Option<&'static str>,
    /// Text or switch.
    pub kind: SettingKind,
    /// Help text.
    pub help: &'static str,
}

/// Whether and how a setting is saved in the env config's `sync.<short>`
/// block (upstream's routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// This run only.
    No,
    /// Saved when given; the block may lack it.
    Optional,
    /// Saved; upstream refuses a block without it, so a block is only
    /// written once every required field has a value.
    Required,
}

/// How a setting takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// `--flag=value`, `--set field=value`.
    Text,
    /// `--flag` alone, `--set field=true|false`.
    Switch,
}

/// A routing object: the saved `sync.<short>` block merged with this run's
/// settings.
pub type Routing = Map<String, Value>;

/// Where credentials are looked up: the process environment in the CLI, a
/// map in tests. Empty values count as unset.
pub type Environment<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What a platform needs to build its sink.
pub struct SinkRequest<'a> {
    /// The vsync env being synced (GitHub environments are named after it).
    pub env: &'a str,
    /// Saved routing merged with this run's settings.
    pub routing: &'a Routing,
    /// The environment credentials are discovered in.
    pub environment: Environment<'a>,
}

/// What a platform needs to build its source.
pub struct SourceRequest<'a> {
    /// The settings given (`--set`), checked against the source's fields.
    pub settings: &'a Routing,
    /// The environment credentials are discovered in.
    pub environment: Environment<'a>,
    /// Where another env of this repo keeps its vault folder (dotenv's env
    /// → env promotion).
    pub vault_folder_of: &'a dyn Fn(&str) -> Result<std::path::PathBuf, PlatformError>,
}

/// Looking credentials up in the request's environment.
pub trait Credentials {
    /// The environment credentials are discovered in.
    fn environment(&self) -> Environment<'_>;

    /// A variable of the environment, `None` when unset or empty.
    fn var(&self, name: &str) -> Option<String> {
        (self.environment())(name).filter(|value| !value.is_empty())
    }

    /// A secret variable, zeroized when dropped.
    fn secret(&self, name: &str) -> Option<Zeroizing<String>> {
        self.var(name).map(Zeroizing::new)
    }
}

impl Credentials for SinkRequest<'_> {
    fn environment(&self) -> Environment<'_> {
        self.environment
    }
}

impl Credentials for SourceRequest<'_> {
    fn environment(&self) -> Environment<'_> {
        self.environment
    }
}

/// Why a platform cannot be used as asked. Messages name what to fix and
/// never a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// No platform of that name in this build.
    #[error("unknown {role} {name:?}; use one of {valid}")]
    UnknownPlatform {
        /// `sync target` or `import source`.
        role: &'static str,
        /// What was asked for.
        name: String,
        /// The platforms this build holds.
        valid: String,
    },
    /// A setting the platform does not have.
    #[error("{platform} has no setting {field:?}; its settings are {valid}")]
    UnknownSetting {
        /// The platform's long name.
        platform: &'static str,
        /// What was given.
        field: String,
        /// Its settings.
        valid: String,
    },
    /// A flag of another platform.
    #[error("--{flag} is a setting of {owner}, not of {platform}")]
    OtherPlatformsFlag {
        /// The flag given.
        flag: &'static str,
        /// The platform it belongs to.
        owner: &'static str,
        /// The platform being synced.
        platform: &'static str,
    },
    /// The routing (saved or given) does not fit the platform's struct: a
    /// field of the wrong type, or one written by a newer vsync.
    #[error(
        "sync.{short} routing: {detail}; fix or remove it in the env config (`vsync sync` flags rewrite it)"
    )]
    InvalidRouting {
        /// The platform's short name.
        short: &'static str,
        /// serde's account, naming the field and the valid ones.
        detail: String,
    },
    /// Routing the sink needs is missing.
    #[error("no {what} to sync to: pass {flag} (it is saved in the env config for next time)")]
    MissingRouting {
        /// What is missing.
        what: &'static str,
        /// The flags that give it.
        flag: &'static str,
    },
    /// Credentials or endpoints that cannot work.
    #[error("{0}")]
    Setup(String),
    /// A file the settings name could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl From<SinkError> for PlatformError {
    fn from(error: SinkError) -> Self {
        PlatformError::Setup(error.to_string())
    }
}

/// The platform named `name` (short or long) that can be synced to.
pub fn find_sink(name: &str) -> Result<(&'static Platform, &'static SinkSide), PlatformError> {
    find(name, "sync target", |platform| platform.sink)
}

/// The platform named `name` (short or long) that can be imported from.
pub fn find_source(name: &str) -> Result<(&'static Platform, &'static SourceSide), PlatformError> {
    find(name, "import source", |platform| platform.source)
}

fn find<Side>(
    name: &str,
    role: &'static str,
    side: impl Fn(&'static Platform) -> Option<&'static Side>,
) -> Result<(&'static Platform, &'static Side), PlatformError> {
    REGISTRY
        .iter()
        .copied()
        .filter_map(|platform| side(platform).map(|side| (platform, side)))
        .find(|(platform, _)| platform.short == name || platform.name == name)
        .ok_or_else(|| PlatformError::UnknownPlatform {
            role,
            name: name.to_owned(),
            valid: REGISTRY
                .iter()
                .filter(|platform| side(platform).is_some())
                .map(|platform| format!("{} ({})", platform.short, platform.name))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The platform and setting a flag (`gh-repo`) belongs to.
pub fn flag_owner(flag: &str) -> Option<(&'static Platform, &'static Setting)> {
    REGISTRY.iter().find_map(|platform| {
        platform
            .sink_settings()
            .iter()
            .find(|setting| setting.flag == flag)
            .map(|setting| (*platform, setting))
    })
}

impl Platform {
    /// The settings of its sink's routing (none without a sink).
    pub fn sink_settings(&self) -> &'static [Setting] {
        self.sink.map_or(&[], |sink| sink.settings)
    }

    /// The setting whose field is `field`, or an error naming the valid ones.
    pub fn setting(&'static self, field: &str) -> Result<&'static Setting, PlatformError> {
        self.sink_settings()
            .iter()
            .find(|setting| setting.field == field)
            .ok_or_else(|| PlatformError::UnknownSetting {
                platform: self.name,
                field: field.to_owned(),
                valid: self.field_names(),
            })
    }
}

impl Platform {
    /// This run's settings as a routing object: upstream-style flags
    /// (`("gh-repo", "acme/api")`, a switch's value being `true`) and
    /// generic `field=value` pairs. A flag of another platform, a field
    /// this one does not have or a malformed value is refused.
    pub fn given(
        &'static self,
        flags: &[(String, String)],
        sets: &[String],
    ) -> Result<Routing, PlatformError> {
        let mut given = Routing::new();
        for (flag, text) in flags {
            let (owner, setting) =
                flag_owner(flag).ok_or_else(|| PlatformError::UnknownSetting {
                    platform: self.name,
                    field: flag.clone(),
                    valid: self.field_names(),
                })?;
            if !std::ptr::eq(owner, self) {
                return Err(PlatformError::OtherPlatformsFlag {
                    flag: setting.flag,
                    owner: owner.name,
                    platform: self.name,
                });
            }
            given.insert(setting.field.into(), setting.value(text)?);
        }
        for pair in sets {
            let (field, text) = pair.split_once('=').ok_or_else(|| {
                PlatformError::Setup(format!(
                    "--set takes field=value, got {pair:?}; the fields of {} are {}",
                    self.name,
                    self.field_names()
                ))
            })?;
            let setting = self.setting(field)?;
            given.insert(setting.field.into(), setting.value(text)?);
        }
        Ok(given)
    }

    /// The routing this run uses: the saved `sync.<short>` block with the
    /// given settings over it, checked against the platform's struct.
    pub fn routing(
        &self,
        saved: Option<&Value>,
        given: &Routing,
    ) -> Result<Routing, PlatformError> {
        let mut routing = match saved {
            None => Routing::new(),
            Some(Value::Object(block)) => block.clone(),
            Some(_) => {
                return Err(PlatformError::InvalidRouting {
                    short: self.short,
                    detail: "must be an object".into(),
                });
            }
        };
        routing.extend(
            given
                .iter()
                .map(|(field, value)| (field.clone(), value.clone())),
        );
        if let Some(sink) = self.sink {
            (sink.check)(&routing)?;
        }
        Ok(routing)
    }

    /// The `sync.<short>` block to save after this run, or `None` when it
    /// stays as it is: the saved block with the given saved settings over
    /// it. A new block starts from the saved settings' defaults and is only
    /// written once every field upstream requires has a value.
    pub fn remember(&self, saved: Option<&Value>, given: &Routing) -> Option<Value> {
        let mut block = match saved {
            Some(Value::Object(block)) => block.clone(),
            Some(_) => return None,
            None => Routing::new(),
        };
        // In the settings' order, so a new block reads as upstream writes it.
        for setting in self.sink_settings().iter().filter(|s| s.saved != Saved::No) {
            match (given.get(setting.field), setting.default) {
                (Some(value), _) => {
                    block.insert(setting.field.into(), value.clone());
                }
                (None, Some(default)) if saved.is_none() => {
                    block.insert(setting.field.into(), default.into());
                }
                (None, _) => {}
            }
        }
        let complete = self
            .sink_settings()
            .iter()
            .filter(|setting| setting.saved == Saved::Required)
            .all(|setting| block.contains_key(setting.field));
        let block = Value::Object(block);
        (complete && saved != Some(&block)).then_some(block)
    }

    fn field_names(&self) -> String {
        self.sink_settings()
            .iter()
            .map(|setting| setting.field)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The source settings given as `field=value` pairs (`--set`), each
    /// checked against the source's fields: an unknown field is refused
    /// with the valid ones named.
    pub fn source_settings(&self, sets: &[String]) -> Result<Routing, PlatformError> {
        let settings = self.source.map_or(&[][..], |source| source.settings);
        let valid = || {
            settings
                .iter()
                .map(|setting| setting.field)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut given = Routing::new();
        for pair in sets {
            let (field, text) = pair.split_once('=').ok_or_else(|| {
                PlatformError::Setup(format!(
                    "--set takes field=value, got {pair:?}; the fields of {} are {}",
                    self.name,
                    valid()
                ))
            })?;
            let setting = settings
                .iter()
                .find(|setting| setting.field == field)
                .ok_or_else(|| PlatformError::UnknownSetting {
                    platform: self.name,
                    field: field.to_owned(),
                    valid: valid(),
                })?;
            given.insert(field.into(), setting.kind.value(field, text)?);
        }
        Ok(given)
    }
}

impl Setting {
    /// The JSON value a textual value gives this setting (`true`/`false`
    /// for a switch).
    pub fn value(&self, text: &str) -> Result<Value, PlatformError> {
        self.kind.value(self.field, text)
    }
}

impl SettingKind {
    /// The JSON value a textual value gives a setting of this kind.
    fn value(self, field: &str, text: &str) -> Result<Value, PlatformError> {
        match self {
            SettingKind::Text => Ok(Value::String(text.to_owned())),
            SettingKind::Switch => match text {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(PlatformError::Setup(format!(
                    "{field} takes true or false, got {text:?}"
                ))),
            },
        }
    }
}

/// Reads a routing object into a platform's struct. The structs deny
/// unknown fields, so serde's message names the field and the valid ones.
pub fn parse_routing<T: DeserializeOwned>(
    short: &'static str,
    routing: &Routing,
) -> Result<T, PlatformError> {
    serde_json::from_value(Value::Object(routing.clone())).map_err(|error| {
        PlatformError::InvalidRouting {
            short,
            detail: error.to_string(),
        }
    })
}

/// A token read from a file, a pipe or a CLI's output, without the
/// surrounding whitespace; `None` when nothing is left.
pub fn trimmed_token(raw: &str) -> Option<Zeroizing<String>> {
    let token = raw.trim();
    (!token.is_empty()).then(|| Zeroizing::new(token.to_owned()))
}

/// Reads a token from `path` (`-`: standard input), for settings such as
/// GitHub's `tokenFile`: a token on a command line would land in shell
/// history and `ps`, a file or a pipe does not.
pub fn read_token_file(path: &str) -> Result<Zeroizing<String>, PlatformError> {
    use std::io::Read;

    // Room up front, so reading never reallocates and leaves a copy.
    let mut raw = Zeroizing::new(String::with_capacity(16 * 1024));
    let read = if path == "-" {
        std::io::stdin().read_to_string(&mut raw).map(drop)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut raw).map(drop))
    };
    read.map_err(|source| PlatformError::Io {
        path: path.into(),
        source,
    })?;
    trimmed_token(&raw)
        .ok_or_else(|| PlatformError::Setup(format!("the token file {path} is empty")))
}

/// What the platform modules' tests share.
#[cfg(test)]
mod test_support {
    /// What `side` says of its credentials' source with no saved routing,
    /// in an environment holding `vars` and nothing else.
    pub fn credential_source_in(
        side: &super::SinkSide,
        vars: &[(&str, &str)],
    ) -> Result<super::CredentialSource, super::PlatformError> {
        let environment = environment(vars);
        (side.credential_source)(&super::SinkRequest {
            env: "dev",
            routing: &super::Routing::new(),
            environment: &environment,
        })
    }

    /// An environment holding `vars` and nothing else.
    pub fn environment<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    /// The text of a found source, checked to show none of `secrets`.
    pub fn found(
        source: Result<super::CredentialSource, super::PlatformError>,
        secrets: &[&str],
    ) -> String {
        match source {
            Ok(super::CredentialSource::Found(text)) => without(text, secrets),
            other => panic!("expected a found source, got {other:?}"),
        }
    }

    /// The text of an ambient source, checked to show none of `secrets`.
    pub fn ambient(
        source: Result<super::CredentialSource, super::PlatformError>,
        secrets: &[&str],
    ) -> String {
        match source {
            Ok(super::CredentialSource::Ambient(text)) => without(text, secrets),
            other => panic!("expected an ambient source, got {other:?}"),
        }
    }

    fn without(text: String, secrets: &[&str]) -> String {
        for secret in secrets {
            assert!(!text.contains(secret), "{text} shows {secret:?}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_is_found_by_both_names_and_settings_are_unique() {
        let mut flags = std::collections::HashSet::new();
        for platform in REGISTRY {
            for name in [platform.short, platform.name] {
                if platform.sink.is_some() {
                    assert!(std::ptr::eq(find_sink(name).unwrap().0, *platform));
                }
                if platform.source.is_some() {
                    assert!(std::ptr::eq(find_source(name).unwrap().0, *platform));
                }
            }
            for setting in platform.sink_settings() {
                assert!(flags.insert(setting.flag), "--{} twice", setting.flag);
                assert!(std::ptr::eq(flag_owner(setting.flag).unwrap().1, setting));
            }
        }
        let error = find_sink("github").unwrap_err().to_string();
        assert!(error.contains("unknown sync target \"github\""), "{error}");
        for platform in REGISTRY {
            assert_eq!(
                error.contains(&format!("{} (", platform.short)),
                platform.sink.is_some(),
                "{error}"
            );
        }
        let error = find_source("github").unwrap_err().to_string();
        assert!(error.contains("unknown import source"), "{error}");
    }

    #[test]
    fn an_unknown_setting_names_the_valid_ones() {
        for platform in REGISTRY {
            let error = platform.setting("colour").unwrap_err().to_string();
            assert!(error.contains("\"colour\""), "{error}");
            for setting in platform.sink_settings() {
                assert!(error.contains(setting.field), "{error}");
            }
        }
    }

    #[test]
    fn every_settings_table_matches_its_routing_struct() {
        // A field listed in the table but missing from the struct (or the
        // other way round) would make `--set` accept what `check` refuses.
        for platform in REGISTRY {
            let Some(sink) = platform.sink else { continue };
            let mut routing = Routing::new();
            for setting in platform.sink_settings() {
                let value = match setting.kind {
                    SettingKind::Text => setting.default.unwrap_or("x").into(),
                    SettingKind::Switch => Value::Bool(true),
                };
                routing.insert(setting.field.into(), value);
            }
            if let Err(error) = (sink.check)(&routing) {
                panic!("{}: {error}", platform.name);
            }
            routing.insert("newerField".into(), "x".into());
            let error = (sink.check)(&routing).unwrap_err().to_string();
            assert!(error.contains("newerField"), "{error}");
        }
    }

    fn platform(short: &str) -> &'static Platform {
        find_sink(short).unwrap().0
    }

    fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(flag, value)| ((*flag).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[cfg(all(feature = "github", feature = "vault", feature = "aws"))]
    #[test]
    fn given_settings_come_from_flags_and_set_and_are_checked() {
        let gh = platform("gh");
        let given = gh
            .given(
                &flags(&[("gh-repo", "acme/api")]),
                &["environment=prod".into()],
            )
            .unwrap();
        assert_eq!(
            Value::Object(given),
            serde_json::json!({"repo": "acme/api", "environment": "prod"})
        );
        let error = gh
            .given(&flags(&[("vault-addr", "https://v")]), &[])
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("--vault-addr is a setting of vault-kv"),
            "{error}"
        );
        let error = gh.given(&[], &["repository=acme/api".into()]).unwrap_err();
        assert!(error.to_string().contains("repo, scope, org"), "{error}");
        let error = gh.given(&[], &["repo".into()]).unwrap_err();
        assert!(error.to_string().contains("field=value"), "{error}");
        let aws = platform("aws");
        let given = aws.given(&[], &["forceDelete=true".into()]).unwrap();
        assert_eq!(given["forceDelete"], Value::Bool(true));
        assert!(aws.given(&[], &["forceDelete=yes".into()]).is_err());
    }

    #[cfg(feature = "vault")]
    #[test]
    fn a_block_is_saved_only_when_upstream_could_read_it() {
        let vault = platform("vault");
        let given = |pairs: &[(&str, &str)]| vault.given(&flags(pairs), &[]).unwrap();
        // A mount alone would make a block upstream refuses (no addr).
        assert_eq!(vault.remember(None, &given(&[("vault-mount", "kv")])), None);
        let block = vault
            .remember(None, &given(&[("vault-addr", "https://vault.example")]))
            .unwrap();
        assert_eq!(
            block,
            serde_json::json!({"addr": "https://vault.example", "mount": "secret", "secretPath": ""})
        );
        let updated = vault
            .remember(Some(&block), &given(&[("vault-path", "app")]))
            .unwrap();
        assert_eq!(
            serde_json::to_string(&updated).unwrap(),
            r#"{"addr":"https://vault.example","mount":"secret","secretPath":"app"}"#
        );
        // Nothing new: nothing to write.
        assert_eq!(
            vault.remember(Some(&updated), &given(&[("vault-path", "app")])),
            None
        );
        assert_eq!(vault.remember(Some(&updated), &Routing::new()), None);
    }

    #[cfg(feature = "github")]
    #[test]
    fn run_only_settings_are_used_but_never_saved() {
        let gh = platform("gh");
        let saved = serde_json::json!({"repo": "acme/api"});
        let given = gh
            .given(&flags(&[("gh-scope", "repository")]), &[])
            .unwrap();
        assert_eq!(gh.remember(Some(&saved), &given), None);
        let routing = gh.routing(Some(&saved), &given).unwrap();
        assert_eq!(routing["scope"], "repository");
        assert_eq!(routing["repo"], "acme/api");
    }

    #[cfg(feature = "github")]
    #[test]
    fn a_saved_block_from_a_newer_vsync_is_refused_naming_the_fields() {
        let gh = platform("gh");
        let saved = serde_json::json!({"repo": "acme/api", "visibility": "all"});
        let error = gh.routing(Some(&saved), &Routing::new()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("sync.gh routing: unknown field `visibility`"),
            "{message}"
        );
        assert!(message.contains("repo"), "{message}");
        let error = gh
            .routing(Some(&Value::from(1)), &Routing::new())
            .unwrap_err();
        assert!(error.to_string().contains("must be an object"), "{error}");
        let error = gh
            .routing(Some(&serde_json::json!({"repo": 7})), &Routing::new())
            .unwrap_err();
        assert!(error.to_string().contains("invalid type"), "{error}");
    }
}
