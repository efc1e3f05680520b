//! The `vsync` binary: parses the command line, calls `vsync-ops`, and
//! prints. Results go to stdout, progress and warnings
//! to stderr; failures exit with the code `OpsError::exit_code` gives.

mod commands;
mod config;
mod docs;
mod doctor;
mod exec;
mod import;
mod lifecycle;
mod plan;
mod progress;
mod secret_input;
mod status;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// One encrypted, versioned vault on object storage as the source of truth for
/// a team's secrets.
#[derive(Parser)]
#[command(name = "vsync", version, about, long_about = None)]
struct Cli {
    /// The repo identity to use instead of `.vsync` / the git origin.
    #[arg(long, global = true)]
    repo: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the named S3 profiles that `init` uses.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Set up an env: config, a fresh key, the vault folder and `.vsync`.
    /// Without a profile the vault lives in a local directory store.
    Init(InitArgs),
    /// Upload the vault folder as a new encrypted version.
    Push {
        /// The env, e.g. `dev`.
        env: String,
        /// Push even if the remote moved on since this machine last synced.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// Download a version into the vault folder (a backup is made first).
    Pull(PullArgs),
    /// List the published versions, newest first.
    Versions {
        /// The env.
        env: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write the env's config and key to a passphrase-sealed `.share` file.
    Export {
        /// The env.
        env: String,
        /// Where to write it (default `./<repo>-<env>.share`).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        passphrase: PassphraseArgs,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// Print the `vsync-cfg-v1:` blob an application reads from
    /// `VSYNC_CONFIG` (its `VSYNC_PASSPHRASE` is the env's key from the
    /// keystore).
    RuntimeToken {
        /// The env.
        #[arg(long)]
        env: String,
        /// An access key id for the app (a scoped read-only key is best).
        #[arg(long, requires = "secret_key_file")]
        access_key: Option<String>,
        /// A file holding that key's secret.
        #[arg(long)]
        secret_key_file: Option<PathBuf>,
        /// Skip the check read of the env's pointer.
        #[arg(long)]
        no_validate: bool,
    },
    /// Install an env's config and key from a `.share` file; or, with
    /// `--from <platform>`, import secrets from a platform into the env's
    /// `.env.<env>` (a value-blind diff; conflicts refused unless --prefer).
    Import {
        /// The env (for a `.share`: the env to save it as).
        env: String,
        /// The `.share` file.
        #[arg(value_name = "FILE", required_unless_present_any = ["file", "from"])]
        path: Option<PathBuf>,
        /// The `.share` file (upstream's spelling).
        #[arg(long, conflicts_with = "path")]
        file: Option<PathBuf>,
        /// Import secrets from this platform instead of a `.share` (the
        /// list and each one's --set fields are below).
        #[arg(long, value_name = "PLATFORM", conflicts_with_all = ["path", "file", "force", "accept_routing"])]
        from: Option<String>,
        #[command(flatten)]
        source: import::SourceArgs,
        /// Replace a different key or config this machine already holds for
        /// the env (bundles sealed with the current key become unreadable here).
        #[arg(long)]
        force: bool,
        /// Keep the sync routing (where `vsync sync` sends secrets and this
        /// machine's platform tokens) and the exec policy (what `exec --mode
        /// custom` passes a command) the share carries; dropped otherwise.
        #[arg(long)]
        accept_routing: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
        #[command(flatten)]
        audit: AuditArgs,
    },
    /// A tsafe-style import command (`kv-pull`, …): `vsync import <env>
    /// --from <platform>`. Built from the registry, not parsed by derive.
    #[command(skip)]
    ImportAlias {
        /// The env imported into.
        env: String,
        /// The platform's short name.
        from: &'static str,
        /// The import's flags.
        source: import::SourceArgs,
    },
    /// Write the env's `.env.<env>` to a secret platform (TARGET). Checks
    /// everything before the first write and writes only what changed.
    Sync(sync::SyncArgs),
    /// Re-key the env's current version under a new passphrase (the
    /// keystore's key): same content, a new version, the new key stored.
    RotatePassphrase(RotateArgs),
    /// Which repo this is, each env's config, key and keystore, and (with
    /// `--check-remote`) how the local vault stands against the bucket.
    Status {
        /// Machine-readable output.
        #[arg(long, conflicts_with = "quiet")]
        json: bool,
        /// Print nothing when every env is ok; otherwise one line per
        /// problem on stderr and exit 1.
        #[arg(long)]
        quiet: bool,
        /// Read each env's pointer: in sync, behind, ahead or diverged.
        #[arg(long)]
        check_remote: bool,
    },
    /// Point `./.env` at an env's `.env.<env>` (a relative symlink); without
    /// an env, show where it points.
    Use {
        /// The env to link; omit to show the current link.
        env: Option<String>,
        /// The link to manage, relative to the working tree's root
        /// (default `.env`).
        #[arg(long)]
        link: Option<PathBuf>,
    },
    /// The machine's env configs and keys as a whole: list them, or move
    /// them (with the profiles) in a passphrase-sealed `.keytree`.
    #[command(subcommand)]
    Keystore(KeystoreCommand),
    /// Run a command with the env's secrets in its environment (the
    /// parent's variables minus vsync's own credentials), its output
    /// redacted: `vsync exec dev -- ./server --port 8080`.
    Exec(exec::ExecArgs),
    /// The plan file `vsync.toml`: one reviewed description of every env's
    /// imports and syncs. Alone, plans every sync target at once (as `sync
    /// --dry-run`, writing nothing); `validate` checks the file, `schema`
    /// prints its JSON Schema, `init` writes one from this machine's saved
    /// routing.
    Plan(plan::PlanArgs),
    /// Per-env settings of this machine: `vsync config exec dev --inherit
    /// PATH,HOME,LC_*` saves the policy of `vsync exec dev --mode custom`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Compare two envs' keys: which only one has, and which shared keys
    /// hold different values (told by fingerprints made for this run, never
    /// by the values).
    Compare {
        /// The first env.
        first: String,
        /// The second env.
        second: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check this machine's setup and say what to fix: the keystore, the
    /// modes of vsync's files, and for each env its store, the store's
    /// newest version against this clock, the provider preset, the vault
    /// folder's git-ignore and each saved sync target's credentials. Writes
    /// nothing; exits 1 when something is a problem.
    Doctor {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print the completion script of a shell: `source <(vsync completions
    /// bash)`, or save it where the shell loads completions from.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages: `vsync.1` on stdout, or with `--dir` one page per
    /// command (`vsync.1`, `vsync-push.1`, …) into that directory.
    Man {
        /// The directory to write every command's page into.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Show the env's audit log (who pushed, pulled, exported, imported or
    /// rotated, and when), newest first.
    Audit(AuditLogArgs),
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// List the profiles.
    List,
    /// Show one profile (the access key masked, the secret never).
    Show {
        /// The profile name.
        name: String,
    },
    /// Add a profile. The secret key is read from `--secret-key-file`,
    /// `$VSYNC_SECRET_ACCESS_KEY`, or a hidden prompt — never from argv.
    Add(ProfileAddArgs),
    /// Remove a profile; env configs made from it keep working.
    #[command(alias = "rm")]
    Remove {
        /// The profile name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
struct ProfileAddArgs {
    /// The profile name (`[A-Za-z0-9._-]`, at most 64).
    name: String,
    /// The S3 endpoint URL, e.g. `https://fsn1.your-objectstorage.com`.
    #[arg(long)]
    endpoint: String,
    /// The signing region (`auto` for Cloudflare R2).
    #[arg(long, default_value = "auto")]
    region: String,
    /// The bucket.
    #[arg(long)]
    bucket: String,
    /// The access key id.
    #[arg(long)]
    access_key: String,
    /// A file holding the secret access key.
    #[arg(long)]
    secret_key_file: Option<PathBuf>,
    /// A prefix under which every env's objects go (`<prefix><env>/`).
    #[arg(long)]
    prefix: Option<String>,
    /// Force a provider preset instead of detecting it from the endpoint
    /// (e.g. `hetzner` for a Ceph RGW on a custom host); copied into every
    /// env `init` makes from this profile.
    #[arg(long, value_name = "PRESET")]
    provider: Option<vsync_ops::Provider>,
    /// Replace an existing profile of that name.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct InitArgs {
    /// The env, e.g. `dev` (lowercase letters, digits, `_`, `-`).
    env: String,
    /// The profile whose bucket holds the vault.
    #[arg(long, conflicts_with = "local")]
    profile: Option<String>,
    /// Keep the vault in the local directory store even if profiles exist.
    #[arg(long)]
    local: bool,
    /// The vault folder relative to the repo root (default `infra/vault/<env>`).
    #[arg(long)]
    vault_folder: Option<String>,
    /// Record pushes and pulls in the bucket's audit log.
    #[arg(
        long,
        value_name = "on|off",
        default_value = "on",
        default_missing_value = "on",
        num_args = 0..=1,
        require_equals = true,
        action = clap::ArgAction::Set,
        value_parser = parse_on_off
    )]
    audit: bool,
    /// Force a provider preset for this env's bucket (over the profile's):
    /// aws, r2, b2, hetzner, minio, wasabi, digitalocean, custom.
    #[arg(long, value_name = "PRESET")]
    provider: Option<vsync_ops::Provider>,
    /// Replace an existing config (mints a new key).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct PullArgs {
    /// The env.
    env: String,
    /// Fetch this version (`YYYYMMDD-HHmmss`, see `vsync versions`).
    #[arg(long)]
    at: Option<String>,
    /// Copy the local vault folder aside first, then replace it.
    #[arg(long, conflicts_with = "force")]
    backup: bool,
    /// Replace the local vault folder, discarding local changes.
    #[arg(long)]
    force: bool,
    /// Accept a remote older than the last version this machine synced.
    #[arg(long)]
    accept_rollback: bool,
    #[command(flatten)]
    audit: AuditArgs,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Show or change the env's custom exec policy: which of the parent's
    /// variables a command inherits, which it never gets, and whether its
    /// output is always redacted. Without flags, show it.
    Exec(config::ExecPolicyArgs),
}

#[derive(Subcommand)]
enum KeystoreCommand {
    /// List every env config on this machine and whether its key is here.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write env configs, keys and profiles to a `.keytree` file.
    Export(KeystoreExportArgs),
    /// Restore configs, keys and profiles from a `.keytree` file.
    Import {
        /// The `.keytree` file.
        file: PathBuf,
        /// Replace envs and profiles that differ from the file's.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
}

#[derive(Args)]
struct KeystoreExportArgs {
    /// Every env and every profile.
    #[arg(long)]
    all: bool,
    /// Only this repo (repeatable). Here `--repo` filters instead of
    /// naming the working tree's repo.
    #[arg(long = "repo", value_name = "REPO")]
    repo: Vec<String>,
    /// Only this env (repeatable; combined with --repo as repo AND env).
    #[arg(long = "env", value_name = "ENV")]
    env: Vec<String>,
    /// Add the profiles.
    #[arg(long)]
    profiles: bool,
    /// Where to write it (default `./<hostname>.keytree`).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

#[derive(Args)]
struct RotateArgs {
    /// The env.
    #[arg(long)]
    env: String,
    /// A file holding the new passphrase (at least 12 characters).
    #[arg(long, conflicts_with_all = ["new_passphrase", "generate"])]
    new_passphrase_file: Option<PathBuf>,
    /// The new passphrase itself (visible in the process list; prefer
    /// --new-passphrase-file or --generate).
    #[arg(long, conflicts_with = "generate")]
    new_passphrase: Option<String>,
    /// Mint a fresh random key as the new passphrase (printed once).
    #[arg(long)]
    generate: bool,
    /// A file holding the current passphrase, when it is not the key in
    /// this machine's keystore.
    #[arg(long, conflicts_with = "old_passphrase")]
    old_passphrase_file: Option<PathBuf>,
    /// The current passphrase itself (upstream's flag; visible in the
    /// process list).
    #[arg(long)]
    old_passphrase: Option<String>,
    #[command(flatten)]
    audit: AuditArgs,
}

/// The audit-log flags of the verbs that append to it (push, pull, export,
/// import, rotate-passphrase). `$VSYNC_AUDIT_META` (a JSON object) and
/// `$VSYNC_AUDIT_NOTE` add to every row; these flags win over them.
#[derive(Args)]
struct AuditArgs {
    /// Do not append to the bucket's audit log this time.
    #[arg(long)]
    no_audit: bool,
    /// Extra `key=value` for the row's meta (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = vsync_ops::parse_meta_pair)]
    meta: Vec<(String, String)>,
    /// A note for the row (its meta's `note`).
    #[arg(long)]
    note: Option<String>,
}

impl From<AuditArgs> for vsync_ops::AuditOptions {
    fn from(args: AuditArgs) -> Self {
        Self {
            skip: args.no_audit,
            meta: args.meta,
            note: args.note,
        }
    }
}

#[derive(Args)]
struct AuditLogArgs {
    /// The env.
    env: String,
    /// Print the log as CSV (header and every row).
    #[arg(long, conflicts_with_all = ["json", "limit"])]
    csv: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Show at most this many rows (default 50).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "all")]
    limit: Option<u64>,
    /// Show every row.
    #[arg(long)]
    all: bool,
}

/// Where a share passphrase comes from: `--passphrase-file`,
/// `--passphrase` (visible in the process list; upstream compatibility), or
/// a hidden prompt on a TTY.
#[derive(Args)]
struct PassphraseArgs {
    /// A file holding the passphrase (trailing whitespace ignored).
    #[arg(long, conflicts_with = "passphrase")]
    passphrase_file: Option<PathBuf>,
    /// The passphrase itself (prefer --passphrase-file: argv is visible to
    /// other users of the machine).
    #[arg(long)]
    passphrase: Option<String>,
}

fn parse_on_off(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("expected on or off, got {value:?}")),
    }
}

/// The whole command line: the derived commands, each platform's `sync`
/// flags and the import aliases from the registry. Parsing, completions and
/// man pages all read this one definition.
fn command() -> clap::Command {
    import::with_aliases(
        Cli::command()
            .mut_subcommand("sync", sync::with_platform_flags)
            .mut_subcommand("import", |import| import.after_help(import::sources_help())),
    )
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let mut cli = match import::alias_matches(&matches) {
        Some(command) => Cli {
            repo: matches.get_one::<String>("repo").cloned(),
            command,
        },
        None => Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit()),
    };
    if let (Command::Sync(args), Some(("sync", sync_matches))) =
        (&mut cli.command, matches.subcommand())
    {
        args.flags = sync::platform_flags(sync_matches);
    }
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
