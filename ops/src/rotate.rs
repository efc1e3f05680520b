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
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault::{self, VaultError};
use vsync_local::keystore::generate_key;
use vsync_local::ledger::Ledger;
use zeroize::Zeroizing;

use crate::audit::{self, AuditAction, AuditOptions};
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
    let store = open_store(&env.config)?;
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
    let Some(head) = vault::remote_head(store.as_ref(), &layout).await? else {
        return Err(VaultError::NoVault {
            store: store.describe(),
            prefix: layout.prefix().to_owned(),
        }
        .into());
    };
    vault::check_not_backwards(&head.ts, ledger.as_ref().map(|l| &l.last_sync_ts))?;

    progress.step(2, 4, &format!("downloading and verifying {}", head.ts));
    let fetched = vault::fetch(
        store.as_ref(),
        &layout,
        &env.derive_key_from(&old_passphrase),
        &head,
        None,
    )
    .await?;

    progress.step(3, 4, "re-sealing under the new key and publishing");
    let now = next_timestamp(Some(&head)).await;
    let published = vault::publish_rotation(
        store.as_ref(),
        &layout,
        &env.derive_key_from(&new_passphrase),
        fetched.payload(),
        &head,
        now,
        vsync_local::time::iso_millis(SystemTime::now()),
    )
    .await
    .map_err(|err| match err {
        VaultError::ConcurrentPush { .. } => OpsError::RotationLostRace {
            target: format!("{}/{}", env.repo.name(), env.name),
        },
        other => other.into(),
    })?;

    progress.step(4, 4, "storing the new key");
    let key_not_stored = ctx
        .keystore
        .set(env.repo.name(), &env.name, &new_passphrase)
        .err()
        .map(|err| err.to_string());
    // The new version holds exactly what this machine last synced when the
    // ledger names the rotated version, so it stays in sync; otherwise the
    // ledger is left as it was (pull catches up as usual).
    if key_not_stored.is_none()
        && let Some(mut ledger) = ledger
        && ledger.last_sync_ts == head.ts
    {
        ledger.last_sync_ts = published.ts.clone();
        ledger.save(&env.ledger_path)?;
    }
    let fixed_meta = [
        ("event", Value::from("rotate")),
        ("gen", Value::from(published.generation)),
        ("prev_gen", Value::from(head.generation)),
    ];
    audit::record(
        ctx,
        store.as_ref(),
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
        target: format!("{}/{}", env.repo.name(), env.name),
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
}
