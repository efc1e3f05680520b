//! `SLS1` (`.share`, one repo/env onboarding bundle) and `VKT1` (`.keytree`,
//! a machine's whole keystore): a salt-carrying frame around an `RQE1`
//! envelope keyed by a human passphrase.
//!
//! ```text
//! offset 0    4 bytes  magic "SLS1" or "VKT1"
//! offset 4    1 byte   salt length L (writers: 24)
//! offset 5    L bytes  salt, ASCII (standard base64 of 16 random bytes)
//! offset 5+L  rest     RQE1 envelope, key = PBKDF2(passphrase, salt string, 600000)
//! ```
//!
//! The `.share` plaintext is the ASCII standard base64 of gzip(JSON); the
//! `.keytree` plaintext is the raw JSON. Validating that JSON (export payload,
//! keytree entries) is the caller's job; this module only moves bytes.

use aes_gcm::aead::{OsRng, rand_core::RngCore};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::{Error, Format};
use crate::gzip;
use crate::kdf::{DEFAULT_ITERATIONS, Key};
use crate::rqe1;

/// `.share` magic.
pub const SHARE_MAGIC: &[u8; 4] = b"SLS1";
/// `.keytree` magic.
pub const KEYTREE_MAGIC: &[u8; 4] = b"VKT1";

/// Upper bound on a decompressed `.share` payload; a real one is a few KB, so
/// anything near this is a decompression bomb, not a share.
const MAX_SHARE_PAYLOAD: u64 = 16 * 1024 * 1024;

/// Which passphrase frame a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// `SLS1`, a `.share` file.
    Share,
    /// `VKT1`, a `.keytree` file.
    KeyTree,
}

impl FrameKind {
    fn magic(self) -> &'static [u8; 4] {
        match self {
            FrameKind::Share => SHARE_MAGIC,
            FrameKind::KeyTree => KEYTREE_MAGIC,
        }
    }

    fn format(self) -> Format {
        match self {
            FrameKind::Share => Format::Share,
            FrameKind::KeyTree => Format::KeyTree,
        }
    }

    fn other(self) -> Self {
        match self {
            FrameKind::Share => FrameKind::KeyTree,
            FrameKind::KeyTree => FrameKind::Share,
        }
    }
}

/// Seals a `.share` file around `export_json` (the ExportPayload JSON).
pub fn seal_share(passphrase: &str, export_json: &[u8]) -> Vec<u8> {
    let compressed = gzip::compress(export_json);
    let text = Zeroizing::new(STANDARD.encode(compressed.as_slice()));
    seal(FrameKind::Share, passphrase, text.as_bytes())
}

/// Opens a `.share` file and returns the ExportPayload JSON bytes.
pub fn open_share(passphrase: &str, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let text = open(FrameKind::Share, passphrase, file)?;
    decode_share_text(&text)
}

/// Decodes an opened `.share` plaintext (standard base64 of gzip(JSON)) into
/// the ExportPayload JSON bytes. The plaintext is authenticated, but whoever
/// sent the share chose it, so it is decoded as hostile input: the output
/// stops at 16 MiB (a decompression bomb is cut off, and the truncated JSON
/// then fails to parse), whatever the compressed stream claims.
pub fn decode_share_text(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let corrupt = |reason| Error::CorruptPayload {
        format: Format::Share,
        reason,
    };
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Err(corrupt("empty payload"));
    }
    let compressed = Zeroizing::new(
        STANDARD
            .decode(trimmed)
            .map_err(|_| corrupt("payload is not base64"))?,
    );
    let json = gzip::decompress(&compressed, MAX_SHARE_PAYLOAD)
        .map_err(|_| corrupt("payload is not gzip"))?;
    Ok(json)
}

/// Seals a `.keytree` file around the keytree JSON.
pub fn seal_keytree(passphrase: &str, keytree_json: &[u8]) -> Vec<u8> {
    seal(FrameKind::KeyTree, passphrase, keytree_json)
}

/// Opens a `.keytree` file and returns the keytree JSON bytes.
pub fn open_keytree(passphrase: &str, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    open(FrameKind::KeyTree, passphrase, file)
}

fn seal(kind: FrameKind, passphrase: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut salt_bytes = [0u8; 16];
    OsRng.fill_bytes(&mut salt_bytes);
    let salt = STANDARD.encode(salt_bytes);
    let key = Key::derive(passphrase.as_bytes(), salt.as_bytes(), DEFAULT_ITERATIONS);
    let envelope = rqe1::seal(&key, plaintext);
    let mut file = Vec::with_capacity(5 + salt.len() + envelope.len());
    file.extend_from_slice(kind.magic());
    file.push(u8::try_from(salt.len()).expect("a 16-byte salt encodes to 24 characters"));
    file.extend_from_slice(salt.as_bytes());
    file.extend_from_slice(&envelope);
    file
}

/// A frame split into its parts; nothing has been derived or decrypted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The salt string's bytes (24 ASCII characters from every writer).
    pub salt: &'a [u8],
    /// The inner `RQE1` envelope, its header already checked.
    pub envelope: &'a [u8],
}

/// Checks a frame's structure and splits it, before any key derivation: a
/// file shorter than its declared salt, with the other kind's magic or
/// unknown magic, or whose inner envelope fails [`rqe1::check_header`] is
/// refused here, so a hostile file never costs a PBKDF2 run.
/// [`open_share`] and [`open_keytree`] are exactly this, then
/// PBKDF2(passphrase, salt, 600000) and [`rqe1::open`].
pub fn split(kind: FrameKind, file: &[u8]) -> Result<Frame<'_>, Error> {
    let format = kind.format();
    if file.len() < 5 {
        return Err(Error::TooShort {
            format,
            len: file.len(),
            min: 5,
        });
    }
    let magic = &file[..4];
    if magic != kind.magic() {
        return Err(if magic == kind.other().magic() {
            Error::WrongFileKind {
                expected: format,
                found: kind.other().format(),
            }
        } else {
            Error::BadMagic { format }
        });
    }
    let salt_end = 5 + usize::from(file[4]);
    if file.len() < salt_end {
        return Err(Error::TooShort {
            format,
            len: file.len(),
            min: salt_end,
        });
    }
    let (salt, envelope) = (&file[5..salt_end], &file[salt_end..]);
    // Upstream reports every failure past the salt as one "passphrase wrong or
    // file corrupt"; we keep the RQE1 classes, which are more precise.
    rqe1::check_header(envelope)?;
    Ok(Frame { salt, envelope })
}

fn open(kind: FrameKind, passphrase: &str, file: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let frame = split(kind, file)?;
    let key = Key::derive(passphrase.as_bytes(), frame.salt, DEFAULT_ITERATIONS);
    rqe1::open(&key, frame.envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    #[test]
    fn share_round_trip_and_layout() {
        let json = br#"{"version":2,"repo":"acme","env":"dev"}"#;
        let file = seal_share("correct horse", json);
        assert_eq!(&file[..4], b"SLS1");
        assert_eq!(file[4], 24);
        assert_eq!(&file[29..33], b"RQE1");
        assert_eq!(open_share("correct horse", &file).unwrap().as_slice(), json);
        assert_eq!(
            open_share("wrong horse", &file).unwrap_err().class(),
            ErrorClass::WrongPassphrase
        );
    }

    #[test]
    fn keytree_round_trip_and_kind_confusion() {
        let json = br#"{"version":1,"entries":[],"profiles":[]}"#;
        let file = seal_keytree("correct horse", json);
        assert_eq!(&file[..4], b"VKT1");
        assert_eq!(
            open_keytree("correct horse", &file).unwrap().as_slice(),
            json
        );
        assert_eq!(
            open_share("correct horse", &file).unwrap_err(),
            Error::WrongFileKind {
                expected: Format::Share,
                found: Format::KeyTree
            }
        );
    }

    #[test]
    fn truncated_frames_are_corrupt() {
        let file = seal_keytree("correct horse", b"{}");
        for len in [0, 4, 10] {
            assert_eq!(
                open_keytree("correct horse", &file[..len])
                    .unwrap_err()
                    .class(),
                ErrorClass::BundleCorrupt
            );
        }
    }
}
