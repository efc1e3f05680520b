//! Keyed fingerprints of secret values.
//!
//! Sync must know whether the value it last wrote to a write-only platform
//! (GitHub Actions) is still the vault's value, without keeping the value.
//! A plain hash would let anyone holding the sync state test guesses of
//! low-entropy secrets offline; an HMAC under a key derived from the env's
//! vault key cannot be checked without that key.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Key;

/// Domain separation: the fingerprint key is never the bundle key itself.
const LABEL: &[u8] = b"vsync sync fingerprint v1";

/// The HMAC key fingerprints are computed under; wiped on drop.
pub struct FingerprintKey(Zeroizing<[u8; 32]>);

impl FingerprintKey {
    /// Derives the fingerprint key from an env's vault key:
    /// HMAC-SHA256(vault key, "vsync sync fingerprint v1").
    pub fn derive(vault_key: &Key) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(vault_key.bytes())
            .expect("HMAC accepts a key of any length");
        mac.update(LABEL);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&mac.finalize().into_bytes());
        FingerprintKey(key)
    }

    /// A fingerprint key of the caller's bytes: random ones for fingerprints
    /// that are only compared within one run (`vsync compare`), so nothing
    /// shown can be checked against guesses later.
    pub fn from_bytes(key: Zeroizing<[u8; 32]>) -> Self {
        FingerprintKey(key)
    }

    /// The fingerprint of `value`, as 64 lowercase hex digits.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.as_ref()).expect("HMAC accepts a 32-byte key");
        mac.update(value);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn key(password: &[u8]) -> Key {
        Key::derive(password, b"salt", NonZeroU32::new(1).unwrap())
    }

    #[test]
    fn same_value_same_key_same_fingerprint() {
        let a = FingerprintKey::derive(&key(b"k"));
        let b = FingerprintKey::derive(&key(b"k"));
        assert_eq!(a.fingerprint(b"hunter2"), b.fingerprint(b"hunter2"));
        assert_eq!(a.fingerprint(b"hunter2").len(), 64);
    }

    #[test]
    fn differs_by_value_and_by_key() {
        let a = FingerprintKey::derive(&key(b"k"));
        let b = FingerprintKey::derive(&key(b"other"));
        assert_ne!(a.fingerprint(b"hunter2"), a.fingerprint(b"hunter3"));
        assert_ne!(a.fingerprint(b"hunter2"), b.fingerprint(b"hunter2"));
    }

    #[test]
    fn is_not_the_plain_sha256_of_the_value() {
        use sha2::Digest;
        let plain: String = Sha256::digest(b"hunter2")
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_ne!(
            FingerprintKey::derive(&key(b"k")).fingerprint(b"hunter2"),
            plain
        );
    }
}
