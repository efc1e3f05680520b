//! A real S3-compatible server: `s3s-fs`, serving a temporary directory.

use std::env;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::HarnessError;
use crate::proxy::WriteSerializingProxy;

const BINARY: &str = "s3s-fs";
const BIN_ENV: &str = "VSYNC_S3S_FS_BIN";
const ACCESS_KEY: &str = "VSYNCTESTACCESSKEY";
const SECRET_KEY: &str = "vsync-test-secret-key-not-a-real-secret";
const REGION: &str = "us-east-1";
/// Bounded wait for the server to listen: a cold start takes milliseconds, so
/// this only trips when something is really wrong.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// s3s-fs 0.14.1 logs this line (at `info`) once its listener is bound.
const READY_MARKER: &str = "server is running at http://";
/// Keep at most this much of the server's output for error messages.
const MAX_LOG: usize = 64 * 1024;

/// A running `s3s-fs` process on `127.0.0.1` with a random port, serving a
/// fresh temporary directory, with authentication on (fixed test
/// credentials, see [`S3Server::access_key`]).
///
/// Clients reach it through a front that serialises writes, because s3s-fs
/// evaluates conditional writes non-atomically (see
/// `WriteSerializingProxy`); the front runs on the test's tokio runtime, so
/// a test that waits for a child process must not block that runtime.
///
/// Buckets are directories under the data directory. The process is killed
/// and the directory removed when this value is dropped.
#[derive(Debug)]
pub struct S3Server {
    // Declared first so the process is killed before its directory goes.
    child: tokio::sync::Mutex<Child>,
    front: WriteSerializingProxy,
    binary: PathBuf,
    log: Arc<Mutex<String>>,
    data_dir: TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` and waits (at most 10 s) until it accepts connections.
    ///
    /// The binary is looked up in `$VSYNC_S3S_FS_BIN`, then
    /// `${VSYNC_TOOLS_DIR:-$HOME/.cache/vsync-tools}/bin/s3s-fs` (where
    /// `scripts/install-services` puts it), then `PATH`.
    pub async fn start() -> Result<Self, HarnessError> {
        let binary = find_binary()?;
        let data_dir = tempfile::Builder::new()
            .prefix("vsync-s3s-fs-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the s3s-fs data directory", e))?;
        let log = Arc::new(Mutex::new(String::new()));
        let (child, upstream) = spawn(&binary, data_dir.path(), &log).await?;
        Ok(Self {
            child: tokio::sync::Mutex::new(child),
            front: WriteSerializingProxy::start(upstream).await?,
            binary,
            log,
            data_dir,
        })
    }

    /// Starts the server process again on the same data directory after
    /// [`S3Server::stop`], behind the same endpoint: what a client sees when
    /// a crashed server comes back.
    pub async fn restart(&self) -> Result<(), HarnessError> {
        self.stop().await?;
        let mut child = self.child.lock().await;
        let (new_child, upstream) = spawn(&self.binary, self.data_dir.path(), &self.log).await?;
        *child = new_child;
        self.front.set_upstream(upstream);
        Ok(())
    }

    /// The base URL for an S3 client, e.g. `http://127.0.0.1:41234`
    /// (path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The socket address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.front.addr()
    }

    /// The access key id the server accepts.
    pub fn access_key(&self) -> &str {
        ACCESS_KEY
    }

    /// The secret access key the server accepts.
    pub fn secret_key(&self) -> &str {
        SECRET_KEY
    }

    /// The region to sign requests for. s3s-fs accepts any; this is the one
    /// the tests use.
    pub fn region(&self) -> &str {
        REGION
    }

    /// The directory the server stores buckets and objects in.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// What the server printed so far (stdout and stderr, interleaved), for
    /// diagnosing a failing test.
    pub fn output(&self) -> String {
        snapshot(&self.log)
    }

    /// Creates an empty bucket.
    ///
    /// s3s-fs maps a bucket to a directory under its root (its own
    /// CreateBucket does exactly `create_dir`), so this creates the
    /// directory directly instead of sending a signed request.
    pub async fn create_bucket(&self, name: &str) -> Result<(), HarnessError> {
        if !is_valid_bucket_name(name) {
            return Err(HarnessError::InvalidBucketName(name.to_owned()));
        }
        tokio::fs::create_dir(self.data_dir.path().join(name))
            .await
            .map_err(|e| HarnessError::io(format!("creating bucket {name:?}"), e))
    }

    /// Kills the server process and waits for it to be gone, so that later
    /// requests fail (the front answers 502 Bad Gateway, like a load
    /// balancer before a dead backend): this simulates a server dying
    /// mid-operation.
    /// Stopping an already stopped server is a no-op.
    pub async fn stop(&self) -> Result<(), HarnessError> {
        let mut child = self.child.lock().await;
        let exited = child
            .try_wait()
            .map_err(|e| HarnessError::io("checking the s3s-fs process", e))?;
        if exited.is_none() {
            child
                .kill()
                .await
                .map_err(|e| HarnessError::io("killing the s3s-fs process", e))?;
        }
        Ok(())
    }
}

/// Spawns s3s-fs on a kernel-chosen port serving `data_dir`, and waits
/// until it accepts connections.
async fn spawn(
    binary: &Path,
    data_dir: &Path,
    log: &Arc<Mutex<String>>,
) -> Result<(Child, SocketAddr), HarnessError> {
    // Port 0 lets the kernel pick a free port atomically (no race with
    // other tests picking "free" ports); the server logs the bound
    // address, which is how we learn it.
    let mut child = Command::new(binary)
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg("0")
        .arg("--access-key")
        .arg(ACCESS_KEY)
        .arg("--secret-key")
        .arg(SECRET_KEY)
        .arg(data_dir)
        .env("RUST_LOG", "s3s_fs=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| HarnessError::io(format!("spawning {}", binary.display()), e))?;

    let (ready_tx, ready_rx) = oneshot::channel();
    // Both pipes are drained for the process's whole life, otherwise a
    // chatty server would block once the pipe buffer fills.
    let stdout = child
        .stdout
        .take()
        .map(|out| tokio::spawn(drain(out, Arc::clone(log), Some(ready_tx))));
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(drain(err, Arc::clone(log), None)));

    match wait_ready(&mut child, ready_rx).await {
        Ok(addr) => Ok((child, addr)),
        Err(Startup::Exited(status)) => {
            // Let the readers reach EOF so the message has the last words.
            join_quietly(stdout).await;
            join_quietly(stderr).await;
            Err(HarnessError::ExitedDuringStartup {
                binary: BINARY,
                status,
                output: snapshot(log),
            })
        }
        Err(Startup::TimedOut) => Err(HarnessError::StartupTimeout {
            binary: BINARY,
            waited: STARTUP_TIMEOUT,
            output: snapshot(log),
        }),
        Err(Startup::Io(e)) => Err(HarnessError::io("waiting for s3s-fs", e)),
    }
}

enum Startup {
    Exited(std::process::ExitStatus),
    TimedOut,
    Io(std::io::Error),
}

async fn wait_ready(
    child: &mut Child,
    ready: oneshot::Receiver<SocketAddr>,
) -> Result<SocketAddr, Startup> {
    let wait = async {
        let addr = tokio::select! {
            addr = ready => match addr {
                Ok(addr) => addr,
                // stdout closed without the marker: the process is exiting.
                Err(_) => return Err(child.wait().await.map_or_else(Startup::Io, Startup::Exited)),
            },
            status = child.wait() => {
                return Err(status.map_or_else(Startup::Io, Startup::Exited));
            }
        };
        // The marker is logged after bind, so this normally succeeds at once;
        // it proves the listener really accepts before a test relies on it.
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(addr);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(STARTUP_TIMEOUT, wait)
        .await
        .unwrap_or(Err(Startup::TimedOut))
}

/// Copies one output pipe of the server into `log`, and reports the bound
/// address once the ready line shows up.
async fn drain(
    pipe: impl AsyncRead + Unpin,
    log: Arc<Mutex<String>>,
    mut ready: Option<oneshot::Sender<SocketAddr>>,
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = parse_ready_line(&line)
            && let Some(tx) = ready.take()
        {
            // The receiver is gone only if startup already gave up.
            let _ = tx.send(addr);
        }
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() < MAX_LOG {
            log.push_str(&line);
            log.push('\n');
        }
    }
}

fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(READY_MARKER)? + READY_MARKER.len()..];
    rest.trim().parse().ok()
}

async fn join_quietly(task: Option<JoinHandle<()>>) {
    if let Some(task) = task {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
}

fn snapshot(log: &Mutex<String>) -> String {
    log.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn find_binary() -> Result<PathBuf, HarnessError> {
    let mut searched = Vec::new();

    // An explicit override is final: silently falling back to another
    // binary would hide a typo.
    if let Some(path) = env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path);
        return Err(not_found(searched));
    }

    // Same default as scripts/install-services.
    let tools_dir = env::var_os("VSYNC_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cache/vsync-tools")));
    if let Some(tools_dir) = tools_dir {
        let path = tools_dir.join("bin").join(BINARY);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path);
    }

    if let Some(path_var) = env::var_os("PATH") {
        for dir in env::split_paths(&path_var) {
            let path = dir.join(BINARY);
            if path.is_file() {
                return Ok(path);
            }
        }
        searched.push(PathBuf::from("$PATH"));
    }

    Err(not_found(searched))
}

fn not_found(searched: Vec<PathBuf>) -> HarnessError {
    HarnessError::BinaryNotFound {
        binary: BINARY,
        env_var: BIN_ENV,
        searched,
    }
}

/// S3's naming rules, checked here because s3s-fs rejects requests to a
/// badly named bucket with a confusing error, long after the directory exists.
fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| edge_ok(b) || b == b'.' || b == b'-')
        && bytes.first().copied().is_some_and(edge_ok)
        && bytes.last().copied().is_some_and(edge_ok)
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_line_of_s3s_fs() {
        let line = "  2026-11-22T21:26:04.994263Z  INFO s3s_fs: server is running at http://127.0.0.1:43581";
        assert_eq!(
            parse_ready_line(line),
            Some("127.0.0.1:43581".parse().unwrap())
        );
        assert_eq!(
            parse_ready_line("INFO s3s_fs: authentication is enabled"),
            None
        );
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "vsync-test.1", "a1b"] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in ["ab", "Abc", "-abc", "abc-", "a..b", "a_b", &"a".repeat(64)] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }
}
