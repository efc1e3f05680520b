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

use crate::commands::{Failure, usage};

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
    /// output always redacted.
    #[arg(long, value_enum, default_value_t = Mode::Standard)]
    mode: Mode,
    /// A variable a hardened child inherits too (repeatable or
    /// comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pass_env: Vec<String>,
    /// Give the command none of the parent's variables, only the secrets.
    #[arg(long)]
    no_inherit: bool,
    /// Read the env's current version from its store (one round trip,
    /// decrypted in memory, nothing written) instead of the vault folder.
    #[arg(long)]
    remote: bool,
    /// Pass the command's output through unredacted (vsync then replaces
    /// itself with the command). Refused in hardened mode.
    #[arg(long)]
    no_redact: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Standard,
    Hardened,
}

pub fn run(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    args: ExecArgs,
) -> Result<(), Failure> {
    let mode = match args.mode {
        Mode::Standard => TrustMode::Standard,
        Mode::Hardened => TrustMode::Hardened,
    };
    if args.no_redact && mode == TrustMode::Hardened {
        return Err(usage(
            "--no-redact: hardened mode always redacts the command's output".into(),
        ));
    }
    let request = ExecRequest {
        from: if args.remote {
            SecretsFrom::Remote
        } else {
            SecretsFrom::VaultFolder
        },
        namespace: args.ns,
        keys: args.keys,
        require: args.require,
        mode,
        pass_env: args.pass_env,
        no_inherit: args.no_inherit,
        ..ExecRequest::default()
    };
    let child_env = runtime.block_on(async {
        if vsync_ops::bootstrap_configured() {
            vsync_ops::child_environment_from_bootstrap(&args.env, &request, std::env::vars_os())
                .await
        } else {
            vsync_ops::child_environment(ctx, &args.env, &request, std::env::vars_os()).await
        }
    })?;
    if child_env.other_namespaces > 0 {
        eprintln!(
            "note: {} namespaced key(s) of {} left out (--ns NAME injects one namespace)",
            child_env.other_namespaces, child_env.origin
        );
    }
    let (program, arguments) = args.command.split_first().expect("clap requires a command");
    let mut command = std::process::Command::new(program);
    command.args(arguments).env_clear();
    command.envs(
        child_env
            .inherited
            .iter()
            .map(|(name, value)| (name, value)),
    );
    for (name, value) in &child_env.secrets {
        command.env(name, bytes_to_os(value));
    }
    if args.no_redact {
        return Err(replace_process(command, program));
    }
    let redactor = Redactor::new(child_env.secrets.iter().map(|(_, value)| value.as_slice()))
        .map_err(|err| usage(format!("cannot build the redactor: {err}")))?;
    if redactor.skipped() > 0 {
        eprintln!(
            "note: {} secret(s) shorter than {MIN_SECRET_LEN} bytes are not redacted from the output",
            redactor.skipped()
        );
    }
    let code = runtime.block_on(run_redacted(command, program, &redactor, child_env))?;
    match code {
        0 => Ok(()),
        code => Err(Failure::reported(code)),
    }
}

/// On Unix, `exec` the command in vsync's place: nothing of vsync stays
/// between the command and its terminal. Returns only on failure.
fn replace_process(mut command: std::process::Command, program: &OsString) -> Failure {
    use std::os::unix::process::CommandExt;
    let err = command.exec();
    cannot_start(program, &err)
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

/// Runs the command with its stdout and stderr through the redactor, stdin
/// left alone; INT, TERM, HUP and QUIT sent to vsync are passed on, and the
/// command's exit code is returned (128 + n for signal n, as shells do).
async fn run_redacted(
    command: std::process::Command,
    program: &OsString,
    redactor: &Redactor,
    child_env: ChildEnvironment,
) -> Result<u8, Failure> {
    let mut command = tokio::process::Command::from(command);
    command
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|err| cannot_start(program, &err))?;
    // The child has its copy; vsync's goes now.
    drop(child_env);
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out = tokio::spawn(copy_redacted(
        stdout,
        tokio::io::stdout(),
        redactor.stream(),
    ));
    let err = tokio::spawn(copy_redacted(
        stderr,
        tokio::io::stderr(),
        redactor.stream(),
    ));

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
                    forward(pid, kind);
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
    let _ = out.await;
    let _ = err.await;
    Ok(exit_code(status))
}

/// Copies `from` to `to` through a redaction stream, flushing each chunk
/// so interactive output is not held back longer than a possible secret's
/// start.
async fn copy_redacted(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut stream: Stream,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 8192];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        to.write_all(&stream.push(&buffer[..read])).await?;
        to.flush().await?;
    }
    to.write_all(&stream.finish()).await?;
    to.flush().await
}

fn forward(pid: i32, kind: SignalKind) {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return;
    };
    let from_keyboard = [SignalKind::interrupt(), SignalKind::quit()]
        .iter()
        .any(|keyboard| keyboard.as_raw_value() == kind.as_raw_value());
    // Ctrl-C and Ctrl-\ reach the whole foreground process group, the
    // command included: passing them on would deliver them twice (a second
    // Ctrl-C often means "quit now").
    if from_keyboard && in_terminal_foreground() {
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
        println!(
            "{}",
            serde_json::to_string_pretty(comparison).expect("a comparison serialises")
        );
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
