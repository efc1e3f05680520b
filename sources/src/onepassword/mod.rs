//! 1Password: the items of one vault, read through a Connect server's REST
//! API ([`ConnectSource`]) or the `op` CLI ([`CliSource`]), each item's
//! fields becoming keys.
//!
//! **What is read.** The vault's active items — every one, the one with a
//! given title ([`Scope::Titled`]) or those with a tag ([`Scope::Tagged`]).
//! Archived and deleted items are not listed. One listed secret per item,
//! named by its title, with its `version` as the revision, so a re-import
//! reads only the items that changed.
//!
//! **Fields into keys.** Each field holding a non-empty value becomes one
//! value whose proposed name is the field's label, as is: an item made for
//! an app (`acme-api dev` with fields `DATABASE_URL`, `API_TOKEN`) becomes
//! those keys. The engine's name rules then apply (`--prefix`, `--map`,
//! globs) and its key check refuses a label `.env` cannot hold; two fields
//! with one label — in one item or in two — are refused by the engine
//! naming both, to be narrowed with `--set item=`/`tag=` or renamed in
//! 1Password. Two exceptions, because the value is not an app's setting:
//!
//! - one-time-password fields (type `OTP`, which some descriptions of the
//!   API spell `TOTP`) are skipped: their value is a person's
//!   second-factor seed, and a `.env` holding it next to the password
//!   would make the two factors one;
//! - notes (`notesPlain`, purpose `NOTES`) are skipped, except in a Secure
//!   Note, whose notes are the item's content: there they are one value
//!   named after the item's title (a Secure Note `TLS_KEY` holding a PEM
//!   becomes the key `TLS_KEY`).
//!
//! 1Password has no disabled state, and its values are text: nothing is
//! reported disabled, nothing becomes an asset file. A JSON document in a
//! field is one value, kept byte for byte.
//!
//! **What the platform answers is not trusted.** Responses are read up to a
//! bound before anything is allocated for them; item and vault ids must
//! have 1Password's form before they go into a URL or a command line; a
//! title or label holding control characters, a field with a value but no
//! label, an item listed twice under one title and an item answered for
//! another are refused with the item named, never a value. JSON the source
//! cannot read is reported by position only: a parser's message may quote
//! the text it choked on, which may be a value.

mod cli;
mod connect;

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{SecretValue, SinkError};
use vsync_engine::source::{ListedSecret, SourceValue};

pub use cli::{CliSource, find_op};
pub use connect::ConnectSource;

/// Which items of the vault are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every active item.
    All,
    /// The item with this title (`--set item=`).
    Titled(String),
    /// The items with this tag (`--set tag=`).
    Tagged(String),
}

impl Scope {
    /// The scope's part of a source's origin: `,item=…`, `,tag=…` or
    /// nothing.
    fn origin_part(&self) -> String {
        match self {
            Scope::All => String::new(),
            Scope::Titled(title) => format!(",item={title}"),
            Scope::Tagged(tag) => format!(",tag={tag}"),
        }
    }
}

/// The longest title or label accepted: 1Password's own forms stop far
/// shorter, a longer one is a server that is not 1Password.
const MAX_NAME_CHARS: usize = 1024;

/// An item as a listing shows it: Connect's `updatedAt` and the CLI's
/// `updated_at` alike.
#[derive(Debug, Deserialize)]
struct Summary {
    id: String,
    title: String,
    version: Option<u64>,
    #[serde(rename = "updatedAt", alias = "updated_at")]
    updated_at: Option<String>,
    /// `ARCHIVED` or `DELETED` when the item is not active.
    state: Option<String>,
}

/// An item with its fields.
#[derive(Debug, Deserialize)]
struct FullItem {
    id: String,
    category: Option<String>,
    state: Option<String>,
    #[serde(default)]
    fields: Vec<Field>,
}

/// One field of an item. Its `value` is wiped when dropped.
#[derive(Debug, Deserialize)]
struct Field {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    purpose: Option<String>,
    label: Option<String>,
    value: Option<Zeroizing<String>>,
}

/// Whether `id` has the form of a 1Password vault or item id (26
/// characters of `[a-z0-9]`), so it can go into a URL path or an argument.
fn is_id(id: &str) -> bool {
    id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Why a title or label cannot name anything vsync prints or stores, if it
/// cannot: control characters would reach the terminal of whoever reads
/// the import's report.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.chars().count() > MAX_NAME_CHARS {
        Some("is longer than 1024 characters")
    } else if name.chars().any(char::is_control) {
        Some("holds control characters")
    } else {
        None
    }
}

/// The listed secrets of `items` within `scope` (a title scope is applied
/// here too, for the CLI, which cannot filter by title), and each one's
/// item id by title.
fn listed(
    items: Vec<Summary>,
    scope: &Scope,
    vault: &str,
) -> Result<(Vec<ListedSecret>, HashMap<String, String>), SinkError> {
    let mut secrets = Vec::with_capacity(items.len());
    let mut ids: HashMap<String, String> = HashMap::with_capacity(items.len());
    for item in items {
        if item.state.as_deref().is_some_and(|state| !state.is_empty()) {
            continue;
        }
        if matches!(scope, Scope::Titled(title) if *title != item.title) {
            continue;
        }
        if !is_id(&item.id) {
            return Err(SinkError::Rejected(format!(
                "vault {vault:?} listed an item whose id {:?} is not a 1Password id",
                item.id.chars().take(64).collect::<String>()
            )));
        }
        if item.title.is_empty() {
            return Err(SinkError::Rejected(format!(
                "item {} of vault {vault:?} has no title; an item's title names what is imported, so give it one",
                item.id
            )));
        }
        if let Some(problem) = name_problem(&item.title) {
            return Err(SinkError::Rejected(format!(
                "the title of item {} of vault {vault:?} {problem}; rename it in 1Password",
                item.id
            )));
        }
        if ids.insert(item.title.clone(), item.id.clone()).is_some() {
            return Err(SinkError::Rejected(format!(
                "vault {vault:?} holds more than one item titled {:?}; an item's title names what is imported, so rename one (or narrow the import with --set item= or --set tag=)",
                item.title
            )));
        }
        secrets.push(ListedSecret {
            name: item.title,
            revision: item.version.map(|version| version.to_string()),
            updated_at: item.updated_at,
            enabled: true,
            content_type: None,
        });
    }
    Ok((secrets, ids))
}

/// The values of `item`, listed as `title` (see the module documentation
/// for which fields count and what they are named). `None` when the item
/// is no longer active (archived since the listing): left out, like a
/// deleted one.
fn values_of(item: FullItem, title: &str) -> Result<Option<Vec<SourceValue>>, SinkError> {
    if item.state.as_deref().is_some_and(|state| !state.is_empty()) {
        return Ok(None);
    }
    let secure_note = item.category.as_deref() == Some("SECURE_NOTE");
    let mut values = Vec::with_capacity(item.fields.len());
    for field in item.fields {
        let Some(mut value) = field.value.filter(|value| !value.is_empty()) else {
            continue;
        };
        if matches!(field.kind.as_deref(), Some("OTP" | "TOTP")) {
            continue;
        }
        let name = if field.purpose.as_deref() == Some("NOTES") {
            if !secure_note {
                continue;
            }
            title.to_owned()
        } else {
            let label = field.label.filter(|label| !label.is_empty()).ok_or_else(|| {
                SinkError::Rejected(format!(
                    "item {title:?}: field {:?} has a value but no label, so no key to import it under; label it in 1Password",
                    field.id.unwrap_or_default().chars().take(64).collect::<String>()
                ))
            })?;
            if let Some(problem) = name_problem(&label) {
                return Err(SinkError::Rejected(format!(
                    "item {title:?}: a field's label {problem}; rename it in 1Password"
                )));
            }
            label
        };
        // The text's bytes move into the value: no copy is left behind.
        let bytes = std::mem::take(&mut *value).into_bytes();
        values.push(SourceValue {
            secret: title.to_owned(),
            name,
            value: SecretValue::new(Zeroizing::new(bytes)),
        });
    }
    Ok(Some(values))
}

/// Appends `chunk` to `buffer` unless that takes it past `limit` bytes
/// (`false`). The buffer grows by moving into a larger zeroizing one, so
/// the bytes it held are wiped rather than left behind by a reallocation.
fn append_bounded(buffer: &mut Zeroizing<Vec<u8>>, chunk: &[u8], limit: usize) -> bool {
    let needed = buffer.len() + chunk.len();
    if needed > limit {
        return false;
    }
    if needed > buffer.capacity() {
        let mut grown = Zeroizing::new(Vec::with_capacity(
            needed.max(buffer.capacity() * 2).min(limit),
        ));
        grown.extend_from_slice(buffer);
        *buffer = grown;
    }
    buffer.extend_from_slice(chunk);
    true
}

/// `bytes` read as `T`; a failure names `what` and the position only (see
/// the module documentation).
fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, SinkError> {
    serde_json::from_slice(bytes).map_err(|error| malformed(what, &error))
}

fn malformed(what: &str, error: &serde_json::Error) -> SinkError {
    SinkError::Rejected(format!(
        "{what} is not the JSON 1Password documents ({:?} error at line {}, column {})",
        error.classify(),
        error.line(),
        error.column()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(label: &str, value: &str, kind: &str, purpose: &str) -> Field {
        Field {
            id: Some("f".into()),
            kind: Some(kind.into()),
            purpose: Some(purpose.into()),
            label: Some(label.into()),
            value: Some(Zeroizing::new(value.into())),
        }
    }

    fn names(values: &[SourceValue]) -> Vec<(&str, &str)> {
        values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_text().unwrap()))
            .collect()
    }

    #[test]
    fn fields_become_values_but_otp_seeds_and_notes_do_not() {
        let login = FullItem {
            id: "a".repeat(26),
            category: Some("LOGIN".into()),
            state: None,
            fields: vec![
                field("username", "app", "STRING", "USERNAME"),
                field("password", "p=w#1", "CONCEALED", "PASSWORD"),
                field("notesPlain", "call Bob first", "STRING", "NOTES"),
                field("one-time password", "otpauth://totp/x?secret=AB", "OTP", ""),
                field("blank", "", "STRING", ""),
            ],
        };
        let values = values_of(login, "Login").unwrap().unwrap();
        assert_eq!(names(&values), [("username", "app"), ("password", "p=w#1")]);
        assert!(values.iter().all(|v| v.secret == "Login"));

        let note = FullItem {
            id: "b".repeat(26),
            category: Some("SECURE_NOTE".into()),
            state: None,
            fields: vec![field(
                "notesPlain",
                "-----BEGIN\nx\n-----END",
                "STRING",
                "NOTES",
            )],
        };
        let values = values_of(note, "TLS_KEY").unwrap().unwrap();
        assert_eq!(names(&values), [("TLS_KEY", "-----BEGIN\nx\n-----END")]);

        let archived = FullItem {
            id: "c".repeat(26),
            category: None,
            state: Some("ARCHIVED".into()),
            fields: vec![field("A", "1", "STRING", "")],
        };
        assert!(values_of(archived, "Old").unwrap().is_none());
    }

    #[test]
    fn unnamed_or_unprintable_labels_are_refused_without_the_value() {
        let unlabelled = FullItem {
            id: "a".repeat(26),
            category: None,
            state: None,
            fields: vec![field("", "hunter2", "CONCEALED", "")],
        };
        let error = values_of(unlabelled, "App").unwrap_err().to_string();
        assert!(
            error.contains("no label") && !error.contains("hunter2"),
            "{error}"
        );
        let escape = FullItem {
            id: "a".repeat(26),
            category: None,
            state: None,
            fields: vec![field("KEY\u{1b}[2J", "hunter2", "CONCEALED", "")],
        };
        let error = values_of(escape, "App").unwrap_err().to_string();
        assert!(
            error.contains("control") && !error.contains("hunter2"),
            "{error}"
        );
    }

    fn summary(id: &str, title: &str) -> Summary {
        Summary {
            id: id.into(),
            title: title.into(),
            version: Some(3),
            updated_at: Some("2024-05-01T10:00:00Z".into()),
            state: None,
        }
    }

    #[test]
    fn listings_are_checked_and_scoped() {
        let (a, b) = ("a".repeat(26), "b".repeat(26));
        let (secrets, ids) = listed(
            vec![summary(&a, "App"), summary(&b, "Other")],
            &Scope::Titled("App".into()),
            "Ops",
        )
        .unwrap();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0].revision.as_deref(), Some("3"));
        assert_eq!(ids["App"], a);

        let twice = listed(
            vec![summary(&a, "App"), summary(&b, "App")],
            &Scope::All,
            "Ops",
        );
        assert!(
            twice
                .unwrap_err()
                .to_string()
                .contains("more than one item titled \"App\"")
        );
        let bad_id = listed(vec![summary("../../v1/vaults", "App")], &Scope::All, "Ops");
        assert!(
            bad_id
                .unwrap_err()
                .to_string()
                .contains("not a 1Password id")
        );
        let mut archived = summary(&a, "App");
        archived.state = Some("ARCHIVED".into());
        assert!(
            listed(vec![archived], &Scope::All, "Ops")
                .unwrap()
                .0
                .is_empty()
        );
    }

    #[test]
    fn buffers_stop_at_their_limit() {
        let mut buffer = Zeroizing::new(Vec::with_capacity(2));
        assert!(append_bounded(&mut buffer, b"abc", 5));
        assert!(append_bounded(&mut buffer, b"de", 5));
        assert!(!append_bounded(&mut buffer, b"f", 5));
        assert_eq!(buffer.as_slice(), b"abcde");
    }

    #[test]
    fn malformed_json_is_reported_by_position_not_content() {
        let error = parse::<FullItem>(br#"{"id": 5, "fields": "hunter2"}"#, "the item")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 1") && !error.contains("hunter2"),
            "{error}"
        );
        // serde's own message would quote the string: "invalid type:
        // string \"hunter2\", expected u64".
        let error = parse::<Summary>(
            br#"{"id": "x", "title": "t", "version": "hunter2"}"#,
            "the listing",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("column") && !error.contains("hunter2"),
            "{error}"
        );
    }
}
