//! `.env.<env>` parsing with upstream vsync's line rules (spec §3.3,
//! `src/envfile.ts`), shared by the runtime library and, later, by `sync`.
//!
//! [`parse`] applies the line rules only:
//!
//! - split on `\r?\n`, trim every line (JavaScript `String.prototype.trim`
//!   semantics, so a byte-order mark or a no-break space is trimmed too);
//! - skip empty lines and lines starting with `#`, and lines without `=`;
//! - the key is the text before the **first** `=`, trimmed; the value is the
//!   rest, trimmed;
//! - one pair of matching surrounding quotes (`"…"` or `'…'`) is stripped
//!   from a value of two or more characters;
//! - no escape processing, no `export ` prefix handling, no inline-comment
//!   stripping, no multi-line values;
//! - entries come out in file order; a duplicate key yields two entries (the
//!   last one wins wherever they are applied).
//!
//! Placeholder expansion ([`expand_placeholders`]) and file references
//! ([`file_reference_stem`]) are separate steps because they depend on the
//! machine that runs them: `sync` applies them on the operator's machine,
//! the runtime library does not (the placeholders name paths on the pusher's
//! machine, and a referenced file already travels in the bundle as an asset).
//!
//! Values are secrets: they live in [`Zeroizing`] buffers and never appear in
//! `Debug` output.

use std::fmt;

use vsync_crypto::Zeroizing;

/// One `KEY=value` line.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, trimmed.
    pub key: String,
    /// The value, trimmed and unquoted; wiped on drop.
    pub value: Zeroizing<String>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({}=<redacted>)", self.key)
    }
}

/// Whitespace as JavaScript's `String.prototype.trim` sees it: the
/// `WhiteSpace` and `LineTerminator` productions of ECMA-262 (which, unlike
/// Rust's `char::is_whitespace`, include U+FEFF and exclude U+0085).
pub fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

fn js_trim(text: &str) -> &str {
    text.trim_matches(is_js_whitespace)
}

/// Strips one pair of matching surrounding quotes from a value of two or
/// more characters.
fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2 && matches!(bytes[0], b'"' | b'\'') && bytes[bytes.len() - 1] == bytes[0] {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// Parses the text of a `.env` file with upstream's line rules (see the
/// module documentation).
pub fn parse(text: &str) -> Vec<Entry> {
    text.split('\n')
        .filter_map(|line| {
            let line = js_trim(line);
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            Some(Entry {
                key: js_trim(key).to_owned(),
                value: Zeroizing::new(unquote(js_trim(value)).to_owned()),
            })
        })
        .collect()
}

/// What the placeholders of [`expand_placeholders`] stand for.
#[derive(Debug, Clone, Copy)]
pub struct Placeholders<'a> {
    /// `${VAULT_ROOT}`: the directory holding the env file.
    pub vault_root: &'a str,
    /// `${HOME}` and a leading `~/`: the home directory.
    pub home: &'a str,
}

/// Upstream's placeholder expansion (used by `sync`, never by the runtime
/// library): a leading `~/` becomes `<home>/`, every literal `${VAULT_ROOT}`
/// the vault root and every literal `${HOME}` the home directory. `$VAR`
/// without braces is left alone and nothing is expanded recursively.
pub fn expand_placeholders(value: &str, places: Placeholders<'_>) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len()));
    let rest = match value.strip_prefix("~/") {
        Some(rest) => {
            out.push_str(places.home);
            out.push('/');
            rest
        }
        None => value,
    };
    // One left-to-right pass over the original text, so a replacement that
    // itself contains a placeholder is not expanded again.
    let mut rest = rest;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("${VAULT_ROOT}") {
            out.push_str(places.vault_root);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${HOME}") {
            out.push_str(places.home);
            rest = after;
        } else {
            out.push_str("${");
            rest = &tail[2..];
        }
    }
    out.push_str(rest);
    out
}

/// The stem of a file-reference key: `SSH_PRIVATE_KEY_PATH` with suffix
/// `_PATH` gives `SSH_PRIVATE_KEY`. `None` when the key ends with none of
/// `suffixes` or the stem would be empty.
pub fn file_reference_stem<'a>(key: &'a str, suffixes: &[&str]) -> Option<&'a str> {
    suffixes
        .iter()
        .filter(|suffix| !suffix.is_empty())
        .find_map(|suffix| key.strip_suffix(suffix))
        .filter(|stem| !stem.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .into_iter()
            .map(|entry| (entry.key, entry.value.to_string()))
            .collect()
    }

    fn p(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    #[test]
    fn line_rules() {
        let text = "\u{feff}# comment\r\n\
                    DATABASE_URL=postgres://u:p@h/db?a=b\r\n\
                    \n   \t\n\
                    no equals sign here\n\
                      SPACED  =  value with spaces  \n\
                    DOUBLE=\"quoted value\"\n\
                    SINGLE='single'\n\
                    MISMATCHED=\"open'\n\
                    ONE_QUOTE=\"\n\
                    EMPTY=\n\
                    EMPTY_QUOTES=\"\"\n\
                    export EXPORTED=kept as a key with the prefix\n\
                    INLINE=value # not a comment\n\
                    ESCAPES=\"a\\nb\"\n\
                    NESTED=\"'inner'\"\n\
                    DUP=first\n\
                    DUP=second";
        assert_eq!(
            pairs(text),
            [
                p("DATABASE_URL", "postgres://u:p@h/db?a=b"),
                p("SPACED", "value with spaces"),
                p("DOUBLE", "quoted value"),
                p("SINGLE", "single"),
                p("MISMATCHED", "\"open'"),
                p("ONE_QUOTE", "\""),
                p("EMPTY", ""),
                p("EMPTY_QUOTES", ""),
                p("export EXPORTED", "kept as a key with the prefix"),
                p("INLINE", "value # not a comment"),
                p("ESCAPES", "a\\nb"),
                p("NESTED", "'inner'"),
                p("DUP", "first"),
                p("DUP", "second"),
            ]
        );
    }

    #[test]
    fn js_trim_differs_from_rust_trim_where_upstream_does() {
        assert_eq!(pairs("\u{a0}K\u{3000}=\u{feff}v\u{2028}"), [p("K", "v")]);
        // U+0085 (NEL) is whitespace to Rust but not to JavaScript.
        assert_eq!(pairs("K=v\u{85}"), [p("K", "v\u{85}")]);
        // A lone CR is not a line break.
        assert_eq!(pairs("A=1\rB=2"), [p("A", "1\rB=2")]);
    }

    #[test]
    fn debug_redacts_values() {
        let entries = parse("TOKEN=hunter2");
        let shown = format!("{entries:?}");
        assert!(shown.contains("TOKEN"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn placeholders() {
        let places = Placeholders {
            vault_root: "/repo/infra/vault/dev",
            home: "/home/me",
        };
        let expand = |value| expand_placeholders(value, places).to_string();
        assert_eq!(expand("~/keys/id"), "/home/me/keys/id");
        assert_eq!(expand("a/~/b"), "a/~/b");
        assert_eq!(
            expand("${VAULT_ROOT}/tls/${VAULT_ROOT}:${HOME}"),
            "/repo/infra/vault/dev/tls//repo/infra/vault/dev:/home/me"
        );
        assert_eq!(expand("$HOME ${OTHER} ${"), "$HOME ${OTHER} ${");
        // No recursion: a replacement holding a placeholder stays literal.
        let tricky = Placeholders {
            vault_root: "${HOME}",
            home: "/h",
        };
        assert_eq!(
            expand_placeholders("${VAULT_ROOT}", tricky).as_str(),
            "${HOME}"
        );
    }

    #[test]
    fn file_reference_stems() {
        let suffixes = ["_PATH", "_FILE"];
        assert_eq!(
            file_reference_stem("SSH_PRIVATE_KEY_PATH", &suffixes),
            Some("SSH_PRIVATE_KEY")
        );
        assert_eq!(
            file_reference_stem("GCP_SA_FILE", &suffixes),
            Some("GCP_SA")
        );
        assert_eq!(file_reference_stem("_PATH", &suffixes), None);
        assert_eq!(file_reference_stem("PATHS", &suffixes), None);
        assert_eq!(file_reference_stem("X_PATH", &[]), None);
        assert_eq!(file_reference_stem("X_PATH", &[""]), None);
    }
}
