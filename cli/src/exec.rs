//! `vsync exec <env> [options] -- cmd args…`: runs a command with the env's
//! secrets in its environment, under the trust model `vsync-ops` decides,
//! and redacts the secrets from what it prints. And `vsync compare`, which
//! tells what two envs would give a command.

use std::ffi::OsString;
use std::process::Stdio;

use clap::{Args, ValueEnum};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use vsync_ops::{ChildEnvironment, Comparison, Context, ExecRequest, SecretsFrom, TrustMode};
use vsync_redact::{MIN_SECRET_LEN, Redactor, Stream};

use crate::commands::{Failure, print_json, usage};

mod terminal;

#[derive(Args)]
pub struct ExecArgs {
    /// The env whose secrets the command gets.
    env: String,
    /// Only the keys of this namespace (`NAME/KEY` in `.env.<env>`),
    /// injected without the `NAME/` prefix. Without it, namespaced keys are
    /// left out.
    #[arg(long, value_name = "NAME")]
    ns: Option<String>,
    /// Only these keys (comma-separated); each must exist.
    #[arg(long, value_name = "K1,K2", value_delimiter = ',')]
    keys: Vec<String>,
    /// Refuse to run unless these keys exist (comma-separated).
    #[arg(long, value_name = "K1,K2", value_delimiter = ',')]
    require: Vec<String>,
    /// standard: the parent's environment minus vsync's own credentials;
    /// hardened: only PATH, HOME, LANG, TERM, TZ, USER and --pass-env, and
    /// output always redacted; custom: the env's saved policy (`vsync
    /// config exec <env>`).
    #[arg(long, value_enum, default_value_t = Mode::Standard)]
    mode: Mode,
    /// A variable a hardened or custom child inherits too (repeatable or
    /// comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pass_env: Vec<String>,
    /// Inject this env key although its name decides what the command
    /// loads or runs first (LD_PRELOAD, NODE_OPTIONS, PATH, …: refused
    /// otherwise). Repeatable or comma-separated; not in hardened mode.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    allow_risky_name: Vec<String>,
    /// Give the command none of the parent's variables, only the secrets.
    #[arg(long)]
    no_inherit: bool,
    /// Read the env's current version from its store (one round trip,
    /// decrypted in memory, nothing written) instead of the vault folder.
    #[arg(long)]
    remote: bool,
    /// Pass the command's output through unredacted (vsync then replaces
    /// itself with the command). Refused in hardened mode and by a custom
    /// policy that always redacts.
    #[arg(long, overrides_with = "redact")]
    no_redact: bool,
    /// Redact the command's output (the default; the last of --redact and
    /// --no-redact wins, so a wrapper's --no-redact can be taken back).
    #[arg(long, overrides_with = "no_redact")]
    redact: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Standard,
    Hardened,
    Custom,
}

/// Runs the command; `ctx` is `None` when the secrets come from the
/// runtime library's bootstrap (`VSYNC_CONFIG`), which needs no local state.
pub fn run(
    ctx: Option<&Context>,
    runtime: &tokio::runtime::Runtime,
    args: ExecArgs,
) -> Result<(), Failure> {
    // clap keeps only the last of --redact and --no-redact.
    let no_redact = args.no_redact && !args.redact;
    let request = ExecRequest {
        from: if args.remote {
            SecretsFrom::Remote
        } else {
            SecretsFrom::VaultFolder
        },
        namespace: args.ns,
        keys: args.keys,
        require: args.require,
        mode: match args.mode {
            Mode::Standard => TrustMode::Standard,
            Mode::Hardened => TrustMode::Hardened,
            Mode::Custom => TrustMode::Custom,
        },
        pass_env: args.pass_env,
        no_inherit: args.no_inherit,
        no_redact,
        allow_risky: args.allow_risky_name,
        ..ExecRequest::default()
    };
    let child_env = runtime.block_on(async {
        match ctx {
            Some(ctx) => {
                vsync_ops::child_environment(ctx, &args.env, &request, std::env::vars_os()).await
            }
            None => {
                vsync_ops::child_environment_from_bootstrap(
                    &args.env,
                    &request,
                    std::env::vars_os(),
                )
                .await
            }
        }
    })?;
    let (program, arguments) = args.command.split_first().expect("clap requires a command");
    let launch = Launch {
        program: program.clone(),
        arguments: arguments.to_vec(),
        variables: child_env
            .inherited
            .iter()
            .cloned()
            .chain(
                child_env
                    .secrets
                    .iter()
                    .map(|(name, value)| (OsString::from(name), bytes_to_os(value))),
            )
            .collect(),
    };
    if no_redact {
        note(&child_env, None);
        drop(child_env);
        return Err(replace_process(launch));
    }
    let redactor = Redactor::new(child_env.secrets.iter().map(|(_, value)| value.as_slice()))
        .map_err(|err| usage(format!("cannot build the redactor: {err}")))?;
    note(&child_env, Some(&redactor));
    // The child gets its copy when it starts; vsync's goes now.
    drop(child_env);
    // From here on, what vsync itself prints passes the redactor too.
    let guard = |failure: Failure| Failure {
        message: redactor.redact_str(&failure.message).into_owned(),
        ..failure
    };
    let code = runtime
        .block_on(run_redacted(launch, &redactor))
        .map_err(guard)?;
    match code {
        0 => Ok(()),
        code => Err(Failure::reported(code)),
    }
}

/// What vsync says before the command starts (never a value: it is passed
/// through the redactor when there is one).
fn note(child_env: &ChildEnvironment, redactor: Option<&Redactor>) {
    let mut notes = Vec::new();
    if child_env.other_namespaces > 0 {
        notes.push(format!(
            "note: {} namespaced key(s) of {} left out (--ns NAME injects one namespace)",
            child_env.other_namespaces, child_env.origin
        ));
    }
    if let Some(redactor) = redactor
        && redactor.skipped() > 0
    {
        notes.push(format!(
            "note: {} secret(s) shorter than {MIN_SECRET_LEN} bytes are not redacted from the output",
            redactor.skipped()
        ));
    }
    for line in notes {
        match redactor {
            Some(redactor) => eprintln!("{}", redactor.redact_str(&line)),
            None => eprintln!("{line}"),
        }
    }
}

/// The command as it is started: the program, its arguments and its whole
/// environment.
struct Launch {
    program: OsString,
    arguments: Vec<OsString>,
    variables: Vec<(OsString, OsString)>,
}

impl Launch {
    fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.program);
        command
            .args(&self.arguments)
            .env_clear()
            .envs(self.variables.iter().map(|(name, value)| (name, value)));
        command
    }
}

/// On Unix, `exec` the command in vsync's place: nothing of vsync stays
/// between the command and its terminal. Returns only on failure.
fn replace_process(launch: Launch) -> Failure {
    use std::os::unix::process::CommandExt;
    let err = launch.command().exec();
    cannot_start(&launch.program, &err)
}

fn cannot_start(program: &OsString, err: &std::io::Error) -> Failure {
    Failure {
        message: format!("cannot run {}: {err}", program.to_string_lossy()),
        // The shells' "command not found" / "not executable".
        code: if err.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        },
    }
}

#[cfg(unix)]
fn bytes_to_os(value: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(value.to_vec())
}

/// Runs the command with its output through the redactor — on a
/// pseudo-terminal when vsync's stdout is a terminal, through pipes
/// otherwise — passes signals on, and returns the command's exit code
/// (128 + n for signal n, as shells do).
async fn run_redacted(launch: Launch, redactor: &Redactor) -> Result<u8, Failure> {
    let started = match terminal::Terminal::of_this_process() {
        Some(terminal) => terminal.start(&launch, redactor)?,
        None => start_piped(&launch, redactor)?,
    };
    let Started {
        mut child,
        output,
        forward_keyboard,
        terminal,
    } = started;
    let pid = child.id().and_then(|id| i32::try_from(id).ok());
    let forwarded = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ];
    let mut listeners = Vec::new();
    for kind in forwarded {
        let mut stream =
            signal(kind).map_err(|err| usage(format!("cannot listen for signals: {err}")))?;
        listeners.push(tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if let Some(pid) = pid {
                    forward(pid, kind, forward_keyboard);
                }
            }
        }));
    }
    let status = child
        .wait()
        .await
        .map_err(|err| usage(format!("waiting for the command: {err}")))?;
    for listener in listeners {
        listener.abort();
    }
    // All output is written before vsync exits with the command's code.
    for copy in output {
        let _ = copy.await;
    }
    // The terminal is given back as it was.
    drop(terminal);
    Ok(exit_code(status))
}

/// A started command: the process, the tasks copying its output, whether
/// keyboard signals must be passed on, and what vsync holds of the
/// terminal while it runs.
struct Started {
    child: tokio::process::Child,
    output: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    forward_keyboard: bool,
    terminal: Option<terminal::Session>,
}

/// Starts the command with stdin left alone and stdout and stderr piped
/// through the redactor.
fn start_piped(launch: &Launch, redactor: &Redactor) -> Result<Started, Failure> {
    let mut command = tokio::process::Command::from(launch.command());
    command
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|err| cannot_start(&launch.program, &err))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    Ok(Started {
        child,
        output: vec![
            tokio::spawn(copy_redacted(
                stdout,
                tokio::io::stdout(),
                redactor.stream(),
            )),
            tokio::spawn(copy_redacted(
                stderr,
                tokio::io::stderr(),
                redactor.stream(),
            )),
        ],
        // Ctrl-C and Ctrl-\ reach the command (in vsync's process group)
        // from the terminal itself.
        forward_keyboard: !in_terminal_foreground(),
        terminal: None,
    })
}

/// Copies `from` to `to` through a redaction stream, flushing each chunk
/// so interactive output is not held back longer than a possible secret's
/// start. A pseudo-terminal whose other side is closed reads as the end.
async fn copy_redacted(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut stream: Stream,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 8192];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) => break,
            Ok(read) => read,
            // Linux answers EIO once the command's side of a pty is closed.
            Err(err) if err.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => break,
            Err(err) => return Err(err),
        };
        to.write_all(&stream.push(&buffer[..read])).await?;
        to.flush().await?;
    }
    to.write_all(&stream.finish()).await?;
    to.flush().await
}

/// Passes signal `kind` on to the command. Keyboard signals (INT, QUIT)
/// are passed only when `forward_keyboard`: a command in vsync's terminal
/// foreground gets Ctrl-C from the terminal itself, and passing it on
/// would deliver it twice (a second Ctrl-C often means "quit now").
fn forward(pid: i32, kind: SignalKind, forward_keyboard: bool) {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let from_keyboard = [SignalKind::interrupt(), SignalKind::quit()]
        .iter()
        .any(|keyboard| keyboard.as_raw_value() == kind.as_raw_value());
    if from_keyboard && !forward_keyboard {
        return;
    }
    let signal = match kind.as_raw_value() {
        raw if raw == SignalKind::interrupt().as_raw_value() => rustix::process::Signal::INT,
        raw if raw == SignalKind::terminate().as_raw_value() => rustix::process::Signal::TERM,
        raw if raw == SignalKind::hangup().as_raw_value() => rustix::process::Signal::HUP,
        _ => rustix::process::Signal::QUIT,
    };
    // The command may have exited already: nothing to do then.
    let _ = rustix::process::kill_process(pid, signal);
}

/// Whether vsync (and so the command, its child in the same process
/// group) is the foreground of its controlling terminal.
fn in_terminal_foreground() -> bool {
    let stdin = std::io::stdin();
    rustix::termios::tcgetpgrp(&stdin).is_ok_and(|group| group == rustix::process::getpgrp())
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}

pub fn print_comparison(comparison: &Comparison, json: bool) {
    if json {
        print_json(comparison);
        return;
    }
    let [first, second] = &comparison.envs;
    let list = |keys: &[String]| {
        if keys.is_empty() {
            "(none)".to_owned()
        } else {
            keys.join(", ")
        }
    };
    println!("only in {first}: {}", list(&comparison.only_in_first));
    println!("only in {second}: {}", list(&comparison.only_in_second));
    println!("same in both: {}", list(&comparison.same));
    if comparison.different.is_empty() {
        println!("different in both: (none)");
        return;
    }
    println!("different in both (fingerprints of this run only):");
    let width = comparison
        .different
        .iter()
        .map(|difference| difference.key.len())
        .max()
        .unwrap_or_default();
    for difference in &comparison.different {
        println!(
            "  {:<width$}  {first} {}  {second} {}",
            difference.key, difference.first, difference.second
        );
    }
}
