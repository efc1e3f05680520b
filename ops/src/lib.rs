//! The vault lifecycle as a library: `init`, `push`, `pull`, `versions`,
//! the `.share` export/import, `runtime-token`, the audit log, `sync` and
//! `doctor`, over the machine's local state
//! (`vsync-local`) and a [`Store`](vsync_engine::store::Store).
//!
//! Each operation takes a [`Context`] (where local state lives and which
//! repo this is) and explicit options, reports its numbered steps through
//! [`Progress`], and returns a typed report for the CLI to print. Nothing
//! here prints, prompts or exits.
#![forbid(unsafe_code)]

mod audit;
mod compare;
mod context;
mod doctor;
mod error;
mod exec;
mod import;
mod keystore;
mod lifecycle;
mod link;
mod plan;
mod profile;
mod rotate;
mod share;
mod status;
mod store;
mod sync;
mod token;

// `parse_log` is public so the audit CSV parser (which reads bucket content)
// can be fuzzed from outside the crate (ops/tests/fuzz_audit_csv.rs).
pub use audit::{
    AuditAction, AuditLog, AuditOptions, AuditRow, HEADER as AUDIT_HEADER, audit_log,
    parse_log as parse_audit_log, parse_meta_pair, render_csv,
};
pub use compare::{Comparison, Difference, compare};
pub use context::{Context, Repo};
pub use doctor::{DoctorReport, Finding, Verdict, doctor};
pub use error::{
    EXIT_IMPORT_CONFLICT, EXIT_PLAN_STALE, EXIT_SYNC_NOOP, EXIT_SYNC_PARTIAL, EXIT_SYNC_REFUSED,
};
pub use error::{OpsError, UnsavedPassphrase};
pub use exec::{
    ChildEnvironment, ExecPolicyChange, ExecRequest, HARDENED_INHERITED, NAMESPACE_SEPARATOR,
    RISKY_NAMES, STRIPPED, SecretsFrom, TrustMode, bootstrap_configured, child_environment,
    child_environment_from_bootstrap, exec_policy, remove_exec_policy, set_exec_policy,
};
pub use import::{SourceImportOutcome, SourceImportRequest, import_from};
pub use keystore::{
    ImportOutcome, KeystoreEntry, KeystoreListing, KeytreeExportReport, KeytreeFilter,
    KeytreeImportReport, keystore_export, keystore_import, keystore_list,
};
pub use lifecycle::{
    InitOptions, InitReport, PullOptions, PullReport, PushOptions, PushReport, VersionEntry,
    VersionsReport, init, pull, push, versions,
};
pub use link::{LinkState, LinkStatus, UseReport, link_status, use_env};
pub use plan::{
    Applied, AppliedImport, AppliedTarget, ApplyReport, ApplyRequest, ApplyStatus, ImportApplied,
    ImportPlanned, ImportResult, PlanInit, PlanReport, PlanScope, TargetApplied, TargetPlan,
    TargetResult, apply, artifact, plan, plan_init, plan_path, save_artifact,
};
pub use profile::{
    Profile, SECRET_MASK, add_profile, list_profiles, mask_access_key, profiles_dir,
    remove_profile, show_profile,
};
pub use rotate::{
    MIN_NEW_PASSPHRASE_LEN, NewPassphrase, RotateOptions, RotateReport, rotate_passphrase,
};
pub use share::{
    ExportReport, ImportReport, ShareImportOptions, export_share, generate_passphrase, import_share,
};
pub use status::{
    EnvCode, EnvStatus, LastSync, ProfileSummary, RemoteState, RemoteStatus, StatusOptions,
    StatusReport, status,
};
pub use store::{layout, open_store};
pub use sync::{ParserPolicy, Skipped, SyncOutcome, SyncRequest, read_env_file, sync};
pub use token::{RuntimeToken, TokenOverrides, runtime_token};
/// The S3 provider presets, for `--provider` flags.
pub use vsync_backends::s3::Provider;
pub use vsync_local::config::ExecPolicy;
/// The platform registry the CLI builds its sync flags and help from.
pub use vsync_platforms as platforms;

/// Where an operation reports its numbered steps (`[k/n] …` on stderr in
/// the CLI) and its warnings.
///
/// A long sync's writes are counted through its
/// [`SyncProgress`](vsync_engine::sync::SyncProgress) side.
pub trait Progress: vsync_engine::sync::SyncProgress {
    /// Step `k` of `n` begins.
    fn step(&self, k: usize, n: usize, message: &str);
    /// Something the user should know that does not stop the operation.
    fn warn(&self, message: &str);
}

/// A [`Progress`] that discards everything, for callers that only want the
/// report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl vsync_engine::sync::SyncProgress for Quiet {}

impl Progress for Quiet {
    fn step(&self, _: usize, _: usize, _: &str) {}
    fn warn(&self, _: &str) {}
}
