//! Progress on stderr: upstream's numbered `[k/n]` lines, with a spinner
//! on a TTY while a step runs.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vsync_ops::Progress;

/// Prints steps to stderr; on a TTY the current step spins until the next
/// one starts or the command ends.
pub struct StderrProgress {
    spinner: Mutex<Option<ProgressBar>>,
    tty: bool,
}

impl StderrProgress {
    pub fn new() -> Self {
        Self {
            spinner: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn finish_current(&self) {
        if let Some(spinner) = self.spinner.lock().expect("not poisoned").take() {
            spinner.finish();
        }
    }
}

impl Progress for StderrProgress {
    fn step(&self, k: usize, n: usize, message: &str) {
        self.finish_current();
        let line = format!("[{k}/{n}] {message}");
        if self.tty {
            let spinner = ProgressBar::new_spinner()
                .with_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .expect("a valid template"),
                )
                .with_message(line);
            spinner.enable_steady_tick(Duration::from_millis(100));
            *self.spinner.lock().expect("not poisoned") = Some(spinner);
        } else {
            eprintln!("{line}");
        }
    }

    fn warn(&self, message: &str) {
        match self.spinner.lock().expect("not poisoned").as_ref() {
            Some(spinner) => spinner.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}

impl Drop for StderrProgress {
    fn drop(&mut self) {
        self.finish_current();
    }
}
