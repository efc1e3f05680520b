//! The AWS harness: a real moto server (IAM authentication on) behind the
//! harness's front, which counts and faults every `ListSecrets` page and
//! `BatchGetSecretValue` call. Secrets are written "in the console":
//! straight to moto, unseen by the front's counters and faults. AWS has no
//! disabled state, so [`Harness::disable`] answers `false`.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::primitives::Blob;
use vsync_engine::source::Source;
use vsync_sources::aws::{Access, AwsSecretsManagerSource, AwsSecretsManagerSourceBuilder};
use vsync_testcontainers::MotoServer;
use vsync_testcontainers::faults::Faults;

use super::Harness;

pub struct Aws {
    pub server: MotoServer,
    pub console: Client,
}

pub async fn start() -> Aws {
    let server = MotoServer::start().await.expect("moto starts");
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.direct_endpoint())
        .region(Region::new(server.region().to_owned()))
        .credentials_provider(Credentials::new(
            server.access_key_id(),
            server.secret_access_key(),
            None,
            None,
            "test",
        ))
        .build();
    Aws {
        console: Client::from_conf(config),
        server,
    }
}

impl Aws {
    pub fn builder(&self) -> AwsSecretsManagerSourceBuilder {
        AwsSecretsManagerSource::builder().access(
            Access::region(self.server.region())
                .endpoint(self.server.endpoint())
                .credentials(self.server.access_key_id(), self.server.secret_access_key()),
        )
    }

    /// Creates `name`, or writes a new version of it: text in
    /// `SecretString`, anything else in `SecretBinary`.
    pub async fn store(console: &Client, name: &str, value: &[u8]) {
        let create = console.create_secret().name(name);
        let created = match std::str::from_utf8(value) {
            Ok(text) => create.secret_string(text).send().await,
            Err(_) => create.secret_binary(Blob::new(value)).send().await,
        };
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceExistsException") => {
                let put = console.put_secret_value().secret_id(name);
                match std::str::from_utf8(value) {
                    Ok(text) => put.secret_string(text).send().await,
                    Err(_) => put.secret_binary(Blob::new(value)).send().await,
                }
                .expect("PutSecretValue");
            }
            Err(e) => panic!("CreateSecret {name}: {e:?}"),
        }
    }

    /// Deletes `name` as a person would: with AWS's recovery window, so it
    /// is scheduled for deletion (unlisted) rather than gone.
    pub async fn schedule_deletion(&self, name: &str) {
        self.console
            .delete_secret()
            .secret_id(name)
            .send()
            .await
            .expect("DeleteSecret");
    }
}

#[async_trait::async_trait]
impl Harness for Aws {
    fn source(&self) -> Box<dyn Source> {
        Box::new(self.builder().build().expect("valid settings"))
    }

    fn source_with_bad_credentials(&self) -> Option<Box<dyn Source>> {
        let source = AwsSecretsManagerSource::builder()
            .access(
                Access::region(self.server.region())
                    .endpoint(self.server.endpoint())
                    .credentials(self.server.access_key_id(), "not-the-secret-key"),
            )
            .build()
            .expect("valid settings");
        Some(Box::new(source))
    }

    async fn put(&self, key: &str, value: &[u8]) {
        Aws::store(&self.console, key, value).await;
    }

    async fn put_many(&self, secrets: &[(String, String)]) {
        // Eight at a time: moto serves requests on threads, and 1,005
        // one after the other would dominate the test.
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in secrets.chunks(secrets.len().div_ceil(8).max(1)) {
            let console = self.console.clone();
            let chunk = chunk.to_vec();
            tasks.spawn(async move {
                for (key, value) in chunk {
                    Aws::store(&console, &key, value.as_bytes()).await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a writer task");
        }
    }

    async fn delete(&self, key: &str) {
        self.schedule_deletion(key).await;
    }

    async fn disable(&self, _key: &str) -> bool {
        false
    }

    fn faults(&self) -> Option<&Faults> {
        Some(self.server.faults())
    }

    fn binary(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        100
    }
}
