//! The vsync domain: secret names and values, the bundle model, the `Store`,
//! `Source` and `Sink` traits, the plan/diff/apply model and sync
//! orchestration (concurrency, rate budgets, journal).
//!
//! Depends on `vsync-crypto` only. The traits and the model land with the
//! vault-lifecycle and sink issues; until then this crate only holds its place
//! in the workspace.
