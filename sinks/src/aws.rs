//! AWS Secrets Manager: one secret per vault key, on `aws-sdk-secretsmanager`.
//!
//! **Names.** A vault key `K` becomes the secret `<prefix>K` — upstream's
//! `--aws-secret-prefix` followed by the key, with no other transform (the
//! upstream "no magic" rule). AWS names are 1–512 characters of ASCII
//! letters, digits and `/_+=.@-`, case-sensitive, and must not end in a
//! hyphen and six characters: AWS appends exactly that to every secret's
//! ARN, so `SecretId` lookups by partial ARN would find the wrong secret.
//! The engine refuses such names before the first write.
//!
//! **Inventory.** `ListSecrets` with the `name` filter set to the prefix
//! (a case-sensitive prefix match) and `MaxResults` paging, so a sync sees
//! only the names under its prefix; names are checked against the prefix
//! again on our side, so a server that matches more loosely cannot widen
//! the target. Secrets scheduled for deletion are not listed (AWS's
//! default), exactly as they are invisible to an application.
//!
//! **Revision.** The version id carrying the `AWSCURRENT` label. Every
//! `PutSecretValue` — ours, the console's, a rotation's — makes a new
//! version and moves `AWSCURRENT` to it, and the write responses return
//! that id, so the engine records it without listing again. The
//! `LastChangedDate` would be coarser (whole seconds on some servers) and
//! also moves on tag and description edits, which change no value.
//!
//! **Writes.** Text values go in `SecretString`, anything else in
//! `SecretBinary`, so binary assets round-trip. A create is `CreateSecret`
//! with the tag `managed-by=vsync` (reported in [`RemoteSecret::managed`],
//! so prune deletes only what carries it); an update is `PutSecretValue`,
//! which keeps the secret's tags and leaves a secret someone else created
//! without vsync's tag, so prune never adopts it. A create that hits a name
//! scheduled for deletion restores that secret (`RestoreSecret`), tags it
//! and writes the value instead of failing: the name cannot be reused
//! until the recovery window ends, and the vault wants it back.
//!
//! **Deletes** follow [`DeletePolicy`]: a recovery window of 7–30 days
//! (default 30, AWS's own default), or an immediate delete without recovery.
//!
//! **Errors.** The SDK's own retries are off: the engine paces and retries
//! for every platform. Throttling (`ThrottlingException`, HTTP 429) becomes
//! [`SinkError::RateLimited`], 5xx and connection failures
//! [`SinkError::Unavailable`], refused credentials or permissions (which
//! AWS's JSON protocol answers with 400 and a code) [`SinkError::Denied`].
//! Messages keep the operation, the secret name, the status and AWS's
//! error code and message, never a request body, and are scrubbed of the
//! value being written in case a message ever echoes it.

use std::fmt;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
/// Where and as whom the sink reaches Secrets Manager, shared with the AWS source.
pub use vsync_connections::aws::Access;
use vsync_connections::aws::{
    DENIED_HINT, MAX_SECRET_NAME_LEN as MAX_NAME_LEN, Refusal,
    SECRET_NAME_PUNCTUATION as NAME_PUNCTUATION, is_credentials_failure, mentions_deletion,
    refusal,
};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{
    Alphabet, Applied, Batch, Capabilities, Change, Deletion, MANAGED_BY, NameRules, RateBudget,
    RemoteSecret, SecretValue, Sink, SinkError, WriteLimit,
};

/// The staging label of the version applications read.
const CURRENT: &str = "AWSCURRENT";
/// `ListSecrets` answers at most 100 secrets per page.
const MAX_PAGE: i32 = 100;

/// What deleting a pruned secret does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Schedule the deletion after this many days (7–30); until then the
    /// secret can be restored, and its name cannot be reused — vsync
    /// restores it when the vault wants the name back.
    RecoveryWindow {
        /// Days before AWS purges the secret.
        days: u8,
    },
    /// Delete at once, without recovery (`ForceDeleteWithoutRecovery`).
    ForceWithoutRecovery,
}

impl Default for DeletePolicy {
    /// AWS's default: a 30-day recovery window.
    fn default() -> Self {
        DeletePolicy::RecoveryWindow { days: 30 }
    }
}

/// Builds an [`AwsSecretsManagerSink`]; [`AwsSecretsManagerSink::builder`].
#[derive(Default)]
pub struct AwsSecretsManagerSinkBuilder {
    access: Access,
    prefix: String,
    delete_policy: DeletePolicy,
    page_size: Option<i32>,
}

impl fmt::Debug for AwsSecretsManagerSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSecretsManagerSinkBuilder")
            .field("access", &self.access)
            .field("prefix", &self.prefix)
            .field("delete_policy", &self.delete_policy)
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl AwsSecretsManagerSinkBuilder {
    /// The region (upstream's `--aws-region`), the endpoint and the
    /// credentials; the region is required.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// The secret-name prefix (upstream's `--aws-secret-prefix`), e.g.
    /// `myapp/prod/`; every name is this plus the vault key, and the sync
    /// sees only secrets whose names start with it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// What pruning a secret does (default: a 30-day recovery window).
    pub fn delete_policy(mut self, policy: DeletePolicy) -> Self {
        self.delete_policy = policy;
        self
    }

    /// Secrets per `ListSecrets` page, 1–100 (default 100, AWS's maximum);
    /// tests lower it to exercise paging.
    pub fn list_page_size(mut self, size: i32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Checks the settings and builds the sink. No request is sent.
    pub fn build(self) -> Result<AwsSecretsManagerSink, SinkError> {
        let misconfigured = |message: String| Err(SinkError::Misconfigured(message));
        let shared = self
            .access
            .sdk_config("pass --aws-region (e.g. eu-west-1)")?;
        if let Some(bad) = self
            .prefix
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(c)))
        {
            return misconfigured(format!(
                "the AWS secret prefix {:?} contains {bad:?}; secret names may use ASCII letters, digits and {NAME_PUNCTUATION}",
                self.prefix
            ));
        }
        if self.prefix.len() >= MAX_NAME_LEN {
            return misconfigured(format!(
                "the AWS secret prefix is {} characters; names are at most {MAX_NAME_LEN}",
                self.prefix.len()
            ));
        }
        if let DeletePolicy::RecoveryWindow { days } = self.delete_policy
            && !(7..=30).contains(&days)
        {
            return misconfigured(format!(
                "a recovery window of {days} days; AWS accepts 7 to 30"
            ));
        }
        let page_size = self.page_size.unwrap_or(MAX_PAGE);
        if !(1..=MAX_PAGE).contains(&page_size) {
            return misconfigured(format!(
                "a list page size of {page_size}; ListSecrets takes 1 to {MAX_PAGE}"
            ));
        }
        let deletion = match self.delete_policy {
            DeletePolicy::RecoveryWindow { .. } => Deletion::Recoverable,
            DeletePolicy::ForceWithoutRecovery => Deletion::Immediate,
        };
        Ok(AwsSecretsManagerSink {
            client: Client::new(&shared),
            capabilities: capabilities(deletion),
            endpoint: self.access.endpoint_url().map(str::to_owned),
            region: self.access.region_name().to_owned(),
            prefix: self.prefix,
            delete_policy: self.delete_policy,
            page_size,
        })
    }
}

/// What AWS Secrets Manager accepts (peers.md §3).
fn capabilities(deletion: Deletion) -> Capabilities {
    Capabilities {
        readable: true,
        names: NameRules {
            max_len: MAX_NAME_LEN,
            alphabet: Alphabet::AsciiAlphanumericAnd(NAME_PUNCTUATION),
            leading_digit: true,
            reserved_prefixes: &[],
            case_insensitive: false,
            refuses_arn_suffix: true,
        },
        // SecretString and SecretBinary share one 65,536-byte limit.
        max_value_bytes: 65_536,
        // The 500,000-secret quota is per account and region, not per
        // prefix, so the sink cannot state a cap for its own target.
        max_secrets: None,
        text_only: false,
        // SecretString and SecretBinary are at least one byte long.
        empty_values: false,
        tags: true,
        deletion,
        batch: Batch::One,
        // PutSecretValue, UpdateSecret and friends share 50 TPS per
        // account and region (not adjustable).
        rate: RateBudget {
            max_in_flight: 10,
            limits: const { &[WriteLimit::per_second(50)] },
        },
    }
}

/// A prefix of secrets in one AWS account and region.
pub struct AwsSecretsManagerSink {
    client: Client,
    capabilities: Capabilities,
    endpoint: Option<String>,
    region: String,
    prefix: String,
    delete_policy: DeletePolicy,
    page_size: i32,
}

impl fmt::Debug for AwsSecretsManagerSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSecretsManagerSink")
            .field("target", &self.target())
            .field("delete_policy", &self.delete_policy)
            .finish_non_exhaustive()
    }
}

impl AwsSecretsManagerSink {
    /// Starts a builder.
    pub fn builder() -> AwsSecretsManagerSinkBuilder {
        AwsSecretsManagerSinkBuilder::default()
    }

    async fn create(&self, name: &str, value: &SecretValue) -> Result<Applied, Failure> {
        let tag = Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build();
        let request = self.client.create_secret().name(name).tags(tag);
        let request = match value.as_text() {
            Some(text) => request.secret_string(text),
            None => request.secret_binary(Blob::new(value.as_bytes())),
        };
        let output = request
            .send()
            .await
            .map_err(|e| Failure::classify("CreateSecret", name, Some(value), e))?;
        Ok(applied(output.version_id()))
    }

    async fn put_value(&self, name: &str, value: &SecretValue) -> Result<Applied, Failure> {
        let request = self.client.put_secret_value().secret_id(name);
        let request = match value.as_text() {
            Some(text) => request.secret_string(text),
            None => request.secret_binary(Blob::new(value.as_bytes())),
        };
        let output = request
            .send()
            .await
            .map_err(|e| Failure::classify("PutSecretValue", name, Some(value), e))?;
        Ok(applied(output.version_id()))
    }

    /// Brings back a secret scheduled for deletion, marks it as vsync's
    /// and writes the value: what a create of its name means.
    async fn restore_and_put(&self, name: &str, value: &SecretValue) -> Result<Applied, Failure> {
        let restored = self.client.restore_secret().secret_id(name).send().await;
        match restored.map_err(|e| Failure::classify("RestoreSecret", name, None, e)) {
            Ok(_) => {}
            // Purged since the create was refused: a delete without
            // recovery completes asynchronously, so for a moment AWS still
            // calls the name scheduled for deletion. Now it is free.
            Err(Failure::NotFound(_)) => return self.create(name, value).await,
            Err(other) => return Err(other),
        }
        let tag = Tag::builder().key(MANAGED_BY.0).value(MANAGED_BY.1).build();
        self.client
            .tag_resource()
            .secret_id(name)
            .tags(tag)
            .send()
            .await
            .map_err(|e| Failure::classify("TagResource", name, None, e))?;
        self.put_value(name, value).await
    }

    /// Creates `name`, or writes a new version when it exists after all
    /// (created since the inventory), or restores it when it is scheduled
    /// for deletion.
    async fn create_or_put(&self, name: &str, value: &SecretValue) -> Result<Applied, Failure> {
        match self.create(name, value).await {
            Err(Failure::ScheduledForDeletion(_)) => self.restore_and_put(name, value).await,
            Err(Failure::Exists(_)) => match self.put_value(name, value).await {
                Err(Failure::ScheduledForDeletion(_)) => self.restore_and_put(name, value).await,
                other => other,
            },
            other => other,
        }
    }

    /// Writes a new version of `name`, or creates it when it vanished since
    /// the inventory, or restores it when it was scheduled for deletion.
    async fn put_or_create(&self, name: &str, value: &SecretValue) -> Result<Applied, Failure> {
        match self.put_value(name, value).await {
            Err(Failure::ScheduledForDeletion(_)) => self.restore_and_put(name, value).await,
            Err(Failure::NotFound(_)) => match self.create(name, value).await {
                Err(Failure::ScheduledForDeletion(_)) => self.restore_and_put(name, value).await,
                other => other,
            },
            other => other,
        }
    }

    async fn delete(&self, name: &str) -> Result<Applied, Failure> {
        let request = self.client.delete_secret().secret_id(name);
        let request = match self.delete_policy {
            DeletePolicy::RecoveryWindow { days } => {
                request.recovery_window_in_days(i64::from(days))
            }
            DeletePolicy::ForceWithoutRecovery => request.force_delete_without_recovery(true),
        };
        match request.send().await {
            Ok(_) => Ok(Applied::default()),
            Err(e) => match Failure::classify("DeleteSecret", name, None, e) {
                // Gone, or already on its way out: what prune wanted.
                Failure::NotFound(_) | Failure::ScheduledForDeletion(_) => Ok(Applied::default()),
                other => Err(other),
            },
        }
    }
}

fn applied(version_id: Option<&str>) -> Applied {
    Applied {
        revision: version_id.map(str::to_owned),
    }
}

#[async_trait::async_trait]
impl Sink for AwsSecretsManagerSink {
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn target(&self) -> String {
        let mut target = format!("aws-secrets-manager:region={}", self.region);
        if !self.prefix.is_empty() {
            target.push_str(",prefix=");
            target.push_str(&self.prefix);
        }
        // Another endpoint (an emulator, another partition) is another
        // store of secrets, so it gets its own record.
        if let Some(endpoint) = &self.endpoint {
            target.push_str(",endpoint=");
            target.push_str(endpoint.trim_end_matches('/'));
        }
        target
    }

    fn map_name(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError> {
        let mut found = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let mut request = self
                .client
                .list_secrets()
                .max_results(self.page_size)
                .set_next_token(next_token.take());
            if !self.prefix.is_empty() {
                request = request.filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(&self.prefix)
                        .build(),
                );
            }
            let page = request.send().await.map_err(|e| {
                Failure::classify("ListSecrets", &self.prefix, None, e).into_error()
            })?;
            for entry in page.secret_list() {
                let Some(name) = entry.name().filter(|name| name.starts_with(&self.prefix)) else {
                    continue;
                };
                let revision = entry.secret_versions_to_stages().and_then(|versions| {
                    versions
                        .iter()
                        .find(|(_, stages)| stages.iter().any(|stage| stage == CURRENT))
                        .map(|(version, _)| version.clone())
                });
                let managed = entry.tags().iter().any(|tag| {
                    tag.key() == Some(MANAGED_BY.0) && tag.value() == Some(MANAGED_BY.1)
                });
                found.push(RemoteSecret {
                    name: name.to_owned(),
                    revision,
                    managed: Some(managed),
                    value: None,
                });
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn read(&self, name: &str) -> Result<Option<SecretValue>, SinkError> {
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(output) => Ok(match (output.secret_string(), output.secret_binary()) {
                (Some(text), _) => Some(SecretValue::from_text(text)),
                (None, Some(bytes)) => {
                    Some(SecretValue::new(Zeroizing::new(bytes.as_ref().to_vec())))
                }
                (None, None) => None,
            }),
            Err(e) => match Failure::classify("GetSecretValue", name, None, e) {
                // Absent, without a current value, or scheduled for
                // deletion: an application reading it gets nothing either.
                Failure::NotFound(_) | Failure::ScheduledForDeletion(_) => Ok(None),
                other => Err(other.into_error()),
            },
        }
    }

    async fn apply_one(&self, change: &Change<'_>) -> Result<Applied, SinkError> {
        match change {
            Change::Put {
                name,
                value,
                exists: false,
            } => self.create_or_put(name, value).await,
            Change::Put {
                name,
                value,
                exists: true,
            } => self.put_or_create(name, value).await,
            Change::Delete { name } => self.delete(name).await,
        }
        .map_err(Failure::into_error)
    }
}

/// A failed call, with the outcomes the write paths act on told apart.
#[derive(Debug)]
enum Failure {
    /// `ResourceNotFoundException`: no such secret (or no current value).
    NotFound(SinkError),
    /// `ResourceExistsException`: the name is taken.
    Exists(SinkError),
    /// `InvalidRequestException` about a secret scheduled for deletion.
    ScheduledForDeletion(SinkError),
    /// Anything else.
    Other(SinkError),
}

impl Failure {
    /// Sorts an SDK error into what the sink and the engine act on. The
    /// message names the operation and secret, the status and AWS's code
    /// and message, and never carries `value`.
    fn classify<E>(
        operation: &str,
        name: &str,
        value: Option<&SecretValue>,
        error: SdkError<E, HttpResponse>,
    ) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let subject = if name.is_empty() {
            operation.to_owned()
        } else {
            format!("{operation} {name}")
        };
        let Some(response) = error.raw_response() else {
            // No answer at all: connection refused, TLS, timeout; or a
            // request the SDK could not even build.
            let detail = scrub(&DisplayErrorContext(&error).to_string(), value);
            return Failure::Other(if is_credentials_failure(&error) {
                SinkError::Denied(format!("{subject}: {detail}"))
            } else if matches!(error, SdkError::ConstructionFailure(_)) {
                SinkError::Misconfigured(format!("{subject}: {detail}"))
            } else {
                SinkError::Unavailable(format!("{subject}: {detail}"))
            });
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|seconds| seconds.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let code = error.code().unwrap_or_default().to_owned();
        let message = scrub(error.message().unwrap_or_default(), value);
        let detail = match (code.is_empty(), message.is_empty()) {
            (true, _) => format!("{subject}: HTTP {status}"),
            (false, true) => format!("{subject}: HTTP {status} {code}"),
            (false, false) => format!("{subject}: HTTP {status} {code}: {message}"),
        };
        match refusal(Some(status), &code) {
            Refusal::Throttled => return Failure::Other(SinkError::RateLimited { retry_after }),
            Refusal::Denied => {
                return Failure::Other(SinkError::Denied(format!("{detail}; {DENIED_HINT}")));
            }
            Refusal::Unavailable => return Failure::Other(SinkError::Unavailable(detail)),
            Refusal::Other => {}
        }
        match code.as_str() {
            "ResourceNotFoundException" => Failure::NotFound(SinkError::NotFound(detail)),
            "ResourceExistsException" => Failure::Exists(SinkError::Rejected(detail)),
            "InvalidRequestException" if mentions_deletion(&message) => {
                Failure::ScheduledForDeletion(SinkError::Rejected(detail))
            }
            _ => Failure::Other(SinkError::Rejected(detail)),
        }
    }

    fn into_error(self) -> SinkError {
        match self {
            Failure::NotFound(error)
            | Failure::Exists(error)
            | Failure::ScheduledForDeletion(error)
            | Failure::Other(error) => error,
        }
    }
}

/// Replaces `value` in an error message, should the platform ever echo
/// it. Values under four bytes are left: they would match ordinary words
/// and tell nothing.
fn scrub(message: &str, value: Option<&SecretValue>) -> String {
    match value.and_then(SecretValue::as_text) {
        Some(text) if text.len() >= 4 && message.contains(text) => {
            message.replace(text, "<redacted>")
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::region("eu-west-1").credentials("AKIDEXAMPLE", "secret")
    }

    fn builder() -> AwsSecretsManagerSinkBuilder {
        AwsSecretsManagerSink::builder().access(access())
    }

    #[test]
    fn names_are_the_prefix_and_the_key() {
        let sink = builder().prefix("myapp/prod/").build().unwrap();
        assert_eq!(sink.map_name("DB_PASS"), "myapp/prod/DB_PASS");
        assert_eq!(
            sink.target(),
            "aws-secrets-manager:region=eu-west-1,prefix=myapp/prod/"
        );
        let plain = builder().build().unwrap();
        assert_eq!(plain.map_name("DB_PASS"), "DB_PASS");
        assert_eq!(plain.target(), "aws-secrets-manager:region=eu-west-1");
        let local = AwsSecretsManagerSink::builder()
            .access(access().endpoint("http://127.0.0.1:4566/"))
            .build()
            .unwrap();
        assert_eq!(
            local.target(),
            "aws-secrets-manager:region=eu-west-1,endpoint=http://127.0.0.1:4566"
        );
    }

    #[test]
    fn settings_are_checked_before_any_request() {
        let refused = |builder: AwsSecretsManagerSinkBuilder| match builder.build() {
            Err(SinkError::Misconfigured(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(
            refused(
                AwsSecretsManagerSink::builder().access(Access::default().credentials("a", "b"))
            )
            .contains("region")
        );
        assert!(
            refused(
                AwsSecretsManagerSink::builder()
                    .access(Access::region("eu-west-1").credentials("", "b"))
            )
            .contains("AWS_ACCESS_KEY_ID")
        );
        // No static key at all is fine: AWS's standard chain resolves one
        // on the first request.
        assert!(
            AwsSecretsManagerSink::builder()
                .access(Access::region("eu-west-1"))
                .build()
                .is_ok()
        );
        assert!(refused(builder().prefix("my app/")).contains("' '"));
        assert!(refused(builder().prefix("!negated")).contains("'!'"));
        assert!(
            refused(builder().delete_policy(DeletePolicy::RecoveryWindow { days: 6 }))
                .contains("7 to 30")
        );
        assert!(refused(builder().list_page_size(101)).contains("1 to 100"));
        assert!(
            refused(AwsSecretsManagerSink::builder().access(access().endpoint("localhost:4566")))
                .contains("not a URL")
        );
        assert!(
            builder()
                .delete_policy(DeletePolicy::RecoveryWindow { days: 7 })
                .build()
                .is_ok()
        );
    }

    #[test]
    fn the_delete_policy_is_declared() {
        let recoverable = builder().build().unwrap();
        assert_eq!(recoverable.capabilities().deletion, Deletion::Recoverable);
        let immediate = builder()
            .delete_policy(DeletePolicy::ForceWithoutRecovery)
            .build()
            .unwrap();
        assert_eq!(immediate.capabilities().deletion, Deletion::Immediate);
    }

    #[test]
    fn declared_names_follow_aws_rules() {
        let sink = builder().prefix("app/").build().unwrap();
        let rules = &sink.capabilities().names;
        assert!(rules.check(&sink.map_name("DB_PASS")).is_ok());
        assert!(rules.check(&sink.map_name("db.user@host+x=y-z")).is_ok());
        assert!(
            rules.check(&sink.map_name("token-abc123")).is_err(),
            "ARN-like suffix"
        );
        assert!(rules.check(&sink.map_name("DB PASS")).is_err());
        assert!(rules.check(&"a".repeat(513)).is_err());
        assert_eq!(rules.fold("Db_Pass"), "Db_Pass", "case-sensitive");
    }

    #[test]
    fn an_echoed_value_is_scrubbed() {
        let value = SecretValue::from_text("hunter2-secret");
        assert_eq!(
            scrub("bad value hunter2-secret here", Some(&value)),
            "bad value <redacted> here"
        );
        assert_eq!(scrub("nothing to hide", Some(&value)), "nothing to hide");
        assert_eq!(
            scrub("x marks", Some(&SecretValue::from_text("x"))),
            "x marks"
        );
    }
}
