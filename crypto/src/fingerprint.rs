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

/// Domain separation of the key that authenticates `vsync plan` artifacts:
/// a tag made for an artifact is never a fingerprint, nor the reverse.
const PLAN_ARTIFACT_LABEL: &[u8] = b"vsync plan artifact v1";

/// The HMAC key fingerprints are computed under; wiped on drop.
pub struct FingerprintKey(Zeroizing<[u8; 32]>);

impl FingerprintKey {
    /// Derives the fingerprint key from an env's vault key:
    /// HMAC-SHA256(vault key, "vsync sync fingerprint v1").
    pub fn derive(vault_key: &Key) -> Self {
        Self::derive_labeled(vault_key, LABEL)
    }

    /// The key that tags `vsync plan` artifacts of this env:
    /// HMAC-SHA256(vault key, "vsync plan artifact v1"). Anyone who can
    /// open the env's vault can make a tag; nobody else can edit a tagged
    /// artifact unnoticed.
    pub fn derive_for_plan_artifacts(vault_key: &Key) -> Self {
        Self::derive_labeled(vault_key, PLAN_ARTIFACT_LABEL)
    }

    fn derive_labeled(vault_key: &Key, label: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(vault_key.bytes())
            .expect("HMAC accepts a key of any length");
        mac.update(label);
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

    /// One fingerprint of a whole listing: each name with its value's
    /// fingerprint (`None`: a deletion), in the order given — callers give
    /// names sorted and unique, so the same listing always has the same
    /// digest. What a reviewed plan is bound to.
    pub fn listing<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> String {
        let mut listing = Vec::new();
        for (name, value) in entries {
            let value = value.map_or_else(|| "-".to_owned(), |value| self.fingerprint(value));
            listing.extend_from_slice(format!("{name}\0{value}\n").as_bytes());
        }
        self.fingerprint(&listing)
    }

    /// Whether `fingerprint` is `value`'s, compared in constant time (a
    /// tag check must not tell how many leading digits were right).
    pub fn verify(&self, value: &[u8], fingerprint: &str) -> bool {
        let expected = self.fingerprint(value);
        expected.len() == fingerprint.len()
            && expected
                .bytes()
                .zip(fingerprint.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
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
    fn plan_artifact_tags_are_not_fingerprints_and_verify_only_unchanged() {
        let vault_key = key(b"k");
        let tags = FingerprintKey::derive_for_plan_artifacts(&vault_key);
        let tag = tags.fingerprint(b"{\"plan\":1}");
        assert_ne!(
            tag,
            FingerprintKey::derive(&vault_key).fingerprint(b"{\"plan\":1}")
        );
        assert!(tags.verify(b"{\"plan\":1}", &tag));
        assert!(!tags.verify(b"{\"plan\":2}", &tag));
        assert!(!tags.verify(b"{\"plan\":1}", &tag[..63]));
        let other = FingerprintKey::derive_for_plan_artifacts(&key(b"other"));
        assert!(!other.verify(b"{\"plan\":1}", &tag));
    }

    #[test]
    fn a_listing_digest_moves_with_any_name_value_or_deletion() {
        let fingerprints = FingerprintKey::derive(&key(b"k"));
        let digest = |entries: &[(&str, Option<&[u8]>)]| {
            fingerprints.listing(entries.iter().map(|(name, value)| (*name, *value)))
        };
        let base = digest(&[("A", Some(b"1")), ("B", Some(b"2"))]);
        assert_eq!(base, digest(&[("A", Some(b"1")), ("B", Some(b"2"))]));
        for other in [
            digest(&[("A", Some(b"1")), ("B", Some(b"3"))]),
            digest(&[("A", Some(b"1")), ("C", Some(b"2"))]),
            digest(&[("A", Some(b"1")), ("B", None)]),
            digest(&[("A", Some(b"1"))]),
        ] {
            assert_ne!(base, other);
        }
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
