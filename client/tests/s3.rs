//! The runtime library against a real S3-compatible server (s3s-fs, started
//! by the harness): bundles are written exactly as `vsync push` writes them
//! (`bundle::pack` of a vault folder, then `vault::publish`), or as the
//! upstream CLI and the documented library layout write them, and read back
//! with `open_with` / `open()`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use vsync_backends::s3::{Proxy, S3Store};
use vsync_crypto::config_blob::RuntimeConfig;
use vsync_crypto::{DEFAULT_ITERATIONS, ErrorClass, Key, Zeroizing, rqe1, rqem};
use vsync_engine::store::{PutCondition, Store};
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::{self, Layout};
use vsync_s3_client::{Options, Source, open, open_with};
use vsync_testcontainers::S3Server;

const BUCKET: &str = "vsync-it";
const PASSPHRASE: &str = "bXlrZXljaGFpbnZhbHVlLW5vdC1hLXJlYWwtb25lLTEyMzQ=";
const SALT: &str = "c2FsdHNhbHRzYWx0c2FsdA";

/// Version timestamps that always grow, one second apart, from now.
fn next_ts() -> Timestamp {
    static OFFSET: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_unix(now + OFFSET.fetch_add(1, Ordering::SeqCst))
}

struct Bucket {
    server: S3Server,
    store: Arc<S3Store>,
}

async fn bucket() -> Bucket {
    let server = S3Server::start().await.expect("s3s-fs starts");
    server.create_bucket(BUCKET).await.unwrap();
    let store = S3Store::builder()
        .endpoint(server.endpoint())
        .region(server.region())
        .bucket(BUCKET)
        .credentials(server.access_key(), server.secret_key())
        .proxy(Proxy::Disabled)
        .build()
        .unwrap();
    Bucket {
        server,
        store: Arc::new(store),
    }
}

impl Bucket {
    fn config(&self, prefix: &str, env: &str) -> RuntimeConfig {
        RuntimeConfig {
            endpoint: self.server.endpoint(),
            region: self.server.region().into(),
            bucket: BUCKET.into(),
            access_key_id: Zeroizing::new(self.server.access_key().into()),
            secret_access_key: Zeroizing::new(self.server.secret_key().into()),
            prefix: prefix.into(),
            env: env.into(),
            salt: Zeroizing::new(SALT.into()),
            iterations: DEFAULT_ITERATIONS,
        }
    }

    fn blob(&self, prefix: &str, env: &str) -> Zeroizing<String> {
        self.config(prefix, env).encode()
    }

    /// What `vsync push <env>` does: zip the vault folder, then publish it
    /// with compare-and-swap against the head it read.
    async fn push(&self, repo: &str, env: &str, files: &[(&str, &[u8])]) -> Timestamp {
        let root = tempfile::tempdir().unwrap();
        let folder = Path::new("infra/vault").join(env);
        for (name, contents) in files {
            let path = root.path().join(&folder).join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }
        let zip = vsync_engine::bundle::pack(root.path(), &folder).unwrap();
        let layout = Layout::for_repo_env(repo, env);
        let head = vault::remote_head(&*self.store, &layout).await.unwrap();
        let published = vault::publish(
            &*self.store,
            &layout,
            &key(),
            &zip,
            head.as_ref(),
            next_ts(),
        )
        .await
        .unwrap();
        published.ts
    }

    async fn put(&self, key: &str, body: &[u8]) {
        // Overwrite deliberately (the upstream CLI's pointer PUT is
        // unconditional): read the tag first when the object exists.
        let condition = match self.store.get(key).await.unwrap() {
            Some(object) => PutCondition::IfMatch(object.etag),
            None => PutCondition::IfAbsent,
        };
        self.store.put(key, body, condition).await.unwrap();
    }
}

fn key() -> Key {
    Key::derive(PASSPHRASE.as_bytes(), SALT.as_bytes(), DEFAULT_ITERATIONS)
}

fn value(vault: &vsync_s3_client::Client, key: &str) -> Option<String> {
    vault.get_env(key).map(|value| value.expose().to_owned())
}

const ENV_FILE: &[u8] = b"# pushed by the CLI\nDATABASE_URL=\"postgres://app:pw@db/app\"\nAPI_TOKEN=tok-1\nCERT_PATH=${VAULT_ROOT}/tls/server.crt\n";
const SERVICE_ACCOUNT: &[u8] = b"{\n  \"type\": \"service_account\",\n  \"project_id\": \"p\"\n}";

#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_bundle_opens_with_kv_assets_and_the_fallback_chain() {
    let bucket = bucket().await;
    let ts = bucket
        .push(
            "acme",
            "dev",
            &[
                (".env.dev", ENV_FILE),
                ("gcp-sa.json", SERVICE_ACCOUNT),
                ("tls/server.crt", b"-----BEGIN CERTIFICATE-----\n"),
            ],
        )
        .await;

    let options = Options::new()
        .default_value("PORT", "8080")
        .default_value("API_TOKEN", "default-token");
    let vault = open_with(&bucket.blob("acme/dev/", "dev"), PASSPHRASE, options)
        .await
        .unwrap();

    assert_eq!(
        value(&vault, "DATABASE_URL").as_deref(),
        Some("postgres://app:pw@db/app")
    );
    assert_eq!(vault.env_source("API_TOKEN"), Source::Vault);
    assert_eq!(value(&vault, "API_TOKEN").as_deref(), Some("tok-1"));
    // No placeholder expansion at runtime: the path names the pusher's disk.
    assert_eq!(
        value(&vault, "CERT_PATH").as_deref(),
        Some("${VAULT_ROOT}/tls/server.crt")
    );
    assert_eq!(vault.env_source("PORT"), Source::Default);
    assert_eq!(vault.env_source("VSYNC_IT_SURELY_UNSET"), Source::Missing);
    assert!(!vault.has_env("VSYNC_IT_SURELY_UNSET"));

    assert_eq!(
        vault.get_as_content("gcp-sa.json").unwrap().expose(),
        SERVICE_ACCOUNT
    );
    assert_eq!(
        vault.get_as_content("tls/server.crt").unwrap().expose(),
        b"-----BEGIN CERTIFICATE-----\n"
    );
    assert_eq!(
        vault.get_as_content("API_TOKEN").unwrap().expose(),
        b"tok-1"
    );
    assert!(vault.get_as_content(".env.dev").is_none());
    assert!(vault.get_as_content("PORT").is_none());
    assert_eq!(
        vault.asset_names().collect::<Vec<_>>(),
        ["gcp-sa.json", "tls/server.crt"]
    );

    assert_eq!(vault.generation(), 1);
    assert_eq!(vault.version(), Some(ts.as_str()));
    assert_eq!(vault.remote_generation().await.unwrap(), 1);
    assert!(!vault.has_new_version().await.unwrap());

    let shown = format!("{vault:?}");
    assert_eq!(shown, "<vsync:redacted gen=1 env=dev>");
    vault.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn has_new_version_flips_after_a_second_push_and_the_handle_keeps_its_values() {
    let bucket = bucket().await;
    bucket
        .push("acme", "dev", &[(".env.dev", b"API_TOKEN=one")])
        .await;
    let blob = bucket.blob("acme/dev/", "dev");
    let vault = open_with(&blob, PASSPHRASE, Options::new()).await.unwrap();
    assert!(!vault.has_new_version().await.unwrap());

    let second = bucket
        .push("acme", "dev", &[(".env.dev", b"API_TOKEN=two")])
        .await;
    assert!(vault.has_new_version().await.unwrap());
    assert_eq!(vault.remote_generation().await.unwrap(), 2);
    let remote = vault.remote_version().await.unwrap();
    assert_eq!(remote.version, second.as_str());
    // Pull-once: the open handle does not change.
    assert_eq!(value(&vault, "API_TOKEN").as_deref(), Some("one"));
    assert_eq!(vault.generation(), 1);

    let fresh = open_with(&blob, PASSPHRASE, Options::new()).await.unwrap();
    assert_eq!(value(&fresh, "API_TOKEN").as_deref(), Some("two"));
    assert_eq!(fresh.generation(), 2);
    assert!(!fresh.has_new_version().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_cli_buckets_without_a_generation_still_report_new_versions() {
    let bucket = bucket().await;
    // The upstream CLI writes versions/<ts>.enc and latest, never latest.meta.
    let upstream_push = |ts: Timestamp, env_file: &'static [u8]| {
        let bucket = &bucket;
        async move {
            let root = tempfile::tempdir().unwrap();
            let folder = Path::new("infra/vault/prod");
            std::fs::create_dir_all(root.path().join(folder)).unwrap();
            std::fs::write(root.path().join(folder).join(".env.prod"), env_file).unwrap();
            let zip = vsync_engine::bundle::pack(root.path(), folder).unwrap();
            let sealed = rqem::wrap(ts.as_str(), &zip).unwrap();
            let envelope = rqe1::seal(&key(), &sealed);
            bucket
                .put(&format!("web/prod/versions/{ts}.enc"), &envelope)
                .await;
            bucket.put("web/prod/latest", ts.as_str().as_bytes()).await;
        }
    };
    upstream_push(next_ts(), b"A=1").await;
    let vault = open_with(
        &bucket.blob("web/prod/", "prod"),
        PASSPHRASE,
        Options::new(),
    )
    .await
    .unwrap();
    assert_eq!(value(&vault, "A").as_deref(), Some("1"));
    assert_eq!(vault.generation(), 0);
    assert!(!vault.has_new_version().await.unwrap());

    upstream_push(next_ts(), b"A=2").await;
    assert_eq!(vault.remote_generation().await.unwrap(), 0);
    assert!(vault.has_new_version().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_library_layout_with_a_json_payload_opens() {
    let bucket = bucket().await;
    let ts = next_ts();
    let payload = br#"{"kv":{"DATABASE_URL":"postgres://lib"},"assets":{"tls/key.pem":"UEVN"}}"#;
    let sealed = rqem::wrap(ts.as_str(), payload).unwrap();
    bucket
        .put(&format!("lib/v={ts}"), &rqe1::seal(&key(), &sealed))
        .await;
    bucket
        .put("lib/manifest", &rqem::wrap(ts.as_str(), b"").unwrap())
        .await;
    bucket.put("lib/latest.meta", br#"{"gen":7}"#).await;

    let vault = open_with(&bucket.blob("lib/", "staging"), PASSPHRASE, Options::new())
        .await
        .unwrap();
    assert_eq!(
        value(&vault, "DATABASE_URL").as_deref(),
        Some("postgres://lib")
    );
    assert_eq!(
        vault.get_as_content("tls/key.pem").unwrap().expose(),
        b"PEM"
    );
    assert_eq!(vault.generation(), 7);
    assert_eq!(vault.version(), Some(ts.as_str()));
    assert!(!vault.has_new_version().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn handles_for_several_envs_are_independent() {
    let bucket = bucket().await;
    bucket
        .push("acme", "dev", &[(".env.dev", b"DATABASE_URL=dev-db")])
        .await;
    bucket
        .push("acme", "prod", &[(".env.prod", b"DATABASE_URL=prod-db")])
        .await;
    let (dev_blob, prod_blob) = (
        bucket.blob("acme/dev/", "dev"),
        bucket.blob("acme/prod/", "prod"),
    );
    let (dev, prod) = tokio::join!(
        open_with(&dev_blob, PASSPHRASE, Options::new()),
        open_with(
            &prod_blob,
            PASSPHRASE,
            Options::new().default_value("ONLY_PROD", "x")
        ),
    );
    let (dev, prod) = (dev.unwrap(), prod.unwrap());
    assert_eq!(value(&dev, "DATABASE_URL").as_deref(), Some("dev-db"));
    assert_eq!(value(&prod, "DATABASE_URL").as_deref(), Some("prod-db"));
    assert!(!dev.has_env("ONLY_PROD"));
    assert!(prod.has_env("ONLY_PROD"));

    bucket
        .push("acme", "prod", &[(".env.prod", b"DATABASE_URL=prod-db-2")])
        .await;
    assert!(prod.has_new_version().await.unwrap());
    assert!(!dev.has_new_version().await.unwrap());
    dev.close();
    // Closing one leaves the other working.
    assert_eq!(value(&prod, "DATABASE_URL").as_deref(), Some("prod-db"));
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_and_dead_endpoints_are_s3_unreachable() {
    let bucket = bucket().await;
    bucket.push("acme", "dev", &[(".env.dev", b"A=1")]).await;

    // 403: the server rejects the signature of a wrong secret key.
    let mut config = bucket.config("acme/dev/", "dev");
    config.secret_access_key = Zeroizing::new("not-the-secret-key".into());
    let err = open_with(&config.encode(), PASSPHRASE, Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::S3Unreachable), "{err}");
    assert!(err.message().contains("403"), "{err}");
    assert!(!err.message().contains("not-the-secret-key"), "{err}");

    // 403 for an access key the server does not know.
    let mut config = bucket.config("acme/dev/", "dev");
    config.access_key_id = Zeroizing::new("UNKNOWNACCESSKEY".into());
    let err = open_with(&config.encode(), PASSPHRASE, Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::S3Unreachable), "{err}");
    assert!(err.message().contains("access key"), "{err}");

    // Nothing listening at all: a port held, never listening, for the rest
    // of the test, so no other process can start answering on it.
    let refusing = vsync_testcontainers::unreachable::RefusingAddr::bind().unwrap();
    let mut config = bucket.config("acme/dev/", "dev");
    config.endpoint = refusing.http_url();
    let err = open_with(&config.encode(), PASSPHRASE, Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::S3Unreachable), "{err}");

    // A handle opened while the server lived: the server dies, and the
    // staleness check reports it rather than guessing.
    let vault = open_with(&bucket.blob("acme/dev/", "dev"), PASSPHRASE, Options::new())
        .await
        .unwrap();
    bucket.server.stop().await.unwrap();
    let err = vault.has_new_version().await.unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::S3Unreachable), "{err}");
    let err = open_with(&bucket.blob("acme/dev/", "dev"), PASSPHRASE, Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::S3Unreachable), "{err}");
    // The values stay readable from memory.
    assert_eq!(value(&vault, "A").as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_manifest_is_manifest_not_found_with_the_fix() {
    let bucket = bucket().await;
    bucket.push("acme", "dev", &[(".env.dev", b"A=1")]).await;
    let err = open_with(
        &bucket.blob("acme/prod/", "prod"),
        PASSPHRASE,
        Options::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::ManifestNotFound), "{err}");
    assert!(
        err.message().contains("run `vsync push prod` once"),
        "{err}"
    );

    // The usual mistake: a blob minted with another prefix.
    let err = open_with(&bucket.blob("", "dev"), PASSPHRASE, Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::ManifestNotFound), "{err}");
    assert!(err.message().contains("prefix is empty"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_passphrase_is_wrong_passphrase_and_never_echoed() {
    let bucket = bucket().await;
    bucket.push("acme", "dev", &[(".env.dev", b"A=1")]).await;
    let err = open_with(
        &bucket.blob("acme/dev/", "dev"),
        "the-wrong-passphrase",
        Options::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::WrongPassphrase), "{err}");
    assert!(err.message().contains("VSYNC_PASSPHRASE"), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("the-wrong-passphrase"), "{shown}");
    assert!(!shown.contains(PASSPHRASE), "{shown}");
    assert!(!shown.contains(SALT), "{shown}");
    assert!(!shown.contains(bucket.server.secret_key()), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_or_torn_bucket_is_bundle_corrupt() {
    let bucket = bucket().await;
    let first = bucket.push("acme", "dev", &[(".env.dev", b"A=old")]).await;
    let second = bucket.push("acme", "dev", &[(".env.dev", b"A=new")]).await;
    let blob = bucket.blob("acme/dev/", "dev");

    // Rollback: the newest version's object replaced by the old bundle.
    let old = bucket
        .store
        .get(&format!("acme/dev/versions/{first}.enc"))
        .await
        .unwrap()
        .unwrap();
    bucket
        .put(&format!("acme/dev/versions/{second}.enc"), &old.body)
        .await;
    let err = open_with(&blob, PASSPHRASE, Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::BundleCorrupt), "{err}");
    assert!(err.message().contains("refusing"), "{err}");

    // Torn: the pointer names a version whose bundle is gone.
    bucket
        .store
        .delete(&format!("acme/dev/versions/{second}.enc"))
        .await
        .unwrap();
    let err = open_with(&blob, PASSPHRASE, Options::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::BundleCorrupt), "{err}");
    assert!(err.message().contains("missing"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn blocking_api_reads_the_same_vault() {
    let bucket = bucket().await;
    bucket.push("acme", "dev", &[(".env.dev", b"A=1")]).await;
    let blob = bucket.blob("acme/dev/", "dev");
    // The blocking API owns its runtime; keep it off this test's runtime
    // (whose workers also serve the harness's front proxy).
    let vault = tokio::task::spawn_blocking(move || {
        let vault =
            vsync_s3_client::blocking::open_with(&blob, PASSPHRASE, Options::new()).unwrap();
        assert_eq!(value(&vault, "A").as_deref(), Some("1"));
        assert!(!vault.has_new_version().unwrap());
        vault
    })
    .await
    .unwrap();
    bucket.push("acme", "dev", &[(".env.dev", b"A=2")]).await;
    let flipped = tokio::task::spawn_blocking(move || vault.has_new_version().unwrap())
        .await
        .unwrap();
    assert!(flipped);
}

/// The marker that makes [`open_from_the_process_environment`] the child
/// half of the test below rather than a test of its own.
const CHILD_MARKER: &str = "VSYNC_CLIENT_IT_CHILD";

#[tokio::test(flavor = "multi_thread")]
async fn open_reads_the_process_environment_and_file_variants() {
    let bucket = bucket().await;
    bucket
        .push(
            "acme",
            "dev",
            &[(".env.dev", b"DATABASE_URL=postgres://from-vault")],
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let passphrase_file = dir.path().join("passphrase");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passphrase_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Re-run this test binary as the child: a real process environment,
    // which this process cannot set for itself without `unsafe`.
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "open_from_the_process_environment",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MARKER, "1")
        .env("VSYNC_CONFIG", bucket.blob("acme/dev/", "dev").as_str())
        // The direct value is wrong; the _FILE variant wins.
        .env("VSYNC_PASSPHRASE", "not the passphrase")
        .env("VSYNC_PASSPHRASE_FILE", &passphrase_file)
        .env("FROM_PROCESS_ENV", "set-by-parent")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("child: opened from the process environment"),
        "the child did not run: {stdout}"
    );
}

/// The child half of [`open_reads_the_process_environment_and_file_variants`]:
/// does nothing unless that test started it.
#[tokio::test(flavor = "multi_thread")]
async fn open_from_the_process_environment() {
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    let vault = open(Options::new().default_value("PORT", "8080"))
        .await
        .expect("open() from VSYNC_CONFIG and VSYNC_PASSPHRASE_FILE");
    assert_eq!(
        value(&vault, "DATABASE_URL").as_deref(),
        Some("postgres://from-vault")
    );
    assert_eq!(vault.env_source("FROM_PROCESS_ENV"), Source::Env);
    assert_eq!(
        value(&vault, "FROM_PROCESS_ENV").as_deref(),
        Some("set-by-parent")
    );
    assert_eq!(vault.env_source("PORT"), Source::Default);
    println!("child: opened from the process environment");
}
