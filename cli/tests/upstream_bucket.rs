//! A machine config and a bucket shaped exactly as upstream vsync (the Node
//! CLI) writes them, built by hand from the format description
//! (vsync-formats §1.1, §1.2, §1.7, §1.12, §2.1, §3.2) with the primitives
//! directly — not through vsync's own publish, config or crypto code — and
//! our CLI pulling from them, then pushing something upstream can read.

mod common;

use std::io::{Cursor, Read, Write};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use common::Machine;
use vsync_backends::s3::{Proxy, S3Store};
use vsync_engine::store::{PutCondition, Store};
use vsync_testcontainers::S3Server;

const BUCKET: &str = "legacy";
const REPO: &str = "acme_web";
const TS: &str = "20250314-092653";
/// A salt as upstream's `init` makes it: 24 characters of standard base64.
const SALT: &str = "q7+Yt0mDk2/LhQ1xVb9sE4nR";

/// PBKDF2-HMAC-SHA256, 600,000 iterations, the salt string's UTF-8 bytes.
fn derive(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), SALT.as_bytes(), 600_000, &mut key);
    key
}

/// `RQE1 ‖ IV(12) ‖ AES-256-GCM ciphertext ‖ tag(16)`, no AAD.
fn rqe1_seal(password: &str, iv: [u8; 12], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(&derive(password)).unwrap();
    let sealed = cipher.encrypt(Nonce::from_slice(&iv), plaintext).unwrap();
    [b"RQE1".as_slice(), &iv, &sealed].concat()
}

fn rqe1_open(password: &str, envelope: &[u8]) -> Vec<u8> {
    assert_eq!(&envelope[..4], b"RQE1");
    let cipher = Aes256Gcm::new_from_slice(&derive(password)).unwrap();
    cipher
        .decrypt(Nonce::from_slice(&envelope[4..16]), &envelope[16..])
        .unwrap()
}

/// A zip as `zip -r -q out.zip infra/vault/dev` run at the repo root makes
/// it: directory entries too, names relative to the repo root.
fn info_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    writer.add_directory("infra/vault/dev/", options).unwrap();
    writer
        .add_directory("infra/vault/dev/tls/", options)
        .unwrap();
    for (name, bytes) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn mkdir_private(dir: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .unwrap();
}

fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A machine with upstream's `.vsync` pin in its checkout, and the machine
/// config and key upstream's `init --profile` leaves behind.
fn upstream_machine(server: &S3Server, key: &str) -> Machine {
    let machine = Machine::new();
    std::fs::write(
        machine.checkout.join(".vsync"),
        format!("# .vsync — vsync identity pin (commit this file)\n# Docs: https://muthuishere.github.io/vsync/architecture/repo-identity\nrepo={REPO}\n"),
    )
    .unwrap();

    // §1.7: gzip of compact JSON in init's key order; the endpoint
    // without scheme and `useSsl: false`; no `prefix` (upstream's push
    // and pull address `<repo>/<env>/`).
    let endpoint = server.endpoint().trim_start_matches("http://").to_owned();
    let config = format!(
        r#"{{"version":1,"s3":{{"endpoint":"{endpoint}","region":"{}","bucket":"{BUCKET}","accessKeyId":"{}","secretAccessKey":"{}","useSsl":false}},"encryption":{{"salt":"{SALT}"}},"audit":{{"enabled":true}},"initProfile":"team"}}"#,
        server.region(),
        server.access_key(),
        server.secret_key(),
    );
    let base = machine.home.join(".config/vsync");
    mkdir_private(&base.join(REPO));
    write_private(&base.join(REPO).join("env_dev"), &gzip(config.as_bytes()));
    // The key where a keychain-less machine keeps it (service
    // tools.vsync, account acme_web/dev in a keychain).
    mkdir_private(&base.join(".keystore").join(REPO));
    write_private(
        &base.join(".keystore").join(REPO).join("dev.key"),
        key.as_bytes(),
    );
    machine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_reads_what_upstream_wrote_and_push_writes_what_upstream_reads() {
    let server = S3Server::start().await.expect("start s3s-fs");
    server.create_bucket(BUCKET).await.unwrap();
    let store = S3Store::builder()
        .endpoint(server.endpoint())
        .region(server.region())
        .bucket(BUCKET)
        .credentials(server.access_key(), server.secret_key())
        .proxy(Proxy::Disabled)
        .build()
        .unwrap();

    // The keychain value: standard base64 with padding of 32 random bytes.
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    assert_eq!(key.len(), 44);
    let machine = upstream_machine(&server, &key);

    // §2.1 + §3.2: versions/<ts>.enc = RQE1(RQEM0001 ‖ ts ‖ zip), latest =
    // the ASCII ts with no newline, no latest.meta.
    let env_file: &[u8] = b"DATABASE_URL=postgres://from-upstream\nAPI_KEY='k-9'\n";
    let cert: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let zip = info_zip(&[
        ("infra/vault/dev/.env.dev", env_file),
        ("infra/vault/dev/tls/server.crt", cert),
    ]);
    let plaintext = [b"RQEM0001".as_slice(), TS.as_bytes(), &zip].concat();
    let bundle = rqe1_seal(&key, [3u8; 12], &plaintext);
    assert_eq!(bundle.len(), 32 + plaintext.len());
    store
        .put(
            &format!("{REPO}/dev/versions/{TS}.enc"),
            &bundle,
            PutCondition::IfAbsent,
        )
        .await
        .unwrap();
    store
        .put(
            &format!("{REPO}/dev/latest"),
            TS.as_bytes(),
            PutCondition::IfAbsent,
        )
        .await
        .unwrap();

    let status: serde_json::Value =
        serde_json::from_str(&machine.ok(&["status", "--json", "--check-remote"]).await).unwrap();
    let env = &status["envs"][0];
    assert_eq!(status["source"], "file");
    assert_eq!(env["status"]["code"], "dangling-profile", "{status}");
    assert_eq!(env["prefix"], "acme_web/dev/");
    assert_eq!(env["remote"]["state"], "untracked");
    assert_eq!(env["remote"]["remoteTs"], TS);
    assert_eq!(env["remote"]["gen"], 0);

    let versions: serde_json::Value =
        serde_json::from_str(&machine.ok(&["versions", "dev", "--json"]).await).unwrap();
    assert_eq!(versions["current"], TS);
    assert_eq!(versions["generation"], 0);

    let stdout = machine.ok(&["pull", "dev"]).await;
    assert!(stdout.contains(TS), "{stdout}");
    let vault = machine.checkout.join("infra/vault/dev");
    assert_eq!(std::fs::read(vault.join(".env.dev")).unwrap(), env_file);
    assert_eq!(std::fs::read(vault.join("tls/server.crt")).unwrap(), cert);

    // Our push, read back the way upstream's pull reads: the pointer text
    // names versions/<ts>.enc, which opens with the same key and salt, its
    // seal names the same ts, and the zip holds repo-relative names.
    std::fs::write(
        vault.join(".env.dev"),
        "DATABASE_URL=postgres://from-rust\n",
    )
    .unwrap();
    machine.ok(&["push", "dev"]).await;
    let latest = store
        .get(&format!("{REPO}/dev/latest"))
        .await
        .unwrap()
        .unwrap()
        .body;
    let latest = String::from_utf8(latest).unwrap();
    assert!(latest.as_str() > TS, "{latest}");
    assert_eq!(latest.trim(), latest);
    let envelope = store
        .get(&format!("{REPO}/dev/versions/{latest}.enc"))
        .await
        .unwrap()
        .unwrap()
        .body;
    let plaintext = rqe1_open(&key, &envelope);
    assert_eq!(&plaintext[..8], b"RQEM0001");
    assert_eq!(&plaintext[8..23], latest.as_bytes());
    let mut archive = zip::ZipArchive::new(Cursor::new(plaintext[23..].to_vec())).unwrap();
    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    assert!(
        names.contains(&"infra/vault/dev/.env.dev".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"infra/vault/dev/tls/server.crt".to_owned()),
        "{names:?}"
    );
    let mut text = String::new();
    archive
        .by_name("infra/vault/dev/.env.dev")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "DATABASE_URL=postgres://from-rust\n");

    // The config was not rewritten into something upstream cannot read:
    // still gzip JSON of the same schema.
    let config = std::fs::read(machine.home.join(".config/vsync/acme_web/env_dev")).unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(config.as_slice())
        .read_to_string(&mut json)
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["encryption"]["salt"], SALT);
}
