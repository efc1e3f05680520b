//! The byte strings under which a secret value can show up in output: its
//! literal bytes and the encodings programs commonly print values in.

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// One byte string to redact, wiped when dropped.
pub(crate) type Pattern = Zeroizing<Vec<u8>>;

/// Appends every pattern of `secret` to `out`: the forms of the whole value
/// and, for a multiline value, the forms of each line of at least `min_len`
/// bytes, since a program may print one line of a PEM key on its own.
pub(crate) fn patterns_of(secret: &[u8], min_len: usize, out: &mut Vec<Pattern>) {
    forms(secret, out);
    if secret.contains(&b'\n') {
        for line in secret.split(|&byte| byte == b'\n') {
            // A CRLF value's lines end in '\r'; the line may be printed without it.
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() >= min_len {
                forms(line, out);
            }
        }
    }
}

fn forms(value: &[u8], out: &mut Vec<Pattern>) {
    out.push(Zeroizing::new(value.to_vec()));
    base64_forms(value, out);
    out.push(Zeroizing::new(hex::encode(value).into_bytes()));
    out.push(Zeroizing::new(hex::encode_upper(value).into_bytes()));
    url_forms(value, out);
    json_forms(value, out);
}

fn base64_encode(engine: &GeneralPurpose, bytes: &[u8]) -> Pattern {
    Zeroizing::new(engine.encode(bytes).into_bytes())
}

/// The value encoded on its own (both alphabets, padded or not), and the
/// characters that depend on the value alone when it sits inside longer
/// base64 text, e.g. a JSON credentials file or a `user:password` pair.
///
/// Inside longer text the value starts at byte offset 0, 1 or 2 modulo 3 of
/// the encoded stream. Encoding it behind that many filler bytes and keeping
/// only the characters whose six bits all come from the value gives a string
/// that occurs in any such encoding whatever surrounds the value; the one or
/// two characters at either edge, shared with the neighbours, stay visible.
fn base64_forms(value: &[u8], out: &mut Vec<Pattern>) {
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        out.push(base64_encode(engine, value));
    }
    for filler in 0..3 {
        let mut shifted = Zeroizing::new(vec![0u8; filler]);
        shifted.extend_from_slice(value);
        let first_char = (8 * filler).div_ceil(6);
        let end_char = 8 * shifted.len() / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = base64_encode(engine, &shifted);
            out.push(Zeroizing::new(encoded[first_char..end_char].to_vec()));
        }
    }
}

/// Bytes besides ASCII letters and digits that common percent-encoders leave
/// as they are; a value is encoded once per set.
const URL_UNESCAPED_SETS: [&[u8]; 5] = [
    // Everything else escaped: Rust `percent_encoding::NON_ALPHANUMERIC`.
    b"",
    // RFC 3986 unreserved: Go, PHP `rawurlencode`, Python `quote(safe="")`.
    b"-._~",
    // Python `urllib.parse.quote` with its default `safe="/"`.
    b"-._~/",
    // WHATWG form encoding: JS `URLSearchParams`, Java `URLEncoder`, Rust `form_urlencoded`.
    b"*-._",
    // JS `encodeURIComponent`.
    b"!'()*-._~",
];

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Percent-encodings of the value under each set, with upper- and lowercase
/// hex digits (RFC 3986 calls them equivalent and some encoders emit the
/// latter), and for values with a space also the form encoding's `+` for it
/// (Go `QueryEscape`, Python `quote_plus`, HTML forms).
fn url_forms(value: &[u8], out: &mut Vec<Pattern>) {
    let space_forms: &[bool] = if value.contains(&b' ') {
        &[false, true]
    } else {
        &[false]
    };
    for unescaped in URL_UNESCAPED_SETS {
        for digits in [HEX_UPPER, HEX_LOWER] {
            for &space_as_plus in space_forms {
                let mut encoded = Zeroizing::new(Vec::with_capacity(3 * value.len()));
                for &byte in value {
                    if byte.is_ascii_alphanumeric() || unescaped.contains(&byte) {
                        encoded.push(byte);
                    } else if byte == b' ' && space_as_plus {
                        encoded.push(b'+');
                    } else {
                        encoded.extend_from_slice(&[
                            b'%',
                            digits[usize::from(byte >> 4)],
                            digits[usize::from(byte & 0xf)],
                        ]);
                    }
                }
                out.push(encoded);
            }
        }
    }
}

/// How a JSON encoder escapes a string beyond what the grammar requires.
#[derive(Clone, Copy)]
struct JsonStyle {
    /// `\/` for `/`: PHP `json_encode`.
    escape_slash: bool,
    /// `\uXXXX` (UTF-16) for every non-ASCII character: Python `json.dumps`.
    ascii_only: bool,
    /// `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`: Go `encoding/json`.
    html_safe: bool,
}

/// The value as the inside of a JSON string, in every combination of the
/// common encoders' escaping choices. Only UTF-8 values: a JSON string holds
/// text, so an encoder cannot print other bytes as such.
fn json_forms(value: &[u8], out: &mut Vec<Pattern>) {
    let Ok(text) = std::str::from_utf8(value) else {
        return;
    };
    for escape_slash in [false, true] {
        for ascii_only in [false, true] {
            for html_safe in [false, true] {
                let style = JsonStyle {
                    escape_slash,
                    ascii_only,
                    html_safe,
                };
                out.push(json_escape(text, style));
            }
        }
    }
}

fn json_escape(text: &str, style: JsonStyle) -> Pattern {
    // Room for the worst case (six bytes per byte) so the buffer never
    // reallocates and leaves an unwiped copy behind.
    let mut escaped = Zeroizing::new(Vec::with_capacity(6 * text.len()));
    let mut utf16 = [0u16; 2];
    for c in text.chars() {
        let short_escape: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            '\u{8}' => Some(b"\\b"),
            '\u{c}' => Some(b"\\f"),
            '/' if style.escape_slash => Some(b"\\/"),
            _ => None,
        };
        let needs_unicode_escape = c < ' '
            || (style.ascii_only && !c.is_ascii())
            || (style.html_safe && matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'));
        if let Some(short) = short_escape {
            escaped.extend_from_slice(short);
        } else if needs_unicode_escape {
            for &unit in c.encode_utf16(&mut utf16).iter() {
                escaped.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    escaped.push(HEX_LOWER[usize::from((unit >> shift) & 0xf)]);
                }
            }
        } else {
            let mut utf8 = [0u8; 4];
            escaped.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns_of_value(value: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        patterns_of(value, 6, &mut out);
        out.iter().map(|pattern| pattern.to_vec()).collect()
    }

    fn assert_has(patterns: &[Vec<u8>], expected: &str) {
        assert!(
            patterns.iter().any(|p| p == expected.as_bytes()),
            "missing {expected:?}"
        );
    }

    // Chosen so that its base64 uses '+' and '/' (and so differs per alphabet)
    // and needs padding. Expected strings from Python's base64/json/urllib.
    const VALUE: &[u8] = b"??>>~~1234";

    #[test]
    fn literal_and_hex_in_both_cases() {
        let patterns = patterns_of_value(VALUE);
        assert_has(&patterns, "??>>~~1234");
        assert_has(&patterns, "3f3f3e3e7e7e31323334");
        assert_has(&patterns, "3F3F3E3E7E7E31323334");
    }

    #[test]
    fn base64_on_its_own_in_both_alphabets_padded_or_not() {
        let patterns = patterns_of_value(VALUE);
        for expected in [
            "Pz8+Pn5+MTIzNA==",
            "Pz8+Pn5+MTIzNA",
            "Pz8-Pn5-MTIzNA==",
            "Pz8-Pn5-MTIzNA",
        ] {
            assert_has(&patterns, expected);
        }
    }

    #[test]
    fn base64_inside_longer_text_at_each_alignment() {
        let patterns = patterns_of_value(VALUE);
        // Offset 0, 1 and 2 modulo 3, standard then URL alphabet.
        for expected in [
            "Pz8+Pn5+MTIzN",
            "Pz8-Pn5-MTIzN",
            "8/Pj5+fjEyMz",
            "8_Pj5-fjEyMz",
            "/Pz4+fn4xMjM0",
            "_Pz4-fn4xMjM0",
        ] {
            assert_has(&patterns, expected);
        }
    }

    #[test]
    fn percent_encodings() {
        let patterns = patterns_of_value("a/b \"c\"<é>\n".as_bytes());
        // Python quote (keeps '/'), quote_plus, and the lowercase-hex variant.
        assert_has(&patterns, "a/b%20%22c%22%3C%C3%A9%3E%0A");
        assert_has(&patterns, "a%2Fb+%22c%22%3C%C3%A9%3E%0A");
        assert_has(&patterns, "a%2fb%20%22c%22%3c%c3%a9%3e%0a");
        // encodeURIComponent keeps `~` and `*`, the alphanumeric set does not.
        let patterns = patterns_of_value("~*x yz~*".as_bytes());
        assert_has(&patterns, "~*x%20yz~*");
        assert_has(&patterns, "%7E%2Ax%20yz%7E%2A");
    }

    #[test]
    fn json_escapes_of_each_common_encoder() {
        let patterns = patterns_of_value("a/b \"c\"<é>\n\u{1}".as_bytes());
        // serde_json / JS, Python (ensure_ascii), PHP (escaped slash), Go (HTML-safe).
        assert_has(&patterns, r#"a/b \"c\"<é>\n\u0001"#);
        assert_has(&patterns, r#"a/b \"c\"<\u00e9>\n\u0001"#);
        assert_has(&patterns, r#"a\/b \"c\"<é>\n\u0001"#);
        assert_has(&patterns, r#"a/b \"c\"\u003cé\u003e\n\u0001"#);
        // Outside the Basic Multilingual Plane, as a UTF-16 surrogate pair.
        assert_has(
            &patterns_of_value("key🔑value".as_bytes()),
            r"key\ud83d\udd11value",
        );
    }

    #[test]
    fn no_json_form_for_bytes_that_are_not_text() {
        let value = b"\xff\xfe\"quoted\"";
        assert!(
            !patterns_of_value(value)
                .iter()
                .any(|p| p.starts_with(br#"\u"#) || p.windows(2).any(|w| w == br#"\""#))
        );
    }

    #[test]
    fn each_long_enough_line_of_a_multiline_value() {
        let pem = b"-----BEGIN KEY-----\r\nMIIBOgIBAAJBAK\r\nabc\r\n-----END KEY-----\r\n";
        let patterns = patterns_of_value(pem);
        assert_has(&patterns, "MIIBOgIBAAJBAK");
        assert_has(&patterns, "4d4949424f67494241414a42414b");
        assert_has(&patterns, "-----BEGIN KEY-----");
        assert!(
            !patterns.iter().any(|p| p == b"abc"),
            "a line under the minimum"
        );
    }
}
