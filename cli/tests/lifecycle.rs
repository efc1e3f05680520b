//! The vault lifecycle end to end: the `vsync` binary against a real S3
//! server (s3s-fs, started by `vsync-testcontainers`) and against the local
//! directory store, each "machine" a separate HOME and git checkout.
//!
//! The harness serves S3 from this test's tokio runtime, so every child
//! process is awaited with `tokio::process`, never a blocking wait.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{BUCKET, Machine, s3_server};
use vsync_backends::s3::{Proxy, S3Store};
use vsync_engine::store::{ObjectInfo, PutCondition, Store, StoreError};
use vsync_testcontainers::{EtagUnquotingProxy, ForwardProxy, S3Server};

impl Machine {
    /// Adds a profile for the harness's server and inits `dev` with it.
    async fn init_on(&self, server: &S3Server) {
        self.add_profile("harness", &server.endpoint(), server, &[])
            .await;
        self.ok(&["init", "dev", "--profile=harness", "--repo=acme_web"])
            .await;
    }

    /// Adds profile `name` for the harness's server reached at `endpoint`.
    async fn add_profile(&self, name: &str, endpoint: &str, server: &S3Server, extra: &[&str]) {
        let endpoint = format!("--endpoint={endpoint}");
        let access_key = format!("--access-key={}", server.access_key());
        let region = format!("--region={}", server.region());
        let bucket = format!("--bucket={BUCKET}");
        let mut args = vec![
            "profile",
            "add",
            name,
            &endpoint,
            &region,
            &bucket,
            &access_key,
        ];
        args.extend_from_slice(extra);
        let output = self
            .command(&args)
            .env("VSYNC_SECRET_ACCESS_KEY", server.secret_key())
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
}

/// A vault with a `.env.dev`, a nested asset and a binary file.
fn write_vault(dir: &Path, database_url: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let files = vec![
        (
            PathBuf::from(".env.dev"),
            format!("DATABASE_URL={database_url}\nAPI_KEY=\"k-123\"\n").into_bytes(),
        ),
        (
            PathBuf::from("gcp/service-account.json"),
            br#"{"type":"service_account","private_key":"-----BEGIN-----"}"#.to_vec(),
        ),
        (PathBuf::from("tls/server.p12"), binary),
    ];
    for (path, bytes) in &files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    files
}

fn assert_vault(dir: &Path, files: &[(PathBuf, Vec<u8>)]) {
    for (path, bytes) in files {
        assert_eq!(&std::fs::read(dir.join(path)).unwrap(), bytes, "{path:?}");
    }
}

/// A store on the harness's bucket, for reading and tampering behind the
/// CLI's back.
fn direct_store(server: &S3Server) -> S3Store {
    S3Store::builder()
        .endpoint(server.endpoint())
        .region(server.region())
        .bucket(BUCKET)
        .credentials(server.access_key(), server.secret_key())
        .proxy(Proxy::Disabled)
        .build()
        .unwrap()
}

fn versions_of(json: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(json).unwrap();
    doc["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ts"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_versions_and_pull_at_against_s3() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    let first = write_vault(&alice.vault(), "postgres://first");
    alice.ok(&["push", "dev"]).await;
    let second = write_vault(&alice.vault(), "postgres://second");
    alice.ok(&["push", "dev"]).await;

    let versions = versions_of(&alice.ok(&["versions", "dev", "--json"]).await);
    assert_eq!(versions.len(), 2);
    assert!(versions[0] > versions[1], "newest first: {versions:?}");

    std::fs::remove_dir_all(alice.vault()).unwrap();
    alice.ok(&["pull", "dev", "--force"]).await;
    assert_vault(&alice.vault(), &second);

    let at = format!("--at={}", versions[1]);
    alice.ok(&["pull", "dev", &at, "--force"]).await;
    assert_vault(&alice.vault(), &first);

    // The bucket holds ciphertext only.
    let store = direct_store(&server);
    for object in store.list("acme_web/dev/").await.unwrap() {
        let body = store.get(&object.key).await.unwrap().unwrap().body;
        assert!(
            !body.windows(8).any(|w| w == b"postgres"),
            "{} leaks plaintext",
            object.key
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newcomer_flow_works_on_the_local_store_without_any_account() {
    let machine = Machine::new();
    let init = machine.run(&["init", "dev", "--repo=demo"]).await;
    assert!(init.status.success(), "{init:?}");
    assert!(String::from_utf8_lossy(&init.stderr).contains("local directory store"));
    assert_eq!(
        std::fs::read_to_string(machine.checkout.join(".vsync")).unwrap(),
        "# .vsync — vsync identity pin (commit this file)\n# Docs: https://github.com/vsync-rs/vsync#the-vsync-pin\nrepo=demo\n"
    );
    let files = write_vault(&machine.vault(), "postgres://local");
    machine.ok(&["push", "dev"]).await;
    std::fs::remove_dir_all(machine.vault()).unwrap();
    machine.ok(&["pull", "dev", "--force"]).await;
    assert_vault(&machine.vault(), &files);
    assert!(machine.ok(&["versions", "dev"]).await.contains(" * "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_one_wins_and_the_bucket_stays_consistent() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    write_vault(&alice.vault(), "postgres://base");
    alice.ok(&["push", "dev"]).await;
    // A second machine in the same state: on one machine the env's lock
    // would make the second push wait for the first.
    let bob = Machine::new();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(alice.home.join("."))
        .arg(&bob.home)
        .status()
        .unwrap();
    assert!(copied.success());

    let pushes: Vec<_> = [&alice, &bob]
        .into_iter()
        .map(|machine| machine.command(&["push", "dev"]).output())
        .collect();
    let mut outputs = Vec::new();
    for push in pushes {
        outputs.push(push.await.unwrap());
    }
    let winners = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "{outputs:?}");
    let loser = outputs.iter().find(|o| !o.status.success()).unwrap();
    assert_eq!(loser.status.code(), Some(4), "{loser:?}");
    assert!(String::from_utf8_lossy(&loser.stderr).contains("another push published first"));

    // Two versions, no orphan bundle, and the current one pulls.
    let listed = direct_store(&server)
        .list("acme_web/dev/versions/")
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    alice.ok(&["pull", "dev", "--force"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_tamper_and_wrong_key_are_refused() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    write_vault(&alice.vault(), "postgres://one");
    alice.ok(&["push", "dev"]).await;
    let newest = write_vault(&alice.vault(), "postgres://two");
    alice.ok(&["push", "dev"]).await;
    let versions = versions_of(&alice.ok(&["versions", "dev", "--json"]).await);
    let store = direct_store(&server);

    // Rollback: the pointer moved back to the older version.
    let latest = store.head("acme_web/dev/latest").await.unwrap().unwrap();
    store
        .put(
            "acme_web/dev/latest",
            versions[1].as_bytes(),
            PutCondition::IfMatch(latest.etag),
        )
        .await
        .unwrap();
    let stderr = alice.fails(&["pull", "dev"], 4).await;
    assert!(stderr.contains("possible rollback"), "{stderr}");
    assert_vault(&alice.vault(), &newest);

    // Replay: the old bundle copied under the newest name.
    let old = store
        .get(&format!("acme_web/dev/versions/{}.enc", versions[1]))
        .await
        .unwrap()
        .unwrap();
    let newest_key = format!("acme_web/dev/versions/{}.enc", versions[0]);
    let ObjectInfo { etag, .. } = store.head(&newest_key).await.unwrap().unwrap();
    store
        .put(&newest_key, &old.body, PutCondition::IfMatch(etag.clone()))
        .await
        .unwrap();
    let latest = store.head("acme_web/dev/latest").await.unwrap().unwrap();
    store
        .put(
            "acme_web/dev/latest",
            versions[0].as_bytes(),
            PutCondition::IfMatch(latest.etag),
        )
        .await
        .unwrap();
    alice.fails(&["pull", "dev", "--force"], 5).await;

    // Tamper: one flipped byte in the ciphertext.
    let mut tampered = old.body.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let etag = store.head(&newest_key).await.unwrap().unwrap().etag;
    store
        .put(&newest_key, &tampered, PutCondition::IfMatch(etag))
        .await
        .unwrap();
    alice.fails(&["pull", "dev", "--force"], 5).await;
    assert_vault(&alice.vault(), &newest);

    // Wrong key: the error names the recovery.
    let at = format!("--at={}", versions[1]);
    std::fs::write(
        alice.key_file(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )
    .unwrap();
    let stderr = alice.fails(&["pull", "dev", &at, "--force"], 5).await;
    assert!(stderr.contains("import"), "{stderr}");
}

/// A store that kills the server right after the first successful write:
/// the bundle is uploaded, the pointer swap never happens.
struct DiesAfterFirstWrite {
    inner: S3Store,
    server: Arc<S3Server>,
}

#[async_trait::async_trait]
impl Store for DiesAfterFirstWrite {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get_limited(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<vsync_engine::store::Object>, StoreError> {
        self.inner.get_limited(key, max_bytes).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        self.inner.head(key).await
    }
    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: PutCondition,
    ) -> Result<vsync_engine::store::ETag, StoreError> {
        let etag = self.inner.put(key, body, condition).await?;
        self.server.stop().await.unwrap();
        Ok(etag)
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<vsync_engine::store::ListedObject>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_dying_mid_push_leaves_the_previous_version_intact() {
    let server = Arc::new(s3_server().await);
    let alice = Machine::new();
    alice.init_on(&server).await;
    let previous = write_vault(&alice.vault(), "postgres://previous");
    alice.ok(&["push", "dev"]).await;

    // A second push whose server dies between the bundle and the pointer.
    let store = DiesAfterFirstWrite {
        inner: direct_store(&server),
        server: Arc::clone(&server),
    };
    let layout = vsync_engine::vault::Layout::for_repo_env("acme_web", "dev");
    let head = vsync_engine::vault::remote_head(&store, &layout)
        .await
        .unwrap()
        .unwrap();
    let key = vsync_crypto_key(&alice);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let err = vsync_engine::vault::publish(
        &store,
        &layout,
        &key,
        b"never published",
        Some(&head),
        vsync_engine::timestamp::Timestamp::now(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");

    // The CLI fails cleanly while the server is down…
    alice.fails(&["pull", "dev", "--force"], 3).await;
    // …and after it comes back the previous version still pulls intact.
    server.restart().await.unwrap();
    std::fs::remove_dir_all(alice.vault()).unwrap();
    alice.ok(&["pull", "dev", "--force"]).await;
    assert_vault(&alice.vault(), &previous);
}

/// The bundle key as `vsync` derives it from the machine's key file.
fn vsync_crypto_key(machine: &Machine) -> vsync_crypto::kdf::Key {
    let key = std::fs::read_to_string(machine.key_file()).unwrap();
    let base = vsync_local::ConfigBase::at(machine.home.join(".config/vsync"));
    let config = vsync_local::EnvConfig::load_for(&base, "acme_web", "dev").unwrap();
    vsync_crypto::kdf::Key::derive(
        key.trim().as_bytes(),
        config.encryption.salt.as_bytes(),
        vsync_crypto::kdf::DEFAULT_ITERATIONS,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_onboards_a_second_machine() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    let files = write_vault(&alice.vault(), "postgres://shared");
    alice.ok(&["push", "dev"]).await;
    let share = alice.home.join("dev.share");
    let passphrase_file = alice.home.join("passphrase");
    std::fs::write(&passphrase_file, "correct-horse-battery\n").unwrap();
    alice
        .ok(&[
            "export",
            "dev",
            &format!("--out={}", share.display()),
            &format!("--passphrase-file={}", passphrase_file.display()),
        ])
        .await;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&share).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let bob = Machine::new();
    let wrong = bob.home.join("wrong");
    std::fs::write(&wrong, "not-the-passphrase").unwrap();
    let stderr = bob
        .fails(
            &[
                "import",
                "dev",
                share.to_str().unwrap(),
                &format!("--passphrase-file={}", wrong.display()),
            ],
            5,
        )
        .await;
    assert!(stderr.contains("passphrase"), "{stderr}");
    bob.ok(&[
        "import",
        "dev",
        share.to_str().unwrap(),
        &format!("--passphrase-file={}", passphrase_file.display()),
    ])
    .await;
    bob.ok(&["pull", "dev"]).await;
    assert_vault(&bob.vault(), &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_honours_http_proxy() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    write_vault(&alice.vault(), "postgres://proxied");
    let proxy = ForwardProxy::start().await.unwrap();
    let output = alice
        .command(&["push", "dev"])
        .env("HTTP_PROXY", proxy.url())
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        proxy.request_count() >= 3,
        "head, bundle and pointer went through the proxy; saw {}",
        proxy.request_count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_token_mints_a_blob_for_the_env() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;

    let before_push = alice.run(&["runtime-token", "--env=dev"]).await;
    assert!(before_push.status.success(), "{before_push:?}");
    assert!(String::from_utf8_lossy(&before_push.stderr).contains("vsync push dev"));

    write_vault(&alice.vault(), "postgres://token");
    alice.ok(&["push", "dev"]).await;
    let blob = alice.ok(&["runtime-token", "--env=dev"]).await;
    let config = vsync_crypto::config_blob::RuntimeConfig::decode(blob.trim()).unwrap();
    assert_eq!(config.endpoint, server.endpoint());
    assert_eq!(config.bucket, BUCKET);
    assert_eq!(config.prefix, "acme_web/dev/");
    assert_eq!(config.env, "dev");
    assert_eq!(config.iterations.get(), 600_000);

    // The local store cannot serve applications: refused with the fix.
    let local = Machine::new();
    local.ok(&["init", "dev", "--repo=demo"]).await;
    let stderr = local.fails(&["runtime-token", "--env=dev"], 2).await;
    assert!(stderr.contains("--profile"), "{stderr}");
}

/// The runtime library reads what the binary pushed: the blob from
/// `vsync runtime-token`, the key from the keystore, and `has_new_version`
/// flips after the next `vsync push`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_library_opens_what_the_cli_pushed() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    let files = write_vault(&alice.vault(), "postgres://app@db/first");
    alice.ok(&["push", "dev"]).await;
    let blob = alice.ok(&["runtime-token", "--env=dev"]).await;
    let passphrase = std::fs::read_to_string(alice.key_file()).unwrap();

    let options = vsync_s3_client::Options::new().default_value("LOG_LEVEL", "info");
    let app = vsync_s3_client::open_with(blob.trim(), passphrase.trim(), options)
        .await
        .unwrap();
    let database_url = app.get_env("DATABASE_URL").unwrap();
    assert_eq!(database_url.expose(), "postgres://app@db/first");
    assert_eq!(app.get_env("API_KEY").unwrap().expose(), "k-123");
    assert_eq!(app.get_env("LOG_LEVEL").unwrap().expose(), "info");
    let (_, service_account) = &files[1];
    assert_eq!(
        app.get_as_content("gcp/service-account.json")
            .unwrap()
            .expose(),
        service_account.as_slice()
    );
    assert!(!app.has_new_version().await.unwrap());

    write_vault(&alice.vault(), "postgres://app@db/second");
    alice.ok(&["push", "dev"]).await;
    assert!(
        app.has_new_version().await.unwrap(),
        "a second push is seen"
    );
    assert_eq!(
        app.get_env("DATABASE_URL").unwrap().expose(),
        "postgres://app@db/first",
        "the open handle keeps the values it booted with"
    );
}

fn audit_rows(json: &str) -> Vec<serde_json::Value> {
    let doc: serde_json::Value = serde_json::from_str(json).unwrap();
    doc["rows"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_each_verb_and_racing_appends_all_land() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    assert!(
        alice
            .ok(&["audit", "dev"])
            .await
            .contains("(no audit log yet for acme_web/dev)")
    );
    write_vault(&alice.vault(), "postgres://audited");
    let output = alice
        .command(&["push", "dev", "--note=first deploy", "--meta=ticket=OPS-7"])
        .env("VSYNC_AUDIT_META", r#"{"ci":true,"ticket":"OPS-1"}"#)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    alice.ok(&["push", "dev", "--no-audit"]).await;

    // Two pulls at once: both rows land (the loser of the log's
    // compare-and-swap rereads and retries).
    let pulls: Vec<_> = (0..2)
        .map(|_| alice.command(&["pull", "dev", "--force"]).output())
        .collect();
    for pull in pulls {
        let output = pull.await.unwrap();
        assert!(output.status.success(), "{output:?}");
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("audit"),
            "{output:?}"
        );
    }

    let rows = audit_rows(&alice.ok(&["audit", "dev", "--json"]).await);
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["pull", "pull", "push"], "newest first: {rows:?}");
    let push = &rows[2];
    assert_eq!(
        push["meta"],
        r#"{"ci":"true","ticket":"OPS-7","note":"first deploy"}"#
    );
    // The unaudited second push is what the pulls fetched.
    assert!(push["version_ts"].as_str().unwrap() < rows[0]["version_ts"].as_str().unwrap());
    assert_eq!(push["bun_version"], "");
    assert!(push["vsync_version"].as_str().unwrap().ends_with("+rust"));

    let table = alice.ok(&["audit", "dev"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TS "), "{table}");
    assert!(lines[0].contains("ACTION  VERSION"), "{table}");
    assert!(lines[1].starts_with("---"), "{table}");
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines[4].contains("first deploy"), "{table}");
    assert!(lines[4].contains("ci=true, ticket=OPS-7"), "{table}");
    let limited = alice.ok(&["audit", "dev", "--limit=1"]).await;
    assert!(limited.contains("(2 older rows not shown; pass --all to see everything)"));

    // The raw object is upstream's CSV.
    let csv = alice.ok(&["audit", "dev", "--csv"]).await;
    let stored = direct_store(&server)
        .get("acme_web/dev/audit.csv")
        .await
        .unwrap()
        .unwrap()
        .body;
    let stored = String::from_utf8(stored).unwrap();
    assert!(stored.starts_with(
        "ts,action,version_ts,hostname,local_ip,os_user,git_email,vsync_version,bun_version,meta\n"
    ));
    assert_eq!(stored.lines().count(), 4);
    assert_eq!(csv.lines().count(), 4);
    assert!(
        stored.contains(r#""{""ci"":""true"",""ticket"":""OPS-7"",""note"":""first deploy""}""#)
    );

    // Exports and imports are recorded without a version.
    let share = alice.home.join("dev.share");
    let passphrase_file = alice.home.join("passphrase");
    std::fs::write(&passphrase_file, "correct-horse-battery\n").unwrap();
    alice
        .ok(&[
            "export",
            "dev",
            &format!("--out={}", share.display()),
            &format!("--passphrase-file={}", passphrase_file.display()),
        ])
        .await;
    let rows = audit_rows(&alice.ok(&["audit", "dev", "--json", "--all"]).await);
    assert_eq!(rows[0]["action"], "export");
    assert_eq!(rows[0]["version_ts"], "");

    // A bad --meta is a usage error before anything runs.
    let stderr = alice.fails(&["push", "dev", "--meta=novalue"], 2).await;
    assert!(stderr.contains("key=value"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_re_keys_the_current_version_and_every_reader_with_the_new_key_works() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    let files = write_vault(&alice.vault(), "postgres://rotated");
    alice.ok(&["push", "dev"]).await;
    // Bob joined before the rotation: he holds the old key.
    let share = alice.home.join("dev.share");
    let passphrase_file = alice.home.join("share-passphrase");
    std::fs::write(&passphrase_file, "correct-horse-battery").unwrap();
    let share_args = [
        format!("--out={}", share.display()),
        format!("--passphrase-file={}", passphrase_file.display()),
    ];
    alice
        .ok(&["export", "dev", &share_args[0], &share_args[1]])
        .await;
    let bob = Machine::new();
    bob.ok(&["import", "dev", share.to_str().unwrap(), &share_args[1]])
        .await;
    let old_key = std::fs::read_to_string(alice.key_file()).unwrap();
    let before = versions_of(&alice.ok(&["versions", "dev", "--json"]).await);

    // Non-interactive without a new passphrase: a usage error, nothing done.
    let stderr = alice.fails(&["rotate-passphrase", "--env=dev"], 2).await;
    assert!(stderr.contains("--generate"), "{stderr}");
    let short = alice.home.join("short");
    std::fs::write(&short, "too-short").unwrap();
    alice
        .fails(
            &[
                "rotate-passphrase",
                "--env=dev",
                &format!("--new-passphrase-file={}", short.display()),
            ],
            2,
        )
        .await;

    let new_file = alice.home.join("new-passphrase");
    std::fs::write(&new_file, "a-brand-new-passphrase-2026\n").unwrap();
    let stdout = alice
        .ok(&[
            "rotate-passphrase",
            "--env=dev",
            &format!("--new-passphrase-file={}", new_file.display()),
            "--note=quarterly",
        ])
        .await;
    assert!(stdout.contains("rotated acme_web/dev"), "{stdout}");
    assert!(
        !stdout.contains("a-brand-new"),
        "a given passphrase is not echoed: {stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(alice.key_file()).unwrap(),
        "a-brand-new-passphrase-2026"
    );

    // A new version with a new sealed ts, generation grown, old one kept.
    let doc: serde_json::Value =
        serde_json::from_str(&alice.ok(&["versions", "dev", "--json"]).await).unwrap();
    let after = versions_of(&doc.to_string());
    assert_eq!(after.len(), 2);
    assert!(after[0] > before[0]);
    assert_eq!(doc["current"], after[0].as_str());
    assert_eq!(doc["generation"], 2);
    let meta = direct_store(&server)
        .get("acme_web/dev/latest.meta")
        .await
        .unwrap()
        .unwrap()
        .body;
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(
        (meta["gen"].as_u64(), meta["prev_gen"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(meta["rotated_at"].is_string());

    // Pull on the same machine works, and the ledger stayed in sync (no
    // --force needed, push is not refused afterwards).
    alice.ok(&["pull", "dev"]).await;
    assert_vault(&alice.vault(), &files);
    std::fs::write(
        alice.vault().join(".env.dev"),
        "DATABASE_URL=postgres://after\n",
    )
    .unwrap();
    alice.ok(&["push", "dev"]).await;

    // The old key fails with the wrong-passphrase class.
    assert_eq!(std::fs::read_to_string(bob.key_file()).unwrap(), old_key);
    let stderr = bob.fails(&["pull", "dev"], 5).await;
    assert!(stderr.contains("re-import"), "{stderr}");

    // A runtime token minted after the rotation opens with the new key.
    let blob = alice.ok(&["runtime-token", "--env=dev"]).await;
    let vault = vsync_s3_client::open_with(
        blob.trim(),
        "a-brand-new-passphrase-2026",
        vsync_s3_client::Options::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        vault.get_env("DATABASE_URL").unwrap().expose(),
        "postgres://after"
    );
    let old = vsync_s3_client::open_with(blob.trim(), &old_key, vsync_s3_client::Options::new())
        .await
        .unwrap_err();
    assert_eq!(
        old.class(),
        Some(vsync_crypto::ErrorClass::WrongPassphrase),
        "{old:?}"
    );

    // The rotation is in the audit log with its generations.
    let rows = audit_rows(&alice.ok(&["audit", "dev", "--json", "--all"]).await);
    let rotate = rows.iter().find(|r| r["action"] == "rotate").unwrap();
    assert_eq!(
        rotate["meta"],
        r#"{"note":"quarterly","event":"rotate","gen":2,"prev_gen":1}"#
    );

    // --generate mints a key, prints it once, and stores it.
    let stdout = alice
        .ok(&["rotate-passphrase", "--env=dev", "--generate", "--no-audit"])
        .await;
    let printed = stdout
        .lines()
        .find_map(|line| line.strip_prefix("passphrase: "))
        .unwrap();
    assert_eq!(printed.len(), 44);
    assert_eq!(std::fs::read_to_string(alice.key_file()).unwrap(), printed);
    alice.ok(&["pull", "dev"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_loses_the_race_keeps_the_old_key() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    write_vault(&alice.vault(), "postgres://race");
    alice.ok(&["push", "dev"]).await;
    let old_key = std::fs::read_to_string(alice.key_file()).unwrap();

    // Two rotations at once: one publishes, the other loses the
    // compare-and-swap, publishes nothing and leaves its key alone.
    let files: Vec<PathBuf> = (0..2)
        .map(|i| {
            let file = alice.home.join(format!("new-{i}"));
            std::fs::write(&file, format!("rotation-number-{i}-passphrase")).unwrap();
            file
        })
        .collect();
    // Separate keystores, so each rotation's effect on its key is visible.
    let twin = Machine::new();
    let config = alice.home.join(".config/vsync");
    let copy = |from: &Path, to: &Path| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    std::fs::create_dir_all(twin.home.join(".config")).unwrap();
    copy(&config, &twin.home.join(".config/vsync"));
    copy(
        &alice.checkout.join(".vsync"),
        &twin.checkout.join(".vsync"),
    );
    let machines = [&alice, &twin];
    let rotations: Vec<_> = machines
        .iter()
        .zip(&files)
        .map(|(machine, file)| {
            machine
                .command(&[
                    "rotate-passphrase",
                    "--env=dev",
                    &format!("--new-passphrase-file={}", file.display()),
                ])
                .output()
        })
        .collect();
    let mut outcomes = Vec::new();
    for rotation in rotations {
        outcomes.push(rotation.await.unwrap());
    }
    let winners: Vec<usize> = (0..2).filter(|&i| outcomes[i].status.success()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let (winner, loser) = (winners[0], 1 - winners[0]);
    // Overlapping, the loser loses the compare-and-swap (4); scheduled
    // after the winner, its old key no longer opens the current version
    // (5). Either way it changed nothing.
    let stderr = String::from_utf8_lossy(&outcomes[loser].stderr);
    match outcomes[loser].status.code() {
        Some(4) => assert!(stderr.contains("current key stays"), "{stderr}"),
        Some(5) => assert!(stderr.contains("does not match"), "{stderr}"),
        other => panic!("loser exited {other:?}: {stderr}"),
    }
    assert_eq!(
        std::fs::read_to_string(machines[loser].key_file()).unwrap(),
        old_key
    );
    assert_eq!(
        std::fs::read_to_string(machines[winner].key_file()).unwrap(),
        format!("rotation-number-{winner}-passphrase")
    );
    // One new version only; the winner pulls it.
    let versions = versions_of(&alice.ok(&["versions", "dev", "--json"]).await);
    assert_eq!(versions.len(), 2, "{versions:?}");
    machines[winner].ok(&["pull", "dev", "--force"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keytree_moves_every_key_and_profile_to_another_machine() {
    use std::os::unix::fs::PermissionsExt;
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    alice
        .ok(&["init", "prod", "--profile=harness", "--repo=acme_web"])
        .await;
    let files = write_vault(&alice.vault(), "postgres://keytree");
    alice.ok(&["push", "dev"]).await;

    let listing = alice.ok(&["keystore", "list"]).await;
    assert!(listing.contains("file keystore at"), "{listing}");
    assert!(listing.contains("acme_web\n"), "{listing}");
    assert!(listing.contains("2 envs, 2 with a key"), "{listing}");

    // Nothing selected: refused.
    let stderr = alice.fails(&["keystore", "export"], 2).await;
    assert!(stderr.contains("--all"), "{stderr}");

    let keytree = alice.home.join("alice.keytree");
    let passphrase_file = alice.home.join("keytree-passphrase");
    std::fs::write(&passphrase_file, "keytree-passphrase-1\n").unwrap();
    let passphrase_arg = format!("--passphrase-file={}", passphrase_file.display());
    let stdout = alice
        .ok(&[
            "keystore",
            "export",
            "--all",
            &format!("--out={}", keytree.display()),
            &passphrase_arg,
        ])
        .await;
    // A passphrase the user chose is never echoed back (only a generated one).
    assert!(!stdout.contains("keytree-passphrase-1"), "{stdout}");
    assert!(!stdout.contains("passphrase:"), "{stdout}");
    assert_eq!(
        std::fs::metadata(&keytree).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bytes = std::fs::read(&keytree).unwrap();
    assert_eq!(&bytes[..4], b"VKT1");
    let json = vsync_crypto::frame::open_keytree("keytree-passphrase-1", &bytes).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(payload["version"], 1);
    assert!(payload["exportedAt"].as_str().unwrap().ends_with('Z'));
    let entries = payload["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (entries[0]["repo"].as_str(), entries[0]["env"].as_str()),
        (Some("acme_web"), Some("dev"))
    );
    assert_eq!(entries[0]["config"]["version"], 1);
    assert_eq!(payload["profiles"][0]["name"], "harness");

    // A .share is not a .keytree: the error names the right verb.
    let share = alice.home.join("dev.share");
    alice
        .ok(&[
            "export",
            "dev",
            &format!("--out={}", share.display()),
            &passphrase_arg,
        ])
        .await;
    let bob = Machine::new();
    let stderr = bob
        .fails(
            &[
                "keystore",
                "import",
                share.to_str().unwrap(),
                &passphrase_arg,
            ],
            5,
        )
        .await;
    assert!(stderr.contains("vsync import <env>"), "{stderr}");

    // Bob already holds a different key for prod: skipped without --force.
    bob.ok(&["init", "prod", "--repo=acme_web", "--local"])
        .await;
    let bob_prod_key =
        std::fs::read_to_string(bob.home.join(".config/vsync/.keystore/acme_web/prod.key"))
            .unwrap();
    let stdout = bob
        .ok(&[
            "keystore",
            "import",
            keytree.to_str().unwrap(),
            &passphrase_arg,
        ])
        .await;
    assert!(stdout.contains("profile harness: imported"), "{stdout}");
    assert!(stdout.contains("acme_web/dev: imported"), "{stdout}");
    assert!(
        stdout.contains("acme_web/prod: skipped: this machine holds a different key and config"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(bob.home.join(".config/vsync/.keystore/acme_web/prod.key"))
            .unwrap(),
        bob_prod_key
    );
    assert_eq!(
        std::fs::read_to_string(bob.key_file()).unwrap(),
        std::fs::read_to_string(alice.key_file()).unwrap()
    );
    bob.ok(&["pull", "dev"]).await;
    assert_vault(&bob.vault(), &files);

    // Again: unchanged; with --force the different pair is replaced.
    let stdout = bob
        .ok(&[
            "keystore",
            "import",
            keytree.to_str().unwrap(),
            &passphrase_arg,
        ])
        .await;
    assert!(
        stdout.contains("acme_web/dev: already here, unchanged"),
        "{stdout}"
    );
    let stdout = bob
        .ok(&[
            "keystore",
            "import",
            keytree.to_str().unwrap(),
            &passphrase_arg,
            "--force",
        ])
        .await;
    assert!(stdout.contains("acme_web/prod: replaced"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(bob.home.join(".config/vsync/.keystore/acme_web/prod.key"))
            .unwrap(),
        std::fs::read_to_string(alice.home.join(".config/vsync/.keystore/acme_web/prod.key"))
            .unwrap()
    );

    // A wrong passphrase changes nothing.
    let carol = Machine::new();
    let wrong = carol.home.join("wrong");
    std::fs::write(&wrong, "not-the-passphrase").unwrap();
    carol
        .fails(
            &[
                "keystore",
                "import",
                keytree.to_str().unwrap(),
                &format!("--passphrase-file={}", wrong.display()),
            ],
            5,
        )
        .await;
    assert!(!carol.home.join(".config/vsync/acme_web").exists());

    // Filters: only prod.
    let only_prod = alice.home.join("prod.keytree");
    alice
        .ok(&[
            "keystore",
            "export",
            "--env=prod",
            "--repo=acme_web",
            &format!("--out={}", only_prod.display()),
            &passphrase_arg,
        ])
        .await;
    let json = vsync_crypto::frame::open_keytree(
        "keytree-passphrase-1",
        &std::fs::read(&only_prod).unwrap(),
    )
    .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(payload["entries"].as_array().unwrap().len(), 1);
    assert_eq!(payload["entries"][0]["env"], "prod");
    assert_eq!(payload["profiles"].as_array().unwrap().len(), 0);
}

fn status_of(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_keystore_and_compares_with_the_remote() {
    let server = s3_server().await;
    let alice = Machine::new();
    alice.init_on(&server).await;
    write_vault(&alice.vault(), "postgres://status");

    let doc = status_of(&alice.ok(&["status", "--json"]).await);
    assert_eq!(doc["repo"], "acme_web");
    assert_eq!(doc["source"], "file");
    assert!(
        doc["keystore"]
            .as_str()
            .unwrap()
            .starts_with("file keystore at ")
    );
    assert_eq!(doc["keychainEnumerationSupported"], true);
    let env = &doc["envs"][0];
    assert_eq!(env["env"], "dev");
    assert_eq!(env["profile"], "harness");
    assert_eq!(env["profilePresent"], true);
    assert_eq!(env["prefix"], "acme_web/dev/");
    assert_eq!(env["keystore"], doc["keystore"]);
    assert_eq!(env["status"]["ok"], true);
    assert_eq!(env["status"]["code"], "ok");
    assert!(env["remote"].is_null());
    assert_eq!(doc["profiles"][0]["name"], "harness");

    let doc = status_of(&alice.ok(&["status", "--json", "--check-remote"]).await);
    assert_eq!(doc["envs"][0]["remote"]["state"], "not-published");
    alice.ok(&["push", "dev"]).await;
    let doc = status_of(&alice.ok(&["status", "--json", "--check-remote"]).await);
    let remote = &doc["envs"][0]["remote"];
    assert_eq!(remote["state"], "in-sync");
    assert_eq!(remote["gen"], 1);
    assert_eq!(doc["envs"][0]["lastSync"]["op"], "push");

    // Local edit: ahead.
    std::fs::write(
        alice.vault().join(".env.dev"),
        "DATABASE_URL=postgres://edited\n",
    )
    .unwrap();
    let doc = status_of(&alice.ok(&["status", "--json", "--check-remote"]).await);
    assert_eq!(doc["envs"][0]["remote"]["state"], "ahead");
    assert_eq!(doc["envs"][0]["remote"]["localChanges"], 1);

    // A teammate pushes: diverged; after discarding the edit: behind.
    let share = alice.home.join("dev.share");
    let passphrase_file = alice.home.join("passphrase");
    std::fs::write(&passphrase_file, "correct-horse-battery").unwrap();
    let passphrase_arg = format!("--passphrase-file={}", passphrase_file.display());
    alice
        .ok(&[
            "export",
            "dev",
            &format!("--out={}", share.display()),
            &passphrase_arg,
        ])
        .await;
    let bob = Machine::new();
    bob.ok(&["import", "dev", share.to_str().unwrap(), &passphrase_arg])
        .await;
    bob.ok(&["pull", "dev"]).await;
    std::fs::write(bob.vault().join("extra.txt"), "new").unwrap();
    bob.ok(&["push", "dev"]).await;
    let doc = status_of(&alice.ok(&["status", "--json", "--check-remote"]).await);
    assert_eq!(doc["envs"][0]["remote"]["state"], "diverged");
    alice.ok(&["pull", "dev", "--force"]).await;
    std::fs::remove_file(alice.vault().join("extra.txt")).unwrap();
    alice.ok(&["pull", "dev", "--force"]).await;
    let text = alice.ok(&["status", "--check-remote"]).await;
    assert!(text.contains("Keystore:  file keystore at"), "{text}");
    assert!(text.contains("ok (in-sync)"), "{text}");
    bob.ok(&["push", "dev", "--force"]).await;
    let doc = status_of(&alice.ok(&["status", "--json", "--check-remote"]).await);
    assert_eq!(doc["envs"][0]["remote"]["state"], "behind");
    assert_eq!(doc["envs"][0]["remote"]["gen"], 3);

    // All ok: --quiet prints nothing.
    let output = alice.run(&["status", "--quiet"]).await;
    assert!(output.status.success());
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "{output:?}"
    );

    // A missing key: orphan-no-key, and --quiet says so with exit 1.
    let key = std::fs::read(alice.key_file()).unwrap();
    std::fs::remove_file(alice.key_file()).unwrap();
    let stderr = alice.fails(&["status", "--quiet"], 1).await;
    assert!(
        stderr.contains("dev: orphan-no-key — no key for acme_web/dev"),
        "{stderr}"
    );
    std::fs::write(alice.key_file(), &key).unwrap();

    // A corrupt config: orphan-no-config; the other env still reports.
    alice
        .ok(&["init", "prod", "--profile=harness", "--repo=acme_web"])
        .await;
    std::fs::write(
        alice.home.join(".config/vsync/acme_web/env_prod"),
        b"garbage",
    )
    .unwrap();
    let doc = status_of(&alice.ok(&["status", "--json"]).await);
    let codes: Vec<&str> = doc["envs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ok", "orphan-no-config"]);
    // A key whose config is gone is a notice (the file keystore can be listed).
    std::fs::remove_file(alice.home.join(".config/vsync/acme_web/env_prod")).unwrap();
    let doc = status_of(&alice.ok(&["status", "--json"]).await);
    assert!(
        doc["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("acme_web/prod")),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_links_dot_env_to_the_chosen_env() {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=demo"]).await;
    machine.ok(&["init", "prod", "--repo=demo"]).await;
    assert_eq!(machine.ok(&["use"]).await.trim(), "(no ./.env)");

    // Not pulled yet: refused with the fix.
    let stderr = machine.fails(&["use", "dev"], 2).await;
    assert!(stderr.contains("vsync pull dev"), "{stderr}");
    // Not initialised: the config error.
    machine.fails(&["use", "staging"], 2).await;

    write_vault(&machine.vault(), "postgres://dev");
    let prod = machine.checkout.join("infra/vault/prod");
    std::fs::create_dir_all(&prod).unwrap();
    std::fs::write(prod.join(".env.prod"), "DATABASE_URL=postgres://prod\n").unwrap();

    let output = machine.run(&["use", "dev"]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "./.env → infra/vault/dev/.env.dev"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains(".gitignore"));
    let link = machine.checkout.join(".env");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("infra/vault/dev/.env.dev")
    );
    assert!(
        std::fs::read_to_string(&link)
            .unwrap()
            .contains("postgres://dev")
    );

    // Switching replaces the symlink; with .gitignore covering it, no warning.
    std::fs::write(machine.checkout.join(".gitignore"), ".env*\n").unwrap();
    let output = machine.run(&["use", "prod"]).await;
    assert!(output.status.success(), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("warning"));
    assert!(
        std::fs::read_to_string(&link)
            .unwrap()
            .contains("postgres://prod")
    );
    assert_eq!(
        machine.ok(&["use"]).await.trim(),
        "./.env → infra/vault/prod/.env.prod"
    );

    // A link elsewhere in the tree is relative to where it lives.
    std::fs::create_dir_all(machine.checkout.join("apps/web")).unwrap();
    machine.ok(&["use", "dev", "--link=apps/web/.env"]).await;
    assert_eq!(
        std::fs::read_link(machine.checkout.join("apps/web/.env")).unwrap(),
        Path::new("../../infra/vault/dev/.env.dev")
    );
    machine
        .fails(&["use", "dev", "--link=missing/dir/.env"], 2)
        .await;

    // A regular file is never replaced.
    std::fs::remove_file(&link).unwrap();
    std::fs::write(&link, "HAND_WRITTEN=1\n").unwrap();
    let stderr = machine.fails(&["use", "dev"], 4).await;
    assert!(stderr.contains("regular file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "HAND_WRITTEN=1\n");
    assert!(machine.ok(&["use"]).await.contains("regular file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_hetzner_preset_works_behind_an_rgw_and_without_it_the_412_is_explained() {
    let server = s3_server().await;
    let rgw = EtagUnquotingProxy::start(&server.endpoint()).await.unwrap();

    // A custom host (127.0.0.1) is not recognisable as Hetzner: forced.
    let alice = Machine::new();
    alice
        .add_profile("rgw", &rgw.endpoint(), &server, &["--provider=hetzner"])
        .await;
    assert!(
        alice
            .ok(&["profile", "show", "rgw"])
            .await
            .contains("provider:        hetzner")
    );
    alice
        .ok(&["init", "dev", "--profile=rgw", "--repo=acme_web"])
        .await;
    let doc = status_of(&alice.ok(&["status", "--json"]).await);
    assert!(
        doc["envs"][0]["store"]
            .as_str()
            .unwrap()
            .contains("(hetzner preset)"),
        "{doc}"
    );
    write_vault(&alice.vault(), "postgres://rgw-one");
    alice.ok(&["push", "dev"]).await;
    let second = write_vault(&alice.vault(), "postgres://rgw-two");
    // The second push swaps `latest`, `latest.meta` and `audit.csv` with
    // If-Match: only the bare form passes the RGW.
    alice.ok(&["push", "dev"]).await;
    std::fs::remove_dir_all(alice.vault()).unwrap();
    let output = alice.run(&["pull", "dev", "--force"]).await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("audit"),
        "{output:?}"
    );
    assert_vault(&alice.vault(), &second);
    let rows = audit_rows(&alice.ok(&["audit", "dev", "--json"]).await);
    assert_eq!(rows.len(), 3);
    assert!(rgw.request_count() > 0);

    // The same RGW without the preset: the first push creates everything
    // (no If-Match needed), the second is refused with the explanation,
    // and the bucket keeps the first version intact.
    let bob = Machine::new();
    bob.add_profile("rgw", &rgw.endpoint(), &server, &[]).await;
    bob.ok(&["init", "dev", "--profile=rgw", "--repo=bob_app"])
        .await;
    let bob_vault = bob.checkout.join("infra/vault/dev");
    let first = write_vault(&bob_vault, "postgres://bob-one");
    bob.ok(&["push", "dev"]).await;
    write_vault(&bob_vault, "postgres://bob-two");
    let stderr = bob.fails(&["push", "dev"], 3).await;
    assert!(stderr.contains("412"), "{stderr}");
    assert!(stderr.contains("--provider=hetzner"), "{stderr}");
    assert!(stderr.contains("Nothing was overwritten"), "{stderr}");
    let versions = versions_of(&bob.ok(&["versions", "dev", "--json"]).await);
    assert_eq!(versions.len(), 1, "no orphan bundle: {versions:?}");
    std::fs::remove_dir_all(&bob_vault).unwrap();
    bob.ok(&["pull", "dev", "--force"]).await;
    assert_vault(&bob_vault, &first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_initialised_with_audit_off_records_nothing() {
    let machine = Machine::new();
    machine
        .ok(&["init", "dev", "--repo=demo", "--audit=off"])
        .await;
    write_vault(&machine.vault(), "postgres://quiet");
    machine.ok(&["push", "dev", "--note=ignored"]).await;
    machine.ok(&["pull", "dev", "--force"]).await;
    assert_eq!(
        machine.ok(&["audit", "dev"]).await.trim(),
        "(no audit log yet for demo/dev)"
    );
    // The local store keeps a log like a bucket does when auditing is on.
    machine.ok(&["init", "prod", "--repo=demo"]).await;
    let prod = machine.checkout.join("infra/vault/prod");
    std::fs::write(prod.join(".env.prod"), "A=1\n").unwrap();
    machine.ok(&["push", "prod"]).await;
    let rows = audit_rows(&machine.ok(&["audit", "prod", "--json"]).await);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["action"], "push");
}
