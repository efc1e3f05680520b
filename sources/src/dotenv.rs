//! A `.env` file as a source: a file someone handed over, or another env's
//! vault folder (env → env promotion: `vsync import prod --from dotenv
//! --set env=staging`).
//!
//! The file is read with the grammar every other command uses
//! ([`vsync_engine::dotenv`]); a line it cannot read as written refuses the
//! import with the line numbers, never a value. Values are text (the
//! grammar carries no binary), read in one go: the whole file is one batch.

use std::io::Read;
use std::path::{Path, PathBuf};

use vsync_crypto::Zeroizing;
use vsync_engine::dotenv::{self, MAX_FILE_BYTES};
use vsync_engine::sink::{RateBudget, SecretValue, SinkError};
use vsync_engine::source::{ListedSecret, ReadBatch, Source, SourceCapabilities, SourceValue};
use vsync_engine::vault_fs;

/// A `.env` file.
#[derive(Debug)]
pub struct DotenvSource {
    path: PathBuf,
    caps: SourceCapabilities,
}

impl DotenvSource {
    /// Reads `path`. A symlink as its last component is refused, so a
    /// vault folder's `.env` cannot be swapped for another file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DotenvSource {
            path: path.into(),
            caps: SourceCapabilities {
                metadata: false,
                binary: false,
                batch: usize::MAX,
                rate: RateBudget::unpaced(1),
            },
        }
    }

    /// The file's entries, last occurrence winning, as every reader
    /// applies them.
    fn entries(&self) -> Result<Vec<dotenv::Entry>, SinkError> {
        let text = read_capped(&self.path)?;
        let parsed = dotenv::parse(&text);
        if !parsed.problems.is_empty() {
            return Err(SinkError::Rejected(format!(
                "{}: {}",
                self.path.display(),
                dotenv::summarize(&parsed.problems).join("; ")
            )));
        }
        let mut entries: Vec<dotenv::Entry> = Vec::with_capacity(parsed.entries.len());
        for entry in parsed.entries {
            entries.retain(|earlier| earlier.key != entry.key);
            entries.push(entry);
        }
        Ok(entries)
    }
}

fn read_capped(path: &Path) -> Result<Zeroizing<String>, SinkError> {
    let unreadable = |why: String| SinkError::NotFound(format!("{}: {why}", path.display()));
    let file = vault_fs::open_file(path).map_err(|error| unreadable(error.to_string()))?;
    let length = file
        .metadata()
        .map_err(|error| unreadable(error.to_string()))?
        .len();
    if length > MAX_FILE_BYTES {
        return Err(SinkError::Rejected(format!(
            "{}: {length} bytes, over the {MAX_FILE_BYTES}-byte limit for a .env file",
            path.display()
        )));
    }
    // Sized up front, so reading never reallocates and leaves a copy.
    let mut text = Zeroizing::new(String::with_capacity(length as usize + 1));
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|error| unreadable(error.to_string()))?;
    Ok(text)
}

#[async_trait::async_trait]
impl Source for DotenvSource {
    fn capabilities(&self) -> &SourceCapabilities {
        &self.caps
    }

    fn origin(&self) -> String {
        format!("dotenv:file={}", self.path.display())
    }

    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|entry| ListedSecret::named(entry.key))
            .collect())
    }

    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|entry| secrets.iter().any(|secret| secret.name == entry.key))
            .map(|entry| SourceValue {
                secret: entry.key.clone(),
                name: entry.key,
                value: SecretValue::from_text(&entry.value),
            })
            .collect::<Vec<_>>()
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_every_entry_byte_for_byte_last_one_winning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.staging");
        std::fs::write(
            &path,
            "# staging\nA=1\nPEM=\"-----BEGIN\nx=y # not a comment\n-----END\"\nA=2\nQ='\"quoted\"'\n",
        )
        .unwrap();
        let source = DotenvSource::new(&path);
        let listed = source.list().await.unwrap();
        let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["PEM", "A", "Q"]);
        let all: Vec<&ListedSecret> = listed.iter().collect();
        let batch = source.read(&all).await.unwrap();
        let read: Vec<(&str, &str)> = batch
            .values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_text().unwrap()))
            .collect();
        assert_eq!(
            read,
            [
                ("PEM", "-----BEGIN\nx=y # not a comment\n-----END"),
                ("A", "2"),
                ("Q", "\"quoted\"")
            ]
        );
    }

    #[tokio::test]
    async fn a_file_the_grammar_cannot_read_is_refused_by_line_and_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "A=1\nhunter2\n").unwrap();
        let err = DotenvSource::new(&path)
            .list()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && !err.contains("hunter2"), "{err}");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = DotenvSource::new(&link)
            .list()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("symlink"), "{err}");
        let err = DotenvSource::new(dir.path().join("absent"))
            .list()
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::NotFound(_)), "{err}");
    }
}
