//! The `Sink` trait: a platform the vault's secrets are written to (GitHub
//! Actions, a cloud secret manager, Vault KV).
//!
//! A sink declares what it can and cannot do ([`Capabilities`]) so that
//! [`crate::sync`] can refuse a whole sync *before* the first write: names
//! the platform rejects, two vault keys that land on one platform name, a
//! value over the size limit, too many secrets. The sink itself only lists,
//! reads (where the platform allows) and writes; planning, pacing, retries
//! and the record of what was applied live in the engine, once, for every
//! platform.
//!
//! Values travel as [`SecretValue`]: wiped on drop, never printed. A sink's
//! errors carry the platform's status and message, never a value.

use std::fmt;
use std::time::Duration;

use vsync_crypto::Zeroizing;

/// A secret value: bytes (UTF-8 for everything read from `.env` files),
/// wiped on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wraps bytes.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretValue(bytes)
    }

    /// Copies a string.
    pub fn from_text(text: &str) -> Self {
        SecretValue(Zeroizing::new(text.as_bytes().to_vec()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, if it is UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted {} bytes>)", self.0.len())
    }
}

/// What a platform accepts and how it behaves, declared up front so a sync
/// can be planned and refused before anything is written.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Whether stored values can be read back. Write-only platforms
    /// (GitHub Actions) are compared through fingerprints of what vsync
    /// last wrote, and their `revision` to notice edits made elsewhere.
    pub readable: bool,
    /// The platform's secret-name grammar.
    pub names: NameRules,
    /// The largest value the platform stores, in bytes.
    pub max_value_bytes: usize,
    /// How many secrets one target may hold, if the platform caps it.
    pub max_secrets: Option<usize>,
    /// Whether values must be UTF-8 text.
    pub text_only: bool,
    /// Whether the platform stores an empty value.
    pub empty_values: bool,
    /// Whether the platform can label a secret `managed-by=vsync`, so prune
    /// can check ownership on the platform as well as in the sync record.
    pub tags: bool,
    /// What deleting a secret does on this platform.
    pub deletion: Deletion,
    /// How many changes one [`Sink::apply`] call takes.
    pub batch: Batch,
    /// The platform's documented write limits.
    pub rate: RateBudget,
}

/// A platform's secret-name grammar.
#[derive(Debug, Clone)]
pub struct NameRules {
    /// The longest name, in characters.
    pub max_len: usize,
    /// Which characters a name may contain.
    pub alphabet: Alphabet,
    /// Whether a name may start with a digit.
    pub leading_digit: bool,
    /// Prefixes the platform reserves (compared case-insensitively).
    pub reserved_prefixes: &'static [&'static str],
    /// Whether the platform folds case, so `db_pass` and `DB_PASS` are one
    /// secret.
    pub case_insensitive: bool,
    /// AWS: a name ending in `-` and six characters clashes with the suffix
    /// AWS appends to ARNs, so lookups by partial ARN find the wrong secret.
    pub refuses_arn_suffix: bool,
}

/// The characters a secret name may contain.
#[derive(Debug, Clone, Copy)]
pub enum Alphabet {
    /// Any non-empty string without control characters.
    Any,
    /// ASCII letters, digits and the listed punctuation.
    AsciiAlphanumericAnd(&'static str),
}

impl Alphabet {
    fn allows(self, c: char) -> bool {
        match self {
            Alphabet::Any => !c.is_control(),
            Alphabet::AsciiAlphanumericAnd(extra) => c.is_ascii_alphanumeric() || extra.contains(c),
        }
    }

    fn describe(self) -> String {
        match self {
            Alphabet::Any => "any printable characters".into(),
            Alphabet::AsciiAlphanumericAnd("") => "ASCII letters and digits".into(),
            Alphabet::AsciiAlphanumericAnd(extra) => {
                format!(
                    "ASCII letters, digits and {}",
                    extra
                        .chars()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        }
    }
}

impl NameRules {
    /// Why `name` is not a valid secret name on this platform, if it is not.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if name.is_empty() {
            return Err("the name is empty".into());
        }
        let len = name.chars().count();
        if len > self.max_len {
            return Err(format!("{len} characters, the limit is {}", self.max_len));
        }
        if let Some(bad) = name.chars().find(|&c| !self.alphabet.allows(c)) {
            return Err(format!(
                "{bad:?} is not allowed; names may use {}",
                self.alphabet.describe()
            ));
        }
        if !self.leading_digit && name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("names must not start with a digit".into());
        }
        let upper = name.to_ascii_uppercase();
        if let Some(prefix) = self
            .reserved_prefixes
            .iter()
            .find(|p| upper.starts_with(&p.to_ascii_uppercase()))
        {
            return Err(format!("the prefix {prefix} is reserved by the platform"));
        }
        if self.refuses_arn_suffix && has_arn_like_suffix(name) {
            return Err(
                "names ending in a hyphen and six characters clash with the suffix AWS appends to secret ARNs"
                    .into(),
            );
        }
        Ok(())
    }

    /// The key two names collide under: the name itself, or its upper-case
    /// form on a case-insensitive platform.
    pub fn fold(&self, name: &str) -> String {
        if self.case_insensitive {
            name.to_ascii_uppercase()
        } else {
            name.to_owned()
        }
    }
}

fn has_arn_like_suffix(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 7
        && bytes[bytes.len() - 7] == b'-'
        && bytes[bytes.len() - 6..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

/// What deleting a secret does on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The secret is gone at once.
    Immediate,
    /// The name stays reserved while the secret can be recovered (Azure
    /// soft delete, AWS recovery window); the sink recovers or restores it
    /// when vsync writes the name again.
    Recoverable,
}

/// How many changes one [`Sink::apply`] call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// One change per call; the engine runs calls concurrently.
    One,
    /// Every change in one call (Vault KV: one secret holds the whole map,
    /// written with check-and-set).
    All,
}

/// A platform's documented write limits; the engine paces writes to stay
/// within them and backs off further when the platform says so (429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Every documented window (GitHub: 80 a minute *and* 500 an hour); a
    /// write waits until it fits all of them.
    pub limits: &'static [WriteLimit],
}

impl RateBudget {
    /// No pacing beyond `max_in_flight`: for local fakes and benchmarks
    /// measuring vsync's own overhead.
    pub const fn unpaced(max_in_flight: usize) -> Self {
        RateBudget {
            max_in_flight,
            limits: &[],
        }
    }

    /// The shortest time `writes` writes can take within every window.
    pub fn minimum_duration(&self, writes: usize) -> Duration {
        self.limits
            .iter()
            .map(|limit| {
                let windows = writes
                    .div_ceil(limit.writes.max(1) as usize)
                    .saturating_sub(1);
                limit.per * u32::try_from(windows).unwrap_or(u32::MAX)
            })
            .max()
            .unwrap_or_default()
    }
}

/// At most `writes` in any window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimit {
    /// Writes allowed in one window.
    pub writes: u32,
    /// The window.
    pub per: Duration,
}

impl WriteLimit {
    /// `writes` a second.
    pub const fn per_second(writes: u32) -> Self {
        WriteLimit {
            writes,
            per: Duration::from_secs(1),
        }
    }

    /// `writes` a minute.
    pub const fn per_minute(writes: u32) -> Self {
        WriteLimit {
            writes,
            per: Duration::from_secs(60),
        }
    }

    /// `writes` an hour.
    pub const fn per_hour(writes: u32) -> Self {
        WriteLimit {
            writes,
            per: Duration::from_secs(3600),
        }
    }
}

/// One secret as the platform lists it.
#[derive(Debug, Clone)]
pub struct RemoteSecret {
    /// The platform name.
    pub name: String,
    /// What changes whenever the secret is written, by anyone: an update
    /// time or a version id. Compared with the revision recorded at the
    /// last apply to notice edits made outside vsync.
    pub revision: Option<String>,
    /// `Some(true)` when labelled `managed-by=vsync`, `Some(false)` when the
    /// platform supports labels and this secret lacks it, `None` otherwise.
    pub managed: Option<bool>,
    /// The value, when the listing carries it (Vault KV).
    pub value: Option<SecretValue>,
}

/// One write the engine asks a sink to make.
#[derive(Debug)]
pub enum Change<'a> {
    /// Create or overwrite `name` with `value`.
    Put {
        /// The platform name.
        name: &'a str,
        /// The value.
        value: &'a SecretValue,
        /// Whether the inventory listed the name (create vs update).
        exists: bool,
    },
    /// Delete `name`, which vsync owns.
    Delete {
        /// The platform name.
        name: &'a str,
    },
}

impl Change<'_> {
    /// The platform name the change is about.
    pub fn name(&self) -> &str {
        match self {
            Change::Put { name, .. } | Change::Delete { name } => name,
        }
    }
}

/// What a successful write left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The secret's revision after the write, when the response says; when
    /// it does not, the engine lists the platform again after applying.
    pub revision: Option<String>,
}

/// Why a platform call failed. Messages carry names, statuses and the
/// platform's words, never a value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The platform is throttling (HTTP 429, or 403 with a secondary rate
    /// limit); retried after `retry_after` or a backoff.
    #[error("rate limited by the platform{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The platform's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// A server error or a dropped connection; retried with backoff.
    #[error("the platform is unavailable: {0}")]
    Unavailable(String),
    /// The credentials were refused or lack permission; never retried.
    #[error("access denied: {0}")]
    Denied(String),
    /// The target (repository, environment, vault, project) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A concurrent writer changed the secret (check-and-set failed).
    #[error("changed concurrently: {0}")]
    Conflict(String),
    /// Any other refusal (a 4xx); never retried.
    #[error("rejected: {0}")]
    Rejected(String),
    /// Bad sink settings (a missing token, an invalid URL).
    #[error("{0}")]
    Misconfigured(String),
}

/// Refuses to send credentials over plain `http` to anything but this
/// machine: `https://` is accepted everywhere, `http://` only for a
/// loopback host (`localhost`, `127.0.0.0/8`, `[::1]`: emulators, test
/// harnesses, an SSH tunnel), where nothing crosses a network. Every client
/// that sends a token calls this on its base URL before the first request,
/// so a URL that arrived in a shared config or an environment variable
/// cannot divert a token in clear text.
pub fn require_secure_transport(what: &str, url: &str) -> Result<(), SinkError> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if scheme.eq_ignore_ascii_case("https") || (scheme.eq_ignore_ascii_case("http") && loopback) {
        Ok(())
    } else {
        Err(SinkError::Misconfigured(format!(
            "{what} {url:?} is not an https:// URL; credentials are only sent over TLS (plain http only to localhost) — use https://"
        )))
    }
}

/// The label (a tag, on some platforms) vsync puts on the secrets it writes
/// wherever the platform has labels, so prune can tell its own secrets from
/// those another tool or a person made.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "vsync");

/// The most characters of a platform's message an error keeps.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// A platform's message as an error carries it: on one line (whitespace
/// runs folded to a space, control characters dropped) and at most
/// [`MAX_MESSAGE_CHARS`] characters, a cut marked with `…`. Platforms name
/// the secret in their messages, not its value, but some echo whole
/// request bodies back: the cap keeps an error readable either way.
pub fn one_line_message(text: &str) -> String {
    let mut line = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS + 4));
    for (count, word) in text
        .split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()))
        .enumerate()
    {
        if count > 0 {
            line.push(' ');
        }
        line.extend(word);
    }
    match line.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

impl SinkError {
    /// Whether trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SinkError::RateLimited { .. } | SinkError::Unavailable(_)
        )
    }
}

/// A platform secrets are written to.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// What the platform accepts.
    fn capabilities(&self) -> &Capabilities;

    /// A stable description of the target, e.g.
    /// `github-actions:repo=acme/api,environment=prod`: it keys the record
    /// of what vsync applied, and is printed in reports.
    fn target(&self) -> String;

    /// The platform name for a vault key: the sink's documented transform
    /// (and prefix, where it has one).
    fn map_name(&self, key: &str) -> String;

    /// What comparing revisions cannot see on this platform, if anything:
    /// stated in every plan that vouches for a value by its revision.
    fn drift_blind_spot(&self) -> Option<&'static str> {
        None
    }

    /// Every secret at the target, without values unless the listing
    /// carries them.
    async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError>;

    /// One secret's value; `None` when absent. Write-only platforms answer
    /// [`SinkError::Rejected`].
    async fn read(&self, name: &str) -> Result<Option<SecretValue>, SinkError>;

    /// Applies one change.
    async fn apply_one(&self, change: &Change<'_>) -> Result<Applied, SinkError>;

    /// Applies `changes` (one, or all of them, per [`Capabilities::batch`])
    /// and answers one result per change, in order. Applying them one by one
    /// is right for [`Batch::One`] platforms; a [`Batch::All`] platform
    /// overrides this to write them together.
    async fn apply(&self, changes: &[Change<'_>]) -> Vec<Result<Applied, SinkError>> {
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            results.push(self.apply_one(change).await);
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_messages_are_one_bounded_line() {
        assert_eq!(
            one_line_message("  1 error occurred:\n\t* permission\u{7}  denied\n\n"),
            "1 error occurred: * permission denied"
        );
        let long = one_line_message(&"é".repeat(1000));
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(
            one_line_message(&"x".repeat(MAX_MESSAGE_CHARS))
                .chars()
                .count(),
            MAX_MESSAGE_CHARS
        );
    }

    #[test]
    fn credentials_go_over_tls_or_stay_on_this_machine() {
        for url in [
            "https://api.github.com",
            "HTTPS://vault.example.com:8200/",
            "http://127.0.0.1:8200",
            "http://127.9.9.9",
            "http://localhost:8080/api/v3",
            "http://[::1]:8200",
        ] {
            assert!(require_secure_transport("x", url).is_ok(), "{url}");
        }
        for url in [
            "http://vault.example.com:8200",
            "http://10.0.0.5",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example",
            "http://[::ffff:10.0.0.1]",
            "ftp://127.0.0.1",
            "vault.example.com",
            "",
        ] {
            let err = require_secure_transport("the Vault address", url).unwrap_err();
            assert!(err.to_string().contains("https://"), "{url}: {err}");
        }
    }

    fn github() -> NameRules {
        NameRules {
            max_len: 200,
            alphabet: Alphabet::AsciiAlphanumericAnd("_"),
            leading_digit: false,
            reserved_prefixes: &["GITHUB_"],
            case_insensitive: true,
            refuses_arn_suffix: false,
        }
    }

    #[test]
    fn name_rules_name_the_problem() {
        let rules = github();
        assert!(rules.check("DB_PASS").is_ok());
        assert!(rules.check("db-pass").unwrap_err().contains("'-'"));
        assert!(rules.check("1PASS").unwrap_err().contains("digit"));
        assert!(rules.check("github_token").unwrap_err().contains("GITHUB_"));
        assert!(rules.check("").is_err());
        assert!(
            rules
                .check(&"A".repeat(201))
                .unwrap_err()
                .contains("limit is 200")
        );
    }

    #[test]
    fn arn_suffix_is_refused_only_where_declared() {
        let aws = NameRules {
            max_len: 512,
            alphabet: Alphabet::AsciiAlphanumericAnd("/_+=.@-"),
            leading_digit: true,
            reserved_prefixes: &[],
            case_insensitive: false,
            refuses_arn_suffix: true,
        };
        assert!(aws.check("prod/db-abc123").is_err());
        assert!(aws.check("prod/db-abc12").is_ok());
        assert!(aws.check("prod/db_abc123").is_ok());
    }

    #[test]
    fn folding_follows_case_sensitivity() {
        assert_eq!(github().fold("db_pass"), "DB_PASS");
        let sensitive = NameRules {
            case_insensitive: false,
            ..github()
        };
        assert_eq!(sensitive.fold("db_pass"), "db_pass");
    }

    #[test]
    fn values_are_redacted_in_debug() {
        let value = SecretValue::from_text("hunter2");
        assert_eq!(format!("{value:?}"), "SecretValue(<redacted 7 bytes>)");
    }
}
