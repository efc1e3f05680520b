//! The `vsync` binary: parses the command line, calls the library crates and
//! prints. No logic of its own lives here.

use clap::Parser;

/// One encrypted, versioned vault on object storage as the source of truth for
/// a team's secrets.
#[derive(Parser)]
#[command(name = "vsync", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    Cli::parse();
    Ok(())
}
