//! Fuzz target (issue 13, "Fuzzing") for the audit log parser:
//! `<prefix>audit.csv` lives in the bucket, where anyone with write access
//! (or upstream vsync, or a hand edit) may have put anything, and
//! `vsync audit` parses it.
//!
//! Driver and mutators: `crypto/tests/support/fuzz.rs`.

#![forbid(unsafe_code)]

#[path = "../../crypto/tests/support/fuzz.rs"]
mod fuzz;

use fuzz::{Mutation, anywhere, apply, mutations};
use proptest::prelude::*;
use vsync_ops::{AUDIT_HEADER as HEADER, AuditRow, parse_audit_log as parse_log, render_csv};

/// Any cell text, biased towards what CSV quoting has to get right.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9:.@ -]{0,12}",
        2 => "[a-z\",\r\n ]{0,8}",
        1 => any::<String>(),
        1 => Just(r#"{"note":"a, \"b\"","k":1}"#.to_owned()),
    ]
}

fn row() -> impl Strategy<Value = AuditRow> {
    proptest::collection::vec(cell(), 10).prop_map(|cells| {
        let mut cells = cells.into_iter();
        let mut next = || cells.next().unwrap();
        AuditRow {
            ts: next(),
            action: next(),
            version_ts: next(),
            hostname: next(),
            local_ip: next(),
            os_user: next(),
            git_email: next(),
            vsync_version: next(),
            bun_version: next(),
            meta: next(),
        }
    })
}

fn is_blank(row: &AuditRow) -> bool {
    row == &AuditRow::default()
}

#[derive(Debug, Clone)]
enum LogInput {
    /// A log as this implementation writes it, mutated.
    Mutated(Vec<AuditRow>, Vec<Mutation>),
    /// A header with columns reordered, dropped, unknown or repeated, then
    /// records of any width.
    Columns(Vec<&'static str>, Vec<Vec<String>>),
    Text(String),
}

#[test]
fn fuzz_audit_log_parse() {
    const COLUMNS: &[&str] = &[
        "ts",
        "action",
        "version_ts",
        "hostname",
        "local_ip",
        "os_user",
        "git_email",
        "vsync_version",
        "bun_version",
        "meta",
        " meta ",
        "extra",
        "",
        "\"ts\"",
    ];
    let input = prop_oneof![
        4 => (proptest::collection::vec(row(), 0..6), mutations())
            .prop_map(|(rows, m)| LogInput::Mutated(rows, m)),
        2 => (
            proptest::collection::vec(proptest::sample::select(COLUMNS), 0..14),
            proptest::collection::vec(proptest::collection::vec(cell(), 0..14), 0..5),
        )
            .prop_map(|(header, records)| LogInput::Columns(header, records)),
        1 => any::<String>().prop_map(LogInput::Text),
    ];
    fuzz::fuzz("audit-csv-parse", 512, input, |input| {
        let text = match input {
            LogInput::Mutated(rows, mutations) => {
                let text = render_csv(&rows);
                // Round trip first: every row written comes back, except rows
                // with no text at all (a line of bare commas is no record).
                let kept: Vec<AuditRow> = rows.iter().filter(|r| !is_blank(r)).cloned().collect();
                prop_assert_eq!(&parse_log(&text), &kept);
                prop_assert!(text.starts_with(HEADER));
                let bytes = apply(text.as_bytes(), b"", &mutations, anywhere);
                String::from_utf8_lossy(&bytes).into_owned()
            }
            LogInput::Columns(header, records) => {
                let mut text = header.join(",");
                for record in records {
                    text.push('\n');
                    text.push_str(&record.join(","));
                }
                text
            }
            LogInput::Text(text) => text,
        };
        let rows = parse_log(&text);
        // One row per record at most: records end at line breaks.
        let breaks = text.matches('\n').count() + text.matches('\r').count();
        prop_assert!(
            rows.len() <= breaks + 1,
            "{} rows from {breaks} line breaks",
            rows.len()
        );
        // Whatever was read renders and reads back the same (blank rows
        // aside), and the accessors `vsync audit` prints never panic.
        let kept: Vec<AuditRow> = rows.iter().filter(|r| !is_blank(r)).cloned().collect();
        prop_assert_eq!(&parse_log(&render_csv(&rows)), &kept);
        for row in &rows {
            let _ = (row.user(), row.host(), row.note(), row.meta_summary());
        }
        Ok(())
    });
}
