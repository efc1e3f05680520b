//! PBKDF2-HMAC-SHA256 key derivation, as every vsync envelope uses it.

use std::fmt;
use std::num::NonZeroU32;

use sha2::Sha256;
use zeroize::Zeroizing;

/// The iteration count upstream vsync writes and every reader defaults to.
pub const DEFAULT_ITERATIONS: NonZeroU32 = NonZeroU32::new(600_000).unwrap();

/// The most PBKDF2 iterations a reader accepts from data it is handed (a
/// `vsync-cfg-v1:` blob): about 17 times the default, a second or so on a
/// current core. An attacker-supplied blob asking for billions would make
/// `open()` spin for hours.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Length of the derived AES-256 key.
pub const KEY_LEN: usize = 32;

/// An AES-256 key derived from a password; wiped from memory on drop and
/// never printed.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl Key {
    /// Derives the key as PBKDF2-HMAC-SHA256(`password`, `salt`,
    /// `iterations`, 32).
    ///
    /// vsync feeds both as UTF-8 bytes verbatim: the salt string is never
    /// base64-decoded ("Convention A"), and the password is not trimmed.
    pub fn derive(password: &[u8], salt: &[u8], iterations: NonZeroU32) -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations.get(), key.as_mut());
        Key(key)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc7914_pbkdf2_sha256_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256("passwd", "salt", 1, 64); first 32 bytes.
        let key = Key::derive(b"passwd", b"salt", NonZeroU32::new(1).unwrap());
        assert_eq!(
            key.bytes(),
            &[
                0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f, 0xec, 0x16, 0x91, 0xc2, 0x25, 0x44,
                0xb6, 0x05, 0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65, 0xe6, 0x8b, 0x9d, 0x57,
                0xc2, 0x0d, 0xac, 0xbc
            ]
        );
    }

    #[test]
    fn debug_output_is_redacted() {
        let key = Key::derive(b"pw", b"salt-salt-salt-salt", NonZeroU32::new(1).unwrap());
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }
}
