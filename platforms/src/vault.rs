//! HashiCorp Vault KV (`vault`). As a sink: one KV v2 secret at
//! `mount/secretPath` whose fields are the keys. As a source: the KV v1 or
//! v2 secrets at `mount/path` and under it, each field a key.
//!
//! Credentials (`vsync_connections::vault` has the order and why): a token
//! from `VAULT_TOKEN`, else the Vault CLI's `~/.vault-token` (written by
//! `vault login`); importing also logs in with AppRole (`VAULT_ROLE_ID`,
//! `VAULT_SECRET_ID`) or Kubernetes (`VAULT_K8S_ROLE`, the service-account
//! token at `VAULT_K8S_TOKEN_PATH`). `VAULT_NAMESPACE` for Vault Enterprise
//! and HCP.

use serde::Deserialize;
use vsync_connections::vault::{Auth, TokenSource, token_from_env};
use vsync_engine::sink::Sink;
use vsync_engine::source::Source;
use vsync_sinks::vault_kv::VaultKvSink;
use vsync_sources::vault::VaultSource;

use crate::{
    CredentialSource, Credentials, Platform, PlatformError, Saved, Setting, SettingKind,
    SinkRequest, SinkSide, SourceRequest, SourceSetting, SourceSide, parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "vault-kv",
    short: "vault",
    about: "HashiCorp Vault KV",
    sink: Some(&SINK),
    source: Some(&SOURCE),
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
    credential_source,
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
    let (token, _) = token_from_env(&|name| request.var(name)).ok_or_else(no_token)?;
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

/// Syncing takes a token (AppRole and Kubernetes logins are the source's):
/// `VAULT_TOKEN` or `~/.vault-token`, both found on this machine.
fn credential_source(request: &SinkRequest<'_>) -> Result<CredentialSource, PlatformError> {
    let source = TokenSource::find(&|name| request.var(name)).ok_or_else(no_token)?;
    Ok(CredentialSource::Found(source.describe().to_owned()))
}

fn no_token() -> PlatformError {
    PlatformError::Setup("Vault: no token; set VAULT_TOKEN or run `vault login`".into())
}

/// What importing from it takes.
static SOURCE: SourceSide = SourceSide {
    aliases: &["vault-pull"],
    settings: &[
        SourceSetting {
            field: "addr",
            kind: SettingKind::Text,
            help: "HashiCorp Vault address (default: VAULT_ADDR)",
        },
        SourceSetting {
            field: "mount",
            kind: SettingKind::Text,
            help: "the KV mount, version 1 or 2 (default secret)",
        },
        SourceSetting {
            field: "path",
            kind: SettingKind::Text,
            help: "a folder (everything under it) or one secret (default: the whole mount)",
        },
        SourceSetting {
            field: "recursive",
            kind: SettingKind::Switch,
            help: "walk subfolders too (default true)",
        },
        SourceSetting {
            field: "approleMount",
            kind: SettingKind::Text,
            help: "the AppRole auth mount (default approle)",
        },
        SourceSetting {
            field: "k8sMount",
            kind: SettingKind::Text,
            help: "the Kubernetes auth mount (default kubernetes)",
        },
    ],
    credentials: "VAULT_TOKEN (or `vault login`), or VAULT_ROLE_ID and VAULT_SECRET_ID (AppRole), or VAULT_K8S_ROLE (Kubernetes; VAULT_K8S_TOKEN_PATH); VAULT_NAMESPACE",
    build: source,
};

/// `--set field=value` for an import.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VaultSettings {
    addr: Option<String>,
    mount: Option<String>,
    path: Option<String>,
    recursive: Option<bool>,
    approle_mount: Option<String>,
    k8s_mount: Option<String>,
}

fn source(request: &SourceRequest<'_>) -> Result<Box<dyn Source>, PlatformError> {
    let settings: VaultSettings = parse_routing(PLATFORM.short, request.settings)?;
    let addr = settings
        .addr
        .or_else(|| request.var("VAULT_ADDR"))
        .ok_or_else(|| {
            PlatformError::Setup(
                "Vault: no address; pass --set addr=https://vault.example.com:8200 or set VAULT_ADDR"
                    .into(),
            )
        })?;
    let auth = Auth::from_env(
        &|name| request.var(name),
        settings.approle_mount,
        settings.k8s_mount,
    )?;
    let mut builder = VaultSource::builder().address(addr).auth(auth);
    if let Some(mount) = settings.mount {
        builder = builder.mount(mount);
    }
    if let Some(path) = settings.path {
        builder = builder.path(path);
    }
    if let Some(recursive) = settings.recursive {
        builder = builder.recursive(recursive);
    }
    if let Some(namespace) = request.var("VAULT_NAMESPACE") {
        builder = builder.namespace(namespace);
    }
    Ok(Box::new(builder.build()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{credential_source_in, found};

    fn build(sets: &[&str], vars: &[(&str, &str)]) -> Result<Box<dyn Source>, PlatformError> {
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        let settings = PLATFORM.source_settings(&sets)?;
        let environment = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let no_folders = |_: &str| Err(PlatformError::Setup("no other envs".into()));
        source(&SourceRequest {
            settings: &settings,
            environment: &environment,
            vault_folder_of: &no_folders,
        })
    }

    #[test]
    fn the_source_reads_its_settings_and_finds_its_credentials() {
        let token = [
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_TOKEN", "hvs.t"),
            ("VAULT_NAMESPACE", "team-a"),
        ];
        let source = build(&["mount=kv", "path=apps/api", "recursive=false"], &token).unwrap();
        assert_eq!(
            source.origin(),
            "vault-kv:addr=http://127.0.0.1:8200,mount=kv,path=apps/api,namespace=team-a,recursive=false"
        );
        // `addr` wins over VAULT_ADDR; AppRole at a moved mount.
        let approle = [
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("VAULT_ROLE_ID", "r"),
            ("VAULT_SECRET_ID", "s"),
        ];
        let source = build(
            &["addr=https://vault.example.com", "approleMount=ci/approle"],
            &approle,
        )
        .unwrap();
        assert_eq!(
            source.origin(),
            "vault-kv:addr=https://vault.example.com,mount=secret,path="
        );

        let error =
            |sets: &[&str], vars: &[(&str, &str)]| build(sets, vars).err().unwrap().to_string();
        assert!(error(&[], &token[1..]).contains("VAULT_ADDR"));
        assert!(
            error(&[], &[("VAULT_ADDR", "https://v"), ("VAULT_ROLE_ID", "r")])
                .contains("VAULT_SECRET_ID")
        );
        assert!(error(&["secretPath=x"], &token).contains("approleMount"));
        assert!(error(&["recursive=maybe"], &token).contains("true or false"));
    }

    #[test]
    fn the_sinks_token_source_is_named_never_its_value() {
        let home = tempfile::tempdir().unwrap();
        let home_dir = home.path().to_str().unwrap();
        let source_of = |vars: &[(&str, &str)]| credential_source_in(&SINK, vars);
        let given = [("VAULT_TOKEN", "hvs.given-token"), ("HOME", home_dir)];
        assert_eq!(
            found(source_of(&given), &["hvs.given-token"]),
            "VAULT_TOKEN"
        );
        let error = source_of(&given[1..]).unwrap_err().to_string();
        assert!(error.contains("VAULT_TOKEN"), "{error}");
        std::fs::write(home.path().join(".vault-token"), "hvs.from-file\n").unwrap();
        assert_eq!(
            found(source_of(&given[1..]), &["hvs.from-file"]),
            "~/.vault-token (`vault login`)"
        );
        // The token wins over the file, as when the sink is built.
        assert_eq!(found(source_of(&given), &["hvs."]), "VAULT_TOKEN");
    }
}
