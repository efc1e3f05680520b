//! The same API without an async runtime: each call that touches the
//! bucket runs on a small runtime the handle owns.
//!
//! Do not call these from inside an async runtime (tokio panics on a nested
//! `block_on`); use the async API there.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use vsync_engine::store::Store;

use crate::{Error, Options, RemoteVersion};

/// A [`crate::Client`] with blocking `remote_generation` and
/// `has_new_version`; every in-memory accessor (`get_env`, `has_env`,
/// `env_source`, `get_as_content`, `generation`, …) is reached through
/// `Deref`.
pub struct Client {
    inner: crate::Client,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl Deref for Client {
    type Target = crate::Client;

    fn deref(&self) -> &crate::Client {
        &self.inner
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

fn run(
    open: impl FnOnce(&tokio::runtime::Runtime) -> Result<crate::Client, Error>,
) -> Result<Client, Error> {
    let runtime = runtime();
    let inner = open(&runtime)?;
    Ok(Client { inner, runtime })
}

/// Blocking [`crate::open()`].
pub fn open(options: Options) -> Result<Client, Error> {
    run(|runtime| runtime.block_on(crate::open(options)))
}

/// Blocking [`crate::open_with()`].
pub fn open_with(config: &str, passphrase: &str, options: Options) -> Result<Client, Error> {
    run(|runtime| runtime.block_on(crate::open_with(config, passphrase, options)))
}

/// Blocking [`crate::open_with_store()`].
pub fn open_with_store(
    store: Arc<dyn Store>,
    config: &str,
    passphrase: &str,
    options: Options,
) -> Result<Client, Error> {
    run(|runtime| runtime.block_on(crate::open_with_store(store, config, passphrase, options)))
}

impl Client {
    /// Blocking [`crate::Client::remote_version`].
    pub fn remote_version(&self) -> Result<RemoteVersion, Error> {
        self.runtime.block_on(self.inner.remote_version())
    }

    /// Blocking [`crate::Client::remote_generation`].
    pub fn remote_generation(&self) -> Result<u64, Error> {
        self.runtime.block_on(self.inner.remote_generation())
    }

    /// Blocking [`crate::Client::has_new_version`].
    pub fn has_new_version(&self) -> Result<bool, Error> {
        self.runtime.block_on(self.inner.has_new_version())
    }

    /// Closes the handle, wiping every value now.
    pub fn close(self) {
        drop(self);
    }
}
