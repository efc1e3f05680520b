//! gcp: `vsync import dev --from gcp --set project=…` through the binary
//! against the Secret Manager fake, with the endpoint and credentials the
//! sink takes (`VSYNC_GCP_ENDPOINT`, `GOOGLE_OAUTH_ACCESS_TOKEN` or
//! Application Default Credentials): text, JSON and binary secrets, a
//! rolled-back secret and one with no usable version, the list filter, a
//! re-import that rewrites nothing, and refusals that name what to fix —
//! with no value in any output.

use std::os::unix::fs::MetadataExt;

use crate::common::Machine;
use vsync_testcontainers::GcpSecretManagerServer as Fake;

const PROJECT: &str = "acme-prod";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----\n";
const JSON: &str = "{\"type\": \"service_account\", \"private_key_id\": \"k-7731\"}";
const DER: [u8; 8] = [0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0xff, 0xfe];

/// Values no output may ever show.
const SECRETS: [&str; 6] = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "s3cret-db",
    "k-7731",
    "good-old",
    "bad-new",
    "switched-off",
];

/// Runs `vsync import dev --from gcp <args>` with `envs`; the exit code and
/// everything printed, checked for values.
async fn import(
    machine: &Machine,
    args: &[&str],
    envs: &[(&str, String)],
) -> (Option<i32>, String) {
    let mut full = vec!["import", "dev", "--from", "gcp"];
    full.extend_from_slice(args);
    let mut command = machine.command(&full);
    for (name, value) in envs {
        command.env(name, value);
    }
    crate::output_without(command, &SECRETS).await
}

fn with_token(fake: &Fake, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("VSYNC_GCP_ENDPOINT", fake.endpoint()),
        ("GOOGLE_OAUTH_ACCESS_TOKEN", token.to_owned()),
    ]
}

async fn fake_with_secrets() -> Fake {
    let fake = Fake::start(PROJECT).await.unwrap();
    fake.add_version_outside("TLS_KEY", PEM.as_bytes());
    fake.add_version_outside("DATABASE_URL", b"postgres://app:s3cret-db@db/app");
    fake.add_version_outside("SA_JSON", JSON.as_bytes());
    fake.add_version_outside("CLIENT_CERT_DER", &DER);
    fake.add_version_outside("ROLLED_BACK", b"good-old");
    fake.add_version_outside("ROLLED_BACK", b"bad-new");
    fake.disable_version_outside("ROLLED_BACK", 2);
    fake.add_version_outside("SWITCHED_OFF", b"switched-off");
    fake.disable_version_outside("SWITCHED_OFF", 1);
    for name in ["TLS_KEY", "DATABASE_URL", "SA_JSON", "CLIENT_CERT_DER"] {
        fake.set_labels(name, &[("team", "api")]);
    }
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_is_imported_end_to_end_and_a_reimport_rewrites_nothing() {
    let fake = fake_with_secrets().await;
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let envs = with_token(&fake, Fake::READ_ONLY_TOKEN);
    let project = format!("project={PROJECT}");
    let env_file = machine.vault().join(".env.dev");

    let (code, out) = import(&machine, &["--set", &project, "--dry-run"], &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("add       TLS_KEY"), "{out}");
    assert!(
        out.contains("add       CLIENT_CERT_DER [asset file]"),
        "{out}"
    );
    assert!(
        out.contains("disabled at the source (not imported) SWITCHED_OFF"),
        "{out}"
    );
    assert!(out.contains("would write 5"), "{out}");
    assert!(!env_file.exists(), "a dry run writes nothing");

    let (code, out) = import(&machine, &["--set", &project], &envs).await;
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string(&env_file).unwrap();
    let parsed = vsync_engine::dotenv::parse(&text);
    assert_eq!(parsed.problems, []);
    let mut pairs: Vec<(String, String)> = parsed
        .entries
        .into_iter()
        .map(|entry| (entry.key, entry.value.to_string()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (
                "DATABASE_URL".into(),
                "postgres://app:s3cret-db@db/app".into()
            ),
            // The newest enabled version, not the disabled newest one.
            ("ROLLED_BACK".into(), "good-old".into()),
            // A JSON secret is one value, whole.
            ("SA_JSON".into(), JSON.into()),
            ("TLS_KEY".into(), PEM.into()),
        ]
    );
    assert_eq!(
        std::fs::read(machine.vault().join("CLIENT_CERT_DER")).unwrap(),
        DER
    );

    // Nothing changed at the source: the file keeps its bytes and mtime.
    let meta = std::fs::metadata(&env_file).unwrap();
    let mtime = (meta.mtime(), meta.mtime_nsec());
    let (code, out) = import(&machine, &["--set", &project], &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("wrote 0"), "{out}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), text);
    let again = std::fs::metadata(&env_file).unwrap();
    assert_eq!((again.mtime(), again.mtime_nsec()), mtime);

    // A filter narrows the import to what it selects.
    let other = Machine::new();
    other.ok(&["init", "dev", "--repo=acme_web"]).await;
    let (code, out) = import(
        &other,
        &[
            "--set",
            &project,
            "--set",
            "filter=labels.team=api AND name:_",
        ],
        &envs,
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("4 added"), "{out}");
    assert!(!out.contains("ROLLED_BACK"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_to_fix() {
    let fake = fake_with_secrets().await;
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let project = format!("project={PROJECT}");

    let (code, out) = import(
        &machine,
        &["--set", &project],
        &with_token(&fake, "ya29.expired"),
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("401 UNAUTHENTICATED"), "{out}");
    assert!(out.contains("GOOGLE_OAUTH_ACCESS_TOKEN"), "{out}");
    assert!(!out.contains("ya29.expired"), "{out}");

    let envs = with_token(&fake, Fake::ADMIN_TOKEN);
    let (code, out) = import(&machine, &[], &envs).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--set project=<id>"), "{out}");

    let (code, out) = import(
        &machine,
        &["--set", &project, "--set", "filter=labels.team"],
        &envs,
    )
    .await;
    assert_eq!(code, Some(12), "{out}");
    assert!(out.contains("INVALID_ARGUMENT"), "{out}");

    let (code, out) = import(&machine, &["--set", "colour=blue"], &envs).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("project, filter"), "{out}");
    assert!(
        !machine.vault().join(".env.dev").exists(),
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_default_credentials_are_used_and_a_revoked_login_named() {
    let fake = fake_with_secrets().await;
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let project = format!("project={PROJECT}");
    let adc = machine.home.join("adc.json");
    std::fs::write(&adc, fake.authorized_user_json()).unwrap();
    let envs = [
        ("VSYNC_GCP_ENDPOINT", fake.endpoint()),
        ("GOOGLE_APPLICATION_CREDENTIALS", adc.display().to_string()),
    ];
    let (code, out) = import(&machine, &["--set", &project], &envs).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("5 added"), "{out}");
    assert_eq!(fake.token_requests(), 1, "one token for the whole import");
    for credential in [Fake::REFRESH_TOKEN, Fake::OAUTH_CLIENT_SECRET, "ya29."] {
        assert!(!out.contains(credential), "{out}");
    }

    std::fs::write(&adc, fake.authorized_user_json_with("1//revoked")).unwrap();
    let (code, out) = import(&machine, &["--set", &project], &envs).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{out}");
    assert!(out.contains("invalid_grant"), "{out}");
    assert!(!out.contains("1//revoked"), "{out}");
}
