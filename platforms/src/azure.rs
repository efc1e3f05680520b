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
//! private endpoints.

use serde::Deserialize;
use vsync_connections::azure::Auth;
use vsync_engine::sink::Sink;
use vsync_sinks::azure::KeyVaultSink;

use crate::{
    Credentials, Platform, PlatformError, Saved, Setting, SettingKind, SinkRequest, SinkSide,
    parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "azure-key-vault",
    short: "azure",
    about: "Azure Key Vault",
    sink: Some(&SINK),
    source: None,
};

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
    credentials: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or AZURE_ACCESS_TOKEN, or a managed identity (App Service's IDENTITY_ENDPOINT, or AZURE_USE_MANAGED_IDENTITY=1 on a VM), or `az login`; VSYNC_AZURE_VAULT_URL for another cloud or an emulator",
    check: |routing| parse_routing::<AzureRouting>(PLATFORM.short, routing).map(drop),
    build: sink,
};

/// `sync.azure`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AzureRouting {
    vault_name: Option<String>,
}

fn sink(request: &SinkRequest<'_>) -> Result<Box<dyn Sink>, PlatformError> {
    let routing: AzureRouting = parse_routing(PLATFORM.short, request.routing)?;
    let mut builder = KeyVaultSink::builder();
    builder = match (request.var("VSYNC_AZURE_VAULT_URL"), &routing.vault_name) {
        (Some(url), _) => builder.vault_url(url),
        (None, Some(name)) => builder.vault_name(name),
        (None, None) => {
            return Err(PlatformError::MissingRouting {
                what: "Azure Key Vault",
                flag: "--azure-vault=<name>",
            });
        }
    };
    builder = builder.auth(Auth::from_env(&|name| request.var(name))?);
    let verify = !request
        .var("VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION")
        .as_deref()
        .is_some_and(crate::is_true);
    builder = builder.verify_challenge_resource(verify);
    if let Some(file) = request.var("VSYNC_AZURE_CA_FILE") {
        let pem =
            std::fs::read(&file).map_err(|source| PlatformError::Io { path: file, source })?;
        builder = builder.extra_ca_pem(pem);
    }
    Ok(Box::new(builder.build()?))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Routing;

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
}
