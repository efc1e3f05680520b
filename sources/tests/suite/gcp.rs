//! The GCP harness: the Secret Manager fake (Google ships no emulator).
//! `disable` disables every version of a secret.

use vsync_engine::source::Source;
use vsync_sources::gcp::{GcpSecretManagerSource, PAGE_SIZE};
use vsync_testcontainers::GcpSecretManagerServer as Fake;
use vsync_testcontainers::faults::Faults;

use super::Harness;

pub const PROJECT: &str = "acme-prod";

pub struct Gcp {
    pub fake: Fake,
}

impl Gcp {
    pub async fn start() -> Self {
        Gcp {
            fake: Fake::start(PROJECT).await.expect("the Secret Manager fake"),
        }
    }

    /// A source of `project` with `token`, filtered when `filter` is given.
    pub fn source_as(
        &self,
        project: &str,
        token: &str,
        filter: Option<&str>,
    ) -> GcpSecretManagerSource {
        let mut builder = GcpSecretManagerSource::builder()
            .project(project)
            .endpoint(self.fake.endpoint())
            .access_token(token);
        if let Some(filter) = filter {
            builder = builder.filter(filter);
        }
        builder.build().expect("the source builds")
    }

    pub fn filtered(&self, filter: &str) -> GcpSecretManagerSource {
        self.source_as(PROJECT, Fake::ADMIN_TOKEN, Some(filter))
    }

    /// The secret `name` with `versions` added in order and `labels`.
    pub fn secret(&self, name: &str, versions: &[&str], labels: &[(&str, &str)]) {
        for value in versions {
            self.fake.add_version_outside(name, value.as_bytes());
        }
        self.fake.set_labels(name, labels);
    }
}

#[async_trait::async_trait]
impl Harness for Gcp {
    fn source(&self) -> Box<dyn Source> {
        Box::new(self.source_as(PROJECT, Fake::ADMIN_TOKEN, None))
    }

    fn source_with_bad_credentials(&self) -> Option<Box<dyn Source>> {
        Some(Box::new(self.source_as(PROJECT, "ya29.revoked", None)))
    }

    async fn put(&self, key: &str, value: &[u8]) {
        self.fake.add_version_outside(key, value);
    }

    async fn delete(&self, key: &str) {
        self.fake.delete_outside(key);
    }

    async fn disable(&self, key: &str) -> bool {
        for version in 1..=self.fake.version_count(key) {
            self.fake.disable_version_outside(key, version);
        }
        true
    }

    fn faults(&self) -> Option<&Faults> {
        Some(self.fake.faults())
    }

    fn binary(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE_SIZE as usize
    }
}
