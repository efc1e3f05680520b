//! The one conformance suite every `Store` implementation must pass: get,
//! put, update, delete, conditional writes, not-found vs empty, listing over
//! many keys, and races where exactly one writer wins.

use std::sync::Arc;

use vsync_backends::fs::FsStore;
use vsync_backends::s3::{Provider, Proxy, S3Store, S3StoreBuilder};
use vsync_engine::store::{ETag, PutCondition, Store, StoreError};
use vsync_testcontainers::{ClockSkewProxy, EtagUnquotingProxy, ForwardProxy, S3Server};

/// Runs the whole suite under `prefix` (which it assumes is empty).
async fn store_conformance(store: Arc<dyn Store>, prefix: &str) {
    let key = format!("{prefix}dir/object");

    // Not found is `None`, not an error, for get and head.
    assert!(store.get(&key).await.unwrap().is_none());
    assert!(store.head(&key).await.unwrap().is_none());

    // Create, then read back the same bytes and tag.
    let etag = store
        .put(&key, b"first", PutCondition::IfAbsent)
        .await
        .unwrap();
    let object = store.get(&key).await.unwrap().expect("written object");
    assert_eq!(object.body, b"first");
    assert_eq!(object.etag, etag);
    let info = store.head(&key).await.unwrap().expect("written object");
    assert_eq!(
        (info.key.as_str(), info.size, &info.etag),
        (key.as_str(), 5, &etag)
    );

    // A reader's limit: exactly the size passes, one byte less is refused
    // (an object the bucket serves may be hostile and huge).
    let object = store.get_limited(&key, 5).await.unwrap().unwrap();
    assert_eq!(object.body, b"first");
    assert!(matches!(
        store.get_limited(&key, 4).await,
        Err(StoreError::TooLarge { limit: 4, .. })
    ));
    assert!(
        store
            .get_limited(&format!("{key}-absent"), 0)
            .await
            .unwrap()
            .is_none()
    );

    // IfAbsent never overwrites.
    let err = store
        .put(&key, b"clobber", PutCondition::IfAbsent)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    // IfMatch with a stale or invented tag never overwrites.
    let err = store
        .put(
            &key,
            b"clobber",
            PutCondition::IfMatch(ETag::new("0123456789abcdef")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    assert_eq!(store.get(&key).await.unwrap().unwrap().body, b"first");
    // IfMatch on a missing key fails too.
    let err = store
        .put(
            &format!("{prefix}missing"),
            b"x",
            PutCondition::IfMatch(etag.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );

    // Update with the current tag; the tag changes with the content.
    let updated = store
        .put(&key, b"second", PutCondition::IfMatch(etag.clone()))
        .await
        .unwrap();
    assert_ne!(updated, etag);
    assert_eq!(store.get(&key).await.unwrap().unwrap().body, b"second");
    // The old tag is now stale.
    let err = store
        .put(&key, b"third", PutCondition::IfMatch(etag))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );

    // An empty object exists and is distinct from a missing one.
    let empty = format!("{prefix}empty");
    store
        .put(&empty, b"", PutCondition::IfAbsent)
        .await
        .unwrap();
    let object = store
        .get(&empty)
        .await
        .unwrap()
        .expect("empty object exists");
    assert!(object.body.is_empty());
    assert_eq!(store.head(&empty).await.unwrap().unwrap().size, 0);

    // Listing 120 keys (written in reverse) comes back complete and sorted,
    // filtered by prefix.
    let page_prefix = format!("{prefix}page/");
    for i in (0..120).rev() {
        store
            .put(
                &format!("{page_prefix}k{i:03}"),
                format!("v{i}").as_bytes(),
                PutCondition::IfAbsent,
            )
            .await
            .unwrap();
    }
    let listed = store.list(&page_prefix).await.unwrap();
    let expected_keys: Vec<String> = (0..120).map(|i| format!("{page_prefix}k{i:03}")).collect();
    assert_eq!(
        listed
            .iter()
            .map(|info| info.key.clone())
            .collect::<Vec<_>>(),
        expected_keys
    );
    assert_eq!(listed[7].size, 2);
    assert_eq!(
        store
            .list(&format!("{page_prefix}k05"))
            .await
            .unwrap()
            .len(),
        10
    );
    assert!(
        store
            .list(&format!("{prefix}nothing-here/"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list(prefix).await.unwrap().len(),
        122,
        "dir/object + empty + 120 page keys"
    );

    // Delete, and deleting again is fine.
    store.delete(&key).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    store.delete(&key).await.unwrap();
    // A deleted key can be created again with IfAbsent.
    store
        .put(&key, b"again", PutCondition::IfAbsent)
        .await
        .unwrap();

    // Races: of eight concurrent creates, exactly one wins…
    let race_key = format!("{prefix}race");
    let winners = race(&store, |store, i| {
        let key = race_key.clone();
        async move {
            store
                .put(
                    &key,
                    format!("writer {i}").as_bytes(),
                    PutCondition::IfAbsent,
                )
                .await
        }
    })
    .await;
    assert_eq!(winners, 1);
    // …and of eight concurrent swaps from the same tag, exactly one wins.
    let current = store.head(&race_key).await.unwrap().unwrap().etag;
    let winners = race(&store, |store, i| {
        let (key, current) = (race_key.clone(), current.clone());
        async move {
            store
                .put(
                    &key,
                    format!("swap {i}").as_bytes(),
                    PutCondition::IfMatch(current),
                )
                .await
        }
    })
    .await;
    assert_eq!(winners, 1);
}

/// Runs eight writers at once and counts the winners; every loser must fail
/// with `PreconditionFailed`, nothing else.
async fn race<F, Fut>(store: &Arc<dyn Store>, writer: F) -> usize
where
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: Future<Output = Result<ETag, StoreError>> + Send + 'static,
{
    let tasks: Vec<_> = (0..8)
        .map(|i| tokio::spawn(writer(store.clone(), i)))
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(StoreError::PreconditionFailed { .. }) => {}
            Err(other) => panic!("a losing writer must see PreconditionFailed, got {other}"),
        }
    }
    winners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs_store_passes_the_store_conformance_suite() {
    let root = tempfile::tempdir().unwrap();
    let store = FsStore::open(root.path().join("store")).unwrap();
    store_conformance(Arc::new(store), "acme/dev/").await;
}

/// How far `time` is from this machine's clock, in seconds (signed).
fn seconds_from_now(time: std::time::SystemTime) -> i64 {
    match time.duration_since(std::time::SystemTime::now()) {
        Ok(ahead) => ahead.as_secs() as i64,
        Err(behind) => -(behind.duration().as_secs() as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_time_is_the_buckets_clock() {
    let root = tempfile::tempdir().unwrap();
    let local = FsStore::open(root.path().join("store")).unwrap();
    assert_eq!(local.server_time().await.unwrap(), None);

    let (server, builder) = s3_server_with_bucket("clock").await;
    let direct = builder.build().unwrap().server_time().await.unwrap();
    assert!(seconds_from_now(direct.expect("S3 answers with a Date")).abs() <= 5);

    let store_at = |endpoint: String, bucket: &str| {
        S3Store::builder()
            .endpoint(endpoint)
            .region(server.region())
            .bucket(bucket)
            .credentials(server.access_key(), server.secret_key())
            .proxy(Proxy::Disabled)
            .build()
            .unwrap()
    };
    // A server whose clock runs an hour ahead, or a day behind, says so.
    for offset in [3600, -86_400] {
        let skewed = ClockSkewProxy::start(&server.endpoint(), offset)
            .await
            .unwrap();
        let time = store_at(skewed.endpoint(), "clock")
            .server_time()
            .await
            .unwrap()
            .unwrap();
        assert!((seconds_from_now(time) - offset).abs() <= 5, "{offset}");
    }
    // A refusal still shows the clock; no answer at all is an error.
    let unknown = store_at(server.endpoint(), "no-such-bucket");
    assert!(unknown.server_time().await.unwrap().is_some());
    let refusing = vsync_testcontainers::unreachable::RefusingAddr::bind().unwrap();
    let dead = store_at(refusing.http_url(), "clock").server_time().await;
    assert!(matches!(dead, Err(StoreError::Unreachable(_))), "{dead:?}");
}

#[tokio::test]
async fn fs_store_rejects_keys_that_escape_the_root() {
    let root = tempfile::tempdir().unwrap();
    let store = FsStore::open(root.path().join("store")).unwrap();
    for key in [
        "../outside",
        "a/../../b",
        "/etc/passwd",
        "a//b",
        ".vsync-store.lock",
        "a\\b",
        "",
    ] {
        let err = store
            .put(key, b"x", PutCondition::IfAbsent)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidKey { .. }), "{key}: {err}");
    }
    assert!(!root.path().join("outside").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn fs_store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let store = FsStore::open(root.path().join("store")).unwrap();
    store
        .put("acme/dev/latest", b"x", PutCondition::IfAbsent)
        .await
        .unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root.path().join("store/acme/dev/latest")), 0o600);
    assert_eq!(mode(&root.path().join("store/acme/dev")), 0o700);
    assert_eq!(mode(&root.path().join("store")), 0o700);
    // Nothing is left in the temp area after a write.
    assert_eq!(
        std::fs::read_dir(root.path().join("store/.vsync-tmp"))
            .unwrap()
            .count(),
        0
    );
}

/// A builder for the harness's S3 server with a fresh bucket. Listing pages
/// are 50 keys so the suite's 120 keys take three pages.
async fn s3_server_with_bucket(bucket: &str) -> (S3Server, S3StoreBuilder) {
    let server = S3Server::start().await.expect("start the S3 server");
    server.create_bucket(bucket).await.unwrap();
    let builder = S3Store::builder()
        .endpoint(server.endpoint())
        .region(server.region())
        .bucket(bucket)
        .credentials(server.access_key(), server.secret_key())
        .proxy(Proxy::Disabled)
        .list_page_size(50);
    (server, builder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_store_passes_the_store_conformance_suite() {
    let (_server, builder) = s3_server_with_bucket("conformance").await;
    store_conformance(Arc::new(builder.build().unwrap()), "acme/dev/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hetzner_preset_passes_the_suite_behind_unquoted_etags() {
    let (server, builder) = s3_server_with_bucket("hetzner").await;
    let rgw = EtagUnquotingProxy::start(&server.endpoint()).await.unwrap();
    let store = builder
        .endpoint(rgw.endpoint())
        .provider(Provider::Hetzner)
        .build()
        .unwrap();
    store_conformance(Arc::new(store), "acme/dev/").await;
    assert!(rgw.request_count() > 0, "the suite went through the proxy");
}

#[tokio::test]
async fn without_the_hetzner_preset_a_quoted_if_match_is_refused_by_rgw() {
    // Why the preset exists: RGW answers 412 to a quoted If-Match, so a
    // generic client could never move a pointer on Hetzner. The store
    // recognises the signature (the tag still matches, the server spells it
    // bare) and says which preset to force instead of reporting a race.
    let (server, builder) = s3_server_with_bucket("generic").await;
    let rgw = EtagUnquotingProxy::start(&server.endpoint()).await.unwrap();
    let store = builder.endpoint(rgw.endpoint()).build().unwrap();
    let etag = store
        .put("k", b"one", PutCondition::IfAbsent)
        .await
        .unwrap();
    let err = store
        .put("k", b"two", PutCondition::IfMatch(etag.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Misconfigured(_)), "{err}");
    assert!(err.to_string().contains("hetzner"), "{err}");
    assert_eq!(store.get("k").await.unwrap().unwrap().body, b"one");
    // A genuinely stale tag is still a lost race.
    let hetzner = S3Store::builder()
        .endpoint(rgw.endpoint())
        .region(server.region())
        .bucket("generic")
        .credentials(server.access_key(), server.secret_key())
        .proxy(Proxy::Disabled)
        .provider(Provider::Hetzner)
        .build()
        .unwrap();
    hetzner
        .put("k", b"moved on", PutCondition::IfMatch(etag.clone()))
        .await
        .unwrap();
    let err = store
        .put("k", b"three", PutCondition::IfMatch(etag))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err}"
    );
    assert_eq!(store.get("k").await.unwrap().unwrap().body, b"moved on");
}

#[tokio::test]
async fn requests_go_through_an_explicit_http_proxy() {
    let (_server, builder) = s3_server_with_bucket("proxied").await;
    let proxy = ForwardProxy::start().await.unwrap();
    let store = builder.proxy(Proxy::Url(proxy.url())).build().unwrap();
    store
        .put("k", b"via proxy", PutCondition::IfAbsent)
        .await
        .unwrap();
    assert_eq!(store.get("k").await.unwrap().unwrap().body, b"via proxy");
    assert!(
        proxy.request_count() >= 2,
        "both requests went through the proxy, saw {}",
        proxy.request_count()
    );
}

#[tokio::test]
async fn s3_failures_are_classified_with_the_fix() {
    let (server, builder) = s3_server_with_bucket("errors").await;

    let wrong_secret = builder
        .credentials(server.access_key(), "not-the-secret")
        .build()
        .unwrap();
    let err = wrong_secret.get("k").await.unwrap_err();
    assert!(matches!(err, StoreError::AccessDenied { .. }), "{err}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");

    let missing_bucket = S3Store::builder()
        .endpoint(server.endpoint())
        .region(server.region())
        .bucket("no-such-bucket")
        .credentials(server.access_key(), server.secret_key())
        .proxy(Proxy::Disabled)
        .build()
        .unwrap();
    // s3s-fs is lax where S3 is not (a GET in a missing bucket says
    // NoSuchKey, a PUT creates it); its listing says NoSuchBucket as S3 does.
    let err = missing_bucket.list("").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Misconfigured(m) if m.contains("no-such-bucket")),
        "{err}"
    );

    // Nothing listens on a port held (never listening) for the rest of the
    // test, so no other process can start answering on it.
    let refusing = vsync_testcontainers::unreachable::RefusingAddr::bind().unwrap();
    let store = S3Store::builder()
        .endpoint(refusing.http_url())
        .region("us-east-1")
        .bucket("errors")
        .credentials("a", "b")
        .proxy(Proxy::Disabled)
        .build()
        .unwrap();
    let err = store.get("k").await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable(_)), "{err}");
}
