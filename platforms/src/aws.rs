//! AWS Secrets Manager (`aws`): as a sink, one secret per key, named
//! prefix + key; as a source, every secret of a region (under a name
//! prefix), JSON objects split into keys on request.
//!
//! Credentials, for both: a static key (`AWS_ACCESS_KEY_ID` with
//! `AWS_SECRET_ACCESS_KEY`, and `AWS_SESSION_TOKEN`), else AWS's standard
//! chain (`AWS_PROFILE` or the default profile — SSO, assumed roles,
//! `credential_process` — web identity, container or instance role).
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`, moves the
//! endpoint.

use serde::Deserialize;
use vsync_connections::aws::Access;
use vsync_engine::sink::Sink;
use vsync_engine::source::Source;
use vsync_sinks::aws::{AwsSecretsManagerSink, DeletePolicy};
use vsync_sources::aws::AwsSecretsManagerSource;

use crate::{
    CredentialSource, Credentials, Platform, PlatformError, Saved, Setting, SettingKind,
    SinkRequest, SinkSide, SourceRequest, SourceSetting, SourceSide, parse_routing,
};

/// The registry's entry.
pub static PLATFORM: Platform = Platform {
    name: "aws-secrets-manager",
    short: "aws",
    about: "AWS Secrets Manager",
    sink: Some(&SINK),
    source: Some(&SOURCE),
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
    credentials: CREDENTIALS,
    check: |routing| parse_routing::<AwsRouting>(PLATFORM.short, routing).map(drop),
    build: sink,
    credential_source,
};

const CREDENTIALS: &str = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), else AWS_PROFILE or a role; AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL";

/// What importing from it takes.
static SOURCE: SourceSide = SourceSide {
    aliases: &[],
    settings: &[
        SourceSetting {
            field: "region",
            kind: SettingKind::Text,
            help: "AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION)",
        },
        SourceSetting {
            field: "prefix",
            kind: SettingKind::Text,
            help: "only secrets whose names start with it (filtered by AWS; --prefix strips it)",
        },
        SourceSetting {
            field: "splitJson",
            kind: SettingKind::Switch,
            help: "a secret holding a JSON object gives one key per field",
        },
    ],
    credentials: CREDENTIALS,
    build: source,
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
    let mut builder = AwsSecretsManagerSink::builder().access(access(request, region)?);
    if let Some(prefix) = routing.secret_prefix {
        builder = builder.prefix(prefix);
    }
    if routing.force_delete {
        builder = builder.delete_policy(DeletePolicy::ForceWithoutRecovery);
    }
    Ok(Box::new(builder.build()?))
}

/// `--set region=… prefix=… splitJson=true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AwsSourceSettings {
    region: Option<String>,
    prefix: Option<String>,
    #[serde(default)]
    split_json: bool,
}

fn source(request: &SourceRequest<'_>) -> Result<Box<dyn Source>, PlatformError> {
    let settings: AwsSourceSettings = parse_routing(PLATFORM.short, request.settings)?;
    // Import settings are not saved, so the region falls back to where the
    // AWS CLI finds it in the environment.
    let region = settings
        .region
        .or_else(|| request.var("AWS_REGION"))
        .or_else(|| request.var("AWS_DEFAULT_REGION"))
        .ok_or_else(|| {
            PlatformError::Setup(
                "AWS: no region to import from; pass --set region=<region> or set AWS_REGION"
                    .into(),
            )
        })?;
    let mut builder = AwsSecretsManagerSource::builder()
        .access(access(request, region)?)
        .split_json(settings.split_json);
    if let Some(prefix) = settings.prefix {
        builder = builder.prefix(prefix);
    }
    Ok(Box::new(builder.build()?))
}

/// How the environment says to reach Secrets Manager of `region`, for the
/// sink and the source alike: the endpoint when moved, and a static key
/// when one is set (else AWS's standard chain finds the credentials).
fn access(request: &impl Credentials, region: String) -> Result<Access, PlatformError> {
    let mut access = with_static_key(request, Access::region(region))?;
    if let Some(endpoint) = request
        .var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|| request.var("AWS_ENDPOINT_URL"))
    {
        access = access.endpoint(endpoint);
    }
    Ok(access)
}

/// `access` with the environment's static key, when one is set.
fn with_static_key(
    request: &impl Credentials,
    mut access: Access,
) -> Result<Access, PlatformError> {
    match (
        request.var("AWS_ACCESS_KEY_ID"),
        request.secret("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => access = access.credentials(id, secret.as_str()),
        (None, None) => {}
        (Some(_), None) | (None, Some(_)) => {
            return Err(PlatformError::Setup(
                "AWS: only half of a static key is set; set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither to use a profile or role".into(),
            ));
        }
    }
    if let Some(token) = request.secret("AWS_SESSION_TOKEN") {
        access = access.session_token(token.as_str());
    }
    Ok(access)
}

/// The static key the sink would be given, else what AWS's standard chain
/// would most likely use; an instance role is left to a real call. (The
/// region and the endpoint do not change where credentials come from.)
fn credential_source(request: &SinkRequest<'_>) -> Result<CredentialSource, PlatformError> {
    let origin = with_static_key(request, Access::default())?.origin(&|name| request.var(name));
    let described = origin.describe();
    Ok(if origin.is_ambient() {
        CredentialSource::Ambient(described)
    } else {
        CredentialSource::Found(described)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{ambient, credential_source_in, found};

    fn build(settings: serde_json::Value, env: &[(&str, &str)]) -> Result<String, PlatformError> {
        let serde_json::Value::Object(settings) = settings else {
            unreachable!("settings are an object")
        };
        let environment = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        let request = SourceRequest {
            settings: &settings,
            environment: &environment,
            vault_folder_of: &|_| unreachable!("AWS reads no vault folder"),
        };
        source(&request).map(|source| source.origin())
    }

    #[test]
    fn the_source_takes_its_region_endpoint_and_key_from_the_environment() {
        let env = [
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        let origin = build(
            serde_json::json!({"prefix": "app/", "splitJson": true}),
            &env,
        )
        .unwrap();
        assert_eq!(
            origin,
            "aws-secrets-manager:region=eu-west-1,prefix=app/,endpoint=http://127.0.0.1:4566,split-json"
        );
        // The setting beats the environment; AWS_REGION beats its default.
        let origin = build(serde_json::json!({"region": "us-east-2"}), &env).unwrap();
        assert!(
            origin.starts_with("aws-secrets-manager:region=us-east-2,"),
            "{origin}"
        );
        let mut with_region = env.to_vec();
        with_region.push(("AWS_REGION", "ap-south-1"));
        let origin = build(serde_json::json!({}), &with_region).unwrap();
        assert!(
            origin.starts_with("aws-secrets-manager:region=ap-south-1,"),
            "{origin}"
        );
    }

    #[test]
    fn the_source_refuses_what_cannot_work_before_any_request() {
        let error = build(serde_json::json!({}), &[]).unwrap_err().to_string();
        assert!(
            error.contains("--set region=") && error.contains("AWS_REGION"),
            "{error}"
        );
        let region = ("AWS_REGION", "eu-west-1");
        let error = build(
            serde_json::json!({}),
            &[region, ("AWS_ACCESS_KEY_ID", "AKID")],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("AWS_SECRET_ACCESS_KEY"), "{error}");
        // A key is never sent in the clear beyond this machine.
        let error = build(
            serde_json::json!({}),
            &[
                region,
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://sm.example"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("https"), "{error}");
        let error = build(serde_json::json!({"prefix": "!negated"}), &[region])
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"!negated\""), "{error}");
        let error = build(serde_json::json!({"secretPrefix": "app/"}), &[region])
            .unwrap_err()
            .to_string();
        assert!(error.contains("secretPrefix"), "{error}");
    }

    fn source_of(vars: &[(&str, &str)]) -> Result<CredentialSource, PlatformError> {
        credential_source_in(&SINK, vars)
    }

    #[test]
    fn the_credentials_are_named_in_the_standard_chains_order_never_their_value() {
        let home = tempfile::tempdir().unwrap();
        let home_dir = home.path().display().to_string();
        let secrets = ["AKIDVALUE", "wJalrXUtnFEMI", "token-value"];
        let key = [
            ("AWS_ACCESS_KEY_ID", secrets[0]),
            ("AWS_SECRET_ACCESS_KEY", secrets[1]),
            ("AWS_SESSION_TOKEN", secrets[2]),
            ("AWS_PROFILE", "dev"),
        ];
        assert_eq!(
            found(source_of(&key), &secrets),
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        );
        let error = source_of(&key[1..]).unwrap_err().to_string();
        assert!(error.contains("AWS_ACCESS_KEY_ID"), "{error}");

        // Without a key: what the chain would find first.
        let home_only = [("HOME", home_dir.as_str())];
        let instance = ambient(source_of(&home_only), &secrets);
        assert_eq!(
            instance,
            "an instance role, through the instance metadata service"
        );
        let container = [
            ("HOME", home_dir.as_str()),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1/creds",
            ),
        ];
        assert_eq!(
            found(source_of(&container), &secrets),
            "the container's role (AWS_CONTAINER_CREDENTIALS_FULL_URI)"
        );
        let web_identity = [
            ("HOME", home_dir.as_str()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks/token"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1/creds",
            ),
        ];
        assert!(found(source_of(&web_identity), &secrets).contains("AWS_WEB_IDENTITY_TOKEN_FILE"));
        let aws = home.path().join(".aws");
        std::fs::create_dir(&aws).unwrap();
        let credentials = aws.join("credentials");
        std::fs::write(
            &credentials,
            format!("[default]\naws_secret_access_key = {}\n", secrets[1]),
        )
        .unwrap();
        assert_eq!(
            found(source_of(&web_identity), &secrets),
            format!("the default profile of {}", credentials.display())
        );
        assert_eq!(
            found(source_of(&key[3..]), &secrets),
            "the profile \"dev\" (AWS_PROFILE)"
        );
        let config = home.path().join("config");
        std::fs::write(&config, "[profile dev]\nsso_session = corp\n").unwrap();
        let config = config.display().to_string();
        let profile = [
            ("HOME", home_dir.as_str()),
            ("AWS_PROFILE", "dev"),
            ("AWS_CONFIG_FILE", config.as_str()),
        ];
        assert_eq!(
            found(source_of(&profile), &secrets),
            format!(
                "the profile \"dev\" (AWS_PROFILE) of {config} and {}",
                credentials.display()
            )
        );
    }
}
