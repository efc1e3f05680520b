//! `Store` implementations: the local-directory store ([`fs::FsStore`], the
//! embedded default, so a vault works on a fresh machine with no cloud
//! account) and, next, the S3-compatible store with provider presets and
//! quirks for AWS, Cloudflare R2, Backblaze B2, Hetzner (unquoted ETags),
//! MinIO and Wasabi.

#![forbid(unsafe_code)]

pub mod fs;
