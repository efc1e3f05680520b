//! gzip into and out of wiping buffers, shared by the `.share` payload and
//! the config blob.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use zeroize::Zeroizing;

/// Compresses `data` (gzip, MTIME 0 as upstream forces it).
pub(crate) fn compress(data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut compressed = Zeroizing::new(Vec::new());
    let mut gzip = GzEncoder::new(&mut *compressed, Compression::new(6));
    gzip.write_all(data)
        .and_then(|()| gzip.try_finish())
        .expect("gzip into an in-memory buffer cannot fail");
    drop(gzip);
    compressed
}

/// Decompresses at most `limit` bytes; anything larger is a decompression
/// bomb, not vsync data, and is cut off (and then fails to parse).
pub(crate) fn decompress(data: &[u8], limit: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut plain = Zeroizing::new(Vec::new());
    GzDecoder::new(data).take(limit).read_to_end(&mut plain)?;
    Ok(plain)
}
