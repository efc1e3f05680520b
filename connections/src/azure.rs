//! Azure: the connection Key Vault's sink and source share — which
//! credential gets the access tokens, and the one HTTPS client (with an
//! extra CA when asked) through which the vault and Microsoft Entra ID are
//! reached.
//!
//! # Credentials
//!
//! [`Auth::from_env`] takes the first of these that is configured
//! ([`Choice::from_env`] decides which, without making it):
//!
//! 1. `AZURE_ACCESS_TOKEN`: a bearer token obtained elsewhere
//!    ([`StaticToken`]).
//! 2. A service principal's client secret (`AZURE_TENANT_ID`,
//!    `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, and `AZURE_AUTHORITY_HOST`
//!    outside the public cloud): `azure_identity`'s `ClientSecretCredential`
//!    over the connection's transport, which asks Entra ID once and reuses
//!    the token until five minutes before it expires.
//! 3. The managed identity of App Service and Azure Functions, whose
//!    platform sets `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`
//!    ([`ManagedIdentityCredential::app_service`]).
//! 4. A VM's (scale set's, AKS node's) managed identity through IMDS
//!    ([`ManagedIdentityCredential::imds`]), only when
//!    `AZURE_USE_MANAGED_IDENTITY=1` asks for it or `IDENTITY_ENDPOINT`
//!    says this is Azure compute: anywhere else IMDS does not answer, and
//!    probing it would cost every run a timeout.
//! 5. The `az` CLI's login, when `az` is on `PATH`
//!    ([`AzureCliCredential`]).
//!
//! A partial service-principal triple is refused with the missing
//! variables named rather than quietly replaced by another login;
//! `AZURE_CLIENT_ID` alone is the client ID of a user-assigned managed
//! identity when a managed identity is in use (3, 4).
//!
//! Managed-identity and `az` tokens are cached until shortly before they
//! expire, so a sync asks once. No error carries a token, a client secret
//! or a response body: statuses, Entra ID's error codes and descriptions,
//! and the first line of `az`'s complaint.
//!
//! # Transport
//!
//! The vault URL and the Entra ID authority must be https: the SDK's
//! bearer policy refuses to send a token anywhere else, and a client
//! secret is never sent in the clear. Both are reached through one reqwest
//! client (the SDK's settings, plus an extra CA for a TLS-inspecting
//! proxy, a private endpoint or a test harness) with the SDK's retries
//! off: the engine retries, once, for every platform. Every answer is
//! read into at most [`MAX_RESPONSE_BYTES`]: a larger one is refused
//! before it is buffered, whoever sends it.
//!
//! # Key Vault's answers
//!
//! What the sink and the source both make of Key Vault's answers lives
//! here too: [`Failure`] turns an SDK error into the engine's taxonomy
//! (status, Key Vault's error codes and message, never a body),
//! [`retry_after`] reads the service's wait hint, and [`Listing`] keeps a
//! paged listing on the vault and bounded.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::headers::{HeaderName, Headers, RETRY_AFTER};
use azure_core::http::pager::PagerContinuation;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    AsyncRawResponse, Body, ClientOptions, Context, HttpClient, Request, RetryOptions, StatusCode,
    Transport, Url,
};
use azure_core::time::OffsetDateTime;
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use reqwest::header::HeaderValue;
use tokio::io::{AsyncRead, AsyncReadExt};
use vsync_engine::sink::{SinkError, one_line_message, require_secure_transport};
use zeroize::Zeroizing;

pub use azure_core::credentials::TokenCredential;

/// Microsoft Entra ID in the public cloud.
const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Where IMDS answers on every Azure VM: a link-local address.
const IMDS: &str = "http://169.254.169.254";
/// The most bytes a token answer (IMDS's, App Service's, `az`'s) may have:
/// a token response is a few KiB.
const MAX_ANSWER: usize = 64 * 1024;
/// How long connecting to a managed-identity endpoint may take: IMDS and
/// App Service's endpoint are on this machine or its host, and answer in
/// milliseconds where they exist.
const IDENTITY_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a whole managed-identity token request may take.
const IDENTITY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `az account get-access-token` may take (it may refresh its
/// token with Entra ID first).
const AZ_TIMEOUT: Duration = Duration::from_secs(30);
/// A cached token is replaced this long before it expires (at most half
/// its life), so no request goes out with a token about to lapse.
const REFRESH_MARGIN: azure_core::time::Duration = azure_core::time::Duration::minutes(5);
/// How long a token whose expiry is unknown is taken to live.
const UNKNOWN_LIFETIME: azure_core::time::Duration = azure_core::time::Duration::minutes(5);

/// The Key Vault REST version the sink and the source speak: the newest
/// GA one (the SDK's default is a preview).
pub const API_VERSION: &str = "7.6";
/// Key Vault answers at most 25 secrets per listing page (`maxresults`
/// 1–25).
pub const MAX_PAGE: u32 = 25;
/// The most bytes one answer of the vault or of Entra ID may have. Key
/// Vault's largest — a secret of 25,600 characters, JSON-escaped at up to
/// 12 bytes each, or a page of 25 secrets with 15 tags each — stays under
/// a third of it; a token answer is a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The most secrets one listing takes. Key Vault sets no limit, but reading
/// 100,000 secrets takes every read its budget allows for over four
/// minutes; a listing past it is a server gone wrong.
pub const MAX_LISTED: usize = 100_000;
/// The most pages one listing takes: Key Vault may answer an empty page
/// with a link to the next, so pages are bounded apart from secrets.
const MAX_LIST_PAGES: usize = 10_000;

/// What to do when no credential works.
const LOGIN_HELP: &str = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal's client secret), or AZURE_ACCESS_TOKEN (e.g. from `az account get-access-token --resource https://vault.azure.net`), or log in with `az login`, or set AZURE_USE_MANAGED_IDENTITY=1 on an Azure VM with a managed identity";

/// What a Key Vault client is made of:
/// `SecretClient::new(vault_url.as_str(), credential, options)` with
/// [`API_VERSION`] and `client_options` in the options.
pub struct Connection {
    /// The vault's root URL (https, no path or query).
    pub vault_url: Url,
    /// Where the access tokens come from.
    pub credential: Arc<dyn TokenCredential>,
    /// The transport (the extra CA, the SDK's timeouts, no redirects) and
    /// no SDK retries.
    pub client_options: ClientOptions,
}

/// Checks the settings and makes the connection; no request is sent yet.
/// `extra_ca_pem` (one or more PEM certificates) is trusted besides the
/// system's roots, for the vault and Entra ID alike.
pub fn connect(
    vault_url: &str,
    auth: Auth,
    extra_ca_pem: Option<&[u8]>,
) -> Result<Connection, SinkError> {
    let url = Url::parse(vault_url.trim_end_matches('/')).map_err(|error| {
        SinkError::Misconfigured(format!("the vault URL {vault_url:?} is not a URL: {error}"))
    })?;
    if url.scheme() != "https" {
        return Err(SinkError::Misconfigured(format!(
            "the vault URL {vault_url:?} must use https: access tokens are never sent in the clear"
        )));
    }
    if url.host_str().is_none() {
        return Err(SinkError::Misconfigured(format!(
            "the vault URL {vault_url:?} has no host"
        )));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(SinkError::Misconfigured(format!(
            "the vault URL {vault_url:?} must be the vault's root, e.g. https://<name>.vault.azure.net"
        )));
    }

    // The SDK's own client, rebuilt: same timeouts and no redirects, plus
    // the extra CA.
    let mut http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = extra_ca_pem {
        let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|error| {
            SinkError::Misconfigured(format!("the extra CA is not PEM certificates: {error}"))
        })?;
        if certificates.is_empty() {
            return Err(SinkError::Misconfigured(
                "the extra CA holds no PEM certificate".into(),
            ));
        }
        http = http.tls_certs_merge(certificates);
    }
    let http = http.build().map_err(|error| {
        SinkError::Misconfigured(format!("could not set up the HTTPS client: {error}"))
    })?;

    // One transport (and so one CA set and connection pool) for the vault
    // and the token endpoint; no SDK retries for either.
    let client_options = ClientOptions {
        retry: RetryOptions::none(),
        transport: Some(Transport::new(Arc::new(CappedHttp(http)))),
        ..ClientOptions::default()
    };
    let credential = match auth {
        Auth::Credential(credential) => credential,
        Auth::ClientSecret(secret) => client_secret_credential(&secret, client_options.clone())?,
    };
    Ok(Connection {
        vault_url: url,
        credential,
        client_options,
    })
}

impl Connection {
    /// The vault as reports and records name it:
    /// `azure-key-vault:vault=<host>[:<port>]`. The sink's target and the
    /// source's origin alike, so a vault is one name whichever way its
    /// secrets travel.
    pub fn vault_label(&self) -> String {
        let host = self.vault_url.host_str().unwrap_or_default();
        match self.vault_url.port() {
            Some(port) => format!("azure-key-vault:vault={host}:{port}"),
            None => format!("azure-key-vault:vault={host}"),
        }
    }
}

/// The vault URL of a vault name in the public cloud
/// (`https://<name>.vault.azure.net`), or why `name` is none: Azure's
/// naming rules are 3–24 characters, letters, digits and hyphens, starting
/// with a letter, ending with a letter or digit, no `--`.
pub fn vault_url_of_name(name: &str) -> Result<String, String> {
    let valid = (3..=24).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("--");
    if valid {
        Ok(format!("https://{name}.vault.azure.net"))
    } else {
        Err(format!(
            "{name:?} is not a Key Vault name: 3-24 letters, digits and single hyphens, starting with a letter (for a full URL, use the vault URL setting)"
        ))
    }
}

/// How a Key Vault client authenticates.
pub enum Auth {
    /// Any credential: a [`StaticToken`], a managed identity, the `az`
    /// CLI, a test's.
    Credential(Arc<dyn TokenCredential>),
    /// A service principal's client secret, presented to Entra ID over the
    /// connection's transport (which only [`connect`] has).
    ClientSecret(ClientSecret),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Credential(credential) => f.debug_tuple("Credential").field(credential).finish(),
            Auth::ClientSecret(secret) => secret.fmt(f),
        }
    }
}

impl Auth {
    /// The credential the environment configures (see the module
    /// documentation for the order), made: [`Choice::from_env`], built.
    /// `var` reads a variable, `None` when unset; an empty value counts as
    /// unset. Nothing is sent yet.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Auth, SinkError> {
        Choice::from_env(var)?.build()
    }
}

/// Which credential the environment configures, decided before any is
/// made: what [`Auth::from_env`] builds, and what a report names
/// ([`Choice::describe`], `vsync doctor`) without making it.
pub enum Choice {
    /// `AZURE_ACCESS_TOKEN`.
    AccessToken(Zeroizing<String>),
    /// A service principal's client secret (`AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`).
    ClientSecret(ClientSecret),
    /// App Service's managed identity (`IDENTITY_ENDPOINT`,
    /// `IDENTITY_HEADER`), user-assigned when `client_id` is given.
    AppService {
        /// `IDENTITY_ENDPOINT`.
        endpoint: String,
        /// `IDENTITY_HEADER`.
        header: Zeroizing<String>,
        /// `AZURE_CLIENT_ID`.
        client_id: Option<String>,
    },
    /// The VM's managed identity through IMDS, user-assigned when
    /// `client_id` is given.
    Imds {
        /// `AZURE_CLIENT_ID`.
        client_id: Option<String>,
    },
    /// The `az` CLI's login, `az` being this program (found on `PATH`).
    AzureCli(PathBuf),
}

impl Choice {
    /// The first credential the environment configures (see the module
    /// documentation for the order), or why none is usable. `var` reads a
    /// variable, `None` when unset; an empty value counts as unset.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Choice, SinkError> {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        if let Some(token) = var("AZURE_ACCESS_TOKEN") {
            return Ok(Choice::AccessToken(Zeroizing::new(token)));
        }
        let tenant = var("AZURE_TENANT_ID");
        let client = var("AZURE_CLIENT_ID");
        let secret = var("AZURE_CLIENT_SECRET").map(Zeroizing::new);
        let identity_endpoint = var("IDENTITY_ENDPOINT");
        let managed = identity_endpoint.is_some()
            || var("AZURE_USE_MANAGED_IDENTITY")
                .is_some_and(|value| vsync_engine::environment::is_true(&value));
        let client_id = match (tenant, client, secret) {
            (Some(tenant), Some(client), Some(secret)) => {
                let secret = ClientSecret::new(tenant, client, secret);
                return Ok(Choice::ClientSecret(match var("AZURE_AUTHORITY_HOST") {
                    Some(authority) => secret.authority_host(authority),
                    None => secret,
                }));
            }
            (None, client, None) if client.is_none() || managed => client,
            (tenant, client, secret) => {
                let missing: Vec<&str> = [
                    ("AZURE_TENANT_ID", tenant.is_none()),
                    ("AZURE_CLIENT_ID", client.is_none()),
                    ("AZURE_CLIENT_SECRET", secret.is_none()),
                ]
                .into_iter()
                .filter_map(|(name, missing)| missing.then_some(name))
                .collect();
                let verb = if missing.len() == 1 { "is" } else { "are" };
                return Err(SinkError::Misconfigured(format!(
                    "the Azure client-secret credential needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; {} {verb} not set (or set AZURE_ACCESS_TOKEN instead)",
                    missing.join(" and ")
                )));
            }
        };
        match (identity_endpoint, var("IDENTITY_HEADER")) {
            (Some(endpoint), Some(header)) => Ok(Choice::AppService {
                endpoint,
                header: Zeroizing::new(header),
                client_id,
            }),
            _ if managed => Ok(Choice::Imds { client_id }),
            _ => match var("PATH").and_then(|path| find_az(&path)) {
                Some(az) => Ok(Choice::AzureCli(az)),
                None => Err(SinkError::Misconfigured(format!(
                    "no Azure credentials (and the az CLI is not on PATH): {LOGIN_HELP}"
                ))),
            },
        }
    }

    /// The credential made (its settings checked); nothing is sent yet.
    pub fn build(self) -> Result<Auth, SinkError> {
        let credential: Arc<dyn TokenCredential> = match self {
            Choice::AccessToken(token) => Arc::new(StaticToken::new(token.as_str())),
            Choice::ClientSecret(secret) => return Ok(Auth::ClientSecret(secret)),
            Choice::AppService {
                endpoint,
                header,
                client_id,
            } => Arc::new(ManagedIdentityCredential::app_service(
                &endpoint, header, client_id,
            )?),
            Choice::Imds { client_id } => {
                Arc::new(ManagedIdentityCredential::imds(None, client_id)?)
            }
            Choice::AzureCli(az) => Arc::new(AzureCliCredential::new(az)),
        };
        Ok(Auth::Credential(credential))
    }

    /// Whether the credential is the machine's own identity, which only a
    /// token request can tell exists (a managed identity), rather than
    /// one configured here.
    pub fn is_ambient(&self) -> bool {
        matches!(self, Choice::AppService { .. } | Choice::Imds { .. })
    }

    /// The credential in words: the variables or program it comes from,
    /// never a value.
    pub fn describe(&self) -> String {
        let user_assigned = |client_id: &Option<String>| {
            if client_id.is_some() {
                "user-assigned (AZURE_CLIENT_ID) "
            } else {
                ""
            }
        };
        match self {
            Choice::AccessToken(_) => "AZURE_ACCESS_TOKEN".to_owned(),
            Choice::ClientSecret(secret) => format!(
                "a service principal's client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET{})",
                if secret.authority_host.is_some() {
                    ", AZURE_AUTHORITY_HOST"
                } else {
                    ""
                }
            ),
            Choice::AppService { client_id, .. } => format!(
                "App Service's {}managed identity (IDENTITY_ENDPOINT, IDENTITY_HEADER)",
                user_assigned(client_id)
            ),
            Choice::Imds { client_id } => format!(
                "the VM's {}managed identity, through IMDS ({IMDS})",
                user_assigned(client_id)
            ),
            Choice::AzureCli(az) => format!(
                "the az CLI's login (`az account get-access-token`, {})",
                az.display()
            ),
        }
    }
}

/// `az` in an absolute directory of `path` (`PATH`'s value).
fn find_az(path: &str) -> Option<PathBuf> {
    let name = if cfg!(windows) { "az.cmd" } else { "az" };
    vsync_engine::environment::find_program(path, name)
}

/// A bearer token obtained elsewhere (e.g. `az account get-access-token
/// --resource https://vault.azure.net`), presented as is until the vault
/// refuses it.
#[derive(Clone)]
pub struct StaticToken {
    token: Secret,
}

impl StaticToken {
    /// Wraps an access token for the `https://vault.azure.net` audience.
    pub fn new(token: impl Into<String>) -> Self {
        StaticToken {
            token: Secret::new(token.into()),
        }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        // The real expiry is unknown. An hour ahead keeps the SDK from
        // asking again for every request; an expired token is refused by
        // the vault with 401, which surfaces as `Denied`.
        Ok(AccessToken::new(
            self.token.clone(),
            OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// A service principal's client secret (what `AZURE_TENANT_ID`,
/// `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` hold), until [`connect`]
/// makes the credential. The secret is kept in a wiping buffer and never
/// shown; the copy handed to `azure_identity` (and the form body it sends)
/// are the SDK's, which does not wipe them.
pub struct ClientSecret {
    tenant_id: String,
    client_id: String,
    secret: Zeroizing<String>,
    authority_host: Option<String>,
}

impl ClientSecret {
    /// The secret of the application (client) `client_id` in the directory
    /// `tenant_id` (its GUID or domain), for the public cloud.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: Zeroizing<String>,
    ) -> Self {
        ClientSecret {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            secret,
            authority_host: None,
        }
    }

    /// The Entra ID authority the secret is presented to
    /// (`AZURE_AUTHORITY_HOST`'s meaning: `https://login.microsoftonline.us`
    /// for Azure Government, `https://login.chinacloudapi.cn` for Azure
    /// China). Default `https://login.microsoftonline.com`.
    pub fn authority_host(mut self, url: impl Into<String>) -> Self {
        self.authority_host = Some(url.into());
        self
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("authority_host", &self.authority_host)
            .finish()
    }
}

/// `azure_identity`'s client-secret credential, asking the secret's
/// authority over `client_options`' transport.
fn client_secret_credential(
    secret: &ClientSecret,
    client_options: ClientOptions,
) -> Result<Arc<dyn TokenCredential>, SinkError> {
    let tenant = secret.tenant_id.as_str();
    if tenant.is_empty()
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(SinkError::Misconfigured(format!(
            "the Azure tenant ID {tenant:?} is not a tenant ID: use the directory's GUID or its domain (contoso.onmicrosoft.com)"
        )));
    }
    if secret.client_id.trim().is_empty() {
        return Err(SinkError::Misconfigured(
            "the Azure client ID is empty: use the application (client) ID of the service principal".into(),
        ));
    }
    if secret.secret.is_empty() {
        return Err(SinkError::Misconfigured(
            "the Azure client secret is empty".into(),
        ));
    }
    let authority = authority_url(secret.authority_host.as_deref().unwrap_or(PUBLIC_AUTHORITY))?;
    // An explicit cloud: without one, azure_identity reads
    // AZURE_AUTHORITY_HOST from the process environment itself.
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority;
    let mut client_options = client_options;
    client_options.cloud = Some(Arc::new(CloudConfiguration::from(cloud)));
    client_options.per_call_policies.push(Arc::new(EntraErrors));
    let options = ClientSecretCredentialOptions { client_options };
    let credential = ClientSecretCredential::new(
        tenant,
        secret.client_id.clone(),
        Secret::new(secret.secret.as_str().to_owned()),
        Some(options),
    )
    .map_err(|error| {
        SinkError::Misconfigured(format!(
            "could not set up the Azure client-secret credential: {}",
            error_chain(&error)
        ))
    })?;
    Ok(credential)
}

/// Reads Entra ID's error answers from the token endpoint itself.
/// azure_identity 1.1.0-beta.1 parses `error_description` into a borrowed
/// `&str`, which fails on any JSON escape, and Entra ID always puts `\r\n`
/// before the trace id: the caller would see serde's "expected a borrowed
/// string" instead of the reason. This turns an error answer into the
/// error azure_identity means to raise (status, AADSTS codes, the
/// description on one line), and never keeps the body.
#[derive(Debug)]
struct EntraErrors;

#[async_trait::async_trait]
impl Policy for EntraErrors {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let Some((first, rest)) = next.split_first() else {
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "the token request has no transport",
            ));
        };
        let response = first.send(ctx, request, rest).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.into_body().collect().await?;
        let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let text = |key: &str| {
            parsed
                .as_ref()
                .and_then(|parsed| parsed.get(key))
                .and_then(serde_json::Value::as_str)
                .map(one_line)
        };
        let code = u16::from(status);
        let (error_code, message) = match (text("error"), text("error_description")) {
            (None, None) => (
                None,
                format!("the token endpoint answered HTTP {code} without Entra ID's error JSON"),
            ),
            (error, description) => {
                let codes: Vec<String> = parsed
                    .as_ref()
                    .and_then(|parsed| parsed.get("error_codes"))
                    .and_then(serde_json::Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_i64)
                    .map(|code| code.to_string())
                    .collect();
                (
                    (!codes.is_empty()).then(|| codes.join(",")),
                    format!(
                        "HTTP {code} {}: {}",
                        error.unwrap_or_default(),
                        description.unwrap_or_default()
                    ),
                )
            }
        };
        Err(azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response: None,
            },
            message,
        ))
    }
}

/// The authority host as azure_identity wants it: an https origin (it
/// joins `/{tenant}/oauth2/v2.0/token` to it, dropping any path).
fn authority_url(raw: &str) -> Result<String, SinkError> {
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|error| {
        SinkError::Misconfigured(format!(
            "the Azure authority host {raw:?} is not a URL: {error}"
        ))
    })?;
    if url.scheme() != "https" {
        return Err(SinkError::Misconfigured(format!(
            "the Azure authority host {raw:?} must use https: the client secret is never sent in the clear"
        )));
    }
    if url.host_str().is_none()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || !url.username().is_empty()
    {
        return Err(SinkError::Misconfigured(format!(
            "the Azure authority host {raw:?} must be a bare https origin, e.g. https://login.microsoftonline.com"
        )));
    }
    Ok(url.origin().ascii_serialization())
}

/// An SDK error and its causes on one line, `: `-joined (the SDK's own
/// message alone says little: "failed to execute `reqwest` request"; Entra
/// ID's descriptions carry `\r\n` before the trace id). The SDK's errors
/// carry no request or response body.
pub fn error_chain(error: &azure_core::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    one_line(&message)
}

/// `text` with its line breaks turned into spaces.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- The transport and Key Vault's answers ----------------------------------

/// The HTTPS client every request goes through, as the SDK's reqwest
/// transport does it, except that an answer is read into at most
/// [`MAX_RESPONSE_BYTES`]: one announcing more is refused unread, one
/// streaming more is cut off there. Everything the platform (or whatever
/// the URL reaches) answers is hostile until parsed.
#[derive(Debug)]
struct CappedHttp(reqwest::Client);

/// An answer over [`MAX_RESPONSE_BYTES`], refused before it was buffered.
#[derive(Debug, thiserror::Error)]
#[error(
    "the answer is larger than {MAX_RESPONSE_BYTES} bytes, which no Key Vault or Entra ID answer is"
)]
pub struct ResponseTooLarge;

impl ResponseTooLarge {
    fn into_azure(self) -> azure_core::Error {
        azure_core::Error::new(ErrorKind::DataConversion, self)
    }
}

#[async_trait::async_trait]
impl HttpClient for CappedHttp {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let Body::Bytes(body) = request.body() else {
            // Key Vault and Entra ID requests are JSON or forms, never streams.
            return Err(azure_core::Error::with_message(
                ErrorKind::Other,
                "a streamed request body cannot be sent",
            ));
        };
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|error| azure_core::Error::new(ErrorKind::Other, error))?;
        let mut outgoing = self.0.request(method, request.url().clone());
        for (name, value) in request.headers().iter() {
            outgoing = outgoing.header(name.as_str(), value.as_str());
        }
        let transport = |error: reqwest::Error| {
            let kind = if error.is_connect() {
                ErrorKind::Connection
            } else {
                ErrorKind::Io
            };
            azure_core::Error::with_error(kind, error, "failed to execute `reqwest` request")
        };
        let mut response = outgoing
            .body(body.clone())
            .send()
            .await
            .map_err(transport)?;
        let announced = response
            .content_length()
            .map(|length| usize::try_from(length).unwrap_or(usize::MAX));
        if announced.is_some_and(|length| length > MAX_RESPONSE_BYTES) {
            return Err(ResponseTooLarge.into_azure());
        }
        let mut headers = Headers::new();
        for (name, value) in response.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(name.as_str().to_owned(), value.to_owned());
            }
        }
        let status = StatusCode::from(response.status().as_u16());
        let mut bytes = Vec::with_capacity(announced.unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ResponseTooLarge.into_azure());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(AsyncRawResponse::from_bytes(status, headers, bytes))
    }
}

/// What keeps a paged listing bounded and on the vault. The SDK's pager
/// follows whatever `nextLink` a page names, with the bearer token; so
/// before each next page, [`Listing::page`] checks that the link stays on
/// the vault's own `/secrets` (or `/deletedsecrets`, whichever was listed),
/// that it was not followed before (a repeated link is a loop), and that
/// the listing has not grown past [`MAX_LISTED`] secrets or its pages
/// past a bound of their own.
#[derive(Debug)]
pub struct Listing {
    vault_url: Url,
    path: &'static str,
    context: &'static str,
    followed: HashSet<String>,
    pages: usize,
    items: usize,
}

impl Listing {
    /// A listing of `path` (`/secrets`) on the vault at `vault_url`;
    /// `context` starts every error ("listing secrets").
    pub fn new(vault_url: &Url, path: &'static str, context: &'static str) -> Self {
        Listing {
            vault_url: vault_url.clone(),
            path,
            context,
            followed: HashSet::new(),
            pages: 0,
            items: 0,
        }
    }

    /// Accounts for a page of `items` secrets, and checks the link the
    /// pager will follow next (`PageIterator::continuation`), if any.
    pub fn page(
        &mut self,
        items: usize,
        next: Option<&PagerContinuation>,
    ) -> Result<(), SinkError> {
        let context = self.context;
        self.pages += 1;
        self.items += items;
        if self.items > MAX_LISTED || self.pages > MAX_LIST_PAGES {
            return Err(SinkError::Rejected(format!(
                "{context}: the vault lists more than {MAX_LISTED} secrets or {MAX_LIST_PAGES} pages; stopped there"
            )));
        }
        let Some(next) = next else {
            return Ok(());
        };
        let PagerContinuation::Link(url) = next else {
            return Err(SinkError::Rejected(format!(
                "{context}: a page names its successor by a token, not Key Vault's nextLink"
            )));
        };
        let vault = &self.vault_url;
        let on_the_vault = url.scheme() == vault.scheme()
            && url.host_str() == vault.host_str()
            && url.port_or_known_default() == vault.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
            && url.path() == self.path;
        if !on_the_vault {
            return Err(SinkError::Rejected(format!(
                "{context}: a page links to {} for the next one, which is not this vault's {}; not followed, so no token goes there",
                one_line_message(&format!(
                    "{}{}",
                    url.origin().ascii_serialization(),
                    url.path()
                )),
                self.path
            )));
        }
        // The SDK sets the api-version itself; the rest is the page token.
        let mut token: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != "api-version")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        token.sort();
        if !self.followed.insert(format!("{token:?}")) {
            return Err(SinkError::Rejected(format!(
                "{context}: a page links back to one already listed; stopped rather than loop"
            )));
        }
        Ok(())
    }
}

/// What went wrong with one Key Vault call, with only what may be shown:
/// the status, Key Vault's error codes and message, never a body (a parse
/// error can quote what it choked on, which may be a value).
#[derive(Debug)]
pub enum Failure {
    /// Key Vault answered with an error status.
    Http {
        /// The HTTP status.
        status: u16,
        /// Key Vault's `error.code` (`Forbidden`, `Throttled`, …).
        code: Option<String>,
        /// Its `error.innererror.code` (`SecretDisabled`,
        /// `ObjectIsDeletedButRecoverable`, …).
        inner: Option<String>,
        /// Its `error.message`, on one line.
        message: Option<String>,
        /// The service's wait hint.
        retry_after: Option<Duration>,
    },
    /// The vault could not be reached, or the connection broke.
    Transport(String),
    /// No access token could be had.
    Credential(String),
    /// The challenge names a resource outside the vault URL's domain: the
    /// SDK sent no token.
    ChallengeMismatch {
        /// The resource the challenge names.
        resource: Option<String>,
        /// The vault URL's host.
        host: Option<String>,
    },
    /// The client could not make the request.
    Setup(String),
    /// An answer over [`MAX_RESPONSE_BYTES`].
    TooLarge,
    /// Not the documented JSON.
    Unexpected,
}

impl Failure {
    /// What an SDK error says, sorted.
    pub fn of(error: &azure_core::Error) -> Self {
        if error.downcast_ref::<ResponseTooLarge>().is_some() {
            return Failure::TooLarge;
        }
        match error.kind() {
            ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response,
            } => {
                let parsed = raw_response
                    .as_ref()
                    .and_then(|raw| serde_json::from_slice::<serde_json::Value>(raw.body()).ok());
                let detail = parsed.as_ref().and_then(|parsed| parsed.get("error"));
                let text = |path: &[&str]| {
                    let mut value = detail?;
                    for key in path {
                        value = value.get(key)?;
                    }
                    value
                        .as_str()
                        .map(one_line_message)
                        .filter(|text| !text.is_empty())
                };
                Failure::Http {
                    status: u16::from(*status),
                    code: text(&["code"]).or_else(|| error_code.as_deref().map(one_line_message)),
                    inner: text(&["innererror", "code"]),
                    message: text(&["message"]),
                    retry_after: raw_response
                        .as_ref()
                        .and_then(|raw| retry_after(raw.headers())),
                }
            }
            ErrorKind::Connection | ErrorKind::Io => Failure::Transport(error_chain(error)),
            ErrorKind::Credential => Failure::Credential(error_chain(error)),
            ErrorKind::Other => {
                let message = error.to_string();
                // azure_security_keyvault_secrets 1.1.0-beta.1's wording
                // (the crate is pinned): "challenge resource '{scope}'
                // doesn't match the requested domain '{host}'. …"
                match message.strip_prefix("challenge resource '") {
                    Some(rest) => {
                        let quoted = |text: &str| text.split('\'').next().map(one_line_message);
                        Failure::ChallengeMismatch {
                            resource: quoted(rest),
                            host: rest
                                .split_once("requested domain '")
                                .and_then(|(_, host)| quoted(host)),
                        }
                    }
                    None => Failure::Setup(error_chain(error)),
                }
            }
            _ => Failure::Unexpected,
        }
    }

    /// The HTTP status, when Key Vault answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Key Vault's inner error code, when it gave one.
    pub fn inner_code(&self) -> Option<&str> {
        match self {
            Failure::Http { inner, .. } => inner.as_deref(),
            _ => None,
        }
    }

    /// The engine's error, its message starting with `context` (what was
    /// being done: "listing secrets", "reading DB-PASS"). A 401 — the
    /// vault refusing the token — names the credentials to fix.
    pub fn into_sink_error(self, context: &str) -> SinkError {
        match self {
            Failure::Http {
                status,
                code,
                inner,
                message,
                retry_after,
            } => {
                let mut detail = format!("{context}: HTTP {status}");
                for part in [code, inner].into_iter().flatten() {
                    detail.push(' ');
                    detail.push_str(&part);
                }
                if let Some(message) = message {
                    detail.push_str(": ");
                    detail.push_str(&message);
                }
                match status {
                    429 => SinkError::RateLimited { retry_after },
                    401 => SinkError::Denied(format!(
                        "{detail}; the vault refused the access token: {LOGIN_HELP} (an AZURE_ACCESS_TOKEN lasts about an hour)"
                    )),
                    403 => SinkError::Denied(detail),
                    404 => SinkError::NotFound(detail),
                    409 => SinkError::Conflict(detail),
                    408 | 500..=599 => SinkError::Unavailable(detail),
                    _ => SinkError::Rejected(detail),
                }
            }
            Failure::Transport(message) => SinkError::Unavailable(format!("{context}: {message}")),
            Failure::Credential(message) => SinkError::Denied(format!(
                "{context}: could not get an access token: {message}"
            )),
            Failure::ChallengeMismatch { resource, host } => {
                let resource = resource.unwrap_or_else(|| "another resource".to_owned());
                let host = host.unwrap_or_else(|| "the vault URL's host".to_owned());
                SinkError::Misconfigured(format!(
                    "{context}: the vault at {host} asks for a token for {resource}, and {host} is not in that resource's domain, so no token was sent (challenge resource verification). Check the vault URL; only for a Key Vault emulator, turn the verification off (VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=1 for the vsync CLI)"
                ))
            }
            Failure::Setup(message) => SinkError::Misconfigured(format!("{context}: {message}")),
            Failure::TooLarge => SinkError::Rejected(format!("{context}: {ResponseTooLarge}")),
            Failure::Unexpected => SinkError::Rejected(format!(
                "{context}: Key Vault's response is not the documented JSON"
            )),
        }
    }
}

/// Key Vault's wait hint: `x-ms-retry-after-ms` / `retry-after-ms`, else
/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &Headers) -> Option<Duration> {
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = headers
            .get_optional_str(&HeaderName::from_static(name))
            .and_then(|value| value.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = headers.get_optional_str(&RETRY_AFTER)?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = azure_core::time::parse_rfc7231(value).ok()?;
    let wait = at - OffsetDateTime::now_utc();
    Some(Duration::from_secs(
        u64::try_from(wait.whole_seconds()).unwrap_or(0),
    ))
}

// ---- Managed identity and the az CLI --------------------------------------

/// Why a managed identity or the `az` CLI gave no token. No variant holds
/// a token, the App Service header or a whole answer.
#[derive(Debug, thiserror::Error)]
enum TokenError {
    #[error("a token was asked for {0} scopes at once; Key Vault asks for one")]
    Scopes(usize),
    #[error("the token scope {0:?} does not name a resource")]
    Scope(String),
    #[error("{what} could not be reached ({reason}); {help}")]
    Unreachable {
        what: String,
        reason: String,
        help: &'static str,
    },
    #[error("{what} did not answer within {secs}s; {help}")]
    TimedOut {
        what: String,
        secs: u64,
        help: &'static str,
    },
    #[error("{what} answered HTTP {status}{detail}; {help}")]
    Refused {
        what: String,
        status: u16,
        detail: String,
        help: &'static str,
    },
    #[error("{what} answered more than {MAX_ANSWER} bytes, which is no token response")]
    TooLarge { what: String },
    #[error("{what} answered without {field}, which is no token response")]
    Malformed { what: String, field: &'static str },
    #[error("could not run {program}: {reason}; {LOGIN_HELP}")]
    CliNotRun { program: String, reason: String },
    #[error(
        "`az account get-access-token` failed ({status}){stderr}; run `az login` (or `az login --identity` on Azure compute) and try again, or set AZURE_ACCESS_TOKEN, or a service principal's AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
    )]
    CliFailed { status: String, stderr: String },
}

impl TokenError {
    /// The SDK's kind: a throttled or failing endpoint may answer later
    /// (`Connection`, which the sink reports as unavailable); anything
    /// else is this credential not working here.
    fn into_azure(self) -> azure_core::Error {
        let kind = match &self {
            TokenError::Refused { status, .. } if *status == 429 || *status >= 500 => {
                ErrorKind::Connection
            }
            _ => ErrorKind::Credential,
        };
        azure_core::Error::new(kind, self)
    }
}

/// The resource of the one scope Key Vault asks a token for
/// (`https://vault.azure.net/.default` → `https://vault.azure.net`): IMDS,
/// App Service and `az` take resources, and a sovereign cloud's vault names
/// its own.
fn resource(scopes: &[&str]) -> Result<String, TokenError> {
    let [scope] = scopes else {
        return Err(TokenError::Scopes(scopes.len()));
    };
    let resource = scope.strip_suffix("/.default").unwrap_or(scope);
    let plain = resource
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/".contains(c));
    if resource.starts_with("https://") && plain {
        Ok(resource.to_owned())
    } else {
        Err(TokenError::Scope((*scope).to_owned()))
    }
}

/// The last token of a credential, for one resource, until it nears
/// expiry. A tokio mutex, held across a fetch, so requests that need a
/// token at once wait for one fetch rather than each starting their own.
#[derive(Default)]
struct Cache(tokio::sync::Mutex<Option<Cached>>);

struct Cached {
    resource: String,
    token: AccessToken,
    refresh_at: OffsetDateTime,
}

impl Cache {
    async fn get_or_fetch<F>(&self, resource: String, fetch: F) -> azure_core::Result<AccessToken>
    where
        F: Future<Output = Result<AccessToken, TokenError>>,
    {
        let mut slot = self.0.lock().await;
        if let Some(cached) = slot.as_ref()
            && cached.resource == resource
            && OffsetDateTime::now_utc() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let token = fetch.await.map_err(TokenError::into_azure)?;
        let life = token.expires_on - OffsetDateTime::now_utc();
        let margin = (life / 2_i32)
            .min(REFRESH_MARGIN)
            .max(azure_core::time::Duration::ZERO);
        *slot = Some(Cached {
            resource,
            refresh_at: token.expires_on - margin,
            token: token.clone(),
        });
        Ok(token)
    }
}

/// Seconds since the epoch as a JSON number or a string of digits (IMDS and
/// App Service send a string).
fn epoch_seconds(value: &serde_json::Value) -> Option<OffsetDateTime> {
    let seconds = match value {
        serde_json::Value::Number(number) => number.as_i64()?,
        serde_json::Value::String(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

/// When a token whose expiry the answer does not say expires.
fn unknown_expiry() -> OffsetDateTime {
    OffsetDateTime::now_utc() + UNKNOWN_LIFETIME
}

/// Takes the string `field` out of a parsed answer, so the token is moved,
/// not copied.
fn take_string(answer: &mut serde_json::Value, field: &str) -> Option<String> {
    match answer.get_mut(field).map(serde_json::Value::take) {
        Some(serde_json::Value::String(text)) if !text.is_empty() => Some(text),
        _ => None,
    }
}

/// Which managed-identity endpoint, for requests and messages.
#[derive(Debug)]
enum Endpoint {
    Imds,
    AppService,
}

impl Endpoint {
    fn help(&self) -> &'static str {
        match self {
            Endpoint::Imds => {
                "IMDS answers only on Azure VMs, scale sets and AKS nodes: check that a managed identity is assigned to this one (and that AZURE_CLIENT_ID, if set, names it), or elsewhere unset AZURE_USE_MANAGED_IDENTITY and use `az login` or a service principal"
            }
            Endpoint::AppService => {
                "check the app's managed identity (App Service and Functions set IDENTITY_ENDPOINT and IDENTITY_HEADER when one is enabled, and AZURE_CLIENT_ID, if set, must name one of its user-assigned identities)"
            }
        }
    }
}

/// A managed identity's tokens: from IMDS on a VM, scale set or AKS node,
/// or from the identity endpoint App Service and Functions run next to an
/// app. Each request is bounded in time (a machine without the endpoint
/// fails in seconds) and in the size of the answer it reads, and goes
/// straight to the endpoint, never through a proxy (which would see the
/// token).
pub struct ManagedIdentityCredential {
    endpoint: Endpoint,
    /// The token URL, without the query.
    url: Url,
    /// App Service's `X-IDENTITY-HEADER` (marked sensitive), a secret that
    /// proves the request comes from the app.
    header: Option<HeaderValue>,
    client_id: Option<String>,
    http: reqwest::Client,
    cache: Cache,
}

impl fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedIdentityCredential")
            .field("endpoint", &self.endpoint)
            .field("url", &self.url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ManagedIdentityCredential {
    /// The VM's identity through IMDS at `base` (default
    /// `http://169.254.169.254`; another base is for tests), user-assigned
    /// `client_id` or the system-assigned one.
    ///
    /// IMDS is plain http by design, and that is safe for it alone: its
    /// link-local address (169.254.0.0/16) is never routed off the host,
    /// so the token travels between the VM and its hypervisor only. Any
    /// other base must be https, or http on loopback.
    pub fn imds(base: Option<&str>, client_id: Option<String>) -> Result<Self, SinkError> {
        let base = base.unwrap_or(IMDS);
        let mut url = Url::parse(base).map_err(|error| {
            SinkError::Misconfigured(format!("the IMDS address {base:?} is not a URL: {error}"))
        })?;
        let link_local = matches!(url.host_str().and_then(|host| host.parse::<IpAddr>().ok()),
            Some(IpAddr::V4(ip)) if ip.is_link_local());
        if !(link_local && url.scheme() == "http") {
            require_secure_transport("the IMDS address", base)?;
        }
        url.set_path("/metadata/identity/oauth2/token");
        url.set_query(None);
        Self::new(Endpoint::Imds, url, None, client_id)
    }

    /// App Service's (and Functions') identity endpoint: `endpoint` and
    /// `header` are what the platform puts in `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER`. The endpoint is on this machine
    /// (`http://localhost:…`); an address elsewhere must be https.
    pub fn app_service(
        endpoint: &str,
        header: Zeroizing<String>,
        client_id: Option<String>,
    ) -> Result<Self, SinkError> {
        let url = Url::parse(endpoint).map_err(|error| {
            SinkError::Misconfigured(format!(
                "IDENTITY_ENDPOINT {endpoint:?} is not a URL: {error}"
            ))
        })?;
        require_secure_transport("IDENTITY_ENDPOINT", endpoint)?;
        if url.query().is_some() {
            return Err(SinkError::Misconfigured(format!(
                "IDENTITY_ENDPOINT {endpoint:?} has a query; App Service sets a plain URL"
            )));
        }
        let mut header = HeaderValue::from_str(&header).map_err(|_| {
            SinkError::Misconfigured("IDENTITY_HEADER has characters a header cannot carry".into())
        })?;
        header.set_sensitive(true);
        Self::new(Endpoint::AppService, url, Some(header), client_id)
    }

    fn new(
        endpoint: Endpoint,
        url: Url,
        header: Option<HeaderValue>,
        client_id: Option<String>,
    ) -> Result<Self, SinkError> {
        let http = reqwest::Client::builder()
            .connect_timeout(IDENTITY_CONNECT_TIMEOUT)
            .timeout(IDENTITY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|error| {
                SinkError::Misconfigured(format!(
                    "could not set up the managed-identity client: {error}"
                ))
            })?;
        Ok(ManagedIdentityCredential {
            endpoint,
            url,
            header,
            client_id: client_id.filter(|id| !id.is_empty()),
            http,
            cache: Cache::default(),
        })
    }

    /// How messages name the endpoint.
    fn what(&self) -> String {
        match self.endpoint {
            Endpoint::Imds => format!("the managed identity endpoint (IMDS, {})", self.origin()),
            Endpoint::AppService => format!(
                "App Service's managed identity endpoint (IDENTITY_ENDPOINT, {})",
                self.origin()
            ),
        }
    }

    fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    async fn fetch(&self, resource: &str) -> Result<AccessToken, TokenError> {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(
                "api-version",
                match self.endpoint {
                    Endpoint::Imds => "2018-02-01",
                    Endpoint::AppService => "2019-08-01",
                },
            );
            query.append_pair("resource", resource);
            if let Some(client_id) = &self.client_id {
                query.append_pair("client_id", client_id);
            }
        }
        let request = match &self.header {
            None => self.http.get(url).header("Metadata", "true"),
            Some(secret) => self
                .http
                .get(url)
                .header("X-IDENTITY-HEADER", secret.clone()),
        };
        let mut response = request
            .send()
            .await
            .map_err(|error| self.transport(&error))?;
        let status = response.status().as_u16();
        // Never grown past this, so the token is never moved (which would
        // leave an unwiped copy behind).
        let mut body = Zeroizing::new(Vec::with_capacity(MAX_ANSWER));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport(&error))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(TokenError::TooLarge { what: self.what() });
            }
            body.extend_from_slice(&chunk);
        }
        let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok();
        if !(200..300).contains(&status) {
            return Err(TokenError::Refused {
                what: self.what(),
                status,
                detail: error_detail(parsed.as_ref()),
                help: self.endpoint.help(),
            });
        }
        let malformed = |field| TokenError::Malformed {
            what: self.what(),
            field,
        };
        let mut answer = parsed.ok_or_else(|| malformed("JSON"))?;
        let expires_on = answer
            .get("expires_on")
            .and_then(epoch_seconds)
            .unwrap_or_else(unknown_expiry);
        let token =
            take_string(&mut answer, "access_token").ok_or_else(|| malformed("access_token"))?;
        Ok(AccessToken::new(Secret::new(token), expires_on))
    }

    fn transport(&self, error: &reqwest::Error) -> TokenError {
        if error.is_timeout() {
            let secs = if error.is_connect() {
                IDENTITY_CONNECT_TIMEOUT
            } else {
                IDENTITY_TIMEOUT
            };
            return TokenError::TimedOut {
                what: self.what(),
                secs: secs.as_secs(),
                help: self.endpoint.help(),
            };
        }
        TokenError::Unreachable {
            what: self.what(),
            reason: innermost(error),
            help: self.endpoint.help(),
        }
    }
}

/// The `error`, `error_description` (IMDS) or `message` (App Service) of
/// an error answer, bounded, as ` code: description`.
fn error_detail(parsed: Option<&serde_json::Value>) -> String {
    let text = |key: &str| {
        parsed
            .and_then(|parsed| parsed.get(key))
            .and_then(serde_json::Value::as_str)
            .map(one_line_message)
            .filter(|text| !text.is_empty())
    };
    match (
        text("error"),
        text("error_description").or_else(|| text("message")),
    ) {
        (Some(code), Some(description)) => format!(" {code}: {description}"),
        (Some(text), None) | (None, Some(text)) => format!(": {text}"),
        (None, None) => String::new(),
    }
}

/// The innermost cause's description (the OS's "Connection refused"),
/// which carries no body.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(cause) = last.source() {
        last = cause;
    }
    one_line_message(&last.to_string())
}

#[async_trait::async_trait]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let resource = resource(scopes).map_err(TokenError::into_azure)?;
        self.cache
            .get_or_fetch(resource.clone(), self.fetch(&resource))
            .await
    }
}

/// The `az` CLI's login: `az account get-access-token --resource …
/// --output json`, run without a shell or standard input (so it never
/// prompts), bounded in time and in what is read of its output. No token
/// is ever put on its command line.
pub struct AzureCliCredential {
    program: PathBuf,
    cache: Cache,
}

impl fmt::Debug for AzureCliCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCliCredential")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl AzureCliCredential {
    /// Runs `program` as `az` (the path [`Auth::from_env`] found on `PATH`,
    /// or a test's stand-in).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        AzureCliCredential {
            program: program.into(),
            cache: Cache::default(),
        }
    }

    async fn fetch(&self, resource: &str) -> Result<AccessToken, TokenError> {
        let program = self.program.display().to_string();
        let mut child = tokio::process::Command::new(&self.program)
            .args(["account", "get-access-token", "--resource", resource])
            .args(["--output", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| TokenError::CliNotRun {
                program: program.clone(),
                reason: error.to_string(),
            })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(TokenError::CliNotRun {
                program,
                reason: "its output could not be read".into(),
            });
        };
        let what = format!("`{program} account get-access-token`");
        let run = async {
            // Room enough that reading never moves the token (which would
            // leave an unwiped copy behind).
            let mut out = Zeroizing::new(Vec::with_capacity(2 * MAX_ANSWER));
            let mut err = Vec::new();
            // A complaint longer than the bound still has its first line.
            let (complete, _) = tokio::join!(
                read_bounded(stdout, &mut out),
                read_bounded(stderr, &mut err)
            );
            if !complete.is_ok_and(|complete| complete) {
                return Err(TokenError::TooLarge { what: what.clone() });
            }
            let status = child.wait().await.map_err(|error| TokenError::CliNotRun {
                program: program.clone(),
                reason: error.to_string(),
            })?;
            Ok((out, err, status))
        };
        // Dropping `child` (on timeout or too much output) kills az.
        let Ok(ran) = tokio::time::timeout(AZ_TIMEOUT, run).await else {
            return Err(TokenError::CliFailed {
                status: format!("no answer within {}s", AZ_TIMEOUT.as_secs()),
                stderr: String::new(),
            });
        };
        let (out, err, status) = ran?;
        if !status.success() {
            let first = String::from_utf8_lossy(&err)
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map(|line| format!(": {}", one_line_message(line)))
                .unwrap_or_default();
            return Err(TokenError::CliFailed {
                status: match status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => "killed by a signal".into(),
                },
                stderr: first,
            });
        }
        let mut answer = serde_json::from_slice::<serde_json::Value>(&out).map_err(|_| {
            TokenError::Malformed {
                what: what.clone(),
                field: "JSON",
            }
        })?;
        // `expires_on` (epoch seconds) since az 2.54; before it only
        // `expiresOn`, a local time without offset.
        let expires_on = answer
            .get("expires_on")
            .and_then(epoch_seconds)
            .or_else(|| {
                answer
                    .get("expiresOn")
                    .and_then(serde_json::Value::as_str)
                    .and_then(local_time)
            })
            .unwrap_or_else(unknown_expiry);
        let token = take_string(&mut answer, "accessToken").ok_or(TokenError::Malformed {
            what,
            field: "accessToken",
        })?;
        Ok(AccessToken::new(Secret::new(token), expires_on))
    }
}

/// Reads `reader` into `buffer` up to [`MAX_ANSWER`] bytes: `Ok(false)`
/// when there was more.
async fn read_bounded(
    reader: impl AsyncRead + Unpin,
    buffer: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let limit = u64::try_from(MAX_ANSWER).unwrap_or(u64::MAX);
    reader.take(limit + 1).read_to_end(buffer).await?;
    Ok(buffer.len() <= MAX_ANSWER)
}

/// Older az's `expiresOn` (`2026-12-01 10:00:00.000000`, this machine's
/// local time, as az wrote it with Python's `datetime.fromtimestamp`).
fn local_time(text: &str) -> Option<OffsetDateTime> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let local = chrono::Local.from_local_datetime(&naive).earliest()?;
    OffsetDateTime::from_unix_timestamp(local.timestamp()).ok()
}

#[async_trait::async_trait]
impl TokenCredential for AzureCliCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let resource = resource(scopes).map_err(TokenError::into_azure)?;
        self.cache
            .get_or_fetch(resource.clone(), self.fetch(&resource))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `answer` (raw HTTP/1.1) to each connection on a loopback
    /// port, and answers what `CappedHttp` made of a GET there.
    async fn capped_get(answer: Vec<u8>) -> azure_core::Result<AsyncRawResponse> {
        use tokio::io::AsyncWriteExt;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            // The client may hang up early: that is the point.
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        });
        let request = Request::new(url, azure_core::http::Method::Get);
        let response = CappedHttp(reqwest::Client::new())
            .execute_request(&request)
            .await;
        server.abort();
        response
    }

    #[tokio::test]
    async fn answers_past_the_cap_are_refused_whether_announced_or_streamed() {
        let small =
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-ms-request-id: r1\r\n\r\n{}".to_vec();
        let response = capped_get(small).await.unwrap();
        assert_eq!(
            response
                .headers()
                .get_optional_str(&HeaderName::from_static("x-ms-request-id")),
            Some("r1")
        );
        assert_eq!(&response.into_body().collect().await.unwrap()[..], b"{}");

        let announced = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_RESPONSE_BYTES + 1
        );
        let error = capped_get(announced.into_bytes()).await.unwrap_err();
        assert!(
            error.downcast_ref::<ResponseTooLarge>().is_some(),
            "{error}"
        );

        // Chunked, no length announced: cut off once past the cap.
        let mut streamed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..=MAX_RESPONSE_BYTES / chunk.len() {
            streamed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            streamed.extend_from_slice(&chunk);
            streamed.extend_from_slice(b"\r\n");
        }
        streamed.extend_from_slice(b"0\r\n\r\n");
        let error = capped_get(streamed).await.unwrap_err();
        assert!(
            error.downcast_ref::<ResponseTooLarge>().is_some(),
            "{error}"
        );
        let message = Failure::of(&error)
            .into_sink_error("listing secrets")
            .to_string();
        assert!(message.contains("larger than 1048576 bytes"), "{message}");
    }

    #[test]
    fn a_listing_follows_only_fresh_links_on_the_vault_and_stays_bounded() {
        let vault = Url::parse("https://acme.vault.azure.net").unwrap();
        let link = |url: &str| PagerContinuation::Link(Url::parse(url).unwrap());
        let refused =
            |listing: &mut Listing, next: &PagerContinuation| match listing.page(25, Some(next)) {
                Err(SinkError::Rejected(message)) => message,
                other => panic!("expected a refusal, got {other:?}"),
            };
        let mut listing = Listing::new(&vault, "/secrets", "listing secrets");
        let first =
            "https://acme.vault.azure.net:443/secrets?api-version=7.6&$skiptoken=AA&maxresults=25";
        listing.page(25, Some(&link(first))).unwrap();
        // The same token under another api-version is the same page.
        let again = refused(
            &mut listing,
            &link(
                "https://acme.vault.azure.net/secrets?$skiptoken=AA&maxresults=25&api-version=7.5",
            ),
        );
        assert!(again.contains("already listed"), "{again}");
        for elsewhere in [
            "https://evil.example/secrets?$skiptoken=BB",
            "http://acme.vault.azure.net/secrets?$skiptoken=BB",
            "https://acme.vault.azure.net:8443/secrets?$skiptoken=BB",
            "https://acme.vault.azure.net/keys?$skiptoken=BB",
            "https://user@acme.vault.azure.net/secrets?$skiptoken=BB",
        ] {
            let message = refused(&mut listing, &link(elsewhere));
            assert!(
                message.contains("no token goes there"),
                "{elsewhere}: {message}"
            );
        }
        let token = refused(&mut listing, &PagerContinuation::Token("BB".into()));
        assert!(token.contains("token"), "{token}");
        listing
            .page(
                25,
                Some(&link("https://acme.vault.azure.net/secrets?$skiptoken=BB")),
            )
            .unwrap();
        listing.page(0, None).unwrap();

        let mut endless = Listing::new(&vault, "/secrets", "listing secrets");
        let message = (0..)
            .find_map(|page| {
                let next = link(&format!(
                    "https://acme.vault.azure.net/secrets?$skiptoken={page}"
                ));
                endless.page(25, Some(&next)).err()
            })
            .unwrap()
            .to_string();
        assert!(message.contains("more than 100000 secrets"), "{message}");
        assert_eq!(endless.items, MAX_LISTED + 25);
    }

    #[test]
    fn a_refused_token_names_the_credentials_to_fix() {
        let error = Failure::Http {
            status: 401,
            code: Some("Unauthorized".into()),
            inner: None,
            message: Some("AKV10022: Invalid audience.".into()),
            retry_after: None,
        }
        .into_sink_error("listing secrets");
        let SinkError::Denied(message) = error else {
            panic!("expected Denied, got {error:?}");
        };
        for fix in [
            "AZURE_ACCESS_TOKEN",
            "AZURE_CLIENT_SECRET",
            "az login",
            "HTTP 401",
        ] {
            assert!(message.contains(fix), "{message}");
        }
    }

    #[test]
    fn authority_hosts_become_origins() {
        assert_eq!(
            authority_url("https://login.microsoftonline.com/").unwrap(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            authority_url("https://127.0.0.1:8443").unwrap(),
            "https://127.0.0.1:8443"
        );
        assert_eq!(
            one_line("AADSTS7000215: x.\r\nTrace ID: 1\r\n"),
            "AADSTS7000215: x. Trace ID: 1"
        );
    }

    #[test]
    fn static_tokens_are_redacted() {
        assert_eq!(
            format!("{:?}", StaticToken::new("eyJ0eXAiOi")),
            "StaticToken(<redacted>)"
        );
    }

    #[test]
    fn scopes_become_resources() {
        assert_eq!(
            resource(&["https://vault.azure.net/.default"]).unwrap(),
            "https://vault.azure.net"
        );
        assert_eq!(
            resource(&["https://vault.azure.cn"]).unwrap(),
            "https://vault.azure.cn"
        );
        assert!(resource(&[]).is_err());
        assert!(resource(&["a", "b"]).is_err());
        assert!(resource(&["https://vault.azure.net --debug"]).is_err());
        assert!(resource(&["--tenant"]).is_err());
    }

    #[test]
    fn a_challenge_for_another_domain_names_the_setting() {
        let error = azure_core::Error::with_message(
            ErrorKind::Other,
            "challenge resource 'https://vault.azure.net/.default' doesn't match the requested domain '127.0.0.1'. Set verify_challenge_resource in client options to disable this validation if necessary.",
        );
        let message = Failure::of(&error)
            .into_sink_error("listing secrets")
            .to_string();
        assert!(
            message.contains("https://vault.azure.net/.default")
                && message.contains("127.0.0.1")
                && message.contains("VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=1"),
            "{message}"
        );
    }

    #[test]
    fn retry_after_reads_every_form() {
        let mut headers = Headers::new();
        headers.insert(RETRY_AFTER, "7");
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(HeaderName::from_static("x-ms-retry-after-ms"), "1500");
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after(&Headers::new()), None);
    }
}
