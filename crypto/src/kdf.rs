//! PBKDF2-HMAC-SHA256 key derivation, as every vsync envelope uses it.

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};
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
        DERIVATIONS.with(|runs| runs.set(runs.get() + 1));
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations.get(), key.as_mut());
        Key(key)
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Key(bytes)
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

thread_local! {
    static DERIVATIONS: Cell<u64> = const { Cell::new(0) };
}

/// How many times [`Key::derive`] has run PBKDF2 on the calling thread.
/// Tests and benchmarks read it around an operation to prove the operation
/// derives each key once (per thread, so tests running in parallel do not
/// count each other's). One derivation takes tens of milliseconds; counting
/// it costs nothing next to that.
pub fn derivations_on_this_thread() -> u64 {
    DERIVATIONS.with(Cell::get)
}

/// The keys one command has derived, each under the (password, salt,
/// iterations) it came from, so a command that needs the same key twice
/// (`pull` seals the rolling backup and opens the bundle with it) runs the
/// deliberately slow PBKDF2 once.
///
/// Owned by one command and dropped with it, keys wiped: a process-wide
/// cache would keep every key a long-running process ever used in memory
/// for its whole life. The password itself is not kept, only its SHA-256
/// (wiped too), which is enough to tell inputs apart.
#[derive(Default)]
pub struct KeyCache {
    // Boxed so that growing the vector moves pointers, never key bytes: a
    // moved-from copy left in the freed buffer would escape the wipe.
    #[expect(
        clippy::vec_box,
        reason = "keeps key bytes in place when the vector grows"
    )]
    entries: Mutex<Vec<Box<Entry>>>,
}

struct Entry {
    password_sha256: Zeroizing<[u8; 32]>,
    salt: Vec<u8>,
    iterations: NonZeroU32,
    key: Key,
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key [`Key::derive`] gives for these inputs: derived on the first
    /// call with them, the same key from memory afterwards.
    pub fn derive(&self, password: &[u8], salt: &[u8], iterations: NonZeroU32) -> Key {
        let password_sha256 = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(password)));
        // Held while deriving, so two threads asking for the same key at
        // once still derive it once.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let known = entries.iter().find(|entry| {
            entry.password_sha256 == password_sha256
                && entry.salt == salt
                && entry.iterations == iterations
        });
        if let Some(entry) = known {
            return entry.key.clone();
        }
        let key = Key::derive(password, salt, iterations);
        entries.push(Box::new(Entry {
            password_sha256,
            salt: salt.to_vec(),
            iterations,
            key: key.clone(),
        }));
        key
    }
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        write!(f, "KeyCache(<{keys} redacted keys>)")
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

    fn iterations(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// What `derive` returns, and how many PBKDF2 runs it took.
    fn counted(derive: impl FnOnce() -> Key) -> (Key, u64) {
        let before = derivations_on_this_thread();
        let key = derive();
        (key, derivations_on_this_thread() - before)
    }

    #[test]
    fn the_counter_counts_every_derivation_on_this_thread() {
        let (_, runs) = counted(|| {
            Key::derive(b"pw", b"salt", iterations(1));
            Key::derive(b"pw", b"salt", iterations(1))
        });
        assert_eq!(runs, 2);
    }

    #[test]
    fn cache_derives_once_per_password_salt_and_iterations() {
        let cache = KeyCache::new();
        let (first, runs) = counted(|| cache.derive(b"pw", b"salt-a", iterations(2)));
        assert_eq!(runs, 1);
        assert_eq!(
            first.bytes(),
            Key::derive(b"pw", b"salt-a", iterations(2)).bytes()
        );
        let (again, runs) = counted(|| cache.derive(b"pw", b"salt-a", iterations(2)));
        assert_eq!(runs, 0, "the same inputs come from memory");
        assert_eq!(again.bytes(), first.bytes());

        // Each input on its own makes another key, derived once.
        let others: [(&[u8], &[u8], u32); 4] = [
            (b"pw", b"salt-b", 2),
            (b"other pw", b"salt-a", 2),
            (b"pw", b"salt-a", 3),
            // Not confused with ("pw", "salt-a") by joining the inputs.
            (b"pws", b"alt-a", 2),
        ];
        for (password, salt, count) in others {
            let (key, runs) = counted(|| cache.derive(password, salt, iterations(count)));
            assert_eq!(runs, 1);
            assert_eq!(
                key.bytes(),
                Key::derive(password, salt, iterations(count)).bytes()
            );
            assert_ne!(key.bytes(), first.bytes());
        }
        for (password, salt, count) in others {
            let (_, runs) = counted(|| cache.derive(password, salt, iterations(count)));
            assert_eq!(runs, 0);
        }
    }

    #[test]
    fn cache_debug_output_is_redacted() {
        let cache = KeyCache::new();
        cache.derive(b"pw", b"salt", iterations(1));
        assert_eq!(format!("{cache:?}"), "KeyCache(<1 redacted keys>)");
    }
}
