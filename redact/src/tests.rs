use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use proptest::prelude::*;

use super::*;

fn redactor(secrets: &[&str]) -> Redactor {
    Redactor::new(secrets).unwrap()
}

fn redact(redactor: &Redactor, text: &str) -> String {
    String::from_utf8(redactor.redact(text.as_bytes()).into_owned()).unwrap()
}

fn streamed(redactor: &Redactor, chunks: &[&[u8]]) -> Vec<u8> {
    let mut stream = redactor.stream();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(stream.push(chunk));
    }
    out.extend(stream.finish());
    out
}

/// Percent-encodes every byte but ASCII letters and digits, written here
/// independently of the crate's encoder.
fn percent_encode_all(value: &[u8]) -> String {
    value
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The inside of the JSON string serde_json writes for `value`.
fn json_inside(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap();
    quoted[1..quoted.len() - 1].to_owned()
}

const SECRET: &str = "p@ss w0rd/\"é\"+=~";

#[test]
fn each_form_in_a_line_of_output() {
    let redactor = redactor(&[SECRET]);
    let bytes = SECRET.as_bytes();
    for form in [
        SECRET.to_owned(),
        STANDARD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        hex::encode(bytes),
        hex::encode_upper(bytes),
        percent_encode_all(bytes),
        percent_encode_all(bytes).to_lowercase(),
        json_inside(SECRET),
    ] {
        let line = format!("value=<{form}> end\n");
        assert_eq!(
            redact(&redactor, &line),
            "value=<[REDACTED]> end\n",
            "{form}"
        );
    }
}

#[test]
fn base64_inside_longer_base64_at_each_alignment() {
    let redactor = redactor(&[SECRET]);
    for filler in ["", "x", "xy", "xyz", "{\"password\":\""] {
        let document = format!("{filler}{SECRET}\",\"user\":\"admin\"}}");
        for encoded in [STANDARD.encode(&document), URL_SAFE.encode(&document)] {
            let out = redact(&redactor, &encoded);
            assert!(out.contains("[REDACTED]"), "{filler:?}: {out}");
            // At most two characters at each edge survive, shared with the neighbours.
            let hidden = encoded.len() + REPLACEMENT.len() - out.len();
            assert!(hidden >= 4 * SECRET.len() / 3 - 2, "{filler:?}: {out}");
        }
    }
}

#[test]
fn a_secret_split_across_two_writes_is_caught() {
    let redactor = redactor(&["hunter2hunter2"]);
    let mut stream = redactor.stream();
    assert_eq!(stream.push(b"pass=hunt"), b"pass=");
    assert_eq!(stream.held_back(), 4);
    assert_eq!(stream.push(b"er2hunter2 ok\n"), b"[REDACTED] ok\n");
    assert_eq!(stream.finish(), b"");
}

#[test]
fn a_prompt_is_not_held_back_unless_it_could_start_a_secret() {
    let redactor = redactor(&["correct-horse"]);
    let mut stream = redactor.stream();
    assert_eq!(stream.push(b"Password: "), b"Password: ");
    assert_eq!(stream.held_back(), 0);
    assert_eq!(stream.push(b"one moment, cor"), b"one moment, ");
    assert_eq!(stream.push(b"e\n"), b"core\n");
}

#[test]
fn a_complete_match_at_the_end_of_a_chunk_is_redacted_at_once() {
    let redactor = redactor(&["correct-horse"]);
    let mut stream = redactor.stream();
    assert_eq!(stream.push(b"pw correct-horse"), b"pw [REDACTED]");
    assert_eq!(stream.held_back(), 0);
}

#[test]
fn the_longest_overlapping_pattern_wins_even_across_writes() {
    let redactor = redactor(&["abcdef", "abcdefgh"]);
    assert_eq!(redact(&redactor, "xabcdefghx"), "x[REDACTED]x");
    assert_eq!(streamed(&redactor, &[b"xabcdef", b"ghx"]), b"x[REDACTED]x");
    assert_eq!(streamed(&redactor, &[b"xabcdef", b"gx"]), b"x[REDACTED]gx");
}

#[test]
fn one_line_of_a_multiline_secret_is_caught() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
    let redactor = redactor(&[pem]);
    assert_eq!(
        redact(&redactor, "line: BKcwggSjAgEAAoIBAQC7\n"),
        "line: [REDACTED]\n"
    );
    assert_eq!(redact(&redactor, &format!("dump {pem}")), "dump [REDACTED]");
}

#[test]
fn short_secrets_are_not_redacted_but_counted() {
    let redactor = redactor(&["abc", "", "12345", "long-enough"]);
    assert_eq!(redactor.skipped(), 2, "the empty value hides nothing");
    assert_eq!(
        redact(&redactor, "abc 12345 long-enough"),
        "abc 12345 [REDACTED]"
    );
}

#[test]
fn debug_shows_no_secret() {
    let secret = "sup3r-s3cret-value";
    let redactor = redactor(&[secret]);
    let mut stream = redactor.stream();
    stream.push(b"sup3r-s3cr");
    for debug in [format!("{redactor:?}"), format!("{stream:?}")] {
        for fragment in ["sup3r", "s3cr", "c3VwM3", "7375703372"] {
            assert!(!debug.contains(fragment), "{debug}");
        }
    }
    assert_eq!(format!("{stream:?}"), "Stream { held_back: 10, .. }");
}

#[test]
fn text_without_secrets_is_borrowed() {
    let redactor = redactor(&["correct-horse"]);
    assert!(matches!(redactor.redact(b"nothing here"), Cow::Borrowed(_)));
    assert!(matches!(
        redactor.redact_str("nothing here"),
        Cow::Borrowed(_)
    ));
    assert_eq!(redactor.redact_str("a correct-horse"), "a [REDACTED]");
}

#[test]
fn one_redactor_serves_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Redactor>();
    send_and_sync::<Stream>();
}

#[test]
fn no_secrets_pass_everything_through() {
    let redactor = Redactor::new(Vec::<Vec<u8>>::new()).unwrap();
    assert_eq!(redactor.max_pattern_len(), 0);
    assert_eq!(streamed(&redactor, &[b"a", b"", b"bc"]), b"abc");
}

/// Characters that exercise every encoding: each needs escaping somewhere,
/// `\n` makes values multiline, `é` is two bytes. No `[` or `]`, so the
/// replacement cannot combine with neighbouring text into a pattern.
const ALPHABET: &[char] = &[
    'a', 'b', 'A', '0', '1', ' ', '/', '+', '=', '-', '_', '~', '%', '"', '\\', '\n', 'é', '<',
];

fn text_of(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ALPHABET), len)
        .prop_map(|chars| chars.into_iter().collect())
}

/// `secret` as a program might print it, encoded here independently of the
/// crate; the second string is what must not survive redaction.
fn encode(secret: &str, encoding: usize, filler: &str) -> (String, String) {
    let bytes = secret.as_bytes();
    let whole = |form: String| (form.clone(), form);
    match encoding {
        0 => whole(secret.to_owned()),
        1 => whole(STANDARD.encode(bytes)),
        2 => whole(URL_SAFE_NO_PAD.encode(bytes)),
        3 => whole(hex::encode(bytes)),
        4 => whole(hex::encode_upper(bytes)),
        5 => whole(percent_encode_all(bytes)),
        6 => whole(json_inside(secret)),
        _ => {
            // Inside longer base64: the characters between the first and the
            // last that share bits with the filler around it.
            let lead = filler.len() % 3;
            let document = [&filler.as_bytes()[..lead], bytes, filler.as_bytes()].concat();
            let encoded = STANDARD.encode(&document);
            let first = (8 * lead).div_ceil(6);
            let end = 8 * (lead + bytes.len()) / 6;
            (encoded.clone(), encoded[first..end].to_owned())
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

proptest! {
    #[test]
    fn streaming_equals_whole_buffer_and_leaves_no_pattern(
        secrets in proptest::collection::vec(text_of(MIN_SECRET_LEN..20), 1..4),
        pieces in proptest::collection::vec(
            (text_of(0..12), any::<prop::sample::Index>(), 0..8usize), 0..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let redactor = Redactor::new(&secrets).unwrap();
        let mut input = String::new();
        let mut must_vanish = Vec::new();
        for (filler, which, encoding) in &pieces {
            let (printed, hidden) = encode(which.get(&secrets).as_str(), *encoding, filler);
            input.push_str(filler);
            input.push_str(&printed);
            must_vanish.push(hidden);
        }
        let input = input.into_bytes();

        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut stream = redactor.stream();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            out.extend(stream.push(&input[start..cut]));
            prop_assert!(stream.held_back() < redactor.max_pattern_len().max(1));
            start = cut;
        }
        out.extend(stream.finish());

        let whole = redactor.redact(&input);
        prop_assert_eq!(&out, whole.as_ref());
        for hidden in &must_vanish {
            prop_assert!(!contains(&out, hidden.as_bytes()), "{:?} survived", hidden);
        }
        let mut patterns = Vec::new();
        for secret in &secrets {
            forms::patterns_of(secret.as_bytes(), MIN_SECRET_LEN, &mut patterns);
        }
        // The start filter in front of the automaton changes nothing:
        // `aho-corasick`'s own leftmost-longest search agrees.
        let reference = aho_corasick::AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|pattern| pattern.as_slice()))
            .unwrap();
        let replacements = vec![REPLACEMENT; patterns.len()];
        prop_assert_eq!(whole.as_ref(), &reference.replace_all_bytes(&input, &replacements)[..]);
        for pattern in &patterns {
            prop_assert!(!contains(&out, pattern), "pattern {:?} survived", pattern);
        }
    }
}

/// Bytes for values that are not text: no JSON form, bytes that match inside
/// multibyte characters, and a newline for line patterns.
const BINARY: &[u8] = &[0x00, 0xc3, 0xff, b'a', b'%', b'"', b'\n'];

fn bytes_of(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(BINARY), len)
}

proptest! {
    #[test]
    fn binary_values_stream_like_the_reference_search(
        secrets in proptest::collection::vec(bytes_of(MIN_SECRET_LEN..12), 1..4),
        pieces in proptest::collection::vec((bytes_of(0..8), any::<prop::sample::Index>()), 0..6),
        chunk_len in 1..16usize,
    ) {
        let redactor = Redactor::new(&secrets).unwrap();
        let input: Vec<u8> = pieces
            .iter()
            .flat_map(|(filler, which)| [filler.as_slice(), which.get(&secrets).as_slice()].concat())
            .collect();
        let chunks: Vec<&[u8]> = input.chunks(chunk_len).collect();
        let out = streamed(&redactor, &chunks);

        let mut patterns = Vec::new();
        for secret in &secrets {
            forms::patterns_of(secret, MIN_SECRET_LEN, &mut patterns);
        }
        let reference = aho_corasick::AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|pattern| pattern.as_slice()))
            .unwrap();
        let expected = reference.replace_all_bytes(&input, &vec![REPLACEMENT; patterns.len()]);
        prop_assert_eq!(out, expected);
    }
}
