//! Proves the GCP fake's OAuth side answers as Google's token endpoint and
//! Secret Manager do, with raw HTTP requests (no SDK involved): refresh
//! tokens in a form or JSON body, Google's error codes for a wrong client,
//! secret or refresh token, JWT assertions signed with the service-account
//! key it hands out (signature, audience, scope and lifetime checked), and
//! self-signed JWTs as bearer tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use vsync_testcontainers::GcpSecretManagerServer as Gcp;

const PROJECT: &str = "acme-prod";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Value,
}

async fn request(
    fake: &Gcp,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: String,
    bearer: Option<&str>,
) -> Answer {
    let endpoint = fake.endpoint();
    let host = endpoint.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&host).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host);
    if let Some(content_type) = content_type {
        builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
    }
    if let Some(token) = bearer {
        builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender
        .send_request(builder.body(Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn token_form(fake: &Gcp, form: &str) -> Answer {
    request(
        fake,
        "POST",
        "/token",
        Some("application/x-www-form-urlencoded"),
        form.to_owned(),
        None,
    )
    .await
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn refresh_form(client_id: &str, client_secret: &str, refresh_token: &str) -> String {
    format!(
        "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}",
        encode(client_id),
        encode(client_secret),
        encode(refresh_token)
    )
}

async fn list_with(fake: &Gcp, token: &str) -> u16 {
    request(
        fake,
        "GET",
        &format!("/v1/projects/{PROJECT}/secrets"),
        None,
        String::new(),
        Some(token),
    )
    .await
    .status
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWT signed with the fake's service-account key (`kid` named).
fn signed_jwt(fake: &Gcp, claims: Value) -> String {
    let key: Value = serde_json::from_str(&fake.service_account_key_json()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|line| !line.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let pair = KeyPair::from_pkcs8(&der).unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key["private_key_id"]});
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn a_refresh_token_buys_an_access_token_secret_manager_accepts() {
    let fake = Gcp::start(PROJECT).await.unwrap();
    let answer = token_form(
        &fake,
        &refresh_form(
            Gcp::OAUTH_CLIENT_ID,
            Gcp::OAUTH_CLIENT_SECRET,
            Gcp::REFRESH_TOKEN,
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 3599);
    assert!(
        answer.body["scope"]
            .as_str()
            .unwrap()
            .contains(CLOUD_PLATFORM)
    );
    assert!(
        answer.headers[hyper::header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    let token = answer.body["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ya29."));
    assert_eq!(list_with(&fake, &token).await, 200);
    assert_eq!(list_with(&fake, "ya29.made-up").await, 401);

    // A JSON body works too (Google accepts it; google-cloud-auth sends it).
    let answer = request(
        &fake,
        "POST",
        "/token",
        Some("application/json"),
        json!({
            "grant_type": "refresh_token",
            "client_id": Gcp::OAUTH_CLIENT_ID,
            "client_secret": Gcp::OAUTH_CLIENT_SECRET,
            "refresh_token": Gcp::REFRESH_TOKEN,
            "scopes": null,
        })
        .to_string(),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_ne!(answer.body["access_token"].as_str().unwrap(), token);
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn bad_grants_get_googles_oauth_errors() {
    let fake = Gcp::start(PROJECT).await.unwrap();
    for (form, status, error, description) in [
        (
            refresh_form(Gcp::OAUTH_CLIENT_ID, Gcp::OAUTH_CLIENT_SECRET, "1//revoked"),
            400,
            "invalid_grant",
            "Bad Request",
        ),
        (
            refresh_form(Gcp::OAUTH_CLIENT_ID, "wrong", Gcp::REFRESH_TOKEN),
            401,
            "invalid_client",
            "Unauthorized",
        ),
        (
            refresh_form("someone-else", Gcp::OAUTH_CLIENT_SECRET, Gcp::REFRESH_TOKEN),
            401,
            "invalid_client",
            "The OAuth client was not found.",
        ),
        (
            format!(
                "grant_type=refresh_token&client_id={}&client_secret={}",
                encode(Gcp::OAUTH_CLIENT_ID),
                encode(Gcp::OAUTH_CLIENT_SECRET)
            ),
            400,
            "invalid_request",
            "Missing required parameter: refresh_token",
        ),
        (
            "client_id=x".to_owned(),
            400,
            "invalid_request",
            "Required parameter is missing: grant_type",
        ),
        (
            "grant_type=password".to_owned(),
            400,
            "unsupported_grant_type",
            "Invalid grant_type: password",
        ),
    ] {
        let answer = token_form(&fake, &form).await;
        assert_eq!(answer.status, status, "{form}: {}", answer.body);
        assert_eq!(answer.body["error"], error, "{form}");
        assert_eq!(answer.body["error_description"], description, "{form}");
        assert!(answer.body.get("access_token").is_none());
    }
    assert_eq!(fake.token_requests(), 6);
}

#[tokio::test]
async fn a_signed_jwt_assertion_is_verified_before_a_token_is_issued() {
    let fake = Gcp::start(PROJECT).await.unwrap();
    let email = fake.service_account_email();
    let iat = now();
    let claims = |aud: &str, scope: Option<&str>, iat: i64, exp: i64| {
        let mut claims = json!({"iss": email, "aud": aud, "iat": iat, "exp": exp});
        if let Some(scope) = scope {
            claims["scope"] = scope.into();
        }
        claims
    };
    let grant = |assertion: &str| {
        format!(
            "grant_type={}&assertion={}",
            encode(JWT_BEARER),
            encode(assertion)
        )
    };

    let good = signed_jwt(
        &fake,
        claims(&fake.token_uri(), Some(CLOUD_PLATFORM), iat, iat + 3600),
    );
    let answer = token_form(&fake, &grant(&good)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.body["access_token"].as_str().unwrap();
    assert_eq!(list_with(&fake, token).await, 200);

    // The signature covers header and claims: another payload under the
    // same signature is refused.
    let (head, rest) = good.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;
    let forged_claims = claims(&fake.token_uri(), Some(CLOUD_PLATFORM), iat, iat + 60);
    let forged = format!(
        "{head}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(forged_claims.to_string())
    );
    for (assertion, error, description) in [
        (forged, "invalid_grant", "Invalid JWT Signature."),
        (
            signed_jwt(
                &fake,
                claims(
                    "https://example.com/token",
                    Some(CLOUD_PLATFORM),
                    iat,
                    iat + 3600,
                ),
            ),
            "invalid_grant",
            "Invalid JWT: Failed audience check. The expected audience is the token endpoint.",
        ),
        (
            signed_jwt(&fake, claims(&fake.token_uri(), None, iat, iat + 3600)),
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ),
        (
            signed_jwt(
                &fake,
                claims(&fake.token_uri(), Some(CLOUD_PLATFORM), iat, iat + 7200),
            ),
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ),
    ] {
        let answer = token_form(&fake, &grant(&assertion)).await;
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_eq!(answer.body["error"], error);
        assert_eq!(answer.body["error_description"], description);
    }
}

#[tokio::test]
async fn a_self_signed_jwt_is_a_bearer_token() {
    let fake = Gcp::start(PROJECT).await.unwrap();
    let email = fake.service_account_email();
    let iat = now() - 10;
    let scoped = signed_jwt(
        &fake,
        json!({"iss": email, "sub": email, "scope": CLOUD_PLATFORM, "aud": null, "iat": iat, "exp": iat + 3620}),
    );
    assert_eq!(list_with(&fake, &scoped).await, 200);
    let audience = signed_jwt(
        &fake,
        json!({"iss": email, "sub": email, "aud": "https://secretmanager.googleapis.com/", "iat": iat, "exp": iat + 3600}),
    );
    assert_eq!(list_with(&fake, &audience).await, 200);
    assert_eq!(fake.signed_jwt_calls(), 2);

    for refused in [
        // Expired.
        json!({"iss": email, "sub": email, "scope": CLOUD_PLATFORM, "iat": iat - 7200, "exp": iat - 3600}),
        // Another service.
        json!({"iss": email, "sub": email, "aud": "https://storage.googleapis.com/", "iat": iat, "exp": iat + 3600}),
        // Another account.
        json!({"iss": "someone@else.iam.gserviceaccount.com", "scope": CLOUD_PLATFORM, "iat": iat, "exp": iat + 3600}),
    ] {
        assert_eq!(list_with(&fake, &signed_jwt(&fake, refused)).await, 401);
    }
    assert_eq!(fake.signed_jwt_calls(), 2);
    assert_eq!(fake.token_requests(), 0);
}
