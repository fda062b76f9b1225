//! The build cache beyond one machine: `--cache-to` writes the cache records a build used
//! and the layers they need as one artifact (an OCI manifest with an rbuild cache config)
//! to a registry tag or to an OCI layout directory; `--cache-from` reads the records back
//! and fetches a record's layers only when a build hits it.

use crate::client::{Client, ClientOptions};
use crate::error::{RegistryError, Result};
use crate::progress::Progress;
use crate::pull::{fetch_small_blob, get_blob, get_manifest, wrap_transfer};
use crate::push::{put_manifest, upload_blobs, PushOptions};
use crate::upload::OutBlob;
use rbuild_store::{
    CacheArtifact, CacheConfig, CacheMountEntry, CacheRecord, Digest, Reference, Store, MEDIA_TYPE_CACHE_CONFIG,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a cache goes to or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// `type=registry,ref=R`
    Registry(Reference),
    /// `type=local,dest=DIR` / `type=local,src=DIR`: an OCI layout directory.
    Local(PathBuf),
}

impl std::fmt::Display for CacheLocation {
    /// The registry reference as users write it, or the directory.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheLocation::Registry(r) => f.write_str(&r.familiar()),
            CacheLocation::Local(d) => write!(f, "{}", d.display()),
        }
    }
}

/// The annotation naming the cache manifest in a local layout's index.json.
const LOCAL_REF: &str = "rbuild-cache";

/// Writes `art` (already in the store) to `to`.
pub fn export(
    store: &Store,
    art: &CacheArtifact,
    to: &CacheLocation,
    opts: &ClientOptions,
    progress: &dyn Progress,
) -> Result<()> {
    let mut all: Vec<(Digest, u64)> = art.blobs.clone();
    all.push((art.config, art.config_size));
    match to {
        CacheLocation::Registry(r) => {
            let client = Client::new(&r.domain, opts)?;
            let blobs: Vec<OutBlob<'_>> = all
                .iter()
                .map(|(d, size)| {
                    let d = *d;
                    OutBlob { digest: d, size: *size, open: Box::new(move || Ok(Box::new(store.open_verified(&d)?))) }
                })
                .collect();
            upload_blobs(store, &client, &r.path, &blobs, PushOptions::default().chunk_size, progress)?;
            let manifest = store.read_blob(&art.manifest)?;
            put_manifest(&client, &r.path, &crate::store_ref(r), &manifest, rbuild_store::config::MEDIA_TYPE_MANIFEST)?;
            Ok(())
        }
        CacheLocation::Local(dir) => export_local(store, art, &all, dir),
    }
}

fn io_err(what: &str, p: &Path, e: std::io::Error) -> RegistryError {
    rbuild_store::StoreError::io(format!("{what} {}", p.display()), e).into()
}

fn export_local(store: &Store, art: &CacheArtifact, blobs: &[(Digest, u64)], dir: &Path) -> Result<()> {
    let digests: Vec<Digest> = blobs.iter().map(|(d, _)| *d).collect();
    let manifest = (art.manifest, art.manifest_size);
    let media = rbuild_store::config::MEDIA_TYPE_MANIFEST;
    Ok(rbuild_store::layout::export_layout(store, &digests, manifest, media, LOCAL_REF, dir)?)
}

enum Source {
    Registry { client: Box<Client>, repo: String },
    Local(PathBuf),
}

/// An imported cache: its records, and where to fetch their blobs.
pub struct CacheImport {
    name: String,
    records: HashMap<String, CacheRecord>,
    mounts: Vec<CacheMountEntry>,
    journal: Option<serde_json::Value>,
    sizes: HashMap<Digest, u64>,
    source: Source,
}

impl std::fmt::Debug for CacheImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheImport({}, {} records)", self.name, self.records.len())
    }
}

fn parse_cache_manifest(data: &[u8], what: &str) -> Result<(Digest, u64, HashMap<Digest, u64>)> {
    let v: Value = serde_json::from_slice(data).map_err(|e| RegistryError::bad(what, e.to_string()))?;
    let cfg = v.get("config").ok_or_else(|| RegistryError::bad(what, "no config"))?;
    let media = cfg.get("mediaType").and_then(|m| m.as_str()).unwrap_or_default();
    if media != MEDIA_TYPE_CACHE_CONFIG {
        return Err(RegistryError::Unsupported(format!(
            "{what} is not an rbuild build cache (config media type {media:?})"
        )));
    }
    let digest = |v: &Value| -> Result<Digest> {
        v.get("digest")
            .and_then(|d| d.as_str())
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| RegistryError::bad(what, "a descriptor without a sha256 digest"))
    };
    let size = |v: &Value| -> Result<u64> {
        v.get("size").and_then(|s| s.as_u64()).ok_or_else(|| RegistryError::bad(what, "a descriptor without a size"))
    };
    let mut sizes = HashMap::new();
    for l in v.get("layers").and_then(|l| l.as_array()).into_iter().flatten() {
        sizes.insert(digest(l)?, size(l)?);
    }
    Ok((digest(cfg)?, size(cfg)?, sizes))
}

impl CacheImport {
    /// Reads the records of the cache at `from` (its layers stay where they are).
    pub fn open(store: &Store, from: &CacheLocation, opts: &ClientOptions) -> Result<CacheImport> {
        match from {
            CacheLocation::Registry(r) => {
                // This client fetches layers lazily for as long as the build runs: the
                // minimum rate guards each download, a pull's deadline would not fit.
                let opts = ClientOptions { pull_timeout: None, ..opts.clone() };
                let client = Client::new(&r.domain, &opts)?;
                let m = get_manifest(&client, &r.path, &crate::fetch_ref(r), r.digest.as_ref().map(|d| (d, None)))?;
                let (cfg, cfg_size, sizes) = parse_cache_manifest(&m.data, &format!("cache {}", r.familiar()))?;
                let cfg_bytes = fetch_small_blob(store, &client, &r.path, &cfg, cfg_size)?;
                let config = CacheConfig::from_json(&cfg_bytes)?;
                Ok(CacheImport::new(
                    r.familiar(),
                    config,
                    sizes,
                    Source::Registry { client: Box::new(client), repo: r.path.clone() },
                ))
            }
            CacheLocation::Local(dir) => {
                let what = format!("cache {}", dir.display());
                let index_path = dir.join("index.json");
                let index: Value =
                    serde_json::from_slice(&std::fs::read(&index_path).map_err(|e| io_err("reading", &index_path, e))?)
                        .map_err(|e| RegistryError::bad(&what, format!("index.json: {e}")))?;
                let entries = index.get("manifests").and_then(|m| m.as_array()).cloned().unwrap_or_default();
                let named = |e: &&Value| {
                    e.pointer("/annotations/org.opencontainers.image.ref.name").and_then(|n| n.as_str())
                        == Some(LOCAL_REF)
                };
                let entry = entries
                    .iter()
                    .find(named)
                    .or(entries.first())
                    .ok_or_else(|| RegistryError::bad(&what, "index.json lists no manifest"))?;
                let md: Digest = entry
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| RegistryError::bad(&what, "index.json: a manifest without a sha256 digest"))?;
                let data = read_local_blob(dir, &md, None)?;
                let (cfg, cfg_size, sizes) = parse_cache_manifest(&data, &what)?;
                let config = CacheConfig::from_json(&read_local_blob(dir, &cfg, Some(cfg_size))?)?;
                Ok(CacheImport::new(dir.display().to_string(), config, sizes, Source::Local(dir.clone())))
            }
        }
    }

    fn new(name: String, config: CacheConfig, sizes: HashMap<Digest, u64>, source: Source) -> CacheImport {
        let records = config.records.into_iter().map(|r| (r.key.clone(), r)).collect();
        CacheImport { name, records, mounts: config.mounts, journal: config.journal, sizes, source }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The record for `key`, with its blobs fetched into the store and the record stored
    /// there too; None when this cache does not have the key.
    pub fn fetch(&self, store: &Store, key: &str, progress: &dyn Progress) -> Result<Option<CacheRecord>> {
        let Some(rec) = self.records.get(key) else { return Ok(None) };
        let _gc = store.gc_guard()?;
        for d in &rec.refs {
            self.fetch_layer(store, d, &format!("record {key}"), progress)?;
        }
        store.cache_put(rec)?;
        Ok(Some(rec.clone()))
    }

    /// The journal of the build that exported this cache (the builder's to read).
    pub fn journal(&self) -> Option<&serde_json::Value> {
        self.journal.as_ref()
    }

    /// The cache mounts this cache carries.
    pub fn mounts(&self) -> &[CacheMountEntry] {
        &self.mounts
    }

    /// The layer of cache mount `id`, fetched into the store; None when this cache does
    /// not carry that mount.
    pub fn fetch_mount(&self, store: &Store, id: &str, progress: &dyn Progress) -> Result<Option<Digest>> {
        let Some(m) = self.mounts.iter().find(|m| m.id == id) else { return Ok(None) };
        let _gc = store.gc_guard()?;
        self.fetch_layer(store, &m.layer, &format!("cache mount {id}"), progress)?;
        Ok(Some(m.layer))
    }

    /// Brings the layer `d` (which `what` needs) into the store unless it is there.
    fn fetch_layer(&self, store: &Store, d: &Digest, what: &str, progress: &dyn Progress) -> Result<()> {
        if store.has_blob(d) {
            return Ok(());
        }
        let size = *self.sizes.get(d).ok_or_else(|| {
            RegistryError::bad(
                format!("cache {}", self.name),
                format!("{what} needs {d}, which the cache does not carry"),
            )
        })?;
        match &self.source {
            Source::Registry { client, repo } => {
                let body = get_blob(client, repo, d)?;
                let mut r = crate::progress::Counting::new(body, *d, size, progress);
                store
                    .ingest_layer(&mut r, d, size, d)
                    .map_err(|e| wrap_transfer(e, &format!("fetching cached layer {d}")))?;
            }
            Source::Local(dir) => {
                let p = dir.join("blobs/sha256").join(d.hex());
                let mut f = std::fs::File::open(&p).map_err(|e| io_err("reading", &p, e))?;
                store.ingest_layer(&mut f, d, size, d)?;
            }
        }
        progress.blob(d, crate::progress::BlobEvent::Done);
        Ok(())
    }
}

/// A small blob of a local layout, checked against its digest (and size).
fn read_local_blob(dir: &Path, d: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
    let p = dir.join("blobs/sha256").join(d.hex());
    let meta = std::fs::metadata(&p).map_err(|e| io_err("reading", &p, e))?;
    if meta.len() > 64 << 20 {
        return Err(RegistryError::bad(p.display().to_string(), "too large for a manifest or config"));
    }
    let data = std::fs::read(&p).map_err(|e| io_err("reading", &p, e))?;
    if let Some(s) = size.filter(|s| *s != data.len() as u64) {
        return Err(rbuild_store::StoreError::SizeMismatch {
            what: format!("blob {d}"),
            expected: s,
            actual: data.len() as u64,
        }
        .into());
    }
    let got = Digest::of(&data);
    if got != *d {
        return Err(rbuild_store::StoreError::DigestMismatch {
            what: format!("blob {}", p.display()),
            expected: *d,
            actual: got,
        }
        .into());
    }
    Ok(data)
}
