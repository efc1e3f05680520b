//! `vsync sync <env> <target>`: flags in, report out.

use clap::{Args, ValueEnum};
use vsync_engine::sync::{Action, Drift, Outcome, SyncOptions, SyncStatus};
use vsync_ops::{
    Context, EXIT_SYNC_NOOP, EXIT_SYNC_PARTIAL, GithubScope, ParserPolicy, RoutingFlags,
    SinkSettings, SyncOutcome, SyncRequest, Target,
};

use crate::commands::Failure;
use crate::progress::StderrProgress;

#[derive(Args)]
pub struct SyncArgs {
    /// The env whose `.env.<env>` is synced.
    env: String,
    /// gh | gcp | aws | azure | vault (or github-actions, gcp-secret-manager,
    /// aws-secrets-manager, azure-key-vault, vault-kv).
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
    /// GitHub repository `owner/name` (saved for next time).
    #[arg(long)]
    gh_repo: Option<String>,
    /// Which GitHub secrets: environment (named after the env), repository,
    /// or organization (with --gh-org).
    #[arg(long, value_enum, default_value_t = GhScope::Environment)]
    gh_scope: GhScope,
    /// The GitHub organisation, for --gh-scope=organization.
    #[arg(long, required_if_eq("gh_scope", "organization"))]
    gh_org: Option<String>,
    /// The GitHub environment, when not named after the vsync env.
    #[arg(long)]
    gh_environment: Option<String>,
    /// Read the GitHub token from this file (`-`: standard input) instead
    /// of GITHUB_TOKEN / GH_TOKEN / `gh auth token`.
    #[arg(long, value_name = "PATH")]
    gh_token_file: Option<String>,
    /// GCP project id (saved).
    #[arg(long)]
    gcp_project: Option<String>,
    /// AWS region (saved).
    #[arg(long)]
    aws_region: Option<String>,
    /// Prefix of the AWS secret names (saved).
    #[arg(long)]
    aws_secret_prefix: Option<String>,
    /// Prune AWS secrets without the recovery window.
    #[arg(long)]
    aws_force_delete: bool,
    /// Azure Key Vault name (saved).
    #[arg(long)]
    azure_vault: Option<String>,
    /// HashiCorp Vault address (saved).
    #[arg(long)]
    vault_addr: Option<String>,
    /// HashiCorp Vault KV v2 mount (saved).
    #[arg(long)]
    vault_mount: Option<String>,
    /// Secret path under the mount (saved).
    #[arg(long)]
    vault_path: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum GhScope {
    Environment,
    Repository,
    Organization,
}

pub fn run(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    args: SyncArgs,
) -> Result<(), Failure> {
    let target: Target = args.target.parse()?;
    let mut settings = SinkSettings::from_env();
    settings.github_scope = match args.gh_scope {
        GhScope::Environment => GithubScope::Environment,
        GhScope::Repository => GithubScope::Repository,
        GhScope::Organization => GithubScope::Organization(args.gh_org.clone().unwrap_or_default()),
    };
    settings.github_environment = args.gh_environment.clone();
    if let Some(path) = &args.gh_token_file {
        settings.github_token = Some(SinkSettings::read_token_file(path)?);
    }
    settings.aws_force_delete = args.aws_force_delete;
    let request = SyncRequest {
        routing: RoutingFlags {
            gh_repo: args.gh_repo,
            gcp_project: args.gcp_project,
            aws_region: args.aws_region,
            aws_secret_prefix: args.aws_secret_prefix,
            azure_vault: args.azure_vault,
            vault_addr: args.vault_addr,
            vault_mount: args.vault_mount,
            vault_path: args.vault_path,
        },
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
    let outcome = runtime.block_on(vsync_ops::sync(
        ctx, &args.env, target, &request, &settings, &progress,
    ))?;
    drop(progress);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).expect("a report serialises")
        );
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
