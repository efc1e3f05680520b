//! The bucket's audit log `<prefix>audit.csv` (vsync-formats §4): one CSV
//! row per push, pull, import, export and rotation, appended best effort
//! with a compare-and-swap write, and read back by `vsync audit`.
//!
//! The columns and their order are upstream's and locked, so a team mixing
//! upstream vsync and this one keeps one log. What this implementation
//! writes where upstream leaves it open: `vsync_version` is this crate's
//! version with the `+rust` build tag (so rows say which implementation
//! wrote them), `bun_version` is empty (there is no Bun runtime), and
//! `local_ip` is the source address of the default route (the address
//! other hosts see), rather than the first address in interface order.
//!
//! An append never fails the command that triggered it: a lost race is
//! retried (3 attempts), "access denied" is skipped silently (scoped
//! credentials may not write the log), anything else becomes a warning.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;
use vsync_engine::store::{PutCondition, Store, StoreError};
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::Layout;
use vsync_local::EnvConfig;

use crate::{Context, OpsError, Progress, layout, open_store};

/// The header row, locked by upstream: new columns may only be appended.
pub const HEADER: &str =
    "ts,action,version_ts,hostname,local_ip,os_user,git_email,vsync_version,bun_version,meta";

/// Upstream's cap on the meta cell: a larger one becomes
/// `{"_truncated":true}`.
const MAX_META_BYTES: usize = 2048;

/// Upstream's number of attempts before an append gives up on a busy log.
const ATTEMPTS: usize = 3;

/// What is being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// `pull`.
    Pull,
    /// `push`.
    Push,
    /// `import` of a `.share`.
    Import,
    /// `export` of a `.share`.
    Export,
    /// `rotate-passphrase`.
    Rotate,
}

impl AuditAction {
    /// The `action` cell.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Pull => "pull",
            AuditAction::Push => "push",
            AuditAction::Import => "import",
            AuditAction::Export => "export",
            AuditAction::Rotate => "rotate",
        }
    }
}

/// The audit flags of every recording verb (§4.2, §4.3).
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// `--no-audit`: record nothing for this run.
    pub skip: bool,
    /// `--meta k=v`, in the order given (later wins per key).
    pub meta: Vec<(String, String)>,
    /// `--note`: sets `note`, over everything else.
    pub note: Option<String>,
}

/// Parses one `--meta` value: split at the first `=`, the key non-empty
/// (upstream's rule).
pub fn parse_meta_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "--meta expects key=value with a non-empty key, got {text:?}"
        )),
    }
}

/// One row of the log. Cells are kept as text; `meta` is the raw cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRow {
    /// ISO-8601 time of the append, milliseconds, `Z`.
    pub ts: String,
    /// `pull`, `push`, `import`, `export` or `rotate`.
    pub action: String,
    /// The bundle version for pull/push/rotate, else empty.
    pub version_ts: String,
    /// The machine's host name.
    pub hostname: String,
    /// The machine's address.
    pub local_ip: String,
    /// `$USER` / `$USERNAME`.
    pub os_user: String,
    /// `git config user.email`.
    pub git_email: String,
    /// The writer's version.
    pub vsync_version: String,
    /// Upstream's Bun version; empty in rows this implementation writes.
    pub bun_version: String,
    /// Compact JSON object, or empty.
    pub meta: String,
}

impl AuditRow {
    fn cells(&self) -> [&str; 10] {
        [
            &self.ts,
            &self.action,
            &self.version_ts,
            &self.hostname,
            &self.local_ip,
            &self.os_user,
            &self.git_email,
            &self.vsync_version,
            &self.bun_version,
            &self.meta,
        ]
    }

    fn cell_mut(&mut self, column: &str) -> Option<&mut String> {
        Some(match column {
            "ts" => &mut self.ts,
            "action" => &mut self.action,
            "version_ts" => &mut self.version_ts,
            "hostname" => &mut self.hostname,
            "local_ip" => &mut self.local_ip,
            "os_user" => &mut self.os_user,
            "git_email" => &mut self.git_email,
            "vsync_version" => &mut self.vsync_version,
            "bun_version" => &mut self.bun_version,
            "meta" => &mut self.meta,
            _ => return None,
        })
    }

    /// The row as one CSV line, without the line break.
    pub fn to_csv_line(&self) -> String {
        let cells: Vec<String> = self.cells().iter().map(|cell| quote(cell)).collect();
        cells.join(",")
    }

    /// Who: `os_user`, else `git_email`.
    pub fn user(&self) -> &str {
        if self.os_user.is_empty() {
            &self.git_email
        } else {
            &self.os_user
        }
    }

    /// Where: `hostname`, else `local_ip`.
    pub fn host(&self) -> &str {
        if self.hostname.is_empty() {
            &self.local_ip
        } else {
            &self.hostname
        }
    }

    /// `meta.note` when the meta cell is an object with a string `note`.
    pub fn note(&self) -> Option<String> {
        match serde_json::from_str::<Value>(&self.meta).ok()? {
            Value::Object(fields) => fields.get("note")?.as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// The other meta keys as `k=v, k2=v2` (non-strings JSON-encoded); the
    /// raw cell when it is not a JSON object.
    pub fn meta_summary(&self) -> String {
        if self.meta.is_empty() {
            return String::new();
        }
        match serde_json::from_str::<Value>(&self.meta) {
            Ok(Value::Object(fields)) => fields
                .iter()
                .filter(|(key, value)| !(key.as_str() == "note" && value.is_string()))
                .map(|(key, value)| match value {
                    Value::String(text) => format!("{key}={text}"),
                    other => format!("{key}={other}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => self.meta.clone(),
        }
    }
}

/// RFC 4180 quoting as upstream does it: an empty cell stays empty; a cell
/// with `"`, `,`, CR or LF is wrapped in quotes with inner quotes doubled.
fn quote(cell: &str) -> String {
    if cell.contains(['"', ',', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// Splits CSV text into records: quoted cells with doubled quotes and
/// embedded commas or line breaks, CRLF or LF between records; records
/// whose cells are all empty are skipped.
fn parse_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                other => cell.push(other),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => record.push(std::mem::take(&mut cell)),
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                record.push(std::mem::take(&mut cell));
                finish_record(&mut record, &mut records);
            }
            other => cell.push(other),
        }
    }
    if !cell.is_empty() || !record.is_empty() {
        record.push(cell);
        finish_record(&mut record, &mut records);
    }
    records
}

fn finish_record(record: &mut Vec<String>, records: &mut Vec<Vec<String>>) {
    if record.iter().any(|cell| !cell.is_empty()) {
        records.push(std::mem::take(record));
    } else {
        record.clear();
    }
}

/// Parses a whole log: the first record is the header, cells are mapped by
/// its column names (unknown columns dropped, missing ones empty).
pub fn parse_log(text: &str) -> Vec<AuditRow> {
    let mut records = parse_records(text).into_iter();
    let Some(header) = records.next() else {
        return Vec::new();
    };
    records
        .map(|record| {
            let mut row = AuditRow::default();
            for (column, value) in header.iter().zip(record) {
                if let Some(cell) = row.cell_mut(column.trim()) {
                    *cell = value;
                }
            }
            row
        })
        .collect()
}

/// The log as `--csv` prints it: the header, the rows, a final newline.
pub fn render_csv(rows: &[AuditRow]) -> String {
    let mut text = format!("{HEADER}\n");
    for row in rows {
        text.push_str(&row.to_csv_line());
        text.push('\n');
    }
    text
}

/// The meta cell under construction: keys keep the position of their first
/// setting, as a JavaScript object's do when later sources overwrite them.
#[derive(Default)]
struct Meta(Vec<(String, Value)>);

impl Meta {
    fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(existing, _)| existing == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// `JSON.stringify` of the object: compact, keys in order.
    fn render(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(key.as_str())))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// Builds the meta cell from, in ascending priority, `$VSYNC_AUDIT_META`,
/// `$VSYNC_AUDIT_NOTE`, each `--meta`, `--note`, then `fixed` (what the
/// verb itself records, e.g. a rotation's generations). Empty when nothing
/// was supplied; `{"_truncated":true}` above 2048 bytes.
fn build_meta(
    env_meta: Option<&str>,
    env_note: Option<&str>,
    options: &AuditOptions,
    fixed: &[(&str, Value)],
    progress: &dyn Progress,
) -> String {
    let mut meta = Meta::default();
    if let Some(text) = env_meta.filter(|text| !text.is_empty()) {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => {
                for (key, value) in fields {
                    let value = match value {
                        Value::String(text) => Value::String(text),
                        other => Value::String(other.to_string()),
                    };
                    meta.set(&key, value);
                }
            }
            _ => progress.warn("VSYNC_AUDIT_META is not a JSON object; ignored"),
        }
    }
    if let Some(note) = env_note.filter(|note| !note.is_empty()) {
        meta.set("note", note.into());
    }
    for (key, value) in &options.meta {
        meta.set(key, value.as_str().into());
    }
    if let Some(note) = options.note.as_deref().filter(|note| !note.is_empty()) {
        meta.set("note", note.into());
    }
    for (key, value) in fixed {
        meta.set(key, value.clone());
    }
    if meta.0.is_empty() {
        return String::new();
    }
    let rendered = meta.render();
    if rendered.len() > MAX_META_BYTES {
        progress.warn(&format!(
            "the audit meta is {} bytes, over the {MAX_META_BYTES}-byte limit; recorded as {{\"_truncated\":true}}",
            rendered.len()
        ));
        return r#"{"_truncated":true}"#.to_owned();
    }
    rendered
}

/// Facts about this machine and user, gathered at append time.
fn machine_row(cwd: &Path) -> AuditRow {
    AuditRow {
        ts: vsync_local::time::iso_millis(SystemTime::now()),
        hostname: hostname(),
        local_ip: local_ip().map(|ip| ip.to_string()).unwrap_or_default(),
        os_user: ["USER", "USERNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .unwrap_or_default(),
        git_email: command_output("git", &["config", "--get", "user.email"], cwd),
        vsync_version: format!("{}+rust", env!("CARGO_PKG_VERSION")),
        ..AuditRow::default()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| command_output("uname", &["-n"], Path::new(".")))
}

/// The address this machine's traffic leaves from: a UDP "connect" picks
/// the route's source address without sending a packet. IPv4 first (to a
/// documentation address), then IPv6, as upstream prefers IPv4.
fn local_ip() -> Option<IpAddr> {
    [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")]
        .into_iter()
        .find_map(|(bind, target)| {
            let socket = UdpSocket::bind(bind).ok()?;
            socket.connect(target).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
}

fn command_output(program: &str, args: &[&str], cwd: &Path) -> String {
    std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

/// How an append ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Appended {
    /// The row is in the log.
    Written,
    /// The credentials may not read or write the log: skipped, as
    /// upstream does, without a warning.
    Denied,
}

/// Appends `row` to the log at `key` with compare-and-swap: `IfAbsent`
/// when the log does not exist yet (the header goes first), else `IfMatch`
/// on the tag read. A lost race rereads and retries, 3 attempts in all.
async fn append(store: &dyn Store, key: &str, row: &AuditRow) -> Result<Appended, StoreError> {
    let line = row.to_csv_line();
    for _ in 0..ATTEMPTS {
        let (body, condition) = match store.get(key).await {
            Ok(None) => (
                format!("{HEADER}\n{line}\n").into_bytes(),
                PutCondition::IfAbsent,
            ),
            Ok(Some(existing)) => {
                let mut body = existing.body;
                if !body.is_empty() && !body.ends_with(b"\n") {
                    body.push(b'\n');
                }
                body.extend_from_slice(line.as_bytes());
                body.push(b'\n');
                (body, PutCondition::IfMatch(existing.etag))
            }
            Err(StoreError::AccessDenied { .. }) => return Ok(Appended::Denied),
            Err(err) => return Err(err),
        };
        match store.put(key, &body, condition).await {
            Ok(_) => return Ok(Appended::Written),
            Err(StoreError::PreconditionFailed { .. }) => continue,
            Err(StoreError::AccessDenied { .. }) => return Ok(Appended::Denied),
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Other(format!(
        "{key}: {ATTEMPTS} conflicting writers in a row, giving up"
    )))
}

/// One entry to record: the action, its bundle version, and meta the verb
/// adds on top of the user's.
pub(crate) struct Entry<'a> {
    pub(crate) action: AuditAction,
    pub(crate) version_ts: Option<&'a Timestamp>,
    pub(crate) fixed_meta: &'a [(&'a str, Value)],
}

/// Records `entry` unless `--no-audit` or the config's `audit.enabled`
/// says not to. Never fails: problems become a warning through `progress`.
pub(crate) async fn record(
    ctx: &Context,
    store: &dyn Store,
    layout: &Layout,
    config: &EnvConfig,
    options: &AuditOptions,
    entry: Entry<'_>,
    progress: &dyn Progress,
) {
    if options.skip || !config.audit.enabled {
        return;
    }
    let mut row = machine_row(&ctx.cwd);
    row.action = entry.action.as_str().to_owned();
    row.version_ts = entry
        .version_ts
        .map(|ts| ts.as_str().to_owned())
        .unwrap_or_default();
    row.meta = build_meta(
        ctx.audit_meta_env.as_deref(),
        ctx.audit_note_env.as_deref(),
        options,
        entry.fixed_meta,
        progress,
    );
    if let Err(err) = append(store, &layout.audit_key(), &row).await {
        progress.warn(&format!("failed to record audit entry: {err}"));
    }
}

/// What `vsync audit` read.
#[derive(Debug, Clone)]
pub struct AuditLog {
    /// `<repo>/<env>`.
    pub target: String,
    /// Where the log lives.
    pub location: String,
    /// Newest first, at most the limit asked for.
    pub rows: Vec<AuditRow>,
    /// Rows in the log in all.
    pub total: usize,
}

/// Reads `env`'s audit log; rows newest first (by `ts`), at most `limit`
/// of them when given. Needs only the config, not the key.
pub async fn audit_log(
    ctx: &Context,
    env: &str,
    limit: Option<usize>,
) -> Result<AuditLog, OpsError> {
    let repo = ctx.repo()?;
    let config = EnvConfig::load_for(&ctx.base, repo.name(), env)?;
    let store = open_store(&config)?;
    let layout = layout(&config, repo.name(), env)?;
    let key = layout.audit_key();
    let mut rows = match store.get(&key).await? {
        Some(object) => parse_log(&String::from_utf8_lossy(&object.body)),
        None => Vec::new(),
    };
    let total = rows.len();
    // Stable, so rows of the same millisecond keep their file order.
    rows.sort_by(|a, b| b.ts.cmp(&a.ts));
    if let Some(limit) = limit {
        rows.truncate(limit);
    }
    Ok(AuditLog {
        target: format!("{}/{env}", repo.name()),
        location: format!("{} {key}", store.describe()),
        rows,
        total,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;

    use vsync_backends::fs::FsStore;

    use super::*;

    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl vsync_engine::sync::SyncProgress for Warnings {}

    impl Progress for Warnings {
        fn step(&self, _: usize, _: usize, _: &str) {}
        fn warn(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_owned());
        }
    }

    fn row(action: &str, meta: &str) -> AuditRow {
        AuditRow {
            ts: "2026-05-25T14:23:40.045Z".into(),
            action: action.into(),
            version_ts: "20260525-142339".into(),
            hostname: "box".into(),
            os_user: "ann".into(),
            vsync_version: "0.1.0+rust".into(),
            meta: meta.into(),
            ..AuditRow::default()
        }
    }

    #[test]
    fn quoting_follows_rfc_4180_and_round_trips() {
        let mut tricky = row("push", r#"{"note":"a, \"b\"\nc"}"#);
        tricky.git_email = "x@y".into();
        let line = tricky.to_csv_line();
        assert_eq!(
            line,
            "2026-05-25T14:23:40.045Z,push,20260525-142339,box,,ann,x@y,0.1.0+rust,,\"{\"\"note\"\":\"\"a, \\\"\"b\\\"\"\\nc\"\"}\""
        );
        let text = format!(
            "{HEADER}\r\n{line}\r\n\r\n{}\n",
            row("pull", "").to_csv_line()
        );
        let rows = parse_log(&text);
        assert_eq!(rows, vec![tricky.clone(), row("pull", "")]);
        assert_eq!(
            render_csv(&rows),
            format!("{HEADER}\n{line}\n{}\n", row("pull", "").to_csv_line())
        );
        // Embedded line breaks survive.
        let mut multiline = row("push", "");
        multiline.hostname = "two\nlines".into();
        assert_eq!(
            parse_log(&render_csv(&[multiline.clone()])),
            vec![multiline]
        );
    }

    #[test]
    fn columns_are_mapped_by_header_name() {
        let text = "action,ts,future\npush,2026-01-01T00:00:00.000Z,x\n";
        let rows = parse_log(text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].action, "push");
        assert_eq!(rows[0].ts, "2026-01-01T00:00:00.000Z");
        assert_eq!(rows[0].meta, "");
        assert!(parse_log("").is_empty());
    }

    #[test]
    fn note_and_meta_summary_for_the_table() {
        let r = row("push", r#"{"note":"deploy","ticket":"OPS-1","gen":2}"#);
        assert_eq!(r.note().as_deref(), Some("deploy"));
        assert_eq!(r.meta_summary(), "ticket=OPS-1, gen=2");
        assert_eq!(row("push", "not json").meta_summary(), "not json");
        assert_eq!(row("push", "").note(), None);
        let mut anonymous = row("pull", "");
        anonymous.os_user.clear();
        anonymous.git_email = "a@b".into();
        anonymous.hostname.clear();
        anonymous.local_ip = "10.0.0.2".into();
        assert_eq!((anonymous.user(), anonymous.host()), ("a@b", "10.0.0.2"));
    }

    #[test]
    fn meta_sources_merge_in_upstreams_priority() {
        let warnings = Warnings::default();
        let options = AuditOptions {
            skip: false,
            meta: vec![
                ("ticket".into(), "OPS-2".into()),
                ("who".into(), "bob".into()),
            ],
            note: Some("from flag".into()),
        };
        let meta = build_meta(
            Some(r#"{"ticket":"OPS-1","n":3,"note":"env meta"}"#),
            Some("env note"),
            &options,
            &[("event", "rotate".into()), ("gen", 2.into())],
            &warnings,
        );
        assert_eq!(
            meta,
            r#"{"ticket":"OPS-2","n":"3","note":"from flag","who":"bob","event":"rotate","gen":2}"#
        );
        assert!(warnings.0.lock().unwrap().is_empty());

        assert_eq!(
            build_meta(Some(""), Some(""), &AuditOptions::default(), &[], &warnings),
            ""
        );
        assert_eq!(
            build_meta(Some("[1]"), None, &AuditOptions::default(), &[], &warnings),
            ""
        );
        assert!(warnings.0.lock().unwrap()[0].contains("VSYNC_AUDIT_META"));

        let huge = AuditOptions {
            note: Some("x".repeat(3000)),
            ..AuditOptions::default()
        };
        assert_eq!(
            build_meta(None, None, &huge, &[], &warnings),
            r#"{"_truncated":true}"#
        );
    }

    #[test]
    fn meta_flags_need_a_key() {
        assert_eq!(
            parse_meta_pair("k=v=w").unwrap(),
            ("k".to_owned(), "v=w".to_owned())
        );
        assert_eq!(
            parse_meta_pair("k=").unwrap(),
            ("k".to_owned(), String::new())
        );
        assert!(parse_meta_pair("=v").is_err());
        assert!(parse_meta_pair("novalue").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn racing_appends_all_land() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(FsStore::open(tmp.path()).unwrap());
        let key = "acme/dev/audit.csv";
        let appends: Vec<_> = (0..ATTEMPTS)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    append(
                        store.as_ref(),
                        key,
                        &row("pull", &format!(r#"{{"i":"{i}"}}"#)),
                    )
                    .await
                })
            })
            .collect();
        for handle in appends {
            assert_eq!(handle.await.unwrap().unwrap(), Appended::Written);
        }
        let text = String::from_utf8(store.get(key).await.unwrap().unwrap().body).unwrap();
        assert!(text.starts_with(&format!("{HEADER}\n")), "{text}");
        let mut seen: Vec<String> = parse_log(&text).iter().map(|r| r.meta.clone()).collect();
        seen.sort();
        assert_eq!(seen, [r#"{"i":"0"}"#, r#"{"i":"1"}"#, r#"{"i":"2"}"#]);
    }

    /// A store where another writer appends between every read and write.
    struct AlwaysBeaten(FsStore);

    #[async_trait::async_trait]
    impl Store for AlwaysBeaten {
        fn describe(&self) -> String {
            self.0.describe()
        }
        async fn get_limited(
            &self,
            key: &str,
            max_bytes: u64,
        ) -> Result<Option<vsync_engine::store::Object>, StoreError> {
            let read = self.0.get_limited(key, max_bytes).await?;
            let mut body = read.as_ref().map_or_else(Vec::new, |o| o.body.clone());
            body.extend_from_slice(b"other writer\n");
            let condition = match &read {
                Some(object) => PutCondition::IfMatch(object.etag.clone()),
                None => PutCondition::IfAbsent,
            };
            self.0.put(key, &body, condition).await?;
            Ok(read)
        }
        async fn head(
            &self,
            key: &str,
        ) -> Result<Option<vsync_engine::store::ObjectInfo>, StoreError> {
            self.0.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: &[u8],
            condition: PutCondition,
        ) -> Result<vsync_engine::store::ETag, StoreError> {
            self.0.put(key, body, condition).await
        }
        async fn list(
            &self,
            prefix: &str,
        ) -> Result<Vec<vsync_engine::store::ListedObject>, StoreError> {
            self.0.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.0.delete(key).await
        }
    }

    #[tokio::test]
    async fn a_log_that_keeps_changing_gives_up_after_three_attempts() {
        let tmp = tempfile::tempdir().unwrap();
        let store = AlwaysBeaten(FsStore::open(tmp.path()).unwrap());
        let err = append(&store, "a/audit.csv", &row("push", ""))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("3 conflicting writers"), "{err}");
        let text =
            String::from_utf8(store.0.get("a/audit.csv").await.unwrap().unwrap().body).unwrap();
        assert_eq!(text.matches("other writer").count(), 3);
        assert!(!text.contains("push"));
    }
}
