//! Fuzz targets (issue 13, "Fuzzing") for the engine's parsers of untrusted
//! bytes: the bundle zip unpacker (`bundle::unpack`, which writes to disk,
//! so it must never write outside the vault folder) and the dotenv parser.
//!
//! Driver and mutators: `crypto/tests/support/fuzz.rs`.

#![forbid(unsafe_code)]

#[path = "../../crypto/tests/support/fuzz.rs"]
mod fuzz;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use fuzz::{Mutation, anywhere, apply, mutations, random_after, random_bytes, zip_fields};
use proptest::prelude::*;
use vsync_engine::bundle::{self, BundleError};
use vsync_engine::dotenv;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

const VAULT: &str = "infra/vault/dev";
const SENTINEL: &[u8] = b"outside the repository: must never change";

/// File paths inside the vault folder and their contents.
fn vault_files() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let name = prop_oneof![
        Just(".env.dev".to_owned()),
        "[a-z]{1,8}(\\.[a-z]{1,3})?",
        "[a-z]{1,6}/[a-z][a-z.]{0,7}",
        "[a-z]{1,3}/[a-z]{1,3}/[a-z]{1,6}",
    ];
    let contents = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..256),
        // Compressible, so DEFLATE streams of real length show up.
        1 => (any::<u8>(), 0usize..20_000).prop_map(|(byte, n)| vec![byte; n]),
    ];
    proptest::collection::btree_map(name, contents, 0..6).prop_filter(
        "a path cannot be both a file and a directory",
        |files| {
            files
                .keys()
                .all(|a| files.keys().all(|b| !b.starts_with(&format!("{a}/"))))
        },
    )
}

/// `bundle::pack` output for `files` (the writer the unpacker must accept).
fn pack(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let source = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let path = source.path().join(VAULT).join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    // A file beside the vault folder, which pack must leave out.
    fs::create_dir_all(source.path().join("infra/vault/prod")).unwrap();
    fs::write(source.path().join("infra/vault/prod/.env.prod"), b"NO=1").unwrap();
    bundle::pack(source.path(), Path::new(VAULT))
        .unwrap()
        .to_vec()
}

/// A hostile archive entry.
#[derive(Debug, Clone)]
enum Entry {
    File(String, Vec<u8>),
    Dir(String),
    Symlink(String, String),
}

/// Entry names built from the parts path traversal is made of.
fn hostile_name() -> impl Strategy<Value = String> {
    const PARTS: &[&str] = &[
        "infra", "vault", "dev", "prod", "..", ".", "", "/", "\\", "C:", "..\\..", "%2e%2e", "x",
        ".env.dev", "a b", "\u{0}", "\u{202e}", "~", "con",
    ];
    prop_oneof![
        // Inside the vault folder, then anything.
        proptest::collection::vec(proptest::sample::select(PARTS), 0..5)
            .prop_map(|parts| format!("{VAULT}/{}", parts.join("/"))),
        proptest::collection::vec(proptest::sample::select(PARTS), 0..7)
            .prop_map(|parts| parts.join("/")),
        any::<String>(),
    ]
}

fn hostile_entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => (hostile_name(), proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(name, data)| Entry::File(name, data)),
        1 => hostile_name().prop_map(Entry::Dir),
        1 => (hostile_name(), prop_oneof![Just("/etc/passwd".to_owned()), Just("../../..".to_owned()), hostile_name()])
            .prop_map(|(name, target)| Entry::Symlink(name, target)),
    ]
}

/// Writes hostile entries with the zip crate's writer; entries it refuses
/// to write are skipped (they cannot reach the reader that way anyway).
fn hostile_zip(entries: &[Entry]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().unix_permissions(0o644);
    for entry in entries {
        let _ = match entry {
            Entry::File(name, data) => zip
                .start_file(name.as_str(), options)
                .and_then(|()| zip.write_all(data).map_err(Into::into)),
            Entry::Dir(name) => zip.add_directory(name.as_str(), options),
            Entry::Symlink(name, target) => {
                zip.add_symlink(name.as_str(), target.as_str(), options)
            }
        };
    }
    zip.finish().unwrap().into_inner()
}

#[derive(Debug, Clone)]
enum ZipInput {
    /// `pack` output, unmutated: must round-trip.
    Valid(BTreeMap<String, Vec<u8>>),
    /// `pack` output, mutated (splicing from a second packed bundle).
    Mutated(
        BTreeMap<String, Vec<u8>>,
        BTreeMap<String, Vec<u8>>,
        Vec<Mutation>,
    ),
    /// A well-formed archive of hostile entries, optionally mutated.
    Hostile(Vec<Entry>, Vec<Mutation>, bool),
    Raw(Vec<u8>),
}

fn zip_input() -> impl Strategy<Value = ZipInput> {
    prop_oneof![
        1 => vault_files().prop_map(ZipInput::Valid),
        4 => (vault_files(), vault_files(), mutations())
            .prop_map(|(files, other, m)| ZipInput::Mutated(files, other, m)),
        3 => (proptest::collection::vec(hostile_entry(), 1..5), mutations(), any::<bool>())
            .prop_map(|(entries, m, mutate)| ZipInput::Hostile(entries, m, mutate)),
        1 => random_bytes().prop_map(ZipInput::Raw),
        1 => random_after(b"PK\x03\x04", 0..200).prop_map(ZipInput::Raw),
    ]
}

/// Every path under `dir` (not following symlinks), with whether it is a
/// symlink.
fn walk(dir: &Path, found: &mut Vec<(PathBuf, fs::FileType)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let file_type = entry.file_type().unwrap();
        found.push((entry.path(), file_type));
        if file_type.is_dir() {
            walk(&entry.path(), found);
        }
    }
}

/// Each case packs and unpacks through real temp directories (~40 ms), so
/// the default count is lower than the in-memory targets'.
#[test]
fn fuzz_bundle_unpack() {
    fuzz::fuzz("bundle-unpack", 96, zip_input(), |input| {
        let (zip, expected) = match &input {
            ZipInput::Valid(files) => (pack(files), Some(files)),
            ZipInput::Mutated(files, other, mutations) => (
                apply(&pack(files), &pack(other), mutations, zip_fields),
                None,
            ),
            ZipInput::Hostile(entries, mutations, mutate) => {
                let zip = hostile_zip(entries);
                if *mutate {
                    (apply(&zip, &[], mutations, zip_fields), None)
                } else {
                    (zip, None)
                }
            }
            ZipInput::Raw(bytes) => (bytes.clone(), None),
        };

        // base/outside/sentinel stands for everything beyond the repository.
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("repo");
        let outside = base.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("sentinel"), SENTINEL).unwrap();
        let vault_dir = root.join(VAULT);

        let result = bundle::unpack(&zip, &root, Path::new(VAULT));

        // Whatever happened, nothing exists outside the vault folder but
        // its ancestors and the untouched sentinel, and no symlink at all.
        let mut found = Vec::new();
        walk(base.path(), &mut found);
        let mut written_bytes = 0u64;
        let mut files_in_vault = 0usize;
        for (path, file_type) in &found {
            prop_assert!(
                !file_type.is_symlink(),
                "unpack created a symlink at {path:?}"
            );
            let allowed_ancestor = [
                root.clone(),
                root.join("infra"),
                root.join("infra/vault"),
                outside.clone(),
                outside.join("sentinel"),
            ]
            .contains(path);
            prop_assert!(
                allowed_ancestor || path.starts_with(&vault_dir),
                "unpack wrote {path:?}, outside {vault_dir:?}"
            );
            if path.starts_with(&vault_dir) && file_type.is_file() {
                written_bytes += fs::metadata(path).unwrap().len();
                files_in_vault += 1;
            }
        }
        prop_assert_eq!(fs::read(outside.join("sentinel")).unwrap(), SENTINEL);
        // Output is bounded by the input: DEFLATE cannot expand more than
        // ~1032:1, so a bigger total means a size field was trusted.
        prop_assert!(
            written_bytes <= 1100 * zip.len() as u64 + 4096,
            "{written_bytes} bytes written from a {}-byte zip",
            zip.len()
        );

        match result {
            Ok(names) => {
                let mut distinct = std::collections::BTreeSet::new();
                for name in &names {
                    // Relative to the vault folder, plain components only:
                    // no `.`, `..`, empty component or leading `/`.
                    prop_assert!(
                        name.split('/')
                            .all(|part| !part.is_empty() && part != "." && part != ".."),
                        "returned name {name:?}"
                    );
                    prop_assert!(vault_dir.join(name).is_file(), "{name:?} not written");
                    distinct.insert(name.clone());
                }
                // Every file present was reported (duplicates overwrite).
                prop_assert_eq!(distinct.len(), files_in_vault);
                if let Some(files) = expected {
                    // Round trip: pack → unpack gives back every file.
                    let mut sorted = names.clone();
                    sorted.sort();
                    prop_assert_eq!(&sorted, &files.keys().cloned().collect::<Vec<_>>());
                    for (name, contents) in files {
                        prop_assert_eq!(&fs::read(vault_dir.join(name)).unwrap(), contents);
                    }
                }
            }
            Err(err) => {
                prop_assert!(expected.is_none(), "pack output refused: {err}");
                match &err {
                    // Refused before the first write: nothing at all.
                    BundleError::UnsafeEntry(_)
                    | BundleError::Path(_)
                    | BundleError::EntryTooLarge { .. }
                    | BundleError::TooLarge { .. }
                    | BundleError::TooManyEntries { .. } => {
                        prop_assert_eq!(files_in_vault, 0, "{} then wrote files", err);
                    }
                    BundleError::Corrupt(_) => {}
                    BundleError::Io { path, .. } => {
                        prop_assert!(path.starts_with(&vault_dir), "I/O outside: {path:?}");
                    }
                    other => prop_assert!(false, "undocumented error {other:?}"),
                }
            }
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum DotenvInput {
    /// A file from a grammar of the constructs dotenv files hold, mutated.
    Mutated(Vec<&'static str>, Vec<Mutation>),
    /// The same, unmutated.
    Tokens(Vec<&'static str>),
    Text(String),
}

/// The parser must take any text without panicking. Its result type is
/// being reworked elsewhere (issue 13 dotenv grammar), so this target only
/// calls `parse(&str)` and drops the result.
#[test]
fn fuzz_dotenv_parse() {
    const TOKENS: &[&str] = &[
        "KEY",
        "DATABASE_URL",
        "export ",
        "=",
        "==",
        "value",
        "\"",
        "'",
        "`",
        "\n",
        "\r\n",
        "\r",
        "#",
        " # comment",
        " ",
        "\t",
        "\u{feff}",
        "\u{a0}",
        "\u{2028}",
        "\u{85}",
        "${VAULT_ROOT}",
        "${HOME}",
        "~/",
        "\\n",
        "\\",
        "-----BEGIN PRIVATE KEY-----",
        "é",
        "\u{1f511}",
        "\u{0}",
        "_PATH",
        "_FILE",
    ];
    let tokens = || proptest::collection::vec(proptest::sample::select(TOKENS), 0..40);
    let input = prop_oneof![
        3 => (tokens(), mutations()).prop_map(|(tokens, m)| DotenvInput::Mutated(tokens, m)),
        3 => tokens().prop_map(DotenvInput::Tokens),
        1 => any::<String>().prop_map(DotenvInput::Text),
    ];
    fuzz::fuzz("dotenv-parse", 512, input, |input| {
        let text = match input {
            DotenvInput::Mutated(tokens, mutations) => {
                let bytes = apply(tokens.concat().as_bytes(), b"", &mutations, anywhere);
                String::from_utf8_lossy(&bytes).into_owned()
            }
            DotenvInput::Tokens(tokens) => tokens.concat(),
            DotenvInput::Text(text) => text,
        };
        let _ = dotenv::parse(&text);
        Ok(())
    });
}
