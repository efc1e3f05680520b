//! Printing for the lifecycle verbs beyond push/pull: `audit`.

use vsync_ops::{AuditLog, AuditRow, Context, render_csv};

use crate::AuditLogArgs;
use crate::commands::Failure;

/// `vsync audit`'s default number of rows.
const DEFAULT_LIMIT: usize = 50;

pub fn audit(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    args: AuditLogArgs,
) -> Result<(), Failure> {
    let limit = if args.all || args.csv {
        None
    } else {
        Some(
            args.limit
                .map_or(DEFAULT_LIMIT, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        )
    };
    let log = runtime.block_on(vsync_ops::audit_log(ctx, &args.env, limit))?;
    if args.json {
        print_json(&log);
    } else if args.csv {
        // The file order, as upstream re-serialises it: oldest first.
        let mut rows = log.rows.clone();
        rows.reverse();
        print!("{}", render_csv(&rows));
    } else if log.total == 0 {
        println!("(no audit log yet for {})", log.target);
    } else {
        print_table(&log);
    }
    Ok(())
}

fn print_json(log: &AuditLog) {
    let rows: Vec<_> = log
        .rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "ts": row.ts,
                "action": row.action,
                "version_ts": row.version_ts,
                "hostname": row.hostname,
                "local_ip": row.local_ip,
                "os_user": row.os_user,
                "git_email": row.git_email,
                "vsync_version": row.vsync_version,
                "bun_version": row.bun_version,
                "meta": row.meta,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "target": log.target,
        "location": log.location,
        "total": log.total,
        "rows": rows,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("JSON values serialise")
    );
}

/// Upstream's table: `TS ACTION VERSION USER HOST NOTE META`, padded to the
/// widest cell, two spaces apart, a dashed line under the header.
fn print_table(log: &AuditLog) {
    let header = ["TS", "ACTION", "VERSION", "USER", "HOST", "NOTE", "META"].map(str::to_owned);
    let cells = |row: &AuditRow| {
        [
            row.ts.clone(),
            row.action.clone(),
            row.version_ts.clone(),
            row.user().to_owned(),
            row.host().to_owned(),
            row.note().unwrap_or_default(),
            row.meta_summary(),
        ]
    };
    let rows: Vec<[String; 7]> = log.rows.iter().map(cells).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 7]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    println!("{}", line(&header));
    println!("{}", line(&widths.map(|w| "-".repeat(w))));
    for row in &rows {
        println!("{}", line(row));
    }
    let hidden = log.total - log.rows.len();
    if hidden > 0 {
        println!(
            "({hidden} older row{} not shown; pass --all to see everything)",
            if hidden == 1 { "" } else { "s" }
        );
    }
}
