//! Redaction of secret values from output, for `vsync exec` (the child
//! process's stdout and stderr) and for vsync's own errors and logs.
//!
//! A [`Redactor`] is built once from the secret values handed to the child.
//! Each value is redacted in every form a program commonly prints it in: the
//! literal bytes, base64 (standard and URL alphabets, padded or not, and
//! inside longer base64 text at any of the three byte alignments), hex in
//! either case, percent-encoding (the common encoders' escape sets, either hex
//! case, `+` or `%20` for a space) and the inside of a JSON string (the common
//! encoders' escaping choices). A multiline value is also redacted line by
//! line, for every line of at least [`MIN_SECRET_LEN`] bytes. Every match
//! becomes [`REPLACEMENT`].
//!
//! Values shorter than [`MIN_SECRET_LEN`] are not redacted;
//! [`Redactor::skipped`] counts them so the caller can say so once.
//!
//! [`Redactor::redact`] handles a whole buffer (an error message, a log line).
//! [`Redactor::stream`] gives a [`Stream`] per output stream: its output over
//! any split of the input into chunks is exactly `redact` of the whole input,
//! so a secret written in two pieces is still caught. A stream holds back only
//! a tail that could be the start of a pattern, so an interactive prompt is
//! shown as soon as it is written unless its last bytes could begin a secret.
//!
//! ```
//! use vsync_redact::Redactor;
//!
//! let redactor = Redactor::new(["hunter2hunter2", "pin"])?;
//! assert_eq!(redactor.skipped(), 1); // "pin" is too short: say so once
//! assert_eq!(redactor.redact_str("login: hunter2hunter2"), "login: [REDACTED]");
//!
//! let mut stdout = redactor.stream();
//! let mut shown = stdout.push(b"token=aHVudGVyMmh1");
//! shown.extend(stdout.push(b"bnRlcjI= ok\n")); // base64, split across two writes
//! shown.extend(stdout.finish());
//! assert_eq!(shown, b"token=[REDACTED] ok\n");
//! # Ok::<(), vsync_redact::RedactError>(())
//! ```
//!
//! Matching is leftmost-longest: where patterns overlap, the one starting
//! first wins, and of those the longest, so an encoded form is replaced whole
//! rather than leaving the part after a shorter pattern that is its prefix.
//!
//! The values and every derived form are wiped when the builder drops them,
//! and a stream's held-back bytes when it drops. The automaton itself encodes
//! the patterns in its transition tables, which `aho-corasick` does not wipe:
//! they stay in freed memory like the child's own output does.

#![forbid(unsafe_code)]

mod forms;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, Input, Match, MatchKind};
use zeroize::Zeroizing;

/// The shortest value that is redacted, in bytes.
///
/// Shorter values are mostly configuration rather than secrets (`true`,
/// `8080`, `prod`, `admin`) and occur in ordinary output, so redacting them
/// would garble it, and every `[REDACTED]` in the middle of unrelated text
/// would tell a reader where the value appears, which for a short value gives
/// it away. Six bytes still covers short passwords and six-digit PINs, and
/// keeps every pattern at least six bytes long (a base64 form inside longer
/// base64 text at least seven), so that a form turning up by chance in
/// unrelated base64 or hex output is unlikely.
pub const MIN_SECRET_LEN: usize = 6;

/// What every match is replaced with: one constant, so the output says
/// nothing about which secret or which form matched.
pub const REPLACEMENT: &[u8] = b"[REDACTED]";

/// Why a [`Redactor`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The patterns exceed the matcher's size limits (about two billion
    /// states); the message holds no value.
    #[error("cannot build the redaction matcher for {patterns} patterns")]
    Matcher {
        /// How many distinct patterns the secrets produced.
        patterns: usize,
        /// The matcher's reason.
        #[source]
        source: aho_corasick::BuildError,
    },
}

/// Redacts a fixed set of secret values; immutable once built, and cheap to
/// clone (one matcher shared by every clone and [`Stream`]).
#[derive(Clone)]
pub struct Redactor {
    matcher: Arc<Matcher>,
    skipped: usize,
}

impl Redactor {
    /// A redactor for `secrets`. Values shorter than [`MIN_SECRET_LEN`] are
    /// left out and counted in [`skipped`](Self::skipped); empty values have
    /// nothing to hide and are ignored.
    pub fn new<I>(secrets: I) -> Result<Self, RedactError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut patterns = Vec::new();
        let mut skipped = 0;
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.len() >= MIN_SECRET_LEN {
                forms::patterns_of(secret, MIN_SECRET_LEN, &mut patterns);
            } else if !secret.is_empty() {
                skipped += 1;
            }
        }
        patterns.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        patterns.dedup_by(|a, b| a == b);
        Ok(Self {
            matcher: Arc::new(Matcher::new(&patterns)?),
            skipped,
        })
    }

    /// How many values were too short to redact (see [`MIN_SECRET_LEN`]).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The longest pattern in bytes; a [`Stream`] holds back less than this.
    pub fn max_pattern_len(&self) -> usize {
        self.matcher.max_pattern_len
    }

    /// `text` with every pattern replaced by [`REPLACEMENT`]; borrowed when
    /// nothing matched.
    pub fn redact<'t>(&self, text: &'t [u8]) -> Cow<'t, [u8]> {
        if self.matcher.find(text, 0).is_none() {
            return Cow::Borrowed(text);
        }
        let mut redacted = Vec::with_capacity(text.len());
        self.matcher.emit(text, true, &mut redacted);
        Cow::Owned(redacted)
    }

    /// [`redact`](Self::redact) for text such as an error message. A value
    /// that is not UTF-8 can match inside a multibyte character; the broken
    /// character then becomes U+FFFD.
    pub fn redact_str<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.redact(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(bytes) => match String::from_utf8(bytes) {
                Ok(redacted) => Cow::Owned(redacted),
                Err(broken) => Cow::Owned(String::from_utf8_lossy(broken.as_bytes()).into_owned()),
            },
        }
    }

    /// A streaming redactor for one output stream (one for stdout, one for
    /// stderr: a pattern never spans the two).
    pub fn stream(&self) -> Stream {
        Stream {
            matcher: Arc::clone(&self.matcher),
            held_back: Zeroizing::new(Vec::new()),
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: the matcher's own Debug prints its transition tables,
        // which spell out every pattern.
        f.debug_struct("Redactor")
            .field("patterns", &self.matcher.pattern_count)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

/// Redacts one output stream written in arbitrary chunks.
///
/// [`push`](Self::push) returns what is safe to show now and holds back the
/// shortest tail that could still become a match: bytes from the first
/// position whose remainder is a proper prefix of some pattern, so always
/// fewer than [`Redactor::max_pattern_len`] bytes, and none when the tail
/// cannot start a pattern. A prompt such as `Password: ` is therefore passed
/// through at once, unless its last bytes could begin a secret's form; then
/// they wait for the next byte that rules the match out, or for
/// [`finish`](Self::finish) at end of stream. Showing them earlier would
/// either show part of a secret or let its remainder through unredacted.
pub struct Stream {
    matcher: Arc<Matcher>,
    held_back: Zeroizing<Vec<u8>>,
}

impl Stream {
    /// Takes the next chunk and returns the redacted output that no later
    /// chunk can change.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.held_back.extend_from_slice(chunk);
        let mut safe = Vec::with_capacity(self.held_back.len());
        let decided = self.matcher.emit(&self.held_back, false, &mut safe);
        self.held_back.drain(..decided);
        safe
    }

    /// Ends the stream and returns the redaction of what was held back.
    pub fn finish(self) -> Vec<u8> {
        let mut rest = Vec::with_capacity(self.held_back.len());
        self.matcher.emit(&self.held_back, true, &mut rest);
        rest
    }

    /// How many bytes are waiting for the next chunk to decide them.
    pub fn held_back(&self) -> usize {
        self.held_back.len()
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The held-back bytes may be the start of a secret: their count only.
        f.debug_struct("Stream")
            .field("held_back", &self.held_back.len())
            .finish_non_exhaustive()
    }
}

/// The leftmost-longest automaton over every pattern, behind a filter of the
/// positions where a pattern can start.
struct Matcher {
    automaton: NFA,
    starts: StartFilter,
    /// Where an anchored walk starts: the root of the pattern trie, used to
    /// ask whether some bytes are a prefix of a pattern.
    anchored_start: StateID,
    pattern_count: usize,
    max_pattern_len: usize,
}

impl Matcher {
    fn new(patterns: &[forms::Pattern]) -> Result<Self, RedactError> {
        // A contiguous NFA rather than `AhoCorasick`: it exposes the
        // `Automaton` trait, whose anchored walk answers the prefix question
        // the stream needs, and it stays compact with thousands of patterns
        // (1.3 MB for 100 secrets, where a DFA took 70 MB).
        let automaton = NFA::builder()
            .match_kind(MatchKind::LeftmostLongest)
            // Every search is anchored at a position the start filter let
            // through, and anchored searches never use a prefilter.
            .prefilter(false)
            .build(patterns.iter().map(|pattern| pattern.as_slice()))
            .map_err(|source| RedactError::Matcher {
                patterns: patterns.len(),
                source,
            })?;
        let anchored_start = automaton
            .start_state(Anchored::Yes)
            .expect("an NFA supports anchored searches");
        Ok(Self {
            starts: StartFilter::new(patterns),
            anchored_start,
            pattern_count: patterns.len(),
            max_pattern_len: patterns.iter().map(|p| p.len()).max().unwrap_or(0),
            automaton,
        })
    }

    /// The leftmost-longest match in `text[at..]`: the longest match at the
    /// first position that has one.
    ///
    /// Not the automaton's own unanchored search: with every secret's base64
    /// and hex forms nearly every byte of text starts some pattern, so that
    /// search walks the automaton on every byte (about 4 ns a byte with 100
    /// secrets), and `aho-corasick`'s prefilters give up beyond a few dozen
    /// patterns. The start filter rules out almost every position for the
    /// price of a hash, and the automaton runs anchored on the rest.
    fn find(&self, text: &[u8], at: usize) -> Option<Match> {
        text[at..]
            .windows(PREFIX_LEN)
            .enumerate()
            .filter(|(_, window)| self.starts.may_start(window))
            .find_map(|(offset, _)| {
                let start = at + offset;
                self.automaton
                    .try_find(&Input::new(text).range(start..).anchored(Anchored::Yes))
                    .expect("an NFA supports anchored searches")
            })
    }

    /// Appends to `out` the redaction of the part of `text` that later input
    /// cannot change, and returns where the undecided rest starts (`text.len()`
    /// when `end_of_input`).
    ///
    /// Why this equals redacting the whole input, however it is chunked: the
    /// whole-input search resumes after each match at `at` and takes the
    /// leftmost-longest match from there. More input can only add matches that
    /// run past the current end, and such a match starts at a position whose
    /// remainder is a proper prefix of a pattern. Before the first such
    /// position (`undecided`) every match found, and every byte without one,
    /// is final; from it on, nothing is decided yet.
    fn emit(&self, text: &[u8], end_of_input: bool, out: &mut Vec<u8>) -> usize {
        let undecided_from = |at| {
            if end_of_input {
                text.len()
            } else {
                self.first_open_prefix(text, at)
            }
        };
        let mut at = 0;
        let mut undecided = undecided_from(at);
        while let Some(found) = self.find(text, at) {
            if found.start() >= undecided {
                break;
            }
            out.extend_from_slice(&text[at..found.start()]);
            out.extend_from_slice(REPLACEMENT);
            at = found.end();
            if at > undecided {
                undecided = undecided_from(at);
            }
        }
        out.extend_from_slice(&text[at..undecided]);
        undecided
    }

    /// The first position at or after `from` whose remainder of `text` is a
    /// proper prefix of some pattern, or `text.len()`. Only the last
    /// `max_pattern_len - 1` positions can qualify.
    fn first_open_prefix(&self, text: &[u8], from: usize) -> usize {
        let window = text
            .len()
            .saturating_sub(self.max_pattern_len.saturating_sub(1));
        (from.max(window)..text.len())
            .find(|&start| self.is_open_prefix(&text[start..]))
            .unwrap_or(text.len())
    }

    /// Whether `bytes` followed by more input could still become a match:
    /// walking them from the trie's root does not die, and either stops short
    /// of a pattern's end or at one that some longer pattern extends.
    fn is_open_prefix(&self, bytes: &[u8]) -> bool {
        let nfa = &self.automaton;
        let mut state = self.anchored_start;
        for &byte in bytes {
            state = nfa.next_state(Anchored::Yes, state, byte);
            if nfa.is_dead(state) {
                return false;
            }
        }
        !nfa.is_match(state)
            || (0..=u8::MAX).any(|byte| !nfa.is_dead(nfa.next_state(Anchored::Yes, state, byte)))
    }
}

/// How many leading bytes of a pattern the start filter looks at. Every
/// pattern is at least [`MIN_SECRET_LEN`] long: each form of a value is at
/// least as long as the value.
const PREFIX_LEN: usize = 4;
const _: () = assert!(MIN_SECRET_LEN >= PREFIX_LEN);

/// A bitmap of the hashed first [`PREFIX_LEN`] bytes of every pattern: a
/// position whose next bytes hash to a clear bit cannot start a match. 2^16
/// bits (8 KiB, so it stays in L1 cache) leave a few percent of positions to
/// the automaton with thousands of patterns.
struct StartFilter {
    bits: Box<[u64]>,
}

const START_FILTER_BITS_LOG2: u32 = 16;

impl StartFilter {
    fn new(patterns: &[forms::Pattern]) -> Self {
        let mut bits = vec![0u64; (1 << START_FILTER_BITS_LOG2) / 64].into_boxed_slice();
        for pattern in patterns {
            let slot = Self::slot(&pattern[..PREFIX_LEN]);
            bits[slot / 64] |= 1 << (slot % 64);
        }
        Self { bits }
    }

    fn may_start(&self, window: &[u8]) -> bool {
        let slot = Self::slot(window);
        self.bits[slot / 64] & (1 << (slot % 64)) != 0
    }

    /// Fibonacci hashing of the window read as a little-endian word.
    fn slot(window: &[u8]) -> usize {
        let word = u32::from_le_bytes(window.try_into().expect("a PREFIX_LEN window"));
        (word.wrapping_mul(0x9e37_79b9) >> (32 - START_FILTER_BITS_LOG2)) as usize
    }
}

#[cfg(test)]
mod tests;
