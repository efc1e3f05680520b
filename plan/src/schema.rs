//! The plan file as a JSON Schema (draft 2020-12), built from the registry:
//! each platform's settings are listed with their help text, so an editor
//! (Taplo, VS Code's Even Better TOML) completes and checks them.

use serde_json::{Value, json};
use vsync_platforms::{REGISTRY, SettingKind};

use crate::{DEFAULT_MAX_DELETES, VERSION};

/// The JSON Schema of `vsync.toml`.
pub fn schema() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    // One `if from/to is this platform then its settings` per platform.
    let per_platform =
        |role: &str, fields: &dyn Fn(&vsync_platforms::Platform) -> Option<Value>| {
            REGISTRY
                .iter()
                .filter_map(|platform| {
                    let properties = fields(platform)?;
                    Some(json!({
                        "if": {"properties": {role: {"enum": [platform.short, platform.name]}}},
                        "then": {"properties": {"settings": {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": properties,
                        }}},
                    }))
                })
                .collect::<Vec<_>>()
        };
    let names = |has: &dyn Fn(&vsync_platforms::Platform) -> bool| {
        REGISTRY
            .iter()
            .filter(|platform| has(platform))
            .flat_map(|platform| [platform.short, platform.name])
            .collect::<Vec<_>>()
    };
    let source_settings = |platform: &vsync_platforms::Platform| {
        platform
            .source
            .map(|source| properties(source.settings.iter().map(|s| (s.field, s.kind, s.help))))
    };
    let sink_settings = |platform: &vsync_platforms::Platform| {
        platform
            .sink
            .map(|sink| properties(sink.settings.iter().map(|s| (s.field, s.kind, s.help))))
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "vsync.toml",
        "description": "Every env's imports (sources -> vault) and syncs (vault -> platforms).",
        "type": "object",
        "additionalProperties": false,
        "required": ["version"],
        "properties": {
            "version": {"const": VERSION},
            "env": {"type": "object", "additionalProperties": {"$ref": "#/$defs/env"}},
        },
        "$defs": {
            "env": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "import": {"type": "array", "items": {"$ref": "#/$defs/import"}},
                    "sync": {"type": "array", "items": {"$ref": "#/$defs/sync"}},
                },
            },
            "import": {
                "type": "object",
                "additionalProperties": false,
                "required": ["from"],
                "properties": {
                    "from": {"enum": names(&|p| p.source.is_some()), "description": "The platform imported from."},
                    "settings": {"type": "object", "description": "The platform's source settings (`--set field=value`)."},
                    "prefix": {"type": "string", "description": "Only names starting with it are imported, without it."},
                    "rename": {"type": "object", "additionalProperties": {"type": "string"}, "description": "A name (once the prefix is gone) to the key it becomes."},
                    "include": strings,
                    "exclude": strings,
                    "prefer": {"enum": ["source", "vault"], "description": "Which side wins a conflict; without it a conflict refuses the import."},
                    "delete-missing": {"type": "boolean", "description": "Delete vault keys this source brought in earlier and no longer has."},
                },
                "allOf": per_platform("from", &source_settings),
            },
            "sync": {
                "type": "object",
                "additionalProperties": false,
                "required": ["to"],
                "properties": {
                    "to": {"enum": names(&|p| p.sink.is_some()), "description": "The platform synced to."},
                    "settings": {"type": "object", "description": "The platform's routing fields."},
                    "prune": {"type": "boolean", "description": "Delete secrets vsync wrote earlier that the vault no longer has."},
                    "max-deletes": {"type": "integer", "minimum": 0, "default": DEFAULT_MAX_DELETES, "description": "The most deletions one run may make."},
                    "on-failure": {"enum": ["fail-closed", "continue"], "default": "fail-closed", "description": "What this target's failure does to the rest of the run."},
                    "exclude": strings,
                    "inline-file-suffix": strings,
                },
                "allOf": per_platform("to", &sink_settings),
            },
        },
    })
}

/// A platform's settings as schema properties: each field's type and help.
fn properties(settings: impl Iterator<Item = (&'static str, SettingKind, &'static str)>) -> Value {
    settings
        .map(|(field, kind, help)| {
            let kind = match kind {
                SettingKind::Text => "string",
                SettingKind::Switch => "boolean",
            };
            (field.to_owned(), json!({"type": kind, "description": help}))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
