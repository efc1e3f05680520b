//! Secret values handed to the application: wiped on drop, redacted from
//! `Debug`, no `Display`.

use std::fmt;

use vsync_crypto::Zeroizing;

/// A secret text value (a vault KV, an env variable or a default). Read it
/// with [`SecretString::expose`]; it is wiped from memory when dropped and
/// prints as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        SecretString(Zeroizing::new(value.into()))
    }

    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value as a wiping buffer the caller owns.
    pub fn into_zeroizing(self) -> Zeroizing<String> {
        self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Secret bytes (an asset, or a KV value's UTF-8 bytes). Read them with
/// [`SecretBytes::expose`]; they are wiped from memory when dropped and
/// print as `<redacted N bytes>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as a wiping buffer the caller owns.
    pub fn into_zeroizing(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let text = SecretString::new("hunter2");
        let bytes = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{text:?}"), "<redacted>");
        assert_eq!(format!("{bytes:?}"), "<redacted 7 bytes>");
        assert_eq!(text.expose(), "hunter2");
        assert_eq!(bytes.expose(), b"hunter2");
    }
}
