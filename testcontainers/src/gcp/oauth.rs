//! Google's OAuth 2 side of the Secret Manager fake: the token endpoint
//! (`POST /token`, as `https://oauth2.googleapis.com/token` answers) and the
//! self-signed JWTs that service-account keys send as bearer tokens.
//!
//! - `grant_type=refresh_token` with `client_id`, `client_secret` and
//!   `refresh_token` (what an `authorized_user` credentials file, e.g.
//!   gcloud's `application_default_credentials.json`, holds): the body may be
//!   a form (`application/x-www-form-urlencoded`, RFC 6749) or JSON, as
//!   Google accepts both. An unknown client is `401 invalid_client` ("The
//!   OAuth client was not found."), a wrong client secret `401
//!   invalid_client` ("Unauthorized"), a wrong refresh token `400
//!   invalid_grant` ("Bad Request"), a missing field `400 invalid_request`.
//! - `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with an
//!   `assertion`: an RS256 JWT signed with the fake's service-account key,
//!   `iss` the account's email, `aud` the token endpoint, a `scope`, and at
//!   most an hour between `iat` and `exp`; the signature is verified with
//!   the key's public half. Anything else is `400 invalid_grant` with
//!   Google's descriptions.
//! - A success is `{"access_token","expires_in":3599,"scope","token_type":
//!   "Bearer"}` with a fresh `ya29.` token the Secret Manager side accepts
//!   with the admin role.
//! - A self-signed JWT as a bearer token (what `google-cloud-auth` sends for
//!   a `service_account` key: no token exchange at all) is accepted when
//!   its RS256 signature verifies with the key named by its `kid`, `iss`
//!   and `sub` are the account's email, it carries the `cloud-platform`
//!   scope or the audience `https://secretmanager.googleapis.com/`, and it
//!   is within its `iat`..`exp` hour.
//!
//! The service-account key (RSA 2048, `aws-lc-rs`) is generated on the
//! first call that needs it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

/// The scope every Secret Manager call needs.
pub(super) const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const SECRET_MANAGER_AUDIENCE: &str = "https://secretmanager.googleapis.com/";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google allows an hour between `iat` and `exp`; clients pad both ends
/// with a few seconds of clock-skew allowance.
const MAX_LIFETIME_SECS: i64 = 3600 + 60;
const CLOCK_SKEW_SECS: i64 = 300;
const EXPIRES_IN: u64 = 3599;

/// The OAuth client, the user's refresh token, the access tokens issued and
/// the service account.
#[derive(Debug)]
pub(super) struct Issuer {
    project: String,
    token_uri: OnceLock<String>,
    issued: Mutex<HashSet<String>>,
    token_requests: AtomicUsize,
    signed_jwt_calls: AtomicUsize,
    service_account: OnceLock<ServiceAccount>,
}

/// The fake's one service-account key.
struct ServiceAccount {
    email: String,
    key_id: String,
    /// `RSAPublicKey` DER.
    public_key: Vec<u8>,
    /// PKCS #8, PEM.
    private_key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    pub(super) fn new(project: &str) -> Self {
        Issuer {
            project: project.to_owned(),
            token_uri: OnceLock::new(),
            issued: Mutex::new(HashSet::new()),
            token_requests: AtomicUsize::new(0),
            signed_jwt_calls: AtomicUsize::new(0),
            service_account: OnceLock::new(),
        }
    }

    /// Records where the fake serves `/token` (known once it listens).
    pub(super) fn set_endpoint(&self, endpoint: &str) {
        let _ = self.token_uri.set(format!("{endpoint}/token"));
    }

    pub(super) fn token_uri(&self) -> &str {
        self.token_uri
            .get()
            .map_or(GOOGLE_TOKEN_URI, String::as_str)
    }

    pub(super) fn token_requests(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    pub(super) fn signed_jwt_calls(&self) -> usize {
        self.signed_jwt_calls.load(Ordering::SeqCst)
    }

    fn service_account(&self) -> &ServiceAccount {
        self.service_account.get_or_init(|| {
            let pair = KeyPair::generate(KeySize::Rsa2048).expect("aws-lc generates an RSA key");
            let pkcs8 = pair.as_der().expect("the key encodes as PKCS #8");
            let base64 = Zeroizing::new(STANDARD.encode(pkcs8.as_ref()));
            let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
            for line in base64.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            let public_key = pair.public_key().as_ref().to_vec();
            let key_id = public_key
                .iter()
                .rev()
                .take(20)
                .map(|b| format!("{b:02x}"))
                .collect();
            ServiceAccount {
                email: format!("vsync-sync@{}.iam.gserviceaccount.com", self.project),
                key_id,
                public_key,
                private_key_pem: pem,
            }
        })
    }

    /// A `service_account` key file for the fake's account, as the console's
    /// "Create key" (JSON) downloads it, with `token_uri` at the fake.
    pub(super) fn service_account_key_json(&self) -> Zeroizing<String> {
        let account = self.service_account();
        let key = json!({
            "type": "service_account",
            "project_id": self.project,
            "private_key_id": account.key_id,
            "private_key": account.private_key_pem.as_str(),
            "client_email": account.email,
            "client_id": "109876543210987654321",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{}",
                account.email.replace('@', "%40")
            ),
            "universe_domain": "googleapis.com",
        });
        Zeroizing::new(serde_json::to_string_pretty(&key).expect("JSON"))
    }

    /// The service account's email.
    pub(super) fn service_account_email(&self) -> String {
        self.service_account().email.clone()
    }

    /// Whether `bearer` is an access token this issuer handed out, or a
    /// valid self-signed JWT of its service account.
    pub(super) fn accepts(&self, bearer: &str) -> bool {
        if self
            .issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(bearer)
        {
            return true;
        }
        if bearer.split('.').count() != 3 || self.service_account.get().is_none() {
            return false;
        }
        let Ok(claims) = self.verify_jwt(bearer, true) else {
            return false;
        };
        let scoped = claims
            .get("scope")
            .and_then(Value::as_str)
            .is_some_and(|scope| scope.split(' ').any(|s| s == CLOUD_PLATFORM));
        let audience = claims.get("aud").and_then(Value::as_str);
        let for_secret_manager = audience.is_some_and(|aud| {
            aud.trim_end_matches('/') == SECRET_MANAGER_AUDIENCE.trim_end_matches('/')
        });
        if scoped || for_secret_manager {
            self.signed_jwt_calls.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    /// `POST /token`.
    pub(super) fn token(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let params: Map<String, Value> = match content_type.as_str() {
            "application/x-www-form-urlencoded" => {
                let Ok(body) = std::str::from_utf8(body) else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Bad Request");
                };
                form_pairs(body)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect()
            }
            "application/json" => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => map,
                _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Bad Request"),
            },
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required parameter is missing: grant_type",
                );
            }
        };
        let param = |name: &str| {
            params
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        };
        match param("grant_type") {
            None => oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required parameter is missing: grant_type",
            ),
            Some("refresh_token") => self.refresh(
                param("client_id"),
                param("client_secret"),
                param("refresh_token"),
            ),
            Some(JWT_BEARER) => self.jwt_bearer(param("assertion")),
            Some(other) => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            ),
        }
    }

    fn refresh(
        &self,
        client_id: Option<&str>,
        client_secret: Option<&str>,
        refresh_token: Option<&str>,
    ) -> Response {
        use super::GcpSecretManagerServer as Fake;
        let Some(client_id) = client_id else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: client_id",
            );
        };
        if client_id != Fake::OAUTH_CLIENT_ID {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            );
        }
        if client_secret != Some(Fake::OAUTH_CLIENT_SECRET) {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
        }
        let Some(refresh_token) = refresh_token else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: refresh_token",
            );
        };
        if refresh_token != Fake::REFRESH_TOKEN {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
        }
        self.issue(&format!(
            "{CLOUD_PLATFORM} https://www.googleapis.com/auth/userinfo.email openid"
        ))
    }

    fn jwt_bearer(&self, assertion: Option<&str>) -> Response {
        let Some(assertion) = assertion else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: assertion",
            );
        };
        if self.service_account.get().is_none() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid grant: account not found",
            );
        }
        let claims = match self.verify_jwt(assertion, false) {
            Ok(claims) => claims,
            Err(description) => {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
            }
        };
        let audience = claims
            .get("aud")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if audience != self.token_uri() && audience != GOOGLE_TOKEN_URI {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid JWT: Failed audience check. The expected audience is the token endpoint.",
            );
        }
        let Some(scope) = claims
            .get("scope")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
        else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "Invalid OAuth scope or ID token audience provided.",
            );
        };
        self.issue(scope)
    }

    fn issue(&self, scope: &str) -> Response {
        let mut random = [0u8; 24];
        aws_lc_rs::rand::fill(&mut random).expect("aws-lc has randomness");
        let token = format!("ya29.vsync-fake-{}", URL_SAFE_NO_PAD.encode(random));
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone());
        let mut response = axum::Json(json!({
            "access_token": token,
            "expires_in": EXPIRES_IN,
            "scope": scope,
            "token_type": "Bearer",
        }))
        .into_response();
        no_store(&mut response);
        response
    }

    /// Verifies an RS256 JWT of the service account: its signature, `iss`
    /// (and `sub`, when present), and its lifetime. `kid_required`: a
    /// self-signed JWT must name its key, an assertion may omit it. Answers
    /// the claims, or Google's description of what is wrong.
    fn verify_jwt(
        &self,
        jwt: &str,
        kid_required: bool,
    ) -> Result<Map<String, Value>, &'static str> {
        const BAD_SIGNATURE: &str = "Invalid JWT Signature.";
        let account = self.service_account();
        let mut parts = jwt.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("Invalid JWT: not a JWS compact serialization.");
        };
        let decode = |part: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(map) => Some(map),
                _ => None,
            }
        };
        let head = decode(header).ok_or("Invalid JWT: the header is not base64url JSON.")?;
        if head.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err("Invalid JWT: the algorithm must be RS256.");
        }
        match head.get("kid").and_then(Value::as_str) {
            Some(kid) if kid == account.key_id => {}
            None if !kid_required => {}
            _ => return Err(BAD_SIGNATURE),
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| BAD_SIGNATURE)?;
        let signed = &jwt[..header.len() + 1 + payload.len()];
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &account.public_key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| BAD_SIGNATURE)?;
        let claims = decode(payload).ok_or("Invalid JWT: the claims are not base64url JSON.")?;
        let iss = claims.get("iss").and_then(Value::as_str);
        let sub = claims.get("sub").and_then(Value::as_str);
        if iss != Some(account.email.as_str()) || sub.is_some_and(|sub| sub != account.email) {
            return Err("Invalid JWT: the issuer is not the key's service account.");
        }
        const TIMEFRAME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
        let (Some(iat), Some(exp)) = (
            claims.get("iat").and_then(Value::as_i64),
            claims.get("exp").and_then(Value::as_i64),
        ) else {
            return Err(TIMEFRAME);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if exp <= iat || exp - iat > MAX_LIFETIME_SECS || iat > now + CLOCK_SKEW_SECS || exp <= now
        {
            return Err(TIMEFRAME);
        }
        Ok(claims)
    }
}

/// Google's OAuth error body.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The pairs of an `application/x-www-form-urlencoded` body.
fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) << 4 | hex(bytes[i + 2]));
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        assert_eq!(
            form_pairs("grant_type=refresh_token&refresh_token=1%2F%2Fabc+d&x"),
            [
                ("grant_type".to_owned(), "refresh_token".to_owned()),
                ("refresh_token".to_owned(), "1//abc d".to_owned()),
                ("x".to_owned(), String::new()),
            ]
        );
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz"), "%zz");
    }
}
