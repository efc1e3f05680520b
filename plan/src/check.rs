//! What a plan file must be beyond its shape: known platforms, their real
//! settings with values of the right kind, routing the platform accepts,
//! valid env names and globs — every problem found, not just the first.

use serde_json::Value;
use vsync_platforms::{REGISTRY, SettingKind};

use crate::{PlanFile, Settings, VERSION};

/// Every problem of `plan`, each at the start of the span it concerns;
/// spans past `file_len` are an override's.
pub(crate) fn check(plan: &PlanFile, file_len: usize) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut at = |spanned_start: usize, message: String| {
        found.push((spanned_start, message));
    };
    if *plan.version.get_ref() != VERSION {
        at(
            plan.version.span().start,
            format!(
                "version {}: this vsync reads plan files of version {VERSION}; write `version = {VERSION}`",
                plan.version.get_ref()
            ),
        );
    }
    for (name, env) in &plan.env {
        if vsync_local::paths::check_env_name(name.get_ref()).is_err() {
            at(
                name.span().start,
                format!(
                    "env {:?} cannot be an env name: use letters, digits, `.`, `_` and `-`",
                    name.get_ref()
                ),
            );
        }
        for import in &env.import {
            match vsync_platforms::find_source(import.from.get_ref()) {
                Err(_) => at(
                    import.from.span().start,
                    unknown(
                        "import source",
                        import.from.get_ref(),
                        REGISTRY
                            .iter()
                            .filter(|p| p.source.is_some())
                            .map(|p| p.short),
                    ),
                ),
                Ok((platform, source)) => {
                    let fields = source
                        .settings
                        .iter()
                        .map(|setting| (setting.field, setting.kind));
                    check_settings(&import.settings, platform.name, fields, &mut at);
                }
            }
            for glob in import.include.iter().chain(&import.exclude) {
                if let Err(err) = globset::Glob::new(glob.get_ref()) {
                    at(
                        glob.span().start,
                        format!("{:?} is not a glob: {}", glob.get_ref(), err.kind()),
                    );
                }
            }
        }
        let mut targets: Vec<&str> = Vec::new();
        for sync in &env.sync {
            let (platform, sink) = match vsync_platforms::find_sink(sync.to.get_ref()) {
                Ok(found) => found,
                Err(_) => {
                    at(
                        sync.to.span().start,
                        unknown(
                            "sync target",
                            sync.to.get_ref(),
                            REGISTRY
                                .iter()
                                .filter(|p| p.sink.is_some())
                                .map(|p| p.short),
                        ),
                    );
                    continue;
                }
            };
            if targets.contains(&platform.short) {
                at(
                    sync.to.span().start,
                    format!(
                        "env {} syncs to {} twice; give each target once",
                        name.get_ref(),
                        platform.short
                    ),
                );
            }
            targets.push(platform.short);
            let fields = sink
                .settings
                .iter()
                .map(|setting| (setting.field, setting.kind));
            if check_settings(&sync.settings, platform.name, fields, &mut at)
                && let Err(err) = platform.routing(None, &routing(&sync.settings))
            {
                // At the target, unless an override set one of its
                // settings: then the variable is the likelier culprit.
                let overridden = sync
                    .settings
                    .keys()
                    .map(|field| field.span().start)
                    .find(|start| *start > file_len);
                let place = overridden.unwrap_or(sync.to.span().start);
                at(place, format!("{}: {err}", platform.short));
            }
        }
    }
    found
}

/// Checks each setting against the platform's fields and their kinds;
/// true when all are known and of the right kind.
fn check_settings(
    settings: &Settings,
    platform: &str,
    fields: impl Iterator<Item = (&'static str, SettingKind)> + Clone,
    at: &mut impl FnMut(usize, String),
) -> bool {
    let mut fine = true;
    for (field, value) in settings {
        let Some((_, kind)) = fields.clone().find(|(name, _)| name == field.get_ref()) else {
            at(
                field.span().start,
                unknown(
                    &format!("setting of {platform}"),
                    field.get_ref(),
                    fields.clone().map(|(name, _)| name),
                ),
            );
            fine = false;
            continue;
        };
        let right_kind = match kind {
            SettingKind::Text => value.get_ref().is_str(),
            SettingKind::Switch => value.get_ref().is_bool(),
        };
        if !right_kind {
            let wanted = match kind {
                SettingKind::Text => "a string",
                SettingKind::Switch => "true or false",
            };
            at(
                value.span().start,
                format!("{} of {platform} takes {wanted}", field.get_ref()),
            );
            fine = false;
        }
    }
    fine
}

/// The settings as the routing object the registry checks.
pub(crate) fn routing(settings: &Settings) -> vsync_platforms::Routing {
    settings
        .iter()
        .map(|(field, value)| {
            let value = match value.get_ref() {
                toml::Value::Boolean(switch) => Value::Bool(*switch),
                toml::Value::String(text) => Value::String(text.clone()),
                other => Value::String(other.to_string()),
            };
            (field.get_ref().clone(), value)
        })
        .collect()
}

/// "unknown <what> `name`; the <what>s are …", with the closest one
/// suggested.
pub(crate) fn unknown<'a>(
    what: &str,
    name: &str,
    valid: impl Iterator<Item = &'a str> + Clone,
) -> String {
    let list: Vec<&str> = valid.clone().collect();
    let mut message = format!("unknown {what} `{name}`; valid: {}", list.join(", "));
    if let Some(close) = closest(name, valid) {
        message.push_str(&format!(" — did you mean `{close}`?"));
    }
    message
}

/// The candidate most like `name`, if one is close enough to be a typo;
/// case, `_`, `-` and `.` do not count.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let name = folded(name);
    candidates
        .map(|candidate| (strsim::jaro_winkler(&name, &folded(candidate)), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// A name with case, `_`, `-` and `.` left out: how overrides match names
/// and how typos are compared.
pub(crate) fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// toml's own message for a shape error, with the closest valid name
/// suggested when it lists them ("unknown field `x`, expected one of …").
pub(crate) fn explain(message: &str) -> String {
    let message = message.trim_end();
    let unknown = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"));
    let Some(rest) = unknown else {
        return message.to_owned();
    };
    let Some((name, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let valid = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|candidate| !candidate.is_empty());
    match closest(name, valid) {
        Some(close) => format!("{message} — did you mean `{close}`?"),
        None => message.to_owned(),
    }
}
