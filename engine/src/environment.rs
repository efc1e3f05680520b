//! Reading what the environment says about a platform: the CLIs vsync may
//! run for a login (`az`, `gh`, `op`) and on/off switches.

use std::path::{Path, PathBuf};

/// `name` (`op`, or `op.exe` on Windows) as an executable in an absolute
/// directory of `path` (`PATH`'s value). Relative entries (`.`, an empty
/// one) are skipped: they would run whatever program the current directory
/// holds, a checked-out repository's for instance.
pub fn find_program(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// `1` or `true` (any case, surrounding spaces ignored), as the platforms
/// read switches; anything else leaves a switch off.
pub fn is_true(value: &str) -> bool {
    let value = value.trim();
    value == "1" || value.eq_ignore_ascii_case("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn only_executables_in_absolute_directories_are_found() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let (plain, tool) = (dir.path().join("plain"), dir.path().join("tool"));
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::create_dir_all(&tool).unwrap();
        std::fs::write(plain.join("op"), "").unwrap();
        std::fs::write(tool.join("op"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(tool.join("op"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = |dirs: &[&Path]| std::env::join_paths(dirs).unwrap().into_string().unwrap();
        // Not executable: skipped for the next directory's.
        assert_eq!(
            find_program(&path(&[&plain, &tool]), "op"),
            Some(tool.join("op"))
        );
        assert_eq!(find_program(&path(&[&plain]), "op"), None);
        // A relative entry is never searched (`.`, say, in a checkout).
        assert_eq!(find_program(".", "op"), None);
    }

    #[test]
    fn switches() {
        for on in ["1", "true", " TRUE ", "True"] {
            assert!(is_true(on), "{on}");
        }
        for off in ["", "0", "yes", "false", "on"] {
            assert!(!is_true(off), "{off}");
        }
    }
}
