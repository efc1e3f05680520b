//! HashiCorp Vault: the client the KV v2 sink and the Vault source share.
//! The address must be an http(s) URL, and plain http only on loopback
//! (a token must not travel in clear text); every vaultrs setting is given
//! explicitly, so no `VAULT_*` variable of the process (say,
//! `VAULT_SKIP_VERIFY`) changes what the library does.

use std::time::Duration;

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vsync_engine::sink::SinkError;
use zeroize::Zeroizing;

/// How long one request may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one Vault server, with the settings it was made from.
pub struct Connection {
    /// The vaultrs client.
    pub client: VaultClient,
    /// The server's address, without a trailing `/`.
    pub address: String,
    /// The Vault Enterprise namespace, if any, without surrounding `/`.
    pub namespace: Option<String>,
}

/// Checks the settings and makes the client. Nothing is sent yet.
/// `ca_certs` are PEM files trusted besides the system's roots.
pub fn connect(
    address: Option<String>,
    token: Option<Zeroizing<String>>,
    namespace: Option<String>,
    ca_certs: Vec<String>,
) -> Result<Connection, SinkError> {
    let address =
        address.ok_or_else(|| SinkError::Misconfigured("the Vault address is not set".into()))?;
    let address = address.trim_end_matches('/').to_owned();
    match url::Url::parse(&address) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
        _ => {
            return Err(SinkError::Misconfigured(format!(
                "the Vault address {address:?} is not an http:// or https:// URL"
            )));
        }
    }
    vsync_engine::sink::require_secure_transport("the Vault address", &address)?;
    let token = token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| SinkError::Misconfigured("no Vault token (VAULT_TOKEN) is set".into()))?;
    let namespace = namespace
        .map(|ns| ns.trim_matches('/').to_owned())
        .filter(|ns| !ns.is_empty());
    let settings = VaultClientSettingsBuilder::default()
        .address(&address)
        .token(token.as_str())
        .namespace(namespace.clone())
        .ca_certs(ca_certs)
        .identity(None)
        .verify(true)
        .timeout(Some(REQUEST_TIMEOUT))
        .build()
        .map_err(|e| SinkError::Misconfigured(format!("Vault client settings: {e}")))?;
    let client = VaultClient::new(settings)
        .map_err(|e| SinkError::Misconfigured(format!("Vault client: {e}")))?;
    Ok(Connection {
        client,
        address,
        namespace,
    })
}
