//! `vsync compare <env1> <env2>`: which keys only one env has, and which
//! shared keys hold different values — told by fingerprints under a key
//! made for this run alone, never by the values.

use std::collections::BTreeMap;

use serde::Serialize;
use vsync_crypto::Zeroizing;
use vsync_crypto::fingerprint::FingerprintKey;

use crate::lifecycle::Env;
use crate::sync::{ParserPolicy, read_env_file};
use crate::{Context, OpsError};

/// How many hex digits of a fingerprint are shown: enough to tell values
/// apart at a glance, the comparison itself uses all of them.
const SHOWN_DIGITS: usize = 12;

/// What two envs' `.env` files hold, compared by key.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The two envs, as given.
    pub envs: [String; 2],
    /// Keys only the first env has.
    pub only_in_first: Vec<String>,
    /// Keys only the second env has.
    pub only_in_second: Vec<String>,
    /// Keys both have with the same value.
    pub same: Vec<String>,
    /// Keys both have with different values.
    pub different: Vec<Difference>,
}

/// A key whose values differ, with each value's fingerprint for this run.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The key.
    pub key: String,
    /// The first env's value's fingerprint (the first hex digits).
    pub first: String,
    /// The second env's.
    pub second: String,
}

/// Compares the `.env.<env>` of `first` and `second` (both of this repo).
pub fn compare(ctx: &Context, first: &str, second: &str) -> Result<Comparison, OpsError> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut()).expect("the operating system random source is available");
    let fingerprints = FingerprintKey::from_bytes(key);
    let first_values = fingerprinted(ctx, first, &fingerprints)?;
    let second_values = fingerprinted(ctx, second, &fingerprints)?;
    let mut comparison = Comparison {
        envs: [first.to_owned(), second.to_owned()],
        only_in_first: Vec::new(),
        only_in_second: Vec::new(),
        same: Vec::new(),
        different: Vec::new(),
    };
    for (key, fingerprint) in &first_values {
        match second_values.get(key) {
            None => comparison.only_in_first.push(key.clone()),
            Some(other) if other == fingerprint => comparison.same.push(key.clone()),
            Some(other) => comparison.different.push(Difference {
                key: key.clone(),
                first: fingerprint[..SHOWN_DIGITS].to_owned(),
                second: other[..SHOWN_DIGITS].to_owned(),
            }),
        }
    }
    comparison.only_in_second = second_values
        .keys()
        .filter(|key| !first_values.contains_key(*key))
        .cloned()
        .collect();
    Ok(comparison)
}

/// Each key of `env`'s `.env.<env>` with its value's fingerprint, sorted.
fn fingerprinted(
    ctx: &Context,
    env: &str,
    fingerprints: &FingerprintKey,
) -> Result<BTreeMap<String, String>, OpsError> {
    let env = Env::load(ctx, env)?;
    env.check_vault_path()?;
    let env_file = env.vault_dir.join(format!(".env.{}", env.name));
    let home = std::env::var_os("HOME").ok_or(OpsError::NoHome)?;
    let (desired, _) = read_env_file(&env_file, &ParserPolicy::default(), home.as_ref())?;
    Ok(desired
        .into_iter()
        .map(|secret| {
            let fingerprint = fingerprints.fingerprint(secret.value.as_bytes());
            (secret.key, fingerprint)
        })
        .collect())
}
