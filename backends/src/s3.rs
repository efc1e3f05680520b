//! The S3-compatible store on `aws-sdk-s3`: path-style addressing, static
//! credentials, conditional writes (`If-None-Match: *` to create,
//! `If-Match` to replace) and the provider quirks of [`Provider`].
//!
//! Proxies: by default the HTTP client honours `HTTPS_PROXY`, `HTTP_PROXY`
//! and `NO_PROXY` (and their lowercase forms), as upstream promises for
//! every reader; [`Proxy::Url`] sets one explicitly.
//!
//! A provider that cannot do a conditional write gets
//! [`StoreError::ConditionalWritesUnsupported`], never a silent
//! unconditional overwrite.

mod provider;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_smithy_http_client::proxy::ProxyConfig;
use vsync_engine::store::{
    ETag, ListedObject, Object, ObjectInfo, PutCondition, Store, StoreError,
};
use zeroize::Zeroizing;

pub use provider::{Endpoint, EndpointMistake, IfMatchForm, Provider};

/// Which proxy the store's HTTP client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Proxy {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` from the environment.
    #[default]
    FromEnv,
    /// This proxy for every request, e.g. `http://proxy.corp:3128`.
    Url(String),
    /// Connect directly, whatever the environment says.
    Disabled,
}

/// Why an S3 store could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3ConfigError {
    /// A mistake in the endpoint, bucket or region.
    #[error(transparent)]
    Endpoint(#[from] EndpointMistake),
    /// The proxy URL cannot be used.
    #[error("proxy {url:?} is not usable: {reason}")]
    Proxy {
        /// The proxy URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Access key or secret missing.
    #[error("the S3 {0} is empty; set it in the profile or config")]
    MissingCredential(&'static str),
}

/// Builds an [`S3Store`]; every network client takes its endpoint, so tests
/// and self-hosted servers point it anywhere.
#[derive(Default)]
pub struct S3StoreBuilder {
    endpoint: String,
    region: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    provider: Option<Provider>,
    proxy: Proxy,
    list_page_size: Option<i32>,
}

impl fmt::Debug for S3StoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3StoreBuilder")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("credentials", &"<redacted>")
            .field("provider", &self.provider)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl S3StoreBuilder {
    /// The endpoint URL with scheme and without a trailing slash, e.g.
    /// `https://fsn1.your-objectstorage.com`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// The signing region (`auto` for R2).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// The bucket name.
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = bucket.into();
        self
    }

    /// Static credentials.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.access_key_id = access_key_id.into();
        self.secret_access_key = Zeroizing::new(secret_access_key.into());
        self
    }

    /// The provider preset; detected from the endpoint's host when unset.
    pub fn provider(mut self, provider: Provider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The proxy (default: from the environment).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    /// Keys per `ListObjectsV2` page (S3's default is 1000); tests lower it
    /// to exercise paging.
    pub fn list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = Some(size);
        self
    }

    /// Checks the settings and builds the store. No request is sent.
    pub fn build(self) -> Result<S3Store, S3ConfigError> {
        let (endpoint, provider) =
            provider::check(&self.endpoint, &self.bucket, &self.region, self.provider)?;
        if self.access_key_id.is_empty() {
            return Err(S3ConfigError::MissingCredential("access key id"));
        }
        if self.secret_access_key.is_empty() {
            return Err(S3ConfigError::MissingCredential("secret access key"));
        }
        let proxy = match &self.proxy {
            Proxy::FromEnv => ProxyConfig::from_env(),
            Proxy::Disabled => ProxyConfig::disabled(),
            Proxy::Url(url) => {
                ProxyConfig::all(url.as_str()).map_err(|e| S3ConfigError::Proxy {
                    url: url.clone(),
                    reason: e.to_string(),
                })?
            }
        };
        let credentials =
            vsync_connections::aws::static_key(&self.access_key_id, &self.secret_access_key, None);
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&endpoint.url)
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            // Flexible checksums (aws-chunked bodies with CRC trailers) are
            // what S3-compatible providers most often reject; send them
            // only where an operation requires them.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(300))
                    .build(),
            )
            .http_client(vsync_connections::aws::https_client(proxy))
            .build();
        Ok(S3Store {
            client: Client::from_conf(config),
            bucket: self.bucket,
            endpoint,
            provider,
            list_page_size: self.list_page_size,
        })
    }
}

/// A bucket on an S3-compatible object store.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    endpoint: Endpoint,
    provider: Provider,
    list_page_size: Option<i32>,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint.url)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Starts a builder.
    pub fn builder() -> S3StoreBuilder {
        S3StoreBuilder::default()
    }

    /// The provider preset in use.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn if_match(&self, etag: &ETag) -> String {
        match self.provider.if_match_form() {
            IfMatchForm::Quoted => etag.quoted(),
            IfMatchForm::Bare => etag.as_str().to_owned(),
        }
    }

    /// After a 412 to a quoted `If-Match`: true when the object still has
    /// the tag that was sent and the server spells its ETags without quotes
    /// — Ceph RGW's signature, where only the bare form matches. A real
    /// lost race shows a different tag.
    async fn rejects_quoted_if_match(&self, key: &str, sent: &ETag) -> bool {
        if self.provider.if_match_form() != IfMatchForm::Quoted {
            return false;
        }
        let Ok(output) = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        else {
            return false;
        };
        output
            .e_tag()
            .is_some_and(|raw| !raw.trim().starts_with('"') && ETag::new(raw) == *sent)
    }

    fn classify<E>(
        &self,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().unwrap_or_default().to_owned();
        let message = err.message().unwrap_or_default().to_owned();
        let detail = || match (status, code.is_empty()) {
            (Some(status), false) => format!("HTTP {status} {code}: {message}"),
            (Some(status), true) => format!("HTTP {status}"),
            (None, _) => aws_sdk_s3::error::DisplayErrorContext(&err).to_string(),
        };
        let where_ = || format!("s3://{}/{key} at {}", self.bucket, self.endpoint.url);
        if code == "NoSuchBucket" {
            return Failure::Error(StoreError::Misconfigured(format!(
                "bucket {:?} does not exist at {}; create it or fix the bucket name",
                self.bucket, self.endpoint.url
            )));
        }
        match (status, code.as_str()) {
            (Some(404), _) | (_, "NoSuchKey" | "NotFound") => Failure::NotFound,
            (Some(412), _) | (_, "PreconditionFailed" | "ConditionalRequestConflict") => {
                Failure::Error(StoreError::PreconditionFailed {
                    key: key.to_owned(),
                })
            }
            (
                _,
                "AuthorizationHeaderMalformed"
                | "PermanentRedirect"
                | "IllegalLocationConstraintException",
            )
            | (Some(301), _) => Failure::Error(StoreError::Misconfigured(format!(
                "{}: the region does not match the bucket's ({}); set the region the provider gives for this bucket (Cloudflare R2 uses auto)",
                where_(),
                detail()
            ))),
            (_, "RequestTimeTooSkewed") => Failure::Error(StoreError::Misconfigured(format!(
                "{}: this machine's clock and the server's differ by more than S3 allows (15 minutes; {}); set this clock right (NTP: `timedatectl set-ntp true`), or ask the provider about theirs",
                where_(),
                detail()
            ))),
            (_, "SignatureDoesNotMatch") => Failure::Error(StoreError::AccessDenied {
                key: where_(),
                detail: format!(
                    "{}; check the secret access key, and that the region matches the bucket",
                    detail()
                ),
            }),
            (Some(401 | 403), _) | (_, "AccessDenied" | "InvalidAccessKeyId") => {
                Failure::Error(StoreError::AccessDenied {
                    key: where_(),
                    detail: format!("{}; check the access key and its permissions", detail()),
                })
            }
            (Some(501), _) | (_, "NotImplemented") => Failure::NotImplemented(detail()),
            (Some(500..), _) | (None, _) => Failure::Error(StoreError::Unreachable(format!(
                "{}: {}",
                where_(),
                detail()
            ))),
            _ => Failure::Error(StoreError::Other(format!("{}: {}", where_(), detail()))),
        }
    }
}

/// Keeps the `Date` header of the response it sees: the server's clock.
#[derive(Debug, Clone, Default)]
struct ServerDate(std::sync::Arc<std::sync::Mutex<Option<std::time::SystemTime>>>);

impl ServerDate {
    fn take(&self) -> Option<std::time::SystemTime> {
        self.0.lock().expect("not poisoned").take()
    }
}

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "ServerDate"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date = context
            .response()
            .headers()
            .get("date")
            .and_then(|text| DateTime::from_str(text, DateTimeFormat::HttpDate).ok())
            .and_then(|date| std::time::SystemTime::try_from(date).ok());
        *self.0.lock().expect("not poisoned") = date;
        Ok(())
    }
}

/// A classified SDK error: "not found" and "not implemented" mean different
/// things to different operations.
enum Failure {
    NotFound,
    NotImplemented(String),
    Error(StoreError),
}

impl Failure {
    fn into_error(self, key: &str) -> StoreError {
        match self {
            Failure::NotFound => StoreError::Other(format!("{key}: not found")),
            Failure::NotImplemented(detail) => StoreError::Other(format!("{key}: {detail}")),
            Failure::Error(err) => err,
        }
    }
}

fn missing_etag(key: &str) -> StoreError {
    StoreError::Other(format!(
        "{key}: the server's response carries no ETag, which compare-and-swap needs"
    ))
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        format!(
            "s3://{} at {} ({} preset)",
            self.bucket, self.endpoint.url, self.provider
        )
    }

    async fn get_limited(&self, key: &str, max_bytes: u64) -> Result<Option<Object>, StoreError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                return match self.classify(key, err) {
                    Failure::NotFound => Ok(None),
                    other => Err(other.into_error(key)),
                };
            }
        };
        let etag = output
            .e_tag()
            .map(ETag::new)
            .ok_or_else(|| missing_etag(key))?;
        let too_large = || StoreError::TooLarge {
            key: key.to_owned(),
            limit: max_bytes,
        };
        if output
            .content_length()
            .is_some_and(|length| u64::try_from(length).map_or(true, |length| length > max_bytes))
        {
            return Err(too_large());
        }
        // The declared length may be missing or wrong: count what arrives.
        let mut body = Vec::new();
        let mut stream = output.body;
        while let Some(chunk) = stream.try_next().await.map_err(|err| {
            StoreError::Unreachable(format!(
                "s3://{}/{key}: the download broke off: {err}",
                self.bucket
            ))
        })? {
            if (body.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Object { body, etag }))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                etag: output
                    .e_tag()
                    .map(ETag::new)
                    .ok_or_else(|| missing_etag(key))?,
                size: output.content_length().unwrap_or_default().max(0) as u64,
            })),
            Err(err) => match self.classify(key, err) {
                Failure::NotFound => Ok(None),
                other => Err(other.into_error(key)),
            },
        }
    }

    async fn put(
        &self,
        key: &str,
        body: &[u8],
        condition: PutCondition,
    ) -> Result<ETag, StoreError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()));
        let request = match &condition {
            PutCondition::IfAbsent => request.if_none_match("*"),
            PutCondition::IfMatch(etag) => request.if_match(self.if_match(etag)),
        };
        match request.send().await {
            Ok(output) => output
                .e_tag()
                .map(ETag::new)
                .ok_or_else(|| missing_etag(key)),
            Err(err) => Err(match self.classify(key, err) {
                Failure::Error(StoreError::PreconditionFailed { .. })
                    if matches!(&condition, PutCondition::IfMatch(sent)
                        if self.rejects_quoted_if_match(key, sent).await) =>
                {
                    StoreError::Misconfigured(format!(
                        "{} answered 412 to If-Match on {key} although the object's ETag matches: this server compares ETags without their quotes (Ceph RGW, which Hetzner Object Storage runs). Nothing was overwritten. Force the hetzner preset for this env: `\"provider\": \"hetzner\"` in the s3 block of its config, which `vsync init <env> --provider=hetzner` (or a profile added with --provider=hetzner) writes",
                        self.describe()
                    ))
                }
                Failure::NotImplemented(detail) => StoreError::ConditionalWritesUnsupported(
                    format!("{} rejected a conditional PUT: {detail}", self.describe()),
                ),
                // If-Match on a key that vanished: S3 answers 404.
                Failure::NotFound => StoreError::PreconditionFailed {
                    key: key.to_owned(),
                },
                other => other.into_error(key),
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        let mut objects = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_max_keys(self.list_page_size)
                .set_continuation_token(continuation.take())
                .send()
                .await
                .map_err(|err| self.classify(prefix, err).into_error(prefix))?;
            objects.extend(output.contents().iter().filter_map(|object| {
                Some(ListedObject {
                    key: object.key()?.to_owned(),
                    size: object.size().unwrap_or_default().max(0) as u64,
                })
            }));
            match output.next_continuation_token() {
                Some(token) if output.is_truncated() == Some(true) => {
                    continuation = Some(token.to_owned());
                }
                _ => break,
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn server_time(&self) -> Result<Option<std::time::SystemTime>, StoreError> {
        // Any answer carries the server's `Date`, a refusal included: a
        // read-only key that may not list still shows the clock.
        let date = ServerDate::default();
        let sent = self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .customize()
            .interceptor(date.clone())
            .send()
            .await;
        match (date.take(), sent) {
            (Some(date), _) => Ok(Some(date)),
            (None, Ok(_)) => Ok(None),
            (None, Err(err)) => Err(self.classify("", err).into_error("the bucket")),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match self.classify(key, err) {
                Failure::NotFound => Ok(()),
                other => Err(other.into_error(key)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret_key() {
        let builder = S3Store::builder()
            .endpoint("http://127.0.0.1:9")
            .region("us-east-1")
            .bucket("acme")
            .credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-very-secret");
        assert!(!format!("{builder:?}").contains("very-secret"));
        let store = builder.build().unwrap();
        assert!(!format!("{store:?}").contains("very-secret"));
        assert_eq!(store.provider(), Provider::Custom);
    }

    #[test]
    fn build_refuses_endpoint_mistakes_and_missing_credentials() {
        let base = || {
            S3Store::builder()
                .region("us-east-1")
                .bucket("acme")
                .credentials("AKID", "secret")
        };
        let err = base().endpoint("http://127.0.0.1:9/").build().unwrap_err();
        assert!(err.to_string().contains("trailing slash"), "{err}");
        let err = base()
            .endpoint("http://127.0.0.1:9")
            .credentials("", "secret")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("access key id"), "{err}");
    }
}
