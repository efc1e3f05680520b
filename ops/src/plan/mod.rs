//! `vsync plan`: every import and sync target of the working tree's
//! `vsync.toml` planned at once, writing nothing, and optionally kept as a
//! reviewed artifact; `vsync plan apply` ([`apply`]); and `vsync plan
//! init`, the file written from the sync routing this machine saved for the
//! repo's envs (the file's model, checks and artifact format are
//! `vsync-plan`'s).

mod apply;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use vsync_crypto::Zeroizing;
use vsync_engine::import::{ImportAction, ImportOptions, NameRules, Prefer};
use vsync_engine::sync::SyncOptions;
use vsync_engine::vault;
use vsync_local::EnvConfig;
use vsync_plan::{ImportPlan, OnFailure, PlanFile, SavedRouting, Shard, SyncPlan};

use crate::import::{SourceImportOutcome, SourceImportRequest, import_into};
use crate::keystore::config_files;
use crate::lifecycle::Env;
use crate::store::{layout, open_store};
use crate::sync::{ParserPolicy, SyncOutcome, SyncRequest, sync_routed};
use crate::{Context, OpsError, Progress, platforms};
use platforms::Environment;

pub use apply::{
    Applied, AppliedImport, AppliedTarget, ApplyReport, ApplyRequest, ApplyStatus, ImportApplied,
    TargetApplied, apply, artifact, save_artifact,
};

/// What `plan init` wrote.
#[derive(Debug)]
pub struct PlanInit {
    /// The file.
    pub path: PathBuf,
    /// How many envs and sync targets it holds.
    pub envs: usize,
    /// The sync targets.
    pub targets: usize,
}

/// Where the working tree's plan file is: `vsync.toml` at its root.
pub fn plan_path(ctx: &Context) -> Result<PathBuf, OpsError> {
    Ok(vsync_local::identity::toplevel(&ctx.cwd)?.join(vsync_plan::FILE_NAME))
}

/// Writes `<working tree>/vsync.toml` from the saved routing of every env of
/// this repo on this machine; an existing file is refused unless `force`.
/// The text is checked by the same code `plan validate` runs before it is
/// written.
pub fn plan_init(ctx: &Context, force: bool) -> Result<PlanInit, OpsError> {
    let repo = ctx.repo()?;
    let path = plan_path(ctx)?;
    // `symlink_metadata`: a link there, even a dangling one, exists too.
    if std::fs::symlink_metadata(&path).is_ok() && !force {
        return Err(OpsError::Usage(format!(
            "{} exists; check it with `vsync plan validate`, or pass --force to write it anew",
            path.display()
        )));
    }
    let mut envs = Vec::new();
    for file in config_files(&ctx.base)?
        .into_iter()
        .filter(|file| file.repo == repo.name())
    {
        let config = EnvConfig::load(&file.path)?;
        let targets = config
            .sync
            .iter()
            .flatten()
            .filter_map(|(short, block)| Some((short.clone(), block.as_object()?.clone())))
            .collect();
        envs.push(SavedRouting {
            env: file.env,
            targets,
        });
    }
    let text = vsync_plan::render(&envs);
    vsync_plan::parse(&text, &path, &[]).map_err(|err| {
        OpsError::Usage(format!(
            "the saved routing does not make a valid plan; fix the env configs or write vsync.toml by hand:\n{err}"
        ))
    })?;
    // Replaced, never written through: a `vsync.toml` symlink in a checkout
    // must not make `--force` overwrite the file it points at.
    vsync_local::fsutil::write_atomic(&path, text.as_bytes(), 0o644).map_err(|source| {
        OpsError::Io {
            path: path.clone(),
            source,
        }
    })?;
    Ok(PlanInit {
        path,
        envs: envs.len(),
        targets: envs.iter().map(|env| env.targets.len()).sum(),
    })
}

/// Which envs and sync targets `vsync plan` covers (every one when empty).
#[derive(Debug, Clone, Default)]
pub struct PlanScope {
    /// Env names.
    pub envs: Vec<String>,
    /// Platforms (short or long names).
    pub targets: Vec<String>,
    /// `--shard I/N`: only the sync targets of this part; the imports are
    /// planned in every shard (the syncs are planned after them) and run
    /// by the first.
    pub shard: Option<Shard>,
}

/// What `vsync plan` found for every import and sync target in scope.
/// Names and counts, never a value.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    /// Per env in scope, the version its store holds (the published
    /// bundle's timestamp), if any.
    pub versions: BTreeMap<String, Option<String>>,
    /// One entry per env and import, in the file's order.
    pub imports: Vec<ImportPlanned>,
    /// One entry per env and sync target, in the file's env order.
    pub targets: Vec<TargetPlan>,
    /// The `VSYNC_ENV__…` variables that changed the file for this plan.
    pub overrides: Vec<vsync_plan::Override>,
}

impl PlanReport {
    /// How many imports and targets were refused before planning, or
    /// (imports) hold a conflict the plan file does not settle.
    pub fn refused(&self) -> usize {
        let imports = self.imports.iter().filter(|import| match &import.result {
            ImportResult::Refused { .. } => true,
            ImportResult::Planned(outcome) => !outcome.conflicts().is_empty(),
        });
        let targets = self
            .targets
            .iter()
            .filter(|target| matches!(target.result, TargetResult::Refused { .. }));
        imports.count() + targets.count()
    }

    /// Whether applying it would write nothing anywhere.
    pub fn changes_nothing(&self) -> bool {
        let imports = self.imports.iter().all(|import| match &import.result {
            ImportResult::Planned(outcome) => outcome.written == 0 || !import.in_shard,
            ImportResult::Refused { .. } => false,
        });
        let targets = self.targets.iter().all(|target| match &target.result {
            TargetResult::Planned(outcome) => outcome.report.writes.calls == 0,
            TargetResult::Refused { .. } => false,
        });
        imports && targets
    }
}

/// One env's import from one platform, planned or refused.
#[derive(Debug, Serialize)]
pub struct ImportPlanned {
    /// The env imported into.
    pub env: String,
    /// The platform's short name.
    pub from: &'static str,
    /// Whether this shard runs it (the first does; the others plan their
    /// syncs after it).
    pub in_shard: bool,
    /// What planning it gave.
    #[serde(flatten)]
    pub result: ImportResult,
    /// Its place among the env's imports in the plan file.
    #[serde(skip)]
    index: usize,
}

/// An import's plan, or why there is none.
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum ImportResult {
    /// The dry run's report: every key with its action.
    Planned(SourceImportOutcome),
    /// Refused before or while reading the source (settings, credentials,
    /// a conflict the file does not settle).
    Refused {
        /// Why, and what to fix.
        reason: String,
    },
}

/// One env's sync to one platform, planned or refused.
#[derive(Debug, Serialize)]
pub struct TargetPlan {
    /// The env.
    pub env: String,
    /// The platform's short name.
    pub to: &'static str,
    /// What a failure of this target does to the rest of an apply.
    pub on_failure: OnFailure,
    /// What planning it gave.
    #[serde(flatten)]
    pub result: TargetResult,
    /// Its place among the env's sync targets in the plan file.
    #[serde(skip)]
    index: usize,
}

/// A target's plan, or why there is none.
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum TargetResult {
    /// The dry run's report: every name with its action.
    Planned(SyncOutcome),
    /// Refused before any call could tell (no config or key on this
    /// machine, routing or credentials missing, preflight).
    Refused {
        /// Why, and what to fix.
        reason: String,
    },
}

/// Plans every import and sync of `plan` in `scope` as `vsync import
/// --dry-run` and `vsync sync --dry-run` would, with the plan file's
/// settings: each source read and each target listed and compared, nothing
/// written anywhere (no routing saved, no record updated, no `.env`
/// touched). An env's syncs are planned against its vault as its imports
/// would leave it.
pub async fn plan(
    ctx: &Context,
    plan: &PlanFile,
    scope: &PlanScope,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<PlanReport, OpsError> {
    plan_with(ctx, plan, scope, true, environment, progress).await
}

/// [`plan`], with the imports left out when `imports` is false: the syncs
/// are then planned against the vault folders as they are (a shard's
/// apply after the first shard ran the imports).
async fn plan_with(
    ctx: &Context,
    plan: &PlanFile,
    scope: &PlanScope,
    imports: bool,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<PlanReport, OpsError> {
    for env in &scope.envs {
        if !plan.env.keys().any(|name| name.get_ref() == env) {
            return Err(OpsError::Usage(format!(
                "--env {env}: vsync.toml has no env {env}"
            )));
        }
    }
    let wanted_target = |short: &str, name: &str| {
        scope.targets.is_empty()
            || scope
                .targets
                .iter()
                .any(|target| target == short || target == name)
    };
    let mut report = PlanReport {
        versions: BTreeMap::new(),
        imports: Vec::new(),
        targets: Vec::new(),
        overrides: plan.overrides.clone(),
    };
    // Each env's imports in turn (each plans against the text the ones
    // before it would leave), then every sync target of every env at once.
    let mut envs = Vec::new();
    for (name, env_plan) in &plan.env {
        let name = name.get_ref();
        if !scope.envs.is_empty() && !scope.envs.contains(name) {
            continue;
        }
        let env = Env::load(ctx, name);
        let in_shard = scope.shard.is_none_or(|shard| shard.holds_imports());
        // The `.env` text the imports so far would leave.
        let mut planned: Option<Zeroizing<String>> = None;
        for (index, import) in env_plan.import.iter().enumerate().filter(|_| imports) {
            let (platform, _) = platforms::find_source(import.from.get_ref())?;
            if !wanted_target(platform.short, platform.name) {
                continue;
            }
            let result = match &env {
                Err(err) => Err(err.to_string()),
                Ok(env) => import_into(
                    ctx,
                    env,
                    platform.short,
                    &import_request(import, true),
                    planned.as_deref().map(String::as_str),
                    environment,
                    progress,
                )
                .await
                .map_err(|err| err.to_string()),
            };
            report.imports.push(ImportPlanned {
                env: name.clone(),
                from: platform.short,
                in_shard,
                result: match result {
                    Ok((outcome, after)) => {
                        if outcome.written > 0 {
                            planned = after;
                        }
                        ImportResult::Planned(outcome)
                    }
                    Err(reason) => ImportResult::Refused { reason },
                },
                index,
            });
        }
        if let Ok(env) = &env {
            report
                .versions
                .insert(name.clone(), published_version(env).await?);
        }
        envs.push((name, env_plan, env.map_err(|err| err.to_string()), planned));
    }
    let mut targets = Vec::new();
    for (name, env_plan, env, planned) in &envs {
        for (index, sync) in env_plan.sync.iter().enumerate() {
            let (platform, sink_side) = platforms::find_sink(sync.to.get_ref())?;
            if !wanted_target(platform.short, platform.name) {
                continue;
            }
            let routing = platform.routing(None, &sync.routing());
            if let (Some(shard), Ok(routing)) = (scope.shard, &routing)
                && !shard.holds(name, platform.short, routing)
            {
                continue;
            }
            targets.push(async move {
                let planned = match (env, routing) {
                    (Err(err), _) => Err(err.clone()),
                    (_, Err(err)) => Err(err.to_string()),
                    (Ok(env), Ok(routing)) => sync_routed(
                        env,
                        platform.name,
                        sink_side,
                        &routing,
                        &sync_request(sync, true),
                        planned.as_deref().map(String::as_str),
                        environment,
                        progress,
                    )
                    .await
                    .map_err(|err| err.to_string()),
                };
                TargetPlan {
                    env: (*name).clone(),
                    to: platform.short,
                    on_failure: sync.on_failure,
                    result: match planned {
                        Ok(outcome) => TargetResult::Planned(outcome),
                        Err(reason) => TargetResult::Refused { reason },
                    },
                    index,
                }
            });
        }
    }
    report.targets = futures_util::future::join_all(targets).await;
    Ok(report)
}

/// The version `env`'s store holds (the published bundle's timestamp).
async fn published_version(env: &Env) -> Result<Option<String>, OpsError> {
    let store = open_store(&env.config)?;
    let layout = layout(&env.config, env.repo.name(), &env.name)?;
    let head = vault::remote_head(store.as_ref(), &layout).await?;
    Ok(head.map(|head| head.ts.to_string()))
}

/// The import a plan file's `[[env.<env>.import]]` describes.
fn import_request(import: &ImportPlan, dry_run: bool) -> SourceImportRequest {
    SourceImportRequest {
        sets: import.sets(),
        options: ImportOptions {
            names: NameRules {
                prefix: import.prefix.clone(),
                renames: import.rename.clone().into_iter().collect(),
                include: import
                    .include
                    .iter()
                    .map(|glob| glob.get_ref().clone())
                    .collect(),
                exclude: import
                    .exclude
                    .iter()
                    .map(|glob| glob.get_ref().clone())
                    .collect(),
            },
            prefer: import.prefer.map(|prefer| match prefer {
                vsync_plan::Prefer::Source => Prefer::Source,
                vsync_plan::Prefer::Vault => Prefer::Vault,
            }),
            delete_missing: import.delete_missing,
            ..ImportOptions::default()
        },
        dry_run,
        push: !dry_run,
    }
}

/// The sync a plan file's `[[env.<env>.sync]]` describes.
fn sync_request(sync: &SyncPlan, dry_run: bool) -> SyncRequest {
    SyncRequest {
        flags: Vec::new(),
        sets: Vec::new(),
        parser: ParserPolicy {
            inline_file_suffixes: sync.inline_file_suffix.clone(),
            exclude: sync.exclude.clone(),
        },
        options: SyncOptions {
            dry_run,
            prune: sync.prune,
            max_deletes: sync.max_deletes,
            ..SyncOptions::default()
        },
    }
}

/// Whether an import line writes to the vault.
fn import_writes(action: ImportAction) -> bool {
    matches!(
        action,
        ImportAction::Add | ImportAction::Change | ImportAction::Delete
    )
}
