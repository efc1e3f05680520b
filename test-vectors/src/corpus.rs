//! Loading a corpus directory into [`Vector`]s.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The seven corpus categories, one directory each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Positive RQE1 decryption.
    Rqe1Decrypt,
    /// RQE1 decryption failures and their classes.
    Rqe1DecryptError,
    /// RQEM0001 unwrap and timestamp comparison.
    Rqem0001Manifest,
    /// `vsync-cfg-v1:` blob decoding.
    ConfigBlob,
    /// The runtime library's vault → env → default → missing chain.
    FallbackChain,
    /// The runtime library's asset byte accessor.
    AssetPath,
    /// One vector per error class.
    ErrorTaxonomy,
}

impl Category {
    /// Every category, in corpus order.
    pub const ALL: [Category; 7] = [
        Category::Rqe1Decrypt,
        Category::Rqe1DecryptError,
        Category::Rqem0001Manifest,
        Category::ConfigBlob,
        Category::FallbackChain,
        Category::AssetPath,
        Category::ErrorTaxonomy,
    ];

    /// The directory (and `category` field) name.
    pub const fn dir_name(self) -> &'static str {
        match self {
            Category::Rqe1Decrypt => "rqe1-decrypt",
            Category::Rqe1DecryptError => "rqe1-decrypt-error",
            Category::Rqem0001Manifest => "rqem0001-manifest",
            Category::ConfigBlob => "config-blob",
            Category::FallbackChain => "fallback-chain",
            Category::AssetPath => "asset-path",
            Category::ErrorTaxonomy => "error-taxonomy",
        }
    }

    /// Looks a category up by its directory name.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|category| category.dir_name() == name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// One vector: its JSON document and, where present, its wire bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    /// The category directory it was found in.
    pub category: Category,
    /// The file stem, e.g. `hello-world`.
    pub name: String,
    /// The whole JSON document.
    pub doc: Value,
    /// The sibling `.bin`, if any.
    pub bin: Option<Vec<u8>>,
}

impl Vector {
    /// `<category>/<name>`, for reports.
    pub fn id(&self) -> String {
        format!("{}/{}", self.category, self.name)
    }

    /// `inputs.<field>`, or `Null`.
    pub fn input(&self, field: &str) -> &Value {
        &self.doc["inputs"][field]
    }

    /// `expected.<field>`, or `Null`.
    pub fn expected(&self, field: &str) -> &Value {
        &self.doc["expected"][field]
    }
}

/// Why a corpus directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A vector file is not valid JSON.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// The vector file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A directory that is not one of the seven categories.
    #[error("{0} is not a corpus category")]
    UnknownCategory(PathBuf),
    /// A vector whose `category` field disagrees with its directory, or that
    /// lacks a required top-level key.
    #[error("{path}: {problem}")]
    Schema {
        /// The vector file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// The top-level keys every vector must carry.
pub const REQUIRED_KEYS: [&str; 6] = [
    "category",
    "description",
    "inputs",
    "expected",
    "generated_by",
    "spec_version",
];

/// Loads every vector under `root`, sorted by category then name. Category
/// `README.md` files and `"placeholder": true` vectors are skipped.
pub fn load(root: &Path) -> Result<Vec<Vector>, LoadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LoadError::Io { path, source }
    };
    let mut vectors = Vec::new();
    for entry in fs::read_dir(root).map_err(io(root))? {
        let dir = entry.map_err(io(root))?.path();
        if !dir.is_dir() {
            continue;
        }
        let category = dir
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(Category::from_dir_name)
            .ok_or_else(|| LoadError::UnknownCategory(dir.clone()))?;
        for file in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = file.map_err(io(&dir))?.path();
            if path.extension().and_then(|ext| ext.to_str()) != Some("json") {
                continue;
            }
            let text = fs::read(&path).map_err(io(&path))?;
            let doc: Value = serde_json::from_slice(&text).map_err(|source| LoadError::Json {
                path: path.clone(),
                source,
            })?;
            if doc["placeholder"] == Value::Bool(true) {
                continue;
            }
            let schema = |problem: String| LoadError::Schema {
                path: path.clone(),
                problem,
            };
            if let Some(missing) = REQUIRED_KEYS.iter().find(|key| doc.get(**key).is_none()) {
                return Err(schema(format!("missing top-level key `{missing}`")));
            }
            if doc["category"] != category.dir_name() {
                return Err(schema(format!("category field says {}", doc["category"])));
            }
            let bin_path = path.with_extension("bin");
            let bin = if bin_path.exists() {
                Some(fs::read(&bin_path).map_err(io(&bin_path))?)
            } else {
                None
            };
            let name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            vectors.push(Vector {
                category,
                name,
                doc,
                bin,
            });
        }
    }
    vectors.sort_by(|a, b| (a.category, &a.name).cmp(&(b.category, &b.name)));
    Ok(vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    const VALID: &str = r#"{"category":"rqe1-decrypt","description":"d","inputs":{},"expected":{"error":null},"generated_by":"x","spec_version":"v0.12"}"#;

    #[test]
    fn loads_pairs_and_skips_readmes_and_placeholders() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "rqe1-decrypt/a.json", VALID);
        write(root.path(), "rqe1-decrypt/a.bin", "RQE1");
        write(root.path(), "rqe1-decrypt/b.json", VALID);
        write(root.path(), "rqe1-decrypt/README.md", "# hand-written");
        write(
            root.path(),
            "rqe1-decrypt/example.json",
            r#"{"placeholder":true}"#,
        );
        let vectors = load(root.path()).unwrap();
        assert_eq!(
            vectors.iter().map(Vector::id).collect::<Vec<_>>(),
            ["rqe1-decrypt/a", "rqe1-decrypt/b"]
        );
        assert_eq!(vectors[0].bin.as_deref(), Some(&b"RQE1"[..]));
        assert_eq!(vectors[1].bin, None);
    }

    #[test]
    fn rejects_unknown_categories_and_bad_schema() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "rqe9-decrypt/a.json", VALID);
        assert!(matches!(
            load(root.path()),
            Err(LoadError::UnknownCategory(_))
        ));

        let root = tempfile::tempdir().unwrap();
        write(root.path(), "config-blob/a.json", VALID);
        assert!(matches!(load(root.path()), Err(LoadError::Schema { .. })));

        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "rqe1-decrypt/a.json",
            r#"{"category":"rqe1-decrypt"}"#,
        );
        assert!(matches!(load(root.path()), Err(LoadError::Schema { .. })));
    }
}
