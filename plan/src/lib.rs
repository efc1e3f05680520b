//! `vsync.toml`, the plan file: one reviewed description of every env of a
//! repo — what each imports from which platform (sources → vault) and where
//! each is synced (vault → sinks). This crate reads and checks the file,
//! reporting every problem with its line, column and what to write
//! instead, describes it as a JSON Schema for editors, and writes one from
//! the routing a machine already saved. Planning and applying it build on
//! this.
//!
//! ```toml
//! version = 1
//!
//! [[env.prod.import]]
//! from = "aws"                        # a platform vsync imports from
//! settings = { region = "eu-west-1" } # the platform's `--set` fields
//! include = ["API_*"]
//! prefer = "source"
//!
//! [[env.prod.sync]]
//! to = "gh"                           # a platform vsync syncs to
//! settings = { repo = "acme/web" }    # its routing fields
//! prune = true
//! max-deletes = 5
//! on-failure = "continue"
//! ```

#![forbid(unsafe_code)]

pub mod artifact;
mod check;
mod init;
pub mod overrides;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use artifact::{Artifact, ArtifactError, Shard};
pub use init::{SavedRouting, render};
pub use overrides::Override;
pub use schema::schema;

/// The plan file's name, at the root of the working tree.
pub const FILE_NAME: &str = "vsync.toml";

/// The plan file format this vsync reads and writes.
pub const VERSION: u32 = 1;

/// The most deletions one sync may make unless the plan says otherwise
/// (as `vsync sync --max-deletes`).
pub const DEFAULT_MAX_DELETES: usize = 10;

/// A parsed plan file. Every name and setting keeps its place in the file,
/// so later stages can point at it too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// The format version ([`VERSION`]).
    pub version: Spanned<u32>,
    /// Each env's imports and syncs, by env name.
    #[serde(default)]
    pub env: BTreeMap<Spanned<String>, EnvPlan>,
    /// SHA-256 of the file's bytes, lowercase hex: what a plan artifact is
    /// bound to.
    #[serde(skip)]
    pub sha256: String,
    /// The `VSYNC_ENV__…` overrides applied, sorted by variable.
    #[serde(skip)]
    pub overrides: Vec<Override>,
}

/// One env's part of the plan.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvPlan {
    /// Imports into the env's vault, in order.
    #[serde(default)]
    pub import: Vec<ImportPlan>,
    /// Syncs of the env's vault to platforms.
    #[serde(default)]
    pub sync: Vec<SyncPlan>,
}

/// A platform's settings as the file gives them, by field.
pub type Settings = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// One import: `vsync import <env> --from <from>` with its name rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImportPlan {
    /// The platform imported from (short or long name).
    pub from: Spanned<String>,
    /// The platform's source settings (`--set field=value`).
    #[serde(default)]
    pub settings: Settings,
    /// Only names starting with it are imported, without it.
    pub prefix: Option<String>,
    /// A name (once the prefix is gone) to the key it becomes.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Only keys matching one of these globs are imported (all when empty).
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// Keys matching one of these globs are not imported.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// Which side wins a conflict; without it a conflict refuses the import.
    pub prefer: Option<Prefer>,
    /// Delete vault keys this source brought in earlier and no longer has.
    #[serde(default)]
    pub delete_missing: bool,
}

/// Which side wins an import conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prefer {
    /// The source's value replaces the vault's.
    Source,
    /// The vault's value stays.
    Vault,
}

/// One sync: `vsync sync <env> <to>` with its policies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyncPlan {
    /// The platform synced to (short or long name).
    pub to: Spanned<String>,
    /// The platform's routing fields (as `sync.<short>` in the env config,
    /// or `--set field=value`).
    #[serde(default)]
    pub settings: Settings,
    /// Delete secrets vsync wrote earlier that the vault no longer has.
    #[serde(default)]
    pub prune: bool,
    /// The most deletions one run may make.
    #[serde(default = "default_max_deletes")]
    pub max_deletes: usize,
    /// What a failure of this target does to the rest of the run.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Keys not synced.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Keys ending in one of these suffixes name a file whose content is
    /// synced under the stem.
    #[serde(default)]
    pub inline_file_suffix: Vec<String>,
}

impl ImportPlan {
    /// The settings as `field=value` pairs, as `--set` gives them.
    pub fn sets(&self) -> Vec<String> {
        self.settings
            .iter()
            .map(|(field, value)| match value.get_ref() {
                toml::Value::String(text) => format!("{}={text}", field.get_ref()),
                other => format!("{}={other}", field.get_ref()),
            })
            .collect()
    }
}

impl SyncPlan {
    /// The settings as the routing object the platform reads.
    pub fn routing(&self) -> vsync_platforms::Routing {
        check::routing(&self.settings)
    }
}

fn default_max_deletes() -> usize {
    DEFAULT_MAX_DELETES
}

/// What a sync target's failure does to the rest of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// The run stops and reports failure.
    #[default]
    FailClosed,
    /// The other targets go on; the run reports a partial failure.
    Continue,
}

/// One problem in a plan file or its overrides, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub place: Place,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Where a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the file.
    File {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
    },
    /// In the value of this `VSYNC_ENV__…` variable.
    Variable(String),
}

/// Why a plan file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// It cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is larger than any plan needs to be.
    #[error("{}: {len} bytes, more than the {MAX_FILE_BYTES} a plan file may have", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// It is a symlink or not a regular file: a checkout's `vsync.toml`
    /// pointing elsewhere could have another file's contents echoed in the
    /// problems reported.
    #[error("{}: not a regular file (a symlink is not followed); give the file itself with --file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// It was read and is wrong, at these places.
    #[error("{}", problems.iter().map(|p| match &p.place {
        Place::File { line, column } => format!("{}:{line}:{column}: {}", path.display(), p.message),
        Place::Variable(variable) => format!("{variable}: {}", p.message),
    }).collect::<Vec<_>>().join("\n"))]
    Problems {
        /// The file.
        path: PathBuf,
        /// Every problem found, in the file's order.
        problems: Vec<Problem>,
    },
    /// A `VSYNC_ENV__…` variable's name or value is not Unicode.
    #[error("{variable}: not Unicode; a variable overriding vsync.toml must be")]
    NotUnicode {
        /// The variable, as far as it can be shown.
        variable: String,
    },
}

/// A plan file is a few kilobytes; anything past this is not one.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads and checks the plan file at `path`, a regular file (not followed
/// through a symlink) of at most [`MAX_FILE_BYTES`], with `overrides`
/// applied ([`overrides::from_environment`]).
pub fn load(path: &Path, overrides: &[Override]) -> Result<PlanFile, PlanError> {
    let io = |source| PlanError::Io {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::symlink_metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(PlanError::NotAFile {
            path: path.to_owned(),
        });
    }
    let len = metadata.len();
    if len > MAX_FILE_BYTES {
        return Err(PlanError::TooLarge {
            path: path.to_owned(),
            len,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse(&text, path, overrides)
}

/// Parses and checks a plan file's text with `overrides` applied; `path`
/// names it in errors.
pub fn parse(text: &str, path: &Path, overrides: &[Override]) -> Result<PlanFile, PlanError> {
    let places = Places { text, overrides };
    let problems = |problems| PlanError::Problems {
        path: path.to_owned(),
        problems,
    };
    let mut plan: PlanFile = toml::from_str(text).map_err(|err| {
        let at = err.span().map_or(0, |span| span.start);
        problems(vec![places.problem(at, check::explain(err.message()))])
    })?;
    let refused = overrides::apply(&mut plan, overrides, |index| {
        let at = places.override_offset(index);
        at..at
    });
    let mut found = check::check(&plan, text.len());
    found.extend(
        refused
            .into_iter()
            .map(|(index, message)| (places.override_offset(index), message)),
    );
    if !found.is_empty() {
        // The file's order, then the overrides'.
        found.sort_by_key(|(offset, _)| *offset);
        let found = found
            .into_iter()
            .map(|(offset, message)| places.problem(offset, message))
            .collect();
        return Err(problems(found));
    }
    use sha2::Digest;
    plan.sha256 = sha2::Sha256::digest(text)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    plan.overrides = overrides.to_vec();
    Ok(plan)
}

/// Turns the offsets spans carry into places: offsets within the text are
/// in the file; an override's values carry an offset past its end, one per
/// override, so a problem found in them names the variable.
struct Places<'a> {
    text: &'a str,
    overrides: &'a [Override],
}

impl Places<'_> {
    fn override_offset(&self, index: usize) -> usize {
        self.text.len() + 1 + index
    }

    /// The problem `message` at `offset`.
    fn problem(&self, offset: usize, message: String) -> Problem {
        if let Some(index) = offset.checked_sub(self.text.len() + 1) {
            let variable = self
                .overrides
                .get(index)
                .map_or_else(String::new, |o| o.variable.clone());
            return Problem {
                place: Place::Variable(variable),
                message,
            };
        }
        let before = &self.text[..offset.min(self.text.len())];
        Problem {
            place: Place::File {
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().unwrap_or("").chars().count() + 1,
            },
            message,
        }
    }
}

#[cfg(test)]
mod tests;
