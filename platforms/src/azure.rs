//! Azure Key Vault (`azure`).
//!
//! Credentials: `AZURE_ACCESS_TOKEN` when set, else a service principal's
//! client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, and `AZURE_AUTHORITY_HOST` outside the public
//! cloud), the variables Azure's own tools read, else App Service's managed
//! identity (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`), a VM's through IMDS
//! (`AZURE_USE_MANAGED_IDENTITY=1`), or the `az` CLI's login
//! (`vsync_connections::azure::Auth::from_env` has the order and why).
//! `VSYNC_AZURE_VAULT_URL`,
//! `VSYNC_AZURE_CA_FILE` and
//! `VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION` reach emulators and
//! private endpoints. Syncing to the vault and importing from it
//! (`vsync import <env> --from azure --set vaultName=<name>`, tsafe's
//! `kv-pull`) read them alike ([`Access`]).

use serde::Deserialize;
use vsync_connections::azure::{Auth, Choice, connect, vault_url_of_name};
use vsync_engine::sink::Sink;
use vsync_engine::source::Source;
use vsync_sinks::azure::KeyVaultSink;
use vsync_sources::azure::KeyVaultSource;

use crate::{
    CredentialSource, Credentials, Platform, PlatformError, Saved, Setting, SettingKind,
    SinkRequest, SinkSide, SourceRequest, SourceSetting, SourceSide, parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "azure-key-vault",
    short: "azure",
    about: "Azure Key Vault",
    sink: Some(&SINK),
    source: Some(&SOURCE),
};

/// The credentials, for help text: the same both ways.
const CREDENTIALS: &str = "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or AZURE_ACCESS_TOKEN, or a managed identity (App Service's IDENTITY_ENDPOINT, or AZURE_USE_MANAGED_IDENTITY=1 on a VM), or `az login`; VSYNC_AZURE_VAULT_URL for another cloud or an emulator";

/// What syncing to it takes.
static SINK: SinkSide = SinkSide {
    settings: &[Setting {
        field: "vaultName",
        flag: "azure-vault",
        saved: Saved::Required,
        default: None,
        kind: SettingKind::Text,
        help: "Azure Key Vault name (saved)",
    }],
    credentials: CREDENTIALS,
    check: |routing| parse_routing::<AzureRouting>(PLATFORM.short, routing).map(drop),
    build: sink,
    credential_source,
};

/// `sync.azure`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AzureRouting {
    vault_name: Option<String>,
}

fn sink(request: &SinkRequest<'_>) -> Result<Box<dyn Sink>, PlatformError> {
    let routing: AzureRouting = parse_routing(PLATFORM.short, request.routing)?;
    let Some(access) = Access::from_env(request, routing.vault_name.as_deref())? else {
        return Err(PlatformError::MissingRouting {
            what: "Azure Key Vault",
            flag: "--azure-vault=<name>",
        });
    };
    let mut builder = KeyVaultSink::builder()
        .vault_url(access.vault_url)
        .auth(access.auth)
        .verify_challenge_resource(access.verify_challenge_resource);
    if let Some(pem) = access.extra_ca_pem {
        builder = builder.extra_ca_pem(pem);
    }
    Ok(Box::new(builder.build()?))
}

/// The credential [`Access::from_env`] builds, named: a managed identity is
/// the machine's, which only a token request can tell exists.
fn credential_source(request: &SinkRequest<'_>) -> Result<CredentialSource, PlatformError> {
    let choice = Choice::from_env(&|name| request.var(name))?;
    let described = choice.describe();
    Ok(if choice.is_ambient() {
        CredentialSource::Ambient(described)
    } else {
        CredentialSource::Found(described)
    })
}

/// What importing from it takes.
static SOURCE: SourceSide = SourceSide {
    aliases: &["kv-pull"],
    settings: &[SourceSetting {
        field: "vaultName",
        kind: SettingKind::Text,
        help: "the Azure Key Vault to read (its name; VSYNC_AZURE_VAULT_URL overrides it)",
    }],
    credentials: CREDENTIALS,
    build: source,
};

/// `--set vaultName=…`: the sink's field name, so one name means one vault
/// both ways.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AzureSourceSettings {
    vault_name: Option<String>,
}

fn source(request: &SourceRequest<'_>) -> Result<Box<dyn Source>, PlatformError> {
    let settings: AzureSourceSettings = parse_routing(PLATFORM.short, request.settings)?;
    let Some(access) = Access::from_env(request, settings.vault_name.as_deref())? else {
        return Err(PlatformError::Setup(
            "no Azure Key Vault to import from: pass --set vaultName=<name>".into(),
        ));
    };
    let connection = connect(
        &access.vault_url,
        access.auth,
        access.extra_ca_pem.as_deref(),
    )?;
    Ok(Box::new(KeyVaultSource::new(
        connection,
        access.verify_challenge_resource,
    )?))
}

/// Where the vault is and how it is reached, as the environment and the
/// vault name say: what the sink and the source are built from.
struct Access {
    /// `VSYNC_AZURE_VAULT_URL`, else the named vault's public-cloud URL.
    vault_url: String,
    /// The credential [`Auth::from_env`] picks (what [`credential_source`]
    /// names).
    auth: Auth,
    /// `VSYNC_AZURE_CA_FILE`'s certificates.
    extra_ca_pem: Option<Vec<u8>>,
    /// Off only with `VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION`.
    verify_challenge_resource: bool,
}

impl Access {
    /// `None` when neither a URL nor a vault name is given.
    fn from_env(
        request: &dyn Credentials,
        vault_name: Option<&str>,
    ) -> Result<Option<Access>, PlatformError> {
        let vault_url = match (request.var("VSYNC_AZURE_VAULT_URL"), vault_name) {
            (Some(url), _) => url,
            (None, Some(name)) => vault_url_of_name(name).map_err(PlatformError::Setup)?,
            (None, None) => return Ok(None),
        };
        let auth = Auth::from_env(&|name| request.var(name))?;
        let extra_ca_pem = match request.var("VSYNC_AZURE_CA_FILE") {
            Some(file) => Some(
                std::fs::read(&file).map_err(|source| PlatformError::Io { path: file, source })?,
            ),
            None => None,
        };
        let verify_challenge_resource = !request
            .var("VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION")
            .as_deref()
            .is_some_and(vsync_engine::environment::is_true);
        Ok(Some(Access {
            vault_url,
            auth,
            extra_ca_pem,
            verify_challenge_resource,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Routing;
    use crate::test_support::{ambient, credential_source_in, found};

    fn build(vars: &[(&str, &str)]) -> Result<Box<dyn Sink>, PlatformError> {
        let mut vars: HashMap<&str, &str> = vars.iter().copied().collect();
        vars.insert("VSYNC_AZURE_VAULT_URL", "https://127.0.0.1:8443");
        let environment = |name: &str| vars.get(name).map(|value| (*value).to_owned());
        sink(&SinkRequest {
            env: "dev",
            routing: &Routing::new(),
            environment: &environment,
        })
    }

    fn refusal(vars: &[(&str, &str)]) -> String {
        match build(vars) {
            Err(PlatformError::Setup(message)) => message,
            Err(other) => panic!("expected a setup error, got {other:?}"),
            Ok(_) => panic!("expected a refusal"),
        }
    }

    const CLIENT_SECRET: [(&str, &str); 4] = [
        ("AZURE_TENANT_ID", "contoso.onmicrosoft.com"),
        ("AZURE_CLIENT_ID", "app"),
        ("AZURE_CLIENT_SECRET", "s3cret~value"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us"),
    ];

    #[test]
    fn azure_takes_the_access_token_first_then_the_client_secret() {
        // A partial triple does not matter when a token is given.
        assert!(build(&[("AZURE_ACCESS_TOKEN", "eyJ0"), ("AZURE_CLIENT_ID", "app")]).is_ok());

        let sink = build(&CLIENT_SECRET).unwrap();
        assert_eq!(sink.target(), "azure-key-vault:vault=127.0.0.1:8443");

        let mut bad_authority = CLIENT_SECRET;
        bad_authority[3].1 = "http://login.example";
        let message = refusal(&bad_authority);
        assert!(message.contains("https"), "{message}");
        assert!(!message.contains("s3cret~value"), "{message}");
    }

    #[test]
    fn missing_azure_credentials_name_the_variables() {
        let message = refusal(&[]);
        for name in [
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_ACCESS_TOKEN",
        ] {
            assert!(message.contains(name), "{message}");
        }

        let message = refusal(&CLIENT_SECRET[1..3]);
        assert!(message.contains("AZURE_TENANT_ID is not set"), "{message}");
        assert!(!message.contains("s3cret~value"), "{message}");

        let message = refusal(&CLIENT_SECRET[..1]);
        assert!(
            message.contains("AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not set"),
            "{message}"
        );
    }

    #[test]
    fn managed_identities_are_taken_when_present_or_asked_for() {
        // Nothing is asked until the first request.
        let app_service = [
            ("IDENTITY_ENDPOINT", "http://localhost:41741/msi/token"),
            ("IDENTITY_HEADER", "header"),
            ("AZURE_CLIENT_ID", "user-assigned"),
        ];
        assert!(build(&app_service).is_ok());
        assert!(build(&[("AZURE_USE_MANAGED_IDENTITY", "1")]).is_ok());
        // Not on loopback: refused before the header could be sent.
        let message = refusal(&[
            ("IDENTITY_ENDPOINT", "http://identity.example/msi/token"),
            ("IDENTITY_HEADER", "header"),
        ]);
        assert!(message.contains("IDENTITY_ENDPOINT"), "{message}");
    }

    fn import_from(
        settings: serde_json::Value,
        vars: &[(&str, &str)],
    ) -> Result<Box<dyn Source>, PlatformError> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        let environment = |name: &str| vars.get(name).map(|value| (*value).to_owned());
        let serde_json::Value::Object(settings) = settings else {
            panic!("settings are an object");
        };
        let no_folders = |env: &str| Err(PlatformError::Setup(format!("no env {env}")));
        source(&SourceRequest {
            settings: &settings,
            environment: &environment,
            vault_folder_of: &no_folders,
        })
    }

    #[test]
    fn the_source_reads_the_named_vault_with_the_sinks_credentials() {
        let token = [("AZURE_ACCESS_TOKEN", "eyJ0")];
        let source = import_from(serde_json::json!({"vaultName": "acme-prod"}), &token).unwrap();
        assert_eq!(
            source.origin(),
            "azure-key-vault:vault=acme-prod.vault.azure.net"
        );
        assert_eq!(source.unmap_name("DB-PASS"), "DB_PASS");
        let mut url = token.to_vec();
        url.push(("VSYNC_AZURE_VAULT_URL", "https://127.0.0.1:8443"));
        let source = import_from(serde_json::json!({}), &url).unwrap();
        assert_eq!(source.origin(), "azure-key-vault:vault=127.0.0.1:8443");

        let refusal = |settings, vars: &[(&str, &str)]| match import_from(settings, vars) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("expected a refusal"),
        };
        let message = refusal(serde_json::json!({}), &token);
        assert!(message.contains("--set vaultName=<name>"), "{message}");
        let message = refusal(serde_json::json!({"vaultName": "acme_prod"}), &token);
        assert!(message.contains("not a Key Vault name"), "{message}");
        let message = refusal(serde_json::json!({"vault": "acme"}), &token);
        assert!(message.contains("vaultName"), "{message}");
        let message = refusal(
            serde_json::json!({"vaultName": "acme-prod"}),
            &CLIENT_SECRET[..1],
        );
        assert!(message.contains("AZURE_CLIENT_SECRET"), "{message}");
        let message = refusal(
            serde_json::json!({"vaultName": "acme-prod"}),
            &[
                ("AZURE_ACCESS_TOKEN", "eyJ0"),
                ("VSYNC_AZURE_CA_FILE", "/nonexistent/ca.pem"),
            ],
        );
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn without_a_vault_url_the_saved_name_is_required() {
        let environment = |_: &str| None;
        let error = sink(&SinkRequest {
            env: "dev",
            routing: &Routing::new(),
            environment: &environment,
        })
        .err()
        .unwrap();
        assert!(error.to_string().contains("--azure-vault"), "{error}");
    }

    fn source_of(vars: &[(&str, &str)]) -> Result<CredentialSource, PlatformError> {
        credential_source_in(&SINK, vars)
    }

    #[test]
    fn the_credential_is_named_as_it_is_chosen_never_its_value() {
        let secrets = [
            "eyJ0.static",
            "s3cret~value",
            "contoso.onmicrosoft.com",
            "header",
        ];
        let mut everything = vec![("AZURE_ACCESS_TOKEN", secrets[0])];
        everything.extend(CLIENT_SECRET);
        assert_eq!(
            found(source_of(&everything), &secrets),
            "AZURE_ACCESS_TOKEN"
        );
        let source = found(source_of(&everything[1..]), &secrets);
        assert_eq!(
            source,
            "a service principal's client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST)"
        );

        let app_service = [
            ("IDENTITY_ENDPOINT", "http://localhost:41741/msi/token"),
            ("IDENTITY_HEADER", "header"),
            ("AZURE_CLIENT_ID", "user-assigned-id"),
        ];
        let source = ambient(source_of(&app_service), &secrets);
        assert_eq!(
            source,
            "App Service's user-assigned (AZURE_CLIENT_ID) managed identity (IDENTITY_ENDPOINT, IDENTITY_HEADER)"
        );
        let source = ambient(source_of(&[("AZURE_USE_MANAGED_IDENTITY", "1")]), &secrets);
        assert!(source.contains("through IMDS"), "{source}");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let bin = tempfile::tempdir().unwrap();
            let az = bin.path().join("az");
            std::fs::write(&az, "#!/bin/sh\nexit 1\n").unwrap();
            std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o700)).unwrap();
            let path = bin.path().display().to_string();
            let source = found(source_of(&[("PATH", &path)]), &secrets);
            assert!(
                source.starts_with("the az CLI's login (`az account get-access-token`"),
                "{source}"
            );
        }

        let error = source_of(&[("PATH", "/nonexistent")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("AZURE_TENANT_ID"), "{error}");
        let error = source_of(&CLIENT_SECRET[..1]).unwrap_err().to_string();
        assert!(error.contains("AZURE_CLIENT_SECRET"), "{error}");
    }
}
