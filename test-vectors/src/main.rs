//! `vsync-test-vectors generate [--out <dir>]`: rewrites the conformance
//! corpus deterministically (default: this crate's `corpus/`).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.as_slice() {
        [command] if command == "generate" => vsync_test_vectors::own_corpus_dir(),
        [command, flag, dir] if command == "generate" && flag == "--out" => PathBuf::from(dir),
        _ => {
            eprintln!("usage: vsync-test-vectors generate [--out <dir>]");
            return ExitCode::from(2);
        }
    };
    match vsync_test_vectors::generate::write(&out) {
        Ok(count) => {
            println!("wrote {count} vectors to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: cannot write the corpus to {}: {err}", out.display());
            ExitCode::FAILURE
        }
    }
}
