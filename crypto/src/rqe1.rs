//! `RQE1`: the AES-256-GCM envelope every vsync bundle, backup and share is
//! wrapped in.
//!
//! ```text
//! offset 0   4 bytes   magic "RQE1"
//! offset 4   12 bytes  IV (fresh random per encryption)
//! offset 16  N bytes   ciphertext (same length as the plaintext)
//! offset 16+N 16 bytes GCM tag
//! ```
//!
//! No associated data, no length field; an empty plaintext gives exactly 32
//! bytes.

use std::num::NonZeroU32;

use aes_gcm::aead::{AeadInPlace, KeyInit, OsRng, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

use crate::error::{Error, Format};
use crate::kdf::Key;

/// The four magic bytes.
pub const MAGIC: &[u8; 4] = b"RQE1";
/// IV (nonce) length.
pub const IV_LEN: usize = 12;
/// GCM tag length.
pub const TAG_LEN: usize = 16;
/// Magic plus IV.
pub const HEADER_LEN: usize = MAGIC.len() + IV_LEN;
/// The shortest valid envelope: header plus tag, empty ciphertext.
pub const MIN_LEN: usize = HEADER_LEN + TAG_LEN;

/// Checks the envelope's structure in the upstream classification order,
/// before any key is derived:
///
/// 1. shorter than 32 bytes → [`Error::TooShort`] (`BundleCorrupt`)
/// 2. first three bytes not `RQE` → [`Error::BadMagic`] (`BundleCorrupt`)
/// 3. fourth byte not `1` → [`Error::UnsupportedVersion`] (`UnsupportedSpecVersion`)
pub fn check_header(envelope: &[u8]) -> Result<(), Error> {
    if envelope.len() < MIN_LEN {
        return Err(Error::TooShort {
            format: Format::Rqe1,
            len: envelope.len(),
            min: MIN_LEN,
        });
    }
    if envelope[..3] != MAGIC[..3] {
        return Err(Error::BadMagic {
            format: Format::Rqe1,
        });
    }
    if envelope[3] != MAGIC[3] {
        return Err(Error::UnsupportedVersion {
            format: Format::Rqe1,
            found: envelope[3],
        });
    }
    Ok(())
}

/// Encrypts `plaintext` under `key` with a fresh random IV.
pub fn seal(key: &Key, plaintext: &[u8]) -> Vec<u8> {
    let mut iv = [0u8; IV_LEN];
    OsRng.fill_bytes(&mut iv);
    seal_with_fresh_iv(key, &iv, plaintext)
}

// There is deliberately no public fixed-IV variant: a reused (key, IV) pair
// breaks GCM. The corpus generator builds its seeded envelopes itself
// (test-vectors/src/fixed_iv.rs).
fn seal_with_fresh_iv(key: &Key, iv: &[u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.bytes().into());
    let mut envelope = Vec::with_capacity(MIN_LEN + plaintext.len());
    envelope.extend_from_slice(MAGIC);
    envelope.extend_from_slice(iv);
    envelope.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(iv), b"", &mut envelope[HEADER_LEN..])
        .expect("AES-GCM accepts plaintexts far beyond any bundle size");
    envelope.extend_from_slice(&tag);
    envelope
}

/// Decrypts an envelope with an already derived key. The structural checks of
/// [`check_header`] run first; a failed tag check is
/// [`Error::AuthenticationFailed`] (`WrongPassphrase`).
pub fn open(key: &Key, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    check_header(envelope)?;
    let iv = Nonce::from_slice(&envelope[MAGIC.len()..HEADER_LEN]);
    let (ciphertext, tag) = envelope[HEADER_LEN..].split_at(envelope.len() - MIN_LEN);
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    Aes256Gcm::new(key.bytes().into())
        .decrypt_in_place_detached(iv, b"", plaintext.as_mut_slice(), Tag::from_slice(tag))
        .map_err(|_| Error::AuthenticationFailed)?;
    Ok(plaintext)
}

/// Seals `key` itself under `wrapping`: a key kept in a store, readable
/// only by holders of `wrapping`. Its bytes never leave this crate.
pub fn seal_key(wrapping: &Key, key: &Key) -> Vec<u8> {
    seal(wrapping, key.bytes())
}

/// Opens a key sealed by [`seal_key`].
pub fn open_key(wrapping: &Key, envelope: &[u8]) -> Result<Key, Error> {
    let plaintext = open(wrapping, envelope)?;
    let bytes: [u8; crate::kdf::KEY_LEN] =
        plaintext
            .as_slice()
            .try_into()
            .map_err(|_| Error::CorruptPayload {
                format: Format::Rqe1,
                reason: "a sealed key is 32 bytes",
            })?;
    Ok(Key::from_bytes(Zeroizing::new(bytes)))
}

/// A plaintext decrypted where its envelope was: the envelope's buffer,
/// wiped when dropped, of which the plaintext is a range.
pub struct Opened {
    buffer: Zeroizing<Vec<u8>>,
}

impl std::ops::Deref for Opened {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[HEADER_LEN..self.buffer.len() - TAG_LEN]
    }
}

/// [`open`] without copying: decrypts inside `envelope`, which becomes the
/// plaintext's buffer (wiped when the result, or the error, is dropped).
/// For bundles of many megabytes, where a copy, a second allocation and its
/// page faults are a noticeable share of the work after the key is derived.
pub fn open_owned(key: &Key, envelope: Vec<u8>) -> Result<Opened, Error> {
    let mut buffer = Zeroizing::new(envelope);
    check_header(&buffer)?;
    let end = buffer.len() - TAG_LEN;
    let (header, rest) = buffer.split_at_mut(HEADER_LEN);
    let (ciphertext, tag) = rest.split_at_mut(end - HEADER_LEN);
    Aes256Gcm::new(key.bytes().into())
        .decrypt_in_place_detached(
            Nonce::from_slice(&header[MAGIC.len()..]),
            b"",
            ciphertext,
            Tag::from_slice(tag),
        )
        .map_err(|_| Error::AuthenticationFailed)?;
    Ok(Opened { buffer })
}

/// Derives the key from `password` and `salt`, then seals `plaintext`.
pub fn encrypt(password: &[u8], salt: &[u8], iterations: NonZeroU32, plaintext: &[u8]) -> Vec<u8> {
    seal(&Key::derive(password, salt, iterations), plaintext)
}

/// Decrypts an envelope from a password. A structurally bad envelope is
/// rejected before the (deliberately slow) key derivation runs.
pub fn decrypt(
    password: &[u8],
    salt: &[u8],
    iterations: NonZeroU32,
    envelope: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    check_header(envelope)?;
    open(&Key::derive(password, salt, iterations), envelope)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sealed_key_opens_only_under_its_wrapping_key() {
        let salt = b"0123456789abcdef";
        let iterations = NonZeroU32::new(1).unwrap();
        let wrapping = Key::derive(b"wrapping", salt, iterations);
        let key = Key::derive(b"the key", salt, iterations);
        let sealed = seal_key(&wrapping, &key);
        assert_eq!(open_key(&wrapping, &sealed).unwrap().bytes(), key.bytes());
        assert!(matches!(
            open_key(&key, &sealed),
            Err(Error::AuthenticationFailed)
        ));
        // Any other length is not a key, even when it authenticates.
        assert!(matches!(
            open_key(&wrapping, &seal(&wrapping, &[7; 31])),
            Err(Error::CorruptPayload { .. })
        ));
    }

    use super::*;
    use crate::error::ErrorClass;

    fn test_key() -> Key {
        Key::derive(b"pw", b"0123456789abcdef", NonZeroU32::new(1).unwrap())
    }

    #[test]
    fn open_owned_agrees_with_open() {
        for plaintext in [&b""[..], b"x", &[7u8; 100_000]] {
            let envelope = seal(&test_key(), plaintext);
            assert_eq!(
                &*open_owned(&test_key(), envelope.clone()).unwrap(),
                plaintext
            );
            let mut tampered = envelope.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            assert!(matches!(
                open_owned(&test_key(), tampered),
                Err(Error::AuthenticationFailed)
            ));
            assert!(matches!(
                open_owned(&test_key(), envelope[..MIN_LEN - 1].to_vec()),
                Err(Error::TooShort { .. })
            ));
        }
    }

    #[test]
    fn layout_is_magic_iv_ciphertext_tag() {
        let envelope = seal(&test_key(), b"hello");
        assert_eq!(&envelope[..4], b"RQE1");
        assert_eq!(envelope.len(), MIN_LEN + 5);
        assert_eq!(seal(&test_key(), b"").len(), 32);
    }

    #[test]
    fn fresh_iv_per_encryption() {
        let key = test_key();
        assert_ne!(seal(&key, b"same")[4..16], seal(&key, b"same")[4..16]);
    }

    #[test]
    fn classification_order_is_length_then_magic_then_version() {
        // A short envelope with a bad version byte is still "too short".
        let short = b"RQE2".to_vec();
        assert_eq!(
            check_header(&short).unwrap_err().class(),
            ErrorClass::BundleCorrupt
        );
        let mut envelope = seal(&test_key(), b"payload");
        envelope[3] = b'2';
        assert_eq!(
            check_header(&envelope).unwrap_err().class(),
            ErrorClass::UnsupportedSpecVersion
        );
        envelope[0] = b'X';
        assert_eq!(
            check_header(&envelope).unwrap_err().class(),
            ErrorClass::BundleCorrupt
        );
    }

    #[test]
    fn wrong_key_is_authentication_failure() {
        let envelope = seal(&test_key(), b"secret");
        let other = Key::derive(b"other", b"0123456789abcdef", NonZeroU32::new(1).unwrap());
        assert_eq!(
            open(&other, &envelope).unwrap_err(),
            Error::AuthenticationFailed
        );
    }
}
