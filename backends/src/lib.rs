//! `Store` implementations: the local-directory store (the embedded default,
//! so a vault works with no cloud account) and the S3-compatible store with
//! provider presets and quirks for AWS, Cloudflare R2, Backblaze B2, Hetzner
//! (unquoted ETags), MinIO and Wasabi.
//!
//! Empty until the vault-lifecycle issue lands the `Store` trait.
