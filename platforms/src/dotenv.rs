//! A `.env` file (`dotenv`), as a source only: a file someone handed over
//! (`--set file=path`), or another env's vault folder (`--set env=staging`:
//! promotion from one env to the next).

use serde::Deserialize;
use vsync_engine::source::Source;
use vsync_sources::dotenv::DotenvSource;

use crate::{
    Platform, PlatformError, SettingKind, SourceRequest, SourceSetting, SourceSide, parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "dotenv",
    short: "dotenv",
    about: "a .env file, or another env's vault folder",
    sink: None,
    source: Some(&SOURCE),
};

/// What importing from it takes.
static SOURCE: SourceSide = SourceSide {
    aliases: &[],
    settings: &[
        SourceSetting {
            field: "file",
            kind: SettingKind::Text,
            help: "the .env file to read",
        },
        SourceSetting {
            field: "env",
            kind: SettingKind::Text,
            help: "another env of this repo, whose .env.<env> is read (promotion)",
        },
    ],
    credentials: "none",
    build: source,
};

/// `--set file=…` or `--set env=…`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DotenvSettings {
    file: Option<String>,
    env: Option<String>,
}

fn source(request: &SourceRequest<'_>) -> Result<Box<dyn Source>, PlatformError> {
    let settings: DotenvSettings = parse_routing(PLATFORM.short, request.settings)?;
    let path = match (settings.file, settings.env) {
        (Some(file), None) => file.into(),
        (None, Some(env)) => (request.vault_folder_of)(&env)?.join(format!(".env.{env}")),
        _ => {
            return Err(PlatformError::Setup(
                "dotenv: pass one of --set file=<path> or --set env=<another env>".into(),
            ));
        }
    };
    Ok(Box::new(DotenvSource::new(path)))
}
