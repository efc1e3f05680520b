//! An application's boot with vsync: read `DATABASE_URL` and a GCP
//! service-account JSON from the vault once, then serve a `/healthz` that
//! reports staleness (someone pushed or rotated since boot) with
//! `has_new_version`.
//!
//! ```sh
//! export VSYNC_CONFIG="$(vsync runtime-token --env=dev)"
//! export VSYNC_PASSPHRASE_FILE=/run/secrets/vsync-passphrase   # mode 0600
//! cargo run -p vsync-s3-client --example boot
//! curl -i localhost:8080/healthz
//! ```
//!
//! The vault folder pushed with `vsync push dev` holds `.env.dev` (with
//! `DATABASE_URL=…`) and `gcp-sa.json`; assets are named by their path
//! relative to the vault folder. `PORT` falls back to the environment, then
//! to the default 8080. Nothing secret is printed: only names, sources and
//! the generation.
//!
//! Synchronous on purpose (the blocking API and `std::net`); an async app
//! calls `vsync_s3_client::open` and `.has_new_version().await` the same way.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use vsync_s3_client::{ErrorClass, Options, blocking};

fn main() -> ExitCode {
    // One round trip to the bucket; everything below reads from memory.
    let vault = match blocking::open(Options::new().default_value("PORT", "8080")) {
        Ok(vault) => vault,
        Err(err) => {
            // The message names the fix (e.g. "run `vsync push dev` once").
            eprintln!("{err}");
            return match err.class() {
                Some(ErrorClass::ConfigMissing | ErrorClass::ConfigUnsupportedVersion) => {
                    ExitCode::from(2)
                }
                _ => ExitCode::from(1),
            };
        }
    };
    eprintln!("booted with {vault:?}");

    let Some(database_url) = vault.get_env("DATABASE_URL") else {
        eprintln!("DATABASE_URL is not in the vault, the environment or the defaults");
        return ExitCode::from(1);
    };
    eprintln!(
        "DATABASE_URL from {} ({} characters)",
        vault.env_source("DATABASE_URL"),
        database_url.expose().len()
    );
    // Hand the value to the database pool here, e.g.
    // `Pool::connect(database_url.expose())`; it is wiped when dropped.

    match vault.get_as_content("gcp-sa.json") {
        Some(json) => match serde_json::from_slice::<serde_json::Value>(json.expose()) {
            Ok(account) => eprintln!(
                "service account for project {} loaded",
                account["project_id"].as_str().unwrap_or("(unknown)")
            ),
            Err(_) => eprintln!("gcp-sa.json is not JSON"),
        },
        None => eprintln!("no gcp-sa.json asset in the vault"),
    }

    let port = vault
        .get_env("PORT")
        .map_or_else(|| "8080".to_owned(), |port| port.expose().to_owned());
    let listener = match TcpListener::bind(("127.0.0.1", port.parse().unwrap_or(8080))) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on port {port}: {err}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "serving http://{}/healthz",
        listener
            .local_addr()
            .expect("a bound listener has an address")
    );
    for stream in listener.incoming().flatten() {
        let mut request_line = String::new();
        let mut reader = BufReader::new(&stream);
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        let (status, body) = if request_line.starts_with("GET /healthz") {
            healthz(&vault)
        } else {
            ("404 Not Found", "not found\n".to_owned())
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    ExitCode::SUCCESS
}

/// 200 while the secrets in memory are current; 503 once a newer version
/// or rotation exists (restart to pick it up). A bucket that cannot be
/// reached does not make the app unhealthy: it still runs on what it read.
fn healthz(vault: &blocking::Client) -> (&'static str, String) {
    match vault.has_new_version() {
        Ok(false) => ("200 OK", format!("ok gen={}\n", vault.generation())),
        Ok(true) => (
            "503 Service Unavailable",
            format!(
                "stale: a newer vault version exists (running gen={}); restart to pick it up\n",
                vault.generation()
            ),
        ),
        Err(err) => (
            "200 OK",
            format!(
                "ok gen={} (staleness unknown: {})\n",
                vault.generation(),
                err.class().map_or("error", ErrorClass::canonical_name)
            ),
        ),
    }
}
