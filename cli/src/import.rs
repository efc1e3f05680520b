//! `vsync import <env> --from <platform>` and tsafe's aliases (`kv-pull`,
//! `vault-pull`, `op-pull`): flags in, a value-blind diff out.

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches, ValueEnum};
use vsync_engine::import::{Destination, ImportAction, ImportOptions, NameRules, Prefer};
use vsync_ops::{Context, EXIT_IMPORT_CONFLICT, SourceImportOutcome, SourceImportRequest};

use crate::commands::{Failure, print_json, usage};
use crate::progress::StderrProgress;

/// The flags of an import from a platform.
#[derive(Args, Clone, Default)]
pub struct SourceArgs {
    /// A setting of the source as `field=value` (repeatable), e.g.
    /// `--set vaultName=acme-prod`; `vsync import --help` lists each
    /// platform's fields.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    sets: Vec<String>,
    /// Only names starting with PREFIX are imported, without it.
    #[arg(long)]
    prefix: Option<String>,
    /// Import the name OLD (once the prefix is stripped) as the key NEW
    /// (repeatable).
    #[arg(long = "map", value_name = "OLD=NEW")]
    renames: Vec<String>,
    /// Only keys matching this glob (repeatable).
    #[arg(long = "include", value_name = "GLOB")]
    include: Vec<String>,
    /// Keys matching this glob are left out (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,
    /// Settle keys changed on both sides since the last import.
    #[arg(long, value_enum)]
    prefer: Option<PreferSide>,
    /// Delete keys an earlier import from this source brought in that the
    /// source no longer has (keys it never provided are never deleted).
    #[arg(long)]
    delete_missing: bool,
    /// Show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Machine-readable report on stdout.
    #[arg(long)]
    json: bool,
    /// Push the env once the import changed it.
    #[arg(long)]
    push: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum PreferSide {
    Source,
    Vault,
}

/// The help text listing every platform that can be imported from, with
/// its settings and credentials: from the registry.
pub fn sources_help() -> String {
    let mut help = String::from("Import sources (--from) and their --set fields:\n");
    for platform in vsync_ops::platforms::REGISTRY {
        let Some(source) = platform.source else {
            continue;
        };
        help.push_str(&format!(
            "  {} ({}): {}\n",
            platform.short, platform.name, platform.about
        ));
        for setting in source.settings {
            help.push_str(&format!("      {:<14} {}\n", setting.field, setting.help));
        }
        help.push_str(&format!("      credentials: {}\n", source.credentials));
    }
    help
}

/// `vsync` with a command for every tsafe-style alias the registry lists
/// (`kv-pull`), each taking the env and `import`'s flags.
pub fn with_aliases(mut command: Command) -> Command {
    for platform in vsync_ops::platforms::REGISTRY {
        for alias in platform.source.map_or(&[][..], |source| source.aliases) {
            let about = format!(
                "tsafe's `{alias}`: `vsync import <env> --from {}` ({})",
                platform.short, platform.about
            );
            let env = Arg::new("env").required(true).help("The env imported into");
            command = command
                .subcommand(SourceArgs::augment_args(Command::new(*alias).arg(env)).about(about));
        }
    }
    command
}

/// The import an alias command asks for, when the command line is one.
pub(crate) fn alias_matches(matches: &ArgMatches) -> Option<crate::Command> {
    let (name, sub) = matches.subcommand()?;
    let platform = vsync_ops::platforms::source_alias(name)?;
    let source = SourceArgs::from_arg_matches(sub).unwrap_or_else(|error| error.exit());
    Some(crate::Command::ImportAlias {
        env: sub.get_one::<String>("env")?.clone(),
        from: platform.short,
        source,
    })
}

pub fn run(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    env: &str,
    from: &str,
    args: SourceArgs,
) -> Result<(), Failure> {
    let renames = args
        .renames
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(old, new)| !old.is_empty() && !new.is_empty())
                .map(|(old, new)| (old.to_owned(), new.to_owned()))
                .ok_or_else(|| usage(format!("--map takes OLD=NEW, got {pair:?}")))
        })
        .collect::<Result<_, _>>()?;
    let request = SourceImportRequest {
        sets: args.sets,
        options: ImportOptions {
            names: NameRules {
                prefix: args.prefix,
                renames,
                include: args.include,
                exclude: args.exclude,
            },
            prefer: args.prefer.map(|side| match side {
                PreferSide::Source => Prefer::Source,
                PreferSide::Vault => Prefer::Vault,
            }),
            delete_missing: args.delete_missing,
            ..ImportOptions::default()
        },
        dry_run: args.dry_run,
        push: args.push,
    };
    let progress = StderrProgress::new();
    let environment = |name: &str| std::env::var(name).ok();
    let outcome = runtime.block_on(vsync_ops::import_from(
        ctx,
        env,
        from,
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
    if outcome.dry_run && !outcome.conflicts().is_empty() {
        return Err(Failure::reported(EXIT_IMPORT_CONFLICT as u8));
    }
    Ok(())
}

fn print_report(outcome: &SourceImportOutcome) {
    for line in &outcome.lines {
        let action = match line.action {
            ImportAction::Add => "add",
            ImportAction::Change => "change",
            ImportAction::Unchanged => "unchanged",
            ImportAction::KeepVault => "keep (changed in the vault since the last import)",
            ImportAction::OnlyInVault => "only in the vault",
            ImportAction::Delete => "delete (gone from the source)",
            ImportAction::Conflict => "CONFLICT (changed on both sides; --prefer settles it)",
            ImportAction::Disabled => "disabled at the source (not imported)",
        };
        let from = match &line.source {
            Some(source) if *source != line.key => format!(" (from {source})"),
            _ => String::new(),
        };
        let file = match line.destination {
            Destination::Asset => " [asset file]",
            Destination::EnvFile => "",
        };
        println!("  {:<9} {}{from}{file}", action, line.key);
    }
    let count = |action| outcome.lines.iter().filter(|l| l.action == action).count();
    let verb = if outcome.dry_run {
        "would write"
    } else {
        "wrote"
    };
    println!(
        "{} → {}: {verb} {}; {} added, {} changed, {} deleted, {} unchanged, {} kept, {} only in the vault, {} conflicts",
        outcome.origin,
        outcome.env_file.display(),
        outcome.written,
        count(ImportAction::Add),
        count(ImportAction::Change),
        count(ImportAction::Delete),
        count(ImportAction::Unchanged),
        count(ImportAction::KeepVault),
        count(ImportAction::OnlyInVault),
        count(ImportAction::Conflict),
    );
    if let Some(backup) = &outcome.backup {
        eprintln!(
            "the previous vault folder is in the encrypted backup {}",
            backup.display()
        );
    }
    if let Some(ts) = &outcome.pushed {
        println!("pushed version {ts}");
    }
}
