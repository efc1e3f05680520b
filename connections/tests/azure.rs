//! The Azure credentials vsync adds to the SDK's: a managed identity
//! against a local stand-in for IMDS and App Service's identity endpoint
//! (one canned answer per connection), the `az` CLI through stub scripts,
//! and which credential the environment picks. No error may show a token.
//! Unix only: the `az` stand-ins are shell scripts.
#![cfg(all(feature = "azure", unix))]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::http::Url;
use azure_core::time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vsync_connections::azure::{
    Auth, AzureCliCredential, ManagedIdentityCredential, TokenCredential,
};
use vsync_engine::sink::SinkError;
use zeroize::Zeroizing;

const SCOPE: &str = "https://vault.azure.net/.default";
const IMDS_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOi.imds-token";
const APP_SERVICE_HEADER: &str = "app-service-header-s3cret";

/// A local HTTP server that answers every request with `status` and
/// `body`, and keeps each request's head.
struct Endpoint {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Endpoint {
    async fn start(status: &'static str, body: String) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buffer = [0; 1024];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 16_384 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Endpoint { base, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// The request line's path and query parameters, and the headers
/// (lower-cased names) of a request head.
fn parse(head: &str) -> (String, HashMap<String, String>, HashMap<String, String>) {
    let mut lines = head.split("\r\n");
    let target = lines.next().unwrap().split(' ').nth(1).unwrap();
    let url = Url::parse(&format!("http://stand-in{target}")).unwrap();
    let query = url.query_pairs().into_owned().collect();
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    (url.path().to_owned(), query, headers)
}

fn in_an_hour() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp() + 3600
}

/// The error's Display and Debug, checked for the secrets that must never
/// appear in them.
fn shown(error: &azure_core::Error, secrets: &[&str]) -> String {
    let display = error.to_string();
    let debug = format!("{error:?}");
    for secret in secrets {
        assert!(!display.contains(secret), "{display}");
        assert!(!debug.contains(secret), "{debug}");
    }
    display
}

#[tokio::test]
async fn imds_is_asked_with_its_header_and_the_token_is_cached() {
    let expires = in_an_hour();
    let imds = Endpoint::start(
        "200 OK",
        format!(
            r#"{{"access_token":"{IMDS_TOKEN}","client_id":"c","expires_in":"3599","expires_on":"{expires}","ext_expires_in":"3599","not_before":"0","resource":"https://vault.azure.net","token_type":"Bearer"}}"#
        ),
    )
    .await;
    let credential =
        ManagedIdentityCredential::imds(Some(&imds.base), Some("user-assigned-id".into())).unwrap();

    let token = credential.get_token(&[SCOPE], None).await.unwrap();
    assert_eq!(token.token.secret(), IMDS_TOKEN);
    assert_eq!(token.expires_on.unix_timestamp(), expires);

    let requests = imds.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].starts_with("GET "), "{}", requests[0]);
    let (path, query, headers) = parse(&requests[0]);
    assert_eq!(path, "/metadata/identity/oauth2/token");
    assert_eq!(query["api-version"], "2018-02-01");
    assert_eq!(query["resource"], "https://vault.azure.net");
    assert_eq!(query["client_id"], "user-assigned-id");
    assert_eq!(headers["metadata"], "true");

    let again = credential.get_token(&[SCOPE], None).await.unwrap();
    assert_eq!(again.token.secret(), IMDS_TOKEN);
    assert_eq!(
        imds.requests().len(),
        1,
        "the second token came from the cache"
    );

    let shown = format!("{credential:?}");
    assert!(
        shown.contains("Imds") && !shown.contains(IMDS_TOKEN),
        "{shown}"
    );
}

#[tokio::test]
async fn app_service_is_asked_with_its_secret_header() {
    let expires = in_an_hour();
    let endpoint = Endpoint::start(
        "200 OK",
        format!(
            r#"{{"access_token":"{IMDS_TOKEN}","expires_on":"{expires}","resource":"https://vault.azure.net","token_type":"Bearer","client_id":"c"}}"#
        ),
    )
    .await;
    let credential = ManagedIdentityCredential::app_service(
        &format!("{}/msi/token", endpoint.base),
        Zeroizing::new(APP_SERVICE_HEADER.to_owned()),
        None,
    )
    .unwrap();
    let token = credential.get_token(&[SCOPE], None).await.unwrap();
    assert_eq!(token.token.secret(), IMDS_TOKEN);

    let (path, query, headers) = parse(&endpoint.requests()[0]);
    assert_eq!(path, "/msi/token");
    assert_eq!(query["api-version"], "2019-08-01");
    assert_eq!(query["resource"], "https://vault.azure.net");
    assert!(!query.contains_key("client_id"));
    assert_eq!(headers["x-identity-header"], APP_SERVICE_HEADER);
    assert!(!headers.contains_key("metadata"));

    let shown = format!("{credential:?}");
    assert!(!shown.contains(APP_SERVICE_HEADER), "{shown}");
}

#[tokio::test]
async fn a_refusal_says_what_to_check() {
    let imds = Endpoint::start(
        "400 Bad Request",
        r#"{"error":"invalid_request","error_description":"Identity not found"}"#.into(),
    )
    .await;
    let credential = ManagedIdentityCredential::imds(Some(&imds.base), None).unwrap();
    let error = credential.get_token(&[SCOPE], None).await.unwrap_err();
    assert!(matches!(
        error.kind(),
        azure_core::error::ErrorKind::Credential
    ));
    let message = shown(&error, &[IMDS_TOKEN]);
    assert!(
        message.contains("HTTP 400 invalid_request: Identity not found"),
        "{message}"
    );
    assert!(
        message.contains("IMDS") && message.contains("managed identity"),
        "{message}"
    );

    // Throttling may pass: the SDK's kind for a transport problem.
    let busy = Endpoint::start("429 Too Many Requests", "{}".into()).await;
    let credential = ManagedIdentityCredential::imds(Some(&busy.base), None).unwrap();
    let error = credential.get_token(&[SCOPE], None).await.unwrap_err();
    assert!(matches!(
        error.kind(),
        azure_core::error::ErrorKind::Connection
    ));
    assert!(shown(&error, &[]).contains("HTTP 429"));
}

#[tokio::test]
async fn answers_that_are_no_token_are_refused() {
    let huge = Endpoint::start("200 OK", format!(r#"{{"a":"{}"}}"#, "x".repeat(70_000))).await;
    let credential = ManagedIdentityCredential::imds(Some(&huge.base), None).unwrap();
    let error = credential.get_token(&[SCOPE], None).await.unwrap_err();
    assert!(
        shown(&error, &[]).contains("more than 65536 bytes"),
        "{error}"
    );

    let tokenless = Endpoint::start("200 OK", r#"{"expires_on":"1"}"#.into()).await;
    let credential = ManagedIdentityCredential::imds(Some(&tokenless.base), None).unwrap();
    let error = credential.get_token(&[SCOPE], None).await.unwrap_err();
    assert!(
        shown(&error, &[]).contains("without access_token"),
        "{error}"
    );
}

#[tokio::test]
async fn no_imds_fails_fast_with_a_clear_message() {
    // A port nothing listens on: refused at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let credential = ManagedIdentityCredential::imds(Some(&base), None).unwrap();
    let error = credential.get_token(&[SCOPE], None).await.unwrap_err();
    let message = shown(&error, &[]);
    assert!(message.contains("could not be reached"), "{message}");
    assert!(
        message.contains("IMDS answers only on Azure VMs"),
        "{message}"
    );

    // Accepted, never answered: bounded by the request timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let credential = ManagedIdentityCredential::imds(Some(&base), None).unwrap();
    let started = Instant::now();
    let error = credential.get_token(&[SCOPE], None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        shown(&error, &[]).contains("did not answer within 5s"),
        "{error}"
    );
    drop(silent);
}

#[test]
fn only_imds_may_be_plain_http_off_this_machine() {
    assert!(ManagedIdentityCredential::imds(None, None).is_ok());
    assert!(ManagedIdentityCredential::imds(Some("http://169.254.169.254"), None).is_ok());
    assert!(ManagedIdentityCredential::imds(Some("http://127.0.0.1:9"), None).is_ok());
    let refused = |result: Result<ManagedIdentityCredential, SinkError>| match result {
        Err(SinkError::Misconfigured(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        refused(ManagedIdentityCredential::imds(
            Some("http://10.0.0.1"),
            None
        ))
        .contains("https")
    );
    let header = || Zeroizing::new(APP_SERVICE_HEADER.to_owned());
    assert!(
        ManagedIdentityCredential::app_service("http://localhost:41741/msi/token", header(), None)
            .is_ok()
    );
    let message = refused(ManagedIdentityCredential::app_service(
        "http://identity.example/msi/token",
        header(),
        None,
    ));
    assert!(
        message.contains("IDENTITY_ENDPOINT") && message.contains("https"),
        "{message}"
    );
    assert!(!message.contains(APP_SERVICE_HEADER), "{message}");
}

/// An executable `az` stand-in in `dir` running `script`.
fn stub(dir: &Path, name: &str, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

// One test for every stub that runs, so no other thread of this binary
// forks while a stub is open for writing (which makes exec fail with
// "Text file busy").
#[tokio::test]
async fn the_az_cli_token_is_read_cached_and_its_failures_explained() {
    const AZ_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJub25jZSI6.az-token";
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let expires = in_an_hour();

    // The real answer's shape (az 2.54 and later).
    let az = stub(
        dir.path(),
        "az",
        &format!(
            r#"echo "$@" >> '{}'
printf '%s\n' '{{"accessToken":"{AZ_TOKEN}","expiresOn":"2026-12-01 10:00:00.000000","expires_on":{expires},"subscription":"00000000-0000-0000-0000-000000000000","tenant":"11111111-1111-1111-1111-111111111111","tokenType":"Bearer"}}'
"#,
            calls.display()
        ),
    );
    let credential = AzureCliCredential::new(&az);
    let token = credential.get_token(&[SCOPE], None).await.unwrap();
    assert_eq!(token.token.secret(), AZ_TOKEN);
    assert_eq!(token.expires_on.unix_timestamp(), expires);
    let again = credential.get_token(&[SCOPE], None).await.unwrap();
    assert_eq!(again.token.secret(), AZ_TOKEN);
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "account get-access-token --resource https://vault.azure.net --output json\n",
        "az ran once, with no token on its command line"
    );

    // Older az: only `expiresOn`, in local time.
    let old = stub(
        dir.path(),
        "az-old",
        &format!(
            r#"printf '%s\n' '{{"accessToken":"{AZ_TOKEN}","expiresOn":"2099-12-01 10:00:00.000000","tokenType":"Bearer"}}'"#
        ),
    );
    let token = AzureCliCredential::new(old)
        .get_token(&[SCOPE], None)
        .await
        .unwrap();
    let expected = OffsetDateTime::from_unix_timestamp(4_099_802_400).unwrap(); // 2099-12-01 10:00 UTC
    assert!(
        (token.expires_on - expected).abs() <= azure_core::time::Duration::hours(15),
        "{}",
        token.expires_on
    );

    // An expiry it cannot read: short-lived.
    let odd = stub(
        dir.path(),
        "az-odd",
        &format!(r#"printf '%s\n' '{{"accessToken":"{AZ_TOKEN}","expiresOn":"soon"}}'"#),
    );
    let token = AzureCliCredential::new(odd)
        .get_token(&[SCOPE], None)
        .await
        .unwrap();
    let left = token.expires_on - OffsetDateTime::now_utc();
    assert!(
        left > azure_core::time::Duration::minutes(4)
            && left <= azure_core::time::Duration::minutes(5)
    );

    // Not logged in: az's reason and what to run, never what it printed
    // on its standard output.
    let failing = stub(
        dir.path(),
        "az-failing",
        &format!(
            r#"echo '{{"accessToken":"{AZ_TOKEN}"}}'
echo "Please run 'az login' to setup account." >&2
echo "second line {AZ_TOKEN}" >&2
exit 1
"#
        ),
    );
    let error = AzureCliCredential::new(failing)
        .get_token(&[SCOPE], None)
        .await
        .unwrap_err();
    let message = shown(&error, &[AZ_TOKEN]);
    assert!(matches!(
        error.kind(),
        azure_core::error::ErrorKind::Credential
    ));
    assert!(message.contains("exit status 1"), "{message}");
    assert!(
        message.contains("Please run 'az login' to setup account."),
        "{message}"
    );
    assert!(message.contains("run `az login`"), "{message}");

    // Not JSON.
    let garbled = stub(
        dir.path(),
        "az-garbled",
        &format!("echo 'token: {AZ_TOKEN}'"),
    );
    let error = AzureCliCredential::new(garbled)
        .get_token(&[SCOPE], None)
        .await
        .unwrap_err();
    assert!(
        shown(&error, &[AZ_TOKEN]).contains("without JSON"),
        "{error}"
    );

    // Not there at all.
    let error = AzureCliCredential::new(dir.path().join("missing"))
        .get_token(&[SCOPE], None)
        .await
        .unwrap_err();
    assert!(shown(&error, &[]).contains("could not run"), "{error}");
}

/// What [`Auth::from_env`] picks from `vars`, as its Debug shows it.
fn chosen(vars: &[(&str, &str)]) -> Result<String, String> {
    let vars: HashMap<&str, &str> = vars.iter().copied().collect();
    let var = |name: &str| vars.get(name).map(|value| (*value).to_owned());
    match Auth::from_env(&var) {
        Ok(auth) => Ok(format!("{auth:?}")),
        Err(SinkError::Misconfigured(message)) => Err(message),
        Err(other) => panic!("expected Misconfigured, got {other:?}"),
    }
}

#[test]
fn the_environment_picks_the_credential_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    stub(&bin, "az", "exit 0");
    let path = format!("/nonexistent:{}", bin.display());
    let triple = [
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", "app"),
        ("AZURE_CLIENT_SECRET", "s3cret~value"),
    ];
    let app_service = [
        ("IDENTITY_ENDPOINT", "http://localhost:41741/msi/token"),
        ("IDENTITY_HEADER", APP_SERVICE_HEADER),
    ];

    let mut everything = vec![
        ("AZURE_ACCESS_TOKEN", "eyJ0.static"),
        ("PATH", path.as_str()),
    ];
    everything.extend(triple);
    everything.extend(app_service);
    everything.push(("AZURE_USE_MANAGED_IDENTITY", "1"));
    let shown = chosen(&everything).unwrap();
    assert_eq!(shown, "Credential(StaticToken(<redacted>))");

    let shown = chosen(&everything[1..]).unwrap();
    assert!(shown.starts_with("ClientSecret"), "{shown}");
    assert!(!shown.contains("s3cret~value"), "{shown}");
    let mut with_authority = triple.to_vec();
    with_authority.push(("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"));
    assert!(
        chosen(&with_authority)
            .unwrap()
            .contains("login.microsoftonline.us")
    );

    // App Service, with AZURE_CLIENT_ID alone naming a user-assigned
    // identity.
    let mut managed = vec![("PATH", path.as_str()), ("AZURE_CLIENT_ID", "mi-client")];
    managed.extend(app_service);
    let shown = chosen(&managed).unwrap();
    assert!(
        shown.contains("AppService") && shown.contains("mi-client"),
        "{shown}"
    );
    assert!(!shown.contains(APP_SERVICE_HEADER), "{shown}");

    // IMDS only when asked for, or on Azure compute; else az.
    let shown = chosen(&[
        ("PATH", path.as_str()),
        ("AZURE_USE_MANAGED_IDENTITY", "true"),
    ])
    .unwrap();
    assert!(
        shown.contains("Imds") && shown.contains("169.254.169.254"),
        "{shown}"
    );
    let shown = chosen(&[
        ("PATH", path.as_str()),
        (
            "IDENTITY_ENDPOINT",
            "http://localhost:40342/metadata/identity/oauth2/token",
        ),
    ])
    .unwrap();
    assert!(shown.contains("Imds"), "{shown}");
    let shown = chosen(&[("PATH", path.as_str()), ("AZURE_USE_MANAGED_IDENTITY", "0")]).unwrap();
    assert!(shown.contains("AzureCliCredential"), "{shown}");
    assert!(
        shown.contains(&bin.join("az").display().to_string()),
        "{shown}"
    );

    // A relative PATH entry is never searched, even one that leads to an
    // `az` from the current directory.
    let up = "../".repeat(std::env::current_dir().unwrap().components().count() - 1);
    let relative = format!("{up}{}", bin.strip_prefix("/").unwrap().display());
    assert!(Path::new(&relative).join("az").is_file());
    let message = chosen(&[("PATH", relative.as_str())]).unwrap_err();
    for name in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_ACCESS_TOKEN",
        "AZURE_USE_MANAGED_IDENTITY",
        "az login",
    ] {
        assert!(message.contains(name), "{message}");
    }

    // A partial service principal is named, not replaced by another login.
    let message = chosen(&[("PATH", path.as_str()), triple[1], triple[2]]).unwrap_err();
    assert!(message.contains("AZURE_TENANT_ID is not set"), "{message}");
    assert!(!message.contains("s3cret~value"), "{message}");
    let message = chosen(&[("PATH", path.as_str()), triple[1]]).unwrap_err();
    assert!(
        message.contains("AZURE_TENANT_ID and AZURE_CLIENT_SECRET are not set"),
        "{message}"
    );
}
