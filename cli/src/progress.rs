//! Progress on stderr: upstream's numbered `[k/n]` lines, with a spinner
//! on a TTY while a step runs, and a bar with counts and an ETA while a
//! sync's writes run. A pace of a minute or more is said up front, on a
//! terminal or not. Nothing of it goes to stdout.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vsync_engine::sync::SyncProgress;
use vsync_ops::Progress;

/// A pace this long is announced before the writes start.
const PACE_WORTH_SAYING: Duration = Duration::from_secs(60);

/// Prints steps to stderr; on a TTY the current step spins (or its writes
/// fill a bar) until the next one starts or the command ends.
pub struct StderrProgress {
    /// The current step's spinner or bar.
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

impl SyncProgress for StderrProgress {
    fn writing(&self, writes: usize, paced: Duration) {
        if paced >= PACE_WORTH_SAYING {
            self.warn(&format!(
                "{writes} writes within the platform's rate limits take at least {} minutes",
                paced.as_secs().div_ceil(60)
            ));
        }
        if !self.tty {
            return;
        }
        self.finish_current();
        let bar = ProgressBar::new(writes as u64).with_style(
            ProgressStyle::with_template(
                "  {bar:30} {pos}/{len} writes, {elapsed} elapsed, about {eta} left",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.spinner.lock().expect("not poisoned") = Some(bar);
    }

    fn written(&self, done: usize) {
        if let Some(bar) = self.spinner.lock().expect("not poisoned").as_ref() {
            bar.set_position(done as u64);
        }
    }
}

impl Drop for StderrProgress {
    fn drop(&mut self) {
        self.finish_current();
    }
}
