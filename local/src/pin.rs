//! The `.vsync` identity pin at the git toplevel (mode 0644, committed): a
//! `.env`-style file whose `repo=` line fixes the repo name, read and
//! written exactly as upstream v0.16 does.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::identity::{NameError, normalize};

/// The pin's file name.
pub const PIN_FILE: &str = ".vsync";

/// The header written above `repo=`: upstream's first line, and a link to
/// this project's docs (upstream's links to its own site; the comment lines
/// are not part of the format).
pub const PIN_HEADER: &str = "# .vsync — vsync identity pin (commit this file)\n# Docs: https://github.com/vsync-rs/vsync#the-vsync-pin\n";

/// Why a pin could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}; check the file's permissions")]
    Io {
        /// The pin file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A line is not `key=value`, a comment or blank.
    #[error(
        "{path} line {line} is malformed ({reason}); the file holds `key=value` lines and `#` comments — fix or delete it"
    )]
    Malformed {
        /// The pin file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// No `repo=` line.
    #[error("{path} has no `repo=` line; add `repo=<name>` or delete the file")]
    MissingRepo {
        /// The pin file.
        path: PathBuf,
    },
    /// The `repo=` value does not survive normalisation.
    #[error("{path}: `repo=` {problem}; set `repo=<name>` using letters, digits, `.`, `_`")]
    BadRepo {
        /// The pin file.
        path: PathBuf,
        /// Why the name is unusable.
        problem: NameError,
    },
    /// A pin with another repo exists (upstream's `VsyncFileClobberError`).
    #[error(
        "{path} pins repo {pinned:?} but {requested:?} was requested; drop --repo, or edit .vsync if the repo really was renamed"
    )]
    Clobber {
        /// The pin file.
        path: PathBuf,
        /// The repo in the file.
        pinned: String,
        /// The repo asked for.
        requested: String,
    },
}

/// `<toplevel>/.vsync`.
pub fn pin_path(toplevel: &Path) -> PathBuf {
    toplevel.join(PIN_FILE)
}

fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses pin text; returns the normalised repo. `path` names the file in
/// errors.
pub fn parse(text: &str, path: &Path) -> Result<String, PinError> {
    let mut repo = None;
    for (index, line) in text.lines().enumerate() {
        let malformed = |reason| PinError::Malformed {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        };
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(malformed("no `=`"));
        };
        let key = key.trim();
        if !is_key(key) {
            return Err(malformed("the key must match [A-Za-z_][A-Za-z0-9_]*"));
        }
        if key == "repo" {
            repo = Some(value.trim_end().to_owned());
        }
    }
    let raw = repo.ok_or_else(|| PinError::MissingRepo {
        path: path.to_path_buf(),
    })?;
    match normalize(&raw) {
        Ok(Some(name)) => Ok(name),
        Ok(None) => Err(PinError::BadRepo {
            path: path.to_path_buf(),
            problem: NameError::Empty,
        }),
        Err(problem) => Err(PinError::BadRepo {
            path: path.to_path_buf(),
            problem,
        }),
    }
}

/// Reads `<toplevel>/.vsync`; `None` when there is no pin.
pub fn read(toplevel: &Path) -> Result<Option<String>, PinError> {
    let path = pin_path(toplevel);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path).map(Some),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PinError::Io { path, source }),
    }
}

/// The exact content upstream writes for `repo`.
pub fn render(repo: &str) -> String {
    format!("{PIN_HEADER}repo={repo}\n")
}

/// What [`write()`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The pin was created (the user should commit it).
    Created,
    /// A pin with the same repo already existed; nothing was written.
    Unchanged,
}

/// Writes `<toplevel>/.vsync` pinning `repo` (mode 0644). An existing pin
/// with the same repo is left alone; one with another repo is a
/// [`PinError::Clobber`].
pub fn write(toplevel: &Path, repo: &str) -> Result<WriteOutcome, PinError> {
    let path = pin_path(toplevel);
    let io_err = |source| PinError::Io {
        path: path.clone(),
        source,
    };
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&path)
    {
        Ok(mut file) => {
            file.set_permissions(fs::Permissions::from_mode(0o644))
                .and_then(|()| file.write_all(render(repo).as_bytes()))
                .map_err(io_err)?;
            Ok(WriteOutcome::Created)
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let pinned = read(toplevel)?.unwrap_or_default();
            if pinned == repo {
                Ok(WriteOutcome::Unchanged)
            } else {
                Err(PinError::Clobber {
                    path,
                    pinned,
                    requested: repo.to_owned(),
                })
            }
        }
        Err(err) => Err(io_err(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::mode;

    #[test]
    fn writes_upstream_bytes_with_mode_0644() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read(tmp.path()).unwrap(), None);
        assert_eq!(
            write(tmp.path(), "acme_web").unwrap(),
            WriteOutcome::Created
        );
        let path = tmp.path().join(".vsync");
        assert_eq!(
            fs::read(&path).unwrap(),
            "# .vsync — vsync identity pin (commit this file)\n# Docs: https://github.com/vsync-rs/vsync#the-vsync-pin\nrepo=acme_web\n".as_bytes()
        );
        assert_eq!(mode(&path), 0o644);
        assert_eq!(read(tmp.path()).unwrap().as_deref(), Some("acme_web"));
    }

    #[test]
    fn same_repo_is_a_no_op_and_another_is_a_clobber() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(".vsync");
        fs::write(&path, "repo=acme_web   \n").unwrap();
        assert_eq!(
            write(tmp.path(), "acme_web").unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "repo=acme_web   \n");
        let err = write(tmp.path(), "other").unwrap_err();
        assert!(
            matches!(&err, PinError::Clobber { pinned, requested, .. } if pinned == "acme_web" && requested == "other")
        );
        assert!(err.to_string().contains("drop --repo"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "repo=acme_web   \n");
    }

    #[test]
    fn parses_upstream_rules() {
        let p = Path::new(".vsync");
        let text = "  # indented comment\n\nother=1\n_x = y\nrepo=first\nrepo=Acme/Web-App  \t\n";
        assert_eq!(parse(text, p).unwrap(), "acme_web_app");
        // Leading whitespace of the value is kept, then normalised away.
        assert_eq!(parse("repo=  acme\n", p).unwrap(), "acme");
        // An `=` inside the value belongs to the value.
        assert_eq!(parse("repo=a=b\n", p).unwrap(), "ab");
        // Inline comments are not special.
        assert_eq!(parse("repo=web # note\n", p).unwrap(), "webnote");
        assert_eq!(parse("x=1\r\nrepo=web\r\n", p).unwrap(), "web");
    }

    #[test]
    fn malformed_pins_are_typed_errors() {
        let p = Path::new("/r/.vsync");
        assert!(matches!(
            parse("repo=a\njust words\n", p),
            Err(PinError::Malformed { line: 2, .. })
        ));
        assert!(matches!(
            parse("1bad=x\nrepo=a\n", p),
            Err(PinError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            parse("# only\nother=1\n", p),
            Err(PinError::MissingRepo { .. })
        ));
        assert!(matches!(
            parse("repo=!!!\n", p),
            Err(PinError::BadRepo {
                problem: NameError::Empty,
                ..
            })
        ));
        let long = format!("repo={}\n", "a".repeat(101));
        let err = parse(&long, p).unwrap_err();
        assert!(matches!(
            err,
            PinError::BadRepo {
                problem: NameError::TooLong(101),
                ..
            }
        ));
        assert!(err.to_string().contains("/r/.vsync"), "{err}");
    }
}
