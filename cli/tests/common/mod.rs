//! The `vsync` binary run as one developer machine: its own HOME and git
//! checkout. Shared by the end-to-end test files.

#![allow(dead_code)] // each test binary uses the parts it needs

use std::path::PathBuf;
use std::process::Output;

use tempfile::TempDir;

/// The variables the sinks read credentials and endpoints from.
const PLATFORM_CREDENTIALS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AZURE_ACCESS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_AUTHORITY_HOST",
    "VSYNC_AZURE_VAULT_URL",
    "VSYNC_AZURE_CA_FILE",
    "VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AZURE_USE_MANAGED_IDENTITY",
    "OP_CONNECT_HOST",
    "OP_CONNECT_TOKEN",
    "OP_SERVICE_ACCOUNT_TOKEN",
    "VAULT_ROLE_ID",
    "VAULT_SECRET_ID",
    "VAULT_K8S_ROLE",
    "VAULT_K8S_TOKEN_PATH",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GCE_METADATA_HOST",
    "GOOGLE_CLOUD_QUOTA_PROJECT",
    "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
    "VAULT_TOKEN",
];

/// Variables that point a platform client at a server (or at a login that
/// does: the GitHub CLI's config and host): one leaking in from whoever runs
/// the tests would send a test's writes, with the test's credentials, to a
/// real service. Every `AWS_ENDPOINT_URL_<SERVICE>` goes too; see
/// [`AWS_ENDPOINT_PREFIX`].
pub const PLATFORM_ENDPOINTS: &[&str] = &[
    "GITHUB_API_URL",
    "GH_HOST",
    "GH_CONFIG_DIR",
    "VSYNC_GCP_ENDPOINT",
    "VAULT_ADDR",
    "VAULT_NAMESPACE",
];

/// `AWS_ENDPOINT_URL` and its service-specific forms
/// (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_S3`, …), which the
/// AWS SDK honours for any service, so they are removed by prefix.
pub const AWS_ENDPOINT_PREFIX: &str = "AWS_ENDPOINT_URL";

/// Every variable [`Machine::command`] removes from the child's
/// environment: the fixed lists plus whatever `AWS_ENDPOINT_URL*` names are
/// set in `environment` (this process's, in [`Machine::command`]).
pub fn variables_removed_from_child(
    environment: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Vec<std::ffi::OsString> {
    let mut removed: Vec<std::ffi::OsString> = PLATFORM_CREDENTIALS
        .iter()
        .chain(PLATFORM_ENDPOINTS)
        .map(std::ffi::OsString::from)
        .collect();
    // Always AWS_ENDPOINT_URL itself, even if unset here: removing an unset
    // variable is harmless and keeps the list independent of the caller.
    removed.push(AWS_ENDPOINT_PREFIX.into());
    for (name, _) in environment {
        if name
            .to_str()
            .is_some_and(|name| name.starts_with(AWS_ENDPOINT_PREFIX))
            && !removed.contains(&name)
        {
            removed.push(name);
        }
    }
    removed
}

/// The bucket [`Machine::init_on_bucket`]'s profiles name.
pub const BUCKET: &str = "vault";

/// The harness's S3 server with [`BUCKET`] created.
pub async fn s3_server() -> vsync_testcontainers::S3Server {
    let server = vsync_testcontainers::S3Server::start()
        .await
        .expect("start s3s-fs");
    server.create_bucket(BUCKET).await.unwrap();
    server
}

/// One developer machine: its own HOME (config, file keystore, local store)
/// and its own checkout of the repo.
pub struct Machine {
    _home: TempDir,
    /// The machine's HOME.
    pub home: PathBuf,
    /// Its checkout of the repo.
    pub checkout: PathBuf,
}

impl Machine {
    pub fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().to_owned();
        let checkout = path.join("checkout");
        std::fs::create_dir_all(&checkout).unwrap();
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&checkout)
            .status()
            .unwrap();
        assert!(git.success());
        Self {
            _home: home,
            home: path,
            checkout,
        }
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vsync"));
        command
            .args(args)
            .current_dir(&self.checkout)
            .env("HOME", &self.home)
            .env("VSYNC_KEYSTORE", "file")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("VSYNC_BACKUP_DIR")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .stdin(std::process::Stdio::null());
        // Platform credentials and endpoints of whoever runs the tests must
        // not leak in: each test sets exactly what it means to test.
        for name in variables_removed_from_child(std::env::vars_os()) {
            command.env_remove(name);
        }
        // No probing for an EC2 instance role from a test.
        command.env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// Runs and asserts success, returning stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "vsync {args:?} failed ({:?}):\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs, asserts the exit code, and returns stderr.
    pub async fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(
            output.status.code(),
            Some(code),
            "vsync {args:?}:\n{stderr}"
        );
        stderr
    }

    /// A profile named `env` for the harness server's bucket `vault`,
    /// reached at `endpoint` (the server's, or a proxy's in front of it),
    /// and `env` of repo `demo` initialised with it.
    pub async fn init_on_bucket(
        &self,
        env: &str,
        server: &vsync_testcontainers::S3Server,
        endpoint: &str,
    ) {
        let output = self
            .command(&[
                "profile",
                "add",
                env,
                &format!("--endpoint={endpoint}"),
                &format!("--region={}", server.region()),
                &format!("--bucket={BUCKET}"),
                &format!("--access-key={}", server.access_key()),
            ])
            .env("VSYNC_SECRET_ACCESS_KEY", server.secret_key())
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        self.ok(&["init", env, &format!("--profile={env}"), "--repo=demo"])
            .await;
    }

    pub fn vault(&self) -> PathBuf {
        self.checkout.join("infra/vault/dev")
    }

    pub fn key_file(&self) -> PathBuf {
        self.home.join(".config/vsync/.keystore/acme_web/dev.key")
    }
}

/// Every file below `dir` with its bytes, sorted: compared before and
/// after a command that must write nothing.
pub fn tree(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(tree(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}
