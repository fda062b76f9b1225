//! What ADD adds to COPY: downloads.

use crate::error::{BuildError, Result};
use sha2::{Digest as _, Sha256};
use std::path::Path;

/// Downloads `url` to the file `path`; returns its sha256 (checked against `checksum`)
/// and its Last-Modified time (0 when absent).
pub(crate) fn download(url: &str, path: &Path, checksum: Option<&str>) -> Result<(String, i64)> {
    let failed = |source: crate::error::SourceError| BuildError::Download { url: url.to_string(), source };
    let resp = ureq::get(url).call().map_err(|e| failed(Box::new(e)))?;
    let mtime = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut f = std::fs::File::create(path).map_err(BuildError::io("creating", path))?;
    let mut body = resp.into_body();
    let mut r = body.as_reader();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = std::io::Read::read(&mut r, &mut buf).map_err(|e| failed(Box::new(e)))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n]).map_err(BuildError::io("writing", path))?;
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    if let Some(want) = checksum {
        if want != digest {
            return Err(BuildError::Checksum { url: url.to_string(), expected: want.to_string(), got: digest });
        }
    }
    Ok((digest, mtime))
}
