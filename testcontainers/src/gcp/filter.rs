//! The `filter` of `secrets.list` and `versions.list`: Google's
//! List-operation filtering grammar, the part of it the fake evaluates.
//!
//! Terms are `field:value` or `field=value`, a value optionally
//! double-quoted; terms joined by `OR` form a group, groups joined by `AND`
//! (or plain whitespace) must all hold — `OR` binds tighter, as in Google's
//! grammar. Fields:
//!
//! - secrets: `name:<pattern>` (the id contains the pattern, `*` standing
//!   for any run of characters: `name:APIKEY*prod`), `labels.<key>=<value>`
//!   and `labels.<key>:*` (the label is present);
//! - versions: `state:<STATE>` or `state=<STATE>` (`ENABLED`, `DISABLED`,
//!   `DESTROYED`).
//!
//! Anything else — another field or operator, `NOT`, parentheses, a
//! dangling `AND` — is refused the way Google refuses a filter it cannot
//! parse: `400 INVALID_ARGUMENT`, here with the reason.

/// What a filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    Secrets,
    Versions,
}

/// One condition.
#[derive(Debug, PartialEq, Eq)]
enum Term {
    /// The secret id contains the pattern (`*`: any run of characters).
    NameHas(String),
    /// The label `key` is present, with `value` when given.
    Label { key: String, value: Option<String> },
    /// The version is in this state.
    State(String),
}

/// A parsed filter: every group must hold, and a group holds when one of
/// its terms does.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Filter {
    groups: Vec<Vec<Term>>,
}

/// What a term is checked against.
pub(super) struct Subject<'a> {
    /// The secret id.
    pub id: &'a str,
    /// The secret's labels (versions: none).
    pub labels: &'a std::collections::BTreeMap<String, String>,
    /// The version's state (secrets: none).
    pub state: Option<&'static str>,
}

impl Filter {
    /// Parses `text` for `listing`, or says why it cannot.
    pub(super) fn parse(text: &str, listing: Listing) -> Result<Filter, String> {
        let mut groups: Vec<Vec<Term>> = Vec::new();
        let mut after_or = false;
        for token in tokens(text)? {
            match token.as_str() {
                "AND" | "OR" if after_or || groups.last().is_none_or(Vec::is_empty) => {
                    return Err(format!("{token} has nothing on its left"));
                }
                "AND" => groups.push(Vec::new()),
                "OR" => after_or = true,
                "NOT" => return Err("NOT is not supported by this fake".into()),
                _ => {
                    let term = term(&token, listing)?;
                    match groups.last_mut() {
                        Some(group) if after_or || group.is_empty() => group.push(term),
                        // Whitespace between terms is an implicit AND.
                        _ => groups.push(vec![term]),
                    }
                    after_or = false;
                }
            }
        }
        if after_or || groups.last().is_some_and(Vec::is_empty) {
            return Err("the filter ends with an operator".into());
        }
        Ok(Filter { groups })
    }

    /// Whether `subject` passes.
    pub(super) fn matches(&self, subject: &Subject<'_>) -> bool {
        self.groups
            .iter()
            .all(|group| group.iter().any(|term| term.holds(subject)))
    }
}

impl Term {
    fn holds(&self, subject: &Subject<'_>) -> bool {
        match self {
            Term::NameHas(pattern) => contains_pattern(subject.id, pattern),
            Term::Label { key, value } => subject
                .labels
                .get(key)
                .is_some_and(|found| value.as_ref().is_none_or(|value| value == found)),
            Term::State(state) => subject.state == Some(state.as_str()),
        }
    }
}

/// Whether `text` contains `pattern`'s pieces (split at `*`) in order.
fn contains_pattern(text: &str, pattern: &str) -> bool {
    let mut rest = text;
    for piece in pattern.split('*') {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The filter's words: split at whitespace outside double quotes.
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '(' | ')' if !quoted => {
                return Err("parentheses are not supported by this fake".into());
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

/// One `field<op>value` term.
fn term(token: &str, listing: Listing) -> Result<Term, String> {
    let split = token
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
        .ok_or_else(|| format!("{token} is not a comparison"))?;
    let (field, rest) = token.split_at(split);
    let (op, value) = rest.split_at(1);
    if op != ":" && op != "=" {
        return Err(format!(
            "the operator in {token} is not supported by this fake"
        ));
    }
    let value = match value.strip_prefix('"') {
        Some(quoted) => quoted
            .strip_suffix('"')
            .ok_or_else(|| format!("{token} has a stray quote"))?,
        None => value,
    };
    if field.is_empty() || value.is_empty() {
        return Err(format!("{token} lacks a field or a value"));
    }
    match (listing, field, op) {
        (Listing::Secrets, "name", ":") => Ok(Term::NameHas(value.to_owned())),
        (Listing::Secrets, field, _) if field.starts_with("labels.") => {
            let key = &field["labels.".len()..];
            match (op, value) {
                (_, _) if key.is_empty() => Err(format!("{token} names no label")),
                (":", "*") => Ok(Term::Label {
                    key: key.to_owned(),
                    value: None,
                }),
                ("=", value) => Ok(Term::Label {
                    key: key.to_owned(),
                    value: Some(value.to_owned()),
                }),
                _ => Err(format!("{token}: labels take =value or :*")),
            }
        }
        (Listing::Versions, "state", _) => match value {
            "ENABLED" | "DISABLED" | "DESTROYED" => Ok(Term::State(value.to_owned())),
            _ => Err(format!("{value} is not a version state")),
        },
        _ => Err(format!("{field}{op} cannot filter this listing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn secret<'a>(id: &'a str, labels: &'a BTreeMap<String, String>) -> Subject<'a> {
        Subject {
            id,
            labels,
            state: None,
        }
    }

    #[test]
    fn or_binds_tighter_than_and() {
        let team: BTreeMap<String, String> = [("team".to_owned(), "api".to_owned())].into();
        let none = BTreeMap::new();
        let filter =
            Filter::parse("labels.team=api name:app_ OR name:web_", Listing::Secrets).unwrap();
        assert!(filter.matches(&secret("app_db", &team)));
        assert!(filter.matches(&secret("web_db", &team)));
        assert!(!filter.matches(&secret("cli_db", &team)));
        assert!(!filter.matches(&secret("app_db", &none)));
        let present = Filter::parse("labels.team:* AND name:\"DB\"", Listing::Secrets).unwrap();
        assert!(present.matches(&secret("app_DB", &team)));
        assert!(!present.matches(&secret("app_db", &team)));
    }

    #[test]
    fn name_patterns_take_stars() {
        assert!(contains_pattern("APIKEY_prod", "APIKEY*prod"));
        assert!(!contains_pattern("prod_APIKEY", "APIKEY*prod"));
        assert!(contains_pattern("x", "*"));
    }

    #[test]
    fn versions_filter_by_state() {
        let filter = Filter::parse("state:ENABLED", Listing::Versions).unwrap();
        let none = BTreeMap::new();
        let version = |state| Subject {
            id: "A",
            labels: &none,
            state: Some(state),
        };
        assert!(filter.matches(&version("ENABLED")));
        assert!(!filter.matches(&version("DISABLED")));
    }

    #[test]
    fn what_it_cannot_parse_is_refused() {
        for (text, listing) in [
            ("labels.team", Listing::Secrets),
            ("labels.team:api", Listing::Secrets),
            ("name=app", Listing::Secrets),
            ("NOT name:a", Listing::Secrets),
            ("(name:a)", Listing::Secrets),
            ("name:a AND", Listing::Secrets),
            ("name:a AND AND name:b", Listing::Secrets),
            ("OR name:a", Listing::Secrets),
            ("name:\"a", Listing::Secrets),
            ("create_time>2021-01-01", Listing::Secrets),
            ("state:ENABLED", Listing::Secrets),
            ("state:ON", Listing::Versions),
            ("labels.team=api", Listing::Versions),
        ] {
            assert!(Filter::parse(text, listing).is_err(), "{text}");
        }
    }
}
