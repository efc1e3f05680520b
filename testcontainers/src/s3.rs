//! A real S3-compatible server: `s3s-fs`, serving a temporary directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::HarnessError;
use crate::proxy::WriteSerializingProxy;
use crate::service::{Log, Service, snapshot};

const ACCESS_KEY: &str = "VSYNCTESTACCESSKEY";
const SECRET_KEY: &str = "vsync-test-secret-key-not-a-real-secret";
const REGION: &str = "us-east-1";
const S3S_FS: Service = Service {
    binary: "s3s-fs",
    env_var: "VSYNC_S3S_FS_BIN",
    install_path: "bin/s3s-fs",
    // s3s-fs 0.14.1 logs this line (at `info`) once its listener is bound.
    ready_marker: "server is running at http://",
    // A cold start takes milliseconds: this only trips on real trouble.
    startup_timeout: Duration::from_secs(10),
};

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
    log: Log,
    data_dir: TempDir,
}

impl S3Server {
    /// Starts `s3s-fs` and waits (at most 10 s) until it accepts connections.
    ///
    /// The binary is looked up in `$VSYNC_S3S_FS_BIN`, then
    /// `${VSYNC_TOOLS_DIR:-$HOME/.cache/vsync-tools}/bin/s3s-fs` (where
    /// `scripts/install-services` puts it), then `PATH`.
    pub async fn start() -> Result<Self, HarnessError> {
        let binary = S3S_FS.find()?;
        let data_dir = tempfile::Builder::new()
            .prefix("vsync-s3s-fs-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating the s3s-fs data directory", e))?;
        let log = Log::default();
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
    log: &Log,
) -> Result<(Child, SocketAddr), HarnessError> {
    let mut command = Command::new(binary);
    command
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(data_dir)
        .env("RUST_LOG", "s3s_fs=info");
    S3S_FS.spawn(command, log).await
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
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "vsync-test.1", "a1b"] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in ["ab", "Abc", "-abc", "abc-", "a..b", "a_b", &"a".repeat(64)] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }
}
