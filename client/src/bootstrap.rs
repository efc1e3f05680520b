//! `open()`'s inputs: `VSYNC_CONFIG` / `VSYNC_CONFIG_FILE` and
//! `VSYNC_PASSPHRASE` / `VSYNC_PASSPHRASE_FILE` (spec §6.2).
//!
//! Per variable: `<NAME>_FILE` set and non-empty wins; a file's trailing
//! `\r`, `\n`, `\t` and spaces are stripped (right side only); a direct value
//! is used verbatim. A missing or unreadable file, a world-writable file and
//! a file that is not UTF-8 are refused; a group- or world-readable file is
//! read with a warning on stderr.

use std::ffi::OsString;
use std::path::Path;

use vsync_crypto::Zeroizing;

use crate::Environment;
use crate::error::Error;

/// The two secrets `open()` needs.
pub(crate) struct Bootstrap {
    pub(crate) config: Zeroizing<String>,
    pub(crate) passphrase: Zeroizing<String>,
}

pub(crate) fn resolve(env: &Environment) -> Result<Bootstrap, Error> {
    let config = variable(env, "VSYNC_CONFIG")?;
    let passphrase = variable(env, "VSYNC_PASSPHRASE")?;
    match (config, passphrase) {
        (Some(config), Some(passphrase)) => Ok(Bootstrap { config, passphrase }),
        (config, passphrase) => {
            let mut fixes = Vec::new();
            if config.is_none() {
                fixes.push(
                    "VSYNC_CONFIG (or VSYNC_CONFIG_FILE) is not set — set it to the blob `vsync runtime-token --env=<env>` prints",
                );
            }
            if passphrase.is_none() {
                fixes.push(
                    "VSYNC_PASSPHRASE (or VSYNC_PASSPHRASE_FILE) is not set — set it to the env's passphrase",
                );
            }
            Err(Error::config_missing(fixes.join("; ")))
        }
    }
}

/// One variable: `Ok(None)` when neither form is set.
fn variable(env: &Environment, name: &str) -> Result<Option<Zeroizing<String>>, Error> {
    let file_var = format!("{name}_FILE");
    if let Some(path) = env.get(&file_var).filter(|path| !path.is_empty()) {
        return read_file(&file_var, Path::new(&path)).map(Some);
    }
    match env.get(name) {
        None => Ok(None),
        Some(value) => value
            .into_string()
            .map(|text| Some(Zeroizing::new(text)))
            .map_err(|_| Error::config_missing(format!("{name} is not valid UTF-8"))),
    }
}

fn read_file(var: &str, path: &Path) -> Result<Zeroizing<String>, Error> {
    let shown = path.display();
    let unreadable = |err: std::io::Error| {
        Error::config_missing(format!(
            "{var} points at {shown}, which cannot be read ({err}) — fix the path or its permissions"
        ))
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    check_mode(var, path, &metadata)?;
    let bytes = Zeroizing::new(std::fs::read(path).map_err(unreadable)?);
    let end = bytes
        .iter()
        .rposition(|byte| !matches!(byte, b'\r' | b'\n' | b'\t' | b' '))
        .map_or(0, |last| last + 1);
    let text = std::str::from_utf8(&bytes[..end]).map_err(|_| {
        Error::config_missing(format!("{var} points at {shown}, which is not UTF-8 text"))
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(unix)]
fn check_mode(var: &str, path: &Path, metadata: &std::fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o002 != 0 {
        return Err(Error::config_missing(format!(
            "{var} points at {}, which is world-writable (mode 0{mode:o}); anyone could swap it — chmod 600 it",
            path.display()
        )));
    }
    if mode & 0o044 != 0 {
        eprintln!(
            "vsync: {} is world/group-readable (mode 0{mode:o}); narrow to 0600",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_var: &str, _path: &Path, _metadata: &std::fs::Metadata) -> Result<(), Error> {
    eprintln!("vsync: file-permission check skipped (Windows)");
    Ok(())
}

/// The process environment, read when asked (never cached).
pub(crate) fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use vsync_crypto::ErrorClass;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        Environment::Custom(Arc::new(move |name: &str| map.get(name).cloned()))
    }

    fn write(dir: &Path, name: &str, contents: &[u8], mode: u32) -> String {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        path.to_str().unwrap().to_owned()
    }

    fn class(result: Result<Bootstrap, Error>) -> Option<ErrorClass> {
        result.err().and_then(|err| err.class())
    }

    #[test]
    fn direct_values_are_verbatim() {
        let got = resolve(&env(&[
            ("VSYNC_CONFIG", " vsync-cfg-v1:abc\n"),
            ("VSYNC_PASSPHRASE", " pass phrase \n"),
        ]))
        .unwrap();
        assert_eq!(got.config.as_str(), " vsync-cfg-v1:abc\n");
        assert_eq!(got.passphrase.as_str(), " pass phrase \n");
    }

    #[test]
    fn files_win_and_lose_only_trailing_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(dir.path(), "cfg", b"vsync-cfg-v1:fromfile \r\n\t ", 0o600);
        let pass = write(dir.path(), "pp", b"  lead kept\n\n", 0o400);
        let got = resolve(&env(&[
            ("VSYNC_CONFIG", "vsync-cfg-v1:direct"),
            ("VSYNC_CONFIG_FILE", &config),
            ("VSYNC_PASSPHRASE", "direct"),
            ("VSYNC_PASSPHRASE_FILE", &pass),
        ]))
        .unwrap();
        assert_eq!(got.config.as_str(), "vsync-cfg-v1:fromfile");
        assert_eq!(got.passphrase.as_str(), "  lead kept");

        // An empty _FILE falls back to the direct value.
        let got = resolve(&env(&[
            ("VSYNC_CONFIG", "direct-config"),
            ("VSYNC_CONFIG_FILE", ""),
            ("VSYNC_PASSPHRASE", "direct"),
        ]))
        .unwrap();
        assert_eq!(got.config.as_str(), "direct-config");
    }

    #[test]
    fn missing_inputs_are_config_missing_and_named() {
        let err = resolve(&env(&[])).err().unwrap();
        assert_eq!(err.class(), Some(ErrorClass::ConfigMissing));
        assert!(err.message().contains("VSYNC_CONFIG"), "{err}");
        assert!(err.message().contains("VSYNC_PASSPHRASE"), "{err}");

        let err = resolve(&env(&[("VSYNC_CONFIG", "x")])).err().unwrap();
        assert!(err.message().starts_with("VSYNC_PASSPHRASE"), "{err}");
        assert!(!err.message().contains("VSYNC_CONFIG"), "{err}");
    }

    #[test]
    fn bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope").to_str().unwrap().to_owned();
        assert_eq!(
            class(resolve(&env(&[
                ("VSYNC_CONFIG_FILE", &missing),
                ("VSYNC_PASSPHRASE", "p"),
            ]))),
            Some(ErrorClass::ConfigMissing)
        );
        let binary = write(dir.path(), "bin", &[0xff, 0xfe, b'\n'], 0o600);
        assert_eq!(
            class(resolve(&env(&[
                ("VSYNC_CONFIG", "c"),
                ("VSYNC_PASSPHRASE_FILE", &binary),
            ]))),
            Some(ErrorClass::ConfigMissing)
        );
        #[cfg(unix)]
        {
            let writable = write(dir.path(), "ww", b"secret-passphrase", 0o646);
            let err = resolve(&env(&[
                ("VSYNC_CONFIG", "c"),
                ("VSYNC_PASSPHRASE_FILE", &writable),
            ]))
            .err()
            .unwrap();
            assert_eq!(err.class(), Some(ErrorClass::ConfigMissing));
            assert!(err.message().contains("world-writable"), "{err}");
            assert!(!err.message().contains("secret-passphrase"), "{err}");
            // Group/world-readable is read (with a warning).
            let readable = write(dir.path(), "rr", b"p", 0o644);
            assert!(
                resolve(&env(&[
                    ("VSYNC_CONFIG", "c"),
                    ("VSYNC_PASSPHRASE_FILE", &readable),
                ]))
                .is_ok()
            );
        }
    }
}
