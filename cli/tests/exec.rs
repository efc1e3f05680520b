//! `vsync exec` through the binary: what the command's environment holds
//! (secrets, namespaces, the strip list, hardened mode), what its output
//! shows (redacted, a secret split across writes included), its exit code
//! and the signals passed on to it.

mod common;

use std::process::Stdio;

use base64::Engine as _;
use common::Machine;
use tokio::io::{AsyncBufReadExt, BufReader};

const API_KEY: &str = "k-7f3a9c2e51d04b6a";
const DB_URL: &str = "postgres://app:s3cret-pw@db/app";
/// A multiline value with `=`, `#` and quotes inside: it must arrive as is.
const PEM: &str = "-----BEGIN KEY-----\nMIIB=ab # not a comment 'single' \\n\n-----END KEY-----";

/// A machine with env `dev` whose `.env.dev` holds plain and namespaced keys.
async fn machine() -> Machine {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=demo"]).await;
    std::fs::write(
        machine.vault().join(".env.dev"),
        format!(
            "API_KEY={API_KEY}\nDATABASE_URL=\"{DB_URL}\"\nPEM=\"{PEM}\"\nSHORT=abc\nstaging/API_KEY=k-staging-000111222\n"
        ),
    )
    .unwrap();
    machine
}

impl Machine {
    /// `vsync exec dev <options> -- sh -c <script>`, with `extra` set in
    /// vsync's own environment.
    async fn exec(
        &self,
        options: &[&str],
        script: &str,
        extra: &[(&str, &str)],
    ) -> std::process::Output {
        let mut args = vec!["exec", "dev"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let mut command = self.command(&args);
        command.envs(extra.iter().copied());
        command.output().await.unwrap()
    }

    /// The environment a command saw, as it wrote it to `env.txt`.
    fn seen_environment(&self) -> Vec<(String, String)> {
        let text = std::fs::read(self.home.join("env.txt")).unwrap();
        text.split(|byte| *byte == 0)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let entry = String::from_utf8_lossy(entry);
                let (name, value) = entry.split_once('=').unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }
}

/// Writes the command's own environment, as the kernel holds it, to a file.
fn dump_environment(machine: &Machine) -> String {
    format!(
        "cat /proc/self/environ > {}",
        machine.home.join("env.txt").display()
    )
}

fn value<'a>(seen: &'a [(String, String)], name: &str) -> Option<&'a str> {
    seen.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_gets_the_secrets_and_never_vsyncs_own_credentials() {
    let machine = machine().await;
    let credentials = [
        ("VSYNC_PASSPHRASE", "passphrase-of-vsync"),
        ("VAULT_TOKEN", "hvs.token-of-vsync"),
        ("AZURE_CLIENT_SECRET", "azure-secret-of-vsync"),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc-of-vsync"),
        ("APP_MODE", "blue"),
    ];
    let output = machine
        .exec(&[], &dump_environment(&machine), &credentials)
        .await;
    assert!(output.status.success(), "{output:?}");
    let seen = machine.seen_environment();
    assert_eq!(value(&seen, "API_KEY"), Some(API_KEY));
    assert_eq!(value(&seen, "DATABASE_URL"), Some(DB_URL));
    assert_eq!(value(&seen, "PEM"), Some(PEM));
    assert_eq!(value(&seen, "APP_MODE"), Some("blue"));
    for (name, _) in &credentials[..4] {
        assert_eq!(value(&seen, name), None, "{name} reached the command");
    }
    // Namespaced keys stay out unless their namespace is asked for.
    assert!(seen.iter().all(|(name, _)| !name.contains('/')));
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 namespaced key(s)"));

    let output = machine
        .exec(&["--ns", "staging"], &dump_environment(&machine), &[])
        .await;
    assert!(output.status.success(), "{output:?}");
    let seen = machine.seen_environment();
    assert_eq!(value(&seen, "API_KEY"), Some("k-staging-000111222"));
    assert_eq!(value(&seen, "DATABASE_URL"), None);

    let output = machine
        .exec(&["--keys", "API_KEY"], &dump_environment(&machine), &[])
        .await;
    assert!(output.status.success(), "{output:?}");
    let seen = machine.seen_environment();
    assert_eq!(value(&seen, "API_KEY"), Some(API_KEY));
    assert_eq!(value(&seen, "DATABASE_URL"), None);

    let output = machine
        .exec(
            &["--no-inherit"],
            &dump_environment(&machine),
            &[("APP_MODE", "blue")],
        )
        .await;
    // No PATH either: `sh` is found by vsync, `cat` by sh's default path.
    assert!(output.status.success(), "{output:?}");
    let mut names: Vec<String> = machine
        .seen_environment()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name != "PWD" && name != "SHLVL" && name != "_")
        .collect();
    names.sort();
    assert_eq!(names, ["API_KEY", "DATABASE_URL", "PEM", "SHORT"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_keys_are_all_named_and_nothing_runs() {
    let machine = machine().await;
    let marker = machine.home.join("ran");
    let script = format!("touch {}", marker.display());
    for (options, missing) in [
        (&["--keys", "API_KEY,NOPE"][..], "NOPE"),
        (&["--require", "NOPE,NADA"][..], "NOPE, NADA"),
        (&["--ns", "prod", "--require", "API_KEY"][..], "API_KEY"),
    ] {
        let output = machine.exec(options, &script, &[]).await;
        assert_eq!(output.status.code(), Some(2), "{options:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("has no {missing}")), "{stderr}");
        assert!(!stderr.contains(API_KEY));
        assert!(!marker.exists(), "{options:?} ran the command");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_mode_inherits_almost_nothing_and_always_redacts() {
    let machine = machine().await;
    let extra = [("APP_MODE", "blue"), ("LANG", "C.UTF-8")];
    let output = machine
        .exec(&["--mode", "hardened"], &dump_environment(&machine), &extra)
        .await;
    assert!(output.status.success(), "{output:?}");
    let seen = machine.seen_environment();
    assert_eq!(value(&seen, "APP_MODE"), None);
    assert_eq!(value(&seen, "LANG"), Some("C.UTF-8"));
    assert!(value(&seen, "PATH").is_some());
    assert_eq!(value(&seen, "API_KEY"), Some(API_KEY));

    let output = machine
        .exec(
            &["--mode", "hardened", "--pass-env", "APP_MODE"],
            &dump_environment(&machine),
            &extra,
        )
        .await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(value(&machine.seen_environment(), "APP_MODE"), Some("blue"));

    for refused in [
        &["--mode", "hardened", "--pass-env", "VAULT_TOKEN"][..],
        &["--mode", "hardened", "--no-redact"],
    ] {
        let output = machine.exec(refused, "true", &[]).await;
        assert_eq!(output.status.code(), Some(2), "{refused:?}: {output:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_redacted_in_every_form_even_split_across_writes() {
    let machine = machine().await;
    let base64 = base64::engine::general_purpose::STANDARD.encode(API_KEY);
    let hex = hex_upper(DB_URL);
    let (head, tail) = API_KEY.split_at(7);
    let script = format!(
        "printf 'key=%s\\n' \"$API_KEY\"; printf 'b64=%s\\n' '{base64}'; \
         printf 'hex=%s\\n' '{hex}'; printf 'split=%s' '{head}'; sleep 0.2; printf '%s\\n' '{tail}'; \
         printf 'err=%s\\n' \"$DATABASE_URL\" >&2; printf 'short=%s\\n' \"$SHORT\""
    );
    let output = machine.exec(&[], &script, &[]).await;
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stdout,
        "key=[REDACTED]\nb64=[REDACTED]\nhex=[REDACTED]\nsplit=[REDACTED]\nshort=abc\n"
    );
    assert!(stderr.contains("err=[REDACTED]\n"), "{stderr}");
    assert!(!stderr.contains(DB_URL));
    // A value too short to redact is said once.
    assert_eq!(
        stderr.matches("shorter than 6 bytes").count(),
        1,
        "{stderr}"
    );

    // Unredacted on request: vsync replaces itself with the command.
    let output = machine
        .exec(&["--no-redact"], "printf '%s' \"$API_KEY\"", &[])
        .await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), API_KEY);
    // The last of --no-redact and --redact wins.
    let output = machine
        .exec(
            &["--no-redact", "--redact"],
            "printf '%s' \"$API_KEY\"",
            &[],
        )
        .await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "[REDACTED]");
}

fn hex_upper(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02X}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_signals_pass_through() {
    let machine = machine().await;
    let output = machine.exec(&[], "exit 7", &[]).await;
    assert_eq!(output.status.code(), Some(7));
    let output = machine.exec(&[], "kill -TERM $$", &[]).await;
    assert_eq!(output.status.code(), Some(128 + 15));
    let output = machine
        .command(&["exec", "dev", "--", "no-such-program-here"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(127), "{output:?}");

    // A TERM sent to vsync reaches the command, which answers it.
    let mut child = machine
        .command(&[
            "exec",
            "dev",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
    let pid = child.id().unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(
        lines.next_line().await.unwrap().as_deref(),
        Some("got-term")
    );
    assert_eq!(child.wait().await.unwrap().code(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_tells_keys_and_differing_values_apart_without_showing_them() {
    let machine = machine().await;
    machine.ok(&["init", "prod"]).await;
    std::fs::write(
        machine.checkout.join("infra/vault/prod/.env.prod"),
        format!("API_KEY={API_KEY}\nDATABASE_URL=postgres://prod-db/app\nPROD_ONLY=yes-really\n"),
    )
    .unwrap();
    let stdout = machine.ok(&["compare", "dev", "prod", "--json"]).await;
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let keys = |field: &str| -> Vec<String> {
        doc[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys("only_in_first"), ["PEM", "SHORT", "staging/API_KEY"]);
    assert_eq!(keys("only_in_second"), ["PROD_ONLY"]);
    assert_eq!(keys("same"), ["API_KEY"]);
    let different = doc["different"].as_array().unwrap();
    assert_eq!(different.len(), 1);
    assert_eq!(different[0]["key"], "DATABASE_URL");
    assert_ne!(different[0]["first"], different[0]["second"]);
    for value in [API_KEY, DB_URL, "postgres://prod-db/app", "yes-really"] {
        assert!(!stdout.contains(value), "{value} shown");
    }
    // Fingerprints are made for one run: the next one shows others.
    let again: serde_json::Value =
        serde_json::from_str(&machine.ok(&["compare", "dev", "prod", "--json"]).await).unwrap();
    assert_ne!(again["different"][0]["first"], different[0]["first"]);
    let text = machine.ok(&["compare", "dev", "prod"]).await;
    assert!(text.contains("only in prod: PROD_ONLY"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_reads_the_pushed_version_and_writes_nothing() {
    let machine = machine().await;
    machine.ok(&["push", "dev"]).await;
    // A local edit that was never pushed: --remote does not see it.
    let env_file = machine.vault().join(".env.dev");
    std::fs::write(&env_file, "API_KEY=edited-locally-only\n").unwrap();
    let output = machine
        .exec(&["--remote"], &dump_environment(&machine), &[])
        .await;
    assert!(output.status.success(), "{output:?}");
    let seen = machine.seen_environment();
    assert_eq!(value(&seen, "API_KEY"), Some(API_KEY));
    assert_eq!(value(&seen, "DATABASE_URL"), Some(DB_URL));
    assert_eq!(value(&seen, "PEM"), Some(PEM));
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "API_KEY=edited-locally-only\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_with_only_vsync_config_and_passphrase_runs_the_command() {
    let server = common::s3_server().await;
    let machine = Machine::new();
    machine
        .init_on_bucket("dev", &server, &server.endpoint())
        .await;
    std::fs::write(
        machine.vault().join(".env.dev"),
        format!("API_KEY={API_KEY}\n"),
    )
    .unwrap();
    machine.ok(&["push", "dev"]).await;
    let blob = machine.ok(&["runtime-token", "--env=dev"]).await;
    let key =
        std::fs::read_to_string(machine.home.join(".config/vsync/.keystore/demo/dev.key")).unwrap();

    // The container: an empty HOME, an empty directory, no git.
    let container = tempfile::tempdir().unwrap();
    let home = container.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let dump = container.path().join("env.txt");
    let run = |env: &'static str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vsync"));
        command
            .args(["exec", env, "--", "sh", "-c"])
            .arg(format!(
                "cat /proc/self/environ > {}; echo \"$API_KEY\"",
                dump.display()
            ))
            .current_dir(container.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", &home)
            .env("VSYNC_CONFIG", blob.trim())
            .env("VSYNC_PASSPHRASE", key.trim())
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .stdin(Stdio::null());
        command
    };
    let output = run("dev").output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "[REDACTED]\n");
    let text = std::fs::read(&dump).unwrap();
    let seen: Vec<String> = text
        .split(|byte| *byte == 0)
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect();
    assert!(seen.contains(&format!("API_KEY={API_KEY}")), "{seen:?}");
    assert!(
        seen.iter()
            .all(|entry| !entry.starts_with("VSYNC_CONFIG=")
                && !entry.starts_with("VSYNC_PASSPHRASE=")),
        "{seen:?}"
    );
    // Nothing was written on the way: HOME is as empty as it was.
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);

    // The blob names its env; another is refused before anything runs.
    let output = run("prod").output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("names env \"dev\""));
}

/// Reads a pseudo-terminal's master side until `needle` shows (or the
/// other side closes), giving up after 20 s; returns everything read.
async fn read_until(pty: &mut pty_process::Pty, seen: &mut String, needle: &str) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut buffer = [0u8; 4096];
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, pty.read(&mut buffer)).await {
            Ok(Ok(read @ 1..)) => seen.push_str(&String::from_utf8_lossy(&buffer[..read])),
            // The other side closed (Linux answers EIO).
            Ok(_) => break,
            Err(_) => panic!("no {needle:?} within 20 s; the terminal showed {seen:?}"),
        }
    }
}

impl Machine {
    /// `vsync exec dev -- sh -c <script>` with vsync's stdin, stdout and
    /// stderr on a new 24×80 terminal, as a user runs it; `stdin_null`
    /// gives vsync /dev/null as stdin instead and `stderr_piped` a pipe as
    /// stderr.
    fn exec_on_terminal(
        &self,
        script: &str,
        stdin_null: bool,
        stderr_piped: bool,
    ) -> (pty_process::Pty, tokio::process::Child) {
        let (pty, pts) = pty_process::open().unwrap();
        pty.resize(pty_process::Size::new(24, 80)).unwrap();
        let mut command = pty_process::Command::new(env!("CARGO_BIN_EXE_vsync"))
            .args(["exec", "dev", "--", "sh", "-c", script])
            .current_dir(&self.checkout)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", &self.home)
            .env("VSYNC_KEYSTORE", "file");
        if stdin_null {
            command = command.stdin(Stdio::null());
        }
        if stderr_piped {
            command = command.stderr(Stdio::piped());
        }
        (pty, command.spawn(pts).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_command_gets_one_sized_as_vsyncs_and_its_output_is_still_redacted() {
    use tokio::io::AsyncWriteExt;
    let machine = machine().await;
    let script = "test -t 0 && test -t 1 && test -t 2 && echo on-a-tty; stty size; \
         printf '%s\\n' \"$API_KEY\"; echo ready; read line; echo \"got:$line\"; \
         trap 'stty size' WINCH; echo waiting; while :; do sleep 0.05; done";
    let (mut pty, mut vsync) = machine.exec_on_terminal(script, false, false);
    let cooked = rustix::termios::tcgetattr(&pty).unwrap();
    let mut seen = String::new();
    read_until(&mut pty, &mut seen, "ready").await;
    let raw = rustix::termios::tcgetattr(&pty).unwrap();
    assert!(
        !raw.local_modes
            .contains(rustix::termios::LocalModes::ICANON)
    );
    assert!(seen.contains("on-a-tty"), "{seen:?}");
    assert!(seen.contains("24 80"), "{seen:?}");
    assert!(!seen.contains(API_KEY), "{seen:?}");
    assert!(seen.contains("[REDACTED]"), "{seen:?}");

    // What is typed reaches the command through vsync, byte for byte.
    pty.write_all(b"typed text\r").await.unwrap();
    read_until(&mut pty, &mut seen, "got:typed text").await;
    read_until(&mut pty, &mut seen, "waiting").await;

    // A resized window reaches the command as a SIGWINCH with the new size.
    pty.resize(pty_process::Size::new(30, 100)).unwrap();
    read_until(&mut pty, &mut seen, "30 100").await;

    // Ctrl-C typed is the command's SIGINT (vsync's terminal is raw).
    pty.write_all(b"\x03").await.unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), vsync.wait())
        .await
        .expect("vsync ends after Ctrl-C")
        .unwrap();
    assert_eq!(status.code(), Some(128 + 2), "{seen:?}");
    // The terminal is given back as vsync found it.
    let after = rustix::termios::tcgetattr(&pty).unwrap();
    assert_eq!(after.local_modes, cooked.local_modes);
    assert_eq!(after.input_modes, cooked.input_modes);
    assert_eq!(after.output_modes, cooked.output_modes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_a_redirected_stdin_and_stderr_stay_redirected() {
    let machine = machine().await;
    let script = "test -t 0 || echo stdin-not-a-tty; test -t 1 && echo stdout-tty; \
         printf '%s\\n' \"$DATABASE_URL\" >&2; echo done";
    let (mut pty, mut vsync) = machine.exec_on_terminal(script, true, true);
    let mut seen = String::new();
    read_until(&mut pty, &mut seen, "done").await;
    assert!(seen.contains("stdin-not-a-tty"), "{seen:?}");
    assert!(seen.contains("stdout-tty"), "{seen:?}");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(vsync.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(vsync.wait().await.unwrap().success());
    // stderr went its own way (after vsync's notes), redacted, and not
    // through the terminal.
    assert_eq!(stderr.lines().last(), Some("[REDACTED]"), "{stderr}");
    assert!(!stderr.contains(DB_URL), "{stderr}");
    assert!(!seen.contains("REDACTED"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsyncs_own_errors_after_the_secrets_are_read_are_redacted_too() {
    let machine = machine().await;
    // The program's name holds a secret: "cannot run …" must not show it.
    let program = format!("./{API_KEY}-tool");
    let output = machine
        .command(&["exec", "dev", "--", &program])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(127), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot run ./[REDACTED]-tool"), "{stderr}");
    assert!(!stderr.contains(API_KEY), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_mode_applies_the_envs_saved_policy() {
    let machine = machine().await;
    let extra = [
        ("APP_MODE", "blue"),
        ("LC_TIME", "C"),
        ("LC_SECRETISH", "no"),
        ("OTHER", "x"),
    ];
    // No policy yet: custom mode says how to make one and runs nothing.
    let output = machine
        .exec(&["--mode", "custom"], &dump_environment(&machine), &extra)
        .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("vsync config exec dev"));

    // Refused entries write nothing.
    for refused in [
        &["--inherit", "PATH,A=B"][..],
        &["--inherit", "VAULT_TOKEN"][..],
        &["--strip", "*X"][..],
    ] {
        let mut args = vec!["config", "exec", "dev"];
        args.extend_from_slice(refused);
        let output = machine.command(&args).output().await.unwrap();
        assert_eq!(output.status.code(), Some(2), "{refused:?}: {output:?}");
    }
    assert!(
        machine
            .ok(&["config", "exec", "dev"])
            .await
            .contains("no custom exec policy")
    );

    let shown = machine
        .ok(&[
            "config",
            "exec",
            "dev",
            "--inherit",
            "PATH,APP_MODE,LC_*",
            "--strip",
            "LC_SECRET*",
        ])
        .await;
    assert!(shown.contains("PATH, APP_MODE, LC_*"), "{shown}");
    assert!(shown.contains("always redacted"), "{shown}");
    let output = machine
        .exec(
            &["--mode", "custom", "--pass-env", "OTHER"],
            &dump_environment(&machine),
            &[extra.as_slice(), &[("VSYNC_PASSPHRASE", "never")]].concat(),
        )
        .await;
    assert!(output.status.success(), "{output:?}");
    let seen = machine.seen_environment();
    assert_eq!(value(&seen, "APP_MODE"), Some("blue"));
    assert_eq!(value(&seen, "LC_TIME"), Some("C"));
    assert_eq!(value(&seen, "OTHER"), Some("x"));
    assert_eq!(value(&seen, "LC_SECRETISH"), None);
    assert_eq!(value(&seen, "VSYNC_PASSPHRASE"), None);
    assert_eq!(value(&seen, "HOME"), None);
    assert_eq!(value(&seen, "API_KEY"), Some(API_KEY));

    // A policy that always redacts refuses --no-redact, until it allows it.
    let output = machine
        .exec(&["--mode", "custom", "--no-redact"], "true", &[])
        .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    machine
        .ok(&["config", "exec", "dev", "--allow-no-redact"])
        .await;
    let output = machine
        .exec(
            &["--mode", "custom", "--no-redact"],
            "printf '%s' \"$API_KEY\"",
            &[],
        )
        .await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), API_KEY);
    // The other fields were kept by that change.
    let json: serde_json::Value =
        serde_json::from_str(&machine.ok(&["config", "exec", "dev", "--json"]).await).unwrap();
    assert_eq!(
        json["inherit"],
        serde_json::json!(["PATH", "APP_MODE", "LC_*"])
    );
    assert_eq!(json["alwaysRedact"], false);

    machine.ok(&["config", "exec", "dev", "--remove"]).await;
    let output = machine.exec(&["--mode", "custom"], "true", &[]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_decide_what_the_command_loads_are_refused_unless_named() {
    let machine = machine().await;
    let env_file = machine.vault().join(".env.dev");
    let mut dotenv = std::fs::read_to_string(&env_file).unwrap();
    dotenv.push_str("NODE_OPTIONS=--require /tmp/evil.js\nLD_LIBRARY_PATH=/nonexistent/lib\n");
    std::fs::write(&env_file, dotenv).unwrap();
    let marker = machine.home.join("ran");
    let script = format!("touch {}", marker.display());

    let output = machine.exec(&[], &script, &[]).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NODE_OPTIONS, LD_LIBRARY_PATH"), "{stderr}");
    assert!(!stderr.contains("/tmp/evil.js"), "{stderr}");
    assert!(!marker.exists());
    // One allowed is not enough: the other is still refused.
    let output = machine
        .exec(&["--allow-risky-name", "NODE_OPTIONS"], &script, &[])
        .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!marker.exists());
    // Hardened mode never injects them.
    let output = machine
        .exec(
            &[
                "--mode",
                "hardened",
                "--allow-risky-name",
                "NODE_OPTIONS,LD_LIBRARY_PATH",
            ],
            &script,
            &[],
        )
        .await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(!marker.exists());

    let output = machine
        .exec(
            &["--allow-risky-name", "NODE_OPTIONS,LD_LIBRARY_PATH"],
            &dump_environment(&machine),
            &[],
        )
        .await;
    assert!(output.status.success(), "{output:?}");
    let seen = machine.seen_environment();
    assert_eq!(value(&seen, "NODE_OPTIONS"), Some("--require /tmp/evil.js"));
    assert_eq!(value(&seen, "LD_LIBRARY_PATH"), Some("/nonexistent/lib"));
}
