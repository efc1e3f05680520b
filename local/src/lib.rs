//! The machine-local state of vsync, path- and byte-compatible with the
//! upstream CLI: the per-(repo, env) config, profiles, the key store, the
//! sync ledger, backups, the `.vsync` pin and the repo identity.
//!
//! Nothing here reads global state on its own: every function takes the
//! config base, the paths and the environment values it needs, so tests run
//! against a temporary directory and never touch the real `~/.config`.
//! Nothing here prints either: warnings are returned to the caller.
//!
//! - [`paths`]: the config base and every path below it;
//! - [`config`]: the gzip JSON `env_<env>` config;
//! - [`keystore`]: where the 32-byte bundle key lives (OS keychain or file);
//! - [`pin`]: the committed `.vsync` identity pin;
//! - [`identity`]: which repo a working tree belongs to;
//! - [`ledger`]: the sync-state ledger and the dirty check;
//! - [`profile`]: the named S3 profiles;
//! - [`backup`]: the encrypted rolling backup and the plain `--backup` copy;
//! - [`time`]: instants rendered as upstream (Node's `toISOString()`) writes them.
#![forbid(unsafe_code)]

pub mod backup;
pub mod config;
pub mod fsutil;
pub mod identity;
pub mod keystore;
pub mod ledger;
pub mod paths;
pub mod pin;
pub mod profile;
pub mod time;

pub use config::EnvConfig;
pub use keystore::Keystore;
pub use paths::ConfigBase;
