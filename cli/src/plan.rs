//! `vsync plan validate | schema | init`: the plan file `vsync.toml`.

use std::path::PathBuf;

use clap::Subcommand;
use vsync_ops::Context;

use crate::commands::{Failure, usage};

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
}

/// `vsync plan schema`, which needs no machine state.
pub fn schema() {
    println!(
        "{}",
        serde_json::to_string_pretty(&vsync_plan::schema()).expect("a schema serialises")
    );
}

pub fn run(ctx: &Context, command: PlanCommand) -> Result<(), Failure> {
    match command {
        PlanCommand::Schema => schema(),
        PlanCommand::Validate { file } => {
            let path = match file {
                Some(path) => path,
                None => vsync_ops::plan_path(ctx)?,
            };
            let plan = vsync_plan::load(&path).map_err(|err| usage(err.to_string()))?;
            let imports: usize = plan.env.values().map(|env| env.import.len()).sum();
            let syncs: usize = plan.env.values().map(|env| env.sync.len()).sum();
            println!(
                "{}: ok ({} env(s), {imports} import(s), {syncs} sync target(s))",
                path.display(),
                plan.env.len()
            );
        }
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
