//! A first `vsync.toml` from what a machine already saved: each env's sync
//! routing (its env config's `sync` block), so today's users move over
//! without retyping. Imports are never saved (upstream's config has no
//! place for them), so none are written.

use serde_json::{Map, Value};

use crate::VERSION;

/// The sync routing one env saved on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRouting {
    /// The env.
    pub env: String,
    /// Each saved target: the platform's short name and its block.
    pub targets: Vec<(String, Map<String, Value>)>,
}

/// The plan file for `envs`, with a header saying where it came from.
pub fn render(envs: &[SavedRouting]) -> String {
    let mut text = format!(
        "# vsync.toml: every env's imports (sources -> vault) and syncs (vault -> platforms),\n\
         # reviewed like code. Written by `vsync plan init` from this machine's saved routing;\n\
         # `vsync plan validate` checks it, `vsync plan schema` gives editors its schema.\n\
         version = {VERSION}\n"
    );
    for routing in envs {
        for (short, block) in &routing.targets {
            let settings: toml::Table = block
                .iter()
                .filter_map(|(field, value)| Some((field.clone(), toml_value(value)?)))
                .collect();
            text.push_str(&format!(
                "\n[[env.{}.sync]]\nto = {}\n",
                key(&routing.env),
                toml::Value::String(short.clone())
            ));
            if !settings.is_empty() {
                text.push_str(&format!("settings = {}\n", toml::Value::Table(settings)));
            }
        }
    }
    text
}

/// A routing field's value in TOML (routing holds only text and switches).
fn toml_value(value: &Value) -> Option<toml::Value> {
    match value {
        Value::String(text) => Some(toml::Value::String(text.clone())),
        Value::Bool(switch) => Some(toml::Value::Boolean(*switch)),
        _ => None,
    }
}

/// `name` as a TOML key: bare when it can be, quoted otherwise.
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        toml::Value::String(name.to_owned()).to_string()
    }
}
