//! `vsync profile …`: the named S3 profiles `init` uses, kept under the
//! config base (upstream's `profiles/<name>.json`, 0600).

use std::path::PathBuf;

pub use vsync_local::profile::{Profile, SECRET_MASK, mask_access_key};

use crate::{Context, OpsError};

/// Every profile, sorted by name.
pub fn list_profiles(ctx: &Context) -> Result<Vec<(String, Profile)>, OpsError> {
    Ok(vsync_local::profile::list(&ctx.base)?)
}

/// Where profiles are kept.
pub fn profiles_dir(ctx: &Context) -> PathBuf {
    ctx.base.profiles_dir()
}

/// One profile and the file it is kept in.
pub fn show_profile(ctx: &Context, name: &str) -> Result<(Profile, PathBuf), OpsError> {
    let profile = vsync_local::profile::get(&ctx.base, name)?;
    Ok((
        profile,
        vsync_local::profile::profile_path(&ctx.base, name)?,
    ))
}

/// Saves a new profile (an existing one is replaced only with `force`);
/// answers the file it is kept in.
pub fn add_profile(
    ctx: &Context,
    name: &str,
    profile: &Profile,
    force: bool,
) -> Result<PathBuf, OpsError> {
    Ok(vsync_local::profile::add(&ctx.base, name, profile, force)?)
}

/// Removes a profile.
pub fn remove_profile(ctx: &Context, name: &str) -> Result<(), OpsError> {
    Ok(vsync_local::profile::remove(&ctx.base, name)?)
}
