//! The shared Source suite against the Vault source, on the harness's
//! protocol-faithful Vault fake: each suite key is its own KV v2 secret
//! `secret/app/<KEY>` with one field `<KEY>`, so listing 1,005 secrets and
//! reading them one request each is real. Vault has no disabled state, so
//! the harness's `disable` says so and that case checks nothing; values
//! are JSON strings, never bytes, so the binary case checks nothing either.
//! "Deleted" is `vault kv metadata delete` (the listing no longer shows the
//! secret); a deleted or destroyed current version is its own test below.
//!
//! Then what is Vault's own: several fields of one secret, KV v1, nested
//! folders, the AppRole and Kubernetes logins, namespaces, the mount
//! lookup, and answers no Vault gives (names that are not one segment,
//! endless folders, oversized bodies), served by a canned server.

mod suite;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;
use suite::vault::VaultKv;
use vsync_engine::import::{ImportAction, ImportError};
use vsync_engine::sink::SinkError;
use vsync_engine::source::{ListedSecret, Source, SourceValue};
use vsync_sources::vault::{Auth, VaultSource};
use vsync_testcontainers::VaultServer;
use vsync_testcontainers::faults::Call;

source_suite!(VaultKv::start().await);

fn token() -> Auth {
    Auth::token(VaultServer::READ_ONLY_TOKEN)
}

fn builder(server: &VaultServer) -> vsync_sources::vault::VaultSourceBuilder {
    VaultSource::builder()
        .address(server.address())
        .auth(token())
}

/// Lists and reads everything, sorted by (secret, field), values as text.
async fn read_all(source: &VaultSource) -> Vec<(String, String, String)> {
    let listed = source.list().await.unwrap();
    let mut read = Vec::new();
    for secret in &listed {
        let batch = source.read(&[secret]).await.unwrap();
        read.extend(batch.values.into_iter().map(
            |SourceValue {
                 secret,
                 name,
                 value,
             }| (secret, name, value.as_text().unwrap().to_owned()),
        ));
    }
    read.sort();
    read
}

fn triples(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected
        .iter()
        .map(|(s, n, v)| ((*s).to_owned(), (*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_fields_of_one_secret_become_several_keys_and_a_path_may_name_that_secret() {
    let vault = VaultKv::start().await;
    let server = &vault.server;
    for (field, value) in [
        ("DB_USER", json!("app")),
        ("DB_PASSWORD", json!("p@ss word")),
        ("DB_PORT", json!(5432)),
        ("DB_OPTIONS", json!({"ssl": true, "hosts": ["a", "b"]})),
    ] {
        server.edit_outside("secret", "app/db", field, value);
    }
    let expected = triples(&[
        // Compact, in the order Vault holds the fields.
        ("app/db", "DB_OPTIONS", r#"{"ssl":true,"hosts":["a","b"]}"#),
        ("app/db", "DB_PASSWORD", "p@ss word"),
        ("app/db", "DB_PORT", "5432"),
        ("app/db", "DB_USER", "app"),
    ]);
    let folder = builder(server).path("app").build().unwrap();
    assert_eq!(read_all(&folder).await, expected);

    // The path of the secret itself (the layout the sink writes): its
    // LIST answers 404, so it is read as one secret.
    let single = builder(server).path("app/db").build().unwrap();
    assert_eq!(
        single.list().await.unwrap(),
        [ListedSecret::named("app/db")]
    );
    assert_eq!(read_all(&single).await, expected);

    // Through the engine: one key per field; a field name two secrets
    // share is refused before anything is written.
    let mut vault_keys = suite::Vault::new();
    let plan = vault_keys.import(&folder).await;
    assert_eq!(plan.count(ImportAction::Add), 4, "{:?}", plan.lines);
    server.edit_outside("secret", "app/cache", "DB_USER", json!("cache"));
    match suite::Vault::new().plan(&folder).await {
        Err(ImportError::Names(problems)) => {
            assert!(
                problems[0].contains("app/cache") && problems[0].contains("app/db"),
                "{problems:?}"
            );
        }
        other => panic!("expected a collision, got {other:?}"),
    }

    // A path that is neither a folder nor a secret is not found, not an
    // empty import.
    let typo = builder(server).path("app/dbb").build().unwrap();
    match suite::Vault::new().plan(&typo).await {
        Err(ImportError::Source(SinkError::NotFound(message))) => {
            assert!(message.contains("secret/app/dbb"), "{message}");
        }
        other => panic!("expected not found, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_folders_are_walked_one_list_each_unless_not_recursive() {
    let vault = VaultKv::start().await;
    let server = &vault.server;
    for (path, field) in [
        ("app/TOP", "TOP"),
        ("app/svc/MID", "MID"),
        ("app/svc/deep/er/LOW", "LOW"),
        ("app/svc/deep/er/LOWER", "LOWER"),
        ("apps/NEIGHBOUR", "NEIGHBOUR"),
        ("other/ELSEWHERE", "ELSEWHERE"),
    ] {
        server.edit_outside("secret", path, field, json!(format!("{field}-value")));
    }
    let lists = server.faults().calls(Call::List);
    let source = builder(server).path("/app/").build().unwrap();
    let names: Vec<String> = source
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|secret| secret.name)
        .collect();
    assert_eq!(
        names,
        [
            "app/TOP",
            "app/svc/MID",
            "app/svc/deep/er/LOW",
            "app/svc/deep/er/LOWER"
        ]
    );
    // app, app/svc, app/svc/deep, app/svc/deep/er.
    assert_eq!(server.faults().calls(Call::List) - lists, 4);

    let flat = builder(server)
        .path("app")
        .recursive(false)
        .build()
        .unwrap();
    assert_eq!(flat.list().await.unwrap(), [ListedSecret::named("app/TOP")]);
    assert!(
        flat.origin().ends_with(",recursive=false"),
        "{}",
        flat.origin()
    );

    // The whole mount.
    let everything = builder(server).build().unwrap();
    assert_eq!(everything.list().await.unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kv1_mount_is_detected_listed_and_read_at_its_own_paths() {
    let vault = VaultKv::start().await;
    let server = &vault.server;
    server.mount_kv1("kv");
    server.edit_outside("kv", "team/api", "API_TOKEN", json!("tok=en#1"));
    server.edit_outside("kv", "team/api", "RETRIES", json!(3));
    server.edit_outside(
        "kv",
        "team/web/tls",
        "TLS_KEY",
        json!("-----BEGIN\nabc\n-----END\n"),
    );
    let source = builder(server).mount("kv").path("team").build().unwrap();
    assert_eq!(
        read_all(&source).await,
        triples(&[
            ("team/api", "API_TOKEN", "tok=en#1"),
            ("team/api", "RETRIES", "3"),
            ("team/web/tls", "TLS_KEY", "-----BEGIN\nabc\n-----END\n"),
        ])
    );
    let mut vault_keys = suite::Vault::new();
    let plan = vault_keys.import(&source).await;
    assert_eq!(plan.count(ImportAction::Add), 3, "{:?}", plan.lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_or_destroyed_current_version_is_left_out_not_an_error() {
    let vault = VaultKv::start().await;
    let server = &vault.server;
    for key in ["KEPT", "SOFT_DELETED", "DESTROYED"] {
        server.edit_outside("secret", &format!("app/{key}"), key, json!("v"));
    }
    server.delete_current_outside("secret", "app/SOFT_DELETED", false);
    server.delete_current_outside("secret", "app/DESTROYED", true);
    let source = builder(server).path("app").build().unwrap();
    // KV v2 still lists them (their metadata stays)…
    assert_eq!(source.list().await.unwrap().len(), 3);
    // …and their reads (404 with the version's metadata) give nothing.
    assert_eq!(
        read_all(&source).await,
        triples(&[("app/KEPT", "KEPT", "v")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logs_in_once_per_run_at_its_mount_and_a_refusal_names_the_variables() {
    let vault = VaultKv::start().await;
    let server = &vault.server;
    server.edit_outside("secret", "app/KEY", "KEY", json!("approle-read"));
    server.enable_approle("ci/approle");
    let approle = |mount: &str, secret_id: &str| {
        builder(server)
            .path("app")
            .auth(Auth::AppRole {
                mount: mount.into(),
                role_id: VaultServer::ROLE_ID.into(),
                secret_id: secret_id.to_owned().into(),
            })
            .build()
            .unwrap()
    };
    for mount in ["approle", "ci/approle"] {
        let before = server.logins();
        let source = approle(mount, VaultServer::SECRET_ID);
        let mut vault_keys = suite::Vault::new();
        let plan = vault_keys.import(&source).await;
        assert_eq!(plan.count(ImportAction::Add), 1, "{:?}", plan.lines);
        assert_eq!(vault_keys.entries["KEY"].as_text(), Some("approle-read"));
        assert_eq!(server.logins() - before, 1, "one login per run");
    }

    let error = approle("approle", "stolen-secret-id-xyzzy")
        .list()
        .await
        .unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(matches!(error, SinkError::Denied(_)), "{text}");
    assert!(
        text.contains("VAULT_SECRET_ID") && text.contains("invalid role or secret ID"),
        "{text}"
    );
    assert!(!text.contains("xyzzy"), "{text}");
    // No auth method there.
    let error = approle("nowhere", VaultServer::SECRET_ID)
        .list()
        .await
        .unwrap_err();
    assert!(matches!(error, SinkError::NotFound(_)), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_logs_in_with_the_service_account_token_file() {
    let vault = VaultKv::start().await;
    let server = &vault.server;
    server.edit_outside("secret", "app/KEY", "KEY", json!("k8s-read"));
    let dir = tempfile::tempdir().unwrap();
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, format!("{}\n", VaultServer::K8S_JWT)).unwrap();
    let at = |mount: &str, role: &str, jwt_file: &std::path::Path| {
        builder(server)
            .path("app")
            .auth(Auth::Kubernetes {
                mount: mount.into(),
                role: role.into(),
                jwt_file: jwt_file.to_owned(),
            })
            .build()
            .unwrap()
    };
    let k8s = |role: &str, jwt_file: &std::path::Path| at("kubernetes", role, jwt_file);
    let source = k8s(VaultServer::K8S_ROLE, &jwt_file);
    assert_eq!(
        read_all(&source).await,
        triples(&[("app/KEY", "KEY", "k8s-read")])
    );
    assert_eq!(server.logins(), 1);
    server.enable_kubernetes("k8s/prod");
    let moved = at("k8s/prod", VaultServer::K8S_ROLE, &jwt_file);
    assert_eq!(moved.list().await.unwrap().len(), 1);
    assert_eq!(server.logins(), 2);

    std::fs::write(&jwt_file, "eyJ.another-clusters-token.sig").unwrap();
    let error = k8s(VaultServer::K8S_ROLE, &jwt_file)
        .list()
        .await
        .unwrap_err();
    assert!(
        matches!(error, SinkError::Denied(ref m) if m.contains("VAULT_K8S_ROLE")),
        "{error}"
    );
    assert!(
        !error.to_string().contains("another-clusters-token"),
        "{error}"
    );
    let error = k8s("intruder", &jwt_file).list().await.unwrap_err();
    assert!(
        matches!(error, SinkError::Denied(ref m) if m.contains("invalid role name")),
        "{error}"
    );
    let error = k8s(VaultServer::K8S_ROLE, &dir.path().join("absent"))
        .list()
        .await
        .unwrap_err();
    assert!(
        matches!(error, SinkError::Misconfigured(ref m) if m.contains("VAULT_K8S_TOKEN_PATH")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_is_sent_with_every_request_logins_included() {
    let server = VaultServer::start_in_namespace("team-a").await.unwrap();
    server.edit_outside("secret", "app/KEY", "KEY", json!("in-namespace"));
    let source = |namespace: Option<&str>, auth: Auth| {
        let builder = VaultSource::builder()
            .address(server.address())
            .path("app")
            .auth(auth);
        match namespace {
            Some(namespace) => builder.namespace(namespace),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let outside = source(None, token()).list().await.unwrap_err();
    assert!(
        matches!(outside, SinkError::NotFound(ref m) if m.contains("no handler")),
        "{outside}"
    );
    let inside = source(Some("/team-a/"), token());
    assert!(inside.origin().ends_with(",namespace=team-a"));
    assert_eq!(
        read_all(&inside).await,
        triples(&[("app/KEY", "KEY", "in-namespace")])
    );
    let approle = Auth::AppRole {
        mount: "approle".into(),
        role_id: VaultServer::ROLE_ID.into(),
        secret_id: VaultServer::SECRET_ID.to_owned().into(),
    };
    assert_eq!(
        source(Some("team-a"), approle).list().await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mount_lookup_refuses_a_path_as_mount_and_a_missing_mount_is_not_found() {
    let vault = VaultKv::start().await;
    let server = &vault.server;
    server.edit_outside("secret", "app/KEY", "KEY", json!("v"));
    let inside = builder(server).mount("secret/app").build().unwrap();
    let error = inside.list().await.unwrap_err();
    assert!(
        matches!(error, SinkError::Misconfigured(ref m) if m.contains("mount=\"secret\"")),
        "{error}"
    );
    // The lookup answers 403 for a mount that does not exist; KV v2 is
    // assumed, and the listing tells the truth.
    let missing = builder(server).mount("secrett").build().unwrap();
    let error = missing.list().await.unwrap_err();
    assert!(
        matches!(error, SinkError::NotFound(ref m) if m.contains("no handler")),
        "{error}"
    );
}

/// A server that answers every request with `answer(path)`: status, extra
/// headers and body, then closes the connection. For answers the fake
/// (like Vault) never gives.
fn canned(answer: fn(&str) -> (u16, &'static str, Vec<u8>)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let (status, headers, body) = answer(&path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-type: application/json\r\n{headers}\r\n"
            );
            let _ = stream.write_all(&body);
        }
    });
    address
}

fn listing(keys: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "data": { "keys": keys } })).unwrap()
}

async fn list_error(answer: fn(&str) -> (u16, &'static str, Vec<u8>)) -> SinkError {
    VaultSource::builder()
        .address(canned(answer))
        .auth(token())
        .build()
        .unwrap()
        .list()
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_no_vault_gives_are_refused_before_they_cost_memory_or_time() {
    let error = list_error(|path| match path {
        p if p.contains("/sys/internal/") => (403, "", b"{\"errors\":[]}".to_vec()),
        _ => (200, "", listing(&["fine", "../../sys/"])),
    })
    .await;
    assert!(
        matches!(error, SinkError::Rejected(ref m) if m.contains("one path segment")),
        "{error}"
    );

    let error = list_error(|path| match path {
        p if p.contains("/sys/internal/") => (403, "", b"{\"errors\":[]}".to_vec()),
        _ => (200, "", listing(&["twice", "twice"])),
    })
    .await;
    assert!(
        matches!(error, SinkError::Rejected(ref m) if m.contains("twice")),
        "{error}"
    );

    // A folder holding itself, forever.
    let error = list_error(|path| match path {
        p if p.contains("/sys/internal/") => (403, "", b"{\"errors\":[]}".to_vec()),
        _ => (200, "", listing(&["again/"])),
    })
    .await;
    assert!(
        matches!(error, SinkError::Rejected(ref m) if m.contains("deeper than 32")),
        "{error}"
    );

    // A body announced past the cap is not received; one that grows past
    // it without announcing its length is cut off.
    let error = list_error(|path| match path {
        p if p.contains("/sys/internal/") => (403, "", b"{\"errors\":[]}".to_vec()),
        _ => (200, "content-length: 999999999\r\n", Vec::new()),
    })
    .await;
    assert!(
        matches!(error, SinkError::Rejected(ref m) if m.contains("larger than")),
        "{error}"
    );
    let error = list_error(|path| match path {
        p if p.contains("/sys/internal/") => (403, "", b"{\"errors\":[]}".to_vec()),
        _ => (200, "", vec![b' '; 17 * 1024 * 1024]),
    })
    .await;
    assert!(
        matches!(error, SinkError::Rejected(ref m) if m.contains("larger than")),
        "{error}"
    );

    // A rate-limit quota's Retry-After reaches the engine; a body that is
    // not Vault's error shape is never copied into the error.
    let error = list_error(|path| match path {
        p if p.contains("/sys/internal/") => (403, "", b"{\"errors\":[]}".to_vec()),
        _ => (
            429,
            "retry-after: 7\r\n",
            b"{\"data\":\"hunter2\"}".to_vec(),
        ),
    })
    .await;
    assert!(
        matches!(error, SinkError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)),
        "{error:?}"
    );
    let error = list_error(|path| match path {
        p if p.contains("/sys/internal/") => (403, "", b"{\"errors\":[]}".to_vec()),
        _ => (503, "", b"{\"data\":\"hunter2\"}".to_vec()),
    })
    .await;
    assert!(
        error.is_retryable() && !format!("{error:?}").contains("hunter2"),
        "{error:?}"
    );
}
