//! aws: `vsync import dev --from aws` through the binary against a real
//! moto server behind the harness's counting front, filled by another
//! machine's `vsync sync` — the server-side name prefix stripped by
//! `--prefix`, a JSON secret split into keys, a multiline PEM arriving
//! byte for byte, a re-import that reads and rewrites nothing, and refused
//! or missing credentials exiting 2 with the variables to fix named. No
//! value ever reaches stdout or stderr. (`SecretBinary` → asset file is
//! covered against moto in `sources/tests/aws.rs`: `vsync sync` writes no
//! binary secret to fill it with here.)

use std::os::unix::fs::MetadataExt;

use vsync_engine::dotenv;
use vsync_testcontainers::MotoServer;
use vsync_testcontainers::faults::Call;

use crate::common::Machine;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----\n";

/// What another team member's vault holds and syncs to AWS.
const THEIRS: [(&str, &str); 3] = [
    ("DATABASE_URL", "postgres://app:s3cret-db@db/app"),
    ("TLS_KEY", PEM),
    ("APP", r#"{"API_TOKEN": "tok=en#1", "PORT": 8080}"#),
];

/// Values no output may ever show.
const SECRETS: [&str; 3] = ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "s3cret-db", "tok=en#1"];

/// Fills moto the way a team does: another machine's `vsync sync` to AWS,
/// under `web/dev/` and `web/prod/`.
async fn fill(moto: &MotoServer) {
    let theirs = Machine::new();
    theirs.ok(&["init", "dev", "--repo=acme_web"]).await;
    let text = dotenv::render(THEIRS.iter().copied()).unwrap();
    std::fs::write(theirs.vault().join(".env.dev"), text.as_str()).unwrap();
    for prefix in ["web/dev/", "web/prod/"] {
        let output = theirs
            .command(&[
                "sync",
                "dev",
                "aws",
                &format!("--aws-region={}", moto.region()),
                &format!("--aws-secret-prefix={prefix}"),
            ])
            .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", moto.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", moto.secret_access_key())
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
}

/// Runs `vsync import dev --from aws <args>` with `env` and nothing else
/// of AWS's, checking no value leaked; the exit code and both outputs.
async fn import(machine: &Machine, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut full = vec!["import", "dev", "--from", "aws"];
    full.extend_from_slice(args);
    let mut command = machine.command(&full);
    command.envs(env.iter().copied());
    crate::output_without(command, &SECRETS).await
}

/// The secrets under `web/dev/`, named without it.
const DEV: [&str; 4] = ["--set", "prefix=web/dev/", "--prefix", "web/dev/"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_imported_byte_for_byte_then_split_and_a_reimport_reads_nothing() {
    let moto = MotoServer::start().await.unwrap();
    fill(&moto).await;
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let endpoint = moto.endpoint();
    let env = [
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", moto.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret_access_key()),
        ("AWS_REGION", moto.region()),
    ];

    let (code, out) = import(&machine, &[&DEV[..], &["--dry-run"]].concat(), &env).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("add       TLS_KEY (from web/dev/TLS_KEY)"),
        "{out}"
    );
    assert!(out.contains("would write 3"), "{out}");
    assert!(!out.contains("web/prod/"), "{out}");

    let (code, out) = import(&machine, &DEV, &env).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("wrote 3"), "{out}");
    let env_file = machine.vault().join(".env.dev");
    let mut expected: Vec<(String, String)> = THEIRS
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(
        crate::sorted_entries(&std::fs::read_to_string(&env_file).unwrap()),
        expected
    );

    // Unchanged at AWS: a listing, no read, the file untouched.
    let meta = std::fs::metadata(&env_file).unwrap();
    let reads = moto.faults().calls(Call::Read);
    let (code, out) = import(&machine, &DEV, &env).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("wrote 0"), "{out}");
    assert_eq!(moto.faults().calls(Call::Read), reads, "nothing read");
    let again = std::fs::metadata(&env_file).unwrap();
    assert_eq!(
        (again.mtime(), again.mtime_nsec()),
        (meta.mtime(), meta.mtime_nsec())
    );

    // The JSON secret, split: its fields are keys of their own.
    let split = ["--set", "prefix=web/dev/APP", "--set", "splitJson=true"];
    let (code, out) = import(&machine, &split, &env).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("add       API_TOKEN (from web/dev/APP)"),
        "{out}"
    );
    assert!(out.contains("wrote 2"), "{out}");
    let entries = crate::sorted_entries(&std::fs::read_to_string(&env_file).unwrap());
    assert!(entries.contains(&("API_TOKEN".into(), "tok=en#1".into())));
    assert!(entries.contains(&("PORT".into(), "8080".into())));
    assert_eq!(entries.len(), 5, "{entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_missing_or_incomplete_credentials_exit_2_naming_what_to_set() {
    let moto = MotoServer::start().await.unwrap();
    fill(&moto).await;
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let endpoint = moto.endpoint();
    let at_moto = ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.as_str());
    let region = ("AWS_REGION", moto.region());

    let (code, out) = import(
        &machine,
        &DEV,
        &[
            at_moto,
            region,
            ("AWS_ACCESS_KEY_ID", moto.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", "not-the-key"),
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("InvalidSignatureException") && out.contains("AWS_SECRET_ACCESS_KEY"),
        "{out}"
    );

    // No key, no profile, no role: refused at once, not retried.
    let nowhere = machine.home.join("no-such-file").display().to_string();
    let started = std::time::Instant::now();
    let (code, out) = import(
        &machine,
        &DEV,
        &[
            at_moto,
            region,
            ("AWS_SHARED_CREDENTIALS_FILE", &nowhere),
            ("AWS_CONFIG_FILE", &nowhere),
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("no AWS credentials found") && out.contains("AWS_PROFILE"),
        "{out}"
    );
    // Retried as an outage, the engine's back-off alone would take 15 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(8));

    let (code, out) = import(
        &machine,
        &DEV,
        &[at_moto, region, ("AWS_ACCESS_KEY_ID", moto.access_key_id())],
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("half of a static key"), "{out}");

    let (code, out) = import(&machine, &DEV, &[at_moto]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--set region="), "{out}");
    let written = std::fs::read_to_string(machine.vault().join(".env.dev")).unwrap_or_default();
    assert!(!written.contains("DATABASE_URL"), "nothing imported");
}
