//! `use` (§5.7): point `./.env` (or `--link`) at an env's
//! `<vault folder>/.env.<env>` with a relative symlink, so tools that read
//! `.env` see the env chosen, and show where it points.
//!
//! A regular file at the link path is never replaced (it may hold the only
//! copy of someone's settings); an existing symlink is swapped atomically.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use vsync_local::EnvConfig;

use crate::{Context, OpsError, Repo};

/// What is at the link path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing.
    Missing,
    /// A symlink, pointing here (as written in the link).
    Symlink(PathBuf),
    /// A regular file (not ours; left alone).
    RegularFile,
    /// A directory or other non-file.
    Other,
}

/// Where the link is and what it holds.
#[derive(Debug, Clone)]
pub struct LinkStatus {
    /// The link's absolute path.
    pub path: PathBuf,
    /// The link as the user thinks of it, relative to the working tree's
    /// root: `./.env`.
    pub display: String,
    /// What is there.
    pub state: LinkState,
}

/// What `use <env>` did.
#[derive(Debug, Clone)]
pub struct UseReport {
    /// The link and what it holds now.
    pub link: LinkStatus,
    /// The symlink it replaced, if any.
    pub replaced: Option<PathBuf>,
    /// Set when `.gitignore` does not cover the link's name.
    pub gitignore_warning: Option<String>,
}

fn link_path(repo: &Repo, link: Option<&Path>) -> PathBuf {
    match link {
        Some(link) if link.is_absolute() => link.to_path_buf(),
        Some(link) => repo.toplevel.join(link),
        None => repo.toplevel.join(".env"),
    }
}

fn display(repo: &Repo, path: &Path) -> String {
    match path.strip_prefix(&repo.toplevel) {
        Ok(relative) => format!("./{}", relative.display()),
        Err(_) => path.display().to_string(),
    }
}

fn state_of(path: &Path) -> Result<LinkState, OpsError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(path).map_err(|source| OpsError::Io {
                path: path.to_owned(),
                source,
            })?;
            Ok(LinkState::Symlink(target))
        }
        Ok(meta) if meta.is_file() => Ok(LinkState::RegularFile),
        Ok(_) => Ok(LinkState::Other),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(LinkState::Missing),
        Err(source) => Err(OpsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// What the link (`./.env` by default) holds now.
pub fn link_status(ctx: &Context, link: Option<&Path>) -> Result<LinkStatus, OpsError> {
    let repo = ctx.repo()?;
    let path = link_path(&repo, link);
    Ok(LinkStatus {
        display: display(&repo, &path),
        state: state_of(&path)?,
        path,
    })
}

/// Points the link at `env`'s `.env.<env>` in its vault folder.
pub fn use_env(ctx: &Context, env: &str, link: Option<&Path>) -> Result<UseReport, OpsError> {
    let repo = ctx.repo()?;
    let config = EnvConfig::load_for(&ctx.base, repo.name(), env)?;
    let target = repo
        .vault_root
        .join(config.vault_folder(env))
        .join(format!(".env.{env}"));
    if !target.is_file() {
        return Err(OpsError::NoEnvFile {
            env: env.to_owned(),
            path: target,
        });
    }
    let path = link_path(&repo, link);
    let shown = display(&repo, &path);
    let parent = path
        .parent()
        .filter(|parent| parent.is_dir())
        .ok_or_else(|| {
            OpsError::Usage(format!(
                "the folder of {shown} does not exist; create it or choose another --link"
            ))
        })?;
    let file_name = path.file_name().ok_or_else(|| {
        OpsError::Usage(format!("{shown} does not name a file; pass --link=<path>"))
    })?;
    let replaced = match state_of(&path)? {
        LinkState::Missing => None,
        LinkState::Symlink(old) => Some(old),
        LinkState::RegularFile | LinkState::Other => {
            return Err(OpsError::LinkBlocked { path: shown });
        }
    };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OpsError::Io { path, source }
    };
    let parent = fs::canonicalize(parent).map_err(io(parent))?;
    let target = fs::canonicalize(&target).map_err(io(&target))?;
    let relative = relative_path(&parent, &target);
    let path = parent.join(file_name);
    // A fresh symlink beside the link, renamed over it: readers see the old
    // link or the new one, never none.
    let temp = parent.join(format!(
        ".{}.vsync-tmp.{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_file(&temp);
    std::os::unix::fs::symlink(&relative, &temp).map_err(io(&temp))?;
    if let Err(source) = fs::rename(&temp, &path) {
        let _ = fs::remove_file(&temp);
        return Err(OpsError::Io { path, source });
    }
    let name = file_name.to_string_lossy().into_owned();
    let gitignore_warning = (!gitignore_covers(&repo.toplevel, &name)).then(|| {
        format!(
            "{name} is not covered by {}/.gitignore; add `{name}` there so the link is never committed",
            repo.toplevel.display()
        )
    });
    Ok(UseReport {
        link: LinkStatus {
            display: shown,
            state: LinkState::Symlink(relative),
            path,
        },
        replaced,
        gitignore_warning,
    })
}

/// `target` relative to the directory `from` (both absolute and
/// canonical): the shared prefix dropped, `..` for the rest of `from`.
fn relative_path(from: &Path, target: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = target.components().collect();
    let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in shared..from.len() {
        relative.push("..");
    }
    for component in &to[shared..] {
        relative.push(component);
    }
    relative
}

/// Whether a line of the root `.gitignore` matches `name` (upstream
/// recognises exact names and `*` patterns such as `.env*`, `*.env`, `*`;
/// leading and trailing `/` are ignored).
fn gitignore_covers(toplevel: &Path, name: &str) -> bool {
    let Ok(text) = fs::read_to_string(toplevel.join(".gitignore")) else {
        return false;
    };
    text.lines()
        .map(|line| line.trim().trim_matches('/'))
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .any(|pattern| glob_matches(pattern, name))
}

/// `*` matches any run of characters (`**` too); everything else literally.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let (last, middle) = parts.split_last().expect("split yields at least one part");
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_then_descend() {
        assert_eq!(
            relative_path(Path::new("/r"), Path::new("/r/infra/vault/dev/.env.dev")),
            Path::new("infra/vault/dev/.env.dev")
        );
        assert_eq!(
            relative_path(Path::new("/r/app/web"), Path::new("/r/infra/.env.dev")),
            Path::new("../../infra/.env.dev")
        );
        assert_eq!(
            relative_path(Path::new("/wt/feature"), Path::new("/main/infra/.env.dev")),
            Path::new("../../main/infra/.env.dev")
        );
    }

    #[test]
    fn gitignore_patterns_upstream_recognises() {
        for pattern in [
            ".env", ".env*", "*.env", "*", "**", "/.env", ".env/", "*env*",
        ] {
            assert!(glob_matches(pattern.trim_matches('/'), ".env"), "{pattern}");
        }
        for pattern in [".env.*", ".envrc", "env", "*.txt", ".e*x"] {
            assert!(!glob_matches(pattern, ".env"), "{pattern}");
        }
        assert!(glob_matches(".env.*", ".env.local"));
        let tmp = tempfile::tempdir().unwrap();
        assert!(!gitignore_covers(tmp.path(), ".env"));
        fs::write(
            tmp.path().join(".gitignore"),
            "# secrets\n!.env\ntarget/\n/.env*\n",
        )
        .unwrap();
        assert!(gitignore_covers(tmp.path(), ".env"));
        assert!(!gitignore_covers(tmp.path(), "app.env"));
    }
}
