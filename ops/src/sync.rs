//! `vsync sync <env> <target>`: the env's `.env.<env>` onto one platform.
//!
//! Reading follows upstream (§3.3, §5.10): the grammar of
//! [`vsync_engine::dotenv`] (upstream's line rules, plus double-quoted
//! values spanning lines; a line the grammar cannot read as written refuses
//! the sync with its line number), placeholder expansion, file references only for
//! the suffixes passed with `--inline-file-suffix`, and only the keys passed
//! with `--exclude-property` skipped. The platform, its routing (saved into
//! the env config's `sync.<short>` block, as upstream does, so the next run
//! needs no flags), its credentials and its sink come from the registry
//! ([`vsync_platforms`]). Planning, pacing and the record of what was
//! applied are the engine's ([`vsync_engine::sync`]).

use std::path::{Path, PathBuf};

use serde::Serialize;
use vsync_crypto::fingerprint::FingerprintKey;
use vsync_engine::dotenv::{self, Placeholders};
use vsync_engine::sink::SecretValue;
use vsync_engine::sync::{
    Desired, RecordStore, Refusal, SyncError, SyncOptions, SyncReport, records_key,
};
use vsync_platforms::{self as platforms, Environment, SinkRequest};

use crate::lifecycle::Env;
use crate::store::{layout, open_store};
use crate::{Context, OpsError, Progress};

/// How `.env.<env>` is read (upstream's parser flags).
#[derive(Debug, Clone, Default)]
pub struct ParserPolicy {
    /// `--inline-file-suffix=`: keys ending in one of these name a file
    /// whose content is synced under the stem (`SSH_KEY_PATH` → `SSH_KEY`).
    pub inline_file_suffixes: Vec<String>,
    /// `--exclude-property=`: keys not synced.
    pub exclude: Vec<String>,
}

impl ParserPolicy {
    /// Upstream's policy header, one line per rule.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.inline_file_suffixes.is_empty() {
            lines.push("file references: (none — file refs disabled)".to_owned());
        } else {
            for suffix in &self.inline_file_suffixes {
                lines.push(format!(
                    "file references: *{suffix} → content of the named file"
                ));
            }
        }
        if self.exclude.is_empty() {
            lines.push("excluded: (none — nothing skipped)".to_owned());
        } else {
            lines.push(format!("excluded: {}", self.exclude.join(", ")));
        }
        lines
    }
}

/// What `vsync sync` should do.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// The platform's upstream-style flags given (`("gh-repo",
    /// "acme/api")`; a switch's value is `true`). Saved settings are
    /// remembered in the env config, as upstream does.
    pub flags: Vec<(String, String)>,
    /// Generic `field=value` settings (`--set`), checked against the
    /// platform's routing struct.
    pub sets: Vec<String>,
    /// Parser flags.
    pub parser: ParserPolicy,
    /// Engine options: dry run, prune, the deletion cap, retries, rate.
    pub options: SyncOptions,
}

/// A key `.env.<env>` holds that is not synced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The key.
    pub key: String,
    /// `excluded`.
    pub reason: &'static str,
}

/// What `vsync sync` did.
#[derive(Debug, Serialize)]
pub struct SyncOutcome {
    /// The platform's long name.
    pub platform: &'static str,
    /// The file read.
    pub env_file: PathBuf,
    /// Keys not synced.
    pub skipped: Vec<Skipped>,
    /// The engine's report.
    #[serde(flatten)]
    pub report: SyncReport,
    /// A keyed digest of every name's value to sync: what a reviewed plan
    /// is bound to (not shown: it is only compared).
    #[serde(skip)]
    pub desired_digest: String,
}

/// Syncs env `env` of the current repo to the platform named `target`
/// (short or long name), with credentials from `environment`.
pub async fn sync(
    ctx: &Context,
    env: &str,
    target: &str,
    request: &SyncRequest,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<SyncOutcome, OpsError> {
    let (platform, sink_side) = platforms::find_sink(target)?;
    let given = platform.given(&request.flags, &request.sets)?;
    let mut env = Env::load(ctx, env)?;
    let saved = env
        .config
        .sync
        .as_ref()
        .and_then(|blocks| blocks.get(platform.short));
    // Checked before anything is written: a setting the platform does not
    // have, or a saved block it cannot read, changes nothing.
    let routing = platform.routing(saved, &given)?;
    if let Some(block) = platform.remember(saved, &given) {
        env.config
            .sync
            .get_or_insert_default()
            .insert(platform.short.to_owned(), block);
        env.config.save_for(&ctx.base, env.repo.name(), &env.name)?;
    }
    sync_routed(
        &env,
        platform.name,
        sink_side,
        &routing,
        request,
        None,
        environment,
        progress,
    )
    .await
}

/// [`sync`] of `env` with `routing` as it is (checked, and saved nowhere):
/// what `sync` does once the routing is settled, and what `vsync plan`
/// runs with the plan file's routing. `planned`: the `.env.<env>` text to
/// sync instead of the file's (what a plan's imports would leave).
#[allow(clippy::too_many_arguments)] // one call site per caller, each with its own sources
pub(crate) async fn sync_routed(
    env: &Env,
    platform: &'static str,
    sink_side: &platforms::SinkSide,
    routing: &platforms::Routing,
    request: &SyncRequest,
    planned: Option<&str>,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<SyncOutcome, OpsError> {
    // The vault folder is read through no symlink (a symlinked `infra`
    // would sync another tree's `.env`).
    env.check_vault_path()?;
    let env_file = env.vault_dir.join(format!(".env.{}", env.name));
    progress.step(1, 3, &format!("reading {}", env_file.display()));
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or(OpsError::NoHome)?;
    let (desired, skipped) = match planned {
        Some(text) => read_env_text(text, &env_file, &request.parser, &home)?,
        None => read_env_file(&env_file, &request.parser, &home)?,
    };
    if desired.is_empty() {
        return Err(OpsError::Usage(format!(
            "{} has no keys to sync ({} skipped)",
            env_file.display(),
            skipped.len()
        )));
    }

    let sink = (sink_side.build)(&SinkRequest {
        env: &env.name,
        routing,
        environment,
    })?;
    progress.step(
        2,
        3,
        &format!("planning {} secrets for {}", desired.len(), sink.target()),
    );
    let store = open_store(&env.config)?;
    let layout = layout(&env.config, env.repo.name(), &env.name)?;
    let key = records_key::load(store.as_ref(), &layout, &env.derive_key())
        .await
        .map_err(OpsError::Sync)?
        .key;
    let records = RecordStore::new(store.as_ref(), &layout, &sink.target(), &key);
    let fingerprints = FingerprintKey::derive(&key);
    let desired_digest = desired_digest(&desired, &fingerprints);
    let step = if request.options.dry_run {
        "planning only (--dry-run)"
    } else {
        "applying changes"
    };
    progress.step(3, 3, step);
    let report = vsync_engine::sync::sync(
        sink.as_ref(),
        &desired,
        &records,
        &fingerprints,
        &request.options,
        progress,
    )
    .await
    .map_err(OpsError::Sync)?;
    for warning in &report.warnings {
        progress.warn(warning);
    }
    Ok(SyncOutcome {
        platform,
        env_file,
        skipped,
        report,
        desired_digest,
    })
}

/// A keyed digest of the secrets to sync: every key (the last of a key
/// written twice wins, as in the sync) with its value's fingerprint.
fn desired_digest(desired: &[Desired], fingerprints: &FingerprintKey) -> String {
    let latest: std::collections::BTreeMap<&str, &SecretValue> = desired
        .iter()
        .map(|secret| (secret.key.as_str(), &secret.value))
        .collect();
    fingerprints.listing(
        latest
            .into_iter()
            .map(|(key, value)| (key, Some(value.as_bytes()))),
    )
}

/// Reads `.env.<env>` into the secrets to sync, with upstream's rules:
/// placeholders expanded, file references resolved (all or none: every
/// unreadable file is named in one error and nothing is synced), excluded
/// keys skipped. A line the grammar cannot read as written (an unclosed
/// quote, a line without `=`) refuses the sync before any write (exit 12),
/// naming the file and every such line, never a value: upstream would have
/// synced a truncated or shifted value without a word.
pub fn read_env_file(
    path: &Path,
    policy: &ParserPolicy,
    home: &Path,
) -> Result<(Vec<Desired>, Vec<Skipped>), OpsError> {
    let text = vsync_crypto::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
        OpsError::Io {
            path: path.to_owned(),
            source,
        }
    })?);
    read_env_text(&text, path, policy, home)
}

/// [`read_env_file`] of `text`, read from (or planned for) `path`.
fn read_env_text(
    text: &str,
    path: &Path,
    policy: &ParserPolicy,
    home: &Path,
) -> Result<(Vec<Desired>, Vec<Skipped>), OpsError> {
    let vault_root = path.parent().unwrap_or(Path::new("."));
    let places = Placeholders {
        vault_root: &vault_root.to_string_lossy(),
        home: &home.to_string_lossy(),
    };
    let suffixes: Vec<&str> = policy
        .inline_file_suffixes
        .iter()
        .map(String::as_str)
        .collect();
    let mut desired = Vec::new();
    let mut skipped = Vec::new();
    let mut unresolved = Vec::new();
    let parsed = dotenv::parse(text);
    if !parsed.problems.is_empty() {
        let refusals = dotenv::summarize(&parsed.problems)
            .into_iter()
            .map(|problem| Refusal {
                key: None,
                name: None,
                problem: format!("{} {problem}", path.display()),
            })
            .collect();
        return Err(OpsError::Sync(SyncError::Preflight(refusals)));
    }
    for entry in parsed.entries {
        if policy.exclude.contains(&entry.key) {
            skipped.push(Skipped {
                key: entry.key,
                reason: "excluded",
            });
            continue;
        }
        let value = dotenv::expand_placeholders(&entry.value, places);
        match dotenv::file_reference_stem(&entry.key, &suffixes) {
            Some(stem) => {
                let file = vault_root.join(value.as_str());
                match std::fs::read(&file).map(String::from_utf8) {
                    Ok(Ok(content)) => desired.push(Desired {
                        key: stem.to_owned(),
                        value: SecretValue::from_text(&vsync_crypto::Zeroizing::new(content)),
                    }),
                    Ok(Err(_)) => unresolved.push(format!(
                        "{} → {}: not UTF-8 text",
                        entry.key,
                        file.display()
                    )),
                    Err(error) => {
                        unresolved.push(format!("{} → {}: {error}", entry.key, file.display()))
                    }
                }
            }
            None => desired.push(Desired {
                key: entry.key,
                value: SecretValue::from_text(&value),
            }),
        }
    }
    if !unresolved.is_empty() {
        return Err(OpsError::Usage(format!(
            "aborting sync — {} file reference(s) could not be resolved:\n  - {}",
            unresolved.len(),
            unresolved.join("\n  - ")
        )));
    }
    Ok((desired, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = (Vec<(String, String)>, Vec<Skipped>);

    fn read(text: &str, policy: &ParserPolicy, files: &[(&str, &str)]) -> Result<Read, OpsError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let path = dir.path().join(".env.dev");
        std::fs::write(&path, text).unwrap();
        let (desired, skipped) = read_env_file(&path, policy, Path::new("/home/ada"))?;
        let pairs = desired
            .into_iter()
            .map(|secret| (secret.key, secret.value.as_text().unwrap().to_owned()))
            .collect();
        Ok((pairs, skipped))
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    #[test]
    fn reads_keys_in_file_order_with_placeholders_expanded() {
        let (pairs, skipped) = read(
            "# comment\nA=1\nCERT_DIR=~/certs\nB=\"${HOME}/x\"\nA=2\n",
            &ParserPolicy::default(),
            &[],
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                pair("A", "1"),
                pair("CERT_DIR", "/home/ada/certs"),
                pair("B", "/home/ada/x"),
                pair("A", "2")
            ]
        );
        assert!(skipped.is_empty());
    }

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----";

    #[test]
    fn a_double_quoted_multiline_value_is_read_whole() {
        let text = format!(
            "A=1\r\nPEM=\"{}\"\r\nB=\"x=y # z \"q\"\"\r\n",
            PEM.replace('\n', "\r\n")
        );
        let (pairs, _) = read(&text, &ParserPolicy::default(), &[]).unwrap();
        assert_eq!(
            pairs,
            [pair("A", "1"), pair("PEM", PEM), pair("B", "x=y # z \"q\"")]
        );
    }

    #[test]
    fn an_unclosed_quote_or_a_stray_line_refuses_the_sync_by_line_number() {
        let text = "A=1\nPEM=\"-----BEGIN KEY-----\nMIIBsecretbase64\n-----END KEY-----\nB=2\n";
        let error = read(text, &ParserPolicy::default(), &[]).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::EXIT_SYNC_REFUSED);
        let message = error.to_string();
        assert!(message.contains(".env.dev line 2: "), "{message}");
        assert!(message.contains(".env.dev lines 3–4: "), "{message}");
        assert!(message.contains("close the quote"), "{message}");
        for secret in ["BEGIN", "MIIBsecretbase64", "END"] {
            assert!(!message.contains(secret), "{message}");
        }
    }

    #[test]
    fn file_references_only_for_the_suffixes_given() {
        let text = "SSH_KEY_PATH=id_key\nOTHER_FILE=id_key\n";
        let files = [("id_key", "-----BEGIN-----\nabc\n")];
        let (none, _) = read(text, &ParserPolicy::default(), &files).unwrap();
        assert_eq!(
            none,
            [pair("SSH_KEY_PATH", "id_key"), pair("OTHER_FILE", "id_key")]
        );

        let policy = ParserPolicy {
            inline_file_suffixes: vec!["_PATH".into()],
            ..ParserPolicy::default()
        };
        let (pairs, _) = read(text, &policy, &files).unwrap();
        assert_eq!(
            pairs,
            [
                pair("SSH_KEY", "-----BEGIN-----\nabc\n"),
                pair("OTHER_FILE", "id_key")
            ]
        );
    }

    #[test]
    fn every_unresolved_file_reference_is_named_and_nothing_is_synced() {
        let policy = ParserPolicy {
            inline_file_suffixes: vec!["_PATH".into()],
            ..ParserPolicy::default()
        };
        let error = read("A_PATH=missing-a\nB=2\nC_PATH=missing-c\n", &policy, &[]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("2 file reference(s)"), "{message}");
        assert!(
            message.contains("A_PATH") && message.contains("C_PATH"),
            "{message}"
        );
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn excluded_keys_are_reported_as_skipped() {
        let policy = ParserPolicy {
            exclude: vec!["GITHUB_TOKEN".into()],
            ..ParserPolicy::default()
        };
        let (pairs, skipped) = read("GITHUB_TOKEN=ghp_x\nA=1\n", &policy, &[]).unwrap();
        assert_eq!(pairs, [pair("A", "1")]);
        assert_eq!(
            skipped,
            [Skipped {
                key: "GITHUB_TOKEN".into(),
                reason: "excluded"
            }]
        );
    }
}
