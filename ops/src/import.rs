//! `vsync import <env> --from <platform>`: a source's secrets into the env's
//! vault folder (tsafe's `kv-pull`, `vault-pull`, `op-pull`).
//!
//! The platform and its source come from the registry; planning — the
//! reads within the platform's budget, the name rules, the three-way diff
//! and its conflicts — is the engine's ([`vsync_engine::import`]). This
//! module reads the vault folder as it is on disk (values as written, no
//! placeholder expanded), and applies the plan without losing anything: the
//! folder goes to the encrypted rolling backup first, `.env.<env>` is
//! rewritten in place ([`dotenv::update`]: comments, order and untouched
//! lines kept) atomically and 0600, binary values become asset files, and
//! nothing is written at all when nothing changed (the file keeps its bytes
//! and its mtime). The import record is saved last, in the env's store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use vsync_crypto::Zeroizing;
use vsync_crypto::fingerprint::FingerprintKey;
use vsync_engine::dotenv;
use vsync_engine::import::{
    self, Destination, ImportAction, ImportLine, ImportOptions, VaultView, VaultWrite,
};
use vsync_engine::sink::SecretValue;
use vsync_engine::sync::{RecordStore, Refusal, SyncError, records_key};
use vsync_engine::vault_fs;
use vsync_local::{EnvConfig, backup, fsutil};
use vsync_platforms::{self as platforms, Environment, PlatformError, SourceRequest};

use crate::lifecycle::{Env, PushOptions, PushReport, push_env};
use crate::store::{layout, open_store};
use crate::{Context, OpsError, Progress};

/// What `vsync import --from` should do.
#[derive(Debug, Clone, Default)]
pub struct SourceImportRequest {
    /// The source's settings as `field=value` (`--set`).
    pub sets: Vec<String>,
    /// Name rules, conflict preference, `--delete-missing`, retries.
    pub options: ImportOptions,
    /// Plan only; write nothing, not even the record.
    pub dry_run: bool,
    /// Push the env after a successful import that changed it.
    pub push: bool,
}

/// What an import did.
#[derive(Debug, Serialize)]
pub struct SourceImportOutcome {
    /// The platform's long name.
    pub platform: &'static str,
    /// The source, as it describes itself.
    pub origin: String,
    /// The env file.
    pub env_file: PathBuf,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// One line per key, never a value.
    pub lines: Vec<ImportLine>,
    /// How many secrets were read after the listing.
    pub read: usize,
    /// How many keys were written or deleted.
    pub written: usize,
    /// The encrypted backup made before writing, if the folder existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    /// The version pushed (`--push`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    /// A keyed digest of the values written: what a reviewed plan is bound
    /// to (not shown: it is only compared).
    #[serde(skip)]
    pub digest: String,
}

impl SourceImportOutcome {
    /// The keys in conflict.
    pub fn conflicts(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|line| line.action == ImportAction::Conflict)
            .map(|line| line.key.as_str())
            .collect()
    }
}

/// Imports into env `env` of the current repo from the platform named
/// `from` (short or long name), with credentials from `environment`.
pub async fn import_from(
    ctx: &Context,
    env: &str,
    from: &str,
    request: &SourceImportRequest,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<SourceImportOutcome, OpsError> {
    let env = Env::load(ctx, env)?;
    let (outcome, _) = import_into(ctx, &env, from, request, None, environment, progress).await?;
    Ok(outcome)
}

/// [`import_from`] into an env already loaded. A dry run also answers the
/// `.env.<env>` text the import would leave, and plans against `planned`
/// instead of the file when given (what an earlier import of the same
/// plan would leave), so `vsync plan` can plan a chain of imports and the
/// syncs after them without writing anything.
pub(crate) async fn import_into(
    ctx: &Context,
    env: &Env,
    from: &str,
    request: &SourceImportRequest,
    planned: Option<&str>,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<(SourceImportOutcome, Option<Zeroizing<String>>), OpsError> {
    let (platform, side) = platforms::find_source(from)?;
    let settings = platform.source_settings(&request.sets)?;
    let vault_folder_of = |other: &str| -> Result<PathBuf, PlatformError> {
        let config = EnvConfig::load_for(&ctx.base, env.repo.name(), other)
            .map_err(|error| PlatformError::Setup(format!("env {other}: {error}")))?;
        Ok(env.repo.vault_root.join(config.vault_folder(other)))
    };
    let source = (side.build)(&SourceRequest {
        settings: &settings,
        environment,
        vault_folder_of: &vault_folder_of,
    })?;
    // A dry run writes nothing, not even the lock file; writers replace
    // `.env.<env>` atomically, so it reads a whole file either way.
    let lock = if request.dry_run {
        None
    } else {
        Some(env.lock(ctx, progress)?)
    };

    let env_file = env.vault_dir.join(format!(".env.{}", env.name));
    progress.step(1, 3, &format!("reading {}", env_file.display()));
    let folder_exists = env.check_vault_path()?;
    let text = match planned {
        Some(planned) => Zeroizing::new(planned.to_owned()),
        None if folder_exists => read_if_exists(&env_file)?,
        None => Zeroizing::new(String::new()),
    };
    let entries = current_entries(&env_file, &text)?;

    progress.step(2, 3, &format!("reading {}", source.origin()));
    let store = open_store(&env.config)?;
    let layout = layout(&env.config, env.repo.name(), &env.name)?;
    let key = records_key::load(store.as_ref(), &layout, &env.derive_key())
        .await
        .map_err(OpsError::Sync)?
        .key;
    let fingerprints = FingerprintKey::derive(&key);
    let target = import::record_target(&source.origin(), &request.options.names, &fingerprints);
    let records = RecordStore::new(store.as_ref(), &layout, &target, &key);
    let mut record = records.load().await.map_err(OpsError::Sync)?;
    let asset = |name: &str| read_asset(&env.vault_dir.join(name));
    let view = VaultView {
        entries: &entries,
        asset: &asset,
    };
    let plan = import::plan(
        source.as_ref(),
        &view,
        &record,
        &fingerprints,
        &request.options,
    )
    .await
    .map_err(OpsError::Import)?;

    let mut outcome = SourceImportOutcome {
        platform: platform.name,
        origin: plan.origin.clone(),
        env_file,
        dry_run: request.dry_run,
        lines: plan.lines.clone(),
        read: plan.read,
        written: plan.writes.len(),
        backup: None,
        pushed: None,
        digest: writes_digest(&plan.writes, &fingerprints),
    };
    if request.dry_run {
        let after = updated_env_text(&outcome.env_file, &text, &plan.writes)?;
        return Ok((outcome, Some(after.unwrap_or(text))));
    }
    let conflicts = plan.conflicts();
    if !conflicts.is_empty() {
        return Err(OpsError::ImportConflict {
            keys: conflicts.iter().map(|key| (*key).to_owned()).collect(),
        });
    }

    progress.step(3, 3, "writing the vault folder");
    if !plan.writes.is_empty() {
        if folder_exists {
            outcome.backup = backup::create_encrypted(
                &ctx.base.backups_dir(ctx.backup_dir_override.as_deref()),
                &env.repo.vault_root,
                &env.vault_folder,
                &env.name,
                &key,
                SystemTime::now(),
            )?;
        } else {
            vault_fs::create_dirs(&env.repo.vault_root, &env.vault_folder)?;
        }
        write_plan(&env.vault_dir, &outcome.env_file, &text, &plan.writes)?;
    }
    records
        .save(&mut record, &plan.record)
        .await
        .map_err(OpsError::Sync)?;

    // Push takes the env's lock itself.
    drop(lock);
    if request.push && !plan.writes.is_empty() {
        let report: PushReport = push_env(ctx, env, &PushOptions::default(), progress).await?;
        outcome.pushed = Some(report.ts.to_string());
    }
    Ok((outcome, None))
}

/// A keyed digest of what an import writes (every key with its value's
/// fingerprint, or its deletion): what a reviewed plan binds an import to.
fn writes_digest(
    writes: &BTreeMap<String, (Destination, VaultWrite)>,
    fingerprints: &FingerprintKey,
) -> String {
    fingerprints.listing(writes.iter().map(|(key, (_, write))| {
        let value = match write {
            VaultWrite::Set(value) => Some(value.as_bytes()),
            VaultWrite::Delete => None,
        };
        (key.as_str(), value)
    }))
}

/// The vault's entries as written (last occurrence winning); a file the
/// grammar cannot read as written refuses the import, naming its lines.
fn current_entries(path: &Path, text: &str) -> Result<BTreeMap<String, SecretValue>, OpsError> {
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
    Ok(parsed
        .entries
        .into_iter()
        .map(|entry| (entry.key, SecretValue::from_text(&entry.value)))
        .collect())
}

/// Applies the writes: `.env.<env>` rewritten in place, asset files
/// written; each file atomically, 0600, through no symlink.
fn write_plan(
    vault_dir: &Path,
    env_file: &Path,
    text: &str,
    writes: &BTreeMap<String, (Destination, VaultWrite)>,
) -> Result<(), OpsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OpsError::Io { path, source }
    };
    for (key, (destination, write)) in writes {
        if let (Destination::Asset, VaultWrite::Set(value)) = (destination, write) {
            let path = vault_dir.join(key);
            refuse_symlink(&path)?;
            fsutil::write_private_atomic(&path, value.as_bytes()).map_err(io(&path))?;
        }
    }
    if let Some(updated) = updated_env_text(env_file, text, writes)? {
        refuse_symlink(env_file)?;
        fsutil::write_private_atomic(env_file, updated.as_bytes()).map_err(io(env_file))?;
    }
    Ok(())
}

/// `.env.<env>`'s text with the writes bound for it made, or `None` when
/// none is.
fn updated_env_text(
    env_file: &Path,
    text: &str,
    writes: &BTreeMap<String, (Destination, VaultWrite)>,
) -> Result<Option<Zeroizing<String>>, OpsError> {
    let mut changes: Vec<(&str, Option<&str>)> = Vec::new();
    for (key, (destination, write)) in writes {
        match (destination, write) {
            (Destination::EnvFile, VaultWrite::Set(value)) => {
                let text = value.as_text().expect("the plan sends only text to .env");
                changes.push((key, Some(text)));
            }
            (Destination::EnvFile, VaultWrite::Delete) => changes.push((key, None)),
            (Destination::Asset, _) => {}
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    dotenv::update(text, changes).map(Some).map_err(|error| {
        OpsError::Sync(SyncError::Preflight(vec![Refusal {
            key: None,
            name: None,
            problem: format!("{}: {error}", env_file.display()),
        }]))
    })
}

/// A rename would replace a symlink rather than write through it, but a
/// symlink where a vault file belongs means someone is steering the
/// folder: refuse, as every other vault write does.
fn refuse_symlink(path: &Path) -> Result<(), OpsError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(OpsError::VaultPath(
            vault_fs::VaultPathError::Symlink(path.to_owned()),
        )),
        _ => Ok(()),
    }
}

fn read_if_exists(path: &Path) -> Result<Zeroizing<String>, OpsError> {
    use std::io::Read;

    let file = match vault_fs::open_file(path) {
        Ok(file) => file,
        Err(vault_fs::VaultPathError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(Zeroizing::new(String::new()));
        }
        Err(error) => return Err(error.into()),
    };
    let io = |source| OpsError::Io {
        path: path.to_owned(),
        source,
    };
    let length = file.metadata().map_err(io)?.len();
    if length > dotenv::MAX_FILE_BYTES {
        return Err(OpsError::Usage(format!(
            "{}: {length} bytes, over the {}-byte limit for a .env file",
            path.display(),
            dotenv::MAX_FILE_BYTES
        )));
    }
    // Sized up front, so reading never reallocates and leaves a copy.
    let mut text = Zeroizing::new(String::with_capacity(length as usize + 1));
    file.take(dotenv::MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(io)?;
    Ok(text)
}

/// An asset file's bytes, if the folder holds one by that name (one larger
/// than any secret a platform stores counts as different).
fn read_asset(path: &Path) -> Option<SecretValue> {
    use std::io::Read;

    const MAX_ASSET_BYTES: u64 = 1024 * 1024;
    let file = vault_fs::open_file(path).ok()?;
    let length = file.metadata().ok()?.len().min(MAX_ASSET_BYTES);
    let mut bytes = Zeroizing::new(Vec::with_capacity(length as usize + 1));
    file.take(MAX_ASSET_BYTES).read_to_end(&mut bytes).ok()?;
    Some(SecretValue::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::Quiet;
    use crate::lifecycle::tests::{counted, machine};

    #[tokio::test]
    async fn an_import_that_backs_up_and_pushes_derives_the_key_once() {
        let (tmp, ctx) = machine();
        let handed_over = tmp.path().join("handed-over.env");
        std::fs::write(&handed_over, "NEW_KEY=n-1\n").unwrap();
        let request = SourceImportRequest {
            sets: vec![format!("file={}", handed_over.display())],
            push: true,
            ..SourceImportRequest::default()
        };
        let (outcome, runs) = counted(import_from(
            &ctx,
            "dev",
            "dotenv",
            &request,
            &|_| None,
            &Quiet,
        ))
        .await;
        let outcome = outcome.unwrap();
        // The record, the rolling backup and the bundle all needed the key.
        assert_eq!(outcome.written, 1);
        assert!(outcome.backup.is_some());
        assert!(outcome.pushed.is_some());
        assert_eq!(runs, 1);
    }
}
