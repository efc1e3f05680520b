//! AWS Secrets Manager (`aws`): one secret per key, named prefix + key.
//!
//! Credentials: a static key (`AWS_ACCESS_KEY_ID` with
//! `AWS_SECRET_ACCESS_KEY`, and `AWS_SESSION_TOKEN`), else AWS's standard
//! chain (`AWS_PROFILE` or the default profile — SSO, assumed roles,
//! `credential_process` — web identity, container or instance role).
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`, moves the
//! endpoint.

use serde::Deserialize;
use vsync_engine::sink::Sink;
use vsync_sinks::aws::{AwsSecretsManagerSink, DeletePolicy};

use crate::{
    Credentials, Platform, PlatformError, Saved, Setting, SettingKind, SinkRequest, SinkSide,
    parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "aws-secrets-manager",
    short: "aws",
    about: "AWS Secrets Manager",
    sink: Some(&SINK),
    source: None,
};

/// What syncing to it takes.
static SINK: SinkSide = SinkSide {
    settings: &[
        Setting {
            field: "region",
            flag: "aws-region",
            saved: Saved::Required,
            default: None,
            kind: SettingKind::Text,
            help: "AWS region (saved)",
        },
        Setting {
            field: "secretPrefix",
            flag: "aws-secret-prefix",
            saved: Saved::Optional,
            default: None,
            kind: SettingKind::Text,
            help: "Prefix of the AWS secret names (saved)",
        },
        Setting {
            field: "forceDelete",
            flag: "aws-force-delete",
            saved: Saved::No,
            default: None,
            kind: SettingKind::Switch,
            help: "Prune AWS secrets without the recovery window",
        },
    ],
    credentials: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), else AWS_PROFILE or a role; AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL",
    check: |routing| parse_routing::<AwsRouting>(PLATFORM.short, routing).map(drop),
    build: sink,
};

/// `sync.aws` plus this run's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AwsRouting {
    region: Option<String>,
    secret_prefix: Option<String>,
    #[serde(default)]
    force_delete: bool,
}

fn sink(request: &SinkRequest<'_>) -> Result<Box<dyn Sink>, PlatformError> {
    let routing: AwsRouting = parse_routing(PLATFORM.short, request.routing)?;
    let region = routing.region.ok_or(PlatformError::MissingRouting {
        what: "AWS region",
        flag: "--aws-region=<region>",
    })?;
    let mut builder = AwsSecretsManagerSink::builder().region(region);
    if let Some(prefix) = routing.secret_prefix {
        builder = builder.prefix(prefix);
    }
    if let Some(endpoint) = request
        .var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|| request.var("AWS_ENDPOINT_URL"))
    {
        builder = builder.endpoint(endpoint);
    }
    match (
        request.var("AWS_ACCESS_KEY_ID"),
        request.secret("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => builder = builder.credentials(id.as_str(), secret.as_str()),
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(PlatformError::Setup(
                "AWS: only half of a static key is set; set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither to use a profile or role".into(),
            ));
        }
    }
    if let Some(token) = request.secret("AWS_SESSION_TOKEN") {
        builder = builder.session_token(token.as_str());
    }
    if routing.force_delete {
        builder = builder.delete_policy(DeletePolicy::ForceWithoutRecovery);
    }
    Ok(Box::new(builder.build()?))
}
