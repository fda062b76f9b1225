//! Pushing an image: its layers (compressed with gzip by default, as docker's push does),
//! then its config, then the manifest — so a broken push names nothing and a retry skips
//! what already arrived.
//!
//! A layer whose compressed form a registry already has (recorded by an earlier push or
//! pull, see [`rbuild_store::compressed`]) is found with HEAD or mounted from another
//! repository: it is neither compressed nor uploaded again. Otherwise it is compressed on
//! every core as it streams to the registry ([`crate::upload`]).

use crate::client::{scope, Body, Client};
use crate::error::{RegistryError, Result};
use crate::progress::Progress;
use crate::upload::{presence, upload_blob, upload_compressed, OutBlob, Presence};
use rbuild_store::archive::{check_format, image_manifest, LayerOut, ManifestFormat};
use rbuild_store::compress::{Codec, Compression};
use rbuild_store::{Digest, Image, LayerRef, Reference, Store};
use std::collections::HashMap;
use std::sync::Mutex;

/// How an image leaves for the registry.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    pub format: ManifestFormat,
    /// Layer compression on the wire (the store keeps layers uncompressed); gzip by
    /// default, as docker's.
    pub compression: Compression,
    /// Uncompressed blobs larger than this are uploaded in chunks of this size.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { format: ManifestFormat::Oci, compression: Compression::Gzip, chunk_size: 32 << 20 }
    }
}

/// Blobs sent at the same time (docker's default `max-concurrent-uploads` is 5; each
/// compressed layer also uses every core).
const PARALLEL: usize = 3;

/// Pushes `image` as `dest`; returns the manifest digest.
pub fn push(
    store: &Store,
    client: &Client,
    image: &Image,
    dest: &Reference,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<Digest> {
    check_format(opts.format, opts.compression)?;
    let codec = match opts.compression {
        Compression::None => None,
        Compression::Gzip => Some(Codec::GZIP),
        Compression::Zstd => Some(Codec::ZSTD),
        other => return Err(RegistryError::Unsupported(format!("{} layers cannot be pushed", other.name()))),
    };
    let repo = dest.path.as_str();
    progress.status(&format!("Pushing {}", dest.familiar()));
    let label = || rbuild_store::archive::image_label(image);
    let in_image = |e: RegistryError| match e {
        RegistryError::Store(s) => RegistryError::Store(s.in_image(label)),
        other => other,
    };
    let mut uniq: Vec<LayerRef> = Vec::new();
    for l in &image.layers {
        if !uniq.iter().any(|u| u.diff_id == l.diff_id) {
            uniq.push(l.clone());
        }
    }
    // The largest first, so the last to finish is not the one that started last.
    uniq.sort_by_key(|l| std::cmp::Reverse(l.size));
    let sent: Mutex<HashMap<Digest, LayerOut>> = Mutex::new(HashMap::new());
    crate::for_each_parallel(&uniq, PARALLEL, |l| {
        let out = push_layer(store, client, repo, l, codec, opts.chunk_size, progress)?;
        sent.lock().unwrap_or_else(|p| p.into_inner()).insert(l.diff_id, out);
        Ok(())
    })
    .map_err(in_image)?;
    let sent = sent.into_inner().unwrap_or_else(|p| p.into_inner());
    let cfg = image.config_digest;
    let config = OutBlob {
        digest: cfg,
        size: image.manifest.config().size(),
        open: Box::new(move || Ok(Box::new(store.open_verified(&cfg)?))),
    };
    upload_blob(store, client, repo, &config, opts.chunk_size, progress).map_err(in_image)?;
    let digests: Vec<Digest> = sent.values().map(|o| o.digest).chain([cfg]).collect();
    crate::sources::record(store, client.registry(), repo, &digests);
    let manifest = image_manifest(image, |d| sent[d], opts.format)?;
    let digest = put_manifest(client, repo, &crate::store_ref(dest), &manifest, opts.format.media_type())?;
    progress.status(&format!("{}: digest: {digest} size: {}", dest.tag.as_deref().unwrap_or("latest"), manifest.len()));
    Ok(digest)
}

/// One layer: its uncompressed blob, or a compressed form the registry has or can mount,
/// or a new compressed form, streamed (and remembered for the next push).
fn push_layer(
    store: &Store,
    client: &Client,
    repo: &str,
    l: &LayerRef,
    codec: Option<Codec>,
    chunk: u64,
    progress: &dyn Progress,
) -> Result<LayerOut> {
    let Some(codec) = codec else {
        let d = l.diff_id;
        let blob = OutBlob { digest: d, size: l.size, open: Box::new(move || Ok(Box::new(store.open_verified(&d)?))) };
        upload_blob(store, client, repo, &blob, chunk, progress)?;
        return Ok(LayerOut { media_type: rbuild_store::config::MEDIA_TYPE_LAYER, digest: d, size: l.size });
    };
    let media_type = codec.algo.layer_media_type().unwrap_or(rbuild_store::config::MEDIA_TYPE_LAYER_GZIP);
    for form in store.compressed_forms(&l.diff_id).into_iter().filter(|f| f.is(codec.algo)) {
        match presence(store, client, repo, &form.digest, progress)? {
            Presence::There => return Ok(LayerOut { media_type, digest: form.digest, size: form.size }),
            // A session a refused mount opened is left to expire, as docker leaves it.
            Presence::Upload(_) => {}
        }
    }
    let form = upload_compressed(store, client, repo, &l.diff_id, l.size, codec, progress)?;
    let out = LayerOut { media_type, digest: form.digest, size: form.size };
    store.record_compressed_form(&l.diff_id, form)?;
    Ok(out)
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
