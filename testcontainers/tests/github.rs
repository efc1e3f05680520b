//! Proves the GitHub fake is as strict as GitHub where a sink could go
//! wrong, with raw HTTP requests (no sink involved): sealed boxes really
//! opened with the target's key, GitHub's status codes for bad credentials,
//! unknown targets, invalid names and bodies, organisation visibility rules,
//! paging, revisions that move on every write, and the injected faults.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_box::aead::OsRng;
use crypto_box::{PublicKey, SecretKey};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use vsync_testcontainers::faults::Call;
use vsync_testcontainers::{GITHUB_API_VERSION, GithubFake, GithubScope};

const REPO_SECRETS: &str = "/repos/acme/api/actions/secrets";
const ORG_SECRETS: &str = "/orgs/acme/actions/secrets";

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Value,
}

/// One request to the fake; `token` `None` sends no `Authorization`, and
/// `user_agent` false no `User-Agent`.
async fn request(
    fake: &GithubFake,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
    user_agent: bool,
) -> Answer {
    let endpoint = fake.endpoint();
    let stream = TcpStream::connect(endpoint.trim_start_matches("http://"))
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, endpoint.trim_start_matches("http://"))
        .header("x-github-api-version", GITHUB_API_VERSION);
    if user_agent {
        builder = builder.header(hyper::header::USER_AGENT, "vsync-test");
    }
    if let Some(token) = token {
        builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let payload = body.map(|body| body.to_string()).unwrap_or_default();
    let request = builder
        .body(Full::new(Bytes::from(payload)))
        .expect("request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

async fn call(fake: &GithubFake, method: &str, path: &str, body: Option<Value>) -> Answer {
    request(fake, method, path, body, Some(GithubFake::TOKEN), true).await
}

/// The target's public key and its id, as a sink fetches them.
async fn public_key(fake: &GithubFake, collection: &str) -> (String, PublicKey) {
    let answer = call(fake, "GET", &format!("{collection}/public-key"), None).await;
    assert_eq!(answer.status, 200);
    let key: [u8; 32] = BASE64
        .decode(answer.body["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    (
        answer.body["key_id"].as_str().unwrap().to_owned(),
        PublicKey::from(key),
    )
}

fn sealed(key: &PublicKey, value: &str) -> String {
    BASE64.encode(key.seal(&mut OsRng, value.as_bytes()).unwrap())
}

fn repo() -> GithubScope {
    GithubScope::Repository("acme/api".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_box_sealed_for_the_current_key_is_stored() {
    let fake = GithubFake::start().await.unwrap();
    let (key_id, key) = public_key(&fake, REPO_SECRETS).await;
    let path = format!("{REPO_SECRETS}/db_pass");

    let stranger = SecretKey::generate(&mut OsRng).public_key();
    let wrong_box = json!({ "encrypted_value": sealed(&stranger, "v"), "key_id": key_id });
    let answer = call(&fake, "PUT", &path, Some(wrong_box)).await;
    assert_eq!(answer.status, 422, "a box the fake cannot open is refused");
    assert_eq!(fake.value(&repo(), "DB_PASS"), None);

    let good = json!({ "encrypted_value": sealed(&key, "s3cret"), "key_id": key_id });
    assert_eq!(
        call(&fake, "PUT", &path, Some(good.clone())).await.status,
        201
    );
    assert_eq!(
        fake.value(&repo(), "db_pass")
            .as_deref()
            .map(String::as_str),
        Some("s3cret")
    );
    assert_eq!(fake.names(&repo()), ["DB_PASS"], "stored upper-case");
    assert_eq!(
        call(&fake, "PUT", &path, Some(good)).await.status,
        204,
        "an update"
    );

    let stale = json!({ "encrypted_value": sealed(&key, "v"), "key_id": "123" });
    let answer = call(&fake, "PUT", &path, Some(stale)).await;
    assert_eq!(answer.status, 422);
    let missing = json!({ "encrypted_value": sealed(&key, "v") });
    let answer = call(&fake, "PUT", &path, Some(missing)).await;
    assert_eq!(answer.status, 422);
    assert!(answer.body["message"].as_str().unwrap().contains("key_id"));
    let answer = request(&fake, "PUT", &path, None, Some(GithubFake::TOKEN), true).await;
    assert_eq!(answer.status, 400, "no JSON body");
    assert_eq!(fake.faults().writes(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_headers_are_checked_like_github() {
    let fake = GithubFake::start().await.unwrap();
    let no_token = request(&fake, "GET", REPO_SECRETS, None, None, true).await;
    assert_eq!(no_token.status, 401);
    let wrong = request(&fake, "GET", REPO_SECRETS, None, Some("ghp_wrong"), true).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["message"], "Bad credentials");
    let anonymous = request(
        &fake,
        "GET",
        REPO_SECRETS,
        None,
        Some(GithubFake::TOKEN),
        false,
    )
    .await;
    assert_eq!(anonymous.status, 403, "GitHub requires a User-Agent");
    let read_only = request(
        &fake,
        "DELETE",
        &format!("{REPO_SECRETS}/X"),
        None,
        Some(GithubFake::READ_ONLY_TOKEN),
        true,
    )
    .await;
    assert_eq!(read_only.status, 403);
    let listed = request(
        &fake,
        "GET",
        REPO_SECRETS,
        None,
        Some(GithubFake::READ_ONLY_TOKEN),
        true,
    )
    .await;
    assert_eq!(listed.status, 200, "a read-only token may list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_targets_and_invalid_names_are_refused() {
    let fake = GithubFake::start().await.unwrap();
    for path in [
        "/repos/acme/nope/actions/secrets",
        "/repos/acme/api/environments/staging/secrets/public-key",
        "/orgs/nobody/actions/secrets",
        "/repos/acme/api/actions/variables",
    ] {
        assert_eq!(call(&fake, "GET", path, None).await.status, 404, "{path}");
    }
    assert_eq!(
        call(&fake, "DELETE", &format!("{REPO_SECRETS}/ABSENT"), None)
            .await
            .status,
        404
    );
    let (key_id, key) = public_key(&fake, REPO_SECRETS).await;
    for name in ["db-pass", "1PASS", "GITHUB_TOKEN", "github_x"] {
        let body = json!({ "encrypted_value": sealed(&key, "v"), "key_id": key_id });
        let answer = call(&fake, "PUT", &format!("{REPO_SECRETS}/{name}"), Some(body)).await;
        assert_eq!(answer.status, 422, "{name}");
    }
    let big = "x".repeat(48 * 1024 + 1);
    let body = json!({ "encrypted_value": sealed(&key, &big), "key_id": key_id });
    assert_eq!(
        call(&fake, "PUT", &format!("{REPO_SECRETS}/BIG"), Some(body))
            .await
            .status,
        422
    );
    assert!(fake.names(&repo()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_holds_at_most_100_secrets() {
    let fake = GithubFake::start().await.unwrap();
    for i in 0..100 {
        fake.edit_outside(&repo(), &format!("S{i}"), "v");
    }
    let (key_id, key) = public_key(&fake, REPO_SECRETS).await;
    let body = json!({ "encrypted_value": sealed(&key, "v"), "key_id": key_id });
    let answer = call(
        &fake,
        "PUT",
        &format!("{REPO_SECRETS}/ONE_MORE"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(answer.status, 422);
    let update = call(&fake, "PUT", &format!("{REPO_SECRETS}/S1"), Some(body)).await;
    assert_eq!(update.status, 204, "updating one of the 100 is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_secrets_need_a_visibility_and_lose_unlisted_repositories() {
    let fake = GithubFake::start().await.unwrap();
    let api = fake.repository_id("acme/api").unwrap();
    let (key_id, key) = public_key(&fake, ORG_SECRETS).await;
    let path = format!("{ORG_SECRETS}/SHARED");
    let without = json!({ "encrypted_value": sealed(&key, "v"), "key_id": key_id });
    assert_eq!(call(&fake, "PUT", &path, Some(without)).await.status, 422);
    let ids_but_private = json!({
        "encrypted_value": sealed(&key, "v"), "key_id": key_id,
        "visibility": "private", "selected_repository_ids": [api],
    });
    assert_eq!(
        call(&fake, "PUT", &path, Some(ids_but_private))
            .await
            .status,
        422
    );
    let selected = json!({
        "encrypted_value": sealed(&key, "v"), "key_id": key_id,
        "visibility": "selected", "selected_repository_ids": [api],
    });
    assert_eq!(call(&fake, "PUT", &path, Some(selected)).await.status, 201);
    let answer = call(&fake, "GET", &path, None).await;
    assert_eq!(answer.body["visibility"], "selected");
    let answer = call(&fake, "GET", &format!("{path}/repositories"), None).await;
    assert_eq!(answer.body["total_count"], 1);
    assert_eq!(answer.body["repositories"][0]["id"], api);

    // GitHub's trap: an update naming `selected` without the ids clears them.
    let bare = json!({
        "encrypted_value": sealed(&key, "w"), "key_id": key_id, "visibility": "selected",
    });
    assert_eq!(call(&fake, "PUT", &path, Some(bare)).await.status, 204);
    assert_eq!(
        fake.visibility("acme", "SHARED"),
        Some(("selected".to_owned(), vec![]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_githubs_parameters() {
    let fake = GithubFake::start().await.unwrap();
    for i in 0..5 {
        fake.edit_outside(&repo(), &format!("S{i}"), "v");
    }
    let first = call(
        &fake,
        "GET",
        &format!("{REPO_SECRETS}?per_page=2&page=1"),
        None,
    )
    .await;
    assert_eq!(first.body["total_count"], 5);
    assert_eq!(first.body["secrets"].as_array().unwrap().len(), 2);
    let link = first.headers["link"].to_str().unwrap();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    let last = call(
        &fake,
        "GET",
        &format!("{REPO_SECRETS}?per_page=2&page=3"),
        None,
    )
    .await;
    assert_eq!(last.body["secrets"][0]["name"], "S4");
    let past = call(
        &fake,
        "GET",
        &format!("{REPO_SECRETS}?per_page=2&page=4"),
        None,
    )
    .await;
    assert_eq!(past.body["secrets"].as_array().unwrap().len(), 0);
    let default = call(&fake, "GET", REPO_SECRETS, None).await;
    assert_eq!(default.body["secrets"].as_array().unwrap().len(), 5);
    assert!(default.headers.get("link").is_none());
    assert_eq!(fake.counts().lists, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_at_has_githubs_whole_second_precision() {
    let fake = GithubFake::start().await.unwrap();
    fake.freeze_clock();
    fake.edit_outside(&repo(), "X", "one");
    let first = fake.updated_at(&repo(), "X").unwrap();
    fake.edit_outside(&repo(), "X", "two");
    let same_second = fake.updated_at(&repo(), "X").unwrap();
    assert_eq!(first, same_second, "two writes in one second share it");
    fake.advance_clock(1);
    fake.edit_outside(&repo(), "X", "three");
    let later = fake.updated_at(&repo(), "X").unwrap();
    assert!(later > first, "{first} then {later}");
    let answer = call(&fake, "GET", &format!("{REPO_SECRETS}/X"), None).await;
    assert_eq!(answer.body["updated_at"], later.as_str());
    assert!(later.ends_with('Z') && later.len() == 20, "{later}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_answer_the_secondary_limit_and_a_refusal() {
    let fake = GithubFake::start().await.unwrap();
    let (key_id, key) = public_key(&fake, REPO_SECRETS).await;
    let body = json!({ "encrypted_value": sealed(&key, "v"), "key_id": key_id });
    fake.faults().throttle_next_writes(1);
    let answer = call(
        &fake,
        "PUT",
        &format!("{REPO_SECRETS}/A"),
        Some(body.clone()),
    )
    .await;
    // GitHub's secondary rate limit: 403, with `Retry-After` or without.
    assert_eq!(answer.status, 403);
    assert_eq!(answer.headers["retry-after"], "1");
    fake.faults().throttle_without_retry_after();
    fake.faults().throttle_next(Call::List, 1);
    let answer = call(&fake, "GET", REPO_SECRETS, None).await;
    assert_eq!(answer.status, 403);
    assert!(answer.headers.get("retry-after").is_none());
    fake.faults().break_writes_of("B");
    let answer = call(
        &fake,
        "PUT",
        &format!("{REPO_SECRETS}/b"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        answer.status, 422,
        "names are compared as GitHub stores them"
    );
    assert_eq!(
        call(&fake, "PUT", &format!("{REPO_SECRETS}/A"), Some(body))
            .await
            .status,
        201
    );
    assert_eq!((fake.faults().throttled(), fake.faults().writes()), (2, 1));
    assert_eq!(fake.names(&repo()), ["A"]);
}
