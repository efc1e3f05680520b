//! The lifecycle verbs beyond push/pull: `audit`, `rotate-passphrase`,
//! `keystore` and `use`.

use std::io::IsTerminal;
use std::path::PathBuf;

use vsync_ops::{
    AuditLog, AuditRow, Context, ImportOutcome, KeytreeFilter, LinkState, NewPassphrase, OpsError,
    RotateOptions, keystore_export, keystore_import, keystore_list, render_csv, rotate_passphrase,
};
use zeroize::Zeroizing;

use crate::commands::{
    Failure, passphrase_if_given, print_json, read_passphrase, usage, warn_secret_in_argv,
};
use crate::progress::StderrProgress;
use crate::secret_input::read_secret;
use crate::{AuditLogArgs, KeystoreCommand, RotateArgs};

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
        print_audit_json(&log);
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

fn print_audit_json(log: &AuditLog) {
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
    print_json(&doc);
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

pub fn rotate(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    args: RotateArgs,
) -> Result<(), Failure> {
    let new_passphrase = if args.generate {
        NewPassphrase::Generate
    } else if let Some(given) = args.new_passphrase {
        warn_secret_in_argv("--new-passphrase");
        NewPassphrase::Given(Zeroizing::new(given))
    } else if let Some(file) = &args.new_passphrase_file {
        NewPassphrase::Given(
            read_secret(Some(file), None, "the new passphrase", "").map_err(usage)?,
        )
    } else {
        prompt_new_passphrase()?
    };
    let old_passphrase = match (args.old_passphrase, &args.old_passphrase_file) {
        (Some(given), _) => {
            warn_secret_in_argv("--old-passphrase");
            Some(Zeroizing::new(given))
        }
        (None, Some(file)) => {
            Some(read_secret(Some(file), None, "the current passphrase", "").map_err(usage)?)
        }
        (None, None) => None,
    };
    let options = RotateOptions {
        new_passphrase,
        old_passphrase,
        audit: args.audit.into(),
    };
    let progress = StderrProgress::new();
    let report = match runtime.block_on(rotate_passphrase(ctx, &args.env, options, &progress)) {
        Ok(report) => report,
        Err(err) => {
            drop(progress);
            // The bucket may already need this passphrase: show it before
            // the error, whatever its origin.
            if let OpsError::RotationUnconfirmed { passphrase, .. } = &err {
                println!("passphrase: {}", passphrase.expose());
            }
            return Err(err.into());
        }
    };
    drop(progress);
    println!(
        "rotated {} ({} re-keyed as version {}, generation {})",
        report.target, report.previous_ts, report.ts, report.generation
    );
    if let Some(passphrase) = &report.passphrase {
        println!("passphrase: {}", passphrase.as_str());
    }
    if let Some(problem) = &report.key_not_stored {
        return Err(Failure {
            message: format!(
                "the rotation is published but the new key could not be stored ({problem}); keep the passphrase printed above — this machine cannot pull until it is in the {} (import a fresh .share from a teammate's machine, or fix the keystore and rotate again with --old-passphrase-file)",
                report.keystore
            ),
            code: 1,
        });
    }
    eprintln!(
        "the new key is in the {}. Apps reading this env need VSYNC_PASSPHRASE set to it; teammates need a fresh .share (`vsync export {}`) before their next pull",
        report.keystore, args.env
    );
    Ok(())
}

/// Two hidden prompts on a TTY (3 tries to make them match); blank means
/// generate.
fn prompt_new_passphrase() -> Result<NewPassphrase, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "the new passphrase is needed and there is no TTY to ask on; pass --new-passphrase-file=<file> or --generate".into(),
        ));
    }
    for _ in 0..3 {
        let first =
            read_secret(None, None, "new passphrase (blank to generate one)", "").map_err(usage)?;
        if first.is_empty() {
            return Ok(NewPassphrase::Generate);
        }
        let second = read_secret(None, None, "repeat the new passphrase", "").map_err(usage)?;
        if *first == *second {
            return Ok(NewPassphrase::Given(first));
        }
        eprintln!("the two entries differ; try again");
    }
    Err(usage("the new passphrase was not confirmed".into()))
}

pub fn keystore(ctx: &Context, command: KeystoreCommand) -> Result<(), Failure> {
    match command {
        KeystoreCommand::List { json } => {
            let listing = keystore_list(ctx)?;
            if json {
                let entries: Vec<_> = listing
                    .entries
                    .iter()
                    .map(|entry| {
                        serde_json::json!({
                            "repo": entry.repo,
                            "env": entry.env,
                            "config": entry.config_path.display().to_string(),
                            "configError": entry.config_error,
                            "hasKey": entry.has_key,
                            "keyError": entry.key_error,
                        })
                    })
                    .collect();
                let doc = serde_json::json!({
                    "keystore": listing.keystore,
                    "entries": entries,
                });
                print_json(&doc);
                return Ok(());
            }
            println!("keystore: {}", listing.keystore);
            let mut repo = None;
            for entry in &listing.entries {
                if repo != Some(&entry.repo) {
                    println!("{}", entry.repo);
                    repo = Some(&entry.repo);
                }
                let key = match (entry.has_key, &entry.key_error) {
                    (Some(true), _) => "key".to_owned(),
                    (Some(false), _) => "NO KEY".to_owned(),
                    (None, Some(err)) => format!("key unknown: {err}"),
                    (None, None) => "key unknown".to_owned(),
                };
                match &entry.config_error {
                    Some(err) => println!("  {:<16} {key}  (config unreadable: {err})", entry.env),
                    None => println!("  {:<16} {key}", entry.env),
                }
            }
            let with_key = listing
                .entries
                .iter()
                .filter(|e| e.has_key == Some(true))
                .count();
            println!(
                "{} env{}, {with_key} with a key",
                listing.entries.len(),
                if listing.entries.len() == 1 { "" } else { "s" }
            );
            Ok(())
        }
        KeystoreCommand::Export(args) => {
            let filter = KeytreeFilter {
                all: args.all,
                repos: args.repo,
                envs: args.env,
                profiles: args.profiles,
            };
            let given = passphrase_if_given(&args.passphrase)?;
            let report = keystore_export(ctx, &filter, args.out.as_deref(), given)?;
            for (label, reason) in &report.skipped {
                eprintln!("warning: skipped {label}: {reason}");
            }
            for label in &report.entries {
                eprintln!("  exported {label}");
            }
            for name in &report.profiles {
                eprintln!("  exported profile {name}");
            }
            println!("wrote {}", report.path.display());
            if let Some(passphrase) = &report.generated_passphrase {
                println!("passphrase: {}", passphrase.as_str());
            }
            eprintln!(
                "Send the file and the passphrase on two different channels. On the other machine:\n  vsync keystore import {}",
                report.path.display()
            );
            Ok(())
        }
        KeystoreCommand::Import {
            file,
            force,
            passphrase,
        } => {
            let passphrase = read_passphrase(&passphrase)?;
            let report = keystore_import(ctx, &file, &passphrase, force)?;
            let describe = |outcome: &ImportOutcome| match outcome {
                ImportOutcome::Imported => "imported".to_owned(),
                ImportOutcome::Replaced => "replaced (--force)".to_owned(),
                ImportOutcome::Unchanged => "already here, unchanged".to_owned(),
                ImportOutcome::Skipped(why) => format!("skipped: {why}"),
            };
            for (name, outcome) in &report.profiles {
                println!("profile {name}: {}", describe(outcome));
            }
            for (label, outcome) in &report.entries {
                println!("{label}: {}", describe(outcome));
            }
            eprintln!(
                "keys are in the {}; run `vsync pull <env>` in each repo to fetch the vault contents",
                report.keystore
            );
            Ok(())
        }
    }
}

pub fn use_link(ctx: &Context, env: Option<String>, link: Option<PathBuf>) -> Result<(), Failure> {
    let Some(env) = env else {
        let status = vsync_ops::link_status(ctx, link.as_deref())?;
        match &status.state {
            LinkState::Symlink(target) => println!("{} → {}", status.display, target.display()),
            LinkState::Missing => println!("(no {})", status.display),
            LinkState::RegularFile => println!(
                "{} is a regular file — not a vsync symlink, untouched",
                status.display
            ),
            LinkState::Other => println!("{} is not a file — untouched", status.display),
        }
        return Ok(());
    };
    let report = vsync_ops::use_env(ctx, &env, link.as_deref())?;
    if let Some(warning) = &report.gitignore_warning {
        eprintln!("warning: {warning}");
    }
    if let Some(previous) = &report.replaced {
        eprintln!("(was → {})", previous.display());
    }
    if let LinkState::Symlink(target) = &report.link.state {
        println!("{} → {}", report.link.display, target.display());
    }
    Ok(())
}
