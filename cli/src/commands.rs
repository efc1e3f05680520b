//! One function per command: call the library, print the report.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use vsync_ops::{
    Context, ImportOutcome, InitOptions, OpsError, PullOptions, PushOptions, ShareImportOptions,
    TokenOverrides, VersionsReport, export_share, import_share,
};
use zeroize::Zeroizing;

use crate::progress::StderrProgress;
use crate::secret_input::read_secret;
use crate::{
    Cli, Command, ConfigCommand, InitArgs, PassphraseArgs, ProfileAddArgs, ProfileCommand, PullArgs,
};

/// Prints a command's `--json` output: pretty, on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON output serialises")
    );
}

/// A failed command: what to print and the exit code.
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl From<OpsError> for Failure {
    fn from(err: OpsError) -> Self {
        Failure {
            message: err.to_string(),
            code: u8::try_from(err.exit_code()).unwrap_or(1),
        }
    }
}

impl Failure {
    /// An exit code for an outcome the command has already reported (a
    /// partial sync, a no-op under `--detailed-exitcode`).
    pub fn reported(code: u8) -> Self {
        Failure {
            message: String::new(),
            code,
        }
    }
}

/// A usage problem the parser cannot see (exit code 2, like clap's).
pub fn usage(message: String) -> Failure {
    Failure { message, code: 2 }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    // Generated help needs no machine state (and asks no keychain).
    match &cli.command {
        Command::Completions { shell } => {
            crate::docs::completions(*shell);
            return Ok(());
        }
        Command::Man { dir } => return crate::docs::man(dir.as_deref()),
        Command::Plan(crate::plan::PlanArgs {
            command: Some(crate::plan::PlanCommand::Schema),
            ..
        }) => {
            crate::plan::schema();
            return Ok(());
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| usage(format!("cannot start the async runtime: {err}")))?;
    // An `exec` booted from VSYNC_CONFIG uses no local state at all: no
    // keystore is asked, nothing is remembered.
    let command = match cli.command {
        Command::Exec(args) if vsync_ops::bootstrap_configured() => {
            return crate::exec::run(None, &runtime, args);
        }
        command => command,
    };
    let cwd =
        std::env::current_dir().map_err(|err| usage(format!("no working directory: {err}")))?;
    let ctx = Context::from_env(cwd, cli.repo)?;
    if let Some(notice) = &ctx.keystore_notice {
        eprintln!("note: {notice}");
    }
    // `doctor` writes nothing, not even the keystore choice.
    let writes_nothing = matches!(command, Command::Doctor { .. });
    if !writes_nothing && let Err(err) = ctx.remember_keystore_fallback() {
        eprintln!(
            "warning: could not remember the file keystore for this machine ({err}); the note above will repeat"
        );
    }
    match command {
        Command::Profile(command) => run_profile(&ctx, command),
        Command::Init(args) => init(&ctx, args),
        Command::Push { env, force, audit } => {
            let progress = StderrProgress::new();
            let options = PushOptions {
                force,
                audit: audit.into(),
            };
            let report = runtime.block_on(vsync_ops::push(&ctx, &env, &options, &progress))?;
            drop(progress);
            println!(
                "pushed {} (version: {}, generation {}, {} files)",
                report.target, report.ts, report.generation, report.files
            );
            Ok(())
        }
        Command::Pull(args) => pull(&ctx, &runtime, args),
        Command::Sync(args) => crate::sync::run(&ctx, &runtime, args),
        Command::Versions { env, json } => {
            let report = runtime.block_on(vsync_ops::versions(&ctx, &env))?;
            print_versions(&report, json);
            Ok(())
        }
        Command::Export {
            env,
            out,
            passphrase,
            audit,
        } => {
            let given = passphrase_if_given(&passphrase)?;
            let report = runtime.block_on(export_share(
                &ctx,
                &env,
                out.as_deref(),
                given,
                &audit.into(),
                &StderrProgress::new(),
            ))?;
            println!("wrote {}", report.path.display());
            if let Some(passphrase) = &report.generated_passphrase {
                println!("passphrase: {}", passphrase.as_str());
            }
            if let Some(tree) = &report.inside_working_tree {
                eprintln!(
                    "warning: {} is inside the git working tree {}; never commit it (it holds the env's key) — move it out or delete it once sent",
                    report.path.display(),
                    tree.display()
                );
            }
            eprintln!(
                "Send the file and the passphrase on two different channels. The teammate runs:\n  vsync import {env} {}",
                report.path.display()
            );
            Ok(())
        }
        Command::RuntimeToken {
            env,
            access_key,
            secret_key_file,
            no_validate,
        } => {
            let secret_access_key = match &secret_key_file {
                Some(file) => Some(
                    read_secret(Some(file), None, "the secret access key", "").map_err(usage)?,
                ),
                None => None,
            };
            let overrides = TokenOverrides {
                access_key_id: access_key,
                secret_access_key,
            };
            let token = runtime.block_on(vsync_ops::runtime_token(
                &ctx,
                &env,
                overrides,
                !no_validate,
            ))?;
            if let Some(warning) = &token.warning {
                eprintln!("warning: {warning}");
            }
            println!("{}", token.blob.as_str());
            Ok(())
        }
        Command::Import {
            env,
            from: Some(from),
            source,
            ..
        } => crate::import::run(&ctx, &runtime, &env, &from, source),
        Command::ImportAlias { env, from, source } => {
            crate::import::run(&ctx, &runtime, &env, from, source)
        }
        Command::Import {
            env,
            path,
            file,
            force,
            accept_routing,
            passphrase,
            audit,
            from: None,
            source: _,
        } => {
            let file = path.or(file).expect("clap requires one of them");
            let passphrase = read_passphrase(&passphrase)?;
            let options = ShareImportOptions {
                force,
                accept_routing,
            };
            let report = runtime.block_on(import_share(
                &ctx,
                &env,
                &file,
                &passphrase,
                options,
                &audit.into(),
                &StderrProgress::new(),
            ))?;
            if let Some(routing) = &report.routing {
                if report.routing_kept {
                    eprintln!("kept the share's {routing}");
                } else {
                    eprintln!(
                        "dropped the share's {routing}: check it, then import again with --accept-routing to keep it, or pass your own routing flags to `vsync sync`"
                    );
                }
            }
            if let Some(share_env) = &report.share_env {
                eprintln!("note: the share was exported from env {share_env:?}; saved as {env:?}");
            }
            if report.pin_written {
                eprintln!("wrote .vsync (repo={}); please commit it", report.repo);
            }
            let outcome = match report.outcome {
                ImportOutcome::Unchanged => "unchanged",
                ImportOutcome::Replaced => "replaced",
                _ => "imported",
            };
            println!(
                "{outcome} {}/{} (config {}, key in the {})",
                report.repo,
                report.env,
                report.config_path.display(),
                report.keystore
            );
            Ok(())
        }
        Command::Audit(args) => crate::lifecycle::audit(&ctx, &runtime, args),
        Command::RotatePassphrase(args) => crate::lifecycle::rotate(&ctx, &runtime, args),
        Command::Keystore(command) => crate::lifecycle::keystore(&ctx, command),
        Command::Use { env, link } => crate::lifecycle::use_link(&ctx, env, link),
        Command::Status {
            json,
            quiet,
            check_remote,
        } => crate::status::run(&ctx, &runtime, json, quiet, check_remote),
        Command::Doctor { json } => crate::doctor::run(&ctx, &runtime, json),
        Command::Exec(args) => crate::exec::run(Some(&ctx), &runtime, args),
        Command::Config(ConfigCommand::Exec(args)) => crate::config::exec(&ctx, args),
        Command::Plan(args) => crate::plan::run(&ctx, &runtime, args),
        Command::Compare {
            first,
            second,
            json,
        } => {
            let comparison = vsync_ops::compare(&ctx, &first, &second)?;
            crate::exec::print_comparison(&comparison, json);
            Ok(())
        }
        Command::Completions { .. } | Command::Man { .. } => unreachable!("answered above"),
    }
}

/// Says why a secret given as a flag's value is a risk; the flag keeps
/// working (upstream has it).
pub fn warn_secret_in_argv(flag: &str) {
    eprintln!(
        "warning: {flag} puts a secret in the process list and the shell history; prefer {flag}-file=<file>"
    );
}

pub fn passphrase_if_given(args: &PassphraseArgs) -> Result<Option<Zeroizing<String>>, Failure> {
    if let Some(given) = &args.passphrase {
        warn_secret_in_argv("--passphrase");
        return Ok(Some(Zeroizing::new(given.clone())));
    }
    match &args.passphrase_file {
        Some(file) => read_secret(Some(file), None, "the share passphrase", "")
            .map(Some)
            .map_err(usage),
        None => Ok(None),
    }
}

pub fn read_passphrase(args: &PassphraseArgs) -> Result<Zeroizing<String>, Failure> {
    match passphrase_if_given(args)? {
        Some(passphrase) => Ok(passphrase),
        None => read_secret(
            None,
            None,
            "the share passphrase",
            "pass --passphrase-file=<file>",
        )
        .map_err(usage),
    }
}

fn run_profile(ctx: &Context, command: ProfileCommand) -> Result<(), Failure> {
    match command {
        ProfileCommand::List => {
            let profiles = vsync_ops::list_profiles(ctx)?;
            if profiles.is_empty() {
                println!(
                    "no profiles yet; add one with `vsync profile add <name> --endpoint=… --bucket=… --access-key=…`"
                );
            }
            for (name, profile) in &profiles {
                let endpoint = profile
                    .endpoint
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                println!("{name}  {endpoint}  {}", profile.bucket);
            }
            eprintln!(
                "{} profile{} at {}/",
                profiles.len(),
                if profiles.len() == 1 { "" } else { "s" },
                vsync_ops::profiles_dir(ctx).display()
            );
            Ok(())
        }
        ProfileCommand::Show { name } => {
            let (profile, path) = vsync_ops::show_profile(ctx, &name)?;
            println!("profile:         {name}");
            println!("path:            {}", path.display());
            println!("endpoint:        {}", profile.endpoint);
            println!("region:          {}", profile.region);
            println!("bucket:          {}", profile.bucket);
            println!(
                "prefix:          {}",
                profile.prefix.as_deref().unwrap_or("(none)")
            );
            println!(
                "provider:        {}",
                profile.provider().unwrap_or("(detected from the endpoint)")
            );
            println!(
                "accessKeyId:     {}",
                vsync_ops::mask_access_key(&profile.access_key_id)
            );
            println!("secretAccessKey: {}", vsync_ops::SECRET_MASK);
            Ok(())
        }
        ProfileCommand::Add(args) => profile_add(ctx, args),
        ProfileCommand::Remove { name, yes } => {
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(usage(format!(
                        "removing profile {name:?} needs confirmation; pass --yes"
                    )));
                }
                eprint!("remove profile {name:?}? [y/N] ");
                let mut answer = String::new();
                std::io::stdin()
                    .read_line(&mut answer)
                    .map_err(|err| usage(err.to_string()))?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    eprintln!("kept");
                    return Ok(());
                }
            }
            vsync_ops::remove_profile(ctx, &name)?;
            println!("removed profile {name}");
            Ok(())
        }
    }
}

fn profile_add(ctx: &Context, args: ProfileAddArgs) -> Result<(), Failure> {
    let secret = read_secret(
        args.secret_key_file.as_deref(),
        Some("VSYNC_SECRET_ACCESS_KEY"),
        "the secret access key",
        "pass --secret-key-file=<file> or set VSYNC_SECRET_ACCESS_KEY",
    )
    .map_err(usage)?;
    let mut profile = vsync_ops::Profile::new(
        &args.endpoint,
        &args.region,
        &args.bucket,
        &args.access_key,
        secret,
        args.prefix.as_deref(),
    );
    profile.set_provider(args.provider.map(vsync_ops::Provider::name));
    vsync_ops::add_profile(ctx, &args.name, &profile, args.force)?;
    println!("added profile {}", args.name);
    Ok(())
}

fn init(ctx: &Context, args: InitArgs) -> Result<(), Failure> {
    let options = InitOptions {
        profile: args.profile,
        local: args.local,
        vault_folder: args.vault_folder,
        audit: args.audit,
        force: args.force,
        provider: args.provider,
    };
    let report = vsync_ops::init(ctx, &args.env, &options)?;
    if report.local_store {
        eprintln!(
            "no profile given: the vault lives in the local directory store ({}); add a profile and re-run `vsync init {} --profile=<name> --force` to use a bucket",
            report.store, args.env
        );
    }
    if report.pin_written {
        eprintln!("wrote .vsync (repo={}); please commit it", report.repo);
    }
    println!("initialised {}/{}", report.repo, args.env);
    println!("  store:        {}", report.store);
    println!("  config:       {}", report.config_path.display());
    println!("  key:          {}", report.keystore);
    println!("  vault folder: {}", report.vault_dir.display());
    println!(
        "next: put .env.{} and any assets in the vault folder, then `vsync push {}`",
        args.env, args.env
    );
    Ok(())
}

fn pull(ctx: &Context, runtime: &tokio::runtime::Runtime, args: PullArgs) -> Result<(), Failure> {
    let at = match args.at.as_deref().map(str::trim) {
        Some(at) => Some(at.parse().map_err(|_| {
            usage(format!(
                "--at={at:?} is not a version timestamp (YYYYMMDD-HHmmss); `vsync versions {}` lists them",
                args.env
            ))
        })?),
        None => None,
    };
    let options = PullOptions {
        at,
        backup: args.backup,
        force: args.force,
        accept_rollback: args.accept_rollback,
        audit: args.audit.into(),
    };
    let progress = StderrProgress::new();
    let report = runtime.block_on(vsync_ops::pull(ctx, &args.env, &options, &progress))?;
    drop(progress);
    if let Some(backup) = &report.plain_backup {
        eprintln!(
            "the previous vault folder was copied to {}",
            backup.display()
        );
    }
    for file in &report.removed {
        eprintln!("removed {file} (no longer in the vault; kept in the encrypted backup)");
    }
    println!(
        "pulled {} (version: {}, {} files)",
        report.target,
        report.ts,
        report.files.len()
    );
    Ok(())
}

fn print_versions(report: &VersionsReport, json: bool) {
    if json {
        let versions: Vec<_> = report
            .versions
            .iter()
            .map(|v| serde_json::json!({"ts": v.ts.as_str(), "size": v.size, "current": v.current}))
            .collect();
        let doc = serde_json::json!({
            "location": report.location,
            "current": report.current.as_ref().map(|ts| ts.as_str()),
            "generation": report.generation,
            "versions": versions,
        });
        print_json(&doc);
        return;
    }
    if report.versions.is_empty() {
        println!("(no versions yet at {})", report.location);
        return;
    }
    let count = report.versions.len();
    println!(
        "{}  ({count} version{})",
        report.location,
        if count == 1 { "" } else { "s" }
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for version in &report.versions {
        let marker = if version.current { " *" } else { "  " };
        println!(
            "{marker} {}  {:>8}  {}",
            version.ts,
            human_size(version.size),
            age(version.ts.unix_seconds(), now)
        );
    }
    if let Some(current) = &report.current
        && !report.versions.iter().any(|v| &v.ts == current)
    {
        eprintln!("warning: the pointer names {current}, whose bundle is missing");
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1_048_576 => format!("{:.1}KB", bytes as f64 / 1024.0),
        _ => format!("{:.1}MB", bytes as f64 / 1_048_576.0),
    }
}

fn age(then: u64, now: u64) -> String {
    let secs = now.saturating_sub(then);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}
