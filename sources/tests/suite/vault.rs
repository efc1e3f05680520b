//! The HashiCorp Vault harness: the Vault fake, each key its own KV v2
//! secret `secret/app/<KEY>` with one field `<KEY>`.

use serde_json::Value;
use vsync_engine::source::Source;
use vsync_sources::vault::{Auth, VaultSource};
use vsync_testcontainers::VaultServer;
use vsync_testcontainers::faults::Faults;

use super::Harness;

const FOLDER: &str = "app";

pub struct VaultKv {
    pub server: VaultServer,
}

impl VaultKv {
    pub async fn start() -> Self {
        VaultKv {
            server: VaultServer::start().await.expect("the Vault fake starts"),
        }
    }

    pub fn source_with(&self, auth: Auth) -> VaultSource {
        VaultSource::builder()
            .address(self.server.address())
            .path(FOLDER)
            .auth(auth)
            .build()
            .unwrap()
    }
}

#[async_trait::async_trait]
impl Harness for VaultKv {
    fn source(&self) -> Box<dyn Source> {
        // Read-only: listing and reading is all the source needs.
        Box::new(self.source_with(Auth::token(VaultServer::READ_ONLY_TOKEN)))
    }

    fn source_with_bad_credentials(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(self.source_with(Auth::token("hvs.revoked"))))
    }

    async fn put(&self, key: &str, value: &[u8]) {
        let text = String::from_utf8(value.to_vec()).expect("Vault holds text");
        self.server.edit_outside(
            "secret",
            &format!("{FOLDER}/{key}"),
            key,
            Value::String(text),
        );
    }

    async fn delete(&self, key: &str) {
        self.server
            .remove_outside("secret", &format!("{FOLDER}/{key}"));
    }

    async fn disable(&self, _key: &str) -> bool {
        false
    }

    fn faults(&self) -> Option<&Faults> {
        Some(self.server.faults())
    }

    fn page_size(&self) -> usize {
        // Vault does not page a listing.
        usize::MAX
    }
}
