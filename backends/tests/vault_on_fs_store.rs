//! The vault engine (publish, fetch, versions, anti-rollback) over the local
//! directory store.

use std::num::NonZeroU32;
use std::sync::Arc;

use vsync_backends::fs::FsStore;
use vsync_crypto::{ErrorClass, Key, rqem};
use vsync_engine::store::{PutCondition, Store};
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::{self, Layout, PointerKind, VaultError};

/// The iteration count does not change the envelope, so tests use a cheap one.
fn key(password: &str) -> Key {
    Key::derive(
        password.as_bytes(),
        b"0123456789abcdefghijklmn",
        NonZeroU32::new(1_000).unwrap(),
    )
}

fn ts(secs: u64) -> Timestamp {
    Timestamp::from_unix(1_777_458_645 + secs)
}

fn fixture() -> (tempfile::TempDir, Arc<FsStore>, Layout) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsStore::open(dir.path().join("bucket")).unwrap());
    (dir, store, Layout::for_repo_env("acme", "Dev"))
}

#[tokio::test]
async fn publish_then_fetch_round_trips_and_counts_generations() {
    let (_dir, store, layout) = fixture();
    let key = key("keychain value");
    assert!(
        vault::remote_head(&*store, &layout)
            .await
            .unwrap()
            .is_none()
    );

    let first = vault::publish(&*store, &layout, &key, b"zip one", None, ts(0))
        .await
        .unwrap();
    assert_eq!(first.generation, 1);
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    assert_eq!((head.ts.clone(), head.generation), (ts(0), 1));
    let second = vault::publish(&*store, &layout, &key, b"zip two", Some(&head), ts(5))
        .await
        .unwrap();
    assert_eq!(second.generation, 2);

    // The upstream CLI layout, env lowercased in the prefix.
    for object in [
        "acme/dev/latest",
        "acme/dev/latest.meta",
        "acme/dev/versions/20260429-103045.enc",
    ] {
        assert!(store.get(object).await.unwrap().is_some(), "{object}");
    }
    let latest = store.get("acme/dev/latest").await.unwrap().unwrap();
    assert_eq!(latest.body, ts(5).as_str().as_bytes());
    assert_eq!(
        store
            .get("acme/dev/latest.meta")
            .await
            .unwrap()
            .unwrap()
            .body,
        br#"{"gen":2}"#
    );

    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    let bundle = vault::fetch(&*store, &layout, &key, &head, None)
        .await
        .unwrap();
    assert_eq!(
        (bundle.ts.clone(), bundle.payload()),
        (ts(5), &b"zip two"[..])
    );
    // `pull --at` an older version.
    let old = vault::fetch(&*store, &layout, &key, &head, Some(&ts(0)))
        .await
        .unwrap();
    assert_eq!(old.payload(), b"zip one");
    assert_eq!(
        vault::versions(&*store, &layout).await.unwrap(),
        vec![ts(0), ts(5)]
    );
    assert!(!format!("{bundle:?}").contains("zip two"));
}

#[tokio::test]
async fn concurrent_pushes_from_the_same_head_exactly_one_wins() {
    let (_dir, store, layout) = fixture();
    let key = key("k");
    vault::publish(&*store, &layout, &key, b"base", None, ts(0))
        .await
        .unwrap();
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();

    let pushes: Vec<_> = (1..=6)
        .map(|i| {
            let (store, layout, key, head) =
                (store.clone(), layout.clone(), key.clone(), head.clone());
            tokio::spawn(async move {
                vault::publish(
                    &*store,
                    &layout,
                    &key,
                    format!("push {i}").as_bytes(),
                    Some(&head),
                    ts(i),
                )
                .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for push in pushes {
        match push.await.unwrap() {
            Ok(published) => winners.push(published.ts),
            Err(VaultError::ConcurrentPush { .. }) => {}
            Err(other) => panic!("a losing push must be ConcurrentPush, got {other}"),
        }
    }
    assert_eq!(winners.len(), 1);
    // The bucket points at the winner, whose bundle is intact, and holds no
    // orphaned bundle of the losers.
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    assert_eq!(head.ts, winners[0]);
    assert_eq!(head.generation, 2);
    vault::fetch(&*store, &layout, &key, &head, None)
        .await
        .unwrap();
    assert_eq!(
        vault::versions(&*store, &layout).await.unwrap(),
        vec![ts(0), winners[0].clone()]
    );
}

#[tokio::test]
async fn two_pushes_in_the_same_second_never_overwrite() {
    let (_dir, store, layout) = fixture();
    let key = key("k");
    vault::publish(&*store, &layout, &key, b"first", None, ts(0))
        .await
        .unwrap();
    // A second writer that had not seen the first, in the same second.
    let err = vault::publish(&*store, &layout, &key, b"second", None, ts(0))
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::ConcurrentPush { .. }), "{err}");
    // One that had seen it but whose clock has not moved on.
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    let err = vault::publish(&*store, &layout, &key, b"second", Some(&head), ts(0))
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::ClockBehind { .. }), "{err}");
    let bundle = vault::fetch(&*store, &layout, &key, &head, None)
        .await
        .unwrap();
    assert_eq!(bundle.payload(), b"first");
}

#[tokio::test]
async fn a_pointer_moved_back_is_refused_by_the_high_water_mark() {
    let (_dir, store, layout) = fixture();
    let key = key("k");
    vault::publish(&*store, &layout, &key, b"old", None, ts(0))
        .await
        .unwrap();
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    vault::publish(&*store, &layout, &key, b"new", Some(&head), ts(10))
        .await
        .unwrap();
    let seen = ts(10);

    // Someone with bucket access (but not the key) points `latest` back.
    let latest = store.head("acme/dev/latest").await.unwrap().unwrap();
    store
        .put(
            "acme/dev/latest",
            ts(0).as_str().as_bytes(),
            PutCondition::IfMatch(latest.etag),
        )
        .await
        .unwrap();
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    let err = vault::check_not_backwards(&head.ts, Some(&seen)).unwrap_err();
    assert!(matches!(err, VaultError::RemoteWentBackwards { .. }));
    assert!(err.to_string().contains("--at="), "{err}");
    assert_eq!(err.class(), Some(ErrorClass::BundleCorrupt));
    // Deliberately accepting an older version is still possible.
    assert!(vault::check_not_backwards(&head.ts, None).is_ok());
}

#[tokio::test]
async fn an_old_bundle_renamed_to_a_new_timestamp_is_refused() {
    let (_dir, store, layout) = fixture();
    let key = key("k");
    vault::publish(&*store, &layout, &key, b"old", None, ts(0))
        .await
        .unwrap();
    // Replay the old (validly encrypted) bundle under a newer name.
    let old = store
        .get(&layout.bundle_key(&ts(0)))
        .await
        .unwrap()
        .unwrap();
    store
        .put(
            &layout.bundle_key(&ts(20)),
            &old.body,
            PutCondition::IfAbsent,
        )
        .await
        .unwrap();
    let latest = store.head("acme/dev/latest").await.unwrap().unwrap();
    store
        .put(
            "acme/dev/latest",
            ts(20).as_str().as_bytes(),
            PutCondition::IfMatch(latest.etag),
        )
        .await
        .unwrap();
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    let err = vault::fetch(&*store, &layout, &key, &head, None)
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::BundleCorrupt));
    assert!(
        err.to_string().contains("sealed as 20260429-103045"),
        "{err}"
    );
}

#[tokio::test]
async fn a_tampered_byte_or_a_wrong_key_is_refused() {
    let (_dir, store, layout) = fixture();
    vault::publish(&*store, &layout, &key("right"), b"payload", None, ts(0))
        .await
        .unwrap();
    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();

    let err = vault::fetch(&*store, &layout, &key("wrong"), &head, None)
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::WrongPassphrase));
    assert!(err.to_string().contains("re-import"), "{err}");

    let bundle_key = layout.bundle_key(&ts(0));
    let mut body = store.get(&bundle_key).await.unwrap().unwrap().body;
    body[40] ^= 0x01;
    store.delete(&bundle_key).await.unwrap();
    store
        .put(&bundle_key, &body, PutCondition::IfAbsent)
        .await
        .unwrap();
    let err = vault::fetch(&*store, &layout, &key("right"), &head, None)
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::WrongPassphrase));

    store.delete(&bundle_key).await.unwrap();
    let err = vault::fetch(&*store, &layout, &key("right"), &head, None)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::BundleMissing { .. }), "{err}");
}

#[tokio::test]
async fn the_library_layout_is_read_too() {
    let (_dir, store, layout) = fixture();
    let key = key("k");
    // What the upstream runtime libraries' documentation describes:
    // `manifest` = plaintext RQEM0001 naming the ts, bundle at `v=<ts>`.
    let sealed = rqem::wrap(ts(0).as_str(), br#"{"kv":{"A":"1"}}"#).unwrap();
    let bundle = vsync_crypto::rqe1::seal(&key, &sealed);
    store
        .put(
            &layout.library_bundle_key(&ts(0)),
            &bundle,
            PutCondition::IfAbsent,
        )
        .await
        .unwrap();
    let manifest = rqem::wrap(ts(0).as_str(), b"").unwrap();
    store
        .put(&layout.manifest_key(), &manifest, PutCondition::IfAbsent)
        .await
        .unwrap();

    let head = vault::remote_head(&*store, &layout).await.unwrap().unwrap();
    assert_eq!(
        (head.ts.clone(), &head.pointer),
        (ts(0), &PointerKind::Library)
    );
    let fetched = vault::fetch(&*store, &layout, &key, &head, None)
        .await
        .unwrap();
    assert_eq!(fetched.payload(), br#"{"kv":{"A":"1"}}"#);
    assert_eq!(
        vault::versions(&*store, &layout).await.unwrap(),
        vec![ts(0)]
    );
}

#[tokio::test]
async fn push_refuses_when_the_remote_moved_on() {
    let remote = ts(10);
    assert!(matches!(
        vault::check_not_behind(&remote, Some(&ts(5))),
        Err(VaultError::RemoteMovedOn { .. })
    ));
    assert!(matches!(
        vault::check_not_behind(&remote, None),
        Err(VaultError::RemoteNeverSynced { .. })
    ));
    assert!(vault::check_not_behind(&remote, Some(&ts(10))).is_ok());
}

#[test]
fn prefixes_that_break_keys_are_refused_with_the_fix() {
    let err = Layout::new("myapp").unwrap_err();
    assert!(err.to_string().contains("must end with `/`"));
    assert!(Layout::new("/myapp/").is_err());
    assert_eq!(Layout::new("").unwrap().latest_key(), "latest");
    assert_eq!(
        Layout::new("web/").unwrap().bundle_key(&ts(0)),
        "web/versions/20260429-103045.enc"
    );
}

/// The local store with one publish step made to fail.
struct FailingStep {
    inner: Arc<FsStore>,
    /// Writes of keys ending with this fail.
    suffix: &'static str,
    /// Apply the write before reporting the failure (an answer lost on the way).
    applied: bool,
    /// Reads fail too, once a write failed.
    blind_after: bool,
    blind: std::sync::atomic::AtomicBool,
}

impl FailingStep {
    fn new(inner: &Arc<FsStore>, suffix: &'static str) -> Self {
        Self {
            inner: Arc::clone(inner),
            suffix,
            applied: false,
            blind_after: false,
            blind: false.into(),
        }
    }
}

fn connection_reset() -> vsync_engine::store::StoreError {
    vsync_engine::store::StoreError::Unreachable("connection reset by peer".into())
}

#[async_trait::async_trait]
impl Store for FailingStep {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get_limited(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<vsync_engine::store::Object>, vsync_engine::store::StoreError> {
        if self.blind.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(connection_reset());
        }
        self.inner.get_limited(key, max_bytes).await
    }
    async fn head(
        &self,
        key: &str,
    ) -> Result<Option<vsync_engine::store::ObjectInfo>, vsync_engine::store::StoreError> {
        self.inner.head(key).await
    }
    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: PutCondition,
    ) -> Result<vsync_engine::store::ETag, vsync_engine::store::StoreError> {
        if !key.ends_with(self.suffix) {
            return self.inner.put(key, body, condition).await;
        }
        if self.applied {
            self.inner.put(key, body, condition).await?;
        }
        if self.blind_after {
            self.blind.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Err(connection_reset())
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<vsync_engine::store::ListedObject>, vsync_engine::store::StoreError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), vsync_engine::store::StoreError> {
        self.inner.delete(key).await
    }
}

/// Publishes version 0, then version 5 through `store`; returns the second
/// publish's outcome.
async fn second_publish_through(
    inner: &Arc<FsStore>,
    layout: &Layout,
    store: &FailingStep,
) -> Result<vault::Published, VaultError> {
    let key = key("k");
    vault::publish(&**inner, layout, &key, b"one", None, ts(0))
        .await
        .unwrap();
    let head = vault::remote_head(&**inner, layout).await.unwrap().unwrap();
    vault::publish(store, layout, &key, b"two", Some(&head), ts(5)).await
}

#[tokio::test]
async fn each_publish_step_failing_in_turn_reports_exactly_what_happened() {
    // The bundle or the pointer refused: nothing is published and no orphan
    // bundle is left behind.
    for suffix in [".enc", "/latest"] {
        let (_dir, inner, layout) = fixture();
        let failing = FailingStep::new(&inner, suffix);
        let err = second_publish_through(&inner, &layout, &failing)
            .await
            .unwrap_err();
        assert!(matches!(err, VaultError::Store { .. }), "{suffix}: {err}");
        let head = vault::remote_head(&*inner, &layout).await.unwrap().unwrap();
        assert_eq!((head.ts, head.generation), (ts(0), 1), "{suffix}");
        assert_eq!(vault::versions(&*inner, &layout).await.unwrap(), [ts(0)]);
    }

    // The pointer written but the answer lost: published.
    let (_dir, inner, layout) = fixture();
    let failing = FailingStep {
        applied: true,
        ..FailingStep::new(&inner, "/latest")
    };
    let published = second_publish_through(&inner, &layout, &failing)
        .await
        .unwrap();
    assert_eq!((published.ts.clone(), published.generation), (ts(5), 2));
    let head = vault::remote_head(&*inner, &layout).await.unwrap().unwrap();
    assert_eq!((head.ts, head.generation), (ts(5), 2));

    // The pointer's fate unknown (the read-back fails too): said so, and the
    // bundle is kept since the pointer may name it.
    let (_dir, inner, layout) = fixture();
    let failing = FailingStep {
        blind_after: true,
        ..FailingStep::new(&inner, "/latest")
    };
    let err = second_publish_through(&inner, &layout, &failing)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VaultError::PublishUncertain { ts: t, .. } if *t == ts(5)),
        "{err}"
    );
    assert_eq!(
        vault::versions(&*inner, &layout).await.unwrap(),
        [ts(0), ts(5)]
    );

    // The meta refused after the pointer moved: published, with a warning.
    let (_dir, inner, layout) = fixture();
    let failing = FailingStep::new(&inner, "/latest.meta");
    let published = second_publish_through(&inner, &layout, &failing)
        .await
        .unwrap();
    assert_eq!(published.ts, ts(5));
    assert!(
        published
            .meta_not_written
            .as_deref()
            .is_some_and(|why| why.contains("connection reset")),
        "{published:?}"
    );
    let head = vault::remote_head(&*inner, &layout).await.unwrap().unwrap();
    assert_eq!(head.ts, ts(5));
    let fetched = vault::fetch(&*inner, &layout, &key("k"), &head, None)
        .await
        .unwrap();
    assert_eq!(fetched.payload(), b"two");
}
