//! `.env.<env>` files: one grammar for `sync`, the runtime library, `exec`
//! and import (DESIGN decision 9), a strict superset of upstream vsync's
//! line rules (spec §3.3, `src/envfile.ts`).
//!
//! # Upstream's line rules, kept exactly
//!
//! - split on `\r?\n`, trim every line (JavaScript `String.prototype.trim`
//!   semantics, so a byte-order mark or a no-break space is trimmed too);
//! - skip empty lines and lines starting with `#`;
//! - the key is the text before the **first** `=`, trimmed; the value is the
//!   rest, trimmed;
//! - one pair of matching surrounding quotes (`"…"` or `'…'`) is stripped
//!   from a value of two or more characters;
//! - no escape processing, no `export ` prefix handling, no inline-comment
//!   stripping;
//! - entries come out in file order; a duplicate key yields two entries (the
//!   last one wins wherever they are applied).
//!
//! # The one addition: a double-quoted value may span lines
//!
//! A line whose trimmed value starts with `"` and holds no other `"` opens a
//! multiline value when a later line closes it. The value is the text
//! between the two quotes as written: from right after the opening quote,
//! through the following lines verbatim (blank lines, `#` lines and lines
//! holding `=` included), up to the **first** later line that ends with `"`
//! once trailing whitespace is trimmed; the value ends before that quote.
//! Lines are joined with `\n` (a CRLF file gives `\n` too: `\r\n` is the line
//! break, as in upstream's split) and nothing is unescaped, so a PEM or a
//! JSON document pasted between quotes keeps its bytes.
//!
//! Upstream read such an opener as a one-line value that starts with `"`
//! and then took the following lines as entries of their own or skipped
//! them: the truncated PEM of issue 13. Every file without a closed
//! multiline value reads exactly as upstream reads it.
//!
//! # What the grammar cannot carry: [`Problem`]s
//!
//! [`parse`] reports, by 1-based line number and never with a value:
//!
//! - [`ProblemKind::UnclosedQuote`]: an opener that no later line closes.
//!   That line, and every later one, is still read the upstream way (the
//!   value keeps its leading `"`);
//! - [`ProblemKind::NoEquals`]: a line outside any multiline value that is
//!   neither blank, a comment nor `KEY=value`. Upstream skipped it without a
//!   word; usually it is the rest of a multiline value written without
//!   double quotes.
//!
//! Who refuses: `sync` and import refuse a file with any problem before
//! their first write. The runtime library ignores problems and reads what it
//! can, so it keeps reading every bundle upstream's libraries read.
//!
//! # Writing
//!
//! [`render`] (for import) emits only lines [`parse`] reads back byte for
//! byte, and refuses, naming the key and never the value, what this grammar
//! cannot carry: see [`RenderError`].
//!
//! # Machine-dependent steps
//!
//! Placeholder expansion ([`expand_placeholders`]) and file references
//! ([`file_reference_stem`]) are separate steps because they depend on the
//! machine that runs them: `sync` applies them on the operator's machine,
//! the runtime library does not (the placeholders name paths on the pusher's
//! machine, and a referenced file already travels in the bundle as an asset).
//!
//! Values are secrets: they live in [`Zeroizing`] buffers and never appear in
//! `Debug` output or in errors.

use std::fmt;

use vsync_crypto::Zeroizing;

/// The largest `.env` file read: far above any real one, small enough that
/// a wrong path (a disk image, `/dev/zero`) fails instead of filling memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One `KEY=value` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, trimmed.
    pub key: String,
    /// The value, trimmed and unquoted (a multiline value: the text between
    /// its quotes); wiped on drop.
    pub value: Zeroizing<String>,
    /// The 1-based line holding the key.
    pub line: usize,
    /// The 1-based line holding the closing quote of a multiline value;
    /// `line` for every other entry.
    pub last_line: usize,
}

impl Entry {
    /// Whether the value spans lines.
    pub fn is_multiline(&self) -> bool {
        self.last_line > self.line
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Entry({}=<redacted>, lines {}..={})",
            self.key, self.line, self.last_line
        )
    }
}

/// What is wrong with a line the grammar cannot read as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// A value opens with `"` and no later line closes it.
    UnclosedQuote,
    /// Not blank, not a comment, no `=`, and not inside a multiline value.
    NoEquals,
}

impl ProblemKind {
    /// What is wrong, in words.
    pub fn describe(self) -> &'static str {
        match self {
            ProblemKind::UnclosedQuote => {
                "a value opens with a double quote that no later line closes"
            }
            ProblemKind::NoEquals => "neither KEY=value, a # comment nor blank",
        }
    }

    /// What to change.
    pub fn fix(self) -> &'static str {
        match self {
            ProblemKind::UnclosedQuote => {
                "close the quote at the end of a later line, or quote the value on one line (a value that starts with \" goes in single quotes)"
            }
            ProblemKind::NoEquals => {
                "write KEY=value or start the line with #; if it continues the value above, put that whole value in double quotes"
            }
        }
    }
}

/// A line the grammar cannot read as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// Everything [`parse`] read, and the lines it could not read as written.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The entries, in file order.
    pub entries: Vec<Entry>,
    /// The problems, in line order.
    pub problems: Vec<Problem>,
}

/// One message per kind of problem, naming every line and what to change,
/// e.g. `lines 3, 7–9: neither KEY=value, … ; write KEY=value …`. Empty when
/// there is no problem.
pub fn summarize(problems: &[Problem]) -> Vec<String> {
    let mut kinds: Vec<ProblemKind> = problems.iter().map(|problem| problem.kind).collect();
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let lines: Vec<usize> = problems
                .iter()
                .filter(|problem| problem.kind == kind)
                .map(|problem| problem.line)
                .collect();
            format!("{}: {}; {}", line_list(&lines), kind.describe(), kind.fix())
        })
        .collect()
}

/// `line 3`, or `lines 3, 5, 7–30` (runs of consecutive lines collapsed,
/// so an unquoted 30-line PEM stays one readable message).
fn line_list(lines: &[usize]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let first = lines[index];
        let mut last = first;
        while index + 1 < lines.len() && lines[index + 1] == last + 1 {
            index += 1;
            last = lines[index];
        }
        index += 1;
        runs.push(if last == first {
            first.to_string()
        } else {
            format!("{first}–{last}")
        });
    }
    let noun = if lines.len() == 1 { "line" } else { "lines" };
    format!("{noun} {}", runs.join(", "))
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

fn js_trim_end(text: &str) -> &str {
    text.trim_end_matches(is_js_whitespace)
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

/// Upstream's line split, `\r?\n`: the `\r` belongs to the line break.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
}

/// Whether a trimmed value opens a multiline value: a leading `"` and no
/// other `"` (so it is not a one-line quoted value either).
fn opens_multiline(trimmed_value: &str) -> bool {
    trimmed_value
        .strip_prefix('"')
        .is_some_and(|rest| !rest.contains('"'))
}

/// Whether a line closes an open multiline value.
fn closes_multiline(raw_line: &str) -> bool {
    js_trim_end(raw_line).ends_with('"')
}

/// Parses the text of a `.env` file (see the module documentation).
pub fn parse(text: &str) -> Parsed {
    let lines: Vec<&str> = split_lines(text).collect();
    // next_close[i]: the first line at or after i that closes a multiline
    // value. Computed once, so an unclosed opener costs no rescan of the
    // rest of the file (the parse stays linear on hostile input).
    let mut next_close = vec![None; lines.len() + 1];
    for index in (0..lines.len()).rev() {
        next_close[index] = if closes_multiline(lines[index]) {
            Some(index)
        } else {
            next_close[index + 1]
        };
    }

    let mut parsed = Parsed::default();
    let mut index = 0;
    while index < lines.len() {
        let raw = lines[index];
        let number = index + 1;
        index += 1;
        let line = js_trim(raw);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = line.split_once('=') else {
            parsed.problems.push(Problem {
                line: number,
                kind: ProblemKind::NoEquals,
            });
            continue;
        };
        let key = js_trim(key).to_owned();
        let value = js_trim(rest);
        if opens_multiline(value) {
            if let Some(close) = next_close[index] {
                parsed.entries.push(Entry {
                    key,
                    value: multiline_value(raw, &lines[index..=close]),
                    line: number,
                    last_line: close + 1,
                });
                index = close + 1;
                continue;
            }
            parsed.problems.push(Problem {
                line: number,
                kind: ProblemKind::UnclosedQuote,
            });
        }
        parsed.entries.push(Entry {
            key,
            value: Zeroizing::new(unquote(value).to_owned()),
            line: number,
            last_line: number,
        });
    }
    parsed
}

/// The text between the opening quote on `opener` and the closing quote at
/// the end of the last of `following`, the lines joined with `\n`.
fn multiline_value(opener: &str, following: &[&str]) -> Zeroizing<String> {
    // The first `=` and the first `"` after it are the same in the raw line
    // as in the trimmed one: trimming removes only whitespace.
    let (_, after_equals) = opener.split_once('=').expect("the opener holds `=`");
    let after_quote = &after_equals.trim_start_matches(is_js_whitespace)[1..];
    let (last, middle) = following.split_last().expect("a closing line");
    let closing = js_trim_end(last);
    let closing = &closing[..closing.len() - 1];
    // Reserved exactly, so the buffer never reallocates and leaves no copy
    // of the secret behind.
    let length = after_quote.len()
        + middle.iter().map(|line| 1 + line.len()).sum::<usize>()
        + 1
        + closing.len();
    let mut value = Zeroizing::new(String::with_capacity(length));
    value.push_str(after_quote);
    for line in middle {
        value.push('\n');
        value.push_str(line);
    }
    value.push('\n');
    value.push_str(closing);
    value
}

/// Why [`render`] cannot write an entry. Names the key, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The key cannot be written as a key.
    #[error("key {key:?} cannot be written to a .env file: it {reason}")]
    Key {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value cannot be carried by the grammar.
    #[error("the value of {key} cannot be written to a .env file: it {reason}")]
    Value {
        /// The key.
        key: String,
        /// What is wrong with the value, without the value.
        reason: &'static str,
    },
}

/// Writes entries as `.env` text that [`parse`] reads back byte for byte,
/// with no problem: `KEY=value` when the value survives the trim and the
/// quote stripping as is, `KEY="value"` for any other one-line value, and
/// `KEY="first line` … `last line"` for a value with newlines.
pub fn render<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Zeroizing<String>, RenderError> {
    let mut out = Zeroizing::new(String::new());
    for (key, value) in entries {
        if let Some(reason) = key_problem(key) {
            return Err(RenderError::Key {
                key: key.to_owned(),
                reason,
            });
        }
        if let Some(reason) = value_problem(value) {
            return Err(RenderError::Value {
                key: key.to_owned(),
                reason,
            });
        }
        let bare =
            !value.contains('\n') && js_trim(value) == value && !value.starts_with(['"', '\'']);
        // Grow by hand so the buffer holding secrets is reallocated (and
        // the old one wiped) rather than left behind by `String`'s growth.
        let needed = out.len() + key.len() + value.len() + 4;
        if needed > out.capacity() {
            let mut grown = Zeroizing::new(String::with_capacity(needed.max(2 * out.capacity())));
            grown.push_str(&out);
            out = grown;
        }
        out.push_str(key);
        out.push('=');
        if bare {
            out.push_str(value);
        } else {
            out.push('"');
            out.push_str(value);
            out.push('"');
        }
        out.push('\n');
    }
    Ok(out)
}

/// Why `key` cannot be written as a `.env` key, if it cannot.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    key_problem(key).map_or(Ok(()), Err)
}

/// Why `value` cannot be carried by the grammar, if it cannot (the reason
/// names no part of the value).
pub fn check_value(value: &str) -> Result<(), &'static str> {
    value_problem(value).map_or(Ok(()), Err)
}

/// Why [`update`] cannot rewrite a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The file has lines the grammar cannot read as written; rewriting it
    /// could move or lose them.
    #[error("{}", summarize(.0).join("; "))]
    Problems(Vec<Problem>),
    /// A new value cannot be written.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// `text` with `changes` applied (`Some(value)`: set, `None`: delete), every
/// other byte kept: comments, blank lines, order and untouched entries stay
/// as written. A changed key's entry is rewritten in place (its last
/// occurrence, the one that wins; earlier ones are left, still shadowed), a
/// deleted key loses every occurrence, and keys the file does not hold are
/// appended in one block at the end, in the order given (a key changed
/// twice takes its later change). Refuses a file the
/// grammar cannot read as written, and values it cannot carry, before
/// producing anything.
pub fn update<'a>(
    text: &str,
    changes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<Zeroizing<String>, UpdateError> {
    // A key changed twice: the later change wins.
    let mut changes: Vec<(&str, Option<&str>)> = changes.into_iter().collect();
    let mut seen = std::collections::HashSet::new();
    changes.reverse();
    changes.retain(|(key, _)| seen.insert(*key));
    changes.reverse();
    let parsed = parse(text);
    if !parsed.problems.is_empty() {
        return Err(UpdateError::Problems(parsed.problems));
    }
    // What happens to each line: replaced by a rendered entry, dropped, or
    // (absent from both maps) copied.
    let mut replaced: std::collections::HashMap<usize, Zeroizing<String>> = Default::default();
    let mut dropped = std::collections::HashSet::new();
    let mut appended = Vec::new();
    for &(key, value) in &changes {
        let occurrences: Vec<&Entry> = parsed.entries.iter().filter(|e| e.key == key).collect();
        if let Some(value) = value {
            let rendered = render([(key, value)])?;
            match occurrences.last() {
                Some(last) => {
                    dropped.extend(last.line + 1..=last.last_line);
                    replaced.insert(last.line, rendered);
                }
                None => appended.push((key, value)),
            }
        } else {
            for entry in occurrences {
                dropped.extend(entry.line..=entry.last_line);
            }
        }
    }
    let appended = render(appended)?;

    // Reserved up front (the result is never longer), so the buffer that
    // holds every value never reallocates and leaves a copy behind.
    let capacity =
        text.len() + replaced.values().map(|line| line.len()).sum::<usize>() + appended.len() + 1;
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        if let Some(rendered) = replaced.get(&number) {
            out.push_str(rendered.trim_end_matches('\n'));
            // Keep the file's own line ending, and a last line without one.
            out.push_str(&line[line.trim_end_matches(['\r', '\n']).len()..]);
        } else if !dropped.contains(&number) {
            out.push_str(line);
        }
    }
    if !appended.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&appended);
    }
    Ok(out)
}

fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if key.contains('=') {
        Some("contains `=`, which ends a key")
    } else if key.contains('\n') {
        Some("contains a line break")
    } else if js_trim(key) != key {
        Some("starts or ends with whitespace, which is trimmed")
    } else if key.starts_with('#') {
        Some("starts with `#`, which makes the line a comment")
    } else {
        None
    }
}

fn value_problem(value: &str) -> Option<&'static str> {
    let lines: Vec<&str> = value.split('\n').collect();
    let [first, middle @ .., _last] = lines.as_slice() else {
        // One line: quoting carries anything.
        return None;
    };
    if value.contains("\r\n") {
        Some("has a carriage return before a line break (`\\r\\n` is read as the line break)")
    } else if first.contains('"') {
        Some("spans lines and its first line holds `\"`, which would not open a multiline value")
    } else if middle.iter().any(|line| closes_multiline(line)) {
        Some("spans lines and a line before its last ends with `\"`, which would close it early")
    } else {
        None
    }
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
    use proptest::prelude::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        pairs_of(&parse(text).entries)
    }

    fn pairs_of(entries: &[Entry]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|entry| (entry.key.clone(), entry.value.to_string()))
            .collect()
    }

    fn p(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    fn problem(line: usize, kind: ProblemKind) -> Problem {
        Problem { line, kind }
    }

    /// Upstream's line rules as `src/envfile.ts` applies them (and as this
    /// module did before multiline values): the model the grammar must
    /// agree with wherever no multiline value is read.
    fn upstream_parse(text: &str) -> Vec<(String, String)> {
        text.split('\n')
            .filter_map(|line| {
                let line = js_trim(line);
                if line.is_empty() || line.starts_with('#') {
                    return None;
                }
                let (key, value) = line.split_once('=')?;
                Some(p(js_trim(key), unquote(js_trim(value))))
            })
            .collect()
    }

    #[test]
    fn line_rules() {
        let text = "\u{feff}# comment\r\n\
                    DATABASE_URL=postgres://u:p@h/db?a=b\r\n\
                    \n   \t\n\
                      SPACED  =  value with spaces  \n\
                    DOUBLE=\"quoted value\"\n\
                    SINGLE='single'\n\
                    EMPTY=\n\
                    EMPTY_QUOTES=\"\"\n\
                    export EXPORTED=kept as a key with the prefix\n\
                    INLINE=value # not a comment\n\
                    ESCAPES=\"a\\nb\"\n\
                    NESTED=\"'inner'\"\n\
                    SINGLE_OPEN='never closed\n\
                    DUP=first\n\
                    DUP=second";
        let parsed = parse(text);
        assert_eq!(
            pairs_of(&parsed.entries),
            [
                p("DATABASE_URL", "postgres://u:p@h/db?a=b"),
                p("SPACED", "value with spaces"),
                p("DOUBLE", "quoted value"),
                p("SINGLE", "single"),
                p("EMPTY", ""),
                p("EMPTY_QUOTES", ""),
                p("export EXPORTED", "kept as a key with the prefix"),
                p("INLINE", "value # not a comment"),
                p("ESCAPES", "a\\nb"),
                p("NESTED", "'inner'"),
                p("SINGLE_OPEN", "'never closed"),
                p("DUP", "first"),
                p("DUP", "second"),
            ]
        );
        assert_eq!(parsed.problems, []);
        assert_eq!(pairs(text), upstream_parse(text));
        let lines: Vec<usize> = parsed.entries.iter().map(|entry| entry.line).collect();
        assert_eq!(lines, [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    }

    #[test]
    fn js_trim_differs_from_rust_trim_where_upstream_does() {
        assert_eq!(pairs("\u{a0}K\u{3000}=\u{feff}v\u{2028}"), [p("K", "v")]);
        // U+0085 (NEL) is whitespace to Rust but not to JavaScript.
        assert_eq!(pairs("K=v\u{85}"), [p("K", "v\u{85}")]);
        // A lone CR is not a line break.
        assert_eq!(pairs("A=1\rB=2"), [p("A", "1\rB=2")]);
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
                       MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n\
                       q0B8mH+/abc=\n\
                       -----END PRIVATE KEY-----";

    #[test]
    fn a_double_quoted_pem_spans_its_lines_byte_for_byte() {
        let text = format!("BEFORE=1\nPEM=\"{PEM}\"\nAFTER=2\n");
        let parsed = parse(&text);
        assert_eq!(
            pairs_of(&parsed.entries),
            [p("BEFORE", "1"), p("PEM", PEM), p("AFTER", "2")]
        );
        assert_eq!(parsed.problems, []);
        let pem = &parsed.entries[1];
        assert!(pem.is_multiline());
        assert_eq!((pem.line, pem.last_line), (2, 5));
        assert_eq!(parsed.entries[2].line, 6);
        // What upstream made of it: the first line, opening quote included,
        // and the base64 line holding `=` as a key of its own.
        assert_eq!(
            upstream_parse(&text)[1..3],
            [
                p("PEM", "\"-----BEGIN PRIVATE KEY-----"),
                p("q0B8mH+/abc", ""),
            ]
        );
    }

    #[test]
    fn a_crlf_file_gives_lf_inside_the_value() {
        let text = format!("PEM=\"{PEM}\"\nNEXT=x\n").replace('\n', "\r\n");
        assert_eq!(pairs(&text), [p("PEM", PEM), p("NEXT", "x")]);
    }

    #[test]
    fn a_multiline_value_keeps_inner_whitespace_blank_lines_comments_and_equals() {
        let text = "JSON=\"  {\t\n\n  # not a comment\n  \"a\": \"b=c\",\n  X=1\n}  \"  \t\nK=v";
        let parsed = parse(text);
        assert_eq!(
            pairs_of(&parsed.entries),
            [
                p(
                    "JSON",
                    "  {\t\n\n  # not a comment\n  \"a\": \"b=c\",\n  X=1\n}  "
                ),
                p("K", "v")
            ]
        );
        assert_eq!(parsed.problems, []);
        assert_eq!(parsed.entries[0].last_line, 6);
    }

    #[test]
    fn a_quote_alone_opens_a_value_that_starts_with_a_newline() {
        assert_eq!(pairs("K=\"\nline\n\"\n"), [p("K", "\nline\n")]);
        assert_eq!(pairs("K=\"\n\"\n"), [p("K", "\n")]);
    }

    #[test]
    fn the_first_line_ending_in_a_quote_closes_the_value() {
        assert_eq!(
            pairs("A=\"one\ntwo\"\nthree\"\n"),
            [p("A", "one\ntwo")],
            "the rest is another line"
        );
        assert_eq!(
            parse("A=\"one\ntwo\"\nthree\"\n").problems,
            [problem(3, ProblemKind::NoEquals)]
        );
    }

    #[test]
    fn a_value_with_equals_hash_and_quotes_on_one_line() {
        assert_eq!(
            pairs("K=\"a=b # c \"d\" 'e'\"\nL='\"x\"'\nM=a\"b\"c"),
            [
                p("K", "a=b # c \"d\" 'e'"),
                p("L", "\"x\""),
                p("M", "a\"b\"c")
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_is_reported_and_read_the_upstream_way() {
        // `ONE_QUOTE="` comes first: a line ending in `"` closes any opener
        // above it.
        let text = "ONE_QUOTE=\"\nA=1\nMISMATCHED=\"open'\nPEM=\"-----BEGIN KEY-----\nMIIB\n-----END KEY-----\nB=2\n";
        let parsed = parse(text);
        assert_eq!(pairs_of(&parsed.entries), upstream_parse(text));
        assert_eq!(
            pairs_of(&parsed.entries),
            [
                p("ONE_QUOTE", "\""),
                p("A", "1"),
                p("MISMATCHED", "\"open'"),
                p("PEM", "\"-----BEGIN KEY-----"),
                p("B", "2")
            ]
        );
        assert_eq!(
            parsed.problems,
            [
                problem(1, ProblemKind::UnclosedQuote),
                problem(3, ProblemKind::UnclosedQuote),
                problem(4, ProblemKind::UnclosedQuote),
                problem(5, ProblemKind::NoEquals),
                problem(6, ProblemKind::NoEquals),
            ]
        );
        assert_eq!(
            summarize(&parsed.problems),
            [
                format!(
                    "lines 1, 3–4: {}; {}",
                    ProblemKind::UnclosedQuote.describe(),
                    ProblemKind::UnclosedQuote.fix()
                ),
                format!(
                    "lines 5–6: {}; {}",
                    ProblemKind::NoEquals.describe(),
                    ProblemKind::NoEquals.fix()
                ),
            ]
        );
    }

    #[test]
    fn a_stray_line_is_reported_and_skipped() {
        let parsed = parse("A=1\nno equals sign here\n\n# fine\nB=2\nstray\nC=3\n  also\n");
        assert_eq!(
            pairs_of(&parsed.entries),
            [p("A", "1"), p("B", "2"), p("C", "3")]
        );
        let lines: Vec<usize> = parsed.problems.iter().map(|problem| problem.line).collect();
        assert_eq!(lines, [2, 6, 8]);
        assert_eq!(
            summarize(&parsed.problems)[0],
            format!(
                "lines 2, 6, 8: {}; {}",
                ProblemKind::NoEquals.describe(),
                ProblemKind::NoEquals.fix()
            )
        );
        assert_eq!(
            summarize(&[problem(9, ProblemKind::NoEquals)])[0],
            format!(
                "line 9: {}; {}",
                ProblemKind::NoEquals.describe(),
                ProblemKind::NoEquals.fix()
            )
        );
    }

    #[test]
    fn debug_redacts_values() {
        let parsed = parse("TOKEN=hunter2\nPEM=\"secret\nmaterial\"\nbroken\nX=\"open");
        let shown = format!("{parsed:?}");
        assert!(shown.contains("TOKEN"), "{shown}");
        for secret in ["hunter2", "secret", "material", "broken", "open"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn render_picks_the_plainest_form_that_reads_back() {
        let text = render([
            ("PLAIN", "postgres://u:p@h/db?a=b#frag"),
            ("EMPTY", ""),
            ("SPACED", " padded\u{a0}"),
            ("QUOTED", "\"starts with a quote"),
            ("SINGLE", "'x'"),
            ("PEM", PEM),
        ])
        .unwrap();
        assert_eq!(
            text.as_str(),
            format!(
                "PLAIN=postgres://u:p@h/db?a=b#frag\nEMPTY=\nSPACED=\" padded\u{a0}\"\n\
                 QUOTED=\"\"starts with a quote\"\nSINGLE=\"'x'\"\nPEM=\"{PEM}\"\n"
            )
        );
        let parsed = parse(&text);
        assert_eq!(parsed.problems, []);
        assert_eq!(
            pairs_of(&parsed.entries),
            [
                p("PLAIN", "postgres://u:p@h/db?a=b#frag"),
                p("EMPTY", ""),
                p("SPACED", " padded\u{a0}"),
                p("QUOTED", "\"starts with a quote"),
                p("SINGLE", "'x'"),
                p("PEM", PEM),
            ]
        );
    }

    #[test]
    fn render_refuses_what_the_grammar_cannot_carry_naming_the_key_only() {
        for key in ["", "A=B", "A\nB", " A", "A\t", "\u{feff}A", "#A"] {
            let err = render([(key, "v")]).unwrap_err();
            assert!(matches!(err, RenderError::Key { .. }), "{key:?}: {err}");
        }
        for value in [
            "xyzzy \"plugh\nquux",
            "xyzzy\r\nquux",
            "xyzzy\nplugh\"  \nquux",
            "xyzzy\nplugh\"\u{3000}\nquux",
        ] {
            let err = render([("SECRET_KEY", value)]).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("SECRET_KEY"), "{shown}");
            for word in ["xyzzy", "plugh", "quux"] {
                assert!(!shown.contains(word), "{shown}");
            }
        }
        // The last line may end with a quote; a lone CR elsewhere is kept.
        for value in ["a\nb\"", "a\rb\nc\r", "a\n\"b\" x\n\"c"] {
            let text = render([("K", value)]).unwrap();
            assert_eq!(pairs(&text), [p("K", value)], "{value:?}");
        }
    }

    #[test]
    fn update_rewrites_in_place_and_keeps_everything_else() {
        let text = "# database\r\nDB_URL=postgres://old\r\n\r\nA=1\nPEM=\"-----BEGIN\nold\n-----END\"\n# tail comment\nA=2\nGONE=x\nLAST=keep";
        let updated = update(
            text,
            [
                ("DB_URL", Some("postgres://new?a=b#c")),
                ("PEM", Some(PEM)),
                ("A", Some("3")),
                ("GONE", None),
                ("NEW_ONE", Some(" spaced ")),
                ("NEW_TWO", Some("")),
            ],
        )
        .unwrap();
        assert_eq!(
            updated.as_str(),
            format!(
                "# database\r\nDB_URL=postgres://new?a=b#c\r\n\r\nA=1\nPEM=\"{PEM}\"\n# tail comment\nA=3\nLAST=keep\nNEW_ONE=\" spaced \"\nNEW_TWO=\n"
            )
        );
        // Nothing to change: the same bytes.
        assert_eq!(update(text, []).unwrap().as_str(), text);
    }

    #[test]
    fn update_refuses_a_file_it_cannot_read_as_written_and_values_it_cannot_carry() {
        let err = update("A=1\nstray line\n", [("A", Some("2"))]).unwrap_err();
        assert_eq!(
            err,
            UpdateError::Problems(vec![problem(2, ProblemKind::NoEquals)])
        );
        let err = update("A=1\n", [("SECRET", Some("xyzzy \"plugh\nquux"))]).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            shown.contains("SECRET") && !shown.contains("plugh"),
            "{shown}"
        );
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

    /// Fragments that exercise every rule: quotes, `=`, `#`, JavaScript-only
    /// and Rust-only whitespace, CR, LF and CRLF, a PEM line.
    const PIECES: &[&str] = &[
        "a",
        "Z9",
        "_",
        "é",
        "=",
        "==",
        "#",
        "\"",
        "\"",
        "'",
        " ",
        "\t",
        "\r",
        "\n",
        "\n",
        "\r\n",
        "\u{a0}",
        "\u{feff}",
        "\u{2028}",
        "\u{3000}",
        "\u{85}",
        "export ",
        "-----BEGIN KEY-----",
    ];

    fn text_of(max_pieces: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..max_pieces)
            .prop_map(|pieces| pieces.concat())
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[A-Za-z_][A-Za-z0-9_.-]{0,8}",
            1 => text_of(4),
        ]
    }

    /// The writer's contract, stated independently of its code: keys are
    /// non-empty, untrimmed, without `=` or a line break and not comments;
    /// one-line values always fit; a multiline value fits unless its first
    /// line holds `"`, a `\r` precedes a line break, or a line before the
    /// last ends with `"` (trailing whitespace aside).
    fn writable(key: &str, value: &str) -> bool {
        let key_ok = !key.is_empty()
            && !key.contains(['=', '\n'])
            && !key.starts_with('#')
            && key.trim_matches(is_js_whitespace) == key;
        let lines: Vec<&str> = value.split('\n').collect();
        let value_ok = lines.len() == 1
            || (!value.contains("\r\n")
                && !lines[0].contains('"')
                && lines[1..lines.len() - 1]
                    .iter()
                    .all(|line| !line.trim_end_matches(is_js_whitespace).ends_with('"')));
        key_ok && value_ok
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn rendered_entries_parse_back_byte_for_byte(
            entries in prop::collection::vec((key(), text_of(14)), 0..6)
        ) {
            let borrowed = entries.iter().map(|(key, value)| (key.as_str(), value.as_str()));
            let expected_ok = entries.iter().all(|(key, value)| writable(key, value));
            match render(borrowed) {
                Ok(text) => {
                    prop_assert!(expected_ok, "render accepted what the contract refuses");
                    let parsed = parse(&text);
                    prop_assert_eq!(parsed.problems, []);
                    prop_assert_eq!(pairs_of(&parsed.entries), entries);
                }
                Err(err) => prop_assert!(!expected_ok, "render refused a writable entry: {}", err),
            }
        }

        #[test]
        fn updated_files_read_back_with_the_changes_and_nothing_else(
            existing in prop::collection::vec((key(), text_of(10)), 0..6),
            comments in prop::collection::vec("# [a-z =\"]{0,6}", 0..4),
            changes in prop::collection::vec((key(), prop::option::of(text_of(12))), 0..5),
        ) {
            let existing: Vec<_> = existing.into_iter().filter(|(k, v)| writable(k, v)).collect();
            let changes: Vec<_> = changes
                .into_iter()
                .filter(|(k, v)| writable(k, v.as_deref().unwrap_or_default()))
                .collect();
            // A file of entries with comments and blank lines between them.
            let mut text = String::new();
            for (index, (key, value)) in existing.iter().enumerate() {
                if let Some(comment) = comments.get(index) {
                    text.push_str(comment);
                    text.push_str("\n\n");
                }
                text.push_str(&render([(key.as_str(), value.as_str())]).unwrap());
            }
            let mut expected: Vec<(String, String)> = Vec::new();
            for (key, value) in &existing {
                expected.retain(|(k, _)| k != key);
                expected.push((key.clone(), value.clone()));
            }
            for (key, value) in &changes {
                match value {
                    Some(value) => match expected.iter_mut().find(|(k, _)| k == key) {
                        Some(slot) => slot.1 = value.clone(),
                        None => expected.push((key.clone(), value.clone())),
                    },
                    None => expected.retain(|(k, _)| k != key),
                }
            }
            let updated = update(
                &text,
                changes.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
            )
            .unwrap();
            let parsed = parse(&updated);
            prop_assert_eq!(parsed.problems, []);
            // Last occurrence wins, as every reader applies them.
            let mut read: Vec<(String, String)> = Vec::new();
            for (key, value) in pairs_of(&parsed.entries) {
                read.retain(|(k, _)| *k != key);
                read.push((key, value));
            }
            read.sort();
            expected.sort();
            prop_assert_eq!(read, expected);
            // Every comment survives, in order.
            let mut lines = updated.split('\n');
            for comment in text.split('\n').filter(|l| l.starts_with("# ")) {
                prop_assert!(lines.any(|line| line == comment), "lost {:?}", comment);
            }
        }

        #[test]
        fn without_a_multiline_value_the_grammar_is_upstreams(text in text_of(60)) {
            let parsed = parse(&text);
            if parsed.entries.iter().all(|entry| !entry.is_multiline()) {
                prop_assert_eq!(pairs_of(&parsed.entries), upstream_parse(&text));
            }
        }

        #[test]
        fn parse_never_panics_and_line_numbers_stay_in_the_file(
            text in prop_oneof![any::<String>(), text_of(80)]
        ) {
            let parsed = parse(&text);
            let line_count = text.split('\n').count();
            for entry in &parsed.entries {
                prop_assert!(1 <= entry.line && entry.line <= entry.last_line);
                prop_assert!(entry.last_line <= line_count);
            }
            for found in &parsed.problems {
                prop_assert!(1 <= found.line && found.line <= line_count);
            }
            let _ = summarize(&parsed.problems);
        }
    }
}
