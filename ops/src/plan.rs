//! `vsync plan`: every sync target of the working tree's `vsync.toml`
//! planned at once, writing nothing; and `vsync plan init`, the file
//! written from the sync routing this machine saved for the repo's envs
//! (the file's model and checks are `vsync-plan`'s).

use std::path::PathBuf;

use serde::Serialize;
use vsync_engine::import::{ImportOptions, NameRules, Prefer};
use vsync_engine::sync::SyncOptions;
use vsync_local::EnvConfig;
use vsync_plan::{PlanFile, SavedRouting};

use crate::import::{SourceImportOutcome, SourceImportRequest, import_from};
use crate::keystore::config_files;
use crate::lifecycle::Env;
use crate::sync::{ParserPolicy, SyncOutcome, SyncRequest, sync_routed};
use crate::{Context, OpsError, Progress, platforms};
use platforms::Environment;

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
    vsync_plan::parse(&text, &path).map_err(|err| {
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
}

/// What `vsync plan` found for every import and sync target in scope.
/// Names and counts, never a value.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    /// One entry per env and import, in the file's order.
    pub imports: Vec<ImportPlanned>,
    /// One entry per env and sync target, in the file's env order.
    pub targets: Vec<TargetPlan>,
}

impl PlanReport {
    /// How many imports and targets were refused before planning.
    pub fn refused(&self) -> usize {
        let imports = self
            .imports
            .iter()
            .filter(|import| matches!(import.result, ImportResult::Refused { .. }));
        let targets = self
            .targets
            .iter()
            .filter(|target| matches!(target.result, TargetResult::Refused { .. }));
        imports.count() + targets.count()
    }
}

/// One env's import from one platform, planned or refused.
#[derive(Debug, Serialize)]
pub struct ImportPlanned {
    /// The env imported into.
    pub env: String,
    /// The platform's short name.
    pub from: &'static str,
    /// What planning it gave.
    #[serde(flatten)]
    pub result: ImportResult,
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
    /// What planning it gave.
    #[serde(flatten)]
    pub result: TargetResult,
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
/// touched). Each is planned against the vault as it is now: an import
/// planned for an env is not yet in that env's sync plans.
pub async fn plan(
    ctx: &Context,
    plan: &PlanFile,
    scope: &PlanScope,
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
    let mut imports = Vec::new();
    let mut targets = Vec::new();
    for (name, env_plan) in &plan.env {
        let name = name.get_ref();
        if !scope.envs.is_empty() && !scope.envs.contains(name) {
            continue;
        }
        for import in &env_plan.import {
            let (platform, _) = platforms::find_source(import.from.get_ref())?;
            if !wanted_target(platform.short, platform.name) {
                continue;
            }
            let request = SourceImportRequest {
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
                dry_run: true,
                push: false,
            };
            let planned =
                import_from(ctx, name, platform.short, &request, environment, progress).await;
            imports.push(ImportPlanned {
                env: name.clone(),
                from: platform.short,
                result: match planned {
                    Ok(outcome) => ImportResult::Planned(outcome),
                    Err(err) => ImportResult::Refused {
                        reason: err.to_string(),
                    },
                },
            });
        }
        let env = Env::load(ctx, name);
        for sync in &env_plan.sync {
            let (platform, sink_side) = platforms::find_sink(sync.to.get_ref())?;
            if !wanted_target(platform.short, platform.name) {
                continue;
            }
            let request = SyncRequest {
                flags: Vec::new(),
                sets: Vec::new(),
                parser: ParserPolicy {
                    inline_file_suffixes: sync.inline_file_suffix.clone(),
                    exclude: sync.exclude.clone(),
                },
                options: SyncOptions {
                    dry_run: true,
                    prune: sync.prune,
                    max_deletes: sync.max_deletes,
                    ..SyncOptions::default()
                },
            };
            let planned = match &env {
                Err(err) => Err(err.to_string()),
                Ok(env) => match platform.routing(None, &sync.routing()) {
                    Err(err) => Err(err.to_string()),
                    Ok(routing) => sync_routed(
                        env,
                        platform.name,
                        sink_side,
                        &routing,
                        &request,
                        environment,
                        progress,
                    )
                    .await
                    .map_err(|err| err.to_string()),
                },
            };
            targets.push(TargetPlan {
                env: name.clone(),
                to: platform.short,
                result: match planned {
                    Ok(outcome) => TargetResult::Planned(outcome),
                    Err(reason) => TargetResult::Refused { reason },
                },
            });
        }
    }
    Ok(PlanReport { imports, targets })
}
