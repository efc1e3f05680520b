//! `Store` implementations: the local-directory store ([`fs::FsStore`], the
//! embedded default, so a vault works on a fresh machine with no cloud
//! account) and the S3-compatible store ([`s3::S3Store`], feature `s3`) with
//! provider presets and quirks for AWS, Cloudflare R2, Backblaze B2,
//! Hetzner (unquoted ETags), MinIO, Wasabi and DigitalOcean Spaces.

#![forbid(unsafe_code)]

pub mod fs;
#[cfg(feature = "s3")]
pub mod s3;
