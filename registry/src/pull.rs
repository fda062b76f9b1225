//! Pulling an image: the manifest (through an index, the linux/amd64 image), the config,
//! then the layers in parallel, each checked against its digest and size as it streams
//! and against the config's diff_id once decompressed. Nothing is named until every
//! blob is stored and every layer unpacked, so a broken pull leaves no image behind.

use crate::client::{scope, Body, Client, MANIFEST_ACCEPT};
use crate::error::{RegistryError, Result};
use crate::progress::{BlobEvent, Counting, Progress};
use rbuild_store::compress::Compression;
use rbuild_store::config::{self, ImageConfig};
use rbuild_store::{Digest, Image, Reference, Store};
use serde_json::Value;
use std::io::Read;

/// Manifests larger than this are refused (the spec suggests 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;
/// Layers fetched at the same time.
const PARALLEL: usize = 3;

/// What a pull produced.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    /// The registry's manifest digest (of the image manifest, or of the index).
    pub digest: Digest,
}

/// A manifest as fetched: its bytes, digest and media type.
pub(crate) struct Fetched {
    pub data: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
}

fn parse_digest(v: Option<&Value>, what: &str) -> Result<Digest> {
    let s = v.and_then(|d| d.as_str()).ok_or_else(|| RegistryError::bad(what, "no digest"))?;
    s.parse::<Digest>().map_err(|e| RegistryError::Unsupported(format!("{what}: {e}")))
}

fn parse_size(v: Option<&Value>, what: &str) -> Result<u64> {
    v.and_then(|s| s.as_u64()).ok_or_else(|| RegistryError::bad(what, "no size"))
}

/// GET a manifest by tag or digest; checks the digest when asked by digest.
pub(crate) fn get_manifest(
    client: &Client,
    repo: &str,
    reference: &str,
    want: Option<(&Digest, Option<u64>)>,
) -> Result<Fetched> {
    let url = client.url(&format!("{repo}/manifests/{reference}"));
    let mut resp = client.send("GET", &url, &[scope(repo, false)], &[("Accept", MANIFEST_ACCEPT)], Body::Empty)?;
    let status = resp.status().as_u16();
    let shown = format!("{}/{repo}:{reference}", client.registry()).replace(":sha256:", "@sha256:");
    if status == 404 {
        return Err(RegistryError::NotFound {
            what: format!("manifest for {shown}"),
            detail: format!(" {}", crate::client::error_detail(&mut resp)).trim_end().to_string(),
        });
    }
    if status != 200 {
        return Err(RegistryError::Http {
            what: format!("GET manifest {shown}"),
            status,
            detail: crate::client::error_detail(&mut resp),
        });
    }
    let header_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut data = Vec::new();
    client
        .download(resp.body_mut().with_config().limit(MAX_MANIFEST).reader())
        .read_to_end(&mut data)
        .map_err(|e| RegistryError::transport(format!("reading manifest {shown}"), e))?;
    let digest = Digest::of(&data);
    if let Some((d, size)) = want {
        if *d != digest {
            return Err(rbuild_store::StoreError::DigestMismatch {
                what: format!("manifest {shown}"),
                expected: *d,
                actual: digest,
            }
            .into());
        }
        if let Some(s) = size.filter(|s| *s != data.len() as u64) {
            return Err(rbuild_store::StoreError::SizeMismatch {
                what: format!("manifest {shown}"),
                expected: s,
                actual: data.len() as u64,
            }
            .into());
        }
    }
    let v: Value =
        serde_json::from_slice(&data).map_err(|e| RegistryError::bad(format!("manifest {shown}"), e.to_string()))?;
    let media_type = v.get("mediaType").and_then(|m| m.as_str()).map(String::from).unwrap_or(header_type);
    Ok(Fetched { data, digest, media_type })
}

/// GET a blob as a stream.
pub(crate) fn get_blob(
    client: &Client,
    repo: &str,
    digest: &Digest,
) -> Result<crate::client::Download<ureq::BodyReader<'static>>> {
    let url = client.url(&format!("{repo}/blobs/{digest}"));
    let mut resp = client.send("GET", &url, &[scope(repo, false)], &[], Body::Empty)?;
    match resp.status().as_u16() {
        200 => Ok(client.download(resp.into_body().into_reader())),
        404 => Err(RegistryError::NotFound {
            what: format!("blob {digest} in {}/{repo}", client.registry()),
            detail: String::new(),
        }),
        s => Err(RegistryError::Http {
            what: format!("GET blob {digest}"),
            status: s,
            detail: crate::client::error_detail(&mut resp),
        }),
    }
}

/// Stores a small blob (a config) fetched from the registry, checked.
pub(crate) fn fetch_small_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    digest: &Digest,
    size: u64,
) -> Result<Vec<u8>> {
    if size > rbuild_store::config::MAX_CONFIG_SIZE as u64 {
        return Err(RegistryError::bad(format!("blob {digest}"), format!("{size} bytes is too large for a config")));
    }
    if !store.has_blob(digest) {
        let mut r = get_blob(client, repo, digest)?;
        rbuild_store::store::ingest_blob(store, &mut r, digest, size)
            .map_err(|e| wrap_transfer(e, &format!("fetching {digest}")))?;
    }
    Ok(store.read_blob(digest)?)
}

/// A broken connection while streaming surfaces as a store I/O error: say what it was.
pub(crate) fn wrap_transfer(e: rbuild_store::StoreError, what: &str) -> RegistryError {
    match e {
        rbuild_store::StoreError::Io { source, .. } if source.kind() != std::io::ErrorKind::StorageFull => {
            RegistryError::transport(what, source)
        }
        other => other.into(),
    }
}

fn platform_of(m: &Value) -> String {
    let p = m.get("platform");
    let g = |k: &str| p.and_then(|p| p.get(k)).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    format!("{}/{}", g("os"), g("architecture"))
}

/// The image manifest for linux/amd64: `m` itself, or its entry in an index.
fn resolve_platform(client: &Client, repo: &str, m: Fetched) -> Result<Fetched> {
    let is_index =
        |f: &Fetched| f.media_type == config::MEDIA_TYPE_INDEX || f.media_type == config::DOCKER_MANIFEST_LIST;
    if !is_index(&m) {
        return Ok(m);
    }
    let v: Value = serde_json::from_slice(&m.data).map_err(|e| RegistryError::bad("image index", e.to_string()))?;
    let list = v.get("manifests").and_then(|l| l.as_array()).cloned().unwrap_or_default();
    let pick = list.iter().find(|e| platform_of(e) == "linux/amd64").ok_or_else(|| {
        let have: Vec<String> = list.iter().map(platform_of).collect();
        RegistryError::Unsupported(format!("no linux/amd64 image in the index (it has: {})", have.join(", ")))
    })?;
    let d = parse_digest(pick.get("digest"), "index entry")?;
    let size = pick.get("size").and_then(|s| s.as_u64());
    let sub = get_manifest(client, repo, &d.to_string(), Some((&d, size)))?;
    if is_index(&sub) {
        return Err(RegistryError::Unsupported("nested image indexes are not supported".into()));
    }
    Ok(sub)
}

/// Pulls `reference` into the store and names it; returns the image.
pub fn pull(store: &Store, client: &Client, reference: &Reference, progress: &dyn Progress) -> Result<Pulled> {
    let repo = reference.path.as_str();
    let _gc = store.gc_guard()?;
    progress.status(&format!("Pulling {}", reference.familiar()));
    let top = get_manifest(client, repo, &crate::fetch_ref(reference), reference.digest.as_ref().map(|d| (d, None)))?;
    let top_digest = top.digest;
    let m = resolve_platform(client, repo, top)?;
    let v: Value = serde_json::from_slice(&m.data).map_err(|e| RegistryError::bad("manifest", e.to_string()))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        return Err(RegistryError::Unsupported(format!(
            "{}: schema 1 manifests are not supported",
            reference.familiar()
        )));
    }
    if m.media_type != config::MEDIA_TYPE_MANIFEST && m.media_type != config::DOCKER_MANIFEST {
        return Err(RegistryError::Unsupported(format!(
            "{}: manifest media type {:?} is not an image",
            reference.familiar(),
            m.media_type
        )));
    }
    let cfg_desc = v.get("config").ok_or_else(|| RegistryError::bad("manifest", "no config"))?;
    let cfg_media = cfg_desc.get("mediaType").and_then(|s| s.as_str()).unwrap_or_default();
    if cfg_media != config::MEDIA_TYPE_CONFIG && cfg_media != config::DOCKER_CONFIG {
        return Err(RegistryError::Unsupported(format!(
            "{} is not a container image (config media type {cfg_media:?})",
            reference.familiar()
        )));
    }
    let cfg_digest = parse_digest(cfg_desc.get("digest"), "config")?;
    let cfg_size = parse_size(cfg_desc.get("size"), "config")?;
    let cfg_bytes = fetch_small_blob(store, client, repo, &cfg_digest, cfg_size)?;
    let cfg = ImageConfig::from_json(&cfg_bytes)
        .map_err(|e| RegistryError::bad(format!("image config {cfg_digest}"), e.to_string()))?;
    let layers = v.get("layers").and_then(|l| l.as_array()).cloned().unwrap_or_default();
    if layers.len() != cfg.rootfs.diff_ids.len() {
        return Err(RegistryError::bad(
            format!("image {}", reference.familiar()),
            format!("the manifest has {} layers, the config {}", layers.len(), cfg.rootfs.diff_ids.len()),
        ));
    }
    let mut work: Vec<(Digest, u64, Digest)> = Vec::new();
    let mut forms = Vec::new();
    for (l, diff_id) in layers.iter().zip(&cfg.rootfs.diff_ids) {
        if l.get("urls").is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty())) {
            return Err(RegistryError::Unsupported(
                "layers with external urls (foreign layers) are not supported".into(),
            ));
        }
        let (raw, size) = (parse_digest(l.get("digest"), "layer")?, parse_size(l.get("size"), "layer")?);
        work.push((raw, size, *diff_id));
        let media = l.get("mediaType").and_then(|m| m.as_str()).unwrap_or_default();
        if let Some(c @ (Compression::Gzip | Compression::Zstd)) = Compression::of_layer_media_type(media) {
            forms.push((*diff_id, rbuild_store::CompressedForm::new(c, raw, size)));
        }
    }
    let diff_ids: Vec<Digest> = work.iter().map(|w| w.2).collect();
    // The largest first, so the last to finish is not the one that started last.
    work.sort_by_key(|w| std::cmp::Reverse(w.1));
    fetch_layers(store, client, repo, &work, progress)?;
    // The blobs are on disk (each fsynced as it was stored); the unpacked snapshots are
    // not waited for, as docker's overlay2 and containerd's unpacker do not wait for them
    // (containerd syncs only when `sync_fs` is set): they stay on the unsynced list, so
    // after a crash they are dropped and made again from their blobs — never half there.
    // A `syncfs` here waited 0.05-1.5 s for the disk, and for every other writer's data.
    // A push of these layers back to this registry finds them by these digests.
    for (diff_id, form) in forms {
        store.record_compressed_form(&diff_id, form)?;
    }
    let image = store.image_from_config(cfg_digest, &diff_ids)?;
    store.set_name(reference, image.manifest_digest, image.manifest_size)?;
    let blobs: Vec<Digest> = work.iter().map(|w| w.0).chain([cfg_digest]).collect();
    crate::sources::record(store, client.registry(), repo, &blobs);
    progress.status(&format!("Digest: {top_digest}"));
    let mut image = image;
    image.names = vec![reference.clone()];
    Ok(Pulled { image, digest: top_digest })
}

/// Fetches `(blob digest, size, diff_id)` layers, a few at a time; the first error wins.
pub(crate) fn fetch_layers(
    store: &Store,
    client: &Client,
    repo: &str,
    work: &[(Digest, u64, Digest)],
    progress: &dyn Progress,
) -> Result<()> {
    crate::for_each_parallel(work, PARALLEL, |(raw, size, diff_id)| {
        fetch_layer(store, client, repo, raw, *size, diff_id, progress)
    })
}

fn fetch_layer(
    store: &Store,
    client: &Client,
    repo: &str,
    raw: &Digest,
    size: u64,
    diff_id: &Digest,
    progress: &dyn Progress,
) -> Result<()> {
    if store.has_blob(diff_id) {
        store.ensure_snapshot(diff_id)?;
        progress.blob(raw, BlobEvent::Exists);
        return Ok(());
    }
    let body = get_blob(client, repo, raw)?;
    let mut r = Counting::new(body, *raw, size, progress);
    store.ingest_layer(&mut r, raw, size, diff_id).map_err(|e| wrap_transfer(e, &format!("fetching layer {raw}")))?;
    progress.blob(raw, BlobEvent::Done);
    Ok(())
}
