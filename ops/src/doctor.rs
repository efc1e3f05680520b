//! `vsync doctor`: checks this machine's setup and says what to fix, before
//! a command fails on it. It writes nothing: no config, no keystore choice,
//! no ledger, no object; it reads each env's pointer and nothing else from
//! the stores.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use vsync_backends::s3::Provider;
use vsync_engine::timestamp::Timestamp;
use vsync_engine::vault;
use vsync_local::keystore::Choice;
use vsync_local::{EnvConfig, Keystore, fsutil};
use vsync_platforms::{CredentialSource, Routing, SinkRequest};

use crate::keystore::{ConfigFile, config_files};
use crate::store::{layout, open_store};
use crate::{Context, platforms};

/// How long a store may take to answer before it counts as unreachable.
const STORE_TIMEOUT: Duration = Duration::from_secs(20);

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// As it should be.
    Ok,
    /// Works, but worth knowing.
    Warning,
    /// Something will fail or leak; the finding says what to do.
    Problem,
}

/// One check's outcome. Never carries a secret value.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was checked: `keystore`, a path, `<repo>/<env>`, `<repo>/<env> → gh`.
    pub subject: String,
    /// Which check: `keystore`, `permissions`, `store`, `clock`, `preset`,
    /// `gitignore`, `key`, `config`, `credentials`.
    pub check: &'static str,
    /// How bad.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do, for a warning or a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Everything `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// The findings, machine-wide first, then env by env.
    pub findings: Vec<Finding>,
}

impl DoctorReport {
    /// True when nothing is a problem (warnings allowed).
    pub fn healthy(&self) -> bool {
        self.findings
            .iter()
            .all(|finding| finding.verdict != Verdict::Problem)
    }
}

/// Runs every check: the keystore, the modes of vsync's directories and of
/// the files that hold credentials, then for each env on this machine its
/// config, key, store, the store's newest version against this clock, the
/// provider preset, the vault folder's git-ignore (envs of the working
/// tree's repo) and each saved sync target's credentials. `environment`
/// is where credentials are looked up (the process environment).
pub async fn doctor(ctx: &Context, environment: platforms::Environment<'_>) -> DoctorReport {
    let mut findings = vec![keystore_finding(ctx)];
    let files = config_files(&ctx.base);
    findings.extend(permission_findings(
        ctx,
        files.as_deref().unwrap_or_default(),
    ));
    let current_repo = ctx.repo().ok();
    match files {
        Ok(files) => {
            for file in files {
                let repo = current_repo
                    .as_ref()
                    .filter(|repo| repo.name() == file.repo);
                findings.extend(env_findings(ctx, &file, repo, environment).await);
            }
        }
        Err(err) => findings.push(problem(
            ctx.base.dir().display().to_string(),
            "config",
            format!("the env configs cannot be listed: {err}"),
            "check the directory's permissions",
        )),
    }
    DoctorReport { findings }
}

fn ok(subject: impl Into<String>, check: &'static str, detail: String) -> Finding {
    Finding {
        subject: subject.into(),
        check,
        verdict: Verdict::Ok,
        detail,
        fix: None,
    }
}

fn problem(
    subject: impl Into<String>,
    check: &'static str,
    detail: String,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        subject: subject.into(),
        check,
        verdict: Verdict::Problem,
        detail,
        fix: Some(fix.into()),
    }
}

fn warning(
    subject: impl Into<String>,
    check: &'static str,
    detail: String,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        verdict: Verdict::Warning,
        ..problem(subject, check, detail, fix)
    }
}

fn keystore_finding(ctx: &Context) -> Finding {
    let detail = format!(
        "{} ({})",
        ctx.keystore.describe(),
        ctx.keystore_choice.describe()
    );
    if let Keystore::File(dir) = &ctx.keystore
        && let Err(not_private) = fsutil::check_private_chain(ctx.base.dir(), dir)
    {
        return problem(
            "keystore",
            "keystore",
            not_private.to_string(),
            not_private.fix,
        );
    }
    match (&ctx.keystore_choice, &ctx.keystore_notice) {
        (
            Choice::NoKeychain {
                remember_at: Some(path),
                ..
            },
            _,
        ) => warning(
            "keystore",
            "keystore",
            detail,
            format!(
                "nothing to do if this machine has no keychain: the next command remembers the file keystore in {}; set VSYNC_KEYSTORE=file to choose it now",
                path.display()
            ),
        ),
        (_, Some(notice)) => warning("keystore", "keystore", detail, notice.clone()),
        _ => ok("keystore", "keystore", detail),
    }
}

/// vsync's directories must be this user's and not writable by others;
/// files holding credentials (env configs, keys, profiles) must not be
/// readable by others either.
fn permission_findings(ctx: &Context, env_configs: &[ConfigFile]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let base = ctx.base.dir();
    let directories = [
        base.to_path_buf(),
        ctx.base.keystore_dir(),
        ctx.base.profiles_dir(),
        ctx.base.backups_dir(ctx.backup_dir_override.as_deref()),
    ];
    for dir in directories.iter().filter(|dir| dir.exists()) {
        if let Err(not_private) = fsutil::check_private_chain(dir, dir) {
            findings.push(problem(
                dir.display().to_string(),
                "permissions",
                not_private.problem.to_owned(),
                not_private.fix,
            ));
        }
    }
    let mut secret_files: Vec<PathBuf> = env_configs.iter().map(|file| file.path.clone()).collect();
    secret_files.extend(files_below(&ctx.base.keystore_dir(), 2));
    secret_files.extend(files_below(&ctx.base.profiles_dir(), 1));
    for file in secret_files {
        if let Some(finding) = loose_secret_file(&file) {
            findings.push(finding);
        }
    }
    if findings.is_empty() {
        findings.push(ok(
            base.display().to_string(),
            "permissions",
            "vsync's directories are private to this user and the files holding credentials are 0600".into(),
        ));
    }
    findings
}

/// Regular files up to `depth` levels below `dir`.
fn files_below(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_file() {
            files.push(entry.path());
        } else if kind.is_dir() && depth > 1 {
            files.extend(files_below(&entry.path(), depth - 1));
        }
    }
    files
}

fn loose_secret_file(path: &Path) -> Option<Finding> {
    use std::os::unix::fs::PermissionsExt;

    let subject = path.display().to_string();
    if let Err(not_private) = fsutil::check_private_chain(path, path) {
        return Some(problem(
            subject,
            "permissions",
            not_private.problem.to_owned(),
            not_private.fix,
        ));
    }
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        problem(
            subject,
            "permissions",
            format!(
                "holds credentials and is readable by group or others (mode {:03o})",
                mode & 0o777
            ),
            format!("chmod 600 {}", path.display()),
        )
    })
}

async fn env_findings(
    ctx: &Context,
    file: &ConfigFile,
    current_repo: Option<&crate::Repo>,
    environment: platforms::Environment<'_>,
) -> Vec<Finding> {
    let subject = format!("{}/{}", file.repo, file.env);
    let config = match EnvConfig::load(&file.path) {
        Ok(config) => config,
        Err(err) => {
            return vec![problem(
                subject,
                "config",
                err.to_string(),
                "restore the config from a backup or re-import the env's .share",
            )];
        }
    };
    let mut findings = Vec::new();
    findings.push(match ctx.keystore.get(&file.repo, &file.env) {
        Ok(Some(_)) => ok(&subject, "key", format!("in the {}", ctx.keystore.describe())),
        Ok(None) => problem(
            &subject,
            "key",
            format!("no key in the {}", ctx.keystore.describe()),
            format!(
                "import the env's .share (`vsync import {} <file>.share`), or choose the keystore that holds it with VSYNC_KEYSTORE",
                file.env
            ),
        ),
        Err(err) => problem(&subject, "key", err.to_string(), "see the message"),
    });
    findings.extend(store_findings(&subject, &config, &file.repo, &file.env).await);
    findings.extend(preset_finding(&subject, &config));
    if let Some(repo) = current_repo {
        findings.push(gitignore_finding(&subject, repo, &config, &file.env));
    }
    findings.extend(sync_target_findings(
        &subject,
        &config,
        &file.env,
        environment,
    ));
    findings
}

/// The store answers, and its newest version is not ahead of this clock
/// (a push refuses a remote that is).
async fn store_findings(subject: &str, config: &EnvConfig, repo: &str, env: &str) -> Vec<Finding> {
    let opened = open_store(config).and_then(|store| Ok((store, layout(config, repo, env)?)));
    let (store, layout) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            return vec![problem(
                subject,
                "store",
                err.to_string(),
                "fix the env's store settings (`vsync init --force` with the right profile)",
            )];
        }
    };
    let where_ = format!("{} under {}", store.describe(), layout.prefix());
    // The bucket's clock first: a store refusing requests signed off its
    // clock is explained by it.
    let bucket_clock = match tokio::time::timeout(STORE_TIMEOUT, store.server_time()).await {
        Ok(Ok(Some(server_time))) => Some(bucket_clock_finding(subject, server_time)),
        _ => None,
    };
    let head = tokio::time::timeout(STORE_TIMEOUT, vault::remote_head(store.as_ref(), &layout));
    let head = match head.await {
        Ok(Ok(head)) => head,
        Ok(Err(err)) => {
            let unanswered = problem(
                subject,
                "store",
                format!("{where_} does not answer: {err}"),
                "check the endpoint, the network (and HTTPS_PROXY), the bucket and the credentials of the env's profile",
            );
            return [Some(unanswered), bucket_clock]
                .into_iter()
                .flatten()
                .collect();
        }
        Err(_) => {
            return vec![problem(
                subject,
                "store",
                format!(
                    "{where_} did not answer within {} s",
                    STORE_TIMEOUT.as_secs()
                ),
                "check the endpoint and the network (and HTTPS_PROXY)",
            )];
        }
    };
    let mut findings = vec![ok(
        subject,
        "store",
        match &head {
            None => format!("{where_} answers; nothing is published yet"),
            Some(head) => format!(
                "{where_} answers; current version {} (generation {})",
                head.ts, head.generation
            ),
        },
    )];
    findings.extend(bucket_clock);
    // The same second is fine: a push waits for the next one.
    let now = Timestamp::now();
    findings.extend(head.map(|head| {
        if head.ts > now {
            problem(
                subject,
                "clock",
                format!(
                    "the newest version {} is ahead of this machine's clock ({now}): pushes are refused until it is older",
                    head.ts
                ),
                "if this clock is behind, fix it (NTP, `timedatectl set-ntp true`); if the machine that pushed was ahead, fix that one and publish after it with `vsync push --force`",
            )
        } else {
            ok(
                subject,
                "clock",
                format!(
                    "the newest version {} is not ahead of this clock ({now})",
                    head.ts
                ),
            )
        }
    }));
    findings
}

/// S3 refuses requests signed more than 15 minutes off its clock.
const SIGNATURE_SKEW: Duration = Duration::from_secs(15 * 60);
/// Past this, versions pushed by machines with a right clock can look ahead
/// of this one, and its pushes are refused.
const NOTICEABLE_SKEW: Duration = Duration::from_secs(30);

/// The bucket's clock (its server's `Date`) against this machine's.
fn bucket_clock_finding(subject: &str, server_time: std::time::SystemTime) -> Finding {
    let (skew, direction) = match server_time.duration_since(std::time::SystemTime::now()) {
        Ok(ahead) => (ahead, "ahead of"),
        Err(behind) => (behind.duration(), "behind"),
    };
    let detail = format!(
        "the bucket's clock is {} s {direction} this machine's",
        skew.as_secs()
    );
    let fix = "set this machine's clock right (NTP: `timedatectl set-ntp true`); if it is right, the storage provider's clock is wrong";
    if skew >= SIGNATURE_SKEW {
        problem(
            subject,
            "bucket clock",
            format!("{detail}: S3 refuses requests signed more than 15 minutes off its clock"),
            fix,
        )
    } else if skew >= NOTICEABLE_SKEW {
        warning(
            subject,
            "bucket clock",
            format!(
                "{detail}: versions pushed from machines whose clocks are right can look ahead of this one, and its pushes are refused"
            ),
            fix,
        )
    } else {
        ok(subject, "bucket clock", detail)
    }
}

/// A preset chosen with `--provider` that contradicts the endpoint's host
/// sends the wrong `If-Match` spelling, and compare-and-swap breaks.
fn preset_finding(subject: &str, config: &EnvConfig) -> Option<Finding> {
    if config.local_store_dir().is_some() {
        return None;
    }
    let endpoint = &config.s3.endpoint;
    let host = endpoint
        .split_once("://")
        .map_or(endpoint.as_str(), |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    let detected = Provider::detect(host);
    let chosen = match config.s3.provider() {
        None => {
            return Some(ok(
                subject,
                "preset",
                format!("the {detected} preset, detected from {host}"),
            ));
        }
        Some(name) => name.parse::<Provider>(),
    };
    Some(match chosen {
        Err(problem_text) => problem(
            subject,
            "preset",
            format!("the config's s3.provider: {problem_text}"),
            "re-run `vsync init <env> --force` with --provider=<preset>",
        ),
        Ok(chosen) if detected != Provider::Custom && chosen != detected => warning(
            subject,
            "preset",
            format!("the {chosen} preset is set, but {host} is a {detected} endpoint"),
            format!(
                "re-run `vsync init <env> --force --provider={detected}` unless {host} really is {chosen}"
            ),
        ),
        Ok(chosen) => ok(subject, "preset", format!("the {chosen} preset for {host}")),
    })
}

/// The vault folder holds plaintext: git must ignore it.
fn gitignore_finding(subject: &str, repo: &crate::Repo, config: &EnvConfig, env: &str) -> Finding {
    let env_file = Path::new(&config.vault_folder(env)).join(format!(".env.{env}"));
    let ignored = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo.vault_root)
        .args(["check-ignore", "--quiet", "--no-index", "--"])
        .arg(&env_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match ignored.map(|status| status.code()) {
        Ok(Some(0)) => ok(
            subject,
            "gitignore",
            format!("{} is ignored by git", env_file.display()),
        ),
        Ok(Some(1)) => problem(
            subject,
            "gitignore",
            format!(
                "{} is not ignored by git: the plaintext would be committed",
                env_file.display()
            ),
            format!(
                "add `{}/` to the repo's .gitignore (vsync writes a .gitignore into the vault folder; it may have been deleted)",
                config.vault_folder(env)
            ),
        ),
        _ => warning(
            subject,
            "gitignore",
            format!(
                "git could not say whether {} is ignored",
                env_file.display()
            ),
            "check that git is installed and the working tree is a git repository",
        ),
    }
}

/// Each saved sync target can be built: its settings read and its
/// credentials found in `environment`, named by where they come from
/// (nothing is sent to the platform, no value is shown). Credentials left
/// to an ambient identity (an instance role, a metadata server) are a
/// warning: only a real call can tell whether one answers.
fn sync_target_findings(
    subject: &str,
    config: &EnvConfig,
    env: &str,
    environment: platforms::Environment<'_>,
) -> Vec<Finding> {
    let Some(targets) = &config.sync else {
        return Vec::new();
    };
    targets
        .iter()
        .map(|(short, saved)| {
            let target = format!("{subject} → {short}");
            let found = platforms::find_sink(short).and_then(|(platform, side)| {
                let routing = platform.routing(Some(saved), &Routing::new())?;
                let request = SinkRequest {
                    env,
                    routing: &routing,
                    environment,
                };
                (side.build)(&request)?;
                Ok(((side.credential_source)(&request)?, side.credentials))
            });
            match found {
                Ok((CredentialSource::Found(source), _)) => ok(
                    target,
                    "credentials",
                    format!("settings read and credentials from {source}"),
                ),
                Ok((CredentialSource::Ambient(source), looked_up)) => warning(
                    target,
                    "credentials",
                    format!(
                        "settings read; credentials would come from {source}; only a real call can tell"
                    ),
                    format!(
                        "run `vsync sync {env} {short} --dry-run` to try them, or give credentials explicitly ({looked_up})"
                    ),
                ),
                Err(err) => problem(
                    target,
                    "credentials",
                    err.to_string(),
                    format!(
                        "fix what the message names, then `vsync sync {env} {short} --dry-run`"
                    ),
                ),
            }
        })
        .collect()
}
