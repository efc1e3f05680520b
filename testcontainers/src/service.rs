//! Running a harness service as a child process: finding its binary where
//! `scripts/install-services` puts it, starting it on a kernel-chosen port,
//! learning that port from the line it logs once bound, and keeping its
//! output for failure messages.

use std::env;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::HarnessError;

/// How much of a service's output is kept; the start is what explains a
/// failed start-up.
const MAX_LOG: usize = 64 * 1024;

/// A service binary and how it announces that it listens.
pub(crate) struct Service {
    /// The executable's file name.
    pub binary: &'static str,
    /// The variable that names the executable explicitly.
    pub env_var: &'static str,
    /// Where `scripts/install-services` puts it, below the tools dir.
    pub install_path: &'static str,
    /// The text after which the service logs its bound address.
    pub ready_marker: &'static str,
    /// How long start-up may take.
    pub startup_timeout: Duration,
}

/// What a service printed, stdout and stderr interleaved.
pub(crate) type Log = Arc<Mutex<String>>;

impl Service {
    /// The executable: `$<env_var>` (final: silently falling back to
    /// another binary would hide a typo), then
    /// `${VSYNC_TOOLS_DIR:-$HOME/.cache/vsync-tools}/<install_path>`, then
    /// `PATH`.
    pub(crate) fn find(&self) -> Result<PathBuf, HarnessError> {
        let mut searched = Vec::new();
        if let Some(path) = env::var_os(self.env_var) {
            let path = PathBuf::from(path);
            if path.is_file() {
                return Ok(path);
            }
            searched.push(path);
            return Err(self.not_found(searched));
        }
        let tools_dir = env::var_os("VSYNC_TOOLS_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                env::var_os("HOME").map(|home| Path::new(&home).join(".cache/vsync-tools"))
            });
        if let Some(tools_dir) = tools_dir {
            let path = tools_dir.join(self.install_path);
            if path.is_file() {
                return Ok(path);
            }
            searched.push(path);
        }
        if let Some(path_var) = env::var_os("PATH") {
            for dir in env::split_paths(&path_var) {
                let path = dir.join(self.binary);
                if path.is_file() {
                    return Ok(path);
                }
            }
            searched.push(PathBuf::from("$PATH"));
        }
        Err(self.not_found(searched))
    }

    fn not_found(&self, searched: Vec<PathBuf>) -> HarnessError {
        HarnessError::BinaryNotFound {
            binary: self.binary,
            env_var: self.env_var,
            searched,
        }
    }

    /// Spawns `command` (which must make the service listen on port 0 of
    /// 127.0.0.1) and waits until the address it logs accepts connections.
    /// The process is killed when the returned child is dropped.
    pub(crate) async fn spawn(
        &self,
        mut command: Command,
        log: &Log,
    ) -> Result<(Child, SocketAddr), HarnessError> {
        let mut child = command
            // Colour codes would only clutter the log kept for failures.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HarnessError::io(format!("spawning {}", self.binary), e))?;

        // Either pipe may carry the ready line; both are drained for the
        // process's whole life, so a chatty service never blocks on a full
        // pipe.
        let (ready_tx, ready_rx) = oneshot::channel();
        let ready_tx = Arc::new(Mutex::new(Some(ready_tx)));
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        .map(|pipe| {
            tokio::spawn(drain(
                pipe,
                Arc::clone(log),
                self.ready_marker,
                Arc::clone(&ready_tx),
            ))
        })
        .collect();
        drop(ready_tx);

        let wait = async {
            let addr = tokio::select! {
                addr = ready_rx => match addr {
                    Ok(addr) => addr,
                    // Both pipes closed without the marker: it is exiting.
                    Err(_) => return Err(child.wait().await),
                },
                status = child.wait() => return Err(status),
            };
            // The marker is logged after bind, so this normally succeeds at
            // once; it proves the listener accepts before a test relies on it.
            loop {
                if TcpStream::connect(addr).await.is_ok() {
                    return Ok(addr);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        match tokio::time::timeout(self.startup_timeout, wait).await {
            Ok(Ok(addr)) => Ok((child, addr)),
            Ok(Err(Ok(status))) => {
                // Let the readers reach EOF so the message has the last words.
                for reader in readers {
                    let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
                }
                Err(HarnessError::ExitedDuringStartup {
                    binary: self.binary,
                    status,
                    output: snapshot(log),
                })
            }
            Ok(Err(Err(e))) => Err(HarnessError::io(format!("waiting for {}", self.binary), e)),
            Err(_) => Err(HarnessError::StartupTimeout {
                binary: self.binary,
                waited: self.startup_timeout,
                output: snapshot(log),
            }),
        }
    }
}

/// Copies one output pipe into `log`, and reports the bound address once
/// the ready line shows up.
async fn drain(
    pipe: impl AsyncRead + Unpin,
    log: Log,
    marker: &'static str,
    ready: Arc<Mutex<Option<oneshot::Sender<SocketAddr>>>>,
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = parse_ready_line(&line, marker)
            && let Some(tx) = lock(&ready).take()
        {
            // The receiver is gone only if start-up already gave up.
            let _ = tx.send(addr);
        }
        let mut log = lock(&log);
        if log.len() < MAX_LOG {
            log.push_str(&line);
            log.push('\n');
        }
    }
}

/// The address after `marker` in `line`, if the line announces one.
fn parse_ready_line(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.trim().parse().ok()
}

/// What the service printed so far.
pub(crate) fn snapshot(log: &Log) -> String {
    lock(log).clone()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_lines_of_s3s_fs_and_werkzeug() {
        let line = "2024-05-01T10:00:00Z  INFO s3s_fs: server is running at http://127.0.0.1:38117";
        assert_eq!(
            parse_ready_line(line, "server is running at http://"),
            Some("127.0.0.1:38117".parse().unwrap())
        );
        assert_eq!(
            parse_ready_line(" * Running on http://127.0.0.1:45801", "Running on http://"),
            Some("127.0.0.1:45801".parse().unwrap())
        );
        assert_eq!(
            parse_ready_line("Press CTRL+C to quit", "Running on http://"),
            None
        );
    }
}
