//! GCP Secret Manager (`gcp`): one secret per key in a project, synced to
//! and imported from (`--set project=<id> [--set filter=<list filter>]`).
//!
//! Credentials, for both: `GOOGLE_OAUTH_ACCESS_TOKEN` when set, else
//! Google's Application Default Credentials, which the connection reads
//! itself (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//! `application_default_credentials.json`, the metadata server on GCE, GKE
//! and Cloud Run). `VSYNC_GCP_ENDPOINT` moves the API.

use std::ffi::OsString;

use serde::Deserialize;
use vsync_connections::gcp::{Auth, Source as GoogleSource};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::Sink;
use vsync_engine::source::Source;
use vsync_sinks::gcp::GcpSecretManagerSink;
use vsync_sources::gcp::GcpSecretManagerSource;

use crate::{
    CredentialSource, Credentials, Platform, PlatformError, Saved, Setting, SettingKind,
    SinkRequest, SinkSide, SourceRequest, SourceSetting, SourceSide, parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "gcp-secret-manager",
    short: "gcp",
    about: "GCP Secret Manager",
    sink: Some(&SINK),
    source: Some(&SOURCE),
};

/// Where the credentials (and the endpoint) come from, for help text.
const CREDENTIALS: &str =
    "GOOGLE_OAUTH_ACCESS_TOKEN, else Application Default Credentials; VSYNC_GCP_ENDPOINT";

/// What syncing to it takes.
static SINK: SinkSide = SinkSide {
    settings: &[Setting {
        field: "project",
        flag: "gcp-project",
        saved: Saved::Required,
        default: None,
        kind: SettingKind::Text,
        help: "GCP project id (saved)",
    }],
    credentials: CREDENTIALS,
    check: |routing| parse_routing::<GcpRouting>(PLATFORM.short, routing).map(drop),
    build: sink,
    credential_source,
};

/// `sync.gcp`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcpRouting {
    project: Option<String>,
}

fn sink(request: &SinkRequest<'_>) -> Result<Box<dyn Sink>, PlatformError> {
    let routing: GcpRouting = parse_routing(PLATFORM.short, request.routing)?;
    let project = routing.project.ok_or(PlatformError::MissingRouting {
        what: "GCP project",
        flag: "--gcp-project=<id>",
    })?;
    let mut builder = GcpSecretManagerSink::builder().project(project);
    if let Some(token) = access_token(request) {
        builder = builder.access_token(&token);
    }
    if let Some(endpoint) = request.var("VSYNC_GCP_ENDPOINT") {
        builder = builder.endpoint(endpoint);
    }
    Ok(Box::new(builder.build()?))
}

/// The token, which wins when set; otherwise the connection picks
/// Application Default Credentials.
fn access_token(request: &dyn Credentials) -> Option<Zeroizing<String>> {
    request.secret("GOOGLE_OAUTH_ACCESS_TOKEN")
}

/// The credentials the connection picks, named. The sink's pick reads
/// Application Default Credentials' variables from the process environment,
/// as `google-cloud-auth` does when it builds them; this one from the
/// request's, which in the CLI is the process environment too. Only the
/// metadata server is left to a real call.
fn credential_source(request: &SinkRequest<'_>) -> Result<CredentialSource, PlatformError> {
    // Unfiltered: a set but empty GOOGLE_APPLICATION_CREDENTIALS is refused,
    // as the sink refuses it.
    let environment = |name: &str| (request.environment)(name).map(OsString::from);
    let auth = Auth::choose_in(access_token(request), None, &environment)?;
    let described = auth.describe();
    Ok(match auth {
        Auth::Google(GoogleSource::Metadata { .. }) => CredentialSource::Ambient(described),
        _ => CredentialSource::Found(described),
    })
}

/// What importing from it takes.
static SOURCE: SourceSide = SourceSide {
    aliases: &[],
    settings: &[
        SourceSetting {
            field: "project",
            kind: SettingKind::Text,
            help: "GCP project id",
        },
        SourceSetting {
            field: "filter",
            kind: SettingKind::Text,
            help: "Secret Manager list filter, e.g. labels.team=api or name:app_",
        },
    ],
    credentials: CREDENTIALS,
    build: source,
};

/// `--set project=… [--set filter=…]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcpSourceSettings {
    project: Option<String>,
    filter: Option<String>,
}

fn source(request: &SourceRequest<'_>) -> Result<Box<dyn Source>, PlatformError> {
    let settings: GcpSourceSettings = parse_routing(PLATFORM.short, request.settings)?;
    // The builder names `--set project=<id>` when it is missing.
    let mut builder = GcpSecretManagerSource::builder();
    if let Some(project) = settings.project {
        builder = builder.project(project);
    }
    if let Some(filter) = settings.filter {
        builder = builder.filter(filter);
    }
    if let Some(token) = access_token(request) {
        builder = builder.access_token(&token);
    }
    if let Some(endpoint) = request.var("VSYNC_GCP_ENDPOINT") {
        builder = builder.endpoint(endpoint);
    }
    Ok(Box::new(builder.build()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ambient, credential_source_in, found};

    fn source_of(vars: &[(&str, &str)]) -> Result<CredentialSource, PlatformError> {
        credential_source_in(&SINK, vars)
    }

    #[test]
    fn the_credentials_are_named_in_application_default_order_never_their_value() {
        let home = tempfile::tempdir().unwrap();
        let home_dir = home.path().display().to_string();
        let key = home.path().join("sa.json");
        std::fs::write(
            &key,
            r#"{"type": "service_account", "private_key": "-----BEGIN"}"#,
        )
        .unwrap();
        let key = key.display().to_string();
        let secrets = ["ya29.token-value", "BEGIN"];
        let mut vars = vec![
            ("GOOGLE_OAUTH_ACCESS_TOKEN", secrets[0]),
            ("GOOGLE_APPLICATION_CREDENTIALS", key.as_str()),
            ("HOME", home_dir.as_str()),
            ("GCE_METADATA_HOST", "metadata.test"),
        ];
        assert_eq!(
            found(source_of(&vars), &secrets),
            "the access token in GOOGLE_OAUTH_ACCESS_TOKEN"
        );
        assert_eq!(
            found(source_of(&vars[1..]), &secrets),
            format!("the credentials file {key} (GOOGLE_APPLICATION_CREDENTIALS)")
        );
        // gcloud's file, when there is one; else the metadata server.
        assert_eq!(
            ambient(source_of(&vars[2..]), &secrets),
            "the metadata server (metadata.test)"
        );
        let gcloud = home.path().join(".config/gcloud");
        std::fs::create_dir_all(&gcloud).unwrap();
        let adc = gcloud.join("application_default_credentials.json");
        std::fs::write(
            &adc,
            r#"{"type": "authorized_user", "refresh_token": "1//BEGIN"}"#,
        )
        .unwrap();
        assert_eq!(
            found(source_of(&vars[2..]), &secrets),
            format!(
                "gcloud's application-default credentials ({})",
                adc.display()
            )
        );

        vars[1].1 = "/nonexistent/sa.json";
        let error = source_of(&vars[1..]).unwrap_err().to_string();
        assert!(error.contains("/nonexistent/sa.json"), "{error}");
        vars[1].1 = "";
        let error = source_of(&vars[1..]).unwrap_err().to_string();
        assert!(error.contains("set but empty"), "{error}");
    }
}
