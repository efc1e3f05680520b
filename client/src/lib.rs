//! The runtime reader library applications link: `open()` at boot does one
//! round trip to the bucket, then `get_env`, `has_env`, `env_source` and
//! `get_as_content` answer from memory with the locked
//! vault → process env → defaults → missing fallback chain.
//!
//! Depends on `vsync-crypto` and the S3 store only, never on sources or sinks.
//! The API lands with the runtime-library issue.
