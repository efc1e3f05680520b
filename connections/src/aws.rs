//! AWS: the SDK setup the S3 store, the Secrets Manager sink and the AWS
//! source share — the HTTPS client (rustls on aws-lc, with the caller's
//! proxy choice) and the credentials (a static key, or AWS's standard
//! chain).

use aws_config::Region;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{Builder as HttpClientBuilder, ConnectorBuilder, tls};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::error::display::DisplayErrorContext;

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
