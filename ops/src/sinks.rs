//! Building the sink for a `vsync sync` target from the saved routing
//! (`sync.<target>` in the env config), the flags of this run and the
//! platform credentials in the environment.
//!
//! Credentials come from the variables each platform's own tooling reads
//! (`GITHUB_TOKEN`, `AWS_ACCESS_KEY_ID`, `VAULT_TOKEN`, …), never from flags:
//! a token on a command line lands in shell history and `ps`.

use vsync_crypto::Zeroizing;
use vsync_engine::sink::{Sink, SinkError};
use vsync_local::config::SyncTargets;

use crate::OpsError;
use crate::sync::Target;

/// Which GitHub secrets a sync writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GithubScope {
    /// Environment secrets of the environment named after the vsync env
    /// (upstream's default), or the one given.
    #[default]
    Environment,
    /// Repository secrets.
    Repository,
    /// Organisation secrets of the given organisation.
    Organization(String),
}

/// Endpoints, credentials and per-run options for every sink.
#[derive(Debug, Clone, Default)]
pub struct SinkSettings {
    /// `GITHUB_TOKEN`, else `GH_TOKEN`.
    pub github_token: Option<Zeroizing<String>>,
    /// `GITHUB_API_URL` (set by GitHub Actions; GitHub Enterprise's
    /// `https://<host>/api/v3`), default `https://api.github.com`.
    pub github_api_url: Option<String>,
    /// `--gh-scope` (with `--gh-org`).
    pub github_scope: GithubScope,
    /// `--gh-environment`: the GitHub environment, when it is not named
    /// after the vsync env.
    pub github_environment: Option<String>,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`.
    pub aws_endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub aws_access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub aws_secret_access_key: Option<Zeroizing<String>>,
    /// `AWS_SESSION_TOKEN`.
    pub aws_session_token: Option<Zeroizing<String>>,
    /// `--aws-force-delete`: prune without the recovery window.
    pub aws_force_delete: bool,
    /// `VSYNC_GCP_ENDPOINT`, default `https://secretmanager.googleapis.com`.
    pub gcp_endpoint: Option<String>,
    /// `GOOGLE_OAUTH_ACCESS_TOKEN`: a bearer token for Secret Manager. When
    /// unset, the sink uses Google's Application Default Credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
    /// `application_default_credentials.json`, the metadata server on GCE,
    /// GKE and Cloud Run), which it reads itself.
    pub gcp_access_token: Option<Zeroizing<String>>,
    /// `VSYNC_AZURE_VAULT_URL`: the full vault URL (sovereign clouds,
    /// tests), instead of `https://<name>.vault.azure.net`.
    pub azure_vault_url: Option<String>,
    /// `AZURE_ACCESS_TOKEN`: a bearer token for Key Vault.
    pub azure_access_token: Option<Zeroizing<String>>,
    /// `VSYNC_AZURE_CA_FILE`: an extra PEM CA to trust for the vault URL.
    pub azure_ca_file: Option<String>,
    /// `VAULT_TOKEN`.
    pub vault_token: Option<Zeroizing<String>>,
    /// `VAULT_NAMESPACE`.
    pub vault_namespace: Option<String>,
}

impl SinkSettings {
    /// Reads every credential and endpoint variable; flags are set by the
    /// caller afterwards.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let secret = |name: &str| var(name).map(Zeroizing::new);
        SinkSettings {
            github_token: secret("GITHUB_TOKEN").or_else(|| secret("GH_TOKEN")),
            github_api_url: var("GITHUB_API_URL"),
            aws_endpoint: var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
                .or_else(|| var("AWS_ENDPOINT_URL")),
            aws_access_key_id: var("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key: secret("AWS_SECRET_ACCESS_KEY"),
            aws_session_token: secret("AWS_SESSION_TOKEN"),
            gcp_endpoint: var("VSYNC_GCP_ENDPOINT"),
            gcp_access_token: secret("GOOGLE_OAUTH_ACCESS_TOKEN"),
            azure_vault_url: var("VSYNC_AZURE_VAULT_URL"),
            azure_access_token: secret("AZURE_ACCESS_TOKEN"),
            azure_ca_file: var("VSYNC_AZURE_CA_FILE"),
            vault_token: secret("VAULT_TOKEN"),
            vault_namespace: var("VAULT_NAMESPACE"),
            ..SinkSettings::default()
        }
    }
}

/// The sink for `target`, routed by the saved `sync` block.
pub(crate) fn build_sink(
    target: Target,
    env: &str,
    routing: Option<&SyncTargets>,
    settings: &SinkSettings,
) -> Result<Box<dyn Sink>, OpsError> {
    let routing = routing.cloned().unwrap_or_default();
    match target {
        #[cfg(feature = "github")]
        Target::GithubActions => github(env, &routing, settings),
        #[cfg(feature = "aws")]
        Target::AwsSecretsManager => aws(&routing, settings),
        #[cfg(feature = "azure")]
        Target::AzureKeyVault => azure(&routing, settings),
        #[cfg(feature = "vault")]
        Target::VaultKv => vault_kv(&routing, settings),
        #[cfg(feature = "gcp")]
        Target::GcpSecretManager => gcp(&routing, settings),
        #[allow(unreachable_patterns)] // every platform's feature is on in the default build
        _ => {
            let _ = (env, &routing, settings);
            Err(OpsError::SinkSetup(format!(
                "this vsync was built without the {} sink",
                target.name()
            )))
        }
    }
}

fn setup(error: SinkError) -> OpsError {
    OpsError::SinkSetup(error.to_string())
}

fn routing_missing(what: &str, flag: &str) -> OpsError {
    OpsError::Usage(format!(
        "no {what} to sync to: pass {flag} (it is saved in the env config for next time)"
    ))
}

#[cfg(feature = "github")]
fn github(
    env: &str,
    routing: &SyncTargets,
    settings: &SinkSettings,
) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::github::GithubSink;

    let mut builder = GithubSink::builder();
    if let Some(url) = &settings.github_api_url {
        builder = builder.base_url(url.as_str());
    }
    if let Some(token) = &settings.github_token {
        builder = builder.token(token.as_str());
    }
    builder = match &settings.github_scope {
        GithubScope::Organization(org) => builder.organization(org.as_str()),
        scope => {
            let repo = routing
                .gh
                .as_ref()
                .map(|gh| gh.repo.as_str())
                .ok_or_else(|| routing_missing("GitHub repository", "--gh-repo=<owner/name>"))?;
            let builder = builder.repository(repo);
            match scope {
                GithubScope::Environment => {
                    builder.environment(settings.github_environment.as_deref().unwrap_or(env))
                }
                _ => builder,
            }
        }
    };
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(feature = "aws")]
fn aws(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::aws::{AwsSecretsManagerSink, DeletePolicy};

    let saved = routing
        .aws
        .as_ref()
        .ok_or_else(|| routing_missing("AWS region", "--aws-region=<region>"))?;
    let mut builder = AwsSecretsManagerSink::builder().region(saved.region.as_str());
    if let Some(prefix) = &saved.secret_prefix {
        builder = builder.prefix(prefix.as_str());
    }
    if let Some(endpoint) = &settings.aws_endpoint {
        builder = builder.endpoint(endpoint.as_str());
    }
    match (&settings.aws_access_key_id, &settings.aws_secret_access_key) {
        (Some(id), Some(secret)) => builder = builder.credentials(id.as_str(), secret.as_str()),
        _ => {
            return Err(OpsError::SinkSetup(
                "AWS: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            ));
        }
    }
    if let Some(token) = &settings.aws_session_token {
        builder = builder.session_token(token.as_str());
    }
    if settings.aws_force_delete {
        builder = builder.delete_policy(DeletePolicy::ForceWithoutRecovery);
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(feature = "azure")]
fn azure(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::azure::KeyVaultSink;

    let mut builder = KeyVaultSink::builder();
    builder = match (&settings.azure_vault_url, &routing.azure) {
        (Some(url), _) => builder.vault_url(url.as_str()),
        (None, Some(saved)) => builder.vault_name(&saved.vault_name),
        (None, None) => return Err(routing_missing("Azure Key Vault", "--azure-vault=<name>")),
    };
    let token = settings.azure_access_token.as_ref().ok_or_else(|| {
        OpsError::SinkSetup(
            "Azure: no access token; set AZURE_ACCESS_TOKEN (e.g. from `az account get-access-token --resource https://vault.azure.net`)".into(),
        )
    })?;
    builder = builder.access_token(token.as_str());
    if let Some(file) = &settings.azure_ca_file {
        let pem = std::fs::read(file).map_err(|source| OpsError::Io {
            path: file.into(),
            source,
        })?;
        builder = builder.extra_ca_pem(pem);
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(feature = "vault")]
fn vault_kv(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::vault_kv::VaultKvSink;

    let saved = routing.vault.as_ref().ok_or_else(|| {
        routing_missing("Vault address", "--vault-addr=<url> --vault-path=<path>")
    })?;
    if saved.secret_path.is_empty() {
        return Err(routing_missing("Vault secret path", "--vault-path=<path>"));
    }
    let token = settings
        .vault_token
        .as_ref()
        .ok_or_else(|| OpsError::SinkSetup("Vault: no token; set VAULT_TOKEN".into()))?;
    let mut builder = VaultKvSink::builder()
        .address(saved.addr.as_str())
        .mount(saved.mount.as_str())
        .path(saved.secret_path.as_str())
        .token(token);
    if let Some(namespace) = &settings.vault_namespace {
        builder = builder.namespace(namespace.as_str());
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}

#[cfg(feature = "gcp")]
fn gcp(routing: &SyncTargets, settings: &SinkSettings) -> Result<Box<dyn Sink>, OpsError> {
    use vsync_sinks::gcp::GcpSecretManagerSink;

    let saved = routing
        .gcp
        .as_ref()
        .ok_or_else(|| routing_missing("GCP project", "--gcp-project=<id>"))?;
    let mut builder = GcpSecretManagerSink::builder().project(saved.project.as_str());
    // The token wins when set; otherwise Application Default Credentials.
    if let Some(token) = &settings.gcp_access_token {
        builder = builder.access_token(token);
    }
    if let Some(endpoint) = &settings.gcp_endpoint {
        builder = builder.endpoint(endpoint.as_str());
    }
    Ok(Box::new(builder.build().map_err(setup)?))
}
