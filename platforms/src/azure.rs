//! Azure Key Vault (`azure`).
//!
//! Credentials: `AZURE_ACCESS_TOKEN` when set, else a service principal's
//! client secret (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, and `AZURE_AUTHORITY_HOST` outside the public
//! cloud), the variables Azure's own tools read. `VSYNC_AZURE_VAULT_URL`,
//! `VSYNC_AZURE_CA_FILE` and
//! `VSYNC_AZURE_DISABLE_CHALLENGE_RESOURCE_VERIFICATION` reach emulators and
//! private endpoints.

use serde::Deserialize;
use vsync_engine::sink::Sink;
use vsync_sinks::azure::KeyVaultSink;

use crate::{Platform, PlatformError, Saved, Setting, SettingKind, SinkRequest, parse_routing};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "azure-key-vault",
    short: "azure",
    about: "Azure Key Vault",
    settings: &[Setting {
        field: "vaultName",
        flag: "azure-vault",
        saved: Saved::Required,
        default: None,
        kind: SettingKind::Text,
        help: "Azure Key Vault name (saved)",
    }],
    credentials: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or AZURE_ACCESS_TOKEN; VSYNC_AZURE_VAULT_URL for another cloud or an emulator",
    check: |routing| parse_routing::<AzureRouting>(PLATFORM.short, routing).map(drop),
    sink,
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
    let tenant = request.var("AZURE_TENANT_ID");
    let client = request.var("AZURE_CLIENT_ID");
    let secret = request.secret("AZURE_CLIENT_SECRET");
    builder = match (request.secret("AZURE_ACCESS_TOKEN"), tenant, client, secret) {
        (Some(token), ..) => builder.access_token(token.as_str()),
        (None, Some(tenant), Some(client), Some(secret)) => {
            let builder = builder.client_secret(tenant, client, &secret);
            match request.var("AZURE_AUTHORITY_HOST") {
                Some(authority) => builder.authority_host(authority),
                None => builder,
            }
        }
        (None, None, None, None) => {
            return Err(PlatformError::Setup(
                "Azure: no credentials; set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal's client secret), or AZURE_ACCESS_TOKEN (e.g. from `az account get-access-token --resource https://vault.azure.net`)".into(),
            ));
        }
        (None, tenant, client, secret) => {
            let missing: Vec<&str> = [
                ("AZURE_TENANT_ID", tenant.is_none()),
                ("AZURE_CLIENT_ID", client.is_none()),
                ("AZURE_CLIENT_SECRET", secret.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect();
            let verb = if missing.len() == 1 { "is" } else { "are" };
            return Err(PlatformError::Setup(format!(
                "Azure: the client-secret credential needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET; {} {verb} not set (or set AZURE_ACCESS_TOKEN instead)",
                missing.join(" and ")
            )));
        }
    };
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
