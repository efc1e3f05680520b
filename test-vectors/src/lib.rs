//! The vsync conformance corpus: the project's own deterministic generator
//! ([`generate`]), a loader for any corpus directory with upstream's layout
//! ([`corpus`]), and the checks that drive every vector through the real
//! implementation ([`check`]).
//!
//! A corpus is one directory per category holding `<name>.json` plus an
//! optional `<name>.bin` of raw wire bytes; category `README.md` files and
//! `"placeholder": true` vectors are not vectors.

#![forbid(unsafe_code)]

pub mod check;
pub mod corpus;
mod fixed_iv;
pub mod generate;

use std::ffi::OsStr;
use std::path::PathBuf;

use vsync_crypto::config_blob::RuntimeConfig;

/// The project's committed corpus, `test-vectors/corpus/`.
pub fn own_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Where the upstream corpus is looked for when `$VSYNC_UPSTREAM_CORPUS` is
/// not set: `../shared/vsync-conformance` beside the repository root.
pub fn default_upstream_corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vsync-conformance")
}

/// What the conformance test does about the upstream corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamCorpus {
    /// Run the corpus in this directory.
    Run(PathBuf),
    /// The default location is empty and neither CI nor
    /// `$VSYNC_UPSTREAM_CORPUS` demands it: print a notice and skip the
    /// upstream half (a developer machine without the shared checkout).
    SkipWithNotice(PathBuf),
}

/// Decides where the upstream corpus is and whether its absence is a
/// failure, from explicit inputs (so it is tested without touching the
/// process environment; [`upstream_corpus_from_env`] feeds it the real one):
/// `explicit` is `$VSYNC_UPSTREAM_CORPUS`, `in_ci` whether `CI=true`.
///
/// A `$VSYNC_UPSTREAM_CORPUS` naming no directory is an error everywhere:
/// someone asked for that corpus, and skipping it would hide the typo. A
/// missing default corpus is an error under CI, where a skipped upstream
/// half would pass unnoticed, and a notice elsewhere.
pub fn locate_upstream_corpus(
    explicit: Option<PathBuf>,
    in_ci: bool,
    default_dir: PathBuf,
) -> Result<UpstreamCorpus, String> {
    match explicit {
        Some(dir) if dir.is_dir() => Ok(UpstreamCorpus::Run(dir)),
        Some(dir) if dir.as_os_str().is_empty() => Err(
            "VSYNC_UPSTREAM_CORPUS is set but empty; point it at a checkout of the upstream corpus or unset it"
                .to_owned(),
        ),
        Some(dir) => Err(format!(
            "VSYNC_UPSTREAM_CORPUS={} is not a directory; point it at a checkout of the upstream corpus or unset it",
            dir.display()
        )),
        None if default_dir.is_dir() => Ok(UpstreamCorpus::Run(default_dir)),
        None if in_ci => Err(format!(
            "upstream corpus not found at {} and CI=true, where skipping it is not allowed; \
             check it out there or set VSYNC_UPSTREAM_CORPUS",
            default_dir.display()
        )),
        None => Ok(UpstreamCorpus::SkipWithNotice(default_dir)),
    }
}

/// Whether the value of `$CI` means a CI run: exactly `true`, as GitHub
/// Actions sets it.
pub fn is_ci(value: Option<&OsStr>) -> bool {
    value == Some(OsStr::new("true"))
}

/// [`locate_upstream_corpus`] with this process's `$VSYNC_UPSTREAM_CORPUS`
/// and `$CI`.
pub fn upstream_corpus_from_env() -> Result<UpstreamCorpus, String> {
    locate_upstream_corpus(
        std::env::var_os("VSYNC_UPSTREAM_CORPUS").map(PathBuf::from),
        is_ci(std::env::var_os("CI").as_deref()),
        default_upstream_corpus_dir(),
    )
}

/// A decoded config as the corpus writes `expected.config_json`: the ten
/// wire fields under their camelCase names, in wire order.
pub fn config_json(config: &RuntimeConfig) -> serde_json::Value {
    serde_json::json!({
        "v": 1,
        "endpoint": config.endpoint,
        "region": config.region,
        "bucket": config.bucket,
        "accessKeyId": config.access_key_id.as_str(),
        "secretAccessKey": config.secret_access_key.as_str(),
        "prefix": config.prefix,
        "env": config.env,
        "salt": config.salt.as_str(),
        "iterations": config.iterations.get(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(root: &tempfile::TempDir) -> PathBuf {
        root.path().join("no-such-corpus")
    }

    #[test]
    fn a_missing_default_corpus_fails_under_ci() {
        let root = tempfile::tempdir().unwrap();
        let err = locate_upstream_corpus(None, true, missing(&root)).unwrap_err();
        assert!(err.contains("upstream corpus not found"), "{err}");
        assert!(err.contains("CI=true"), "{err}");
        assert!(err.contains("no-such-corpus"), "{err}");
    }

    #[test]
    fn a_missing_default_corpus_is_only_a_notice_outside_ci() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            locate_upstream_corpus(None, false, missing(&root)),
            Ok(UpstreamCorpus::SkipWithNotice(missing(&root)))
        );
    }

    #[test]
    fn an_explicit_corpus_that_does_not_exist_fails_everywhere() {
        let root = tempfile::tempdir().unwrap();
        for in_ci in [false, true] {
            let err = locate_upstream_corpus(Some(missing(&root)), in_ci, root.path().into())
                .unwrap_err();
            assert!(err.contains("VSYNC_UPSTREAM_CORPUS="), "{err}");
            assert!(err.contains("no-such-corpus"), "{err}");
        }
        let err =
            locate_upstream_corpus(Some(PathBuf::new()), false, root.path().into()).unwrap_err();
        assert!(err.contains("set but empty"), "{err}");
        // A file is not a corpus either.
        let file = root.path().join("corpus.json");
        std::fs::write(&file, "{}").unwrap();
        assert!(locate_upstream_corpus(Some(file), false, root.path().into()).is_err());
    }

    #[test]
    fn an_existing_corpus_is_run_explicit_first() {
        let explicit = tempfile::tempdir().unwrap();
        let default = tempfile::tempdir().unwrap();
        for in_ci in [false, true] {
            assert_eq!(
                locate_upstream_corpus(Some(explicit.path().into()), in_ci, default.path().into()),
                Ok(UpstreamCorpus::Run(explicit.path().into()))
            );
            assert_eq!(
                locate_upstream_corpus(None, in_ci, default.path().into()),
                Ok(UpstreamCorpus::Run(default.path().into()))
            );
        }
    }

    #[test]
    fn only_ci_true_means_ci() {
        assert!(is_ci(Some(OsStr::new("true"))));
        for value in [None, Some(""), Some("false"), Some("0")] {
            assert!(!is_ci(value.map(OsStr::new)), "{value:?}");
        }
    }
}
