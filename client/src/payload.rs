//! From the decrypted bundle payload to the in-memory vault: KV pairs and
//! assets.
//!
//! Two payload shapes are read:
//!
//! - **a zip of the vault folder**, as `vsync push` writes it (entry names
//!   relative to the repository root, e.g. `infra/vault/dev/.env.dev`). The
//!   KV pairs come from `.env.<env>` parsed with the one dotenv grammar
//!   ([`vsync_engine::dotenv`]: upstream's line rules plus double-quoted
//!   values spanning lines): values verbatim after quote stripping, with
//!   **no** placeholder expansion and **no** file references (those name
//!   paths on the pusher's machine and are `sync` features; a referenced
//!   file that lives in the vault folder is available as an asset). Every
//!   other file is an asset named by its path relative to the vault folder
//!   (`tls/server.crt`, `gcp-sa.json`).
//! - **JSON**: `{"kv": {name: string}, "assets": {name: base64}}` (either
//!   part optional) when the object has a `kv` or `assets` key, otherwise a
//!   flat `{name: string}` object whose every value becomes a KV pair.
//!
//! Where the vault folder is in the zip: the directory of the `.env.<env>`
//! entry (the shallowest one; the env name compared exactly, then ignoring
//! ASCII case). A bundle without that file: the shortest directory entry that
//! holds every file (Info-ZIP's `zip -r` writes one for the vault folder),
//! else `infra/vault/<env>/` (the CLI default) if it holds every file, else
//! the deepest directory holding every file. Files outside the vault folder
//! are ignored; absolute names, `..` components and symlink entries make the
//! whole bundle corrupt, as they do for `vsync pull`.
//!
//! A zip is bounded by the limits `vsync pull` uses
//! ([`vsync_engine::bundle::Limits`], from the environment): entries, bytes
//! per file and bytes in total, judged before each buffer is allocated and
//! again on the bytes that actually inflate.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde::de::IgnoredAny;
use vsync_crypto::Zeroizing;
use vsync_engine::bundle::{
    Limits, MAX_BUNDLE_BYTES_VAR, MAX_BUNDLE_ENTRIES_VAR, MAX_ENTRY_BYTES_VAR,
};
use vsync_engine::dotenv;
use vsync_engine::vault_fs::check_plain_relative;
use zip::ZipArchive;

/// Standard alphabet, padding optional (upstream's decoders accept both).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The decoded vault, values wiped on drop.
#[derive(Default)]
pub(crate) struct Contents {
    pub(crate) kv: BTreeMap<String, Zeroizing<String>>,
    pub(crate) assets: BTreeMap<String, Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("kv", &self.kv.keys().collect::<Vec<_>>())
            .field("assets", &self.assets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Decodes a payload; the error is a message without any content.
pub(crate) fn decode(payload: &[u8], env: &str) -> Result<Contents, String> {
    if payload.starts_with(b"PK\x03\x04") || payload.starts_with(b"PK\x05\x06") {
        decode_zip(payload, env)
    } else if payload.trim_ascii_start().first() == Some(&b'{') {
        decode_json(payload)
    } else {
        Err("the payload is neither a zip of the vault folder nor a JSON object".into())
    }
}

struct ZipFile {
    index: usize,
    name: String,
}

fn decode_zip(payload: &[u8], env: &str) -> Result<Contents, String> {
    let limits = Limits::from_env().map_err(|err| err.to_string())?;
    decode_zip_within(payload, env, &limits)
}

fn decode_zip_within(payload: &[u8], env: &str, limits: &Limits) -> Result<Contents, String> {
    let damaged = |err: zip::result::ZipError| format!("the bundle's zip is damaged: {err}");
    let mut archive = ZipArchive::new(Cursor::new(payload)).map_err(damaged)?;
    if archive.len() as u64 > limits.max_entries {
        return Err(format!(
            "the bundle holds {} entries, more than the limit of {} ({MAX_BUNDLE_ENTRIES_VAR})",
            archive.len(),
            limits.max_entries
        ));
    }
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(damaged)?;
        let name = entry.name().to_owned();
        // A directory entry's name ends with `/`.
        let unsafe_name = check_plain_relative(name.strip_suffix('/').unwrap_or(&name)).is_err();
        if unsafe_name {
            return Err(format!(
                "bundle entry {name:?} is not a plain relative path; refusing the bundle"
            ));
        }
        if entry
            .unix_mode()
            .is_some_and(|mode| mode & 0o170_000 == 0o120_000)
        {
            return Err(format!(
                "bundle entry {name:?} is a symlink; vsync refuses symlinks in the vault folder"
            ));
        }
        if entry.is_dir() {
            dirs.push(name);
        } else {
            files.push(ZipFile { index, name });
        }
    }

    let env_file = format!(".env.{env}");
    let (folder, env_index) = locate_vault_folder(&files, &dirs, &env_file, env)?;
    let mut contents = Contents::default();
    let mut total = 0u64;
    for file in &files {
        let Some(relative) = file.name.strip_prefix(folder.as_str()) else {
            continue;
        };
        let mut entry = archive.by_index(file.index).map_err(damaged)?;
        // Judged before allocating: the declared size is the attacker's
        // word, so it only bounds the buffer; the bytes must then match it.
        let declared = entry.size();
        if declared > limits.max_entry_bytes {
            return Err(format!(
                "bundle entry {:?} is larger than the limit of {} bytes per file ({MAX_ENTRY_BYTES_VAR})",
                file.name, limits.max_entry_bytes
            ));
        }
        if declared > limits.max_total_bytes - total {
            return Err(format!(
                "the bundle is larger than the limit of {} bytes in total ({MAX_BUNDLE_BYTES_VAR})",
                limits.max_total_bytes
            ));
        }
        total += declared;
        // A header can lie about this too; the compressed bytes can be no
        // more than the payload holds.
        let compressed = entry.compressed_size().min(payload.len() as u64);
        let bytes = read_entry(&mut entry, declared, compressed, &file.name)?;
        if Some(file.index) == env_index {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| format!("{} in the bundle is not UTF-8 text", file.name))?;
            // Problems are ignored here: `sync` and import refuse them where
            // the file is written, and the reader must keep reading every
            // bundle upstream's libraries read (an unclosed quote stays a
            // value starting with `"`, as upstream reads it).
            for entry in dotenv::parse(text).entries {
                contents.kv.insert(entry.key, entry.value);
            }
        } else {
            contents.assets.insert(relative.to_owned(), bytes);
        }
    }
    Ok(contents)
}

/// Reads one entry, which must inflate to exactly `declared` bytes. The
/// buffer starts at the entry's compressed size (what is already in memory:
/// a stored or incompressible file, a typical asset, then needs no second
/// buffer) and grows with the bytes that actually arrive, never to the
/// declared size up front (a few hundred bytes of zip could otherwise make
/// every reader reserve and wipe the whole bundle limit), and by hand: a
/// `Vec` that reallocates leaves the old buffer's secret bytes behind,
/// unwiped.
fn read_entry(
    entry: &mut impl Read,
    declared: u64,
    compressed: u64,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let damaged = |err: std::io::Error| format!("bundle entry {name:?} is damaged: {err}");
    let declared =
        usize::try_from(declared).map_err(|_| format!("bundle entry {name:?} is too large"))?;
    let first = usize::try_from(compressed).map_or(declared, |compressed| compressed.min(declared));
    let mut bytes = Zeroizing::new(Vec::with_capacity(first));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        // Reading to the end also makes the zip reader check the CRC.
        let read = entry.read(chunk.as_mut()).map_err(damaged)?;
        if read == 0 {
            break;
        }
        if read > declared - bytes.len() {
            return Err(format!(
                "bundle entry {name:?} inflates past the size its header declares; refusing the bundle"
            ));
        }
        if bytes.len() + read > bytes.capacity() {
            let capacity = (bytes.len() + read).max(2 * bytes.capacity()).min(declared);
            let mut bigger = Zeroizing::new(Vec::with_capacity(capacity));
            bigger.extend_from_slice(&bytes);
            bytes = bigger;
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    if bytes.len() != declared {
        return Err(format!(
            "bundle entry {name:?} is damaged: it inflates to {} bytes, its header declares {declared}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn depth(name: &str) -> usize {
    name.matches('/').count()
}

fn parent(name: &str) -> &str {
    name.rfind('/').map_or("", |slash| &name[..=slash])
}

/// The vault folder as a prefix (`""` or ending with `/`), and the index of
/// the `.env.<env>` entry if there is one.
fn locate_vault_folder(
    files: &[ZipFile],
    dirs: &[String],
    env_file: &str,
    env: &str,
) -> Result<(String, Option<usize>), String> {
    let basename = |name: &str| name.rsplit('/').next().unwrap_or_default().to_owned();
    let exact: Vec<&ZipFile> = files
        .iter()
        .filter(|file| basename(&file.name) == env_file)
        .collect();
    let candidates = if exact.is_empty() {
        files
            .iter()
            .filter(|file| basename(&file.name).eq_ignore_ascii_case(env_file))
            .collect()
    } else {
        exact
    };
    if let Some(shallowest) = candidates.iter().map(|file| depth(&file.name)).min() {
        let top: Vec<&&ZipFile> = candidates
            .iter()
            .filter(|file| depth(&file.name) == shallowest)
            .collect();
        if top.len() > 1 {
            return Err(format!(
                "the bundle holds {} `{env_file}` files at the same depth; cannot tell which folder is the vault",
                top.len()
            ));
        }
        return Ok((parent(&top[0].name).to_owned(), Some(top[0].index)));
    }
    let holds_all = |prefix: &str| files.iter().all(|file| file.name.starts_with(prefix));
    if let Some(dir) = dirs
        .iter()
        .filter(|dir| holds_all(dir))
        .min_by_key(|dir| dir.len())
    {
        return Ok((dir.clone(), None));
    }
    let default = format!("infra/vault/{}/", env.to_lowercase());
    if !files.is_empty() && holds_all(&default) {
        return Ok((default, None));
    }
    // The deepest directory holding every file.
    let mut common = files.first().map_or("", |file| parent(&file.name));
    for file in files {
        while !file.name.starts_with(common) {
            common = parent(common.strip_suffix('/').unwrap_or_default());
        }
    }
    Ok((common.to_owned(), None))
}

/// Only the keys of the root object, so the shape is known before any value
/// is copied out.
type KeysOnly = BTreeMap<String, IgnoredAny>;

#[derive(Deserialize)]
struct Structured {
    kv: Option<BTreeMap<String, Zeroizing<String>>>,
    assets: Option<BTreeMap<String, Zeroizing<String>>>,
}

fn decode_json(payload: &[u8]) -> Result<Contents, String> {
    // serde_json's messages may quote values; report positions only.
    let invalid = |err: serde_json::Error| {
        format!(
            "the JSON payload is not an object of strings (line {} column {})",
            err.line(),
            err.column()
        )
    };
    let keys: KeysOnly = serde_json::from_slice(payload).map_err(invalid)?;
    if keys.contains_key("kv") || keys.contains_key("assets") {
        let structured: Structured = serde_json::from_slice(payload).map_err(invalid)?;
        let mut assets = BTreeMap::new();
        for (name, encoded) in structured.assets.unwrap_or_default() {
            let bytes = BASE64
                .decode(encoded.as_bytes())
                .map_err(|_| format!("asset {name:?} is not valid base64"))?;
            assets.insert(name, Zeroizing::new(bytes));
        }
        Ok(Contents {
            kv: structured.kv.unwrap_or_default(),
            assets,
        })
    } else {
        let kv: BTreeMap<String, Zeroizing<String>> =
            serde_json::from_slice(payload).map_err(invalid)?;
        Ok(Contents {
            kv,
            assets: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, contents) in entries {
            if name.ends_with('/') {
                zip.add_directory(*name, SimpleFileOptions::default())
                    .unwrap();
            } else {
                zip.start_file(*name, SimpleFileOptions::default()).unwrap();
                zip.write_all(contents).unwrap();
            }
        }
        zip.finish().unwrap().into_inner()
    }

    fn kv(contents: &Contents) -> Vec<(String, String)> {
        contents
            .kv
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }

    fn asset_names(contents: &Contents) -> Vec<&str> {
        contents.assets.keys().map(String::as_str).collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn cli_zip_gives_env_kv_and_vault_relative_assets() {
        let zip = zip_of(&[
            ("infra/vault/dev/", b""),
            (
                "infra/vault/dev/.env.dev",
                b"# c\nDATABASE_URL=\"postgres://x\"\nTOKEN=${HOME}/t\nDUP=1\nDUP=2\n",
            ),
            ("infra/vault/dev/.env.prod", b"OTHER=1"),
            ("infra/vault/dev/tls/server.crt", b"CERT"),
            ("infra/vault/dev/gcp-sa.json", b"{}"),
        ]);
        let contents = decode(&zip, "dev").unwrap();
        assert_eq!(
            kv(&contents),
            [
                pair("DATABASE_URL", "postgres://x"),
                pair("DUP", "2"),
                // No placeholder expansion at runtime.
                pair("TOKEN", "${HOME}/t"),
            ]
        );
        assert_eq!(
            asset_names(&contents),
            [".env.prod", "gcp-sa.json", "tls/server.crt"]
        );
        assert_eq!(contents.assets["tls/server.crt"].as_slice(), b"CERT");
    }

    #[test]
    fn a_double_quoted_multiline_value_is_read_whole_and_problems_do_not_fail_the_reader() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----";
        let env_file = format!(
            "PEM=\"{}\"\r\nJSON=\"{{\n  \"a\": \"b=c # d\",\n  \"n\": 1\n}}\"\nstray line\nOPEN=\"never closed\n",
            pem.replace('\n', "\r\n")
        );
        let zip = zip_of(&[("infra/vault/dev/.env.dev", env_file.as_bytes())]);
        let contents = decode(&zip, "dev").unwrap();
        assert_eq!(
            kv(&contents),
            [
                pair("JSON", "{\n  \"a\": \"b=c # d\",\n  \"n\": 1\n}"),
                // Read as upstream reads it; `sync` is where it is refused.
                pair("OPEN", "\"never closed"),
                pair("PEM", pem),
            ]
        );
    }

    #[test]
    fn vault_folder_follows_the_env_file_wherever_it_is() {
        let zip = zip_of(&[
            ("secrets/web/.env.staging", b"A=1"),
            ("secrets/web/nested/.env.staging", b"B=2"),
            ("secrets/web/key.pem", b"K"),
            ("elsewhere/ignored.txt", b"X"),
        ]);
        let contents = decode(&zip, "staging").unwrap();
        assert_eq!(kv(&contents), [pair("A", "1")]);
        assert_eq!(asset_names(&contents), ["key.pem", "nested/.env.staging"]);

        // Case-insensitive fallback for the env name.
        let zip = zip_of(&[("v/.env.dev", b"A=1")]);
        assert_eq!(kv(&decode(&zip, "Dev").unwrap()), [pair("A", "1")]);

        // A vault folder at the zip's root.
        let zip = zip_of(&[(".env.dev", b"A=1"), ("cert.pem", b"C")]);
        let contents = decode(&zip, "dev").unwrap();
        assert_eq!(asset_names(&contents), ["cert.pem"]);
    }

    #[test]
    fn bundles_without_an_env_file() {
        // Info-ZIP writes the vault folder's directory entry.
        let zip = zip_of(&[
            ("infra/vault/dev/", b""),
            ("infra/vault/dev/tls/", b""),
            ("infra/vault/dev/tls/a.crt", b"A"),
        ]);
        let contents = decode(&zip, "dev").unwrap();
        assert!(contents.kv.is_empty());
        assert_eq!(asset_names(&contents), ["tls/a.crt"]);

        // No directory entries (our own packer): the CLI default folder.
        let zip = zip_of(&[("infra/vault/dev/tls/a.crt", b"A")]);
        assert_eq!(asset_names(&decode(&zip, "dev").unwrap()), ["tls/a.crt"]);

        // A custom folder: the deepest directory holding every file.
        let zip = zip_of(&[("cfg/vault/a/x", b"1"), ("cfg/vault/b", b"2")]);
        assert_eq!(asset_names(&decode(&zip, "dev").unwrap()), ["a/x", "b"]);

        // An empty vault folder is an empty vault.
        let contents = decode(&zip_of(&[]), "dev").unwrap();
        assert!(contents.kv.is_empty() && contents.assets.is_empty());
    }

    #[test]
    fn hostile_or_broken_zips_are_corrupt() {
        for name in ["/etc/passwd", "infra/../x", "a\\b", "v//x", "v/./x", ""] {
            let zip = zip_of(&[(name, b"x")]);
            assert!(decode(&zip, "dev").is_err(), "{name}");
        }
        let ambiguous = zip_of(&[("a/.env.dev", b"A=1"), ("b/.env.dev", b"A=2")]);
        assert!(
            decode(&ambiguous, "dev")
                .unwrap_err()
                .contains("same depth")
        );
        let not_utf8 = zip_of(&[("v/.env.dev", &[0xff, 0xfe])]);
        assert!(decode(&not_utf8, "dev").unwrap_err().contains("UTF-8"));
        let mut truncated = zip_of(&[("v/.env.dev", b"A=1")]);
        truncated.truncate(truncated.len() - 10);
        assert!(decode(&truncated, "dev").is_err());
        assert!(decode(b"RQEM garbage", "dev").is_err());
    }

    /// A deflated zip whose every size field is rewritten to claim
    /// `declared` bytes.
    fn lying_zip(entries: &[(&str, &[u8])], declared: u32) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, contents) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(contents).unwrap();
        }
        let mut bytes = zip.finish().unwrap().into_inner();
        // Local header: uncompressed size at 22; central directory: at 24.
        for (signature, offset) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let mut at = 0;
            while let Some(found) = bytes[at..].windows(4).position(|w| w == signature) {
                let field = at + found + offset;
                bytes[field..field + 4].copy_from_slice(&declared.to_le_bytes());
                at += found + 4;
            }
        }
        bytes
    }

    fn limits(entry: u64, total: u64, entries: u64) -> Limits {
        Limits {
            max_entry_bytes: entry,
            max_total_bytes: total,
            max_entries: entries,
        }
    }

    #[test]
    fn a_bomb_lying_about_its_size_is_refused() {
        let bomb = vec![0u8; 1 << 20];
        let zip = lying_zip(&[("v/.env.dev", b"A=1"), ("v/bomb", &bomb)], 3);
        // Within every limit by its header, far past the per-file limit once
        // inflated.
        let err = decode_zip_within(&zip, "dev", &limits(64 << 10, 1 << 30, 10)).unwrap_err();
        assert!(err.contains("inflates past"), "{err}");
        // The defaults refuse it the same way.
        let err = decode(&zip, "dev").unwrap_err();
        assert!(err.contains("inflates past"), "{err}");
    }

    #[test]
    fn a_declared_size_past_the_content_is_refused() {
        // 60 MiB claimed, within every limit, by a 3-byte entry: refused
        // once the entry ends short (the buffer only ever held 3 bytes).
        let zip = lying_zip(&[("v/.env.dev", b"A=1")], 60 << 20);
        let err = decode(&zip, "dev").unwrap_err();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn a_declared_size_over_a_limit_is_refused_before_allocating() {
        // 1 GiB claimed by a few bytes: refused on the header, nothing
        // reserved.
        let zip = lying_zip(&[("v/.env.dev", b"A=1")], 1 << 30);
        let err = decode(&zip, "dev").unwrap_err();
        assert!(err.contains("per file"), "{err}");
        assert!(err.contains("VSYNC_MAX_ENTRY_BYTES"), "{err}");
    }

    #[test]
    fn a_total_over_the_limit_is_refused() {
        let part = vec![9u8; 40 << 10];
        let zip = zip_of(&[
            ("v/.env.dev", b"A=1"),
            ("v/a", &part),
            ("v/b", &part),
            ("v/c", &part),
        ]);
        let err = decode_zip_within(&zip, "dev", &limits(64 << 10, 100 << 10, 10)).unwrap_err();
        assert!(err.contains("in total"), "{err}");
        assert!(err.contains("VSYNC_MAX_BUNDLE_BYTES"), "{err}");
        let contents = decode_zip_within(&zip, "dev", &limits(64 << 10, 130 << 10, 10)).unwrap();
        assert_eq!(asset_names(&contents), ["a", "b", "c"]);
    }

    #[test]
    fn too_many_entries_are_refused() {
        let names: Vec<String> = (0..30).map(|i| format!("v/f{i}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let zip = zip_of(&entries);
        let err = decode_zip_within(&zip, "dev", &limits(1 << 20, 1 << 20, 29)).unwrap_err();
        assert!(err.contains("30 entries"), "{err}");
        assert!(decode_zip_within(&zip, "dev", &limits(1 << 20, 1 << 20, 30)).is_ok());
    }

    #[test]
    fn json_shapes() {
        let structured =
            br#"{"kv":{"A":"1"},"assets":{"cert.pem":"Q0VSVA==","raw":"Q0VSVA"},"x":5}"#;
        let contents = decode(structured, "dev").unwrap();
        assert_eq!(kv(&contents), [pair("A", "1")]);
        assert_eq!(contents.assets["cert.pem"].as_slice(), b"CERT");
        assert_eq!(contents.assets["raw"].as_slice(), b"CERT");

        let only_assets = br#"{"assets":{}}"#;
        assert!(decode(only_assets, "dev").unwrap().kv.is_empty());

        let flat = b" \n{\"A\":\"1\",\"B\":\"two\"}";
        assert_eq!(
            kv(&decode(flat, "dev").unwrap()),
            [pair("A", "1"), pair("B", "two")]
        );

        for bad in [
            &br#"{"A":1}"#[..],
            br#"{"kv":"secret-value"}"#,
            br#"{"kv":{"A":2}}"#,
            br#"{"assets":{"a":"not base64!"}}"#,
            br#"["A"]"#,
            b"{",
        ] {
            let err = decode(bad, "dev").unwrap_err();
            assert!(!err.contains("secret-value"), "{err}");
        }
    }
}
