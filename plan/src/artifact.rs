//! The plan artifact `vsync plan --out` writes and `vsync plan apply`
//! executes: what was reviewed, without a value — per import its keys and
//! actions, per sync target its names, actions, drift and the platform
//! revisions seen — bound to what it was planned from (the `vsync.toml`
//! bytes, each env's published version, a keyed digest of the values) and
//! tagged per env under a key derived from that env's vault key, so an
//! edited artifact is refused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vsync_crypto::fingerprint::FingerprintKey;

/// The artifact format this vsync writes and reads.
pub const FORMAT: &str = "vsync-plan-artifact/1";

/// An artifact lists names, never values: even 10,000 targets' worth stays
/// far below this, and anything larger is refused before it is read.
pub const MAX_ARTIFACT_BYTES: u64 = 32 << 20;

/// A reviewed plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Artifact {
    /// [`FORMAT`].
    pub format: String,
    /// The repository (as vsync names it).
    pub repo: String,
    /// SHA-256 of the `vsync.toml` bytes planned, lowercase hex.
    pub file_sha256: String,
    /// The `VSYNC_ENV__…` overrides the plan was made with.
    #[serde(default)]
    pub overrides: Vec<crate::Override>,
    /// What was planned.
    pub scope: Scope,
    /// Per env in scope, its published version when planned.
    pub envs: BTreeMap<String, EnvState>,
    /// The imports reviewed, in the plan's order.
    pub imports: Vec<ReviewedImport>,
    /// The sync targets reviewed, in the plan's order.
    pub targets: Vec<ReviewedTarget>,
    /// Per env, the tag of everything above under the env's artifact key.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The envs, targets and shard a plan covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scope {
    /// `--env` (every env when empty).
    pub envs: Vec<String>,
    /// `--target` (every target when empty).
    pub targets: Vec<String>,
    /// `--shard`.
    pub shard: Option<Shard>,
}

/// One env's state when planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvState {
    /// The published bundle's version (its sealed timestamp), if any.
    pub version: Option<String>,
}

/// An import as reviewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReviewedImport {
    /// The env imported into.
    pub env: String,
    /// The platform's short name.
    pub from: String,
    /// Keyed digest of the values the import writes.
    pub digest: String,
    /// Every key with its action.
    pub lines: Vec<ReviewedKey>,
}

/// One key of a reviewed import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReviewedKey {
    /// The vault key.
    pub key: String,
    /// What the import does with it.
    pub action: String,
}

/// A sync target as reviewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReviewedTarget {
    /// The env.
    pub env: String,
    /// The platform's short name.
    pub to: String,
    /// The target as its sink describes it.
    pub target: String,
    /// Keyed digest of the names and values to sync.
    pub desired: String,
    /// Every platform name with its action.
    pub lines: Vec<ReviewedName>,
}

/// One name of a reviewed sync target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReviewedName {
    /// The platform name.
    pub name: String,
    /// What the sync does with it.
    pub action: String,
    /// An edit made outside vsync, if any.
    pub drift: Option<String>,
    /// The platform's revision of it when planned, if it has one.
    pub revision: Option<String>,
}

/// `--shard I/N`: the I-th of N stable parts of the sync targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parsed = text
            .split_once('/')
            .and_then(|(index, count)| Some((index.parse().ok()?, count.parse().ok()?)));
        match parsed {
            Some((index, count)) if (1..=count).contains(&index) => Ok(Shard { index, count }),
            _ => Err(format!(
                "{text:?}: expected I/N with 1 ≤ I ≤ N, e.g. 2/4 for the second of four"
            )),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the sync target `to` of `env` with `settings` is in this
    /// shard: by a hash of the three, so a target stays in its shard while
    /// others are added or removed.
    pub fn holds(
        &self,
        env: &str,
        to: &str,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        use sha2::Digest;
        // Sorted: the order settings are written in moves no target.
        let settings: BTreeMap<&String, &serde_json::Value> = settings.iter().collect();
        let settings = serde_json::to_string(&settings).expect("settings serialise");
        let digest = sha2::Sha256::new()
            .chain_update(env)
            .chain_update([0])
            .chain_update(to)
            .chain_update([0])
            .chain_update(settings)
            .finalize();
        let bucket = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        bucket % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// Imports change the vault, which must happen once and before the
    /// syncs: they belong to the first shard.
    pub fn holds_imports(&self) -> bool {
        self.index == 1
    }
}

/// Why an artifact cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// It could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a regular file, or larger than any artifact.
    #[error("{path}: not a plan artifact (a regular file of at most {MAX_ARTIFACT_BYTES} bytes)")]
    NotAnArtifact {
        /// The file.
        path: std::path::PathBuf,
    },
    /// Not the format.
    #[error("{path}: not a {FORMAT} plan artifact: {problem}")]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A tag is missing or does not verify under the env's key.
    #[error(
        "the plan artifact does not verify for env {env}: it was edited, or made with another key for {env}; make a new one with `vsync plan --out`"
    )]
    NotAuthentic {
        /// The env whose tag failed.
        env: String,
    },
}

impl Artifact {
    /// The bytes the tags cover: the artifact without its tags.
    fn body(&self) -> Vec<u8> {
        let untagged = Artifact {
            tags: BTreeMap::new(),
            ..self.clone()
        };
        serde_json::to_vec(&untagged).expect("an artifact serialises")
    }

    /// Tags the artifact for `env` with `key`, the env's artifact key
    /// ([`FingerprintKey::derive_for_plan_artifacts`]). Tag every env
    /// after the last change to the artifact.
    pub fn tag(&mut self, env: &str, key: &FingerprintKey) {
        let tag = key.fingerprint(&self.body());
        self.tags.insert(env.to_owned(), tag);
    }

    /// Checks the tag of every env the artifact holds, each with its key
    /// in `keys`.
    pub fn verify(&self, keys: &BTreeMap<String, FingerprintKey>) -> Result<(), ArtifactError> {
        let body = self.body();
        for env in self.envs.keys() {
            let authentic = match (self.tags.get(env), keys.get(env)) {
                (Some(tag), Some(key)) => key.verify(&body, tag),
                _ => false,
            };
            if !authentic {
                return Err(ArtifactError::NotAuthentic { env: env.clone() });
            }
        }
        Ok(())
    }

    /// The artifact as written: pretty JSON, for review.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an artifact serialises")
    }

    /// Reads an artifact (a regular file, not followed through a symlink,
    /// of at most [`MAX_ARTIFACT_BYTES`]); its tags are checked by
    /// [`Artifact::verify`].
    pub fn load(path: &Path) -> Result<Self, ArtifactError> {
        let io = |source| ArtifactError::Io {
            path: path.to_owned(),
            source,
        };
        let metadata = std::fs::symlink_metadata(path).map_err(io)?;
        if !metadata.is_file() || metadata.len() > MAX_ARTIFACT_BYTES {
            return Err(ArtifactError::NotAnArtifact {
                path: path.to_owned(),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let format = |problem: String| ArtifactError::Format {
            path: path.to_owned(),
            problem,
        };
        let artifact: Artifact =
            serde_json::from_slice(&bytes).map_err(|err| format(err.to_string()))?;
        if artifact.format != FORMAT {
            return Err(format(format!("format {:?}", artifact.format)));
        }
        Ok(artifact)
    }
}
