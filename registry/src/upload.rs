//! Sending one blob: checked with HEAD first, mounted from another repository of the same
//! registry when rbuild knows one that has it, and otherwise uploaded — in one PUT, in
//! chunks (PATCH with Content-Range, then PUT) when larger than the chunk size, or, for a
//! layer compressed on the way, streamed in one PATCH (chunked transfer encoding, as
//! docker's push does) and closed with a PUT naming the digest it turned out to have.

use crate::client::{scope, Body, Client};
use crate::error::{RegistryError, Result};
use crate::progress::{BlobEvent, Counting, Progress};
use rbuild_store::compress::{Codec, CompressingReader};
use rbuild_store::digest::HashingReader;
use rbuild_store::{CompressedForm, Digest, Store};
use std::io::Read;

/// A blob to upload: where its bytes come from (a stored blob checked against its digest
/// as it streams, so a damaged one is never uploaded whole).
pub(crate) struct OutBlob<'a> {
    pub digest: Digest,
    pub size: u64,
    pub open: Box<dyn Fn() -> Result<Box<dyn Read + Send>> + Sync + 'a>,
}

fn http_err(what: String, resp: &mut ureq::http::Response<ureq::Body>) -> RegistryError {
    RegistryError::Http { what, status: resp.status().as_u16(), detail: crate::client::error_detail(resp) }
}

fn location(client: &Client, resp: &ureq::http::Response<ureq::Body>, what: &str) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| client.absolute(l))
        .ok_or_else(|| RegistryError::bad(what, "the registry gave no upload location"))
}

fn with_query(url: &str, q: &str) -> String {
    format!("{url}{}{q}", if url.contains('?') { '&' } else { '?' })
}

/// Where a blob stands in the repository before anything is sent.
pub(crate) enum Presence {
    /// The repository has it (HEAD), or it was just mounted from another one.
    There,
    /// Not there: an upload to this URL may begin (a refused mount opens one).
    Upload(String),
}

/// HEAD, then a cross-repository mount from each repository known to hold `d`.
pub(crate) fn presence(
    store: &Store,
    client: &Client,
    repo: &str,
    d: &Digest,
    progress: &dyn Progress,
) -> Result<Presence> {
    let scopes = [scope(repo, true)];
    let head = client.send("HEAD", &client.url(&format!("{repo}/blobs/{d}")), &scopes, &[], Body::Empty)?;
    if head.status().as_u16() == 200 {
        progress.blob(d, BlobEvent::Exists);
        return Ok(Presence::There);
    }
    for from in crate::sources::repositories(store, client.registry(), d).into_iter().filter(|r| r != repo) {
        let url = client.url(&format!("{repo}/blobs/uploads/?mount={d}&from={}", crate::client::query_escape(&from)));
        let mount_scopes = [scope(repo, true), scope(&from, false)];
        let mut resp = client.send("POST", &url, &mount_scopes, &[], Body::Bytes(&[]))?;
        match resp.status().as_u16() {
            201 => {
                progress.blob(d, BlobEvent::Mounted { from: &from });
                return Ok(Presence::There);
            }
            202 => return Ok(Presence::Upload(location(client, &resp, "blob mount")?)),
            _ => {
                let _ = crate::client::error_detail(&mut resp);
            }
        }
    }
    Ok(Presence::Upload(start_upload(client, repo, &d.to_string())?))
}

/// POST: a new upload session's URL.
fn start_upload(client: &Client, repo: &str, what: &str) -> Result<String> {
    let scopes = [scope(repo, true)];
    let mut resp =
        client.send("POST", &client.url(&format!("{repo}/blobs/uploads/")), &scopes, &[], Body::Bytes(&[]))?;
    if resp.status().as_u16() != 202 {
        return Err(http_err(format!("starting the upload of {what} to {}/{repo}", client.registry()), &mut resp));
    }
    location(client, &resp, "blob upload")
}

/// Uploads `b` unless the repository has it or can mount it.
pub(crate) fn upload_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    b: &OutBlob<'_>,
    chunk: u64,
    progress: &dyn Progress,
) -> Result<()> {
    let url = match presence(store, client, repo, &b.digest, progress)? {
        Presence::There => return Ok(()),
        Presence::Upload(url) => url,
    };
    let mut file = (b.open)()?;
    progress.blob(&b.digest, BlobEvent::Start { total: b.size });
    if b.size <= chunk {
        put_whole(client, repo, &url, &b.digest, &mut *file, b.size)?;
    } else {
        put_chunks(client, repo, url, &b.digest, &mut *file, b.size, chunk, progress)?;
    }
    progress.blob(&b.digest, BlobEvent::Done);
    Ok(())
}

/// One PUT with the whole blob.
fn put_whole(
    client: &Client,
    repo: &str,
    url: &str,
    d: &Digest,
    file: &mut (dyn Read + Send),
    size: u64,
) -> Result<()> {
    let scopes = [scope(repo, true)];
    // A damaged blob's reader fails before its last bytes: the upload is cut short, and
    // the error says which blob it was.
    let mut watched = Watched { inner: file, corrupt: None };
    let r = client.send(
        "PUT",
        &with_query(url, &format!("digest={d}")),
        &scopes,
        &[("Content-Type", "application/octet-stream")],
        Body::Reader(&mut watched, size),
    );
    if let Some(c) = watched.corrupt {
        return Err(rbuild_store::StoreError::Corrupt(c).into());
    }
    let mut resp = r?;
    if resp.status().as_u16() != 201 {
        return Err(http_err(format!("uploading {d} to {}/{repo}", client.registry()), &mut resp));
    }
    Ok(())
}

/// PATCHes of `chunk` bytes with Content-Range, then the closing PUT. Each chunk streams
/// from the blob as it is sent (reading, checking and sending overlap).
#[allow(clippy::too_many_arguments)]
fn put_chunks(
    client: &Client,
    repo: &str,
    mut url: String,
    d: &Digest,
    file: &mut (dyn Read + Send),
    size: u64,
    chunk: u64,
    progress: &dyn Progress,
) -> Result<()> {
    let scopes = [scope(repo, true)];
    let what = format!("uploading {d} to {}/{repo}", client.registry());
    let mut watched = Watched { inner: file, corrupt: None };
    let mut start = 0u64;
    while start < size {
        let len = chunk.min(size - start);
        let end = start + len - 1;
        let range = format!("{start}-{end}");
        let mut part = (&mut watched).take(len);
        let r = client.send(
            "PATCH",
            &url,
            &scopes,
            &[("Content-Type", "application/octet-stream"), ("Content-Range", &range)],
            Body::Reader(&mut part, len),
        );
        if let Some(c) = watched.corrupt.take() {
            return Err(rbuild_store::StoreError::Corrupt(c).into());
        }
        let mut resp = r?;
        if resp.status().as_u16() != 202 {
            return Err(http_err(format!("{what} (bytes {range})"), &mut resp));
        }
        url = location(client, &resp, "blob upload")?;
        start = end + 1;
        progress.blob(d, BlobEvent::Bytes { done: start, total: size });
    }
    // The whole blob went: its last read checked the digest.
    if watched.read(&mut [0u8; 1]).map_err(|e| RegistryError::transport(format!("reading blob {d}"), e))? != 0 {
        return Err(RegistryError::bad(&what, "the blob grew while it was sent"));
    }
    close_upload(client, repo, &url, d)
}

/// The PUT that ends an upload, naming the digest the registry must find.
fn close_upload(client: &Client, repo: &str, url: &str, d: &Digest) -> Result<()> {
    let scopes = [scope(repo, true)];
    let mut resp = client.send(
        "PUT",
        &with_query(url, &format!("digest={d}")),
        &scopes,
        &[("Content-Type", "application/octet-stream")],
        Body::Bytes(&[]),
    )?;
    if resp.status().as_u16() != 201 {
        return Err(http_err(format!("uploading {d} to {}/{repo}", client.registry()), &mut resp));
    }
    Ok(())
}

/// Compresses the stored layer `diff_id` on every core while streaming it to a new
/// upload of `repo`, hashing the compressed bytes on the way; returns their digest and
/// size. The stored blob is checked against `diff_id` as it is read: a damaged one cuts
/// the upload short and is named.
pub(crate) fn upload_compressed(
    store: &Store,
    client: &Client,
    repo: &str,
    diff_id: &Digest,
    size: u64,
    codec: Codec,
    progress: &dyn Progress,
) -> Result<CompressedForm> {
    let url = start_upload(client, repo, &format!("layer {diff_id}"))?;
    let src = Counting::new(store.open_verified(diff_id)?, *diff_id, size, progress);
    let mut hashed = HashingReader::new(CompressingReader::new(src, codec));
    let mut watched = Watched { inner: &mut hashed, corrupt: None };
    let scopes = [scope(repo, true)];
    let r = client.send(
        "PATCH",
        &url,
        &scopes,
        &[("Content-Type", "application/octet-stream")],
        Body::Stream(&mut watched),
    );
    if let Some(c) = watched.corrupt {
        return Err(rbuild_store::StoreError::Corrupt(c).into());
    }
    let mut resp = r?;
    if resp.status().as_u16() != 202 {
        return Err(http_err(format!("uploading layer {diff_id} to {}/{repo}", client.registry()), &mut resp));
    }
    let url = location(client, &resp, "blob upload")?;
    let (digest, len) = hashed.finish();
    close_upload(client, repo, &url, &digest)?;
    progress.blob(diff_id, BlobEvent::Done);
    Ok(CompressedForm::new(codec.algo, digest, len))
}

/// A request body that keeps the corruption its reader found (the HTTP client reports
/// only that the body broke off).
struct Watched<'a> {
    inner: &'a mut (dyn Read + Send),
    corrupt: Option<rbuild_store::verify::CorruptBlob>,
}

impl Read for Watched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| self.corrupt = rbuild_store::verify::CorruptBlob::in_io(e).cloned())
    }
}
