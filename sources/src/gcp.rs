//! GCP Secret Manager: a project's secrets (label/prefix filter), each one's latest enabled version.
//!
//! (Being written.)
