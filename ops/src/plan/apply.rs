//! `vsync plan apply`: the plan executed — imports first (source → vault
//! folder → push, under the vault's compare-and-swap), then every sync
//! target at once, each paced by its own platform's budget. With a
//! reviewed artifact, exactly what was reviewed: the plan is made again
//! and compared, and anything that moved since refuses the whole apply
//! before the first write.
//!
//! Resuming: every sync checkpoints its record (in the env's store) as its
//! writes are answered, so a re-run of the same artifact after a kill finds
//! the reviewed writes already made as unchanged and accepts them as done.
//! A marker in the env's store says the artifact's apply began: only then
//! is a reviewed write whose answer was lost at the kill (the platform
//! changed, the record does not know) accepted as well.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use vsync_crypto::fingerprint::FingerprintKey;
use vsync_engine::store::PutCondition;
use vsync_engine::sync::Action;
use vsync_plan::artifact::{
    EnvState, ReviewedImport, ReviewedKey, ReviewedName, ReviewedTarget, Scope,
};
use vsync_plan::{Artifact, ArtifactError, OnFailure, PlanFile};

use super::{
    ImportResult, PlanReport, PlanScope, TargetResult, import_request, import_writes, plan_with,
    published_version, sync_request,
};
use crate::import::{SourceImportOutcome, import_into};
use crate::lifecycle::Env;
use crate::store::{layout, open_store};
use crate::sync::{SyncOutcome, sync_routed};
use crate::{Context, OpsError, Progress, platforms};
use platforms::Environment;

/// What `vsync plan apply` should apply.
#[derive(Debug, Default)]
pub struct ApplyRequest {
    /// The reviewed artifact; without one the plan is made and applied in
    /// one go.
    pub artifact: Option<Artifact>,
    /// The scope, when there is no artifact (an artifact has its own).
    pub scope: PlanScope,
}

/// What `vsync plan apply` did, per import and per target. Never a value.
#[derive(Debug, Serialize)]
pub struct ApplyReport {
    /// One entry per import in scope.
    pub imports: Vec<ImportApplied>,
    /// One entry per sync target in scope.
    pub targets: Vec<TargetApplied>,
}

/// One import's part in an apply.
#[derive(Debug, Serialize)]
pub struct ImportApplied {
    /// The env.
    pub env: String,
    /// The platform's short name.
    pub from: &'static str,
    /// What became of it.
    #[serde(flatten)]
    pub result: AppliedImport,
}

/// What became of an import.
pub type AppliedImport = Applied<SourceImportOutcome>;

/// One sync target's part in an apply.
#[derive(Debug, Serialize)]
pub struct TargetApplied {
    /// The env.
    pub env: String,
    /// The platform's short name.
    pub to: &'static str,
    /// What became of it.
    #[serde(flatten)]
    pub result: AppliedTarget,
}

/// What became of a sync target.
pub type AppliedTarget = Applied<SyncOutcome>;

/// What became of an import or a sync target in an apply.
#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Applied<T> {
    /// Run: an import's report (pushed when it changed the vault), a
    /// target's (every name with what became of it).
    Applied(T),
    /// Not started, and why (nothing to do, another shard runs it, a
    /// refusal elsewhere, a failed import it depends on).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Refused while planning.
    Refused {
        /// Why, and what to fix.
        reason: String,
    },
    /// Failed before or instead of writing (an import's failure stops its
    /// env's syncs).
    Failed {
        /// Why.
        error: String,
    },
}

/// How an apply ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyStatus {
    /// Nothing needed writing.
    NoChange,
    /// Everything planned was written.
    Applied,
    /// Some of it failed or was refused; the rest is applied and recorded.
    Partial,
    /// Refused before any write.
    Refused,
}

impl ApplyReport {
    /// How the apply ended.
    pub fn status(&self) -> ApplyStatus {
        let imports_written = self.imports.iter().any(
            |import| matches!(&import.result, Applied::Applied(outcome) if outcome.written > 0),
        );
        let targets_written = self.targets.iter().any(|target| match &target.result {
            Applied::Applied(outcome) => outcome
                .report
                .secrets
                .iter()
                .any(|line| line.outcome == vsync_engine::sync::Outcome::Applied),
            _ => false,
        });
        let troubled = self.imports.iter().any(|import| {
            matches!(
                import.result,
                Applied::Refused { .. } | Applied::Failed { .. }
            )
        }) || self.targets.iter().any(|target| match &target.result {
            Applied::Applied(outcome) => outcome.report.failures() > 0,
            Applied::Refused { .. } | Applied::Failed { .. } => true,
            Applied::Skipped { .. } => false,
        });
        match (troubled, imports_written || targets_written) {
            (true, false) => ApplyStatus::Refused,
            (true, true) => ApplyStatus::Partial,
            (false, false) => ApplyStatus::NoChange,
            (false, true) => ApplyStatus::Applied,
        }
    }
}

/// Builds the reviewed artifact of `report`, planned from `file` in
/// `scope`, tagged with every env's key. Refused when anything in the plan
/// was refused: such a plan cannot be applied as reviewed.
pub fn artifact(
    ctx: &Context,
    file: &PlanFile,
    scope: &PlanScope,
    report: &PlanReport,
) -> Result<Artifact, OpsError> {
    if report.refused() > 0 {
        return Err(OpsError::Usage(format!(
            "{} import(s) or target(s) were refused, so no artifact was written; fix them, or leave them out with --env/--target",
            report.refused()
        )));
    }
    let repo = ctx.repo()?;
    let mut artifact = Artifact {
        format: vsync_plan::artifact::FORMAT.to_owned(),
        repo: repo.name().to_owned(),
        file_sha256: file.sha256.clone(),
        overrides: file.overrides.clone(),
        scope: Scope {
            envs: scope.envs.clone(),
            targets: scope.targets.clone(),
            shard: scope.shard,
        },
        envs: report
            .versions
            .iter()
            .map(|(env, version)| {
                let state = EnvState {
                    version: version.clone(),
                };
                (env.clone(), state)
            })
            .collect(),
        imports: report
            .imports
            .iter()
            .filter_map(|import| match &import.result {
                ImportResult::Planned(outcome) => Some(reviewed_import(&import.env, outcome)),
                ImportResult::Refused { .. } => None,
            })
            .collect(),
        targets: report
            .targets
            .iter()
            .filter_map(|target| match &target.result {
                TargetResult::Planned(outcome) => {
                    Some(reviewed_target(&target.env, target.to, outcome))
                }
                TargetResult::Refused { .. } => None,
            })
            .collect(),
        tags: BTreeMap::new(),
    };
    let keys = artifact_keys(&mut HashMap::new(), ctx, artifact.envs.keys())?;
    for (env, key) in &keys {
        artifact.tag(env, key);
    }
    Ok(artifact)
}

/// Writes `artifact` to `path`, replacing whatever is there (a symlink is
/// replaced, never written through).
pub fn save_artifact(path: &std::path::Path, artifact: &Artifact) -> Result<(), OpsError> {
    vsync_local::fsutil::write_atomic(path, artifact.to_json().as_bytes(), 0o644).map_err(
        |source| OpsError::Io {
            path: path.to_owned(),
            source,
        },
    )
}

fn reviewed_import(env: &str, outcome: &SourceImportOutcome) -> ReviewedImport {
    ReviewedImport {
        env: env.to_owned(),
        from: outcome.platform.to_owned(),
        digest: outcome.digest.clone(),
        lines: outcome
            .lines
            .iter()
            .map(|line| ReviewedKey {
                key: line.key.clone(),
                action: word(&line.action),
            })
            .collect(),
    }
}

fn reviewed_target(env: &str, to: &str, outcome: &SyncOutcome) -> ReviewedTarget {
    ReviewedTarget {
        env: env.to_owned(),
        to: to.to_owned(),
        target: outcome.report.target.clone(),
        desired: outcome.desired_digest.clone(),
        lines: outcome
            .report
            .secrets
            .iter()
            .map(|line| ReviewedName {
                name: line.plan.name.clone(),
                action: word(&line.plan.action),
                drift: line.plan.drift.as_ref().map(word),
                revision: line.plan.revision.clone(),
            })
            .collect(),
    }
}

/// An action's (or drift's) word, as its report serialises it.
fn word(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) => word,
        other => panic!("an action serialises as a word, not {other:?}"),
    }
}

/// Each env's artifact key (the env's vault key derived once).
fn artifact_keys<'a>(
    envs: &mut HashMap<String, Env>,
    ctx: &Context,
    names: impl Iterator<Item = &'a String>,
) -> Result<BTreeMap<String, FingerprintKey>, OpsError> {
    let mut keys = BTreeMap::new();
    for name in names {
        let key = loaded(envs, ctx, name)?.derive_key();
        keys.insert(
            name.clone(),
            FingerprintKey::derive_for_plan_artifacts(&key),
        );
    }
    Ok(keys)
}

/// The env `name`, loaded once for the whole apply: its config read and
/// its key taken from the keystore once, however many steps need it.
fn loaded<'a>(
    envs: &'a mut HashMap<String, Env>,
    ctx: &Context,
    name: &str,
) -> Result<&'a Env, OpsError> {
    if !envs.contains_key(name) {
        envs.insert(name.to_owned(), Env::load(ctx, name)?);
    }
    Ok(&envs[name])
}

/// Why an artifact that does not verify is refused. For an env pushed
/// since the plan, that is a stale plan: a passphrase rotation pushes a
/// new version under a new key, and the plan must be made again. Either
/// way nothing is applied; only the reason differs.
async fn unverified(
    envs: &HashMap<String, Env>,
    artifact: &Artifact,
    err: ArtifactError,
) -> OpsError {
    let ArtifactError::NotAuthentic { env } = &err else {
        return err.into();
    };
    let planned_at = artifact
        .envs
        .get(env)
        .and_then(|state| state.version.clone());
    let now = match envs.get(env) {
        Some(loaded) => published_version(loaded).await.ok(),
        None => None,
    };
    match now {
        Some(now) if now != planned_at => OpsError::StalePlan {
            reasons: vec![format!(
                "env {env}: the vault was pushed since the plan ({} then, {} now) under another key (a passphrase rotation), so the artifact no longer verifies for it",
                planned_at.as_deref().unwrap_or("no version"),
                now.as_deref().unwrap_or("no version")
            )],
        },
        _ => err.into(),
    }
}

/// Applies `file` in the request's scope, or exactly the reviewed artifact.
pub async fn apply(
    ctx: &Context,
    file: &PlanFile,
    request: ApplyRequest,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<ApplyReport, OpsError> {
    let mut envs: HashMap<String, Env> = HashMap::new();
    let scope = match &request.artifact {
        None => request.scope,
        Some(artifact) => {
            let repo = ctx.repo()?;
            if artifact.repo != repo.name() {
                return Err(OpsError::Usage(format!(
                    "the plan artifact is for {}, this working tree is {}",
                    artifact.repo,
                    repo.name()
                )));
            }
            let keys = artifact_keys(&mut envs, ctx, artifact.envs.keys())?;
            if let Err(err) = artifact.verify(&keys) {
                return Err(unverified(&envs, artifact, err).await);
            }
            PlanScope {
                envs: artifact.scope.envs.clone(),
                targets: artifact.scope.targets.clone(),
                shard: artifact.scope.shard,
            }
        }
    };
    let imports_here = scope.shard.is_none_or(|shard| shard.holds_imports());
    let planned = plan_with(ctx, file, &scope, imports_here, environment, progress).await?;

    if let Some(artifact) = &request.artifact {
        let mut started = Vec::new();
        for name in artifact.envs.keys() {
            if began(loaded(&mut envs, ctx, name)?, artifact).await? {
                started.push(name.clone());
            }
        }
        let reasons = stale(artifact, file, &planned, imports_here, &started);
        if !reasons.is_empty() {
            return Err(OpsError::StalePlan { reasons });
        }
        for name in artifact.envs.keys() {
            mark_begun(loaded(&mut envs, ctx, name)?, artifact).await?;
        }
    }

    // A refusal of an import, or of a fail-closed target, stops it all.
    let blocking: Vec<String> = planned
        .imports
        .iter()
        .filter_map(|import| match &import.result {
            ImportResult::Refused { .. } => Some(format!("{} <- {}", import.env, import.from)),
            ImportResult::Planned(outcome) if !outcome.conflicts().is_empty() => {
                Some(format!("{} <- {}", import.env, import.from))
            }
            ImportResult::Planned(_) => None,
        })
        .chain(planned.targets.iter().filter_map(|target| {
            let refused = matches!(target.result, TargetResult::Refused { .. });
            (refused && target.on_failure == OnFailure::FailClosed)
                .then(|| format!("{} -> {}", target.env, target.to))
        }))
        .collect();
    let stop = (!blocking.is_empty())
        .then(|| format!("not started: {} refused (fail-closed)", blocking.join(", ")));

    let mut report = ApplyReport {
        imports: Vec::new(),
        targets: Vec::new(),
    };
    let mut failed_envs: Vec<String> = Vec::new();
    for import in planned.imports {
        let result = match import.result {
            ImportResult::Refused { reason } => Applied::Refused { reason },
            ImportResult::Planned(outcome) if !outcome.conflicts().is_empty() => Applied::Refused {
                reason: OpsError::ImportConflict {
                    keys: outcome
                        .conflicts()
                        .iter()
                        .map(|key| key.to_string())
                        .collect(),
                }
                .to_string(),
            },
            ImportResult::Planned(_) if !import.in_shard => Applied::Skipped {
                reason: "run by shard 1".to_owned(),
            },
            ImportResult::Planned(_) if stop.is_some() => Applied::Skipped {
                reason: stop.clone().expect("checked"),
            },
            ImportResult::Planned(outcome) if outcome.written == 0 => Applied::Skipped {
                reason: "nothing to import".to_owned(),
            },
            ImportResult::Planned(_) => {
                let request =
                    import_request(&env_plan(file, &import.env).import[import.index], false);
                let run = match loaded(&mut envs, ctx, &import.env) {
                    Ok(env) => {
                        import_into(ctx, env, import.from, &request, None, environment, progress)
                            .await
                    }
                    Err(err) => Err(err),
                };
                match run.map(|(outcome, _)| outcome) {
                    Ok(outcome) => Applied::Applied(outcome),
                    Err(err) => {
                        failed_envs.push(import.env.clone());
                        Applied::Failed {
                            error: err.to_string(),
                        }
                    }
                }
            }
        };
        report.imports.push(ImportApplied {
            env: import.env,
            from: import.from,
            result,
        });
    }

    // Every target to write, at once; each sink paces itself.
    let mut runs = Vec::new();
    let mut results: Vec<Option<AppliedTarget>> = Vec::new();
    for (position, target) in planned.targets.iter().enumerate() {
        let skip = match &target.result {
            TargetResult::Refused { reason } => Some(Applied::Refused {
                reason: reason.clone(),
            }),
            _ if stop.is_some() => Some(Applied::Skipped {
                reason: stop.clone().expect("checked"),
            }),
            _ if failed_envs.contains(&target.env) => Some(Applied::Skipped {
                reason: format!("not started: the import into {} failed", target.env),
            }),
            TargetResult::Planned(outcome) if outcome.report.writes.calls == 0 => {
                Some(Applied::Skipped {
                    reason: "nothing to write".to_owned(),
                })
            }
            TargetResult::Planned(_) => None,
        };
        if skip.is_none() {
            loaded(&mut envs, ctx, &target.env)?;
            runs.push((
                position,
                &target.env,
                &env_plan(file, &target.env).sync[target.index],
            ));
        }
        results.push(skip);
    }
    let envs = &envs;
    let ran =
        futures_util::future::join_all(runs.into_iter().map(|(position, env, sync)| async move {
            (
                position,
                run_sync(&envs[env], sync, environment, progress).await,
            )
        }))
        .await;
    for (position, result) in ran {
        results[position] = Some(match result {
            Ok(outcome) => Applied::Applied(outcome),
            Err(err) => Applied::Failed {
                error: err.to_string(),
            },
        });
    }
    for (target, result) in planned.targets.into_iter().zip(results) {
        report.targets.push(TargetApplied {
            env: target.env,
            to: target.to,
            result: result.expect("every target has a result"),
        });
    }
    Ok(report)
}

/// The plan file's part for env `name`, which the plan came from.
fn env_plan<'a>(file: &'a PlanFile, name: &str) -> &'a vsync_plan::EnvPlan {
    file.env
        .iter()
        .find(|(env, _)| env.get_ref() == name)
        .map(|(_, env_plan)| env_plan)
        .expect("planned from this file")
}

async fn run_sync(
    env: &Env,
    sync: &vsync_plan::SyncPlan,
    environment: Environment<'_>,
    progress: &dyn Progress,
) -> Result<SyncOutcome, OpsError> {
    let (platform, sink_side) = platforms::find_sink(sync.to.get_ref())?;
    let routing = platform.routing(None, &sync.routing())?;
    sync_routed(
        env,
        platform.name,
        sink_side,
        &routing,
        &sync_request(sync, false),
        None,
        environment,
        progress,
    )
    .await
}

/// The store key of the marker saying `artifact`'s apply began for `env`.
fn marker_key(env: &Env, artifact: &Artifact) -> Result<String, OpsError> {
    let layout = layout(&env.config, env.repo.name(), &env.name)?;
    let tag = artifact.tags.get(&env.name).map_or("", String::as_str);
    Ok(format!(
        "{}plan-applies/{}",
        layout.prefix(),
        &tag[..tag.len().min(32)]
    ))
}

/// Whether `artifact`'s apply began for `env` before (a resumed apply).
async fn began(env: &Env, artifact: &Artifact) -> Result<bool, OpsError> {
    let store = open_store(&env.config)?;
    let key = marker_key(env, artifact)?;
    Ok(store.get_limited(&key, 64).await?.is_some())
}

async fn mark_begun(env: &Env, artifact: &Artifact) -> Result<(), OpsError> {
    let store = open_store(&env.config)?;
    let key = marker_key(env, artifact)?;
    match store.put(&key, b"began\n", PutCondition::IfAbsent).await {
        Ok(_) | Err(vsync_engine::store::StoreError::PreconditionFailed { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// What moved since `artifact` was made, compared with `planned`, the
/// same plan made now. Empty when nothing did.
fn stale(
    artifact: &Artifact,
    file: &PlanFile,
    planned: &PlanReport,
    imports_here: bool,
    started: &[String],
) -> Vec<String> {
    let mut reasons = Vec::new();
    if artifact.file_sha256 != file.sha256 {
        reasons.push("vsync.toml changed since the plan".to_owned());
    }
    let planned_with: BTreeMap<&str, &str> = artifact
        .overrides
        .iter()
        .map(|o| (o.variable.as_str(), o.value.as_str()))
        .collect();
    let now_with: BTreeMap<&str, &str> = file
        .overrides
        .iter()
        .map(|o| (o.variable.as_str(), o.value.as_str()))
        .collect();
    for variable in planned_with
        .keys()
        .chain(now_with.keys())
        .collect::<BTreeSet<_>>()
    {
        let (then, now) = (planned_with.get(variable), now_with.get(variable));
        if then != now {
            let shown =
                |value: Option<&&str>| value.map_or("unset".to_owned(), |v| format!("{v:?}"));
            reasons.push(format!(
                "{variable} was {} when planned and is {} now",
                shown(then),
                shown(now)
            ));
        }
    }
    for (env, state) in &artifact.envs {
        let now = planned.versions.get(env).cloned().flatten();
        // The artifact's own imports push: the version they make is theirs.
        let imports_push = artifact.imports.iter().any(|import| {
            import.env == *env
                && import
                    .lines
                    .iter()
                    .any(|line| is_import_write(&line.action))
        });
        if now != state.version && !imports_push {
            reasons.push(format!(
                "env {env}: the vault was pushed since the plan ({} then, {} now)",
                state.version.as_deref().unwrap_or("no version"),
                now.as_deref().unwrap_or("no version")
            ));
        }
    }
    if imports_here {
        let fresh: Vec<(&str, &str, &SourceImportOutcome)> = planned
            .imports
            .iter()
            .filter_map(|import| match &import.result {
                ImportResult::Planned(outcome) => {
                    Some((import.env.as_str(), outcome.platform, outcome))
                }
                ImportResult::Refused { .. } => None,
            })
            .collect();
        if fresh.len() != artifact.imports.len() {
            reasons.push(format!(
                "{} import(s) reviewed, {} now",
                artifact.imports.len(),
                fresh.len()
            ));
        }
        for (reviewed, (env, platform, outcome)) in artifact.imports.iter().zip(&fresh) {
            let label = format!("{env} <- {}", reviewed.from);
            if reviewed.env != *env || reviewed.from != *platform {
                reasons.push(format!("{label}: not the import reviewed"));
                continue;
            }
            let now: HashMap<&str, String> = outcome
                .lines
                .iter()
                .map(|line| (line.key.as_str(), word(&line.action)))
                .collect();
            let mut done = false;
            for line in &reviewed.lines {
                let action = now.get(line.key.as_str()).map(String::as_str);
                match action {
                    Some(action) if action == line.action => {}
                    // Imported already (a resumed apply).
                    Some("unchanged") | None if is_import_write(&line.action) => done = true,
                    _ => reasons.push(format!(
                        "{label}: {} was to {}, now {}",
                        line.key,
                        line.action,
                        action.unwrap_or("gone")
                    )),
                }
            }
            for line in &outcome.lines {
                if !reviewed.lines.iter().any(|old| old.key == line.key)
                    && import_writes(line.action)
                {
                    reasons.push(format!("{label}: {} was not in the plan", line.key));
                }
            }
            if !done && reviewed.digest != outcome.digest {
                reasons.push(format!("{label}: values at the source changed"));
            }
        }
    }
    let fresh: Vec<(&str, &SyncOutcome)> = planned
        .targets
        .iter()
        .filter_map(|target| match &target.result {
            TargetResult::Planned(outcome) => Some((target.env.as_str(), outcome)),
            TargetResult::Refused { .. } => None,
        })
        .collect();
    for reviewed in &artifact.targets {
        let label = format!("{} -> {}", reviewed.env, reviewed.target);
        let Some((_, outcome)) = fresh.iter().find(|(env, outcome)| {
            *env == reviewed.env && outcome.report.target == reviewed.target
        }) else {
            reasons.push(format!("{label}: no longer planned"));
            continue;
        };
        if outcome.desired_digest != reviewed.desired {
            reasons.push(format!("{label}: the values to sync changed"));
        }
        let resumed = started.contains(&reviewed.env);
        let now: HashMap<&str, &vsync_engine::sync::PlannedSecret> = outcome
            .report
            .secrets
            .iter()
            .map(|line| (line.plan.name.as_str(), &line.plan))
            .collect();
        for line in &reviewed.lines {
            let Some(current) = now.get(line.name.as_str()) else {
                if line.action != "prune" {
                    reasons.push(format!("{label}: {} is gone", line.name));
                }
                continue;
            };
            let action = word(&current.action);
            let drift = current.drift.as_ref().map(word);
            let writes = ["create", "update", "prune"].contains(&line.action.as_str());
            let same = action == line.action
                && drift == line.drift
                && (!writes || current.revision == line.revision);
            // Written already: the record vouches for the reviewed value.
            let done = writes && line.action != "prune" && current.action == Action::Unchanged;
            // Written at a kill whose answer was lost: only on a resume.
            let in_flight = resumed
                && ["create", "update"].contains(&line.action.as_str())
                && current.action == Action::Update;
            if !(same || done || in_flight) {
                reasons.push(format!(
                    "{label}: {} was to {}{}, now {action}{}",
                    line.name,
                    line.action,
                    line.drift
                        .as_ref()
                        .map(|drift| format!(" ({drift})"))
                        .unwrap_or_default(),
                    drift.map(|drift| format!(" ({drift})")).unwrap_or_default()
                ));
            }
        }
        for line in &outcome.report.secrets {
            let writes = line.plan.action != Action::Unchanged;
            if writes && !reviewed.lines.iter().any(|old| old.name == line.plan.name) {
                reasons.push(format!("{label}: {} was not in the plan", line.plan.name));
            }
        }
    }
    for (env, outcome) in &fresh {
        if !artifact
            .targets
            .iter()
            .any(|reviewed| reviewed.env == *env && reviewed.target == outcome.report.target)
        {
            reasons.push(format!(
                "{env} -> {}: not in the plan",
                outcome.report.target
            ));
        }
    }
    reasons
}

fn is_import_write(action: &str) -> bool {
    ["add", "change", "delete"].contains(&action)
}
