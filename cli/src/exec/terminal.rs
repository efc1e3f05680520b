//! `vsync exec` on a terminal: the command gets a pseudo-terminal of its
//! own, so tools that check for a terminal (colours, progress bars,
//! prompts, full-screen programs) behave as they would without vsync, and
//! everything they print still passes the redactor.
//!
//! The command is a session leader with the pty as its controlling
//! terminal. When vsync's stdin is the terminal too, vsync's terminal is
//! put in raw mode for the command's lifetime and every byte typed is
//! passed on unchanged (Ctrl-C becomes the command's SIGINT through the
//! pty's own line discipline); otherwise the command reads vsync's stdin
//! as it is. stderr shares the pty when vsync's stderr is the terminal,
//! and is piped (redacted) to vsync's stderr otherwise, so `2>file` still
//! separates the streams. The window size follows vsync's terminal
//! (SIGWINCH).

use std::io::{IsTerminal, Read};
use std::process::Stdio;

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};
use vsync_redact::Redactor;

use super::{Launch, Started, cannot_start, copy_redacted};
use crate::commands::{Failure, usage};

/// Which of vsync's standard streams are the terminal.
pub struct Terminal {
    stdin: bool,
    stderr: bool,
}

impl Terminal {
    /// `Some` when vsync's stdout is a terminal: the command then runs on
    /// a pseudo-terminal.
    pub fn of_this_process() -> Option<Self> {
        std::io::stdout().is_terminal().then(|| Terminal {
            stdin: std::io::stdin().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        })
    }

    /// Starts the command on a new pseudo-terminal sized as vsync's.
    pub fn start(self, launch: &Launch, redactor: &Redactor) -> Result<Started, Failure> {
        let failed =
            |err: pty_process::Error| usage(format!("cannot open a pseudo-terminal: {err}"));
        let (pty, pts) = pty_process::open().map_err(failed)?;
        if let Some(size) = window_size() {
            pty.resize(size).map_err(failed)?;
        }
        let mut command = pty_process::Command::new(&launch.program)
            .args(&launch.arguments)
            .env_clear()
            .envs(launch.variables.iter().map(|(name, value)| (name, value)));
        if !self.stdin {
            command = command.stdin(Stdio::inherit());
        }
        if !self.stderr {
            command = command.stderr(Stdio::piped());
        }
        let mut child = command.spawn(pts).map_err(|err| match err {
            pty_process::Error::Io(err) => cannot_start(&launch.program, &err),
            other => usage(format!(
                "cannot start the command on a pseudo-terminal: {other}"
            )),
        })?;
        // The terminal goes raw only once the command runs: a failed start
        // leaves it as it was.
        let raw =
            if self.stdin {
                Some(RawMode::enter().map_err(|err| {
                    usage(format!("cannot switch the terminal to raw mode: {err}"))
                })?)
            } else {
                None
            };
        let (reader, writer) = pty.into_split();
        let mut output = vec![tokio::spawn(copy_redacted(
            reader,
            tokio::io::stdout(),
            redactor.stream(),
        ))];
        if let Some(stderr) = child.stderr.take() {
            output.push(tokio::spawn(copy_redacted(
                stderr,
                tokio::io::stderr(),
                redactor.stream(),
            )));
        }
        let input = tokio::spawn(pass_input(writer, self.stdin));
        Ok(Started {
            child,
            output,
            // No keyboard signal reaches vsync from a raw terminal, and
            // none reaches the command, in its own session, from vsync's.
            forward_keyboard: true,
            terminal: Some(Session { input, _raw: raw }),
        })
    }
}

/// What vsync holds of the terminal while the command runs: the task
/// passing keystrokes and window sizes on, and the terminal's settings to
/// restore. Dropping it gives the terminal back as it was.
pub struct Session {
    input: tokio::task::JoinHandle<()>,
    _raw: Option<RawMode>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.input.abort();
    }
}

/// vsync's terminal in raw mode; its settings are restored when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Output still queued for the terminal is written first (Drain).
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Drain, &self.saved);
    }
}

/// vsync's terminal size, if it has one.
fn window_size() -> Option<pty_process::Size> {
    let size = tcgetwinsize(std::io::stdout()).ok()?;
    Some(pty_process::Size::new_with_pixel(
        size.ws_row,
        size.ws_col,
        size.ws_xpixel,
        size.ws_ypixel,
    ))
}

/// Passes vsync's window size changes on to the pty and, when `keystrokes`,
/// every byte read from vsync's stdin. stdin is read on a thread of its
/// own: a blocking read of a terminal cannot be cancelled, and the thread
/// simply ends with the process.
async fn pass_input(mut pty: pty_process::OwnedWritePty, keystrokes: bool) {
    let Ok(mut resized) = signal(SignalKind::window_change()) else {
        return;
    };
    let (sender, mut typed) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    if keystrokes {
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = stdin.read(&mut buffer) {
                if sender.blocking_send(buffer[..read].to_vec()).is_err() {
                    break;
                }
            }
        });
    } else {
        drop(sender);
    }
    let mut typing = keystrokes;
    loop {
        tokio::select! {
            bytes = typed.recv(), if typing => match bytes {
                Some(bytes) => {
                    if pty.write_all(&bytes).await.is_err() {
                        typing = false;
                    }
                }
                None => typing = false,
            },
            Some(()) = resized.recv() => {
                if let Some(size) = window_size() {
                    let _ = pty.resize(size);
                }
            }
            else => break,
        }
    }
}
