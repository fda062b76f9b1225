//! Pushing an image: every blob is checked with HEAD first, mounted from another
//! repository of the same registry when rbuild knows one that has it, and otherwise
//! uploaded — in one PUT, or in chunks (PATCH with Content-Range, then PUT) when larger
//! than the chunk size. The manifest goes last, so a broken push names nothing; a retry
//! skips what already arrived.

use crate::client::{scope, Body, Client};
use crate::error::{RegistryError, Result};
use crate::progress::{BlobEvent, Progress};
use rbuild_store::archive::{outgoing, ManifestFormat};
use rbuild_store::compress::Compression;
use rbuild_store::{Digest, Image, Reference, Store};
use std::io::Read;

/// How an image leaves for the registry.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    pub format: ManifestFormat,
    /// Layer compression (the store keeps layers uncompressed).
    pub compression: Compression,
    /// Blobs larger than this are uploaded in chunks of this size.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { format: ManifestFormat::Oci, compression: Compression::None, chunk_size: 32 << 20 }
    }
}

const PARALLEL: usize = 3;

/// A blob to upload: where its bytes come from (a stored blob checked against its digest
/// as it streams, so a damaged one is never uploaded whole).
pub(crate) struct OutBlob<'a> {
    pub digest: Digest,
    pub size: u64,
    pub open: Box<dyn Fn() -> Result<Box<dyn Read + Send>> + Sync + 'a>,
}

/// Pushes `image` as `dest`; returns the manifest digest.
pub fn push(
    store: &Store,
    client: &Client,
    image: &Image,
    dest: &Reference,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Digest> {
    let repo = dest.path.as_str();
    progress.status(&format!("Pushing {}", dest.familiar()));
    let out = outgoing(store, image, opts.format, opts.compression)?;
    let mut blobs: Vec<OutBlob<'_>> = out
        .layers
        .iter()
        .map(|l| OutBlob { digest: l.digest, size: l.size, open: Box::new(move || Ok(l.open(store)?)) })
        .collect();
    let cfg = out.config;
    blobs.push(OutBlob {
        digest: cfg,
        size: out.config_size,
        open: Box::new(move || Ok(Box::new(store.open_verified(&cfg)?))),
    });
    upload_blobs(store, client, repo, &blobs, opts.chunk_size, progress).map_err(|e| match e {
        RegistryError::Store(s) => RegistryError::Store(s.in_image(|| rbuild_store::archive::image_label(image))),
        other => other,
    })?;
    let digest = put_manifest(client, repo, &crate::store_ref(dest), &out.manifest, out.manifest_media_type)?;
    progress.status(&format!(
        "{}: digest: {digest} size: {}",
        dest.tag.as_deref().unwrap_or("latest"),
        out.manifest.len()
    ));
    Ok(digest)
}

/// PUT a manifest; returns its digest.
pub(crate) fn put_manifest(
    client: &Client,
    repo: &str,
    reference: &str,
    data: &[u8],
    media_type: &str,
) -> Result<Digest> {
    let url = client.url(&format!("{repo}/manifests/{reference}"));
    let mut resp =
        client.send("PUT", &url, &[scope(repo, true)], &[("Content-Type", media_type)], Body::Bytes(data))?;
    match resp.status().as_u16() {
        200..=299 => Ok(Digest::of(data)),
        s => Err(RegistryError::Http {
            what: format!("PUT manifest {}/{repo}:{reference}", client.registry()),
            status: s,
            detail: crate::client::error_detail(&mut resp),
        }),
    }
}

/// Uploads the blobs a registry lacks, a few at a time; the first error wins.
pub(crate) fn upload_blobs(
    store: &Store,
    client: &Client,
    repo: &str,
    blobs: &[OutBlob<'_>],
    chunk: u64,
    progress: &dyn Progress,
) -> Result<()> {
    crate::for_each_parallel(blobs, PARALLEL, |b| upload_blob(store, client, repo, b, chunk, progress))?;
    let digests: Vec<Digest> = blobs.iter().map(|b| b.digest).collect();
    crate::sources::record(store, client.registry(), repo, &digests);
    Ok(())
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

fn upload_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    b: &OutBlob<'_>,
    chunk: u64,
    progress: &dyn Progress,
) -> Result<()> {
    let d = b.digest;
    let scopes = [scope(repo, true)];
    let head = client.send("HEAD", &client.url(&format!("{repo}/blobs/{d}")), &scopes, &[], Body::Empty)?;
    if head.status().as_u16() == 200 {
        progress.blob(&d, BlobEvent::Exists);
        return Ok(());
    }
    // A cross-repository mount, when a repository of this registry is known to have it.
    let mut upload_url = None;
    for from in crate::sources::repositories(store, client.registry(), &d).into_iter().filter(|r| r != repo) {
        let url = client.url(&format!("{repo}/blobs/uploads/?mount={d}&from={}", crate::client::query_escape(&from)));
        let mount_scopes = [scope(repo, true), scope(&from, false)];
        let mut resp = client.send("POST", &url, &mount_scopes, &[], Body::Bytes(&[]))?;
        match resp.status().as_u16() {
            201 => {
                progress.blob(&d, BlobEvent::Mounted { from: &from });
                return Ok(());
            }
            202 => {
                upload_url = Some(location(client, &resp, "blob mount")?);
                break;
            }
            _ => {
                let _ = crate::client::error_detail(&mut resp);
            }
        }
    }
    let mut url = match upload_url {
        Some(u) => u,
        None => {
            let mut resp =
                client.send("POST", &client.url(&format!("{repo}/blobs/uploads/")), &scopes, &[], Body::Bytes(&[]))?;
            if resp.status().as_u16() != 202 {
                return Err(http_err(format!("starting the upload of {d} to {}/{repo}", client.registry()), &mut resp));
            }
            location(client, &resp, "blob upload")?
        }
    };
    let mut file = (b.open)()?;
    progress.blob(&d, BlobEvent::Start { total: b.size });
    let what = format!("uploading {d} to {}/{repo}", client.registry());
    if b.size <= chunk {
        // A damaged blob's reader fails before its last bytes: the upload is cut short,
        // and the error says which blob it was.
        let mut watched = Watched { inner: &mut *file, corrupt: None };
        let r = client.send(
            "PUT",
            &with_query(&url, &format!("digest={d}")),
            &scopes,
            &[("Content-Type", "application/octet-stream")],
            Body::Reader(&mut watched, b.size),
        );
        if let Some(c) = watched.corrupt {
            return Err(rbuild_store::StoreError::Corrupt(c).into());
        }
        let mut resp = r?;
        if resp.status().as_u16() != 201 {
            return Err(http_err(what, &mut resp));
        }
    } else {
        // Each chunk streams from the blob as it is sent (reading, checking and sending
        // overlap; nothing is buffered whole).
        let mut watched = Watched { inner: &mut *file, corrupt: None };
        let mut start = 0u64;
        while start < b.size {
            let len = chunk.min(b.size - start);
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
            progress.blob(&d, BlobEvent::Bytes { done: start, total: b.size });
        }
        // The whole blob went: its last read checked the digest.
        if watched.read(&mut [0u8; 1]).map_err(|e| RegistryError::transport(format!("reading blob {d}"), e))? != 0 {
            return Err(RegistryError::bad(&what, "the blob grew while it was sent"));
        }
        if start != b.size {
            return Err(RegistryError::bad(
                what,
                format!("the blob changed while it was sent ({start} of {} bytes)", b.size),
            ));
        }
        let mut resp = client.send(
            "PUT",
            &with_query(&url, &format!("digest={d}")),
            &scopes,
            &[("Content-Type", "application/octet-stream")],
            Body::Bytes(&[]),
        )?;
        if resp.status().as_u16() != 201 {
            return Err(http_err(what, &mut resp));
        }
    }
    progress.blob(&d, BlobEvent::Done);
    Ok(())
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
