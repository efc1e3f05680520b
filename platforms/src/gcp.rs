//! GCP Secret Manager (`gcp`): one secret per key in a project, synced to
//! and imported from (`--set project=<id> [--set filter=<list filter>]`).
//!
//! Credentials, for both: `GOOGLE_OAUTH_ACCESS_TOKEN` when set, else
//! Google's Application Default Credentials, which the connection reads
//! itself (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//! `application_default_credentials.json`, the metadata server on GCE, GKE
//! and Cloud Run). `VSYNC_GCP_ENDPOINT` moves the API.

use serde::Deserialize;
use vsync_engine::sink::Sink;
use vsync_engine::source::Source;
use vsync_sinks::gcp::GcpSecretManagerSink;
use vsync_sources::gcp::GcpSecretManagerSource;

use crate::{
    Credentials, Platform, PlatformError, Saved, Setting, SettingKind, SinkRequest, SinkSide,
    SourceRequest, SourceSetting, SourceSide, parse_routing,
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
    // The token wins when set; otherwise Application Default Credentials.
    if let Some(token) = request.secret("GOOGLE_OAUTH_ACCESS_TOKEN") {
        builder = builder.access_token(&token);
    }
    if let Some(endpoint) = request.var("VSYNC_GCP_ENDPOINT") {
        builder = builder.endpoint(endpoint);
    }
    Ok(Box::new(builder.build()?))
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
    // The token wins when set; otherwise Application Default Credentials.
    if let Some(token) = request.secret("GOOGLE_OAUTH_ACCESS_TOKEN") {
        builder = builder.access_token(&token);
    }
    if let Some(endpoint) = request.var("VSYNC_GCP_ENDPOINT") {
        builder = builder.endpoint(endpoint);
    }
    Ok(Box::new(builder.build()?))
}
