//! Small HTTP/1.1 proxies that tests put between a client and a server.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::uri::{PathAndQuery, Uri};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::HarnessError;

pub(crate) type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A reverse proxy in front of an S3 endpoint that reproduces Hetzner Object
/// Storage's (Ceph RGW's) quirks: ETags come back unquoted (`abc` instead of
/// `"abc"`), in the `ETag` header and in `<ETag>` elements of XML responses
/// (ListObjectsV2 and friends); and an `If-Match` sent with the quotes RFC
/// 9110 puts around an entity tag is answered 412 even when it matches.
///
/// Requests are forwarded unchanged, including the `Host` header, because
/// SigV4 signatures cover it: a client signs for the proxy's address and the
/// upstream server verifies against that same header value.
#[derive(Debug)]
pub struct EtagUnquotingProxy {
    server: ProxyServer,
}

impl EtagUnquotingProxy {
    /// Starts the proxy on `127.0.0.1` with a random port, forwarding to
    /// `upstream_endpoint` (`http://HOST:PORT`, e.g. [`crate::S3Server::endpoint`]).
    pub async fn start(upstream_endpoint: &str) -> Result<Self, HarnessError> {
        let upstream = resolve_endpoint(upstream_endpoint).await?;
        let server = ProxyServer::start(move |req| unquote_etags(upstream, req)).await?;
        Ok(Self { server })
    }

    /// The proxy's base URL, to use as the S3 endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// How many requests the proxy has received.
    pub fn request_count(&self) -> u64 {
        self.server.request_count()
    }
}

/// A reverse proxy in front of an S3 endpoint whose answers carry a `Date`
/// `offset_secs` ahead of this machine's clock (behind when negative): a
/// bucket on a server whose clock is wrong. Everything else passes
/// unchanged.
#[derive(Debug)]
pub struct ClockSkewProxy {
    server: ProxyServer,
}

impl ClockSkewProxy {
    /// Starts the proxy on `127.0.0.1` with a random port, forwarding to
    /// `upstream_endpoint` (`http://HOST:PORT`).
    pub async fn start(upstream_endpoint: &str, offset_secs: i64) -> Result<Self, HarnessError> {
        let upstream = resolve_endpoint(upstream_endpoint).await?;
        let server = ProxyServer::start(move |req| skew_date(upstream, offset_secs, req)).await?;
        Ok(Self { server })
    }

    /// The proxy's base URL, to use as the S3 endpoint.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }
}

/// A plain HTTP forward proxy (absolute-form requests such as
/// `GET http://127.0.0.1:PORT/bucket/key HTTP/1.1`) that counts what passes
/// through, so a test can prove a client honoured `HTTP_PROXY`.
///
/// It only forwards to loopback addresses (tests must never reach out), and
/// does not support `CONNECT`.
#[derive(Debug)]
pub struct ForwardProxy {
    server: ProxyServer,
}

impl ForwardProxy {
    /// Starts the proxy on `127.0.0.1` with a random port.
    pub async fn start() -> Result<Self, HarnessError> {
        let server = ProxyServer::start(forward).await?;
        Ok(Self { server })
    }

    /// The proxy's URL, the value for `HTTP_PROXY`, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.endpoint()
    }

    /// How many requests the proxy has received (including refused ones).
    pub fn request_count(&self) -> u64 {
        self.server.request_count()
    }
}

/// The front every [`crate::S3Server`] sits behind: it forwards requests
/// unchanged but lets only one write (PUT, POST, DELETE) reach the server at
/// a time.
///
/// Why: s3s-fs 0.14.1 checks `If-None-Match` / `If-Match` and then writes,
/// as two steps (`put_object` in its `s3.rs`), so of eight racing
/// conditional creates several win — measured: six. AWS S3 evaluates the
/// precondition atomically. Serialising writes makes the harness behave like
/// the real service the vault's compare-and-swap is designed for; reads stay
/// concurrent.
#[derive(Debug)]
pub(crate) struct WriteSerializingProxy {
    server: ProxyServer,
    upstream: Arc<std::sync::Mutex<SocketAddr>>,
}

impl WriteSerializingProxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Result<Self, HarnessError> {
        let writes = Arc::new(tokio::sync::Mutex::new(()));
        let upstream = Arc::new(std::sync::Mutex::new(upstream));
        let target = Arc::clone(&upstream);
        let server = ProxyServer::start(move |req| {
            let upstream = *target.lock().unwrap_or_else(|e| e.into_inner());
            serialize_writes(upstream, writes.clone(), req)
        })
        .await?;
        Ok(Self { server, upstream })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Points the front at a restarted server.
    pub(crate) fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = upstream;
    }
}

async fn serialize_writes(
    upstream: SocketAddr,
    writes: Arc<tokio::sync::Mutex<()>>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let is_write = !matches!(
        *req.method(),
        hyper::Method::GET | hyper::Method::HEAD | hyper::Method::OPTIONS
    );
    // The server has decided and written by the time its response head
    // arrives, so holding the lock until then is enough.
    let _turn = if is_write {
        Some(writes.lock().await)
    } else {
        None
    };
    match send(upstream, strip_hop_by_hop(req)).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop_headers(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(message) => error_response(StatusCode::BAD_GATEWAY, message),
    }
}

/// The accept loop shared by the proxies; aborted (with every connection
/// it serves) on drop.
#[derive(Debug)]
pub(crate) struct ProxyServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl ProxyServer {
    pub(crate) async fn start<H, F>(handler: H) -> Result<Self, HarnessError>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<ProxyBody>> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| HarnessError::io("binding a proxy listener", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the proxy's address", e))?;
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);

        let task = tokio::spawn(async move {
            // Owning the connections here means aborting this task drops the
            // set, which aborts every connection still being served.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Transient (e.g. out of file descriptors): back off.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                // Without it Nagle's algorithm holds small responses back
                // for a delayed ACK (~40 ms steps in the client benchmark).
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let counter = Arc::clone(&counter);
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let response = handler(req);
                        async move { Ok::<_, Infallible>(response.await) }
                    });
                    // A client hanging up mid-request is not our problem.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });

        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn unquote_etags(upstream: SocketAddr, req: Request<Incoming>) -> Response<ProxyBody> {
    let quoted_if_match = req
        .headers()
        .get(header::IF_MATCH)
        .is_some_and(|value| value.as_bytes().starts_with(b"\""));
    if quoted_if_match {
        return error_response(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed: quoted If-Match (Ceph RGW compares it with the bare ETag)".into(),
        );
    }
    let is_head = req.method() == hyper::Method::HEAD;
    let response = match send(upstream, strip_hop_by_hop(req)).await {
        Ok(response) => response,
        Err(message) => return error_response(StatusCode::BAD_GATEWAY, message),
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop_headers(&mut parts.headers);

    // An object GET carries its ETag in a header and its body is the
    // object's bytes, which must never be touched; S3's XML documents
    // (listings, CopyObjectResult, ...) carry ETags in the body and no ETag
    // header.
    let rewrite_body =
        !is_head && !parts.headers.contains_key(header::ETAG) && is_xml(&parts.headers);
    let etags: Vec<HeaderValue> = parts
        .headers
        .get_all(header::ETAG)
        .iter()
        .map(|v| unquote_header(v).unwrap_or_else(|| v.clone()))
        .collect();
    if !etags.is_empty() {
        parts.headers.remove(header::ETAG);
        for etag in etags {
            parts.headers.append(header::ETAG, etag);
        }
    }

    if !rewrite_body {
        return Response::from_parts(parts, body.boxed());
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error_response(
                StatusCode::BAD_GATEWAY,
                format!("reading upstream body: {e}"),
            );
        }
    };
    let bytes = match std::str::from_utf8(&bytes) {
        Ok(text) => Bytes::from(unquote_xml_etags(text)),
        Err(_) => bytes,
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Response::from_parts(parts, full(bytes))
}

async fn skew_date(
    upstream: SocketAddr,
    offset_secs: i64,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let response = match send(upstream, strip_hop_by_hop(req)).await {
        Ok(response) => response,
        Err(message) => return error_response(StatusCode::BAD_GATEWAY, message),
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop_headers(&mut parts.headers);
    let offset = std::time::Duration::from_secs(offset_secs.unsigned_abs());
    let now = std::time::SystemTime::now();
    let skewed = if offset_secs >= 0 {
        now + offset
    } else {
        now - offset
    };
    let date = HeaderValue::from_str(&httpdate::fmt_http_date(skewed))
        .expect("an HTTP date is a valid header value");
    parts.headers.insert(header::DATE, date);
    Response::from_parts(parts, body.boxed())
}

async fn forward(req: Request<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    let Some(authority) = parts.uri.authority().cloned() else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "forward proxy: expected an absolute-form URI (CONNECT is not supported)".to_owned(),
        );
    };
    if parts.uri.scheme_str() != Some("http") {
        return error_response(
            StatusCode::BAD_REQUEST,
            format!(
                "forward proxy: only http:// targets are supported, got {}",
                parts.uri
            ),
        );
    }
    let port = authority.port_u16().unwrap_or(80);
    let target = match tokio::net::lookup_host((authority.host(), port)).await {
        Ok(mut addrs) => addrs.find(|a| a.ip().is_loopback()),
        Err(e) => {
            return error_response(
                StatusCode::BAD_GATEWAY,
                format!("resolving {authority}: {e}"),
            );
        }
    };
    let Some(target) = target else {
        return error_response(
            StatusCode::FORBIDDEN,
            format!(
                "forward proxy: {authority} is not a loopback address; tests stay on this machine"
            ),
        );
    };

    // Upstream servers expect origin-form (`/bucket/key?x=y`); the Host
    // header already names the target, and is set from the URI if absent.
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(path);
    if !parts.headers.contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, host);
    }
    let req = strip_hop_by_hop(Request::from_parts(parts, body));

    match send(target, req).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop_headers(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(message) => error_response(StatusCode::BAD_GATEWAY, message),
    }
}

/// Sends one request on a fresh connection; simple, and good enough for
/// tests (no pooling to reason about when a server is killed).
async fn send(addr: SocketAddr, req: Request<Incoming>) -> Result<Response<Incoming>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    // Drives the connection until the response body has been read.
    tokio::spawn(connection);
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("forwarding to {addr}: {e}"))
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
/// `Transfer-Encoding` is left alone: hyper keeps it consistent with the body.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "upgrade",
];

fn strip_hop_by_hop(req: Request<Incoming>) -> Request<Incoming> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop_headers(&mut parts.headers);
    Request::from_parts(parts, body)
}

pub(crate) fn strip_hop_by_hop_headers(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn is_xml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("xml"))
}

/// `"abc"` → `abc`; `None` when the value is not a quoted string.
fn unquote_header(value: &HeaderValue) -> Option<HeaderValue> {
    let bytes = value.as_bytes();
    let inner = bytes.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    HeaderValue::from_bytes(inner).ok()
}

/// Rewrites `<ETag>"abc"</ETag>` and `<ETag>&quot;abc&quot;</ETag>` (either
/// XML spelling of the quote) to `<ETag>abc</ETag>`.
fn unquote_xml_etags(xml: &str) -> String {
    const OPEN: &str = "<ETag>";
    const CLOSE: &str = "</ETag>";
    const QUOTES: [&str; 3] = ["\"", "&quot;", "&#34;"];

    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find(OPEN) {
        let content_start = start + OPEN.len();
        let Some(len) = rest[content_start..].find(CLOSE) else {
            break;
        };
        out.push_str(&rest[..content_start]);
        let content = &rest[content_start..content_start + len];
        let unquoted = QUOTES
            .iter()
            .find_map(|q| content.strip_prefix(q)?.strip_suffix(q));
        out.push_str(unquoted.unwrap_or(content));
        rest = &rest[content_start + len..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

pub(crate) fn error_response(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut response = Response::new(full(Bytes::from(message)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

async fn resolve_endpoint(endpoint: &str) -> Result<SocketAddr, HarnessError> {
    let invalid = |reason: String| HarnessError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let uri: Uri = endpoint.parse().map_err(|e| invalid(format!("{e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(invalid("expected http://HOST:PORT".to_owned()));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| invalid("no host".to_owned()))?;
    let port = authority.port_u16().unwrap_or(80);
    tokio::net::lookup_host((authority.host(), port))
        .await
        .map_err(|e| invalid(format!("does not resolve: {e}")))?
        .next()
        .ok_or_else(|| invalid("resolves to no address".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_etag_elements_in_both_xml_spellings() {
        let xml = "<R><Contents><Key>a</Key><ETag>&quot;d41d&quot;</ETag></Contents>\
                   <Contents><ETag>\"9e10\"</ETag></Contents><Contents><ETag>bare</ETag></Contents></R>";
        assert_eq!(
            unquote_xml_etags(xml),
            "<R><Contents><Key>a</Key><ETag>d41d</ETag></Contents>\
             <Contents><ETag>9e10</ETag></Contents><Contents><ETag>bare</ETag></Contents></R>"
        );
    }

    #[test]
    fn unquotes_only_quoted_header_values() {
        let quoted = HeaderValue::from_static("\"abc\"");
        assert_eq!(
            unquote_header(&quoted),
            Some(HeaderValue::from_static("abc"))
        );
        assert_eq!(unquote_header(&HeaderValue::from_static("abc")), None);
    }
}
