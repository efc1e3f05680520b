//! `runtime-token`: mints the `vsync-cfg-v1:` blob an application's
//! `open()` reads from `VSYNC_CONFIG` (§1.6, §5.12).

use vsync_crypto::config_blob::RuntimeConfig;
use vsync_crypto::kdf::DEFAULT_ITERATIONS;
use vsync_local::EnvConfig;
use zeroize::Zeroizing;

use crate::{Context, OpsError, layout, open_store};

/// Credentials to put in the blob instead of the config's (a scoped
/// read-only key is what a running application should hold).
#[derive(Default)]
pub struct TokenOverrides {
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Zeroizing<String>>,
}

/// What `runtime-token` minted.
pub struct RuntimeToken {
    /// `vsync-cfg-v1:…`, to store as the app's `VSYNC_CONFIG` secret.
    pub blob: Zeroizing<String>,
    /// Set when the check read of the pointer did not succeed: the blob is
    /// still minted, this says why it may not work yet.
    pub warning: Option<String>,
}

impl std::fmt::Debug for TokenOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenOverrides")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl std::fmt::Debug for RuntimeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The blob carries the store credentials.
        f.debug_struct("RuntimeToken")
            .field("blob", &"<redacted>")
            .field("warning", &self.warning)
            .finish()
    }
}

/// Builds the blob for `env` and, unless `validate` is false, checks with
/// the minted credentials that the env's pointer can be read.
pub async fn runtime_token(
    ctx: &Context,
    env: &str,
    overrides: TokenOverrides,
    validate: bool,
) -> Result<RuntimeToken, OpsError> {
    let repo = ctx.repo()?;
    let mut config = EnvConfig::load_for(&ctx.base, repo.name(), env)?;
    if config.local_store_dir().is_some() {
        return Err(OpsError::Usage(format!(
            "{}/{env} lives in the local directory store, which applications cannot read; init it with a bucket profile (`vsync init {env} --profile=<name> --force`) to mint a runtime token",
            repo.name()
        )));
    }
    if let Some(access_key_id) = overrides.access_key_id {
        config.s3.access_key_id = access_key_id;
    }
    if let Some(secret) = overrides.secret_access_key {
        config.s3.secret_access_key = secret;
    }
    let layout = layout(&config, repo.name(), env)?;
    let mut warning = None;
    if validate {
        let store = open_store(&config)?;
        match store.head(&layout.latest_key()).await? {
            Some(_) => {}
            None => {
                warning = Some(format!(
                    "nothing is published under {} yet; the app will fail with ManifestNotFound until `vsync push {env}` runs",
                    layout.prefix()
                ));
            }
        }
    }
    let s3 = &config.s3;
    let runtime = RuntimeConfig {
        endpoint: endpoint_with_scheme(&s3.endpoint, s3.use_ssl),
        region: s3.region.clone(),
        bucket: s3.bucket.clone(),
        access_key_id: Zeroizing::new(s3.access_key_id.clone()),
        secret_access_key: s3.secret_access_key.clone(),
        prefix: layout.prefix().to_owned(),
        env: env.to_owned(),
        salt: Zeroizing::new(config.encryption.salt.clone()),
        iterations: DEFAULT_ITERATIONS,
    };
    Ok(RuntimeToken {
        blob: runtime.encode(),
        warning,
    })
}

/// Upstream stores endpoints without a scheme too; `useSsl` picks one.
pub(crate) fn endpoint_with_scheme(endpoint: &str, use_ssl: bool) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else if use_ssl {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}
