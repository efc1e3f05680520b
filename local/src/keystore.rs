//! Where the 32-byte bundle key of each (repo, env) lives: the OS keychain
//! (service `tools.vsync`, account `<repo>/<env>`, as upstream stores it) or,
//! where no keychain exists (headless Linux, CI), a file keystore at
//! `<base>/.keystore/<repo>/<env>.key` (files 0600, directories 0700).
//!
//! The value is the standard base64 (with padding) of 32 random bytes, 44
//! characters, and is fed to PBKDF2 as those characters. It is held in
//! [`Zeroizing`] buffers and never reaches a `Debug`/`Display` string.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use vsync_crypto::Zeroizing;

use crate::fsutil;
use crate::paths::{ConfigBase, PathsError, check_env_name, check_repo_name};

/// The keychain service upstream (v0.3+) uses.
pub const KEYRING_SERVICE: &str = "tools.vsync";

/// The `VSYNC_KEYSTORE` value that forces the file keystore.
pub const FILE_KEYSTORE_SELECTOR: &str = "file";

/// The keychain account of a (repo, env): `<repo>/<env>`, env as typed.
pub fn account(repo: &str, env: &str) -> String {
    format!("{repo}/{env}")
}

/// A fresh bundle key: standard base64 with padding of 32 random bytes.
pub fn generate_key() -> Zeroizing<String> {
    let bytes = Zeroizing::new(fsutil::random_bytes::<32>());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*bytes))
}

/// Why a key could not be read, stored or deleted. Never carries the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The OS keychain refused or failed.
    #[error(
        "OS keychain could not {action} the key for {account}: {reason}; unlock the keychain, or set VSYNC_KEYSTORE=file to use the file keystore"
    )]
    Keyring {
        /// `read`, `store` or `delete`.
        action: &'static str,
        /// The account, `<repo>/<env>`.
        account: String,
        /// What the keychain said (never the value).
        reason: String,
    },
    /// A key file could not be read or written.
    #[error("key file {path}: {source}; check the file keystore's permissions")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// A key file exists but holds no key.
    #[error(
        "key file {0} is empty or not text; remove it and re-import the .share (or re-run `vsync init`)"
    )]
    EmptyKeyFile(PathBuf),
    /// The repo or env cannot name a key.
    #[error(transparent)]
    Paths(#[from] PathsError),
    /// A keystore directory or key file that is not this user's alone.
    #[error(transparent)]
    NotPrivate(#[from] fsutil::NotPrivate),
}

/// Where keys are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    /// The OS keychain (macOS Keychain, Secret Service, Windows Credential
    /// Manager), service [`KEYRING_SERVICE`].
    Keyring,
    /// The file keystore rooted at this directory (`<base>/.keystore`).
    File(PathBuf),
}

/// Why the keystore in use is the one in use (shown by `status` and
/// `doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `VSYNC_KEYSTORE=file` named it.
    Variable,
    /// The OS keychain answered.
    KeychainAnswered,
    /// An earlier command found no OS keychain on this machine and
    /// remembered the file keystore in this file.
    Remembered(PathBuf),
    /// No OS keychain answered now, for this reason (its first line).
    NoKeychain {
        /// What the keychain said.
        reason: String,
        /// Where to remember the fallback so that later commands neither
        /// ask the keychain again nor repeat the notice; `None` when
        /// `VSYNC_KEYSTORE` asked for the keychain (the user wants it tried
        /// each time).
        remember_at: Option<PathBuf>,
    },
}

impl Choice {
    /// Half a sentence: why this keystore.
    pub fn describe(&self) -> String {
        match self {
            Choice::Variable => "chosen by VSYNC_KEYSTORE=file".to_owned(),
            Choice::KeychainAnswered => "the OS keychain answers".to_owned(),
            Choice::Remembered(path) => format!(
                "no OS keychain answered on this machine, remembered in {}; delete it or set VSYNC_KEYSTORE=keychain to ask again",
                path.display()
            ),
            Choice::NoKeychain { reason, .. } => format!("no OS keychain answers ({reason})"),
        }
    }
}

/// The outcome of [`Keystore::select`]: the keystore, why, and a notice
/// for the user when the keychain was wanted but is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The keystore to use.
    pub keystore: Keystore,
    /// Why it is the one.
    pub choice: Choice,
    /// A one-line notice to print, if any.
    pub warning: Option<String>,
}

/// The first line of the fallback file: the keystore it chooses.
const REMEMBERED_FILE_KEYSTORE: &str = "file";

impl Keystore {
    /// The file keystore of `base`.
    pub fn file(base: &ConfigBase) -> Self {
        Keystore::File(base.keystore_dir())
    }

    /// Chooses the keystore: `VSYNC_KEYSTORE=file` (`vsync_keystore`) gives
    /// the file keystore; otherwise a fallback remembered for this machine
    /// ([`remember_fallback`]), else the OS keychain when it answers, else
    /// the file keystore with a notice. Writes nothing.
    pub fn select(base: &ConfigBase, vsync_keystore: Option<&str>) -> Selection {
        Self::select_with(base, vsync_keystore, probe_keyring)
    }

    /// [`Keystore::select`] with the keychain probe supplied (it returns why
    /// the keychain is unusable, if it is).
    pub fn select_with(
        base: &ConfigBase,
        vsync_keystore: Option<&str>,
        probe: impl FnOnce() -> Result<(), String>,
    ) -> Selection {
        let selector = vsync_keystore.map(str::trim).unwrap_or_default();
        if selector.eq_ignore_ascii_case(FILE_KEYSTORE_SELECTOR) {
            return Selection {
                keystore: Self::file(base),
                choice: Choice::Variable,
                warning: None,
            };
        }
        let asked_for_keychain = ["keyring", "keychain", "os"]
            .iter()
            .any(|known| known.eq_ignore_ascii_case(selector));
        let mut notes = Vec::new();
        if !selector.is_empty() && !asked_for_keychain {
            notes.push(format!(
                "VSYNC_KEYSTORE={selector:?} is not understood (use `file` or `keychain`); using the default"
            ));
        }
        let remember_at = base.keystore_fallback_path();
        if !asked_for_keychain {
            match read_remembered(base, &remember_at) {
                Ok(true) => {
                    return Selection {
                        keystore: Self::file(base),
                        choice: Choice::Remembered(remember_at),
                        warning: (!notes.is_empty()).then(|| notes.join("; ")),
                    };
                }
                Ok(false) => {}
                Err(problem) => notes.push(problem),
            }
        }
        let (keystore, choice) = match probe() {
            Ok(()) => (Keystore::Keyring, Choice::KeychainAnswered),
            Err(reason) => {
                let reason = first_line(&reason);
                let file = Self::file(base);
                notes.push(if asked_for_keychain {
                    format!(
                        "VSYNC_KEYSTORE asks for the OS keychain, but none answers ({reason}); keys are kept in the {} this time",
                        file.describe()
                    )
                } else {
                    format!(
                        "no OS keychain answers ({reason}); this machine keeps keys in the {} from now on, remembered in {} (delete it or set VSYNC_KEYSTORE=keychain to ask again)",
                        file.describe(),
                        remember_at.display()
                    )
                });
                let choice = Choice::NoKeychain {
                    reason,
                    remember_at: (!asked_for_keychain).then_some(remember_at),
                };
                (file, choice)
            }
        };
        Selection {
            keystore,
            choice,
            warning: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }

    /// One line for `vsync status`.
    pub fn describe(&self) -> String {
        match self {
            Keystore::Keyring => format!("OS keychain (service {KEYRING_SERVICE})"),
            Keystore::File(dir) => format!("file keystore at {}", dir.display()),
        }
    }

    /// Which kind of keystore, one word for tables: `keychain` or `file`.
    pub fn kind(&self) -> &'static str {
        match self {
            Keystore::Keyring => "keychain",
            Keystore::File(_) => "file",
        }
    }

    /// The key file of a (repo, env) in the file keystore; `None` for the
    /// keychain.
    pub fn key_path(&self, repo: &str, env: &str) -> Result<Option<PathBuf>, KeystoreError> {
        check_repo_name(repo)?;
        check_env_name(env)?;
        Ok(match self {
            Keystore::Keyring => None,
            Keystore::File(dir) => {
                let path = dir.join(repo).join(format!("{env}.key"));
                // From the config base down: a keystore another user can
                // write lets them plant the key the next push seals with.
                let root = dir.parent().unwrap_or(dir);
                fsutil::check_private_chain(root, &path)?;
                Some(path)
            }
        })
    }

    /// The key of (repo, env), or `None` when there is none.
    pub fn get(&self, repo: &str, env: &str) -> Result<Option<Zeroizing<String>>, KeystoreError> {
        match self.key_path(repo, env)? {
            None => keyring_get(&account(repo, env)),
            Some(path) => {
                let bytes = match fs::read(&path) {
                    Ok(bytes) => Zeroizing::new(bytes),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => return Err(KeystoreError::Io { path, source }),
                };
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| KeystoreError::EmptyKeyFile(path.clone()))?
                    .trim_end_matches(['\r', '\n']);
                if text.is_empty() {
                    return Err(KeystoreError::EmptyKeyFile(path));
                }
                Ok(Some(Zeroizing::new(text.to_owned())))
            }
        }
    }

    /// Stores `key` for (repo, env), replacing any previous key.
    pub fn set(&self, repo: &str, env: &str, key: &str) -> Result<(), KeystoreError> {
        match self.key_path(repo, env)? {
            None => keyring_set(&account(repo, env), key),
            Some(path) => fsutil::write_private_atomic_in_private_dir(&path, key.as_bytes())
                .map_err(|source| KeystoreError::Io { path, source }),
        }
    }

    /// Removes the key of (repo, env); removing an absent key succeeds.
    pub fn delete(&self, repo: &str, env: &str) -> Result<(), KeystoreError> {
        match self.key_path(repo, env)? {
            None => keyring_delete(&account(repo, env)),
            Some(path) => match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(KeystoreError::Io { path, source }),
            },
        }
    }
}

/// Describes a keychain error without any credential bytes it may carry.
fn keyring_reason(err: &keyring::Error) -> String {
    match err {
        keyring::Error::BadEncoding(_) => "the stored value is not UTF-8 text".to_owned(),
        keyring::Error::BadDataFormat(_, _) => "the stored value is malformed".to_owned(),
        keyring::Error::Ambiguous(entries) => {
            format!("{} entries match this account", entries.len())
        }
        other => other.to_string(),
    }
}

fn keyring_entry(action: &'static str, account: &str) -> Result<keyring::Entry, KeystoreError> {
    keyring::Entry::new(KEYRING_SERVICE, account).map_err(|err| KeystoreError::Keyring {
        action,
        account: account.to_owned(),
        reason: keyring_reason(&err),
    })
}

fn keyring_get(account: &str) -> Result<Option<Zeroizing<String>>, KeystoreError> {
    match keyring_entry("read", account)?.get_password() {
        Ok(value) => Ok(Some(Zeroizing::new(value))),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(err) => Err(KeystoreError::Keyring {
            action: "read",
            account: account.to_owned(),
            reason: keyring_reason(&err),
        }),
    }
}

fn keyring_set(account: &str, key: &str) -> Result<(), KeystoreError> {
    keyring_entry("store", account)?
        .set_password(key)
        .map_err(|err| KeystoreError::Keyring {
            action: "store",
            account: account.to_owned(),
            reason: keyring_reason(&err),
        })
}

fn keyring_delete(account: &str) -> Result<(), KeystoreError> {
    match keyring_entry("delete", account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(err) => Err(KeystoreError::Keyring {
            action: "delete",
            account: account.to_owned(),
            reason: keyring_reason(&err),
        }),
    }
}

/// Asks the OS keychain for an entry that does not exist: "no entry" (or
/// a value) means the keychain answers.
fn probe_keyring() -> Result<(), String> {
    if let Err(err) = keyring::Entry::store_status() {
        return Err(keyring_reason(err));
    }
    let entry = keyring::Entry::new(KEYRING_SERVICE, "vsync-probe/availability")
        .map_err(|err| keyring_reason(&err))?;
    match entry.get_password() {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(err) => Err(keyring_reason(&err)),
    }
}

/// Remembers, for this machine, that no OS keychain answers: later
/// selections take the file keystore without asking the keychain (a D-Bus
/// connection attempt on a headless machine) or printing the notice again.
/// `path` is [`Choice::NoKeychain`]'s `remember_at`.
pub fn remember_fallback(path: &Path) -> io::Result<()> {
    let text = format!(
        "{REMEMBERED_FILE_KEYSTORE}\n# vsync keeps this machine's keys in the file keystore: no OS keychain answered.\n# Delete this file, or set VSYNC_KEYSTORE=keychain, to ask the keychain again.\n"
    );
    fsutil::write_private_atomic_in_private_dir(path, text.as_bytes())
}

/// Whether `path` remembers the file keystore. A file someone else could
/// have written is not trusted (it would move keys out of the keychain);
/// the problem is returned for the notice.
fn read_remembered(base: &ConfigBase, path: &Path) -> Result<bool, String> {
    if let Err(not_private) = fsutil::check_private_chain(base.dir(), path) {
        return Err(format!(
            "ignoring the remembered keystore choice: {not_private}"
        ));
    }
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
    };
    let chosen = String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned);
    match chosen.as_deref() {
        Some(REMEMBERED_FILE_KEYSTORE) => Ok(true),
        _ => Err(format!(
            "{} is not understood (it should say `{REMEMBERED_FILE_KEYSTORE}`); delete it",
            path.display()
        )),
    }
}

/// The first line of a keychain's reason, whose D-Bus errors span several.
fn first_line(reason: &str) -> String {
    reason
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("no reason given")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::mode;

    #[test]
    fn keys_are_44_char_padded_base64_of_32_bytes() {
        let key = generate_key();
        assert_eq!(key.len(), 44);
        assert!(key.ends_with('='));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key.as_bytes())
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_ne!(*generate_key(), *key);
        assert_eq!(account("acme_web", "Dev"), "acme_web/Dev");
    }

    #[test]
    fn file_keystore_round_trip_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path().join("vsync"));
        let store = Keystore::file(&base);
        assert_eq!(store.get("acme_web", "dev").unwrap(), None);
        let key = generate_key();
        store.set("acme_web", "dev", &key).unwrap();
        let path = tmp.path().join("vsync/.keystore/acme_web/dev.key");
        assert_eq!(
            store.key_path("acme_web", "dev").unwrap(),
            Some(path.clone())
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), *key);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&tmp.path().join("vsync/.keystore/acme_web")), 0o700);
        assert_eq!(mode(&tmp.path().join("vsync/.keystore")), 0o700);
        assert_eq!(
            store.get("acme_web", "dev").unwrap().as_deref(),
            Some(&*key)
        );
        // Another env is separate; replacing a key works.
        assert_eq!(store.get("acme_web", "prod").unwrap(), None);
        let second = generate_key();
        store.set("acme_web", "dev", &second).unwrap();
        assert_eq!(
            store.get("acme_web", "dev").unwrap().as_deref(),
            Some(&*second)
        );
        // A hand-edited trailing newline is tolerated.
        fs::write(&path, format!("{}\n", *second)).unwrap();
        assert_eq!(
            store.get("acme_web", "dev").unwrap().as_deref(),
            Some(&*second)
        );
        // Delete is idempotent.
        store.delete("acme_web", "dev").unwrap();
        store.delete("acme_web", "dev").unwrap();
        assert_eq!(store.get("acme_web", "dev").unwrap(), None);
    }

    #[test]
    fn bad_names_and_empty_files_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Keystore::file(&ConfigBase::at(tmp.path()));
        assert!(matches!(
            store.set("../x", "dev", "k"),
            Err(KeystoreError::Paths(_))
        ));
        assert!(matches!(
            store.get("r", "a/b"),
            Err(KeystoreError::Paths(_))
        ));
        assert!(matches!(
            store.get("profiles", "dev"),
            Err(KeystoreError::Paths(PathsError::ReservedRepo(_)))
        ));
        let path = store.key_path("r", "dev").unwrap().unwrap();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"\n").unwrap();
        let err = store.get("r", "dev").unwrap_err();
        assert!(matches!(err, KeystoreError::EmptyKeyFile(_)));
        assert!(err.to_string().contains("re-import"), "{err}");
    }

    #[test]
    fn selection_and_fallback() {
        let base = ConfigBase::at("/b");
        let file = Keystore::File(PathBuf::from("/b/.keystore"));
        let never = || -> Result<(), String> { panic!("VSYNC_KEYSTORE=file must not probe") };
        for value in ["file", "FILE", " file "] {
            let chosen = Keystore::select_with(&base, Some(value), never);
            assert_eq!(
                chosen,
                Selection {
                    keystore: file.clone(),
                    choice: Choice::Variable,
                    warning: None
                }
            );
        }
        let chosen = Keystore::select_with(&base, None, || Ok(()));
        assert_eq!(
            chosen,
            Selection {
                keystore: Keystore::Keyring,
                choice: Choice::KeychainAnswered,
                warning: None
            }
        );
        let chosen = Keystore::select_with(&base, Some("keychain"), || Ok(()));
        assert_eq!(chosen.keystore, Keystore::Keyring);
        assert_eq!(chosen.warning, None);

        // A D-Bus failure spans lines; the notice is one.
        let dbus = "zbus error: Failed to connect to address unix:path=/run/user/0/bus\nNo such file or directory\n(os error 2)";
        let chosen = Keystore::select_with(&base, None, || Err(dbus.to_owned()));
        assert_eq!(chosen.keystore, file);
        assert_eq!(
            chosen.choice,
            Choice::NoKeychain {
                reason: "zbus error: Failed to connect to address unix:path=/run/user/0/bus".into(),
                remember_at: Some(PathBuf::from("/b/.keystore-fallback")),
            }
        );
        let warning = chosen.warning.unwrap();
        assert_eq!(warning.lines().count(), 1, "{warning}");
        assert!(
            warning.contains("file keystore at /b/.keystore"),
            "{warning}"
        );
        assert!(warning.contains("/b/.keystore-fallback"), "{warning}");
        assert!(warning.contains("VSYNC_KEYSTORE=keychain"), "{warning}");

        // Asked for by name, the keychain is tried each time: nothing to
        // remember.
        let chosen = Keystore::select_with(&base, Some("keychain"), || Err("locked".into()));
        assert_eq!(chosen.keystore, file);
        assert!(matches!(
            chosen.choice,
            Choice::NoKeychain {
                remember_at: None,
                ..
            }
        ));
        assert!(chosen.warning.unwrap().contains("this time"));

        let chosen = Keystore::select_with(&base, Some("vault"), || Ok(()));
        assert_eq!(chosen.keystore, Keystore::Keyring);
        assert!(chosen.warning.unwrap().contains("not understood"));

        // The real selection with `file` never touches the keychain.
        assert_eq!(Keystore::select(&base, Some("file")).keystore, file);
    }

    #[test]
    fn a_remembered_fallback_is_used_quietly_without_asking_the_keychain() {
        use std::os::unix::fs::PermissionsExt;

        let tmp = tempfile::tempdir().unwrap();
        let base = ConfigBase::at(tmp.path().join("vsync"));
        let failing = || Err("no D-Bus session bus".to_owned());
        let first = Keystore::select_with(&base, None, failing);
        let Choice::NoKeychain {
            remember_at: Some(path),
            ..
        } = &first.choice
        else {
            panic!("expected a fallback to remember: {first:?}");
        };
        assert!(first.warning.is_some());
        remember_fallback(path).unwrap();
        assert_eq!(mode(path), 0o600);
        assert_eq!(mode(base.dir()), 0o700);

        let never = || -> Result<(), String> { panic!("a remembered choice must not probe") };
        let again = Keystore::select_with(&base, None, never);
        assert_eq!(
            again,
            Selection {
                keystore: Keystore::file(&base),
                choice: Choice::Remembered(path.clone()),
                warning: None,
            }
        );
        assert!(again.choice.describe().contains("VSYNC_KEYSTORE=keychain"));
        // Asking for the keychain by name still asks it.
        let asked = Keystore::select_with(&base, Some("keychain"), || Ok(()));
        assert_eq!(asked.keystore, Keystore::Keyring);

        // A choice file others can write is not trusted, and a file that
        // says something else is not guessed at: the keychain is asked.
        fs::set_permissions(path, fs::Permissions::from_mode(0o622)).unwrap();
        let planted = Keystore::select_with(&base, None, || Ok(()));
        assert_eq!(planted.keystore, Keystore::Keyring);
        assert!(
            planted
                .warning
                .unwrap()
                .contains("writable by group or others")
        );
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(path, "keyring\n").unwrap();
        let unknown = Keystore::select_with(&base, None, || Ok(()));
        assert_eq!(unknown.keystore, Keystore::Keyring);
        assert!(unknown.warning.unwrap().contains("not understood"));
    }

    #[test]
    fn describe_for_status() {
        assert_eq!(
            Keystore::Keyring.describe(),
            "OS keychain (service tools.vsync)"
        );
        assert_eq!(
            Keystore::File(PathBuf::from("/b/.keystore")).describe(),
            "file keystore at /b/.keystore"
        );
        assert_eq!(Keystore::Keyring.kind(), "keychain");
        assert_eq!(Keystore::File(PathBuf::from("/b/.keystore")).kind(), "file");
    }

    #[test]
    fn errors_never_show_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Keystore::file(&ConfigBase::at(tmp.path()));
        let key = generate_key();
        store.set("r", "dev", &key).unwrap();
        let path = store.key_path("r", "dev").unwrap().unwrap();
        // Make the key file unreadable as a key (invalid UTF-8 with the key in it).
        let mut bytes = key.as_bytes().to_vec();
        bytes.push(0xff);
        fs::write(&path, &bytes).unwrap();
        let err = store.get("r", "dev").unwrap_err();
        assert!(!err.to_string().contains(key.as_str()));
        assert!(!format!("{err:?}").contains(key.as_str()));
        let err = KeystoreError::Keyring {
            action: "read",
            account: "r/dev".to_owned(),
            reason: keyring_reason(&keyring::Error::BadEncoding(key.as_bytes().to_vec())),
        };
        assert!(!err.to_string().contains(key.as_str()));
        assert!(!format!("{err:?}").contains(key.as_str()));
    }
}
