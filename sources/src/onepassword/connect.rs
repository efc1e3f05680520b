//! A 1Password Connect server's REST API (`OP_CONNECT_HOST`,
//! `OP_CONNECT_TOKEN`): `GET /v1/vaults` finds the vault by name or id,
//! `GET /v1/vaults/{id}/items` (filtered by title or tag) lists its items in
//! one answer — Connect does not page — and `GET …/items/{id}` reads one
//! item with its fields. Connect reads one item per request, so the batch
//! is 1; it serves from its own synced copy and documents no rate limit,
//! so reads go four at a time, with 429 and 5xx retried by the engine.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Url};
use serde::Deserialize;
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{RateBudget, SinkError, one_line_message, require_secure_transport};
use vsync_engine::source::{ListedSecret, ReadBatch, Source, SourceCapabilities};

use super::{FullItem, Scope, Summary, append_bounded, is_id, listed, parse, values_of};

/// The most a vault listing may weigh: a few hundred bytes per vault.
const MAX_VAULTS: usize = 1024 * 1024;
/// The most an item listing may weigh: a few hundred bytes per item, so
/// room for some 50,000 items.
const MAX_ITEMS: usize = 32 * 1024 * 1024;
/// The most one item may weigh with its fields; files are not fields.
const MAX_ITEM: usize = 4 * 1024 * 1024;
/// The most of an error answer read for its message.
const MAX_ERROR: usize = 64 * 1024;

/// The items of one vault of a Connect server.
pub struct ConnectSource {
    http: Client,
    /// `OP_CONNECT_HOST` without a trailing `/`.
    host: String,
    /// `Bearer <OP_CONNECT_TOKEN>`, marked sensitive.
    authorization: HeaderValue,
    vault: String,
    scope: Scope,
    /// What this run's listing found: the vault's id and each title's item
    /// id, for the reads that follow.
    listing: Mutex<Option<Listing>>,
    caps: SourceCapabilities,
}

#[derive(Debug)]
struct Listing {
    vault_id: String,
    items: HashMap<String, String>,
}

impl fmt::Debug for ConnectSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSource")
            .field("host", &self.host)
            .field("vault", &self.vault)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Connect's error body.
#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// A vault as `GET /v1/vaults` lists it.
#[derive(Deserialize)]
struct Vault {
    id: String,
    name: String,
}

impl ConnectSource {
    /// Reads `vault` (a name or an id) of the Connect server at `host`
    /// with `token`. The host must be `https://` (plain `http://` only to
    /// this machine): the token travels with every request. Nothing is
    /// sent yet.
    pub fn new(host: &str, token: &str, vault: String, scope: Scope) -> Result<Self, SinkError> {
        let host = host.trim().trim_end_matches('/').to_owned();
        require_secure_transport("OP_CONNECT_HOST", &host)?;
        let parsed = Url::parse(&host).map_err(|error| {
            SinkError::Misconfigured(format!("OP_CONNECT_HOST {host:?} is not a URL: {error}"))
        })?;
        if parsed.host_str().is_none() || parsed.query().is_some() {
            return Err(SinkError::Misconfigured(format!(
                "OP_CONNECT_HOST {host:?} must be the Connect server's address, e.g. https://connect.example.com:8080"
            )));
        }
        let bearer = Zeroizing::new(format!("Bearer {}", token.trim()));
        let mut authorization = HeaderValue::from_str(&bearer).map_err(|_| {
            SinkError::Misconfigured(
                "OP_CONNECT_TOKEN holds characters an HTTP header cannot carry; copy the token again".into(),
            )
        })?;
        authorization.set_sensitive(true);
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| {
                SinkError::Misconfigured(format!("could not set up the HTTPS client: {error}"))
            })?;
        Ok(ConnectSource {
            http,
            host,
            authorization,
            vault,
            scope,
            listing: Mutex::new(None),
            caps: SourceCapabilities {
                metadata: true,
                binary: false,
                batch: 1,
                rate: RateBudget::unpaced(4),
            },
        })
    }

    fn url(&self, path: &str) -> Result<Url, SinkError> {
        Url::parse(&format!("{}{path}", self.host)).map_err(|error| {
            SinkError::Misconfigured(format!("OP_CONNECT_HOST {:?}: {error}", self.host))
        })
    }

    /// `GET url`: the body of a 2xx answer (at most `limit` bytes), else
    /// the error the status means. `doing` says what for, in messages.
    async fn get(
        &self,
        url: Url,
        limit: usize,
        doing: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SinkError> {
        let unreachable = |error: reqwest::Error| {
            SinkError::Unavailable(format!(
                "1Password Connect at {} could not be reached {doing}: {}",
                self.host,
                innermost(&error)
            ))
        };
        let mut response = self
            .http
            .get(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let success = (200..300).contains(&status);
        let limit = if success { limit } else { MAX_ERROR };
        let expected = response.content_length().unwrap_or(0);
        let mut body = Zeroizing::new(Vec::with_capacity(
            usize::try_from(expected).unwrap_or(limit).min(limit),
        ));
        let mut complete = true;
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if !append_bounded(&mut body, &chunk, limit) {
                complete = false;
                break;
            }
        }
        if success && !complete {
            return Err(SinkError::Rejected(format!(
                "1Password Connect at {} answered more than {limit} bytes {doing}, more than any vault or item holds",
                self.host
            )));
        }
        if success {
            return Ok(body);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = complete
            .then(|| serde_json::from_slice::<ErrorBody>(&body).ok())
            .flatten()
            .and_then(|error| error.message)
            .map(|message| one_line_message(&message))
            .filter(|message| !message.is_empty());
        Err(status_error(
            status,
            message,
            retry_after,
            doing,
            &self.vault,
        ))
    }

    /// The vault's id: `self.vault` is matched against each vault's id and
    /// name (one listing, whichever was given, and whether the server's
    /// filter is on `name` or `title`).
    async fn vault_id(&self) -> Result<String, SinkError> {
        let doing = "listing vaults";
        let body = self.get(self.url("/v1/vaults")?, MAX_VAULTS, doing).await?;
        let vaults: Vec<Vault> = parse(&body, "the vault listing")?;
        let matching: Vec<&Vault> = vaults
            .iter()
            .filter(|vault| vault.id == self.vault || vault.name == self.vault)
            .collect();
        match matching.as_slice() {
            [vault] if is_id(&vault.id) => Ok(vault.id.clone()),
            [vault] => Err(SinkError::Rejected(format!(
                "1Password Connect listed vault {:?} with an id that is not a 1Password id",
                vault.name
            ))),
            [] => {
                let mut names: Vec<&str> = vaults.iter().map(|vault| vault.name.as_str()).collect();
                names.sort_unstable();
                names.truncate(20);
                Err(SinkError::NotFound(format!(
                    "no vault named {:?} (or with that id) among the {} vaults OP_CONNECT_TOKEN can read{}; pass one with --set vault=<name or id>, or give the token access to it",
                    self.vault,
                    vaults.len(),
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", one_line_message(&names.join(", ")))
                    }
                )))
            }
            several => Err(SinkError::Rejected(format!(
                "{} vaults are named {:?}; pass the id of the one to read with --set vault=<id> ({})",
                several.len(),
                self.vault,
                several
                    .iter()
                    .map(|vault| one_line_message(&vault.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// A SCIM `eq` filter's quoted text.
fn scim_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// What a Connect status means, with what to fix for a refused token.
fn status_error(
    status: u16,
    message: Option<String>,
    retry_after: Option<Duration>,
    doing: &str,
    vault: &str,
) -> SinkError {
    let detail = format!(
        "1Password Connect answered HTTP {status} {doing}{}",
        message.map(|m| format!(": {m}")).unwrap_or_default()
    );
    match status {
        429 => SinkError::RateLimited { retry_after },
        401 => SinkError::Denied(format!(
            "{detail}; set OP_CONNECT_TOKEN to a valid access token of this Connect server"
        )),
        403 => SinkError::Denied(format!(
            "{detail}; the token in OP_CONNECT_TOKEN may not read vault {vault:?}: give it access in 1Password's Secrets Automation settings"
        )),
        404 => SinkError::NotFound(detail),
        408 | 500..=599 => SinkError::Unavailable(detail),
        _ => SinkError::Rejected(detail),
    }
}

/// The innermost cause of a transport error (the OS's "Connection
/// refused"), on one line.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(cause) = last.source() {
        last = cause;
    }
    one_line_message(&last.to_string())
}

#[async_trait::async_trait]
impl Source for ConnectSource {
    fn capabilities(&self) -> &SourceCapabilities {
        &self.caps
    }

    fn origin(&self) -> String {
        format!(
            "1password-connect:host={},vault={}{}",
            self.host,
            self.vault,
            self.scope.origin_part()
        )
    }

    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
        let vault_id = self.vault_id().await?;
        let mut url = self.url(&format!("/v1/vaults/{vault_id}/items"))?;
        match &self.scope {
            Scope::All => {}
            Scope::Titled(title) => {
                url.query_pairs_mut()
                    .append_pair("filter", &format!("title eq {}", scim_string(title)));
            }
            Scope::Tagged(tag) => {
                url.query_pairs_mut()
                    .append_pair("filter", &format!("tag eq {}", scim_string(tag)));
            }
        }
        let doing = format!("listing the items of vault {:?}", self.vault);
        let body = self.get(url, MAX_ITEMS, &doing).await?;
        let items: Vec<Summary> = parse(&body, "the item listing")?;
        let (secrets, items) = listed(items, &self.scope, &self.vault)?;
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = Some(Listing { vault_id, items });
        Ok(secrets)
    }

    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
        let mut batch = ReadBatch::default();
        for secret in secrets {
            let (vault_id, item_id) = {
                let listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
                let Some(listing) = listing.as_ref() else {
                    return Err(SinkError::Misconfigured(
                        "the 1Password source was read before it was listed".into(),
                    ));
                };
                let Some(item_id) = listing.items.get(&secret.name) else {
                    return Err(SinkError::Misconfigured(format!(
                        "item {:?} was not in this run's listing of vault {:?}",
                        secret.name, self.vault
                    )));
                };
                (listing.vault_id.clone(), item_id.clone())
            };
            let doing = format!("reading item {:?}", secret.name);
            let url = self.url(&format!("/v1/vaults/{vault_id}/items/{item_id}"))?;
            let body = match self.get(url, MAX_ITEM, &doing).await {
                Ok(body) => body,
                // Deleted since the listing: left out.
                Err(SinkError::NotFound(_)) => continue,
                Err(error) => return Err(error),
            };
            let item: FullItem = parse(&body, &format!("item {:?}", secret.name))?;
            if item.id != item_id {
                return Err(SinkError::Rejected(format!(
                    "1Password Connect answered another item when asked for {:?}",
                    secret.name
                )));
            }
            if let Some(values) = values_of(item, &secret.name)? {
                batch.values.extend(values);
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_must_be_https_or_loopback_and_the_token_is_never_shown() {
        let new = |host: &str| ConnectSource::new(host, "tok-xyzzy", "Ops".into(), Scope::All);
        let error = new("http://connect.internal:8080").unwrap_err().to_string();
        assert!(error.contains("https"), "{error}");
        assert!(new("http://127.0.0.1:8080/").is_ok());
        let source = new("https://connect.example.com/").unwrap();
        assert_eq!(
            source.origin(),
            "1password-connect:host=https://connect.example.com,vault=Ops"
        );
        assert!(!format!("{source:?}").contains("xyzzy"));
        let error = ConnectSource::new("https://c.example", "a\nb", "Ops".into(), Scope::All)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("OP_CONNECT_TOKEN") && !error.contains("a\nb"),
            "{error}"
        );
    }

    #[test]
    fn statuses_mean_what_connect_documents() {
        let error = |status| {
            status_error(
                status,
                Some("Invalid bearer token".into()),
                None,
                "listing vaults",
                "Ops",
            )
        };
        assert!(
            matches!(error(401), SinkError::Denied(m) if m.contains("OP_CONNECT_TOKEN") && m.contains("Invalid bearer token"))
        );
        assert!(matches!(error(403), SinkError::Denied(m) if m.contains("\"Ops\"")));
        assert!(matches!(error(404), SinkError::NotFound(_)));
        assert!(matches!(error(503), SinkError::Unavailable(_)));
        assert!(matches!(error(400), SinkError::Rejected(_)));
        assert!(matches!(
            status_error(429, None, Some(Duration::from_secs(2)), "", ""),
            SinkError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(2)
        ));
    }

    #[test]
    fn filters_quote_their_text() {
        assert_eq!(scim_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
