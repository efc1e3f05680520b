//! HashiCorp Vault KV v1/v2: a path and everything under it; each secret's fields become keys.
//!
//! (Being written.)
