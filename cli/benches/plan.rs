//! `vsync plan --json` of an unchanged vault (issue 15): one env of 1,000
//! secrets synced to five targets of the harness, planned as a whole
//! process, round by round. Target: 0 writes, list calls ≤ the pages 1,000
//! names need at each platform's page size (plus GCP's documented
//! per-secret access: its listing carries nothing that moves when a value
//! does), under 2 s.
//!
//! - the five sinks: GitHub Actions (the fake; organisation secrets, since
//!   GitHub caps repository and environment secrets at 100), HashiCorp
//!   Vault KV v2 (the fake), GCP Secret Manager (the fake), AWS Secrets
//!   Manager (moto behind the harness's front) and Azure Key Vault (the
//!   fake, over TLS);
//! - the store: s3s-fs through the harness, where the sync records live;
//! - the machine: a HOME and a git checkout, env `dev` initialised on the
//!   bucket, `.env.dev` holding 1,000 secrets (40 services × 25 kinds, 80
//!   of them multi-line PEM blocks), and a `vsync.toml` with the five
//!   `[[env.dev.sync]]` targets.
//!
//! Every target is brought in sync once through the library
//! (`vsync_ops::sync`, exactly what `vsync sync` runs) with the rate budget
//! lifted (`RateBudget::unpaced`): through the binary, GitHub's 80 writes a
//! minute would make the seeding take over 12 minutes. The sync records it
//! seals into the store vouch for every name, as a real earlier sync would
//! have left them.
//!
//! Then `vsync plan --json` runs as a whole process, once to warm caches and
//! then `ROUNDS` times, timed; each round also plans every target alone
//! (`--target`), to show where the time goes (each of those runs pays the
//! process start and the key derivation again). Every run's JSON must plan
//! 0 create, update and delete for each target in scope, and each fake's
//! counters, read around every run, must show 0 writes; those are the only
//! asserts. The table gives per target the list calls, the pages 1,000
//! names need, the reads and the writes of one whole plan, and the median
//! of planning it alone; then the whole plan's median and fastest time.
//!
//! Run: `cargo bench -p vsync --bench plan --profile dev` (the dev profile
//! builds every dependency and `vsync-crypto` optimised). Needs s3s-fs and
//! moto (`scripts/install-services`).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Machine;
use support::{median, ms, path};
use vsync_engine::sink::RateBudget;
use vsync_engine::sync::SyncOptions;
use vsync_testcontainers::faults::{Call, Faults};
use vsync_testcontainers::{
    GcpSecretManagerServer, GithubFake, KeyVaultServer, MotoServer, VaultServer,
};

/// Timed runs after the warm-up run.
const ROUNDS: usize = 7;
const TARGET: Duration = Duration::from_secs(2);
/// The env planned.
const ENV: &str = "dev";
/// Services × kinds of secret: 40 × 25 = 1,000 names.
const SERVICES: [&str; 40] = [
    "STRIPE",
    "POSTGRES",
    "REDIS",
    "SENDGRID",
    "TWILIO",
    "DATADOG",
    "SENTRY",
    "SLACK",
    "OKTA",
    "AUTH0",
    "MAILGUN",
    "ALGOLIA",
    "CLOUDFLARE",
    "PAGERDUTY",
    "SEGMENT",
    "MIXPANEL",
    "AMPLITUDE",
    "INTERCOM",
    "ZENDESK",
    "HUBSPOT",
    "SALESFORCE",
    "SHOPIFY",
    "PAYPAL",
    "BRAINTREE",
    "PLAID",
    "MONGODB",
    "ELASTIC",
    "RABBITMQ",
    "KAFKA",
    "SNOWFLAKE",
    "BIGQUERY",
    "LAUNCHDARKLY",
    "OPENAI",
    "NEWRELIC",
    "HONEYCOMB",
    "LINEAR",
    "NOTION",
    "DOCUSIGN",
    "CIRCLECI",
    "MAPBOX",
];
const KINDS: [&str; 25] = [
    "API_KEY",
    "API_SECRET",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "WEBHOOK_SECRET",
    "ACCESS_TOKEN",
    "REFRESH_TOKEN",
    "URL",
    "HOST",
    "PORT",
    "USERNAME",
    "PASSWORD",
    "DATABASE_URL",
    "SIGNING_KEY",
    "ENCRYPTION_KEY",
    "PRIVATE_KEY",
    "TLS_CERT",
    "ACCOUNT_ID",
    "REGION",
    "ENDPOINT",
    "PUBLISHABLE_KEY",
    "ORG_ID",
    "PROJECT_ID",
    "DSN",
    "TIMEOUT_MS",
];
const SECRETS: usize = SERVICES.len() * KINDS.len();

/// One sync target: its short name, its settings (the plan file's and the
/// seeding sync's `--set` alike), and how its calls are counted and judged.
struct Target<'a> {
    short: &'static str,
    settings: Vec<(&'static str, String)>,
    /// The list calls 1,000 names need at the page size the sink asks for.
    pages: usize,
    /// How that page count comes about, for the table.
    paging: &'static str,
    /// The reads the platform documents for an unchanged vault.
    reads_allowed: usize,
    counters: Box<dyn Fn() -> Counted + 'a>,
}

/// One fake's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counted {
    lists: usize,
    reads: usize,
    writes: usize,
    /// Token or key fetches (not API calls on secrets).
    other: usize,
}

impl std::ops::Sub for Counted {
    type Output = Counted;
    fn sub(self, before: Counted) -> Counted {
        Counted {
            lists: self.lists - before.lists,
            reads: self.reads - before.reads,
            writes: self.writes - before.writes,
            other: self.other - before.other,
        }
    }
}

fn faults_counted(faults: &Faults, other: usize) -> Counted {
    Counted {
        lists: faults.calls(Call::List),
        reads: faults.calls(Call::Read),
        // Every write request that reached the fake, served or not.
        writes: faults.calls(Call::Write),
        other,
    }
}

fn main() {
    let setup_started = Instant::now();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let started = Instant::now();
    let (s3, github, vault, gcp, moto, azure) = runtime.block_on(async {
        let s3 = common::s3_server().await;
        let github = GithubFake::start().await.expect("the GitHub fake");
        let vault = VaultServer::start().await.expect("the Vault fake");
        let gcp = GcpSecretManagerServer::start("acme-prod")
            .await
            .expect("the GCP fake");
        let moto = MotoServer::start()
            .await
            .expect("start moto (scripts/install-services)");
        let azure = KeyVaultServer::start().await.expect("the Key Vault fake");
        (s3, github, vault, gcp, moto, azure)
    });
    let services_took = started.elapsed();

    let started = Instant::now();
    let machine = Machine::new();
    runtime.block_on(machine.init_on_bucket(ENV, &s3, &s3.endpoint()));
    let dotenv = dotenv();
    std::fs::write(machine.vault().join(format!(".env.{ENV}")), &dotenv).expect("the .env");
    let ca_file = machine.home.join("keyvault-ca.pem");
    vsync_local::fsutil::write_private_atomic(&ca_file, azure.ca_pem().as_bytes())
        .expect("a private file");
    let variables: Vec<(&str, String)> = vec![
        ("GITHUB_API_URL", github.endpoint()),
        ("GITHUB_TOKEN", GithubFake::TOKEN.to_owned()),
        ("VAULT_TOKEN", VaultServer::ROOT_TOKEN.to_owned()),
        ("VSYNC_GCP_ENDPOINT", gcp.endpoint()),
        (
            "GOOGLE_OAUTH_ACCESS_TOKEN",
            GcpSecretManagerServer::ADMIN_TOKEN.to_owned(),
        ),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ("AWS_ACCESS_KEY_ID", moto.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", moto.secret_access_key().to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("VSYNC_AZURE_VAULT_URL", azure.url()),
        ("VSYNC_AZURE_CA_FILE", ca_file.display().to_string()),
        ("AZURE_TENANT_ID", KeyVaultServer::TENANT_ID.to_owned()),
        ("AZURE_CLIENT_ID", KeyVaultServer::CLIENT_ID.to_owned()),
        (
            "AZURE_CLIENT_SECRET",
            KeyVaultServer::CLIENT_SECRET.to_owned(),
        ),
        ("AZURE_AUTHORITY_HOST", azure.url()),
        (
            "VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION",
            "1".to_owned(),
        ),
    ];
    // Page sizes: the largest each sink asks for (sinks/src/*.rs).
    let targets = vec![
        Target {
            short: "gh",
            settings: vec![
                ("scope", "organization".to_owned()),
                ("org", "acme".to_owned()),
            ],
            pages: SECRETS.div_ceil(100),
            paging: "per_page 100",
            reads_allowed: 0,
            counters: Box::new(|| {
                let counts = github.counts();
                Counted {
                    lists: counts.lists,
                    reads: counts.reads,
                    writes: counts.puts + counts.deletes,
                    other: counts.public_key,
                }
            }),
        },
        Target {
            short: "vault",
            settings: vec![
                ("addr", vault.address()),
                ("secretPath", "apps/web".to_owned()),
            ],
            // KV v2 keeps the whole map in one secret: its inventory is one
            // data read, no listing.
            pages: 0,
            paging: "one map, 1 read",
            reads_allowed: 1,
            counters: Box::new(|| faults_counted(vault.faults(), 0)),
        },
        Target {
            short: "gcp",
            settings: vec![("project", "acme-prod".to_owned())],
            pages: SECRETS.div_ceil(25_000),
            paging: "pageSize 25,000",
            // The listing has no revision: one `versions/latest:access` per
            // secret (sinks/src/gcp.rs).
            reads_allowed: SECRETS,
            counters: Box::new(|| faults_counted(gcp.faults(), gcp.token_requests())),
        },
        Target {
            short: "aws",
            settings: vec![
                ("region", moto.region().to_owned()),
                ("secretPrefix", "web/dev/".to_owned()),
            ],
            pages: SECRETS.div_ceil(100),
            paging: "MaxResults 100",
            reads_allowed: 0,
            counters: Box::new(|| faults_counted(moto.faults(), 0)),
        },
        Target {
            short: "azure",
            settings: vec![("vaultName", "acme-prod".to_owned())],
            pages: SECRETS.div_ceil(25),
            paging: "maxresults 25",
            reads_allowed: 0,
            counters: Box::new(|| faults_counted(azure.faults(), azure.token_requests())),
        },
    ];
    std::fs::write(machine.checkout.join("vsync.toml"), plan_file(&targets)).expect("vsync.toml");
    let machine_took = started.elapsed();

    // Every target in sync once, through the library, unpaced.
    let ctx = context(&machine);
    let environment = |name: &str| {
        variables
            .iter()
            .find(|(variable, _)| *variable == name)
            .map(|(_, value)| value.clone())
    };
    let mut seeded = Vec::new();
    for target in &targets {
        let started = Instant::now();
        let before = (target.counters)();
        let request = vsync_ops::SyncRequest {
            sets: target
                .settings
                .iter()
                .map(|(field, value)| format!("{field}={value}"))
                .collect(),
            options: SyncOptions {
                rate: Some(RateBudget::unpaced(10)),
                ..SyncOptions::default()
            },
            ..vsync_ops::SyncRequest::default()
        };
        let outcome = runtime
            .block_on(vsync_ops::sync(
                &ctx,
                ENV,
                target.short,
                &request,
                &environment,
                &vsync_ops::Quiet,
            ))
            .unwrap_or_else(|err| panic!("seeding {}: {err}", target.short));
        let report = &outcome.report;
        assert_eq!(
            (report.secrets.len(), report.failures()),
            (SECRETS, 0),
            "seeding {}: {:?}",
            target.short,
            report.warnings
        );
        let writes = ((target.counters)() - before).writes;
        seeded.push((target.short, writes, started.elapsed()));
    }
    let setup_took = setup_started.elapsed();

    // The whole plan, then each target alone (`--target`), every round,
    // so drift of the machine hits them alike.
    let vsync = env!("CARGO_BIN_EXE_vsync");
    let plan_of = |only: Option<&str>| {
        let mut command = Command::new(vsync);
        command
            .args(["plan", "--json"])
            .args(only.map(|short| ["--target", short]).into_iter().flatten())
            .current_dir(&machine.checkout)
            .env_clear()
            .env("PATH", path())
            .env("HOME", &machine.home)
            .env("VSYNC_KEYSTORE", "file")
            .envs(variables.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null());
        command
    };
    let mut runs: Vec<(Option<usize>, Command, Vec<Duration>)> =
        vec![(None, plan_of(None), Vec::new())];
    for (index, target) in targets.iter().enumerate() {
        runs.push((Some(index), plan_of(Some(target.short)), Vec::new()));
    }
    let mut per_run: Vec<Vec<Counted>> = Vec::new();
    for round in 0..=ROUNDS {
        for (only, command, times) in &mut runs {
            let before: Vec<Counted> = targets.iter().map(|target| (target.counters)()).collect();
            let started = Instant::now();
            let output = command.output().expect("vsync plan starts");
            let took = started.elapsed();
            assert!(
                output.status.success(),
                "vsync plan failed ({:?}):\n{}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            );
            let calls: Vec<Counted> = targets
                .iter()
                .zip(&before)
                .map(|(target, before)| (target.counters)() - *before)
                .collect();
            let in_scope = match only {
                Some(index) => &targets[*index..=*index],
                None => &targets[..],
            };
            check_unchanged(&output.stdout, in_scope);
            for (target, calls) in targets.iter().zip(&calls) {
                assert_eq!(
                    calls.writes, 0,
                    "round {round}: vsync plan wrote to {}",
                    target.short
                );
            }
            // Round 0 warms caches and is not timed; its calls count.
            if round > 0 {
                times.push(took);
            }
            if only.is_none() {
                per_run.push(calls);
            }
        }
    }

    let iterations = vsync_crypto::DEFAULT_ITERATIONS;
    let started = Instant::now();
    drop(vsync_crypto::Key::derive(
        b"a-keystore-value-of-the-bench",
        b"NvTGExRJ8+Kn8dwd",
        iterations,
    ));
    let derivation = started.elapsed();

    println!(
        "setup {:.1} s: services {:.1} s, machine {:.1} s, seeding {}",
        setup_took.as_secs_f64(),
        services_took.as_secs_f64(),
        machine_took.as_secs_f64(),
        seeded
            .iter()
            .map(|(short, writes, took)| format!(
                "{short} {writes} writes {:.1} s",
                took.as_secs_f64()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{SECRETS} secrets × {} targets, unchanged; calls of one `vsync plan --json` run:",
        targets.len()
    );
    println!(
        "| target | list calls | pages needed | reads | reads documented | writes | tokens / keys | within budget | alone: median ms |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---|---:|");
    let first = &per_run[0];
    for (index, (target, calls)) in targets.iter().zip(first).enumerate() {
        let steady = per_run.iter().all(|run| run[index] == *calls);
        let verdict = if calls.lists <= target.pages && calls.reads <= target.reads_allowed {
            "met"
        } else {
            "OVER"
        };
        println!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {verdict}{} | {:.0} |",
            target.short,
            calls.lists,
            target.pages,
            target.paging,
            calls.reads,
            target.reads_allowed,
            calls.writes,
            calls.other,
            if steady { "" } else { " (varies by run)" },
            ms(median(&mut runs[index + 1].2))
        );
    }
    let times = &mut runs[0].2;
    let fastest = times.iter().min().copied().unwrap_or_default();
    let median = median(times);
    let verdict = if median <= TARGET { "met" } else { "MISSED" };
    println!(
        "`vsync plan --json`: median {:.0} ms, min {:.0} ms over {ROUNDS} rounds (target < {} s: {verdict}); PBKDF2-SHA256 600k in-process {:.0} ms",
        ms(median),
        ms(fastest),
        TARGET.as_secs(),
        ms(derivation)
    );
}

/// Panics unless `stdout` is a plan of every target with all its 1,000
/// names unchanged.
fn check_unchanged(stdout: &[u8], targets: &[Target<'_>]) {
    let report: serde_json::Value = serde_json::from_slice(stdout).expect("the plan's JSON");
    let planned = report["targets"].as_array().expect("targets");
    assert_eq!(planned.len(), targets.len(), "{report}");
    for (target, planned) in targets.iter().zip(planned) {
        assert_eq!(planned["to"], target.short, "{planned}");
        assert_eq!(
            planned["result"], "planned",
            "{} was not planned: {}",
            target.short, planned["reason"]
        );
        let lines = planned["secrets"].as_array().expect("secrets");
        let count = |action: &str| lines.iter().filter(|line| line["action"] == action).count();
        let (create, update, delete) = (count("create"), count("update"), count("prune"));
        assert_eq!(
            (create, update, delete, count("unchanged")),
            (0, 0, 0, SECRETS),
            "{}: the plan of an unchanged vault is not all unchanged ({create} create, {update} update, {delete} delete)",
            target.short
        );
        let drifted = lines.iter().filter(|line| !line["drift"].is_null()).count();
        assert_eq!(drifted, 0, "{}: drift reported", target.short);
    }
}

/// The `.env`: 40 services × 25 kinds of secret, values shaped like the
/// real thing (keys, URLs, passwords, ports), the private keys and
/// certificates multi-line in double quotes.
fn dotenv() -> String {
    let mut random = Random(0x5eed_f00d_7e57_ab1e);
    let mut text = String::from("# generated for the plan benchmark\n");
    for service in SERVICES {
        let host = service.to_ascii_lowercase();
        writeln!(text, "\n# {host}").expect("a String");
        for kind in KINDS {
            let value = match kind {
                "API_KEY" | "API_SECRET" | "PUBLISHABLE_KEY" => {
                    format!("{}_live_{}", &host[..2], random.text(32))
                }
                "CLIENT_ID" | "ACCOUNT_ID" | "ORG_ID" | "PROJECT_ID" => random.text(20),
                "URL" | "ENDPOINT" => format!("https://api.{host}.example.com/v2"),
                "HOST" => format!("{host}.internal.example.com"),
                "PORT" => (1024 + random.next() % 60_000).to_string(),
                "USERNAME" => format!("svc_{host}"),
                "DATABASE_URL" => format!(
                    "postgres://svc_{host}:{}@db.internal:5432/{host}?sslmode=require",
                    random.text(24)
                ),
                "DSN" => format!("https://{}@o1.ingest.example.io/{host}", random.text(32)),
                "REGION" => "eu-west-1".to_owned(),
                "TIMEOUT_MS" => "30000".to_owned(),
                "PRIVATE_KEY" => pem("PRIVATE KEY", 16, &mut random),
                "TLS_CERT" => pem("CERTIFICATE", 12, &mut random),
                _ => random.base64(44),
            };
            if value.contains('\n') {
                writeln!(text, "{service}_{kind}=\"{value}\"").expect("a String");
            } else {
                writeln!(text, "{service}_{kind}={value}").expect("a String");
            }
        }
    }
    text
}

/// A PEM block of `lines` lines of 64 base64 characters.
fn pem(label: &str, lines: usize, random: &mut Random) -> String {
    let mut text = format!("-----BEGIN {label}-----\n");
    for _ in 0..lines {
        text.push_str(&random.base64(64));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----"));
    text
}

/// splitmix64: the same values on every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }

    fn text(&mut self, len: usize) -> String {
        self.pick(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            len,
        )
    }

    fn base64(&mut self, len: usize) -> String {
        self.pick(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            len,
        )
    }
}

/// The plan file: one `[[env.dev.sync]]` per target with its settings.
fn plan_file(targets: &[Target<'_>]) -> String {
    let mut text = String::from("version = 1\n");
    for target in targets {
        let settings = target
            .settings
            .iter()
            .map(|(field, value)| format!("{field} = {value:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            text,
            "\n[[env.{ENV}.sync]]\nto = \"{}\"\nsettings = {{ {settings} }}\n",
            target.short
        )
        .expect("a String");
    }
    text
}

/// The machine's context as the CLI builds it from its environment (HOME,
/// `VSYNC_KEYSTORE=file`), for the seeding syncs run in this process.
fn context(machine: &Machine) -> vsync_ops::Context {
    let base = vsync_local::ConfigBase::at(machine.home.join(".config/vsync"));
    vsync_ops::Context {
        keystore: vsync_local::Keystore::file(&base),
        base,
        keystore_choice: vsync_local::keystore::Choice::Variable,
        keystore_notice: None,
        local_store_dir: machine.home.join(".local/share/vsync/store"),
        backup_dir_override: None,
        cwd: machine.checkout.clone(),
        repo_flag: None,
        audit_meta_env: None,
        audit_note_env: None,
        keys: Default::default(),
    }
}
