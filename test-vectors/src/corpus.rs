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

/// A vector file marked `"placeholder": true`: not run, reported as pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The category directory it was found in.
    pub category: Category,
    /// The file stem, e.g. `example`.
    pub name: String,
    /// Why it is pending: its `description`, which upstream's scaffold
    /// placeholders use to say what will replace them.
    pub why: String,
}

impl Placeholder {
    /// `<category>/<name>`, for reports.
    pub fn id(&self) -> String {
        format!("{}/{}", self.category, self.name)
    }
}

/// Everything a corpus directory holds: the vectors to run, and what was
/// found but not run, so a report can name it instead of skipping it
/// silently.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Corpus {
    /// The vectors, sorted by category then name.
    pub vectors: Vec<Vector>,
    /// `"placeholder": true` vectors, sorted by category then name.
    pub placeholders: Vec<Placeholder>,
    /// Files that are neither a vector (`<name>.json`), its wire bytes (a
    /// `<name>.bin` beside a `<name>.json`) nor a `README.md`, sorted.
    pub unknown_files: Vec<PathBuf>,
}

impl Corpus {
    /// What was found but not run, for the report line: e.g. `2 placeholder
    /// (pending: rqe1-decrypt/example: <why>; …), 1 unknown file
    /// (rqe1-decrypt/notes.txt)`. Unknown files are named relative to `root`.
    pub fn not_run_summary(&self, root: &Path) -> String {
        let pending = if self.placeholders.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self
                .placeholders
                .iter()
                .map(|placeholder| format!("{}: {}", placeholder.id(), placeholder.why))
                .collect();
            format!(" (pending: {})", list.join("; "))
        };
        let unknown = if self.unknown_files.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = self
                .unknown_files
                .iter()
                .map(|path| {
                    path.strip_prefix(root)
                        .unwrap_or(path)
                        .display()
                        .to_string()
                })
                .collect();
            format!(" ({})", list.join(", "))
        };
        format!(
            "{} placeholder{pending}, {} unknown file{}{unknown}",
            self.placeholders.len(),
            self.unknown_files.len(),
            if self.unknown_files.len() == 1 {
                ""
            } else {
                "s"
            },
        )
    }
}

/// Loads every vector under `root`. Category `README.md` files are skipped;
/// `"placeholder": true` vectors and unknown files are not run but listed in
/// the returned [`Corpus`].
pub fn load(root: &Path) -> Result<Corpus, LoadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LoadError::Io { path, source }
    };
    let mut corpus = Corpus::default();
    for entry in fs::read_dir(root).map_err(io(root))? {
        let dir = entry.map_err(io(root))?.path();
        if !dir.is_dir() {
            if !is_readme(&dir) {
                corpus.unknown_files.push(dir);
            }
            continue;
        }
        let category = dir
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(Category::from_dir_name)
            .ok_or_else(|| LoadError::UnknownCategory(dir.clone()))?;
        for file in fs::read_dir(&dir).map_err(io(&dir))? {
            let path = file.map_err(io(&dir))?.path();
            match path.extension().and_then(|ext| ext.to_str()) {
                Some("json") => {}
                // Wire bytes belong to the vector beside them.
                Some("bin") if path.with_extension("json").is_file() => continue,
                _ if is_readme(&path) => continue,
                _ => {
                    corpus.unknown_files.push(path);
                    continue;
                }
            }
            let text = fs::read(&path).map_err(io(&path))?;
            let doc: Value = serde_json::from_slice(&text).map_err(|source| LoadError::Json {
                path: path.clone(),
                source,
            })?;
            let name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            if doc["placeholder"] == Value::Bool(true) {
                let why = doc["description"]
                    .as_str()
                    .unwrap_or("marked placeholder, no description")
                    .to_owned();
                corpus.placeholders.push(Placeholder {
                    category,
                    name,
                    why,
                });
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
            corpus.vectors.push(Vector {
                category,
                name,
                doc,
                bin,
            });
        }
    }
    corpus
        .vectors
        .sort_by(|a, b| (a.category, &a.name).cmp(&(b.category, &b.name)));
    corpus
        .placeholders
        .sort_by(|a, b| (a.category, &a.name).cmp(&(b.category, &b.name)));
    corpus.unknown_files.sort();
    Ok(corpus)
}

/// Hand-written `README.md` files are documentation, not corpus content.
fn is_readme(path: &Path) -> bool {
    path.file_name().and_then(|name| name.to_str()) == Some("README.md")
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
        write(root.path(), "README.md", "# hand-written");
        write(
            root.path(),
            "rqe1-decrypt/example.json",
            r#"{"placeholder":true}"#,
        );
        let corpus = load(root.path()).unwrap();
        assert_eq!(
            corpus.vectors.iter().map(Vector::id).collect::<Vec<_>>(),
            ["rqe1-decrypt/a", "rqe1-decrypt/b"]
        );
        assert_eq!(corpus.vectors[0].bin.as_deref(), Some(&b"RQE1"[..]));
        assert_eq!(corpus.vectors[1].bin, None);
        assert!(
            corpus.unknown_files.is_empty(),
            "{:?}",
            corpus.unknown_files
        );
    }

    #[test]
    fn placeholders_are_listed_as_pending_with_their_description() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "config-blob/a.json",
            &VALID.replace("rqe1-decrypt", "config-blob"),
        );
        write(
            root.path(),
            "rqe1-decrypt/example.json",
            r#"{"placeholder":true,"description":"will be replaced by generator"}"#,
        );
        // The placeholder's wire bytes belong to it: not an unknown file.
        write(
            root.path(),
            "error-taxonomy/example.json",
            r#"{"placeholder":true}"#,
        );
        write(root.path(), "error-taxonomy/example.bin", "PLACEHOLDER");
        let corpus = load(root.path()).unwrap();
        assert_eq!(corpus.vectors.len(), 1);
        assert_eq!(
            corpus.placeholders,
            [
                Placeholder {
                    category: Category::Rqe1Decrypt,
                    name: "example".into(),
                    why: "will be replaced by generator".into(),
                },
                Placeholder {
                    category: Category::ErrorTaxonomy,
                    name: "example".into(),
                    why: "marked placeholder, no description".into(),
                },
            ]
        );
        assert!(
            corpus.unknown_files.is_empty(),
            "{:?}",
            corpus.unknown_files
        );
        assert_eq!(
            corpus.not_run_summary(root.path()),
            "2 placeholder (pending: rqe1-decrypt/example: will be replaced by generator; \
             error-taxonomy/example: marked placeholder, no description), 0 unknown files"
        );
    }

    #[test]
    fn unknown_files_are_listed_not_skipped_silently() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "rqe1-decrypt/a.json", VALID);
        write(root.path(), "rqe1-decrypt/orphan.bin", "RQE1");
        write(root.path(), "rqe1-decrypt/notes.txt", "stray");
        write(root.path(), "LICENSE", "stray at the root");
        let corpus = load(root.path()).unwrap();
        assert_eq!(corpus.vectors.len(), 1);
        assert_eq!(
            corpus.unknown_files,
            [
                root.path().join("LICENSE"),
                root.path().join("rqe1-decrypt/notes.txt"),
                root.path().join("rqe1-decrypt/orphan.bin"),
            ]
        );
        assert_eq!(
            corpus.not_run_summary(root.path()),
            "0 placeholder, 3 unknown files (LICENSE, rqe1-decrypt/notes.txt, rqe1-decrypt/orphan.bin)"
        );
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
