//! Images into the store: `load` (docker-archive and oci-archive, plain or compressed) and
//! `import` (a rootfs tarball).
//!
//! Loading streams every file of the archive into the blob store as it arrives (the
//! manifest usually comes last), decompressing layers on the way, then checks every layer
//! against the config's diff_ids and unpacks it before any name is set: a bad archive
//! leaves only unreferenced blobs, which prune removes.

use super::DockerManifest;
use crate::compress;
use crate::config::{self, History, ImageConfig};
use crate::digest::{Digest, HashingReader};
use crate::error::{Result, StoreError};
use crate::image::{from_oci_digest, set_name_in, Image, LayerRef};
use crate::reference::Reference;
use crate::store::{copy_to_blob, Store};
use crate::tar::{self, EntryKind};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

/// A file of the archive after streaming it into the store.
#[derive(Debug, Clone, Copy)]
struct Stored {
    /// Digest of the bytes as they were in the archive.
    raw: Digest,
    /// The blob stored (decompressed when the file was compressed).
    blob: Digest,
}

/// What `load` produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub image: Image,
    pub names: Vec<Reference>,
}

const SMALL_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];
const MAX_SMALL: u64 = 64 << 20;

fn clean_path(p: &[u8]) -> String {
    let s = String::from_utf8_lossy(p);
    let parts: Vec<&str> = s.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    parts.join("/")
}

fn resolve_link(path: &str, target: &str) -> String {
    if let Some(abs) = target.strip_prefix('/') {
        return clean_path(abs.as_bytes());
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Everything an archive held, once streamed: its blobs in the store, its small
/// metadata files in memory, its links by path.
#[derive(Default)]
struct ArchiveFiles {
    files: HashMap<String, Stored>,
    small: HashMap<String, Vec<u8>>,
    links: HashMap<String, String>,
}

impl ArchiveFiles {
    /// Streams the archive: the metadata files kept, every other file into the blob store.
    fn read(store: &Store, r: &mut dyn Read) -> Result<ArchiveFiles> {
        let (_, r) = compress::decompressed(r)?;
        let mut t = tar::Reader::new(r);
        let mut out = ArchiveFiles::default();
        while let Some(e) = t.next_entry().map_err(|e| StoreError::archive(format!("{e}")))? {
            let path = clean_path(&e.path);
            match e.kind {
                EntryKind::File if SMALL_FILES.contains(&path.as_str()) => {
                    if e.size > MAX_SMALL {
                        return Err(StoreError::archive(format!("{path} is too large")));
                    }
                    let mut v = Vec::with_capacity(e.size as usize);
                    t.data().read_to_end(&mut v).map_err(|err| StoreError::archive(err.to_string()))?;
                    out.small.insert(path, v);
                }
                EntryKind::File => {
                    let stored = store_file(store, &path, &mut t.data())?;
                    out.files.insert(path, stored);
                }
                EntryKind::Symlink | EntryKind::Hardlink => {
                    let target = String::from_utf8_lossy(&e.link).to_string();
                    let resolved = if e.kind == EntryKind::Symlink {
                        resolve_link(&path, &target)
                    } else {
                        clean_path(target.as_bytes())
                    };
                    out.links.insert(path, resolved);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The stored file at `p`, through up to 16 links.
    fn lookup(&self, p: &str) -> Result<Stored> {
        let mut p = clean_path(p.as_bytes());
        for _ in 0..16 {
            if let Some(s) = self.files.get(&p) {
                return Ok(*s);
            }
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(StoreError::archive(format!("{p} is named by the manifest but not in the archive")))
    }
}

/// One file of the archive into the blob store, decompressed if it is compressed.
fn store_file(store: &Store, path: &str, data: &mut dyn Read) -> Result<Stored> {
    let mut raw = HashingReader::new(data);
    let (_, mut inner) = compress::decompressed(&mut raw)?;
    let (blob, _) = copy_to_blob(store, &mut inner, None, None).map_err(|err| match err {
        StoreError::Io { source, .. } if source.kind() != io::ErrorKind::StorageFull => {
            StoreError::archive(format!("{path}: {source}"))
        }
        other => other,
    })?;
    drop(inner);
    // Read what the decompressor left (padding of a compressed stream).
    io::copy(&mut raw, &mut io::sink()).map_err(|err| StoreError::archive(err.to_string()))?;
    let (raw, _) = raw.finish();
    Ok(Stored { raw, blob })
}

/// Loads every image of a docker-archive or OCI archive (optionally compressed).
pub fn load(store: &Store, r: &mut dyn Read) -> Result<Vec<Loaded>> {
    let _gc = store.gc_guard()?;
    let files = ArchiveFiles::read(store, r)?;
    let mut out = if let Some(m) = files.small.get("manifest.json") {
        docker_images(store, &files, m)?
    } else if let Some(idx) = files.small.get("index.json") {
        oci_images(store, &files, idx)?
    } else {
        return Err(StoreError::archive("not a docker or OCI image archive (no manifest.json or index.json)"));
    };
    if out.is_empty() {
        return Err(StoreError::archive("the archive holds no images"));
    }
    publish(store, &out)?;
    for l in &mut out {
        l.image.names = l.names.clone();
    }
    Ok(out)
}

/// The images a docker-archive's manifest.json lists.
fn docker_images(store: &Store, files: &ArchiveFiles, manifest: &[u8]) -> Result<Vec<Loaded>> {
    let entries: Vec<DockerManifest> =
        serde_json::from_slice(manifest).map_err(|e| StoreError::archive(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let cfg = files.lookup(&e.config)?;
        let layers: Vec<Digest> = e.layers.iter().map(|l| files.lookup(l).map(|s| s.blob)).collect::<Result<_>>()?;
        let names = e.repo_tags.iter().filter_map(|n| Reference::parse(n).ok()).collect();
        out.push(Loaded { image: assemble(store, cfg.blob, &layers)?, names });
    }
    Ok(out)
}

/// The images an OCI layout's index.json lists, one per config (their names gathered).
fn oci_images(store: &Store, files: &ArchiveFiles, index: &[u8]) -> Result<Vec<Loaded>> {
    let index = ImageIndex::from_reader(index).map_err(|e| StoreError::archive(format!("index.json: {e}")))?;
    let mut out: Vec<Loaded> = Vec::new();
    for d in index.manifests() {
        let ann = d.annotations().clone().unwrap_or_default();
        let name = ann
            .get(crate::image::ANNOTATION_IMAGE_NAME)
            .or(ann.get(crate::image::ANNOTATION_REF_NAME))
            .filter(|n| n.contains(['/', ':']))
            .and_then(|n| Reference::parse(n).ok());
        let manifest = oci_manifest_for(d, files, store)?;
        let cfg = files.lookup(&blob_path(manifest.config().digest()))?;
        let mut layers = Vec::new();
        for l in manifest.layers() {
            let s = files.lookup(&blob_path(l.digest()))?;
            if s.raw != from_oci_digest(l.digest())? {
                return Err(StoreError::archive(format!("blob {} does not match its digest", l.digest())));
            }
            layers.push(s.blob);
        }
        match out.iter_mut().find(|l| l.image.config_digest == cfg.blob) {
            Some(l) => l.names.extend(name),
            None => out.push(Loaded { image: assemble(store, cfg.blob, &layers)?, names: name.into_iter().collect() }),
        }
    }
    Ok(out)
}

/// Unpacks (and so validates) every layer of `loaded`, makes it durable, then names the
/// images (an image without a name is kept by its manifest).
fn publish(store: &Store, loaded: &[Loaded]) -> Result<()> {
    let all: Vec<Digest> = loaded
        .iter()
        .flat_map(|l| l.image.layers.iter().map(|x| x.diff_id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    all.par_iter().map(|d| store.ensure_snapshot(d).map(|_| ())).collect::<Result<Vec<()>>>()?;
    store.make_durable(&all)?;
    store.update_index(|entries| {
        for l in loaded {
            if l.names.is_empty() && !entries.iter().any(|e| e.manifest == l.image.manifest_digest) {
                entries.push(crate::image::IndexEntry {
                    manifest: l.image.manifest_digest,
                    size: l.image.manifest_size,
                    name: None,
                });
            }
            for n in &l.names {
                set_name_in(entries, n, l.image.manifest_digest, l.image.manifest_size);
            }
        }
        Ok(())
    })
}

fn blob_path(d: &oci_spec::image::Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.digest())
}

/// The image manifest a descriptor of index.json leads to (through a nested index, the
/// linux/amd64 entry).
fn oci_manifest_for(d: &Descriptor, files: &ArchiveFiles, store: &Store) -> Result<ImageManifest> {
    let mut desc = d.clone();
    for _ in 0..4 {
        let s = files.lookup(&blob_path(desc.digest()))?;
        if s.raw != from_oci_digest(desc.digest())? {
            return Err(StoreError::archive(format!("blob {} does not match its digest", desc.digest())));
        }
        let data = store.read_blob(&s.blob)?;
        let v: serde_json::Value = serde_json::from_slice(&data)
            .map_err(|e| StoreError::archive(format!("manifest {}: {e}", desc.digest())))?;
        let mt = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or_default().to_string();
        if v.get("manifests").is_some() || mt == config::MEDIA_TYPE_INDEX || mt == config::DOCKER_MANIFEST_LIST {
            let idx = ImageIndex::from_reader(data.as_slice())
                .map_err(|e| StoreError::archive(format!("index {}: {e}", desc.digest())))?;
            let pick = idx
                .manifests()
                .iter()
                .find(|m| {
                    m.platform()
                        .as_ref()
                        .is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == "amd64")
                })
                .or(idx.manifests().first())
                .ok_or_else(|| StoreError::archive("an empty image index"))?;
            desc = pick.clone();
            continue;
        }
        return ImageManifest::from_reader(data.as_slice())
            .map_err(|e| StoreError::archive(format!("manifest {}: {e}", desc.digest())));
    }
    Err(StoreError::archive("image indexes nested too deeply"))
}

/// Checks layers against the config and writes the image's manifest.
fn assemble(store: &Store, config: Digest, layers: &[Digest]) -> Result<Image> {
    store.image_from_config(config, layers).map_err(|e| match e {
        StoreError::BadImage(m) => StoreError::archive(m),
        other => other,
    })
}

/// Imports a rootfs tarball (plain or compressed) as a one-layer image with `config`
/// (whose rootfs is replaced). `comment` goes into the history, as docker's does.
pub fn import(
    store: &Store,
    r: &mut dyn Read,
    mut config: ImageConfig,
    comment: &str,
    created: String,
) -> Result<Image> {
    let _gc = store.gc_guard()?;
    let (_, mut r) = compress::decompressed(r)?;
    let (diff_id, size) = copy_to_blob(store, &mut r, None, None)?;
    // Unpacking checks the tarball (hostile entries, truncation) before anything is named.
    store.ensure_snapshot(&diff_id)?;
    store.make_durable(&[diff_id])?;
    config.rootfs = config::RootFs { typ: "layers".into(), diff_ids: vec![diff_id] };
    config.created = Some(created.clone());
    config.history = vec![History { created: Some(created), comment: Some(comment.to_string()), ..Default::default() }];
    config.other.insert("comment".into(), serde_json::Value::String(comment.to_string()));
    store.write_image(&config, &[LayerRef { diff_id, size }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::file_entry;

    fn tar_with(names: &[&str]) -> Vec<u8> {
        let mut w = tar::Writer::new(Vec::new());
        for n in names {
            w.append(&file_entry(n, 0), &mut &b""[..]).unwrap();
        }
        w.finish().unwrap()
    }

    /// Regression (issue 12, 4): `import` (like `load` and `pull`) unpacks the layer in
    /// the store's tmp dir, and a `.wh...` entry deleted everything beside it there: a
    /// concurrent build's step dir went with it. The layer is refused, naming the layer
    /// and the entry; the other temp entries stay.
    #[test]
    fn a_dotdot_whiteout_is_refused_and_the_tmp_dir_survives() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("store")).unwrap();
        let other = store.temp_dir("step").unwrap();
        std::fs::write(other.join("upper"), "a concurrent build's data").unwrap();
        for name in [".wh...", ".wh..", "etc/.wh..."] {
            let tar = tar_with(&["etc/passwd", name]);
            let diff_id = Digest::of(&tar);
            let err = import(&store, &mut tar.as_slice(), ImageConfig::default(), "test", "now".into()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(&diff_id.to_string()), "{name}: {msg}");
            assert_eq!(std::fs::read_to_string(other.join("upper")).unwrap(), "a concurrent build's data", "{name}");
            assert!(!store.snapshot_path(&diff_id).exists());
        }
    }
}
