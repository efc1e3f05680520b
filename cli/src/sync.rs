//! `vsync sync <env> <target>`: flags in, report out.

use clap::{Arg, ArgAction, ArgMatches, Args, Command};
use vsync_engine::sync::{Action, Drift, Outcome, SyncOptions, SyncStatus};
use vsync_ops::platforms::{self, SettingKind};
use vsync_ops::{
    Context, EXIT_SYNC_NOOP, EXIT_SYNC_PARTIAL, ParserPolicy, SyncOutcome, SyncRequest,
};

use crate::commands::{Failure, print_json};
use crate::progress::StderrProgress;

#[derive(Args)]
pub struct SyncArgs {
    /// The env whose `.env.<env>` is synced.
    env: String,
    /// The platform (the list comes from the registry).
    target: String,
    /// Show the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete secrets vsync wrote earlier that the vault no longer has.
    #[arg(long)]
    prune: bool,
    /// The most deletions one sync may make.
    #[arg(long, default_value_t = 10)]
    max_deletes: usize,
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Exit 10 when there is nothing to write (default: 0).
    #[arg(long)]
    detailed_exitcode: bool,
    /// Keys ending in this suffix name a file whose content is synced under
    /// the stem (repeatable; none by default).
    #[arg(long = "inline-file-suffix", value_name = "SUFFIX")]
    inline_file_suffixes: Vec<String>,
    /// A key not to sync (repeatable).
    #[arg(long = "exclude-property", value_name = "KEY")]
    exclude: Vec<String>,
    /// A setting of the target platform as `field=value` (repeatable),
    /// e.g. `--set repo=acme/api`; every field also has the flag listed
    /// under the platform's heading.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    sets: Vec<String>,
    /// The platform flags given, filled from the registry's arguments by
    /// [`platform_flags`].
    #[arg(skip)]
    pub flags: Vec<(String, String)>,
}

/// `vsync sync` with every platform's flags and target names, from the
/// registry: a platform compiled out is absent from `--help` too.
pub fn with_platform_flags(command: Command) -> Command {
    let targets: Vec<String> = platforms::REGISTRY
        .iter()
        .filter(|platform| platform.sink.is_some())
        .map(|platform| format!("{} ({}, {})", platform.short, platform.name, platform.about))
        .collect();
    let mut command = command.mut_arg("target", |arg| {
        arg.help(format!("The platform: {}", targets.join("; ")))
    });
    for platform in platforms::REGISTRY {
        for setting in platform.sink_settings() {
            let arg = Arg::new(setting.flag)
                .long(setting.flag)
                .help(setting.help)
                .help_heading(platform.about);
            command = command.arg(match setting.kind {
                SettingKind::Text => arg.value_name("VALUE").action(ArgAction::Set),
                SettingKind::Switch => arg.action(ArgAction::SetTrue),
            });
        }
    }
    command
}

/// The platform flags given to `vsync sync`, as `(flag, value)`.
pub fn platform_flags(matches: &ArgMatches) -> Vec<(String, String)> {
    let mut given = Vec::new();
    for platform in platforms::REGISTRY {
        for setting in platform.sink_settings() {
            let value = match setting.kind {
                SettingKind::Text => matches.get_one::<String>(setting.flag).cloned(),
                SettingKind::Switch => matches.get_flag(setting.flag).then(|| "true".to_owned()),
            };
            if let Some(value) = value {
                given.push((setting.flag.to_owned(), value));
            }
        }
    }
    given
}

pub fn run(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    args: SyncArgs,
) -> Result<(), Failure> {
    let request = SyncRequest {
        flags: args.flags,
        sets: args.sets,
        parser: ParserPolicy {
            inline_file_suffixes: args.inline_file_suffixes,
            exclude: args.exclude,
        },
        options: SyncOptions {
            dry_run: args.dry_run,
            prune: args.prune,
            max_deletes: args.max_deletes,
            ..SyncOptions::default()
        },
    };
    if !args.json {
        eprintln!("Parser policy:");
        for line in request.parser.describe() {
            eprintln!("  {line}");
        }
    }
    let progress = StderrProgress::new();
    let environment = |name: &str| std::env::var(name).ok();
    let outcome = runtime.block_on(vsync_ops::sync(
        ctx,
        &args.env,
        &args.target,
        &request,
        &environment,
        &progress,
    ))?;
    drop(progress);
    if args.json {
        print_json(&outcome);
    } else {
        print_report(&outcome);
    }
    match outcome.report.status {
        SyncStatus::Partial => Err(Failure::reported(EXIT_SYNC_PARTIAL as u8)),
        SyncStatus::NoOp if args.detailed_exitcode => Err(Failure::reported(EXIT_SYNC_NOOP as u8)),
        _ => Ok(()),
    }
}

fn print_report(outcome: &SyncOutcome) {
    let report = &outcome.report;
    for skipped in &outcome.skipped {
        eprintln!("skipped {} ({})", skipped.key, skipped.reason);
    }
    for line in &report.secrets {
        let plan = &line.plan;
        let action = match plan.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Prune => "delete",
            Action::Stale => "stale (not in the vault; --prune deletes it)",
            Action::Unreadable => "unreadable",
        };
        let drift = match plan.drift {
            Some(Drift::Edited) => " [drift: edited outside vsync]",
            Some(Drift::Deleted) => " [drift: deleted outside vsync]",
            Some(Drift::Unknown) => " [not written by vsync before]",
            None => "",
        };
        let result = match &line.outcome {
            Outcome::Applied => " ✓".to_owned(),
            Outcome::Failed(error) => format!(" ✗ {error}"),
            Outcome::Skipped => String::new(),
        };
        let key = match &plan.key {
            Some(key) if *key != plan.name => format!(" (from {key})"),
            _ => String::new(),
        };
        let note = plan
            .ownership
            .as_deref()
            .map(|note| format!(" — {note}"))
            .unwrap_or_default();
        println!("  {action:<9} {}{key}{drift}{result}{note}", plan.name);
    }
    let writes =
        report.count(Action::Create) + report.count(Action::Update) + report.count(Action::Prune);
    let summary = match report.status {
        SyncStatus::NoOp => "nothing to write".to_owned(),
        SyncStatus::Planned => format!("would write {writes} (dry run: nothing written)"),
        SyncStatus::Applied => format!("wrote {writes}"),
        SyncStatus::Partial => format!(
            "wrote {}, {} failed — run again to retry them",
            report
                .secrets
                .iter()
                .filter(|line| line.outcome == Outcome::Applied)
                .count(),
            report.failures()
        ),
    };
    println!(
        "{}: {summary}; {} created, {} updated, {} deleted, {} unchanged",
        report.target,
        report.count(Action::Create),
        report.count(Action::Update),
        report.count(Action::Prune),
        report.count(Action::Unchanged),
    );
}
