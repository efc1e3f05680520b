//! GitHub Actions secrets (`gh`): repository, environment or organisation
//! secrets, sealed with the target's public key.
//!
//! Token: `tokenFile` (`--gh-token-file`), else `GITHUB_TOKEN`, else
//! `GH_TOKEN`, else the GitHub CLI's (`gh auth token`). `GITHUB_API_URL`
//! (set by GitHub Actions; GitHub Enterprise's `https://<host>/api/v3`)
//! moves the API.

use serde::Deserialize;
use vsync_crypto::Zeroizing;
use vsync_engine::sink::Sink;
use vsync_sinks::github::GithubSink;

use crate::{
    Credentials, Platform, PlatformError, Saved, Setting, SettingKind, SinkRequest, SinkSide,
    parse_routing,
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
    let api_url = request.var("GITHUB_API_URL");
    let mut builder = GithubSink::builder();
    if let Some(url) = &api_url {
        builder = builder.base_url(url.as_str());
    }
    let token = match &routing.token_file {
        Some(path) => crate::read_token_file(path)?,
        None => request
            .secret("GITHUB_TOKEN")
            .or_else(|| request.secret("GH_TOKEN"))
            .or_else(|| {
                gh_cli_token(
                    api_url.as_deref().unwrap_or("https://api.github.com"),
                    request.environment,
                )
            })
            .ok_or_else(|| {
                PlatformError::Setup(
                    "GitHub: no token; set GITHUB_TOKEN or GH_TOKEN, pass --gh-token-file, or log in with `gh auth login`".into(),
                )
            })?,
    };
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

/// The token the GitHub CLI holds for the host of `api_url` (`gh auth
/// token`), as upstream's `gh secret set` would have used; `None` when `gh`
/// is not installed or not logged in to that host.
fn gh_cli_token(api_url: &str, environment: crate::Environment<'_>) -> Option<Zeroizing<String>> {
    let host = api_url
        .split_once("://")
        .map_or(api_url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .filter(|host| !host.is_empty())?;
    // GitHub.com's API lives on its own host; GitHub Enterprise Server's
    // under /api/v3 of the instance's host.
    let host = if host == "api.github.com" {
        "github.com"
    } else {
        host
    };
    let mut command = std::process::Command::new("gh");
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
}
