//! `rotate-passphrase`: re-key an env's current bundle (§5.13), with
//! DESIGN decision 7's fix of upstream's bug.
//!
//! Upstream re-encrypts the old sealed plaintext under a new pointer, so
//! its own `pull` then rejects the bundle ("pointer claims X but bundle was
//! sealed as Y"), and it never stores the new passphrase where `pull` looks.
//! Here the current bundle is fetched and verified, its content re-sealed
//! with a **new** timestamp under the new key and published with the
//! normal compare-and-swap (so `latest.meta`'s generation grows), and only
//! then is the new key stored in the keystore. A rotation that loses a
//! race to a concurrent push or rotation publishes nothing and leaves the
//! old key in place.

use std::fmt;
use std::time::SystemTime;

use serde_json::Value;
use vsync_engine::store::{Store, StoreError};
use vsync_engine::sync::{SyncError, records_key};
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::{self, VaultError};
use vsync_local::keystore::generate_key;
use vsync_local::ledger::Ledger;
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditOptions};
use crate::error::UnsavedPassphrase;
use crate::lifecycle::{Env, check_new_env_name, next_timestamp};
use crate::{Context, OpsError, Progress, layout, open_store};

/// Upstream's floor for a new passphrase.
pub const MIN_NEW_PASSPHRASE_LEN: usize = 12;

/// Where the new passphrase comes from.
pub enum NewPassphrase {
    /// The operator chose it (at least 12 characters).
    Given(Zeroizing<String>),
    /// Mint a fresh key the way `init` does (44 characters of base64).
    Generate,
}

/// What `rotate-passphrase` should do.
pub struct RotateOptions {
    /// The new passphrase.
    pub new_passphrase: NewPassphrase,
    /// The current passphrase, when it is not the one in the keystore.
    pub old_passphrase: Option<Zeroizing<String>>,
    /// The audit flags.
    pub audit: AuditOptions,
}

/// What `rotate-passphrase` did.
pub struct RotateReport {
    /// `<repo>/<env>`.
    pub target: String,
    /// The version that was re-keyed.
    pub previous_ts: Timestamp,
    /// The new version, same content under the new key.
    pub ts: Timestamp,
    /// The new generation (`latest.meta`).
    pub generation: u64,
    /// The new passphrase when it was generated (shown once, never stored
    /// anywhere but the keystore), or when storing it failed.
    pub passphrase: Option<Zeroizing<String>>,
    /// The keystore now holding the new key.
    pub keystore: String,
    /// Set when the rotation is published but the keystore refused the new
    /// key: the user must keep the passphrase and store it (re-import).
    pub key_not_stored: Option<String>,
}

// Hand-written so a passphrase never reaches a `{:?}`.
impl fmt::Debug for NewPassphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewPassphrase::Given(_) => f.write_str("Given(<redacted>)"),
            NewPassphrase::Generate => f.write_str("Generate"),
        }
    }
}

impl fmt::Debug for RotateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotateOptions")
            .field("new_passphrase", &self.new_passphrase)
            .field(
                "old_passphrase",
                &self.old_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("audit", &self.audit)
            .finish()
    }
}

impl fmt::Debug for RotateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotateReport")
            .field("target", &self.target)
            .field("previous_ts", &self.previous_ts)
            .field("ts", &self.ts)
            .field("generation", &self.generation)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("keystore", &self.keystore)
            .field("key_not_stored", &self.key_not_stored)
            .finish()
    }
}

/// Re-keys `env`'s current version under a new passphrase.
pub async fn rotate_passphrase(
    ctx: &Context,
    env: &str,
    options: RotateOptions,
    progress: &dyn Progress,
) -> Result<RotateReport, OpsError> {
    check_new_env_name(env)?;
    let env = Env::load(ctx, env)?;
    let _lock = env.lock(ctx, progress)?;
    let store = open_store(&env.config)?;
    rotate_on(ctx, env, store.as_ref(), options, progress).await
}

/// [`rotate_passphrase`] against an open store (tests hand in one that
/// fails where they want).
async fn rotate_on(
    ctx: &Context,
    env: Env,
    store: &dyn Store,
    options: RotateOptions,
    progress: &dyn Progress,
) -> Result<RotateReport, OpsError> {
    let (new_passphrase, generated) = match options.new_passphrase {
        NewPassphrase::Given(given) => (checked_new_passphrase(given)?, false),
        NewPassphrase::Generate => (generate_key(), true),
    };
    let old_passphrase = options.old_passphrase.unwrap_or_else(|| env.key.clone());
    if *new_passphrase == *old_passphrase {
        return Err(OpsError::Usage(
            "the new passphrase equals the current one; choose another (or pass --generate)".into(),
        ));
    }
    let layout = layout(&env.config, env.repo.name(), &env.name)?;
    let ledger = Ledger::load(&env.ledger_path)?;
    // Proves the keystore takes a write (keychain unlocked, directory
    // writable) before anything is published, so the new key is not lost
    // after the bucket already needs it. Rewriting the current value
    // changes nothing.
    ctx.keystore.set(env.repo.name(), &env.name, &env.key)?;

    progress.step(
        1,
        4,
        &format!("reading the pointer from {}", store.describe()),
    );
    let Some(head) = vault::remote_head(store, &layout).await? else {
        return Err(VaultError::NoVault {
            store: store.describe(),
            prefix: layout.prefix().to_owned(),
        }
        .into());
    };
    vault::check_not_backwards(&head.ts, ledger.as_ref().map(|l| &l.last_sync_ts))?;

    progress.step(2, 4, &format!("downloading and verifying {}", head.ts));
    let old_key = env.derive_key_from(&old_passphrase);
    let fetched = vault::fetch(store, &layout, &old_key, &head, None).await?;

    progress.step(3, 4, "re-sealing under the new key and publishing");
    let target = format!("{}/{}", env.repo.name(), env.name);
    let new_key = env.derive_key_from(&new_passphrase);
    // The sync and import records stay sealed under the key they have;
    // that key is kept for the new vault key too, before the new version
    // needs it (see `records_key`).
    let records = match records_key::begin_rotation(store, &layout, &old_key, &new_key).await {
        Ok(records) => records,
        Err(SyncError::Record(StoreError::PreconditionFailed { .. })) => {
            return Err(OpsError::RotationLostRace { target });
        }
        // A rotation elsewhere since this one read the pointer has sealed
        // the records key for its own new key only: a lost race too.
        Err(err) => {
            let moved = vault::remote_head(store, &layout)
                .await?
                .is_none_or(|now| now.ts != head.ts);
            return Err(if moved {
                OpsError::RotationLostRace { target }
            } else {
                OpsError::Sync(err)
            });
        }
    };
    let now = next_timestamp(Some(&head)).await;
    let published = match vault::publish_rotation(
        store,
        &layout,
        &new_key,
        fetched.payload(),
        &head,
        now,
        vsync_local::time::iso_millis(SystemTime::now()),
    )
    .await
    {
        Ok(published) => published,
        Err(VaultError::ConcurrentPush { .. }) => {
            return Err(OpsError::RotationLostRace { target });
        }
        Err(VaultError::PublishUncertain { ts, source }) => {
            return Err(OpsError::RotationUnconfirmed {
                target,
                env: env.name.clone(),
                ts,
                detail: source.to_string(),
                passphrase: UnsavedPassphrase(new_passphrase),
            });
        }
        Err(other) => return Err(other.into()),
    };

    // The pointer has moved: the rotation has happened and the bucket needs
    // the new key. Keep it before anything else can fail; from here on every
    // problem is reported alongside the key, never instead of it.
    progress.step(4, 4, "storing the new key");
    let key_not_stored = ctx
        .keystore
        .set(env.repo.name(), &env.name, &new_passphrase)
        .err()
        .map(|err| err.to_string());
    if let Err(err) = records.finish(store, &layout).await {
        progress.warn(&format!(
            "the old passphrase still opens the key of this env's sync records ({err}); it holds no value, and the next rotation removes it"
        ));
    }
    if let Some(problem) = &published.meta_not_written {
        progress.warn(&format!(
            "version {} is published but latest.meta was not updated ({problem}); readers open it, only their change detection lags until the next push",
            published.ts
        ));
    }
    // The new version holds exactly what this machine last synced when the
    // ledger names the rotated version, so it stays in sync; otherwise the
    // ledger is left as it was (pull catches up as usual).
    if key_not_stored.is_none()
        && let Some(mut ledger) = ledger
        && ledger.last_sync_ts == head.ts
    {
        ledger.last_sync_ts = published.ts.clone();
        if let Err(err) = ledger.save(&env.ledger_path) {
            progress.warn(&format!(
                "the sync ledger was not updated ({err}); the next pull will fetch version {} again",
                published.ts
            ));
        }
    }
    let fixed_meta = [
        ("event", Value::from("rotate")),
        ("gen", Value::from(published.generation)),
        ("prev_gen", Value::from(head.generation)),
    ];
    audit::record(
        ctx,
        store,
        &layout,
        &env.config,
        &options.audit,
        audit::Entry {
            action: AuditAction::Rotate,
            version_ts: Some(&published.ts),
            fixed_meta: &fixed_meta,
        },
        progress,
    )
    .await;
    Ok(RotateReport {
        target,
        previous_ts: head.ts,
        ts: published.ts,
        generation: published.generation,
        passphrase: (generated || key_not_stored.is_some()).then_some(new_passphrase),
        keystore: ctx.keystore.describe(),
        key_not_stored,
    })
}

fn checked_new_passphrase(given: Zeroizing<String>) -> Result<Zeroizing<String>, OpsError> {
    if given.chars().count() < MIN_NEW_PASSPHRASE_LEN {
        return Err(OpsError::Usage(format!(
            "the new passphrase is shorter than {MIN_NEW_PASSPHRASE_LEN} characters; choose a longer one or pass --generate"
        )));
    }
    if given.trim() != given.as_str() {
        return Err(OpsError::Usage(
            "the new passphrase starts or ends with whitespace, which apps reading VSYNC_PASSPHRASE would have to reproduce exactly; remove it".into(),
        ));
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use vsync_backends::fs::FsStore;
    use vsync_engine::store::{ETag, ListedObject, Object, ObjectInfo, PutCondition, StoreError};

    use crate::{InitOptions, PullOptions, PushOptions, Quiet, init, pull, push};

    /// One step of a publish that fails.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fault {
        /// The write of an object whose key ends with this is refused.
        Refuse(&'static str),
        /// The write is applied, then reported as failed (a lost answer).
        ApplyThenFail(&'static str),
        /// Refused, and reading the pointer back fails too.
        RefuseAndBlind(&'static str),
        /// The pointer write succeeds, then the keystore breaks.
        BreakKeystoreAfterPointer,
    }

    /// The local store with one fault armed.
    struct FaultyStore {
        inner: FsStore,
        fault: Fault,
        blind: Mutex<bool>,
        keystore_dir: PathBuf,
    }

    fn unreachable_error() -> StoreError {
        StoreError::Unreachable("connection reset by peer".into())
    }

    #[async_trait]
    impl Store for FaultyStore {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn get_limited(
            &self,
            key: &str,
            max_bytes: u64,
        ) -> Result<Option<Object>, StoreError> {
            if *self.blind.lock().unwrap() {
                return Err(unreachable_error());
            }
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
        ) -> Result<ETag, StoreError> {
            match self.fault {
                Fault::Refuse(suffix) if key.ends_with(suffix) => Err(unreachable_error()),
                Fault::RefuseAndBlind(suffix) if key.ends_with(suffix) => {
                    *self.blind.lock().unwrap() = true;
                    Err(unreachable_error())
                }
                Fault::ApplyThenFail(suffix) if key.ends_with(suffix) => {
                    self.inner.put(key, body, condition).await?;
                    Err(unreachable_error())
                }
                Fault::BreakKeystoreAfterPointer if key.ends_with("/latest") => {
                    let etag = self.inner.put(key, body, condition).await?;
                    // A file where the keystore's repo folder must be: every
                    // later key write fails.
                    std::fs::remove_dir_all(&self.keystore_dir).unwrap();
                    std::fs::write(&self.keystore_dir, b"").unwrap();
                    Ok(etag)
                }
                _ => self.inner.put(key, body, condition).await,
            }
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key).await
        }
    }

    struct Machine {
        _tmp: tempfile::TempDir,
        ctx: Context,
        store_dir: PathBuf,
    }

    /// A repo with one pushed version of `dev` on the local store.
    async fn pushed_machine() -> Machine {
        let (tmp, ctx) = crate::lifecycle::tests::checkout();
        let store_dir = ctx.local_store_dir.clone();
        let report = init(
            &ctx,
            "dev",
            &InitOptions {
                local: true,
                audit: false,
                ..InitOptions::default()
            },
        )
        .unwrap();
        std::fs::write(
            report.vault_dir.join(".env.dev"),
            "API_KEY=before-rotation\n",
        )
        .unwrap();
        push(&ctx, "dev", &PushOptions::default(), &Quiet)
            .await
            .unwrap();
        Machine {
            _tmp: tmp,
            ctx,
            store_dir,
        }
    }

    async fn rotate_with(machine: &Machine, fault: Fault) -> Result<RotateReport, OpsError> {
        let env = Env::load(&machine.ctx, "dev").unwrap();
        let store = FaultyStore {
            inner: FsStore::open(&machine.store_dir).unwrap(),
            fault,
            blind: Mutex::new(false),
            keystore_dir: machine.ctx.base.dir().join(".keystore/acme"),
        };
        let options = RotateOptions {
            new_passphrase: NewPassphrase::Generate,
            old_passphrase: None,
            audit: AuditOptions::default(),
        };
        rotate_on(&machine.ctx, env, &store, options, &Quiet).await
    }

    fn stored_key(machine: &Machine) -> Zeroizing<String> {
        machine.ctx.keystore.get("acme", "dev").unwrap().unwrap()
    }

    /// Pulls with the key in the keystore: proves the bucket and the
    /// keystore agree.
    async fn pull_works(machine: &Machine) {
        pull(
            &machine.ctx,
            "dev",
            &PullOptions {
                force: true,
                ..PullOptions::default()
            },
            &Quiet,
        )
        .await
        .unwrap();
        let vault = Path::new(&machine.ctx.cwd).join("infra/vault/dev/.env.dev");
        assert_eq!(
            std::fs::read_to_string(vault).unwrap(),
            "API_KEY=before-rotation\n"
        );
        // And the key of the env's sync records opens with it too.
        let env = Env::load(&machine.ctx, "dev").unwrap();
        let store = open_store(&env.config).unwrap();
        let layout = layout(&env.config, "acme", "dev").unwrap();
        records_key::load(store.as_ref(), &layout, &env.derive_key())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_publish_that_fails_before_the_pointer_moves_keeps_the_old_key() {
        for fault in [Fault::Refuse(".enc"), Fault::Refuse("/latest")] {
            let machine = pushed_machine().await;
            let old_key = stored_key(&machine);
            let err = rotate_with(&machine, fault).await.unwrap_err();
            assert_eq!(err.exit_code(), 3, "{fault:?}: {err}");
            assert_eq!(*stored_key(&machine), *old_key, "{fault:?}");
            pull_works(&machine).await;
            // No orphan bundle is left beside the one version.
            let store = FsStore::open(&machine.store_dir).unwrap();
            let versions = vault::versions(
                &store,
                &vsync_engine::vault::Layout::for_repo_env("acme", "dev"),
            )
            .await
            .unwrap();
            assert_eq!(versions.len(), 1, "{fault:?}");
        }
    }

    #[tokio::test]
    async fn once_the_pointer_has_moved_the_new_key_is_kept_whatever_fails_next() {
        // The pointer write applied but its answer lost, and the meta write
        // failing: both are published rotations.
        for fault in [
            Fault::ApplyThenFail("/latest"),
            Fault::Refuse("/latest.meta"),
        ] {
            let machine = pushed_machine().await;
            let old_key = stored_key(&machine);
            let report = rotate_with(&machine, fault).await.unwrap();
            let new_key = report.passphrase.expect("a generated key is shown");
            assert_ne!(*new_key, *old_key);
            assert_eq!(*stored_key(&machine), *new_key, "{fault:?}");
            assert!(report.key_not_stored.is_none());
            pull_works(&machine).await;
        }
    }

    #[tokio::test]
    async fn a_keystore_that_breaks_after_the_pointer_moved_still_gets_the_key_shown() {
        let machine = pushed_machine().await;
        let report = rotate_with(&machine, Fault::BreakKeystoreAfterPointer)
            .await
            .unwrap();
        assert!(report.key_not_stored.is_some());
        let new_key = report
            .passphrase
            .expect("the only copy of the key is shown");
        // The bucket opens with the key that was shown.
        let env_config =
            vsync_local::EnvConfig::load_for(&machine.ctx.base, "acme", "dev").unwrap();
        let store = FsStore::open(&machine.store_dir).unwrap();
        let layout = vsync_engine::vault::Layout::for_repo_env("acme", "dev");
        let head = vault::remote_head(&store, &layout).await.unwrap().unwrap();
        let key = vsync_crypto::kdf::Key::derive(
            new_key.as_bytes(),
            env_config.encryption.salt.as_bytes(),
            vsync_crypto::kdf::DEFAULT_ITERATIONS,
        );
        vault::fetch(&store, &layout, &key, &head, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unconfirmed_pointer_write_hands_back_the_new_key() {
        let machine = pushed_machine().await;
        let old_key = stored_key(&machine);
        let err = rotate_with(&machine, Fault::RefuseAndBlind("/latest"))
            .await
            .unwrap_err();
        let OpsError::RotationUnconfirmed { passphrase, .. } = &err else {
            panic!("{err}");
        };
        assert!(passphrase.expose().len() >= MIN_NEW_PASSPHRASE_LEN);
        assert!(!err.to_string().contains(passphrase.expose()));
        assert!(!format!("{err:?}").contains(passphrase.expose()));
        assert_eq!(err.exit_code(), 3);
        assert_eq!(*stored_key(&machine), *old_key);
    }

    #[test]
    fn debug_never_shows_a_passphrase() {
        let options = RotateOptions {
            new_passphrase: NewPassphrase::Given(Zeroizing::new("new-secret-passphrase".into())),
            old_passphrase: Some(Zeroizing::new("old-secret-passphrase".into())),
            audit: AuditOptions::default(),
        };
        let debug = format!("{options:?}");
        assert!(!debug.contains("secret-passphrase"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn new_passphrases_are_checked_without_echoing_them() {
        let err = checked_new_passphrase(Zeroizing::new("short-secret".chars().take(11).collect()))
            .unwrap_err();
        assert!(err.to_string().contains("shorter than 12"), "{err}");
        assert!(!err.to_string().contains("short-secr"), "{err}");
        let err =
            checked_new_passphrase(Zeroizing::new(" padded-secret-value".into())).unwrap_err();
        assert!(err.to_string().contains("whitespace"), "{err}");
        assert!(!err.to_string().contains("padded"), "{err}");
        assert_eq!(
            *checked_new_passphrase(Zeroizing::new("long-enough-secret".into())).unwrap(),
            "long-enough-secret"
        );
    }

    /// A records key object someone else wrote is checked before it is
    /// trusted: over its two envelopes' size it is refused before it is
    /// read whole, and bytes that are no envelope of a key are unreadable,
    /// never a panic or a key.
    #[tokio::test]
    async fn a_hostile_records_key_object_is_refused() {
        let machine = pushed_machine().await;
        let env = Env::load(&machine.ctx, "dev").unwrap();
        let store = FsStore::open(&machine.store_dir).unwrap();
        let layout = vsync_engine::vault::Layout::for_repo_env("acme", "dev");
        let vault_key = env.derive_key();
        let object = machine.store_dir.join(layout.records_key());
        for (body, too_large) in [
            (vec![0u8; 64 * 2 + 1], true),
            (vec![0u8; 65], false),
            (vec![0u8; 64], false),
            (Vec::new(), false),
        ] {
            std::fs::write(&object, &body).unwrap();
            match records_key::load(&store, &layout, &vault_key).await {
                Err(SyncError::Record(StoreError::TooLarge { .. })) => assert!(too_large),
                Err(SyncError::RecordUnreadable(why)) => {
                    assert!(!too_large);
                    assert!(why.contains("sync.key"), "{why}");
                }
                Err(other) => panic!("{} bytes: {other}", body.len()),
                Ok(_) => panic!("{} bytes opened as a key", body.len()),
            }
        }
    }
}
