//! `vsync plan init`: the working tree's `vsync.toml` written from the sync
//! routing this machine saved for the repo's envs (the file's model and
//! checks are `vsync-plan`'s).

use std::path::PathBuf;

use vsync_local::EnvConfig;
use vsync_plan::SavedRouting;

use crate::keystore::config_files;
use crate::{Context, OpsError};

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
    if path.exists() && !force {
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
    std::fs::write(&path, text).map_err(|source| OpsError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(PlanInit {
        path,
        envs: envs.len(),
        targets: envs.iter().map(|env| env.targets.len()).sum(),
    })
}
