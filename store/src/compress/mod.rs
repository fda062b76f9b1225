//! Compression: recognising compressed streams and (de)compressing them. Inside the store
//! everything is uncompressed; compression happens when images leave it.

use crate::error::{Result, StoreError};
use std::io::{BufRead, BufReader, Read, Write};

pub mod parallel;
pub use parallel::{Codec, CompressingReader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Compression {
    /// The OCI media type of a layer compressed this way (None: not one rbuild writes).
    pub fn layer_media_type(self) -> Option<&'static str> {
        match self {
            Compression::None => Some(crate::config::MEDIA_TYPE_LAYER),
            Compression::Gzip => Some(crate::config::MEDIA_TYPE_LAYER_GZIP),
            Compression::Zstd => Some(crate::config::MEDIA_TYPE_LAYER_ZSTD),
            Compression::Bzip2 | Compression::Xz => None,
        }
    }

    /// The compression a layer media type says (OCI's or docker's); None: not a layer type.
    pub fn of_layer_media_type(m: &str) -> Option<Compression> {
        use crate::config as c;
        match m {
            c::MEDIA_TYPE_LAYER | c::DOCKER_LAYER => Some(Compression::None),
            c::MEDIA_TYPE_LAYER_GZIP | c::DOCKER_LAYER_GZIP => Some(Compression::Gzip),
            c::MEDIA_TYPE_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The name used in messages and on disk: `gzip`, `zstd`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

/// Recognises a stream by its first bytes.
pub fn detect(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [b'B', b'Z', b'h', ..] => Compression::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
        _ => Compression::None,
    }
}

/// A reader that undoes whatever compression `r` has (or none).
pub fn decompressed<'a, R: Read + 'a>(r: R) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().map_err(|e| StoreError::io("reading the stream", e))?;
    let c = detect(head);
    let out: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(br).map_err(|e| StoreError::io("starting zstd", e))?)
        }
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(br)),
        Compression::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(br)),
    };
    Ok((c, out))
}

/// Is `r` a tar archive, plain or compressed? (Its first header reads, as docker's ADD
/// and `docker build -` decide.)
pub fn is_tar_archive<R: Read>(r: R) -> bool {
    let Ok((_, r)) = decompressed(r) else { return false };
    matches!(crate::tar::Reader::new(r).next_entry(), Ok(Some(_)))
}

/// A gzip encoder at docker's default level.
pub fn gzip<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    flate2::write::GzEncoder::new(w, flate2::Compression::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_decompresses() {
        let mut gz = gzip(Vec::new());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let (c, mut r) = decompressed(gz.as_slice()).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((c, s.as_str()), (Compression::Gzip, "hello"));
        let z = zstd::encode_all(&b"zz"[..], 3).unwrap();
        let (c, mut r) = decompressed(z.as_slice()).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((c, s.as_str()), (Compression::Zstd, "zz"));
        let (c, _) = decompressed(&b"plain"[..]).unwrap();
        assert_eq!(c, Compression::None);
    }
}
