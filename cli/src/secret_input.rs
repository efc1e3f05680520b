//! Reading secrets without putting them in argv or shell history: from a
//! file, an environment variable, or a hidden prompt on a TTY.

use std::io::IsTerminal;
use std::path::Path;

use zeroize::Zeroizing;

/// Reads a secret from `file` (trailing whitespace stripped), else the
/// environment variable `env_var`, else a hidden prompt when stdin is a
/// TTY. `what` names the secret in messages, e.g. "the share passphrase".
pub fn read_secret(
    file: Option<&Path>,
    env_var: Option<&str>,
    what: &str,
    how_to_pass: &str,
) -> Result<Zeroizing<String>, String> {
    if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .map_err(|err| format!("cannot read {what} from {}: {err}", file.display()))?,
        );
        return Ok(Zeroizing::new(text.trim_end().to_owned()));
    }
    if let Some(value) = env_var.and_then(|name| std::env::var(name).ok())
        && !value.is_empty()
    {
        return Ok(Zeroizing::new(value));
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "{what} is needed and there is no TTY to ask on; {how_to_pass}"
        ));
    }
    rpassword::prompt_password(format!("{what}: "))
        .map(Zeroizing::new)
        .map_err(|err| format!("could not read {what}: {err}"))
}
