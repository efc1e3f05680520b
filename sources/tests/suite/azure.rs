//! The Key Vault harness: the Key Vault fake, and when it was last written
//! to. Key Vault's `updated` is in whole seconds, and the source trusts it
//! as a revision only once its second is over, so [`Harness::source`]
//! starts an import only once the second of the last write is over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vsync_engine::source::Source;
use vsync_sources::azure::{Auth, KeyVaultSource, StaticToken, connect};
use vsync_testcontainers::KeyVaultServer;
use vsync_testcontainers::faults::Faults;

use super::Harness;

/// The Key Vault fake, and when it was last written to.
pub struct KeyVault {
    pub server: KeyVaultServer,
    /// The Unix second of the last write, by this machine's clock (the
    /// fake's).
    last_write: AtomicU64,
}

pub fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

impl KeyVault {
    pub async fn start() -> Self {
        KeyVault {
            server: KeyVaultServer::start().await.unwrap(),
            last_write: AtomicU64::new(0),
        }
    }

    /// A source with `token`, trusting the fake's CA (and `more_ca`).
    pub fn source_with(&self, token: &str, more_ca: &str) -> KeyVaultSource {
        let auth = Auth::Credential(Arc::new(StaticToken::new(token)));
        let ca = format!("{}{more_ca}", self.server.ca_pem());
        let connection = connect(&self.server.url(), auth, Some(ca.as_bytes())).unwrap();
        // The fake is on 127.0.0.1, outside the challenge's vault.azure.net.
        KeyVaultSource::new(connection, false).unwrap()
    }

    pub fn wrote(&self) {
        self.last_write.store(now().as_secs(), Ordering::SeqCst);
    }

    /// Waits until the second of the last write is over.
    pub fn after_the_last_write(&self) {
        let last = self.last_write.load(Ordering::SeqCst);
        let now = now();
        if now.as_secs() <= last {
            let rest = Duration::from_secs(last + 1) - now;
            tokio::task::block_in_place(|| std::thread::sleep(rest));
        }
    }
}

/// The name the Key Vault sink gives the vault key `key`.
fn platform_name(key: &str) -> String {
    key.replace('_', "-")
}

#[async_trait::async_trait]
impl Harness for KeyVault {
    fn source(&self) -> Box<dyn Source> {
        self.after_the_last_write();
        Box::new(self.source_with(KeyVaultServer::READER_TOKEN, ""))
    }

    fn source_with_bad_credentials(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(self.source_with("an-expired-token", "")))
    }

    async fn put(&self, key: &str, value: &[u8]) {
        let text = std::str::from_utf8(value).expect("Key Vault holds text");
        self.server.set_outside(&platform_name(key), text);
        self.wrote();
    }

    async fn delete(&self, key: &str) {
        self.server.delete_outside(&platform_name(key));
        self.wrote();
    }

    async fn disable(&self, key: &str) -> bool {
        self.server.disable_outside(&platform_name(key));
        self.wrote();
        true
    }

    fn faults(&self) -> Option<&Faults> {
        Some(self.server.faults())
    }

    fn page_size(&self) -> usize {
        25
    }
}
