//! A real AWS Secrets Manager endpoint: moto's server (PyPI `moto[server]`),
//! with IAM authentication on, behind a front that injects faults, counts
//! writes and answers the way AWS does where moto does not.
//!
//! Why the front: moto cannot throttle, break one name's writes or count
//! calls, which the sink and source suites need ([`Faults`]), nor does it
//! hold `BatchGetSecretValue` to AWS's 20 secrets a call. And moto 5.2 differs
//! from AWS on secrets scheduled for deletion: a `CreateSecret` of such a
//! name gets `ResourceExistsException` (AWS: `InvalidRequestException`,
//! "already scheduled for deletion"), and a `PutSecretValue` to one
//! succeeds (AWS refuses it, "marked for deletion"). The front tracks the
//! deletions it forwards and answers those two cases as AWS does, so a
//! sink is tested against AWS's behaviour, not moto's. A name purged
//! behind the front's back (a test's direct delete without recovery) stays
//! "scheduled" until moto answers 404 for it: what AWS looks like while it
//! completes a delete without recovery, asynchronously. moto's refusals of
//! credentials (403 with an XML body) become AWS's (400 with a JSON code).
//!
//! Requests are forwarded unchanged, `Host` included: SigV4 signatures
//! cover it, and moto verifies them against the front's address the client
//! signed for.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::HarnessError;
use crate::faults::{Call, Fault, Faults};
use crate::proxy::{ProxyBody, ProxyServer, error_response, full, strip_hop_by_hop_headers};
use crate::service::{Log, Service, snapshot};

const REGION: &str = "us-east-1";
/// The IAM user the harness creates; its policy allows every Secrets
/// Manager action and nothing else.
const USER: &str = "vsync-sink";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}]}"#;
const MOTO: Service = Service {
    binary: "moto_server",
    env_var: "VSYNC_MOTO_SERVER_BIN",
    install_path: "moto/bin/moto_server",
    // Werkzeug prints this (on stderr) once the listener is bound.
    ready_marker: "Running on http://",
    // moto imports every service at start; on a busy two-core machine that
    // takes seconds, so the bound is generous and only trips on real trouble.
    startup_timeout: Duration::from_secs(60),
};

/// A running moto server on `127.0.0.1` with a random port, with IAM
/// authentication enforced for one user ([`MotoServer::access_key_id`]),
/// behind a front on another random port ([`MotoServer::endpoint`]).
///
/// The front runs on the test's tokio runtime. The process is killed when
/// this value is dropped.
#[derive(Debug)]
pub struct MotoServer {
    _child: Child,
    front: ProxyServer,
    moto: SocketAddr,
    faults: Arc<Faults>,
    access_key_id: String,
    secret_access_key: String,
    log: Log,
}

impl MotoServer {
    /// Starts moto, creates the IAM user and its access key, turns
    /// authentication on, and starts the front.
    ///
    /// The binary is looked up in `$VSYNC_MOTO_SERVER_BIN`, then
    /// `${VSYNC_TOOLS_DIR:-$HOME/.cache/vsync-tools}/moto/bin/moto_server`
    /// (where `scripts/install-services` puts it), then `PATH`.
    pub async fn start() -> Result<Self, HarnessError> {
        let binary = MOTO.find()?;
        let log = Log::default();
        let (child, moto) = spawn(&binary, &log).await?;
        let (access_key_id, secret_access_key) = bootstrap(moto).await?;
        let faults = Arc::new(Faults::default());
        let scheduled = Arc::new(Mutex::new(HashSet::new()));
        let front = {
            let faults = Arc::clone(&faults);
            ProxyServer::start(move |req| {
                front(moto, Arc::clone(&faults), Arc::clone(&scheduled), req)
            })
            .await?
        };
        Ok(Self {
            _child: child,
            front,
            moto,
            faults,
            access_key_id,
            secret_access_key,
            log,
        })
    }

    /// The endpoint a sink under test uses: the front, which injects
    /// faults and counts writes, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        self.front.endpoint()
    }

    /// moto itself, bypassing the front: for a test's back door (reading
    /// what is stored, edits "made in the console"), which must neither
    /// count as vsync's writes nor hit injected faults.
    pub fn direct_endpoint(&self) -> String {
        format!("http://{}", self.moto)
    }

    /// The access key id moto accepts.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key moto accepts.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The region the tests sign for.
    pub fn region(&self) -> &str {
        REGION
    }

    /// The front's faults and counters.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// What moto printed so far, for diagnosing a failing test.
    pub fn output(&self) -> String {
        snapshot(&self.log)
    }
}

/// Secrets Manager actions that change a secret, and the JSON field that
/// names it.
fn written_secret(action: &str) -> Option<&'static str> {
    match action {
        "CreateSecret" => Some("Name"),
        "PutSecretValue" | "UpdateSecret" | "DeleteSecret" | "RestoreSecret" | "TagResource"
        | "UntagResource" => Some("SecretId"),
        _ => None,
    }
}

async fn front(
    moto: SocketAddr,
    faults: Arc<Faults>,
    scheduled: Arc<Mutex<HashSet<String>>>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("reading request: {e}")),
    };
    let action = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|target| target.strip_prefix("secretsmanager."))
        .unwrap_or_default()
        .to_owned();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |name: &str| json.get(name).and_then(serde_json::Value::as_str);

    if action == "ListSecrets"
        && let Some(max) = json.get("MaxResults").and_then(serde_json::Value::as_i64)
        && !(1..=100).contains(&max)
    {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &format!(
                "1 validation error detected: Value '{max}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"
            ),
        );
    }

    // AWS takes 1 to 20 secrets a BatchGetSecretValue; moto takes any
    // number, which would hide a source asking for more.
    if action == "BatchGetSecretValue"
        && let Some(ids) = json
            .get("SecretIdList")
            .and_then(serde_json::Value::as_array)
        && !(1..=20).contains(&ids.len())
    {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "1 validation error detected: Value at 'secretIdList' failed to satisfy constraint: Member must have length less than or equal to 20",
        );
    }

    let read_kind = match action.as_str() {
        "ListSecrets" => Some(Call::List),
        "GetSecretValue" | "BatchGetSecretValue" | "DescribeSecret" => Some(Call::Read),
        _ => None,
    };
    if let Some(fault) = read_kind.and_then(|call| faults.on_call(call)) {
        return fault_response(fault);
    }

    let secret = written_secret(&action).and_then(field).map(str::to_owned);
    if let Some(secret) = &secret {
        let is_scheduled = lock(&scheduled).contains(secret);
        if is_scheduled && action == "CreateSecret" {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                "You can't create this secret because a secret with this name is already scheduled for deletion.",
            );
        }
        if is_scheduled && matches!(action.as_str(), "PutSecretValue" | "UpdateSecret") {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                "You can't perform this operation on the secret because it was marked for deletion.",
            );
        }
        // Counted only once the request passed the checks AWS makes.
        if let Some(fault) = faults.on_write(secret) {
            return fault_response(fault);
        }
    }

    strip_hop_by_hop_headers(&mut parts.headers);
    let response = match send(moto, Request::from_parts(parts, Full::new(body))).await {
        Ok(response) => response,
        Err(message) => return error_response(StatusCode::BAD_GATEWAY, message),
    };
    if response.status() == StatusCode::NOT_FOUND
        && let Some(secret) = &secret
    {
        // moto says the secret is gone (purged behind the front's back).
        lock(&scheduled).remove(secret);
    }
    if response.status().is_success()
        && let Some(secret) = secret
    {
        let force = json
            .get("ForceDeleteWithoutRecovery")
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        let mut scheduled = lock(&scheduled);
        match action.as_str() {
            "DeleteSecret" if !force => {
                scheduled.insert(secret);
            }
            "DeleteSecret" | "RestoreSecret" => {
                scheduled.remove(&secret);
            }
            _ => {}
        }
    }
    if response.status() == StatusCode::FORBIDDEN {
        return refused_as_aws_does(response).await;
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop_headers(&mut parts.headers);
    Response::from_parts(parts, body.boxed())
}

/// moto refuses credentials with 403 and an XML body (its query-protocol
/// errors); Secrets Manager speaks JSON 1.1 and answers 400 with a code, so
/// a client that judged by the status alone would take bad credentials for
/// a bad request. Rewritten here the way AWS answers.
async fn refused_as_aws_does(response: Response<Incoming>) -> Response<ProxyBody> {
    let body = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return error_response(StatusCode::BAD_GATEWAY, format!("reading moto: {e}")),
    };
    let xml = String::from_utf8_lossy(&body);
    let (code, message) = match xml_element(&xml, "Code").as_deref() {
        Some("InvalidClientTokenId") => (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        Some("SignatureDoesNotMatch") => (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
        _ => (
            "AccessDeniedException",
            "User is not authorized to perform this operation",
        ),
    };
    aws_error(StatusCode::BAD_REQUEST, code, message)
}

/// A [`Fault`] answered the way Secrets Manager does: throttling is HTTP 400
/// `ThrottlingException` with no `Retry-After` (AWS never names a time),
/// an outage a 503, a refused write a `ValidationException`.
fn fault_response(fault: Fault) -> Response<ProxyBody> {
    match fault {
        Fault::Throttle { .. } => aws_error(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        Fault::Unavailable => aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service is unavailable",
        ),
        Fault::Break => aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "the harness refuses writes of this secret",
        ),
    }
}

/// An error in the shape of AWS's JSON 1.1 protocol.
fn aws_error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "__type": code, "message": message }).to_string();
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(code) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends one request to moto on a fresh connection.
async fn send<B>(addr: SocketAddr, req: Request<B>) -> Result<Response<Incoming>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to moto at {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with moto at {addr}: {e}"))?;
    tokio::spawn(connection);
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("forwarding to moto at {addr}: {e}"))
}

/// Creates the IAM user, its policy and access key while moto still
/// accepts unauthenticated requests, then turns authentication on for
/// every later request (moto's `/moto-api/reset-auth` with 0 free actions).
async fn bootstrap(moto: SocketAddr) -> Result<(String, String), HarnessError> {
    iam(moto, &[("Action", "CreateUser"), ("UserName", USER)]).await?;
    iam(
        moto,
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", USER),
            ("PolicyName", "secretsmanager-all"),
            ("PolicyDocument", POLICY),
        ],
    )
    .await?;
    let created = iam(moto, &[("Action", "CreateAccessKey"), ("UserName", USER)]).await?;
    let (Some(access_key_id), Some(secret_access_key)) = (
        xml_element(&created, "AccessKeyId"),
        xml_element(&created, "SecretAccessKey"),
    ) else {
        return Err(bootstrap_error(format!(
            "CreateAccessKey answered without a key: {created}"
        )));
    };
    let request = Request::post("/moto-api/reset-auth")
        .header(header::HOST, moto.to_string())
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Full::new(Bytes::from_static(b"0")))
        .map_err(|e| bootstrap_error(e.to_string()))?;
    let (status, body) = exchange(moto, request).await?;
    if status != StatusCode::OK {
        return Err(bootstrap_error(format!(
            "turning authentication on: HTTP {status}: {body}"
        )));
    }
    Ok((access_key_id, secret_access_key))
}

/// One IAM query-protocol call. moto routes a request by the service in
/// its credential scope, so the bootstrap calls carry an `Authorization`
/// header that names IAM; nothing checks it before authentication is on.
async fn iam(moto: SocketAddr, params: &[(&str, &str)]) -> Result<String, HarnessError> {
    let mut form: Vec<String> = params
        .iter()
        .map(|(key, value)| format!("{key}={}", form_encode(value)))
        .collect();
    form.push("Version=2010-05-08".into());
    let request = Request::post("/")
        .header(header::HOST, moto.to_string())
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header(
            header::AUTHORIZATION,
            format!(
                "AWS4-HMAC-SHA256 Credential=bootstrap/20240101/{REGION}/iam/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .body(Full::new(Bytes::from(form.join("&"))))
        .map_err(|e| bootstrap_error(e.to_string()))?;
    let (status, body) = exchange(moto, request).await?;
    if status != StatusCode::OK {
        return Err(bootstrap_error(format!(
            "IAM {}: HTTP {status}: {body}",
            params[0].1
        )));
    }
    Ok(body)
}

async fn exchange(
    moto: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, String), HarnessError> {
    let response = send(moto, request).await.map_err(bootstrap_error)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| bootstrap_error(format!("reading moto's answer: {e}")))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn bootstrap_error(message: String) -> HarnessError {
    HarnessError::io("setting up moto's IAM user", std::io::Error::other(message))
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn xml_element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].to_owned())
}

/// Spawns moto on a kernel-chosen port and waits until it accepts
/// connections.
async fn spawn(binary: &Path, log: &Log) -> Result<(Child, SocketAddr), HarnessError> {
    let mut command = Command::new(binary);
    command.args(["-H", "127.0.0.1", "-p", "0"]);
    MOTO.spawn(command, log).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_access_key_out_of_iams_answer() {
        let xml = "<CreateAccessKeyResult><AccessKey><AccessKeyId>AKIA1</AccessKeyId>\
                   <SecretAccessKey>s/e+c</SecretAccessKey></AccessKey></CreateAccessKeyResult>";
        assert_eq!(xml_element(xml, "AccessKeyId").as_deref(), Some("AKIA1"));
        assert_eq!(
            xml_element(xml, "SecretAccessKey").as_deref(),
            Some("s/e+c")
        );
        assert_eq!(xml_element(xml, "Missing"), None);
    }

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(
            form_encode(r#"{"a": "b/c"}"#),
            "%7B%22a%22%3A%20%22b%2Fc%22%7D"
        );
        assert_eq!(form_encode("plain-name_1.x~"), "plain-name_1.x~");
    }
}
