//! Which repo a working tree belongs to (upstream v0.16, §5.1): the git
//! toplevel, the vault root (the main worktree's toplevel), remote URL
//! parsing, name normalisation, and the `--repo` → `.vsync` → origin chain.
//!
//! Git is asked through the `git` binary (`git -C <dir> …`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pin::{self, PinError};

/// Longest repo name [`normalize`] accepts.
pub const MAX_NAME_LEN: usize = 100;

/// Why a name cannot be a repo name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing is left after normalisation.
    #[error("is empty once normalised (only letters, digits, `.`, `_`, `-` and `/` count)")]
    Empty,
    /// Longer than [`MAX_NAME_LEN`] after normalisation.
    #[error("is {0} characters once normalised, at most 100 are allowed")]
    TooLong(usize),
}

/// Where the repo name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// The `--repo` flag.
    Flag,
    /// The `.vsync` pin at this path.
    Pin(PathBuf),
    /// The `remote.origin.url` shown.
    Origin(String),
}

/// A resolved repo name and its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoIdentity {
    /// The normalised repo name (`acme_web`).
    pub name: String,
    /// Where it came from.
    pub source: RepoSource,
}

/// Why the repo could not be identified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not inside a git working tree (upstream's `NotInGitRepoError`).
    #[error(
        "{0} is not inside a git repository; run vsync from your project's checkout (or `git init` it first)"
    )]
    NotInGitRepo(PathBuf),
    /// No flag, no pin, no usable origin (`RepoIdentityUnresolvedError`).
    #[error(
        "cannot tell which repo {0} is: no --repo flag, no .vsync pin and no usable remote.origin.url; pass --repo=<name> (vsync then pins it in .vsync) or `git remote add origin <url>`"
    )]
    RepoIdentityUnresolved(PathBuf),
    /// `--repo` disagrees with the `.vsync` pin (`VsyncFileClobberError`).
    #[error(
        "{path} pins repo {pinned:?} but --repo asks for {requested:?}; drop --repo, or edit .vsync if the repo really was renamed"
    )]
    VsyncFileClobber {
        /// The pin file.
        path: PathBuf,
        /// The repo in the pin.
        pinned: String,
        /// The repo asked for.
        requested: String,
    },
    /// The `--repo` value cannot be a repo name.
    #[error("--repo={given:?} {problem}; pass a name like `acme_web`")]
    InvalidFlag {
        /// The flag value.
        given: String,
        /// Why.
        problem: NameError,
    },
    /// The `.vsync` pin is unreadable or malformed.
    #[error(transparent)]
    Pin(PinError),
    /// The `git` binary could not be run.
    #[error("could not run `git` ({0}); install git and make sure it is on PATH")]
    GitUnavailable(String),
}

impl From<PinError> for IdentityError {
    fn from(err: PinError) -> Self {
        match err {
            PinError::Clobber {
                path,
                pinned,
                requested,
            } => IdentityError::VsyncFileClobber {
                path,
                pinned,
                requested,
            },
            other => IdentityError::Pin(other),
        }
    }
}

/// Upstream's `normalize`: trim, lowercase, each run of `/` or `-` becomes
/// `_`, characters outside `[a-z0-9._]` are dropped. `Ok(None)` when
/// nothing is left; an error beyond [`MAX_NAME_LEN`] characters.
pub fn normalize(raw: &str) -> Result<Option<String>, NameError> {
    let mut name = String::new();
    let mut in_run = false;
    for c in raw.trim().to_lowercase().chars() {
        if c == '/' || c == '-' {
            if !in_run {
                name.push('_');
            }
            in_run = true;
            continue;
        }
        in_run = false;
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_' {
            name.push(c);
        }
    }
    match name.len() {
        0 => Ok(None),
        len if len > MAX_NAME_LEN => Err(NameError::TooLong(len)),
        _ => Ok(Some(name)),
    }
}

/// Strips a trailing `.git` or `.git/`.
fn strip_git_suffix(path: &str) -> &str {
    path.strip_suffix(".git/")
        .or_else(|| path.strip_suffix(".git"))
        .unwrap_or(path)
}

/// Upstream's `parseRemoteUrl`: the repo path of a git remote URL, e.g.
/// `Acme/Web` for `git@github.com:Acme/Web.git`; `None` when the URL has no
/// recognisable shape.
pub fn parse_remote_url(url: &str) -> Option<String> {
    let url = url.trim();
    let path = if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return None;
        }
        if scheme.eq_ignore_ascii_case("file") {
            let last = strip_git_suffix(rest)
                .trim_end_matches('/')
                .rsplit('/')
                .next()?;
            return (!last.is_empty()).then(|| strip_git_suffix(last).to_owned());
        }
        // `[creds@]host[:port]` ends at the first `/`.
        rest.split_once('/')?.1
    } else {
        // SSH shorthand `user@host:path`.
        let (user, rest) = url.split_once('@')?;
        let (host, path) = rest.split_once(':')?;
        if user.is_empty() || host.is_empty() || user.contains(['/', ':']) || host.contains('/') {
            return None;
        }
        path
    };
    let path = strip_git_suffix(path);
    (!path.is_empty()).then(|| path.to_owned())
}

/// Runs `git -C <dir> <args>`; `Ok(None)` when git exits non-zero.
fn git(dir: &Path, args: &[&str]) -> Result<Option<String>, IdentityError> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(|err| IdentityError::GitUnavailable(err.to_string()))?;
    if !output.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
}

/// The git toplevel of the working tree containing `dir`
/// (`git rev-parse --show-toplevel`).
pub fn toplevel(dir: &Path) -> Result<PathBuf, IdentityError> {
    match git(dir, &["rev-parse", "--show-toplevel"])? {
        Some(top) if !top.is_empty() => Ok(PathBuf::from(top)),
        _ => Err(IdentityError::NotInGitRepo(dir.to_path_buf())),
    }
}

/// Where a working tree's vsync files live: the git toplevel (where `.vsync`
/// is) and the vault root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The toplevel of the working tree `dir` is in.
    pub toplevel: PathBuf,
    /// The toplevel of the **main** worktree, so linked worktrees share one
    /// plaintext vault: the parent of the absolute `--git-common-dir` when
    /// that ends in `.git`, else the toplevel.
    pub vault_root: PathBuf,
}

/// The [`Roots`] of the working tree `dir` is in, from one `git` process
/// (each one costs a command about 1.5 ms).
pub fn roots(dir: &Path) -> Result<Roots, IdentityError> {
    let answer = git(
        dir,
        &[
            "rev-parse",
            "--show-toplevel",
            "--path-format=absolute",
            "--git-common-dir",
        ],
    )?
    .unwrap_or_default();
    let mut lines = answer.lines();
    let toplevel = match lines.next() {
        Some(top) if !top.is_empty() => PathBuf::from(top),
        _ => return Err(IdentityError::NotInGitRepo(dir.to_path_buf())),
    };
    let vault_root = lines
        .next()
        .map(PathBuf::from)
        .filter(|common| common.file_name().is_some_and(|name| name == ".git"))
        .and_then(|common| common.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| toplevel.clone());
    Ok(Roots {
        toplevel,
        vault_root,
    })
}

/// `git config --get remote.origin.url` of the toplevel, if set, with any
/// credentials it embeds removed (see [`without_userinfo`]): the URL is
/// shown by `status` and carried in errors, and only its path names the repo.
pub fn origin_url(toplevel: &Path) -> Result<Option<String>, IdentityError> {
    Ok(git(toplevel, &["config", "--get", "remote.origin.url"])?
        .filter(|url| !url.is_empty())
        .map(|url| without_userinfo(&url)))
}

/// `scheme://user:token@host/path` without `user:token@` (CI clones carry
/// `https://x-access-token:ghp_…@github.com/…`). URLs without `://` (the
/// scp-like `git@host:owner/repo`) name only a login, never a secret, and
/// are returned as they are.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => url.to_owned(),
    }
}

/// The repo the origin URL names, normalised; `None` when unparseable.
pub fn name_from_origin(url: &str) -> Option<String> {
    normalize(&parse_remote_url(url)?).ok().flatten()
}

/// Resolves the repo of the working tree at `toplevel`: `--repo` (`flag`,
/// normalised; a `.vsync` pinning another repo is a clobber), else the
/// `.vsync` pin, else the origin URL.
pub fn resolve(flag: Option<&str>, toplevel: &Path) -> Result<RepoIdentity, IdentityError> {
    let pinned = pin::read(toplevel)?;
    if let Some(given) = flag {
        let name = match normalize(given) {
            Ok(Some(name)) => name,
            Ok(None) => {
                return Err(IdentityError::InvalidFlag {
                    given: given.to_owned(),
                    problem: NameError::Empty,
                });
            }
            Err(problem) => {
                return Err(IdentityError::InvalidFlag {
                    given: given.to_owned(),
                    problem,
                });
            }
        };
        if let Some(pinned) = pinned
            && pinned != name
        {
            return Err(IdentityError::VsyncFileClobber {
                path: pin::pin_path(toplevel),
                pinned,
                requested: name,
            });
        }
        return Ok(RepoIdentity {
            name,
            source: RepoSource::Flag,
        });
    }
    if let Some(name) = pinned {
        return Ok(RepoIdentity {
            name,
            source: RepoSource::Pin(pin::pin_path(toplevel)),
        });
    }
    if let Some(url) = origin_url(toplevel)?
        && let Some(name) = name_from_origin(&url)
    {
        return Ok(RepoIdentity {
            name,
            source: RepoSource::Origin(url),
        });
    }
    Err(IdentityError::RepoIdentityUnresolved(
        toplevel.to_path_buf(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn origin_urls_lose_their_credentials() {
        assert_eq!(
            without_userinfo("https://x-access-token:ghp_abc123@github.com/acme/web.git"),
            "https://github.com/acme/web.git"
        );
        assert_eq!(
            without_userinfo("https://user@pass@host.example:8443/a@b?x=@#@"),
            "https://host.example:8443/a@b?x=@#@"
        );
        assert_eq!(
            without_userinfo("https://github.com/acme/web"),
            "https://github.com/acme/web"
        );
        assert_eq!(
            without_userinfo("git@github.com:acme/web.git"),
            "git@github.com:acme/web.git"
        );
        assert_eq!(
            name_from_origin(&without_userinfo("https://t:s@github.com/Acme/Web.git")).as_deref(),
            Some("acme_web")
        );
    }

    #[test]
    fn normalize_examples() {
        let n = |raw: &str| normalize(raw).unwrap();
        assert_eq!(n("Acme/Web").as_deref(), Some("acme_web"));
        assert_eq!(n("  acme-web ").as_deref(), Some("acme_web"));
        assert_eq!(n("group/sub/repo").as_deref(), Some("group_sub_repo"));
        assert_eq!(n("a//--/b").as_deref(), Some("a_b"));
        assert_eq!(n("My Repo.v2!").as_deref(), Some("myrepo.v2"));
        assert_eq!(n("a - b").as_deref(), Some("a_b"));
        assert_eq!(n("a- -b").as_deref(), Some("a__b"));
        assert_eq!(n("!!!"), None);
        assert_eq!(n("  "), None);
        assert_eq!(n(&"a".repeat(100)).map(|s| s.len()), Some(100));
        assert_eq!(normalize(&"a".repeat(101)), Err(NameError::TooLong(101)));
    }

    #[test]
    fn remote_url_shapes() {
        let cases = [
            ("git@github.com:Acme/Web.git", Some("Acme/Web")),
            ("  git@github.com:Acme/Web.git\n", Some("Acme/Web")),
            ("https://github.com/acme/web.git", Some("acme/web")),
            ("https://github.com/acme/web", Some("acme/web")),
            (
                "https://user:tok@github.com/acme/web.git/",
                Some("acme/web"),
            ),
            (
                "ssh://git@gitlab.com:2222/group/sub/repo.git",
                Some("group/sub/repo"),
            ),
            ("git+ssh://git@host/x/y", Some("x/y")),
            ("file:///srv/git/web.git", Some("web")),
            ("file:///srv/git/web/", Some("web")),
            ("https://github.com", None),
            ("https://github.com/", None),
            ("/local/path/repo.git", None),
            ("", None),
            ("github.com:acme/web", None),
        ];
        for (url, want) in cases {
            assert_eq!(parse_remote_url(url).as_deref(), want, "{url}");
        }
        assert_eq!(
            name_from_origin("git@github.com:Acme/Web.git").as_deref(),
            Some("acme_web")
        );
        assert_eq!(
            name_from_origin("https://gitlab.com/Group/Sub-Group/Repo.git").as_deref(),
            Some("group_sub_group_repo")
        );
    }

    fn run(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    }

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().canonicalize().unwrap().join("work");
        fs::create_dir(&top).unwrap();
        run(&top, &["init", "-q", "-b", "main"]);
        (tmp, top)
    }

    #[test]
    fn chain_flag_pin_origin_unresolved() {
        let (_tmp, top) = repo();
        fs::create_dir(top.join("sub")).unwrap();
        assert_eq!(toplevel(&top.join("sub")).unwrap(), top);

        let err = resolve(None, &top).unwrap_err();
        assert!(
            matches!(err, IdentityError::RepoIdentityUnresolved(_)),
            "{err}"
        );
        assert!(err.to_string().contains("--repo=<name>"));

        run(
            &top,
            &["remote", "add", "origin", "git@github.com:Acme/Web.git"],
        );
        let id = resolve(None, &top).unwrap();
        assert_eq!(id.name, "acme_web");
        assert_eq!(
            id.source,
            RepoSource::Origin("git@github.com:Acme/Web.git".to_owned())
        );

        let id = resolve(Some("Other-Name"), &top).unwrap();
        assert_eq!(
            id,
            RepoIdentity {
                name: "other_name".to_owned(),
                source: RepoSource::Flag
            }
        );

        pin::write(&top, "pinned_name").unwrap();
        let id = resolve(None, &top).unwrap();
        assert_eq!(id.name, "pinned_name");
        assert_eq!(id.source, RepoSource::Pin(top.join(".vsync")));
        // A flag that normalises to the pinned name is fine; another clobbers.
        assert_eq!(
            resolve(Some("Pinned-Name"), &top).unwrap().source,
            RepoSource::Flag
        );
        let err = resolve(Some("else"), &top).unwrap_err();
        assert!(
            matches!(err, IdentityError::VsyncFileClobber { .. }),
            "{err}"
        );

        assert!(matches!(
            resolve(Some("???"), &top),
            Err(IdentityError::InvalidFlag {
                problem: NameError::Empty,
                ..
            })
        ));
    }

    #[test]
    fn unparseable_origin_is_unresolved() {
        let (_tmp, top) = repo();
        run(&top, &["remote", "add", "origin", "/some/local/path"]);
        assert!(matches!(
            resolve(None, &top),
            Err(IdentityError::RepoIdentityUnresolved(_))
        ));
    }

    #[test]
    fn outside_git_is_not_in_git_repo() {
        let tmp = tempfile::tempdir().unwrap();
        let err = toplevel(tmp.path()).unwrap_err();
        assert!(matches!(err, IdentityError::NotInGitRepo(_)), "{err}");
        assert!(matches!(
            roots(tmp.path()),
            Err(IdentityError::NotInGitRepo(_))
        ));
    }

    #[test]
    fn vault_root_is_the_main_worktree() {
        let (tmp, top) = repo();
        fs::write(top.join("f"), "x").unwrap();
        run(&top, &["add", "f"]);
        run(
            &top,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "init",
            ],
        );
        assert_eq!(roots(&top).unwrap().vault_root, top);
        let linked = tmp.path().canonicalize().unwrap().join("linked");
        run(&top, &["worktree", "add", "-q", linked.to_str().unwrap()]);
        assert_eq!(toplevel(&linked).unwrap(), linked);
        assert_eq!(
            roots(&linked).unwrap(),
            Roots {
                toplevel: linked.clone(),
                vault_root: top.clone(),
            }
        );
    }
}
