//! HashiCorp Vault KV v2 (`vault`): one secret at `mount/secretPath` whose
//! fields are the keys.
//!
//! Token: `VAULT_TOKEN`, else the Vault CLI's `~/.vault-token` (written by
//! `vault login`); `VAULT_NAMESPACE` for Vault Enterprise and HCP.

use serde::Deserialize;
use vsync_crypto::Zeroizing;
use vsync_engine::sink::Sink;
use vsync_sinks::vault_kv::VaultKvSink;

use crate::{
    Credentials, Platform, PlatformError, Saved, Setting, SettingKind, SinkRequest, SinkSide,
    parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "vault-kv",
    short: "vault",
    about: "HashiCorp Vault KV v2",
    sink: Some(&SINK),
    source: None,
};

/// What syncing to it takes.
static SINK: SinkSide = SinkSide {
    settings: &[
        Setting {
            field: "addr",
            flag: "vault-addr",
            saved: Saved::Required,
            default: None,
            kind: SettingKind::Text,
            help: "HashiCorp Vault address (saved)",
        },
        Setting {
            field: "mount",
            flag: "vault-mount",
            saved: Saved::Required,
            default: Some("secret"),
            kind: SettingKind::Text,
            help: "HashiCorp Vault KV v2 mount (saved; default secret)",
        },
        Setting {
            field: "secretPath",
            flag: "vault-path",
            saved: Saved::Required,
            default: Some(""),
            kind: SettingKind::Text,
            help: "Secret path under the mount (saved)",
        },
    ],
    credentials: "VAULT_TOKEN (or `vault login`); VAULT_NAMESPACE",
    check: |routing| parse_routing::<VaultRouting>(PLATFORM.short, routing).map(drop),
    build: sink,
};

/// `sync.vault` (upstream requires all three once the block exists).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VaultRouting {
    addr: Option<String>,
    mount: Option<String>,
    secret_path: Option<String>,
}

fn sink(request: &SinkRequest<'_>) -> Result<Box<dyn Sink>, PlatformError> {
    let routing: VaultRouting = parse_routing(PLATFORM.short, request.routing)?;
    let addr = routing.addr.ok_or(PlatformError::MissingRouting {
        what: "Vault address",
        flag: "--vault-addr=<url> --vault-path=<path>",
    })?;
    let path = routing.secret_path.filter(|path| !path.is_empty()).ok_or(
        PlatformError::MissingRouting {
            what: "Vault secret path",
            flag: "--vault-path=<path>",
        },
    )?;
    let token = request
        .secret("VAULT_TOKEN")
        .or_else(|| vault_cli_token(request))
        .ok_or_else(|| {
            PlatformError::Setup("Vault: no token; set VAULT_TOKEN or run `vault login`".into())
        })?;
    let mut builder = VaultKvSink::builder()
        .address(addr)
        .mount(routing.mount.unwrap_or_else(|| "secret".to_owned()))
        .path(path)
        .token(&token);
    if let Some(namespace) = request.var("VAULT_NAMESPACE") {
        builder = builder.namespace(namespace);
    }
    Ok(Box::new(builder.build()?))
}

/// The token `vault login` leaves in `~/.vault-token` (the Vault CLI's
/// default token helper).
fn vault_cli_token(request: &SinkRequest<'_>) -> Option<Zeroizing<String>> {
    let path = std::path::Path::new(&request.var("HOME")?).join(".vault-token");
    let raw = Zeroizing::new(std::fs::read_to_string(path).ok()?);
    crate::trimmed_token(&raw)
}
