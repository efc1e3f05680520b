//! AWS Secrets Manager as a source: `ListSecrets` pages, then the values
//! 20 at a time with `BatchGetSecretValue` — never one call per secret —
//! on the connection the sink uses ([`vsync_connections::aws`]: the same
//! client settings, credentials and reading of failures).
//!
//! **Listing.** `ListSecrets` with `MaxResults` 100 (AWS's maximum),
//! following `NextToken`. With a prefix, AWS's `name` filter narrows the
//! listing on the server, and names are checked against the prefix again
//! here, so a server that matches more loosely cannot widen the import.
//! Secrets scheduled for deletion are not listed (AWS's default), so to an
//! import they are deleted, as they are to an application. A secret's
//! revision is the version id carrying the `AWSCURRENT` label — every new
//! value moves the label to a new version — and its update time the
//! `LastChangedDate`. A secret with no current version holds no value and
//! is not listed. AWS has no disabled state: every listed secret is
//! enabled.
//!
//! **Reading.** `BatchGetSecretValue` with the names of up to 20 secrets,
//! following its `NextToken` should AWS page the answer. A secret the
//! answer reports as not found, or as scheduled for deletion, was deleted
//! since the listing and is left out; any other per-secret error fails the
//! read, naming the secret.
//!
//! **Values.** `SecretString` is text; `SecretBinary` is bytes, which the
//! engine writes to an asset file when `.env` cannot carry them. With
//! [`AwsSecretsManagerSourceBuilder::split_json`], a `SecretString` that
//! holds a JSON object becomes one value per top-level field, named after
//! the field (strings as they are, other values as compact JSON); any
//! other text is imported whole. A binary value is never split.
//!
//! **Hostile answers.** Every answer is cut off past [`MAX_ANSWER_BYTES`]
//! while the SDK reads it, before it is buffered whole. Names outside AWS's
//! grammar, a page token given twice, more pages than an account can fill,
//! and values for secrets that were not asked for are refused.
//!
//! **Errors.** The SDK's own retries are off: the engine paces and retries
//! for every platform. Throttling becomes [`SinkError::RateLimited`], 5xx
//! and connection failures [`SinkError::Unavailable`], refused credentials
//! or permissions (which AWS answers with 400 and a code) and credentials
//! that cannot be found [`SinkError::Denied`], naming the variables to fix.
//! Messages carry the operation, the secret, the status and AWS's code and
//! message on one line, never a value.

use std::collections::HashSet;
use std::hash::BuildHasher;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_secretsmanager::error::{
    BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError,
};
use aws_sdk_secretsmanager::operation::batch_get_secret_value::BatchGetSecretValueOutput;
use aws_sdk_secretsmanager::primitives::DateTimeFormat;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};
use aws_smithy_types::body::SdkBody;
use http_body_util::{LengthLimitError, Limited};
/// Where and as whom the source reaches Secrets Manager, shared with the AWS sink.
pub use vsync_connections::aws::Access;
use vsync_connections::aws::{
    DENIED_HINT, MAX_SECRET_NAME_LEN, Refusal, is_credentials_failure, is_secret_name,
    mentions_deletion, refusal,
};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{RateBudget, SecretValue, SinkError, WriteLimit, one_line_message};
use vsync_engine::source::{ListedSecret, ReadBatch, Source, SourceCapabilities, SourceValue};

/// The staging label of the version applications read.
const CURRENT: &str = "AWSCURRENT";
/// `ListSecrets` answers at most 100 secrets a page.
const PAGE_SIZE: i32 = 100;
/// `BatchGetSecretValue` takes at most 20 secrets a call.
const BATCH: usize = 20;
/// An account holds at most 500,000 secrets a region: 5,000 full pages.
/// AWS may answer short pages, so twice that; past it the server is
/// paging forever.
const MAX_LIST_PAGES: usize = 10_000;
/// The largest answer read: 20 values of at most 65,536 bytes each, with
/// JSON's escaping (up to 6 bytes a byte) or base64, and their metadata,
/// fit well within it; a `ListSecrets` page of 100 entries far within.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Builds an [`AwsSecretsManagerSource`]; [`AwsSecretsManagerSource::builder`].
#[derive(Default)]
pub struct AwsSecretsManagerSourceBuilder {
    access: Access,
    prefix: String,
    split_json: bool,
}

impl AwsSecretsManagerSourceBuilder {
    /// The region, the endpoint and the credentials; the region is
    /// required.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Only secrets whose names start with `prefix` are listed (AWS's
    /// `name` filter, on the server). The names keep the prefix; the
    /// import's `--prefix` strips it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Whether a secret holding a JSON object becomes one value per field
    /// (default: off, every secret is one value).
    pub fn split_json(mut self, split: bool) -> Self {
        self.split_json = split;
        self
    }

    /// Checks the settings and builds the source. No request is sent.
    pub fn build(self) -> Result<AwsSecretsManagerSource, SinkError> {
        let misconfigured = |message: String| Err(SinkError::Misconfigured(message));
        let shared = self
            .access
            .sdk_config("pass --set region=<region> or set AWS_REGION")?;
        if !self.prefix.is_empty() && !is_secret_name(&self.prefix) {
            return misconfigured(format!(
                "the AWS name prefix {} is not the start of a secret name: at most {MAX_SECRET_NAME_LEN} ASCII letters, digits and /_+=.@-",
                shown(&self.prefix)
            ));
        }
        let config = aws_sdk_secretsmanager::config::Builder::from(&shared)
            .interceptor(CapAnswers)
            .build();
        Ok(AwsSecretsManagerSource {
            client: Client::from_conf(config),
            caps: SourceCapabilities {
                metadata: true,
                binary: true,
                batch: BATCH,
                // BatchGetSecretValue: 100 requests a second per account
                // and region, not adjustable (ListSecrets has its own 100).
                rate: RateBudget {
                    max_in_flight: 10,
                    limits: const { &[WriteLimit::per_second(100)] },
                },
            },
            endpoint: self.access.endpoint_url().map(str::to_owned),
            region: self.access.region_name().to_owned(),
            prefix: self.prefix,
            split_json: self.split_json,
        })
    }
}

/// The secrets of one AWS account and region (under a name prefix).
pub struct AwsSecretsManagerSource {
    client: Client,
    caps: SourceCapabilities,
    endpoint: Option<String>,
    region: String,
    prefix: String,
    split_json: bool,
}

impl AwsSecretsManagerSource {
    /// Starts a builder.
    pub fn builder() -> AwsSecretsManagerSourceBuilder {
        AwsSecretsManagerSourceBuilder::default()
    }
}

#[async_trait::async_trait]
impl Source for AwsSecretsManagerSource {
    fn capabilities(&self) -> &SourceCapabilities {
        &self.caps
    }

    /// `aws-secrets-manager:region=…[,prefix=…][,endpoint=…][,split-json]`.
    /// Splitting is part of it: the same secrets give other keys with it,
    /// so the record of imports without it must not vouch for them.
    fn origin(&self) -> String {
        let mut origin = format!("aws-secrets-manager:region={}", self.region);
        if !self.prefix.is_empty() {
            origin.push_str(",prefix=");
            origin.push_str(&self.prefix);
        }
        if let Some(endpoint) = &self.endpoint {
            origin.push_str(",endpoint=");
            origin.push_str(endpoint.trim_end_matches('/'));
        }
        if self.split_json {
            origin.push_str(",split-json");
        }
        origin
    }

    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
        let mut listed = Vec::new();
        let mut names = HashSet::new();
        let mut pages = Pages::new("ListSecrets", MAX_LIST_PAGES);
        let mut token = None;
        loop {
            let mut request = self
                .client
                .list_secrets()
                .max_results(PAGE_SIZE)
                .set_next_token(token);
            if !self.prefix.is_empty() {
                request = request.filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(&self.prefix)
                        .build(),
                );
            }
            let page = request
                .send()
                .await
                .map_err(|error| failure("ListSecrets", error))?;
            for entry in page.secret_list.unwrap_or_default() {
                let Some(secret) = listed_secret(entry, &self.prefix)? else {
                    continue;
                };
                if !names.insert(secret.name.clone()) {
                    // Paging while secrets are created can show one twice;
                    // a listing taken again will not.
                    return Err(SinkError::Unavailable(format!(
                        "ListSecrets listed {} twice",
                        secret.name
                    )));
                }
                listed.push(secret);
            }
            match pages.next(page.next_token)? {
                Some(next) => token = Some(next),
                None => return Ok(listed),
            }
        }
    }

    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
        if secrets.is_empty() {
            // AWS refuses an empty SecretIdList.
            return Ok(ReadBatch::default());
        }
        if secrets.len() > BATCH {
            return Err(SinkError::Misconfigured(format!(
                "BatchGetSecretValue takes at most {BATCH} secrets, asked for {}",
                secrets.len()
            )));
        }
        let names: Vec<String> = secrets.iter().map(|secret| secret.name.clone()).collect();
        let mut gathered = Gathered::new(&names, self.split_json);
        // Every page brings at least one of the secrets asked for.
        let mut pages = Pages::new("BatchGetSecretValue", names.len() + 1);
        let mut token = None;
        loop {
            let page = self
                .client
                .batch_get_secret_value()
                .set_secret_id_list(Some(names.clone()))
                .set_next_token(token)
                .send()
                .await
                .map_err(|error| failure("BatchGetSecretValue", error))?;
            match pages.next(gathered.page(page)?)? {
                Some(next) => token = Some(next),
                None => return gathered.finish(),
            }
        }
    }
}

/// The secret a `ListSecrets` entry stands for: `None` when it is outside
/// the prefix or has no current value; an error for a name AWS would not
/// allow (a hostile or broken endpoint).
fn listed_secret(entry: SecretListEntry, prefix: &str) -> Result<Option<ListedSecret>, SinkError> {
    let name = entry.name.unwrap_or_default();
    if !is_secret_name(&name) {
        return Err(SinkError::Rejected(format!(
            "ListSecrets listed a secret named {}, which is no AWS secret name",
            shown(&name)
        )));
    }
    if !name.starts_with(prefix) {
        return Ok(None);
    }
    let revision = entry.secret_versions_to_stages.and_then(|versions| {
        versions
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|stage| stage == CURRENT))
            .map(|(version, _)| version)
    });
    let Some(revision) = revision else {
        return Ok(None);
    };
    Ok(Some(ListedSecret {
        name,
        revision: Some(revision),
        updated_at: entry
            .last_changed_date
            .and_then(|date| date.fmt(DateTimeFormat::DateTime).ok()),
        enabled: true,
        content_type: None,
    }))
}

/// What one read gathers over its pages.
struct Gathered<'a> {
    asked: &'a [String],
    answered: HashSet<String>,
    split_json: bool,
    batch: ReadBatch,
}

impl<'a> Gathered<'a> {
    fn new(asked: &'a [String], split_json: bool) -> Self {
        Gathered {
            asked,
            answered: HashSet::new(),
            split_json,
            batch: ReadBatch::default(),
        }
    }

    /// Takes one page's values and per-secret errors; answers its token.
    fn page(&mut self, page: BatchGetSecretValueOutput) -> Result<Option<String>, SinkError> {
        for entry in page.secret_values.unwrap_or_default() {
            let name = self.answer_for(entry.name.as_deref().unwrap_or_default())?;
            let value = match (entry.secret_string, entry.secret_binary) {
                (Some(text), _) => Value::Text(Zeroizing::new(text)),
                (None, Some(blob)) => Value::Binary(Zeroizing::new(blob.into_inner())),
                (None, None) => {
                    return Err(SinkError::Rejected(format!(
                        "BatchGetSecretValue answered {name} without SecretString or SecretBinary"
                    )));
                }
            };
            self.batch
                .values
                .extend(values(&name, value, self.split_json));
        }
        for error in page.errors.unwrap_or_default() {
            let name = self.answer_for(error.secret_id.as_deref().unwrap_or_default())?;
            let code = error.error_code.unwrap_or_default();
            let message = one_line_message(&error.message.unwrap_or_default());
            if code == "ResourceNotFoundException"
                || (code == "InvalidRequestException" && mentions_deletion(&message))
            {
                // Deleted, or scheduled for deletion, since the listing.
                continue;
            }
            let detail = format!("BatchGetSecretValue {name}: {code}: {message}");
            return Err(match refusal(None, &code) {
                Refusal::Throttled => SinkError::RateLimited { retry_after: None },
                Refusal::Denied => SinkError::Denied(format!("{detail}; {DENIED_HINT}")),
                Refusal::Unavailable => SinkError::Unavailable(detail),
                Refusal::Other => SinkError::Rejected(detail),
            });
        }
        Ok(page.next_token)
    }

    /// The asked-for name an entry of the answer is about, once.
    fn answer_for(&mut self, name: &str) -> Result<String, SinkError> {
        if !self.asked.iter().any(|asked| asked == name) {
            return Err(SinkError::Rejected(format!(
                "BatchGetSecretValue answered for {}, which was not asked for",
                shown(name)
            )));
        }
        if !self.answered.insert(name.to_owned()) {
            return Err(SinkError::Rejected(format!(
                "BatchGetSecretValue answered for {name} twice"
            )));
        }
        Ok(name.to_owned())
    }

    /// The values read, once every secret asked for was answered for.
    fn finish(self) -> Result<ReadBatch, SinkError> {
        let missing: Vec<&str> = self
            .asked
            .iter()
            .filter(|name| !self.answered.contains(*name))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            Ok(self.batch)
        } else {
            Err(SinkError::Unavailable(format!(
                "BatchGetSecretValue said nothing of {}",
                missing.join(", ")
            )))
        }
    }
}

/// A secret's value as AWS holds it.
enum Value {
    Text(Zeroizing<String>),
    Binary(Zeroizing<Vec<u8>>),
}

/// The values one secret gives: itself, or with `split_json` each
/// top-level field of a JSON object (strings as they are, other values as
/// their compact JSON text).
fn values(name: &str, value: Value, split_json: bool) -> Vec<SourceValue> {
    let whole = |value: SecretValue| SourceValue {
        secret: name.to_owned(),
        name: name.to_owned(),
        value,
    };
    let mut text = match value {
        Value::Binary(bytes) => return vec![whole(SecretValue::new(bytes))],
        Value::Text(text) => text,
    };
    let fields = split_json
        .then(|| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).ok())
        .flatten();
    let Some(fields) = fields else {
        // Moved, not copied: the one buffer is wiped when the value goes.
        let bytes = std::mem::take(&mut *text).into_bytes();
        return vec![whole(SecretValue::new(Zeroizing::new(bytes)))];
    };
    fields
        .into_iter()
        .map(|(field, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            SourceValue {
                secret: name.to_owned(),
                name: field,
                value: SecretValue::new(Zeroizing::new(text.into_bytes())),
            }
        })
        .collect()
}

/// The page tokens of one paged call: a token given twice would page
/// forever, and so would a server that never stops. Tokens are kept as
/// keyed hashes, so long ones cost no memory.
struct Pages {
    operation: &'static str,
    seen: HashSet<u64>,
    hasher: std::collections::hash_map::RandomState,
    left: usize,
}

impl Pages {
    fn new(operation: &'static str, max: usize) -> Self {
        Pages {
            operation,
            seen: HashSet::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            left: max,
        }
    }

    /// The token to ask for next, or `None` once the last page is in.
    fn next(&mut self, token: Option<String>) -> Result<Option<String>, SinkError> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Ok(None);
        };
        if !self.seen.insert(self.hasher.hash_one(&token)) {
            return Err(SinkError::Rejected(format!(
                "{} gave a page token it gave before; its paging would never end",
                self.operation
            )));
        }
        self.left = self.left.saturating_sub(1);
        if self.left == 0 {
            return Err(SinkError::Rejected(format!(
                "{} is still paging after {} pages; no account holds that much",
                self.operation,
                self.seen.len()
            )));
        }
        Ok(Some(token))
    }
}

/// Cuts every answer off past [`MAX_ANSWER_BYTES`] while the SDK reads
/// it, so a hostile endpoint cannot make it buffer without bound.
#[derive(Debug)]
struct CapAnswers;

impl Intercept for CapAnswers {
    fn name(&self) -> &'static str {
        "CapAnswers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.response_mut().body_mut();
        let whole = std::mem::replace(body, SdkBody::taken());
        *body = SdkBody::from_body_1_x(Limited::new(whole, MAX_ANSWER_BYTES));
        Ok(())
    }
}

/// Reads a failed call into the taxonomy the engine acts on.
fn failure<E>(
    operation: &str,
    error: SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(inner) = cause {
        if inner.is::<LengthLimitError>() {
            return SinkError::Rejected(format!(
                "{operation}: the answer is over {MAX_ANSWER_BYTES} bytes; refused"
            ));
        }
        cause = inner.source();
    }
    let Some(response) = error.raw_response() else {
        // No answer: connection refused, TLS, timeout, no credentials.
        let detail = one_line_message(&DisplayErrorContext(&error).to_string());
        return if is_credentials_failure(&error) {
            SinkError::Denied(format!("{operation}: {detail}; {DENIED_HINT}"))
        } else if matches!(error, SdkError::ConstructionFailure(_)) {
            SinkError::Misconfigured(format!("{operation}: {detail}"))
        } else {
            SinkError::Unavailable(format!("{operation}: {detail}"))
        };
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|seconds| seconds.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    let code = error.code().unwrap_or_default().to_owned();
    let message = one_line_message(error.message().unwrap_or_default());
    let detail = match (code.is_empty(), message.is_empty()) {
        (true, _) => format!("{operation}: HTTP {status}"),
        (false, true) => format!("{operation}: HTTP {status} {code}"),
        (false, false) => format!("{operation}: HTTP {status} {code}: {message}"),
    };
    match refusal(Some(status), &code) {
        Refusal::Throttled => SinkError::RateLimited { retry_after },
        Refusal::Denied => SinkError::Denied(format!("{detail}; {DENIED_HINT}")),
        Refusal::Unavailable => SinkError::Unavailable(detail),
        Refusal::Other => SinkError::Rejected(detail),
    }
}

/// A name from the platform or the settings, quoted and cut short for a
/// message: it may be anything.
fn shown(name: &str) -> String {
    match name.char_indices().nth(80) {
        Some((cut, _)) => format!("{:?}…", &name[..cut]),
        None => format!("{name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use aws_sdk_secretsmanager::primitives::Blob;
    use aws_sdk_secretsmanager::types::{ApiErrorType, SecretValueEntry};

    use super::*;

    /// A server that answers each request with the next of `answers`
    /// (status line, headers and body, verbatim): a hostile endpoint.
    fn hostile(answers: Vec<Vec<u8>>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                // The client hangs up on an answer it refuses mid-way.
                let _ = reader.into_inner().write_all(&answer);
            }
        });
        endpoint
    }

    fn json_answer(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn source_at(endpoint: &str) -> AwsSecretsManagerSource {
        AwsSecretsManagerSource::builder()
            .access(
                Access::region("us-east-1")
                    .endpoint(endpoint)
                    .credentials("AKIDEXAMPLE", "secret"),
            )
            .build()
            .unwrap()
    }

    fn entry(name: &str) -> String {
        format!(r#"{{"Name":"{name}","SecretVersionsToStages":{{"v1":["AWSCURRENT"]}}}}"#)
    }

    #[tokio::test]
    async fn a_page_token_given_twice_is_refused() {
        let endpoint = hostile(vec![
            json_answer(&format!(
                r#"{{"SecretList":[{}],"NextToken":"t1"}}"#,
                entry("A")
            )),
            json_answer(&format!(
                r#"{{"SecretList":[{}],"NextToken":"t1"}}"#,
                entry("B")
            )),
        ]);
        match source_at(&endpoint).list().await {
            Err(SinkError::Rejected(message)) => {
                assert!(message.contains("page token it gave before"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_answer_past_the_cap_is_refused_while_it_is_read() {
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            MAX_ANSWER_BYTES + 1
        )
        .into_bytes();
        answer.extend(std::iter::repeat_n(b' ', MAX_ANSWER_BYTES + 1));
        let endpoint = hostile(vec![answer]);
        match source_at(&endpoint).list().await {
            Err(SinkError::Rejected(message)) => {
                assert!(message.contains("over 16777216 bytes"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_name_aws_would_not_allow_is_refused_quoted() {
        let endpoint = hostile(vec![json_answer(&format!(
            r#"{{"SecretList":[{}]}}"#,
            entry(r"DB\u001b[31m\nPASS")
        ))]);
        match source_at(&endpoint).list().await {
            Err(SinkError::Rejected(message)) => {
                assert!(message.contains(r#""DB\u{1b}[31m\nPASS""#), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn listed(name: &str, stages: &[(&str, &str)]) -> SecretListEntry {
        let mut versions: HashMap<String, Vec<String>> = HashMap::new();
        for (version, stage) in stages {
            versions
                .entry((*version).to_owned())
                .or_default()
                .push((*stage).to_owned());
        }
        SecretListEntry::builder()
            .name(name)
            .set_secret_versions_to_stages(Some(versions))
            .last_changed_date(aws_sdk_secretsmanager::primitives::DateTime::from_secs(
                1_700_000_000,
            ))
            .build()
    }

    #[test]
    fn a_listing_entry_gives_its_current_version_within_the_prefix() {
        let secret = listed_secret(
            listed("app/DB", &[("old", "AWSPREVIOUS"), ("new", "AWSCURRENT")]),
            "app/",
        )
        .unwrap()
        .unwrap();
        assert_eq!(secret.name, "app/DB");
        assert_eq!(secret.revision.as_deref(), Some("new"));
        assert_eq!(secret.updated_at.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert!(secret.enabled);
        // A looser server match is narrowed again; no current value, no
        // secret to import.
        assert_eq!(
            listed_secret(listed("apple", &[("v", "AWSCURRENT")]), "app/").unwrap(),
            None
        );
        assert_eq!(
            listed_secret(listed("app/NEW", &[("v", "AWSPENDING")]), "app/").unwrap(),
            None
        );
        assert!(listed_secret(listed("", &[("v", "AWSCURRENT")]), "").is_err());
    }

    fn value(name: &str, text: &str) -> SecretValueEntry {
        SecretValueEntry::builder()
            .name(name)
            .secret_string(text)
            .build()
    }

    fn error(id: &str, code: &str, message: &str) -> ApiErrorType {
        ApiErrorType::builder()
            .secret_id(id)
            .error_code(code)
            .message(message)
            .build()
    }

    fn page(values: Vec<SecretValueEntry>, errors: Vec<ApiErrorType>) -> BatchGetSecretValueOutput {
        BatchGetSecretValueOutput::builder()
            .set_secret_values(Some(values))
            .set_errors(Some(errors))
            .build()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn secrets_deleted_since_the_listing_are_left_out_and_other_errors_name_the_secret() {
        let asked = names(&["A", "GONE", "LEAVING", "LOCKED"]);
        let mut gathered = Gathered::new(&asked, false);
        let next = gathered
            .page(page(
                vec![value("A", "a-value")],
                vec![
                    error("GONE", "ResourceNotFoundException", "not found"),
                    error(
                        "LEAVING",
                        "InvalidRequestException",
                        "You can't perform this operation on the secret because it was marked for deletion.",
                    ),
                ],
            ))
            .unwrap();
        assert_eq!(next, None);
        let mut denied = Gathered::new(&asked, false);
        match denied.page(page(
            vec![],
            vec![error("LOCKED", "AccessDeniedException", "not yours")],
        )) {
            Err(SinkError::Denied(message)) => {
                assert!(
                    message.contains("LOCKED") && message.contains("AWS_ACCESS_KEY_ID"),
                    "{message}"
                )
            }
            other => panic!("expected Denied, got {other:?}"),
        }
        let mut broken = Gathered::new(&asked, false);
        match broken.page(page(
            vec![],
            vec![error("LOCKED", "DecryptionFailure", "KMS says no")],
        )) {
            Err(SinkError::Rejected(message)) => assert_eq!(
                message,
                "BatchGetSecretValue LOCKED: DecryptionFailure: KMS says no"
            ),
            other => panic!("expected Rejected, got {other:?}"),
        }
        // LOCKED was never answered for: the read is incomplete.
        match gathered.finish() {
            Err(SinkError::Unavailable(message)) => {
                assert!(message.ends_with("LOCKED"), "{message}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn answers_for_secrets_not_asked_for_or_twice_are_refused() {
        let asked = names(&["A"]);
        let mut gathered = Gathered::new(&asked, false);
        let error = gathered
            .page(page(vec![value("B", "b")], vec![]))
            .unwrap_err();
        assert!(
            error.to_string().contains("\"B\", which was not asked for"),
            "{error}"
        );
        let mut gathered = Gathered::new(&asked, false);
        let error = gathered
            .page(page(vec![value("A", "1"), value("A", "2")], vec![]))
            .unwrap_err();
        assert!(error.to_string().contains("A twice"), "{error}");
    }

    #[test]
    fn json_objects_split_on_request_and_nothing_else_does() {
        let asked = names(&["DB", "LIST", "BLOB"]);
        let mut gathered = Gathered::new(&asked, true);
        gathered
            .page(page(
                vec![
                    value(
                        "DB",
                        r#"{"user":"app","pass":"p\"w","port":5432,"tls":{"ca": "x"},"none":null}"#,
                    ),
                    value("LIST", r#"["a", "b"]"#),
                    SecretValueEntry::builder()
                        .name("BLOB")
                        .secret_binary(Blob::new(br#"{"a":"b"}"#.to_vec()))
                        .build(),
                ],
                vec![],
            ))
            .unwrap();
        let mut got: Vec<(String, String, Vec<u8>)> = gathered
            .finish()
            .unwrap()
            .values
            .into_iter()
            .map(|v| (v.secret, v.name, v.value.as_bytes().to_vec()))
            .collect();
        got.sort();
        let want = |secret: &str, name: &str, value: &[u8]| {
            (secret.to_owned(), name.to_owned(), value.to_vec())
        };
        assert_eq!(
            got,
            [
                want("BLOB", "BLOB", br#"{"a":"b"}"#),
                want("DB", "none", b"null"),
                want("DB", "pass", b"p\"w"),
                want("DB", "port", b"5432"),
                want("DB", "tls", br#"{"ca":"x"}"#),
                want("DB", "user", b"app"),
                want("LIST", "LIST", br#"["a", "b"]"#),
            ]
        );
    }

    #[test]
    fn paging_stops_at_a_repeated_token_or_the_page_limit() {
        let mut pages = Pages::new("ListSecrets", 3);
        assert_eq!(pages.next(Some("a".into())).unwrap().as_deref(), Some("a"));
        assert_eq!(pages.next(Some(String::new())).unwrap(), None);
        assert_eq!(pages.next(None).unwrap(), None);
        assert!(pages.next(Some("a".into())).is_err());
        let mut pages = Pages::new("ListSecrets", 3);
        pages.next(Some("a".into())).unwrap();
        pages.next(Some("b".into())).unwrap();
        let error = pages.next(Some("c".into())).unwrap_err();
        assert!(error.to_string().contains("after 3 pages"), "{error}");
    }

    #[test]
    fn settings_are_checked_before_any_request() {
        let refused = |builder: AwsSecretsManagerSourceBuilder| match builder.build() {
            Err(SinkError::Misconfigured(message)) => message,
            Err(other) => other.to_string(),
            Ok(_) => panic!("expected a refusal"),
        };
        let in_region = || Access::region("eu-west-1");
        let with = |access: Access| AwsSecretsManagerSource::builder().access(access);
        let base = || with(in_region());
        assert!(refused(AwsSecretsManagerSource::builder()).contains("AWS_REGION"));
        assert!(
            refused(with(in_region().credentials("AKID", ""))).contains("AWS_SECRET_ACCESS_KEY")
        );
        assert!(refused(base().prefix("my app/")).contains("\"my app/\""));
        assert!(refused(with(in_region().endpoint("localhost:4566"))).contains("not a URL"));
        assert!(refused(with(in_region().endpoint("http://sm.example"))).contains("https"));
        let source = base().prefix("app/").split_json(true).build().unwrap();
        assert_eq!(
            source.origin(),
            "aws-secrets-manager:region=eu-west-1,prefix=app/,split-json"
        );
        assert_eq!(source.capabilities().batch, 20);
    }
}
