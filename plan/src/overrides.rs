//! `VSYNC_ENV__…` variables: a CI job's changes to one setting or policy of
//! an env's import or sync target, without editing the reviewed file.
//!
//! ```text
//! VSYNC_ENV__PROD__SYNC__GH__SETTINGS__REPO=acme/web-staging
//! VSYNC_ENV__PROD__SYNC__GH__MAX_DELETES=25
//! VSYNC_ENV__DEV__IMPORT__AWS__INCLUDE=["API_*", "DB_*"]
//! ```
//!
//! The path is `ENV__<env>__SYNC__<platform>__<field>` (or `IMPORT`), with
//! `SETTINGS__<setting>` for a platform setting. Each part matches a name
//! of the file ignoring case, `_`, `-` and `.`, so `MAX_DELETES` is
//! `max-deletes` and `SECRET_PREFIX` is `secretPrefix`. An override
//! changes what the file has and adds nothing new: the env, and the import
//! or target, must be in the file, so the file stays the list of what a
//! repo syncs. A plan shows its overrides and its artifact records them.

use serde::{Deserialize, Serialize};
use toml::Spanned;
use vsync_platforms::{Platform, SettingKind};

use crate::check::{folded, unknown};
use crate::{EnvPlan, ImportPlan, OnFailure, PlanError, PlanFile, Prefer, Settings, SyncPlan};

/// What starts a variable that overrides the plan file.
pub const PREFIX: &str = "VSYNC_ENV__";

/// One override as given: shown by a plan and recorded in its artifact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The variable's name, `VSYNC_ENV__…`.
    pub variable: String,
    /// Its value.
    pub value: String,
}

/// Every `VSYNC_ENV__…` variable of this process, sorted by name.
pub fn from_environment() -> Result<Vec<Override>, PlanError> {
    let mut found = Vec::new();
    for (name, value) in std::env::vars_os() {
        if !name.as_encoded_bytes().starts_with(PREFIX.as_bytes()) {
            continue;
        }
        match (name.into_string(), value.into_string()) {
            (Ok(variable), Ok(value)) => found.push(Override { variable, value }),
            (name, _) => {
                return Err(PlanError::NotUnicode {
                    variable: name.unwrap_or_else(|name| name.to_string_lossy().into_owned()),
                });
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Applies `overrides` to `plan`; each value gets the span `span(i)` of
/// its override, so later checks point at the variable. Returns each
/// override that cannot apply, by index, with why.
pub(crate) fn apply(
    plan: &mut PlanFile,
    overrides: &[Override],
    span: impl Fn(usize) -> std::ops::Range<usize>,
) -> Vec<(usize, String)> {
    let mut refused = Vec::new();
    for (index, one) in overrides.iter().enumerate() {
        let placed = Placed {
            span: span(index),
            value: &one.value,
        };
        if let Err(why) = apply_one(plan, &one.variable, placed) {
            refused.push((index, why));
        }
    }
    refused
}

/// An override's value with the span it is given in the plan.
struct Placed<'a> {
    span: std::ops::Range<usize>,
    value: &'a str,
}

impl Placed<'_> {
    fn spanned<T>(&self, value: T) -> Spanned<T> {
        Spanned::new(self.span.clone(), value)
    }

    fn text(&self) -> String {
        self.value.to_owned()
    }

    fn switch(&self) -> Result<bool, String> {
        match self.value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("takes true or false".to_owned()),
        }
    }

    fn count(&self) -> Result<usize, String> {
        self.value
            .parse()
            .map_err(|_| "takes a whole number, like 10".to_owned())
    }

    /// A list, written as a TOML array of strings.
    fn list(&self) -> Result<Vec<String>, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct List {
            list: Vec<String>,
        }
        toml::from_str::<List>(&format!("list = {}", self.value))
            .map(|parsed| parsed.list)
            .map_err(|_| r#"takes a TOML array of strings, like ["API_*", "DB_*"]"#.to_owned())
    }

    fn one_of<T: Copy>(&self, choices: &[(&str, T)]) -> Result<T, String> {
        choices
            .iter()
            .find(|(name, _)| *name == self.value)
            .map(|(_, choice)| *choice)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                format!("takes one of {}", names.join(", "))
            })
    }
}

fn apply_one(plan: &mut PlanFile, variable: &str, placed: Placed) -> Result<(), String> {
    let path: Vec<&str> = variable
        .strip_prefix(PREFIX)
        .unwrap_or(variable)
        .split("__")
        .collect();
    let shape = || {
        format!(
            "expected {PREFIX}<env>__SYNC__<platform>__<field> or {PREFIX}<env>__IMPORT__<platform>__<field>, with SETTINGS__<setting> for a platform setting"
        )
    };
    let [env_name, kind, address, field @ ..] = path.as_slice() else {
        return Err(shape());
    };
    let envs: Vec<&str> = plan
        .env
        .keys()
        .map(|name| name.get_ref().as_str())
        .collect();
    let matching: Vec<&str> = envs
        .iter()
        .copied()
        .filter(|name| folded(name) == folded(env_name))
        .collect();
    let env_key = match matching.as_slice() {
        [one] => one.to_string(),
        [] => {
            return Err(format!(
                "vsync.toml has no env `{env_name}` (its envs: {}); an override changes an env the file has",
                envs.join(", ")
            ));
        }
        several => {
            return Err(format!(
                "`{env_name}` could be any of the envs {}; rename one in vsync.toml",
                several.join(", ")
            ));
        }
    };
    let env = plan
        .env
        .iter_mut()
        .find(|(name, _)| *name.get_ref() == env_key)
        .map(|(_, env)| env)
        .expect("the env was found above");
    match folded(kind).as_str() {
        "sync" => sync(env, &env_key, address, field, &placed),
        "import" => import(env, &env_key, address, field, &placed),
        _ => Err(format!("`{kind}` is neither SYNC nor IMPORT; {}", shape())),
    }
}

/// Whether `address` names the platform written as `written` in the file
/// (`platform` when it is one vsync knows).
fn names_platform(address: &str, written: &str, platform: Option<&Platform>) -> bool {
    platform
        .into_iter()
        .flat_map(|platform| [platform.short, platform.name])
        .chain([written])
        .any(|name| folded(name) == folded(address))
}

fn sync(
    env: &mut EnvPlan,
    env_name: &str,
    address: &str,
    field: &[&str],
    placed: &Placed,
) -> Result<(), String> {
    let sink = |sync: &SyncPlan| vsync_platforms::find_sink(sync.to.get_ref()).ok();
    let target = env
        .sync
        .iter_mut()
        .find(|sync| names_platform(address, sync.to.get_ref(), sink(sync).map(|(p, _)| p)))
        .ok_or_else(|| {
            format!("env {env_name} has no sync target `{address}` in vsync.toml; an override changes a target the file has")
        })?;
    let fields = [
        "settings",
        "prune",
        "max-deletes",
        "on-failure",
        "exclude",
        "inline-file-suffix",
    ];
    match field_name(field, &fields)? {
        ("settings", setting) => {
            let settings = sink(target).map_or(&[][..], |(_, side)| side.settings);
            let known = settings.iter().map(|s| (s.field, s.kind));
            return set_setting(&mut target.settings, known, setting, placed);
        }
        ("prune", _) => target.prune = placed.switch()?,
        ("max-deletes", _) => target.max_deletes = placed.count()?,
        ("on-failure", _) => {
            target.on_failure = placed.one_of(&[
                ("fail-closed", OnFailure::FailClosed),
                ("continue", OnFailure::Continue),
            ])?
        }
        ("exclude", _) => target.exclude = placed.list()?,
        _ => target.inline_file_suffix = placed.list()?,
    }
    Ok(())
}

fn import(
    env: &mut EnvPlan,
    env_name: &str,
    address: &str,
    field: &[&str],
    placed: &Placed,
) -> Result<(), String> {
    let source = |import: &ImportPlan| vsync_platforms::find_source(import.from.get_ref()).ok();
    let mut matching = env.import.iter_mut().filter(|import| {
        names_platform(
            address,
            import.from.get_ref(),
            source(import).map(|(p, _)| p),
        )
    });
    let import = matching.next().ok_or_else(|| {
        format!("env {env_name} has no import from `{address}` in vsync.toml; an override changes an import the file has")
    })?;
    if matching.next().is_some() {
        return Err(format!(
            "env {env_name} imports from `{address}` more than once; an override cannot tell which, so edit vsync.toml"
        ));
    }
    let fields = [
        "settings",
        "prefix",
        "include",
        "exclude",
        "prefer",
        "delete-missing",
    ];
    let spanned_list =
        |list: Vec<String>| list.into_iter().map(|glob| placed.spanned(glob)).collect();
    match field_name(field, &fields)? {
        ("settings", setting) => {
            let settings = source(import).map_or(&[][..], |(_, side)| side.settings);
            let known = settings.iter().map(|s| (s.field, s.kind));
            return set_setting(&mut import.settings, known, setting, placed);
        }
        ("prefix", _) => import.prefix = Some(placed.text()),
        ("include", _) => import.include = spanned_list(placed.list()?),
        ("exclude", _) => import.exclude = spanned_list(placed.list()?),
        ("prefer", _) => {
            import.prefer =
                Some(placed.one_of(&[("source", Prefer::Source), ("vault", Prefer::Vault)])?)
        }
        _ => import.delete_missing = placed.switch()?,
    }
    Ok(())
}

/// The field `path` names among `fields`, with the setting when it is
/// `settings`.
fn field_name<'a>(
    path: &[&'a str],
    fields: &[&'static str],
) -> Result<(&'static str, &'a str), String> {
    let unknown_field = |name: &str| unknown("field", name, fields.iter().copied());
    match path {
        [name, setting] if folded(name) == "settings" => Ok(("settings", setting)),
        [name] if folded(name) == "settings" => {
            Err("name the setting: …__SETTINGS__<setting>".to_owned())
        }
        [name] => fields
            .iter()
            .find(|field| folded(field) == folded(name))
            .filter(|field| **field != "settings")
            .map(|field| (*field, ""))
            .ok_or_else(|| unknown_field(name)),
        [] => Err(unknown_field("")),
        [name, ..] => Err(format!("{name} takes no further parts")),
    }
}

/// Sets the platform setting `name` (one of `known`) to the override.
fn set_setting(
    settings: &mut Settings,
    known: impl Iterator<Item = (&'static str, SettingKind)> + Clone,
    name: &str,
    placed: &Placed,
) -> Result<(), String> {
    let Some((field, kind)) = known
        .clone()
        .find(|(field, _)| folded(field) == folded(name))
    else {
        return Err(unknown("setting", name, known.map(|(field, _)| field)));
    };
    let value = match kind {
        SettingKind::Text => toml::Value::String(placed.text()),
        SettingKind::Switch => toml::Value::Boolean(placed.switch()?),
    };
    // Removed first: a map's insert keeps the old key, and with it the
    // file's place, where problems with the new value would be reported.
    settings.retain(|written, _| written.get_ref() != field);
    settings.insert(placed.spanned(field.to_owned()), placed.spanned(value));
    Ok(())
}
