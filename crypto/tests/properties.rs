//! Property tests over the envelopes: round trips for arbitrary bytes, and
//! tampering or truncation that always yields an error, never a plaintext.

use std::num::NonZeroU32;
use std::sync::LazyLock;

use proptest::prelude::*;
use vsync_crypto::{ErrorClass, Key, rqe1, rqem};

/// Property tests decrypt thousands of envelopes; one key derived once keeps
/// them fast. Iteration count does not change the envelope format.
static KEY: LazyLock<Key> = LazyLock::new(|| {
    Key::derive(
        b"property passphrase",
        b"propertysalt0000",
        NonZeroU32::new(1_000).unwrap(),
    )
});

proptest! {
    #[test]
    fn rqe1_round_trips_arbitrary_bytes(plaintext in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let envelope = rqe1::seal(&KEY, &plaintext);
        prop_assert_eq!(envelope.len(), plaintext.len() + rqe1::MIN_LEN);
        let opened = rqe1::open(&KEY, &envelope).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn any_single_byte_flip_is_an_error(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut envelope = rqe1::seal(&KEY, &plaintext);
        let at = position.index(envelope.len());
        envelope[at] ^= flip;
        let err = rqe1::open(&KEY, &envelope).expect_err("a flipped byte must never decrypt");
        let expected = match at {
            0..=2 => ErrorClass::BundleCorrupt,
            3 => ErrorClass::UnsupportedSpecVersion,
            _ => ErrorClass::WrongPassphrase,
        };
        prop_assert_eq!(err.class(), expected);
    }

    #[test]
    fn rqem_round_trips(ts in "[0-9]{8}-[0-9]{6}", payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let sealed = rqem::wrap(&ts, &payload).unwrap();
        prop_assert_eq!(rqem::unwrap_expecting(&sealed, &ts).unwrap(), payload.as_slice());
    }
}

/// Truncation at every length: below the 32-byte minimum the envelope is
/// structurally `BundleCorrupt`; from 32 bytes on, the tag no longer matches
/// and the class is `WrongPassphrase` (GCM cannot tell a cut from a wrong
/// key). Never a plaintext.
#[test]
fn truncation_at_every_length_is_an_error() {
    let envelope = rqe1::seal(&KEY, b"a payload long enough to cut in many places");
    for len in 0..envelope.len() {
        let err = rqe1::open(&KEY, &envelope[..len])
            .expect_err("a truncated envelope must never decrypt");
        let expected = if len < rqe1::MIN_LEN {
            ErrorClass::BundleCorrupt
        } else {
            ErrorClass::WrongPassphrase
        };
        assert_eq!(err.class(), expected, "truncated to {len} bytes");
    }
    let sealed = rqem::wrap("20260429-103045", b"payload").unwrap();
    for len in 0..rqem::HEADER_LEN {
        assert_eq!(
            rqem::unwrap(&sealed[..len]).unwrap_err().class(),
            ErrorClass::BundleCorrupt
        );
    }
}

#[test]
fn the_seal_inside_rqe1_is_authenticated() {
    // Rewriting the sealed timestamp inside the ciphertext (a rollback
    // attempt by someone without the key) breaks the tag.
    let sealed = rqem::wrap("20260429-103045", b"zip bytes").unwrap();
    let mut envelope = rqe1::seal(&KEY, &sealed);
    envelope[rqe1::HEADER_LEN + 8] ^= 0x01;
    assert_eq!(
        rqe1::open(&KEY, &envelope).unwrap_err().class(),
        ErrorClass::WrongPassphrase
    );
}
