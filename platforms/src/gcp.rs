//! GCP Secret Manager (`gcp`): one secret per key in a project.
//!
//! Credentials: `GOOGLE_OAUTH_ACCESS_TOKEN` when set, else Google's
//! Application Default Credentials, which the sink reads itself
//! (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//! `application_default_credentials.json`, the metadata server on GCE, GKE
//! and Cloud Run). `VSYNC_GCP_ENDPOINT` moves the API.

use serde::Deserialize;
use vsync_engine::sink::Sink;
use vsync_sinks::gcp::GcpSecretManagerSink;

use crate::{
    Credentials, Platform, PlatformError, Saved, Setting, SettingKind, SinkRequest, SinkSide,
    parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "gcp-secret-manager",
    short: "gcp",
    about: "GCP Secret Manager",
    sink: Some(&SINK),
    source: None,
};

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
    credentials: "GOOGLE_OAUTH_ACCESS_TOKEN, else Application Default Credentials; VSYNC_GCP_ENDPOINT",
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
