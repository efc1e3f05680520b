//! GitHub Actions secrets (`gh`): repository, environment or organisation
//! secrets, sealed with the target's public key.
//!
//! Token: `tokenFile` (`--gh-token-file`), else `GITHUB_TOKEN`, else
//! `GH_TOKEN`, else the GitHub CLI's login (`gh auth token`, `gh` found in
//! an absolute directory of `PATH`). `GITHUB_API_URL`
//! (set by GitHub Actions; GitHub Enterprise's `https://<host>/api/v3`)
//! moves the API.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use vsync_crypto::Zeroizing;
use vsync_engine::sink::Sink;
use vsync_sinks::github::GithubSink;

use crate::{
    CredentialSource, Credentials, Platform, PlatformError, Saved, Setting, SettingKind,
    SinkRequest, SinkSide, parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "github-actions",
    short: "gh",
    about: "GitHub Actions secrets",
    sink: Some(&SINK),
    source: None,
};

/// What syncing to it takes.
static SINK: SinkSide = SinkSide {
    settings: &[
        Setting {
            field: "repo",
            flag: "gh-repo",
            saved: Saved::Required,
            default: None,
            kind: SettingKind::Text,
            help: "GitHub repository `owner/name` (saved for next time)",
        },
        Setting {
            field: "scope",
            flag: "gh-scope",
            saved: Saved::No,
            default: Some("environment"),
            kind: SettingKind::Text,
            help: "Which GitHub secrets: environment (named after the env), repository, or organization (with --gh-org)",
        },
        Setting {
            field: "org",
            flag: "gh-org",
            saved: Saved::No,
            default: None,
            kind: SettingKind::Text,
            help: "The GitHub organisation, for --gh-scope=organization",
        },
        Setting {
            field: "environment",
            flag: "gh-environment",
            saved: Saved::No,
            default: None,
            kind: SettingKind::Text,
            help: "The GitHub environment, when not named after the vsync env",
        },
        Setting {
            field: "tokenFile",
            flag: "gh-token-file",
            saved: Saved::No,
            default: None,
            kind: SettingKind::Text,
            help: "Read the GitHub token from this file (`-`: standard input) instead of GITHUB_TOKEN / GH_TOKEN / `gh auth token`",
        },
    ],
    credentials: "GITHUB_TOKEN or GH_TOKEN (or `gh auth login`); GITHUB_API_URL for GitHub Enterprise",
    check: |routing| parse_routing::<GithubRouting>(PLATFORM.short, routing).map(drop),
    build: sink,
    credential_source,
};

/// `sync.gh` plus this run's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GithubRouting {
    /// `owner/name` (upstream's saved field).
    repo: Option<String>,
    #[serde(default)]
    scope: Scope,
    org: Option<String>,
    environment: Option<String>,
    token_file: Option<String>,
}

/// Which secrets a sync writes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Scope {
    /// Environment secrets of the environment named after the vsync env
    /// (upstream's default), or the one given.
    #[default]
    Environment,
    /// Repository secrets.
    Repository,
    /// Organisation secrets.
    Organization,
}

fn sink(request: &SinkRequest<'_>) -> Result<Box<dyn Sink>, PlatformError> {
    let routing: GithubRouting = parse_routing(PLATFORM.short, request.routing)?;
    let mut builder = GithubSink::builder();
    if let Some(url) = request.var("GITHUB_API_URL") {
        builder = builder.base_url(url);
    }
    let token = TokenSource::find(&routing, request)
        .ok_or_else(no_token)?
        .read(request)?;
    builder = builder.token(token.as_str());
    builder = match routing.scope {
        Scope::Organization => {
            let org = routing.org.ok_or(PlatformError::MissingRouting {
                what: "GitHub organisation",
                flag: "--gh-org=<name> with --gh-scope=organization",
            })?;
            builder.organization(org)
        }
        scope => {
            let repo = routing.repo.ok_or(PlatformError::MissingRouting {
                what: "GitHub repository",
                flag: "--gh-repo=<owner/name>",
            })?;
            let builder = builder.repository(repo);
            match scope {
                Scope::Environment => {
                    builder.environment(routing.environment.as_deref().unwrap_or(request.env))
                }
                _ => builder,
            }
        }
    };
    Ok(Box::new(builder.build()?))
}

fn credential_source(request: &SinkRequest<'_>) -> Result<CredentialSource, PlatformError> {
    let routing: GithubRouting = parse_routing(PLATFORM.short, request.routing)?;
    let source = TokenSource::find(&routing, request).ok_or_else(no_token)?;
    Ok(CredentialSource::Found(source.describe()))
}

fn no_token() -> PlatformError {
    PlatformError::Setup(
        "GitHub: no token; set GITHUB_TOKEN or GH_TOKEN, pass --gh-token-file, or log in with `gh auth login`".into(),
    )
}

/// Where the token comes from, first found first used: `tokenFile`, then
/// `GITHUB_TOKEN`, `GH_TOKEN`, then the GitHub CLI's login. Decided without
/// reading the token, so building the sink and naming the source
/// (`vsync doctor`) take the same one.
enum TokenSource<'a> {
    /// The file (or `-`, standard input) `tokenFile` names.
    File(&'a str),
    /// A variable of the environment.
    Variable(&'static str),
    /// `gh auth token` for `host`, run as `program` (found on `PATH`).
    GhCli { program: PathBuf, host: String },
}

impl<'a> TokenSource<'a> {
    fn find(routing: &'a GithubRouting, request: &SinkRequest<'_>) -> Option<TokenSource<'a>> {
        if let Some(path) = &routing.token_file {
            return Some(TokenSource::File(path));
        }
        if let Some(name) = ["GITHUB_TOKEN", "GH_TOKEN"]
            .into_iter()
            .find(|name| request.var(name).is_some())
        {
            return Some(TokenSource::Variable(name));
        }
        let host = gh_host(
            request
                .var("GITHUB_API_URL")
                .as_deref()
                .unwrap_or("https://api.github.com"),
        )?;
        let program = find_gh(&request.var("PATH")?)?;
        Some(TokenSource::GhCli { program, host })
    }

    /// The token; a `gh` that holds no login for the host gives none.
    fn read(&self, request: &SinkRequest<'_>) -> Result<Zeroizing<String>, PlatformError> {
        match self {
            TokenSource::File(path) => crate::read_token_file(path),
            TokenSource::Variable(name) => request.secret(name).ok_or_else(no_token),
            TokenSource::GhCli { program, host } => {
                gh_cli_token(program, host, request.environment).ok_or_else(no_token)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            TokenSource::File("-") => "standard input (--gh-token-file=-)".to_owned(),
            TokenSource::File(path) => format!("the token file {path} (--gh-token-file)"),
            TokenSource::Variable(name) => (*name).to_owned(),
            TokenSource::GhCli { program, host } => format!(
                "the gh CLI's login to {host} (`gh auth token`, {})",
                program.display()
            ),
        }
    }
}

/// The host whose login `gh` holds for the API at `api_url`.
fn gh_host(api_url: &str) -> Option<String> {
    let host = api_url
        .split_once("://")
        .map_or(api_url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .filter(|host| !host.is_empty())?;
    // GitHub.com's API lives on its own host; GitHub Enterprise Server's
    // under /api/v3 of the instance's host.
    Some(
        if host == "api.github.com" {
            "github.com"
        } else {
            host
        }
        .to_owned(),
    )
}

/// `gh` in an absolute directory of `path` (`PATH`'s value).
fn find_gh(path: &str) -> Option<PathBuf> {
    let name = if cfg!(windows) { "gh.exe" } else { "gh" };
    vsync_engine::environment::find_program(path, name)
}

/// The variables `gh auth token` reads to find its stored login.
const GH_CLI_ENVIRONMENT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "GH_CONFIG_DIR",
    "GH_HOST",
];

/// The token the GitHub CLI (`program`) holds for `host` (`gh auth
/// token`), as upstream's `gh secret set` would have used; `None` when it
/// cannot run or is not logged in to that host.
fn gh_cli_token(
    program: &Path,
    host: &str,
    environment: crate::Environment<'_>,
) -> Option<Zeroizing<String>> {
    let mut command = std::process::Command::new(program);
    // `gh` gets what it needs to find its login (its config and the OS
    // keychain's session bus), never the cloud credentials vsync was given.
    command.env_clear();
    for name in GH_CLI_ENVIRONMENT {
        if let Some(value) = environment(name) {
            command.env(name, value);
        }
    }
    let output = command
        .args(["auth", "token", "--hostname", host])
        .env("GH_PROMPT_DISABLED", "1")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return None;
    }
    crate::trimmed_token(std::str::from_utf8(&stdout).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Routing;
    use crate::test_support::{environment, found};

    fn request<'a>(routing: &'a Routing, environment: crate::Environment<'a>) -> SinkRequest<'a> {
        SinkRequest {
            env: "dev",
            routing,
            environment,
        }
    }

    fn error(routing: serde_json::Value) -> String {
        let routing = routing.as_object().unwrap().clone();
        let token = |name: &str| (name == "GITHUB_TOKEN").then(|| "ghp_x".to_owned());
        match sink(&request(&routing, &token)) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("expected a refusal"),
        }
    }

    #[test]
    fn missing_routing_names_the_flag() {
        assert!(error(serde_json::json!({})).contains("--gh-repo"));
        let message = error(serde_json::json!({"scope": "organization"}));
        assert!(message.contains("--gh-org"), "{message}");
        let message = error(serde_json::json!({"repo": "a/b", "scope": "team"}));
        assert!(message.contains("unknown variant `team`"), "{message}");
        assert!(message.contains("organization"), "{message}");
    }

    #[tokio::test]
    async fn a_repository_sink_is_built_from_the_routing() {
        let routing = serde_json::json!({"repo": "acme/api"});
        let routing = routing.as_object().unwrap().clone();
        let token = |name: &str| (name == "GH_TOKEN").then(|| "ghp_x".to_owned());
        let sink = sink(&request(&routing, &token)).unwrap();
        assert!(sink.target().contains("acme/api"), "{}", sink.target());
        assert!(sink.target().contains("dev"), "{}", sink.target());
    }

    fn source_of(
        routing: serde_json::Value,
        vars: &[(&str, &str)],
    ) -> Result<CredentialSource, PlatformError> {
        let routing = routing.as_object().unwrap().clone();
        let environment = environment(vars);
        credential_source(&request(&routing, &environment))
    }

    /// A `gh` in `dir` that runs `script`.
    #[cfg(unix)]
    fn fake_gh(dir: &Path, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let gh = dir.join("gh");
        std::fs::write(&gh, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn the_token_source_is_named_in_the_order_the_sink_takes_it() {
        let repo = serde_json::json!({"repo": "acme/api"});
        let values = ["ghp_first", "ghp_second"];
        let both = [("GITHUB_TOKEN", values[0]), ("GH_TOKEN", values[1])];
        assert_eq!(
            found(source_of(repo.clone(), &both), &values),
            "GITHUB_TOKEN"
        );
        // An empty variable is unset.
        let empty = [("GITHUB_TOKEN", ""), ("GH_TOKEN", values[1])];
        assert_eq!(found(source_of(repo.clone(), &empty), &values), "GH_TOKEN");
        let file = serde_json::json!({"repo": "acme/api", "tokenFile": "/run/secrets/gh"});
        assert_eq!(
            found(source_of(file, &both), &values),
            "the token file /run/secrets/gh (--gh-token-file)"
        );

        let error = source_of(repo, &[("PATH", "/nonexistent")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("GITHUB_TOKEN"), "{error}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_gh_cli_is_named_without_running_it_and_run_when_building() {
        let bin = tempfile::tempdir().unwrap();
        let ran = bin.path().join("ran");
        fake_gh(
            bin.path(),
            &format!(": > '{}'; echo gho_from_cli", ran.display()),
        );
        let dir = bin.path().display().to_string();
        let path = format!("relative:{dir}");
        let repo = serde_json::json!({"repo": "acme/api"});
        let source = found(source_of(repo.clone(), &[("PATH", &path)]), &["gho_"]);
        assert!(
            source.starts_with("the gh CLI's login to github.com (`gh auth token`"),
            "{source}"
        );
        let enterprise = [
            ("PATH", path.as_str()),
            ("GITHUB_API_URL", "https://ghe.example:8443/api/v3"),
        ];
        let source = found(source_of(repo.clone(), &enterprise), &["gho_"]);
        assert!(source.contains("login to ghe.example "), "{source}");
        assert!(!ran.exists(), "naming the source ran gh");

        // Building runs the `gh` that was found, and only an absolute one.
        let routing = repo.as_object().unwrap().clone();
        let absolute = [("PATH", dir.as_str())];
        let absolute = environment(&absolute);
        assert!(sink(&request(&routing, &absolute)).is_ok());
        assert!(ran.exists());
        assert!(source_of(repo, &[("PATH", "relative")]).is_err());

        // A gh without a login gives no token.
        fake_gh(bin.path(), "exit 1");
        let error = match sink(&request(&routing, &absolute)) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("expected a refusal"),
        };
        assert!(error.contains("gh auth login"), "{error}");
    }
}
