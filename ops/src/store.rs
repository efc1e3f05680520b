//! From a config to the store and the object layout it addresses.

use std::sync::Arc;

use vsync_backends::fs::FsStore;
use vsync_backends::s3::{Provider, S3Store};
use vsync_engine::store::Store;
use vsync_engine::vault::Layout;
use vsync_local::EnvConfig;

use crate::OpsError;
use crate::token::endpoint_with_scheme;

/// Opens the store a config names: the local directory store for a
/// `file://` endpoint, otherwise the S3-compatible store (proxies from the
/// environment; the provider preset from `s3.provider` when set, else
/// detected from the endpoint).
pub fn open_store(config: &EnvConfig) -> Result<Arc<dyn Store>, OpsError> {
    if let Some(dir) = config.local_store_dir() {
        let store = FsStore::open(&dir).map_err(|source| OpsError::Io { path: dir, source })?;
        return Ok(Arc::new(store));
    }
    let s3 = &config.s3;
    let mut builder = S3Store::builder()
        .endpoint(endpoint_with_scheme(&s3.endpoint, s3.use_ssl))
        .region(s3.region.as_str())
        .bucket(s3.bucket.as_str())
        .credentials(s3.access_key_id.as_str(), s3.secret_access_key.as_str());
    if let Some(name) = s3.provider() {
        let provider: Provider = name.parse().map_err(|problem| {
            OpsError::Usage(format!(
                "the env config's s3.provider: {problem}; re-run `vsync init` with --provider=<preset>"
            ))
        })?;
        builder = builder.provider(provider);
    }
    Ok(Arc::new(builder.build()?))
}

/// The object layout of `repo`/`env`: the config's `prefix` when set
/// (DESIGN decision 2), else `<repo>/<env>/`.
pub fn layout(config: &EnvConfig, repo: &str, env: &str) -> Result<Layout, OpsError> {
    match config.prefix.as_deref() {
        Some(prefix) if !prefix.is_empty() => Ok(Layout::new(prefix)?),
        _ => Ok(Layout::for_repo_env(repo, env)),
    }
}
