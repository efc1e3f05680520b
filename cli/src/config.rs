//! `vsync config exec <env>`: shows or changes the env's custom exec
//! policy, the trust mode `vsync exec --mode custom` applies.

use clap::Args;
use vsync_ops::{Context, ExecPolicy, ExecPolicyChange};

use crate::commands::{Failure, print_json};

#[derive(Args)]
pub struct ExecPolicyArgs {
    /// The env.
    env: String,
    /// The parent's variables a command inherits (comma-separated names;
    /// `NAME*` matches every name starting with NAME, `*` alone all of
    /// them). vsync's own credentials never pass, whatever this says.
    #[arg(long, value_name = "NAMES", value_delimiter = ',', num_args = 1)]
    inherit: Option<Vec<String>>,
    /// More of the parent's variables a command never gets (the same
    /// patterns; empty to clear).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', num_args = 1)]
    strip: Option<Vec<String>>,
    /// Always redact the command's output: `--no-redact` is refused (the
    /// default of a new policy).
    #[arg(long, conflicts_with = "allow_no_redact")]
    always_redact: bool,
    /// Let `exec --no-redact` pass the output through unredacted.
    #[arg(long)]
    allow_no_redact: bool,
    /// Delete the env's policy (`--mode custom` is then refused).
    #[arg(long, conflicts_with_all = ["inherit", "strip", "always_redact", "allow_no_redact"])]
    remove: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn exec(ctx: &Context, args: ExecPolicyArgs) -> Result<(), Failure> {
    if args.remove {
        let removed = vsync_ops::remove_exec_policy(ctx, &args.env)?;
        println!(
            "{} the custom exec policy of {}",
            if removed { "removed" } else { "there was no" },
            args.env
        );
        return Ok(());
    }
    let always_redact = match (args.always_redact, args.allow_no_redact) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    // An empty `--strip ""` clears the list rather than adding a name "".
    let names = |list: Option<Vec<String>>| {
        list.map(|names| names.into_iter().filter(|name| !name.is_empty()).collect())
    };
    let change = ExecPolicyChange {
        inherit: names(args.inherit),
        strip: names(args.strip),
        always_redact,
    };
    let changing =
        change.inherit.is_some() || change.strip.is_some() || change.always_redact.is_some();
    let policy = if changing {
        Some(vsync_ops::set_exec_policy(ctx, &args.env, change)?)
    } else {
        vsync_ops::exec_policy(ctx, &args.env)?
    };
    print_policy(&args.env, policy.as_ref(), args.json);
    Ok(())
}

fn print_policy(env: &str, policy: Option<&ExecPolicy>, json: bool) {
    if json {
        print_json(&policy);
        return;
    }
    let Some(policy) = policy else {
        println!(
            "env {env} has no custom exec policy (`vsync config exec {env} --inherit NAME,…` saves one)"
        );
        return;
    };
    let list = |names: &[String]| {
        if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        }
    };
    println!("custom exec policy of {env} (`vsync exec {env} --mode custom`):");
    println!("  inherit:       {}", list(&policy.inherit));
    println!("  strip:         {}", list(&policy.strip));
    println!(
        "  output:        {}",
        if policy.always_redact {
            "always redacted"
        } else {
            "redacted unless --no-redact"
        }
    );
}
