//! 1Password (`1password`, short `op`), as a source only: the items of a
//! vault, each item's fields becoming keys (`vsync import <env> --from
//! 1password --set vault=…`, or tsafe's `vsync op-pull <env> --set
//! vault=…`).
//!
//! Credentials: a Connect server when `OP_CONNECT_HOST` is set (with
//! `OP_CONNECT_TOKEN`, the variables 1Password's own tools read), else the
//! `op` CLI found on `PATH`, signed in through the desktop app or given
//! `OP_SERVICE_ACCOUNT_TOKEN` (op's precedence, too: Connect first).

use serde::Deserialize;
use vsync_engine::source::Source;
use vsync_sources::onepassword::{CliSource, ConnectSource, Scope, find_op};

use crate::{
    Credentials, Platform, PlatformError, SettingKind, SourceRequest, SourceSetting, SourceSide,
    parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "1password",
    short: "op",
    about: "1Password: the items of a vault (Connect server or the op CLI); fields become keys",
    sink: None,
    source: Some(&SOURCE),
};

/// What importing from it takes.
static SOURCE: SourceSide = SourceSide {
    aliases: &["op-pull"],
    settings: &[
        SourceSetting {
            field: "vault",
            kind: SettingKind::Text,
            help: "the vault to read, by name or id (required)",
        },
        SourceSetting {
            field: "item",
            kind: SettingKind::Text,
            help: "only the item with this title",
        },
        SourceSetting {
            field: "tag",
            kind: SettingKind::Text,
            help: "only the items with this tag",
        },
    ],
    credentials: "OP_CONNECT_HOST and OP_CONNECT_TOKEN (a Connect server), else the op CLI on PATH with OP_SERVICE_ACCOUNT_TOKEN or `op signin`",
    build: source,
};

/// `--set vault=… [--set item=… | --set tag=…]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnePasswordSettings {
    vault: Option<String>,
    item: Option<String>,
    tag: Option<String>,
}

fn source(request: &SourceRequest<'_>) -> Result<Box<dyn Source>, PlatformError> {
    let settings: OnePasswordSettings = parse_routing(PLATFORM.short, request.settings)?;
    let vault = settings
        .vault
        .filter(|vault| !vault.trim().is_empty())
        .ok_or_else(|| {
            PlatformError::Setup(
                "1password: pass the vault to read with --set vault=<name or id>".into(),
            )
        })?;
    let non_empty = |text: Option<String>| text.filter(|text| !text.is_empty());
    let scope = match (non_empty(settings.item), non_empty(settings.tag)) {
        (None, None) => Scope::All,
        (Some(title), None) => Scope::Titled(title),
        (None, Some(tag)) => Scope::Tagged(tag),
        (Some(_), Some(_)) => {
            return Err(PlatformError::Setup(
                "1password: pass --set item=<title> or --set tag=<tag>, not both".into(),
            ));
        }
    };
    if let Some(host) = request.var("OP_CONNECT_HOST") {
        let token = request.secret("OP_CONNECT_TOKEN").ok_or_else(|| {
            PlatformError::Setup(
                "1Password Connect: OP_CONNECT_HOST is set but OP_CONNECT_TOKEN is not; set it to an access token of that Connect server".into(),
            )
        })?;
        return Ok(Box::new(ConnectSource::new(&host, &token, vault, scope)?));
    }
    let op = request
        .var("PATH")
        .and_then(|path| find_op(&path))
        .ok_or_else(|| {
            PlatformError::Setup(
                "1Password: set OP_CONNECT_HOST and OP_CONNECT_TOKEN (a Connect server), or install the 1Password CLI (`op`) on PATH and sign in with `op signin` or set OP_SERVICE_ACCOUNT_TOKEN".into(),
            )
        })?;
    Ok(Box::new(CliSource::new(
        op,
        request.secret("OP_SERVICE_ACCOUNT_TOKEN"),
        vault,
        scope,
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Routing;

    fn build(sets: &[&str], vars: &[(&str, &str)]) -> Result<Box<dyn Source>, PlatformError> {
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        let settings: Routing = PLATFORM.source_settings(&sets)?;
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        let environment = |name: &str| vars.get(name).map(|value| (*value).to_owned());
        source(&SourceRequest {
            settings: &settings,
            environment: &environment,
            vault_folder_of: &|_| unreachable!("1Password reads no vault folder"),
        })
    }

    fn refusal(sets: &[&str], vars: &[(&str, &str)]) -> String {
        match build(sets, vars) {
            Err(error) => error.to_string(),
            Ok(source) => panic!("expected a refusal, built {}", source.origin()),
        }
    }

    const CONNECT: [(&str, &str); 2] = [
        ("OP_CONNECT_HOST", "https://connect.example.com"),
        ("OP_CONNECT_TOKEN", "eyJ-xyzzy"),
    ];

    #[test]
    fn connect_is_used_when_its_host_is_set_and_needs_its_token() {
        let source = build(&["vault=Ops", "tag=prod"], &CONNECT).unwrap();
        assert_eq!(
            source.origin(),
            "1password-connect:host=https://connect.example.com,vault=Ops,tag=prod"
        );
        let error = refusal(&["vault=Ops"], &CONNECT[..1]);
        assert!(error.contains("OP_CONNECT_TOKEN"), "{error}");
        let error = refusal(
            &["vault=Ops"],
            &[
                ("OP_CONNECT_HOST", "http://connect.internal:8080"),
                CONNECT[1],
            ],
        );
        assert!(
            error.contains("https") && !error.contains("xyzzy"),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn without_connect_the_op_cli_on_path_is_used() {
        use std::os::unix::fs::PermissionsExt;
        let error = refusal(&["vault=Ops"], &[("PATH", "/nonexistent")]);
        assert!(
            error.contains("OP_CONNECT_HOST") && error.contains("op signin"),
            "{error}"
        );
        let dir = std::env::temp_dir().join(format!("vsync-op-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let op = dir.join("op");
        std::fs::write(&op, "#!/bin/sh\nexit 1\n").unwrap();
        std::fs::set_permissions(&op, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("relative/dir:{}", dir.display());
        let built = build(&["vault=Ops"], &[("PATH", &path)]).map(|source| source.origin());
        // A relative PATH entry is never searched: only the absolute one.
        let relative = refusal(&["vault=Ops"], &[("PATH", "relative/dir")]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(built.unwrap(), "1password-cli:vault=Ops");
        assert!(relative.contains("install the 1Password CLI"), "{relative}");
    }

    #[test]
    fn settings_are_checked() {
        let error = refusal(&[], &CONNECT);
        assert!(error.contains("--set vault="), "{error}");
        let error = refusal(&["vault=Ops", "item=App", "tag=prod"], &CONNECT);
        assert!(error.contains("not both"), "{error}");
        let error = refusal(&["colour=blue"], &CONNECT);
        assert!(error.contains("vault, item, tag"), "{error}");
        let source = build(&["vault=Ops", "item=App"], &CONNECT).unwrap();
        assert!(source.origin().ends_with(",vault=Ops,item=App"));
    }
}
