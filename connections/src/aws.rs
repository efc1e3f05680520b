//! AWS: the SDK setup the S3 store, the Secrets Manager sink and the AWS
//! source share — the HTTPS client (rustls on aws-lc, with the caller's
//! proxy choice), the credentials (a static key, or AWS's standard chain),
//! the client settings every Secrets Manager client uses, and how a failed
//! call reads (AWS's JSON protocols answer refused credentials and
//! throttling with HTTP 400 and a code, so the status alone misleads).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{Builder as HttpClientBuilder, ConnectorBuilder, tls};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::error::display::DisplayErrorContext;
use vsync_engine::sink::{SinkError, require_secure_transport};
use zeroize::Zeroizing;

/// The SDK's HTTPS client on rustls with aws-lc (one TLS stack for every
/// AWS client), sending through `proxy` rather than the SDK's own
/// environment-only choice.
pub fn https_client(proxy: ProxyConfig) -> SharedHttpClient {
    HttpClientBuilder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(proxy.clone()));
        connector.build()
    })
}

/// A static access key: the key id, its secret and, for temporary
/// credentials, the session token.
pub fn static_key(
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        access_key_id,
        secret_access_key,
        session_token.map(str::to_owned),
        None,
        "vsync",
    ))
}

/// AWS's standard credential chain, as the AWS CLI resolves it: the
/// environment, `AWS_PROFILE` / the default profile of `~/.aws/config` and
/// `~/.aws/credentials` (static keys, SSO, `credential_process`, assumed
/// roles), web identity, then container and instance roles.
pub fn standard_chain(region: Region) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(StandardChain {
        region,
        chain: tokio::sync::OnceCell::new(),
    })
}

/// The standard chain, built on the first request because building it is
/// async and reads files; the SDK caches what it resolves until it expires.
#[derive(Debug)]
struct StandardChain {
    region: Region,
    chain: tokio::sync::OnceCell<DefaultCredentialsChain>,
}

impl ProvideCredentials for StandardChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let chain = self
                .chain
                .get_or_init(|| {
                    DefaultCredentialsChain::builder()
                        .region(self.region.clone())
                        .build()
                })
                .await;
            chain.provide_credentials().await.map_err(|error| {
                CredentialsError::not_loaded(format!(
                    "no AWS credentials found ({}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE to a profile of ~/.aws/config (after `aws sso login` for SSO), or run with a role",
                    DisplayErrorContext(&error)
                ))
            })
        })
    }
}

/// The client settings every vsync client of a platform service (Secrets
/// Manager, for the sink and the source) shares: the region, the
/// credentials, the endpoint when one is given (an emulator, a VPC
/// endpoint), no SDK retries — the engine paces and retries every platform
/// alike, and retries underneath would multiply them — bounded connect and
/// operation times, and the HTTPS client honouring `HTTPS_PROXY` /
/// `NO_PROXY` like every other vsync client.
fn sdk_config(
    region: &str,
    endpoint: Option<&str>,
    credentials: SharedCredentialsProvider,
) -> SdkConfig {
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .http_client(https_client(ProxyConfig::from_env()));
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint.trim_end_matches('/'));
    }
    config.build()
}

/// Where and as whom vsync reaches Secrets Manager: the region, the
/// endpoint when moved (an emulator, a VPC endpoint), and a static key when
/// one is given (else AWS's standard chain). The sink and the source take
/// it alike, so both check it and build their client the same way.
#[derive(Clone, Default)]
pub struct Access {
    region: String,
    endpoint: Option<String>,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

impl Access {
    /// Secrets Manager of `region`, credentials from AWS's standard chain.
    pub fn region(region: impl Into<String>) -> Self {
        Access {
            region: region.into(),
            ..Access::default()
        }
    }

    /// The service endpoint, e.g. `http://127.0.0.1:4566` for a local
    /// emulator or a VPC endpoint's URL (what
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` carries). Default: the regional
    /// AWS endpoint.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// A static key (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`) instead
    /// of the standard chain.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.access_key_id = access_key_id.into();
        self.secret_access_key = Zeroizing::new(secret_access_key.into());
        self
    }

    /// The session token of temporary credentials (`AWS_SESSION_TOKEN`).
    pub fn session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(Zeroizing::new(token.into()));
        self
    }

    /// Whether a static key was given: it is used instead of the standard
    /// chain.
    fn has_static_key(&self) -> bool {
        !self.access_key_id.is_empty()
    }

    /// Where the credentials would come from, judged without a request:
    /// the static key, else what AWS's standard chain would most likely
    /// use, from what `var` (the environment the SDK reads) and the shared
    /// files show. Nothing is read from the files.
    pub fn origin(&self, var: &dyn Fn(&str) -> Option<String>) -> Origin {
        if self.has_static_key() {
            Origin::StaticKey
        } else {
            Origin::of_standard_chain(var)
        }
    }

    /// The region's name.
    pub fn region_name(&self) -> &str {
        &self.region
    }

    /// The endpoint, when moved.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Checks the access — a region, a whole static key or none, an
    /// endpoint that is a URL sending credentials over TLS (plain http only
    /// to this machine) — and builds the client settings ([`sdk_config`]).
    /// `region_hint` says how this caller's user sets the region.
    pub fn sdk_config(&self, region_hint: &str) -> Result<SdkConfig, SinkError> {
        let misconfigured = |message: String| Err(SinkError::Misconfigured(message));
        if self.region.trim().is_empty() {
            return misconfigured(format!("the AWS region is not set; {region_hint}"));
        }
        if self.access_key_id.is_empty() != self.secret_access_key.is_empty() {
            let missing = if self.access_key_id.is_empty() {
                "AWS_ACCESS_KEY_ID"
            } else {
                "AWS_SECRET_ACCESS_KEY"
            };
            return misconfigured(format!(
                "half of a static AWS key is set: set {missing} too, or neither to use the profile or role credentials"
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                let shown = match endpoint.char_indices().nth(80) {
                    Some((cut, _)) => format!("{:?}…", &endpoint[..cut]),
                    None => format!("{endpoint:?}"),
                };
                return misconfigured(format!(
                    "the AWS endpoint {shown} is not a URL; expected https://HOST[:PORT]"
                ));
            }
            require_secure_transport("the AWS endpoint", endpoint)?;
        }
        let credentials = if !self.has_static_key() {
            standard_chain(Region::new(self.region.clone()))
        } else {
            static_key(
                &self.access_key_id,
                &self.secret_access_key,
                self.session_token.as_ref().map(|token| token.as_str()),
            )
        };
        Ok(sdk_config(
            &self.region,
            self.endpoint.as_deref(),
            credentials,
        ))
    }
}

/// Where an [`Access`]'s credentials would come from ([`Access::origin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    StaticKey,
    /// A profile of the shared config files: `AWS_PROFILE`'s, or the
    /// default one of the files that exist.
    Profile {
        /// `AWS_PROFILE`, `None` for the default profile.
        named: Option<String>,
        /// The shared config and credentials files that exist.
        files: Vec<PathBuf>,
    },
    /// A web identity token file (`AWS_WEB_IDENTITY_TOKEN_FILE`, EKS's
    /// IRSA) exchanged for `AWS_ROLE_ARN`'s role.
    WebIdentity,
    /// The container's role (ECS, EKS Pod Identity), from the endpoint the
    /// variable names.
    Container(&'static str),
    /// Nothing configured: an instance role, if the instance metadata
    /// service answers.
    InstanceRole,
}

impl Origin {
    /// What the standard chain would most likely use, in its order
    /// (environment, profile, web identity, container, instance): the
    /// first one the environment and the shared files show. Whether it
    /// works, and whether an instance role exists, only a request can tell.
    fn of_standard_chain(var: &dyn Fn(&str) -> Option<String>) -> Origin {
        let home = var("HOME");
        let shared_file = |variable: &str, default: &str| {
            var(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| Path::new(home).join(default)))
        };
        let files: Vec<PathBuf> = [
            shared_file("AWS_CONFIG_FILE", ".aws/config"),
            shared_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
        ]
        .into_iter()
        .flatten()
        .filter(|file| file.is_file())
        .collect();
        let named = var("AWS_PROFILE");
        if named.is_some() || !files.is_empty() {
            return Origin::Profile { named, files };
        }
        if var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
            return Origin::WebIdentity;
        }
        [
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]
        .into_iter()
        .find(|variable| var(variable).is_some())
        .map_or(Origin::InstanceRole, Origin::Container)
    }

    /// Whether only the machine's own identity is left, which only a
    /// request to the instance metadata service can tell exists.
    pub fn is_ambient(&self) -> bool {
        *self == Origin::InstanceRole
    }

    /// The source in words: variables and files, never a value.
    pub fn describe(&self) -> String {
        match self {
            Origin::StaticKey => "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".to_owned(),
            Origin::Profile { named, files } => {
                let profile = match named {
                    Some(name) => format!("the profile {name:?} (AWS_PROFILE)"),
                    None => "the default profile".to_owned(),
                };
                let files: Vec<String> = files
                    .iter()
                    .map(|file| file.display().to_string())
                    .collect();
                match files.as_slice() {
                    [] => profile,
                    files => format!("{profile} of {}", files.join(" and ")),
                }
            }
            Origin::WebIdentity => {
                "the web identity token in AWS_WEB_IDENTITY_TOKEN_FILE (for AWS_ROLE_ARN)"
                    .to_owned()
            }
            Origin::Container(variable) => format!("the container's role ({variable})"),
            Origin::InstanceRole => {
                "an instance role, through the instance metadata service".to_owned()
            }
        }
    }
}

/// Says what to fix when AWS refuses the credentials or a permission,
/// naming the variables the credentials come from.
pub const DENIED_HINT: &str = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN), or the profile AWS_PROFILE names, and the IAM permissions of that identity";

/// What a failed AWS call means to the caller, whatever the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Throttled: come back later.
    Throttled,
    /// The credentials were refused, or lack the permission.
    Denied,
    /// A fault on AWS's side: come back later.
    Unavailable,
    /// The request itself was refused; the code says why.
    Other,
}

/// AWS error codes that mean the credentials were refused or lack
/// permission.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// AWS error codes for throttling.
const THROTTLED_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

/// Reads a failed call's HTTP status and AWS error code (empty when the
/// answer had none). The status is `None` for one entry of a batch
/// answer (`BatchGetSecretValue`'s `Errors`), which carries a code only.
pub fn refusal(status: Option<u16>, code: &str) -> Refusal {
    let status = status.unwrap_or_default();
    if status == 429 || THROTTLED_CODES.contains(&code) {
        Refusal::Throttled
    } else if matches!(status, 401 | 403) || DENIED_CODES.contains(&code) {
        Refusal::Denied
    } else if status >= 500 || code == "InternalServiceError" {
        Refusal::Unavailable
    } else {
        Refusal::Other
    }
}

/// Whether a call that got no answer failed because no credentials could
/// be had (none found, a profile that does not parse, an SSO session that
/// expired): something to fix, not to retry. A provider that timed out
/// (an instance role's endpoint) may answer next time, so it is not one.
pub fn is_credentials_failure(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(failure) = error.downcast_ref::<CredentialsError>() {
            return !matches!(failure, CredentialsError::ProviderTimedOut(_));
        }
        next = error.source();
    }
    false
}

/// Whether a Secrets Manager message says the secret is scheduled for
/// deletion: AWS words it "already scheduled for deletion" on create and
/// "marked for deletion" (or "marked deleted") on other calls.
pub fn mentions_deletion(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("scheduled for deletion")
        || message.contains("marked for deletion")
        || message.contains("marked deleted")
}

/// Secrets Manager's secret-name punctuation, besides ASCII letters and
/// digits.
pub const SECRET_NAME_PUNCTUATION: &str = "/_+=.@-";
/// The longest Secrets Manager secret name.
pub const MAX_SECRET_NAME_LEN: usize = 512;

/// Whether `name` is a Secrets Manager secret name: 1 to 512 ASCII
/// letters, digits and `/_+=.@-`.
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SECRET_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || SECRET_NAME_PUNCTUATION.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_by_code_before_status() {
        assert_eq!(
            refusal(Some(400), "ThrottlingException"),
            Refusal::Throttled
        );
        assert_eq!(refusal(Some(429), ""), Refusal::Throttled);
        assert_eq!(
            refusal(Some(400), "UnrecognizedClientException"),
            Refusal::Denied
        );
        assert_eq!(refusal(Some(403), ""), Refusal::Denied);
        assert_eq!(refusal(Some(503), ""), Refusal::Unavailable);
        assert_eq!(
            refusal(Some(400), "InternalServiceError"),
            Refusal::Unavailable
        );
        assert_eq!(refusal(Some(400), "ValidationException"), Refusal::Other);
        assert_eq!(refusal(None, "AccessDeniedException"), Refusal::Denied);
        assert_eq!(refusal(None, "DecryptionFailure"), Refusal::Other);
    }

    #[test]
    fn credential_failures_are_found_down_the_chain_but_not_timeouts() {
        #[derive(Debug)]
        struct Wrapper(CredentialsError);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("dispatch failure")
            }
        }
        impl Error for Wrapper {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        assert!(is_credentials_failure(&Wrapper(
            CredentialsError::not_loaded("none")
        )));
        assert!(!is_credentials_failure(&Wrapper(
            CredentialsError::provider_timed_out(Duration::from_secs(5))
        )));
        assert!(!is_credentials_failure(&std::io::Error::other("refused")));
    }

    #[test]
    fn deletion_messages_and_secret_names_are_recognised() {
        assert!(mentions_deletion(
            "You can't create this secret because a secret with this name is already scheduled for deletion."
        ));
        assert!(mentions_deletion(
            "You can't perform this operation on the secret because it was marked for deletion."
        ));
        assert!(!mentions_deletion(
            "You provided a parameter value that is not valid."
        ));
        assert!(is_secret_name("app/prod/DB_PASS+x=y.z@w-1"));
        assert!(!is_secret_name(""));
        assert!(!is_secret_name("DB PASS"));
        assert!(!is_secret_name("line\nbreak\u{1b}[31m"));
        assert!(is_secret_name(&"a".repeat(512)));
        assert!(!is_secret_name(&"a".repeat(513)));
    }
}
