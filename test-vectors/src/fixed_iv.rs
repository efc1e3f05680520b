//! DANGEROUS: RQE1 sealing with a caller-chosen IV, for the deterministic
//! corpus generator only.
//!
//! AES-GCM with a repeated (key, IV) pair leaks the XOR of the plaintexts
//! and lets anyone forge tags, so fixed-IV sealing must never be reachable
//! from the shipped `vsync` binary or the runtime library. It used to be a
//! `deterministic-iv` feature of `vsync-crypto`; a normal dependency from
//! this crate enabled it, and `cargo build --workspace` unified it into the
//! crypto crate every binary links. Now the capability lives only here, in
//! a private module of a crate nothing shipped depends on
//! (`vsync-crypto/tests/no_dangerous_features.rs` checks both facts), and it
//! builds the envelope straight from `aes-gcm` following the documented
//! RQE1 layout (`magic ‖ IV ‖ ciphertext ‖ tag`, no AAD).

use std::num::NonZeroU32;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::Sha256;
use vsync_crypto::Zeroizing;
use vsync_crypto::kdf::KEY_LEN;
use vsync_crypto::rqe1::{HEADER_LEN, IV_LEN, MAGIC, MIN_LEN};

/// Seals `plaintext` as an RQE1 envelope under
/// `PBKDF2-HMAC-SHA256(password, salt, iterations)` with the fixed `iv`.
///
/// DANGEROUS: only for reproducing published test vectors, whose IVs are
/// derived from public seeds. Never call it with a real secret.
pub(crate) fn dangerous_seal_with_fixed_iv(
    password: &[u8],
    salt: &[u8],
    iterations: NonZeroU32,
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations.get(), key.as_mut());
    let cipher = Aes256Gcm::new(key.as_ref().into());
    let mut envelope = Vec::with_capacity(MIN_LEN + plaintext.len());
    envelope.extend_from_slice(MAGIC);
    envelope.extend_from_slice(iv);
    envelope.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(iv), b"", &mut envelope[HEADER_LEN..])
        .expect("AES-GCM accepts plaintexts far beyond any corpus vector");
    envelope.extend_from_slice(&tag);
    envelope
}

#[cfg(test)]
mod tests {
    use vsync_crypto::{ErrorClass, Key, rqe1};

    use super::*;

    /// The generator's envelope must be one the real reader opens, so the
    /// format stays pinned by `vsync-crypto` and not by a second copy.
    #[test]
    fn the_real_reader_opens_fixed_iv_envelopes() {
        let iterations = NonZeroU32::new(1_000).unwrap();
        let iv = [7u8; IV_LEN];
        let envelope =
            dangerous_seal_with_fixed_iv(b"pw", b"0123456789abcdef", iterations, &iv, b"hello");
        assert_eq!(&envelope[..4], b"RQE1");
        assert_eq!(&envelope[4..16], &iv);
        assert_eq!(envelope.len(), MIN_LEN + 5);
        let key = Key::derive(b"pw", b"0123456789abcdef", iterations);
        assert_eq!(rqe1::open(&key, &envelope).unwrap().as_slice(), b"hello");
        let other = Key::derive(b"other", b"0123456789abcdef", iterations);
        assert_eq!(
            rqe1::open(&other, &envelope).unwrap_err().class(),
            ErrorClass::WrongPassphrase
        );
    }

    #[test]
    fn same_inputs_give_the_same_bytes() {
        let iterations = NonZeroU32::new(1).unwrap();
        let seal = || dangerous_seal_with_fixed_iv(b"pw", b"salt", iterations, &[1; 12], b"x");
        assert_eq!(seal(), seal());
    }
}
