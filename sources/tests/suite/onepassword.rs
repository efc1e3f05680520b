//! The 1Password harness: the Connect fake, each key one item titled
//! `<KEY>` holding one concealed field labelled `<KEY>`.

use vsync_engine::source::Source;
use vsync_sources::onepassword::{ConnectSource, Scope};
use vsync_testcontainers::faults::Faults;
use vsync_testcontainers::{FakeField, FakeItem, OnePasswordConnectServer};

use super::Harness;

/// A Connect fake with one vault, `Ops`.
pub struct Connect {
    pub server: OnePasswordConnectServer,
    pub vault: String,
}

impl Connect {
    pub async fn start() -> Self {
        let server = OnePasswordConnectServer::start().await.unwrap();
        let vault = server.add_vault("Ops");
        Connect { server, vault }
    }

    pub fn source(&self, vault: &str, scope: Scope) -> ConnectSource {
        ConnectSource::new(
            &self.server.host(),
            OnePasswordConnectServer::TOKEN,
            vault.into(),
            scope,
        )
        .unwrap()
    }
}

#[async_trait::async_trait]
impl Harness for Connect {
    fn source(&self) -> Box<dyn Source> {
        Box::new(self.source("Ops", Scope::All))
    }

    fn source_with_bad_credentials(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(
            ConnectSource::new(
                &self.server.host(),
                "eyJ.revoked.token",
                "Ops".into(),
                Scope::All,
            )
            .unwrap(),
        ))
    }

    async fn put(&self, key: &str, value: &[u8]) {
        let value = std::str::from_utf8(value).expect("1Password holds text");
        let fields = [FakeField::concealed(key, value)];
        self.server
            .put(&self.vault, &FakeItem::credential(key, &fields));
    }

    async fn delete(&self, key: &str) {
        self.server.delete(&self.vault, key);
    }

    async fn disable(&self, _key: &str) -> bool {
        false
    }

    fn faults(&self) -> Option<&Faults> {
        Some(self.server.faults())
    }

    fn page_size(&self) -> usize {
        usize::MAX
    }
}
