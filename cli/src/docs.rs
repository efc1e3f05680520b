//! `vsync completions` and `vsync man`: generated from the same clap
//! definition the parser uses, so they never fall behind a flag.

use std::path::Path;

use clap_complete::Shell;

use crate::commands::Failure;

/// Prints the completion script of `shell` to stdout.
pub fn completions(shell: Shell) {
    clap_complete::generate(
        shell,
        &mut crate::command(),
        "vsync",
        &mut std::io::stdout(),
    );
}

/// Writes `vsync.1` to stdout, or every command's page into `dir`.
pub fn man(dir: Option<&Path>) -> Result<(), Failure> {
    let command = crate::command();
    let written = match dir {
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout()),
        Some(dir) => {
            std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(command, dir))
        }
    };
    match written {
        // `vsync man | head` is not a failure.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.map_err(|err| Failure {
            message: format!("cannot write the man pages: {err}"),
            code: 1,
        }),
    }
}
