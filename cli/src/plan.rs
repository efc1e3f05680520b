//! `vsync plan`: every import and sync target of `vsync.toml` planned at
//! once (and kept as a reviewed artifact with `--out`), `vsync plan apply`,
//! and `vsync plan validate | schema | init` for the file itself.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vsync_engine::import::ImportAction;
use vsync_engine::sync::{Action, SyncReport};
use vsync_ops::{
    Applied, ApplyReport, ApplyRequest, ApplyStatus, Context, EXIT_SYNC_NOOP, EXIT_SYNC_PARTIAL,
    EXIT_SYNC_REFUSED, ImportResult, PlanReport, PlanScope, SourceImportOutcome, TargetResult,
};
use vsync_plan::{Artifact, Shard};

use crate::commands::{Failure, print_json, usage};
use crate::progress::StderrProgress;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub command: Option<PlanCommand>,
    /// Only this env (repeatable).
    #[arg(long = "env", value_name = "ENV")]
    envs: Vec<String>,
    /// Only this sync target, a platform's short or long name (repeatable).
    #[arg(long = "target", value_name = "PLATFORM")]
    targets: Vec<String>,
    /// The plan file (default: vsync.toml at the working tree's root).
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Only the I-th of N stable parts of the sync targets (a CI matrix
    /// job); imports are run by part 1.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Write the reviewed plan artifact here, for `vsync plan apply`
    /// (names, actions and revisions, never a value; tagged with the envs'
    /// keys).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Machine-readable report on stdout.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// A Markdown report on stdout, for a pull-request comment or a CI job
    /// summary.
    #[arg(long)]
    markdown: bool,
    /// Exit 10 when nothing would change.
    #[arg(long)]
    detailed_exitcode: bool,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The reviewed artifact `vsync plan --out` wrote; without it the plan
    /// is made and applied in one go.
    #[arg(value_name = "PLAN.json")]
    artifact: Option<PathBuf>,
    /// Only this env (repeatable; not with an artifact, which has its
    /// scope).
    #[arg(long = "env", value_name = "ENV", conflicts_with = "artifact")]
    envs: Vec<String>,
    /// Only this sync target (repeatable; not with an artifact).
    #[arg(long = "target", value_name = "PLATFORM", conflicts_with = "artifact")]
    targets: Vec<String>,
    /// Only the I-th of N parts of the sync targets (not with an artifact).
    #[arg(long, value_name = "I/N", conflicts_with = "artifact")]
    shard: Option<Shard>,
    /// The plan file (default: vsync.toml at the working tree's root).
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Exit 10 when nothing needed writing.
    #[arg(long)]
    detailed_exitcode: bool,
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Check vsync.toml (at the working tree's root, or --file): every
    /// problem with its line and column and what to write instead.
    Validate {
        /// The plan file to check.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Print the JSON Schema of vsync.toml, for editors that complete and
    /// check TOML against one (Taplo, Even Better TOML).
    Schema,
    /// Write vsync.toml from the sync routing this machine saved for the
    /// repo's envs (`vsync sync` remembers it), to move over without
    /// retyping.
    Init {
        /// Replace an existing vsync.toml.
        #[arg(long)]
        force: bool,
    },
    /// Apply the plan: imports (then push), then every sync target at once.
    /// With a reviewed artifact, exactly what was reviewed, refused (exit
    /// 14) when anything moved since; a killed apply re-run with the same
    /// artifact finishes without writing again what it wrote.
    Apply(ApplyArgs),
}

/// `vsync plan schema`, which needs no machine state.
pub fn schema() {
    print_json(&vsync_plan::schema());
}

pub fn run(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    args: PlanArgs,
) -> Result<(), Failure> {
    let Some(command) = args.command else {
        return plan(ctx, runtime, args);
    };
    match command {
        PlanCommand::Schema => schema(),
        PlanCommand::Validate { file } => {
            let path = match file {
                Some(path) => path,
                None => vsync_ops::plan_path(ctx)?,
            };
            let plan = read(&path)?;
            let imports: usize = plan.env.values().map(|env| env.import.len()).sum();
            let syncs: usize = plan.env.values().map(|env| env.sync.len()).sum();
            println!(
                "{}: ok ({} env(s), {imports} import(s), {syncs} sync target(s))",
                path.display(),
                plan.env.len()
            );
            print_overrides(&plan.overrides);
        }
        PlanCommand::Apply(args) => return apply(ctx, runtime, args),
        PlanCommand::Init { force } => {
            let written = vsync_ops::plan_init(ctx, force)?;
            println!(
                "wrote {} ({} env(s), {} sync target(s) from this machine's saved routing); review it and commit it",
                written.path.display(),
                written.envs,
                written.targets
            );
        }
    }
    Ok(())
}

/// `vsync plan`: plans every sync target in scope, writing nothing but the
/// artifact, if asked.
fn plan(ctx: &Context, runtime: &tokio::runtime::Runtime, args: PlanArgs) -> Result<(), Failure> {
    let (path, file) = load(ctx, args.file)?;
    let scope = PlanScope {
        envs: args.envs,
        targets: args.targets,
        shard: args.shard,
    };
    let progress = StderrProgress::new();
    let environment = |name: &str| std::env::var(name).ok();
    let report = runtime.block_on(vsync_ops::plan(ctx, &file, &scope, &environment, &progress))?;
    drop(progress);
    if args.json {
        print_json(&report);
    } else if args.markdown {
        print_markdown(&report);
    } else {
        print_text(&report);
    }
    if report.refused() > 0 {
        return Err(Failure::reported(EXIT_SYNC_REFUSED as u8));
    }
    if let Some(out) = args.out {
        let artifact = vsync_ops::artifact(ctx, &file, &scope, &report)?;
        vsync_ops::save_artifact(&out, &artifact)?;
        eprintln!(
            "wrote the plan artifact {} (from {}); apply it with `vsync plan apply {}`",
            out.display(),
            path.display(),
            out.display()
        );
    }
    if args.detailed_exitcode && report.changes_nothing() {
        return Err(Failure::reported(EXIT_SYNC_NOOP as u8));
    }
    Ok(())
}

/// The plan file at `file`, or vsync.toml at the working tree's root.
fn load(ctx: &Context, file: Option<PathBuf>) -> Result<(PathBuf, vsync_plan::PlanFile), Failure> {
    let path = match file {
        Some(path) => path,
        None => vsync_ops::plan_path(ctx)?,
    };
    let file = read(&path)?;
    Ok((path, file))
}

/// Reads the plan file at `path` with this process's `VSYNC_ENV__…`
/// overrides.
fn read(path: &std::path::Path) -> Result<vsync_plan::PlanFile, Failure> {
    let overrides =
        vsync_plan::overrides::from_environment().map_err(|err| usage(err.to_string()))?;
    vsync_plan::load(path, &overrides).map_err(|err| usage(err.to_string()))
}

/// The overrides a plan was made with: part of what is reviewed.
fn print_overrides(overrides: &[vsync_plan::Override]) {
    for one in overrides {
        println!("override {}={:?}", one.variable, one.value);
    }
}

/// `vsync plan apply`.
fn apply(ctx: &Context, runtime: &tokio::runtime::Runtime, args: ApplyArgs) -> Result<(), Failure> {
    let (_, file) = load(ctx, args.file)?;
    let artifact = match &args.artifact {
        Some(path) => Some(Artifact::load(path).map_err(vsync_ops::OpsError::from)?),
        None => None,
    };
    let request = ApplyRequest {
        artifact,
        scope: PlanScope {
            envs: args.envs,
            targets: args.targets,
            shard: args.shard,
        },
    };
    let progress = StderrProgress::new();
    let environment = |name: &str| std::env::var(name).ok();
    let report = runtime.block_on(vsync_ops::apply(
        ctx,
        &file,
        request,
        &environment,
        &progress,
    ))?;
    drop(progress);
    if args.json {
        print_json(&report);
    } else {
        print_applied(&report);
    }
    match report.status() {
        ApplyStatus::Applied => Ok(()),
        ApplyStatus::NoChange if args.detailed_exitcode => {
            Err(Failure::reported(EXIT_SYNC_NOOP as u8))
        }
        ApplyStatus::NoChange => Ok(()),
        ApplyStatus::Partial => Err(Failure::reported(EXIT_SYNC_PARTIAL as u8)),
        ApplyStatus::Refused => Err(Failure::reported(EXIT_SYNC_REFUSED as u8)),
    }
}

fn print_applied(report: &ApplyReport) {
    for import in &report.imports {
        let what = match &import.result {
            Applied::Applied(outcome) => format!(
                "{} key(s) written{}",
                outcome.written,
                outcome
                    .pushed
                    .as_ref()
                    .map(|version| format!(", pushed {version}"))
                    .unwrap_or_default()
            ),
            Applied::Skipped { reason } => format!("skipped: {reason}"),
            Applied::Refused { reason } => format!("refused: {reason}"),
            Applied::Failed { error } => format!("failed: {error}"),
        };
        println!("{} <- {}: {what}", import.env, import.from);
    }
    for target in &report.targets {
        match &target.result {
            Applied::Applied(outcome) => {
                let sync = &outcome.report;
                let applied = sync
                    .secrets
                    .iter()
                    .filter(|line| line.outcome == vsync_engine::sync::Outcome::Applied)
                    .count();
                println!(
                    "{} -> {}: {applied} written, {} failed, {} unchanged",
                    target.env,
                    sync.target,
                    sync.failures(),
                    sync.count(Action::Unchanged)
                );
                for line in &sync.secrets {
                    if let vsync_engine::sync::Outcome::Failed(error) = &line.outcome {
                        println!("  {} failed: {error}", line.plan.name);
                    }
                }
            }
            Applied::Skipped { reason } => {
                println!("{} -> {}: skipped: {reason}", target.env, target.to)
            }
            Applied::Refused { reason } => {
                println!("{} -> {}: refused: {reason}", target.env, target.to)
            }
            Applied::Failed { error } => {
                println!("{} -> {}: failed: {error}", target.env, target.to)
            }
        }
    }
}

/// The names of a report's lines with `action`.
fn names(report: &SyncReport, action: Action) -> Vec<&str> {
    report
        .secrets
        .iter()
        .filter(|line| line.plan.action == action)
        .map(|line| line.plan.name.as_str())
        .collect()
}

/// The actions a plan shows, with their words.
const ACTIONS: [(Action, &str); 5] = [
    (Action::Create, "create"),
    (Action::Update, "update"),
    (Action::Unchanged, "unchanged"),
    (Action::Prune, "delete"),
    (Action::Stale, "stale"),
];

fn drifted(report: &SyncReport) -> usize {
    report
        .secrets
        .iter()
        .filter(|line| line.plan.drift.is_some())
        .count()
}

/// The import actions a plan shows, with their words; the changing ones
/// are listed by name.
const IMPORT_ACTIONS: [(ImportAction, &str, bool); 6] = [
    (ImportAction::Add, "add", true),
    (ImportAction::Change, "change", true),
    (ImportAction::Unchanged, "unchanged", false),
    (ImportAction::Delete, "delete", true),
    (ImportAction::Conflict, "conflict", true),
    (ImportAction::Disabled, "disabled", false),
];

fn import_keys(outcome: &SourceImportOutcome, action: ImportAction) -> Vec<&str> {
    outcome
        .lines
        .iter()
        .filter(|line| line.action == action)
        .map(|line| line.key.as_str())
        .collect()
}

fn print_text(report: &PlanReport) {
    print_overrides(&report.overrides);
    for import in &report.imports {
        match &import.result {
            ImportResult::Refused { reason } => {
                println!("{} <- {}: refused: {reason}", import.env, import.from);
            }
            ImportResult::Planned(outcome) => {
                let counts: Vec<String> = IMPORT_ACTIONS
                    .iter()
                    .map(|(action, word, _)| {
                        format!("{} {word}", import_keys(outcome, *action).len())
                    })
                    .collect();
                println!(
                    "{} <- {}: {}",
                    import.env,
                    outcome.origin,
                    counts.join(", ")
                );
                for (action, word, _) in IMPORT_ACTIONS.iter().filter(|(_, _, listed)| *listed) {
                    let keys = import_keys(outcome, *action);
                    if !keys.is_empty() {
                        println!("  {word}: {}", keys.join(", "));
                    }
                }
            }
        }
    }
    for target in &report.targets {
        match &target.result {
            TargetResult::Refused { reason } => {
                println!("{} -> {}: refused: {reason}", target.env, target.to);
            }
            TargetResult::Planned(outcome) => {
                let sync = &outcome.report;
                let counts: Vec<String> = ACTIONS
                    .iter()
                    .map(|(action, word)| format!("{} {word}", sync.count(*action)))
                    .collect();
                println!(
                    "{} -> {}: {}, {} drifted; {}",
                    target.env,
                    sync.target,
                    counts.join(", "),
                    drifted(sync),
                    cost(sync)
                );
                // Every name that would change; unchanged ones only counted.
                for (action, word) in ACTIONS.iter().filter(|(a, _)| *a != Action::Unchanged) {
                    let listed = names(sync, *action);
                    if !listed.is_empty() {
                        println!("  {word}: {}", listed.join(", "));
                    }
                }
            }
        }
    }
    println!(
        "{} import(s), {} target(s), {} refused; nothing was written",
        report.imports.len(),
        report.targets.len(),
        report.refused()
    );
}

fn print_markdown(report: &PlanReport) {
    println!("### vsync plan\n");
    if !report.overrides.is_empty() {
        println!("`vsync.toml` with these overrides:\n");
        for one in &report.overrides {
            println!("- `{}={:?}`", one.variable, one.value.replace('`', "'"));
        }
        println!();
    }
    if !report.imports.is_empty() {
        println!(
            "| env | import from | add | change | unchanged | delete | conflict | disabled | |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
        for import in &report.imports {
            match &import.result {
                ImportResult::Refused { reason } => println!(
                    "| {} | {} | | | | | | | refused: {} |",
                    import.env,
                    import.from,
                    cell(reason)
                ),
                ImportResult::Planned(outcome) => {
                    let counts: Vec<String> = IMPORT_ACTIONS
                        .iter()
                        .map(|(action, _, _)| import_keys(outcome, *action).len().to_string())
                        .collect();
                    println!(
                        "| {} | {} | {} | |",
                        import.env,
                        cell(&outcome.origin),
                        counts.join(" | ")
                    );
                }
            }
        }
        println!();
    }
    println!(
        "| env | target | create | update | unchanged | delete | stale | drifted | calls | pacing | |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for target in &report.targets {
        match &target.result {
            TargetResult::Refused { reason } => println!(
                "| {} | {} | | | | | | | | | refused: {} |",
                target.env,
                target.to,
                cell(reason)
            ),
            TargetResult::Planned(outcome) => {
                let sync = &outcome.report;
                let counts: Vec<String> = ACTIONS
                    .iter()
                    .map(|(action, _)| sync.count(*action).to_string())
                    .collect();
                println!(
                    "| {} | {} | {} | {} | {} | ≥ {} s | |",
                    target.env,
                    cell(&sync.target),
                    counts.join(" | "),
                    drifted(sync),
                    sync.writes.calls,
                    sync.writes.paced_seconds
                );
            }
        }
    }
    println!("\nNothing was written.");
}

/// The write calls a target's plan takes and the least pacing time.
fn cost(sync: &SyncReport) -> String {
    format!(
        "{} write call(s), at least {} s of pacing",
        sync.writes.calls, sync.writes.paced_seconds
    )
}

/// `text` as one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
