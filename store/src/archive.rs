//! Images in and out of the store: `save` (docker-archive, oci-archive, oci-dir), `load`
//! (docker-archive and oci-archive, plain or compressed) and `import` (a rootfs tarball).
//!
//! Loading streams every file of the archive into the blob store as it arrives (the
//! manifest usually comes last), decompressing layers on the way, then checks every layer
//! against the config's diff_ids and unpacks it before any name is set: a bad archive
//! leaves only unreferenced blobs, which prune removes.

use crate::compress::{self, Compression};
use crate::config::{self, History, ImageConfig};
use crate::digest::{Digest, HashingReader};
use crate::error::{IoContext, Result, StoreError};
use crate::image::{from_oci_digest, set_name_in, to_oci_digest, Image, LayerRef};
use crate::reference::Reference;
use crate::store::{copy_to_blob, Store};
use crate::tar::{self, Entry, EntryKind};
use crate::verify::io_err;
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder, MediaType};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    DockerArchive,
    OciArchive,
    OciDir,
}

/// An image to save and the names to write for it.
#[derive(Debug, Clone)]
pub struct SaveImage {
    pub image: Image,
    pub names: Vec<Reference>,
}

/// docker's manifest.json entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default, deserialize_with = "nullable")]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn file_entry(path: &str, size: u64) -> Entry {
    let mut e = Entry::new(path, EntryKind::File);
    e.size = size;
    e
}

fn dir_entry(path: &str) -> Entry {
    let mut e = Entry::new(path, EntryKind::Dir);
    e.mode = 0o755;
    e
}

fn put_file<W: Write>(t: &mut tar::Writer<W>, path: &str, data: &[u8]) -> Result<()> {
    t.append(&file_entry(path, data.len() as u64), &mut &data[..]).ctx(|| format!("writing {path} to the archive"))
}

/// A stored blob into the archive, checked against its digest as it streams.
fn put_blob<W: Write>(store: &Store, t: &mut tar::Writer<W>, path: &str, d: &Digest) -> Result<()> {
    let mut f = store.open_verified(d)?;
    t.append(&file_entry(path, f.size()), &mut f).map_err(|e| io_err(|| format!("writing {path} to the archive"), e))
}

/// How an image is named in messages: its first name, else its ID.
pub fn image_label(img: &Image) -> String {
    img.names.first().map(|n| n.familiar()).unwrap_or_else(|| img.config_digest.short())
}

/// A layer as it leaves the store: the stored blob itself, or a compressed temp file
/// (removed on drop).
#[derive(Debug)]
pub struct OutLayer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: &'static str,
    /// A compressed temp file, or None for the stored blob itself.
    file: Option<PathBuf>,
}

impl OutLayer {
    /// The bytes of the layer as they leave the store: the stored blob checked against
    /// its digest as it streams, or the compressed file made from it (made the same way).
    pub fn open(&self, store: &Store) -> Result<Box<dyn Read + Send>> {
        match &self.file {
            None => Ok(Box::new(store.open_verified(&self.digest)?)),
            Some(f) => Ok(Box::new(std::fs::File::open(f).at("reading", f)?)),
        }
    }
}

impl Drop for OutLayer {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The manifest format an image leaves the store in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// OCI image manifest (the store's own form).
    Oci,
    /// Docker image manifest v2, schema 2.
    Docker,
}

impl ManifestFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => config::MEDIA_TYPE_MANIFEST,
            ManifestFormat::Docker => config::DOCKER_MANIFEST,
        }
    }
}

/// Compresses the distinct layers of `images`, in parallel.
pub(crate) fn out_layers(
    store: &Store,
    images: &[&Image],
    compression: Compression,
) -> Result<HashMap<Digest, OutLayer>> {
    let mut uniq: Vec<Digest> = Vec::new();
    for i in images {
        for l in &i.layers {
            if !uniq.contains(&l.diff_id) {
                uniq.push(l.diff_id);
            }
        }
    }
    let made: Vec<Result<(Digest, OutLayer)>> = uniq
        .par_iter()
        .map(|d| -> Result<(Digest, OutLayer)> {
            match compression {
                Compression::None => Ok((
                    *d,
                    OutLayer {
                        digest: *d,
                        size: store.blob_size(d)?,
                        media_type: config::MEDIA_TYPE_LAYER,
                        file: None,
                    },
                )),
                Compression::Gzip | Compression::Zstd => {
                    let (path, file) = crate::store::tempfile_in(&store.tmp_dir())?;
                    let mut guard = OutLayer {
                        digest: *d,
                        size: 0,
                        media_type: config::MEDIA_TYPE_LAYER_GZIP,
                        file: Some(path.clone()),
                    };
                    let src = store.open_verified(d)?;
                    let mut hw = crate::digest::HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file));
                    let (codec, media) = match compression {
                        Compression::Gzip => (compress::Codec::GZIP, config::MEDIA_TYPE_LAYER_GZIP),
                        _ => (compress::Codec::ZSTD, config::MEDIA_TYPE_LAYER_ZSTD),
                    };
                    let mut z = compress::CompressingReader::new(src, codec);
                    io::copy(&mut z, &mut hw).map_err(|e| io_err(|| format!("compressing {}", path.display()), e))?;
                    let (mut bw, digest, size) = hw.finish();
                    bw.flush().at("writing", &path)?;
                    guard.digest = digest;
                    guard.size = size;
                    guard.media_type = media;
                    Ok((*d, guard))
                }
                other => Err(StoreError::BadImage(format!("{other:?} is not a layer compression rbuild writes"))),
            }
        })
        .collect();
    made.into_iter().map(|r| r.map_err(|e| in_image_of(e, images))).collect()
}

/// Names the image (of `images`) that has the corrupt blob `e` is about.
fn in_image_of(e: StoreError, images: &[&Image]) -> StoreError {
    let Some(d) = e.corrupt_blob().map(|c| c.digest) else { return e };
    let has = |i: &&&Image| i.config_digest == d || i.layers.iter().any(|l| l.diff_id == d);
    let label = images.iter().find(has).map(|i| image_label(i)).unwrap_or_else(|| "?".into());
    e.in_image(|| label)
}

/// The manifest of `img` with its layers as `layers` has them, in `format`.
pub(crate) fn manifest_for(img: &Image, layers: &HashMap<Digest, OutLayer>, format: ManifestFormat) -> Result<Vec<u8>> {
    image_manifest(
        img,
        |d| {
            let o = &layers[d];
            LayerOut { media_type: o.media_type, digest: o.digest, size: o.size }
        },
        format,
    )
}

/// A layer as a manifest names it: its blob's media type, digest and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOut {
    /// The OCI media type (turned into docker's for a docker manifest).
    pub media_type: &'static str,
    pub digest: Digest,
    pub size: u64,
}

/// Can a manifest in `format` carry layers compressed with `c`? (docker's has no zstd.)
pub fn check_format(format: ManifestFormat, c: Compression) -> Result<()> {
    match (format, c) {
        (ManifestFormat::Docker, Compression::Zstd) => Err(StoreError::BadImage(format!(
            "a docker manifest cannot carry {} layers (use gzip or none)",
            config::MEDIA_TYPE_LAYER_ZSTD
        ))),
        _ => Ok(()),
    }
}

/// The manifest of `img` in `format`, each layer (by diff_id) as `layer` gives it.
pub fn image_manifest(img: &Image, layer: impl Fn(&Digest) -> LayerOut, format: ManifestFormat) -> Result<Vec<u8>> {
    let docker_media = |m: &'static str| -> Result<&'static str> {
        match m {
            config::MEDIA_TYPE_LAYER => Ok(config::DOCKER_LAYER),
            config::MEDIA_TYPE_LAYER_GZIP => Ok(config::DOCKER_LAYER_GZIP),
            other => {
                Err(StoreError::BadImage(format!("a docker manifest cannot carry {other} layers (use gzip or none)")))
            }
        }
    };
    let cfg_media = match format {
        ManifestFormat::Oci => config::MEDIA_TYPE_CONFIG,
        ManifestFormat::Docker => config::DOCKER_CONFIG,
    };
    let cfg =
        Descriptor::new(MediaType::from(cfg_media), img.manifest.config().size(), to_oci_digest(&img.config_digest));
    let mut ls: Vec<Descriptor> = Vec::new();
    for l in &img.layers {
        let o = layer(&l.diff_id);
        let media = match format {
            ManifestFormat::Oci => o.media_type,
            ManifestFormat::Docker => docker_media(o.media_type)?,
        };
        ls.push(Descriptor::new(MediaType::from(media), o.size, to_oci_digest(&o.digest)));
    }
    let m: ImageManifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(format.media_type()))
        .config(cfg)
        .layers(ls)
        .build()
        .map_err(|e| StoreError::BadImage(e.to_string()))?;
    Ok(m.to_string().map_err(|e| StoreError::BadImage(e.to_string()))?.into_bytes())
}

fn oci_index(entries: &[(Digest, u64, Option<&Reference>)]) -> Result<Vec<u8>> {
    let ds: Vec<Descriptor> = entries
        .iter()
        .map(|(d, size, name)| {
            let mut desc = Descriptor::new(MediaType::ImageManifest, *size, to_oci_digest(d));
            if let Some(n) = name {
                let mut ann = HashMap::new();
                ann.insert(crate::image::ANNOTATION_REF_NAME.to_string(), n.familiar());
                ann.insert(crate::image::ANNOTATION_IMAGE_NAME.to_string(), n.to_string());
                desc.set_annotations(Some(ann));
            }
            desc
        })
        .collect();
    let idx: ImageIndex = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(ds)
        .build()
        .map_err(|e| StoreError::BadImage(e.to_string()))?;
    Ok(idx.to_string().map_err(|e| StoreError::BadImage(e.to_string()))?.into_bytes())
}

/// Writes `images` as an archive to `out`.
pub fn save(
    store: &Store,
    images: &[SaveImage],
    format: SaveFormat,
    compression: Compression,
    out: &mut dyn Write,
) -> Result<()> {
    let all: Vec<&Image> = images.iter().map(|i| &i.image).collect();
    save_unlabelled(store, images, format, compression, out).map_err(|e| in_image_of(e, &all))
}

fn save_unlabelled(
    store: &Store,
    images: &[SaveImage],
    format: SaveFormat,
    compression: Compression,
    out: &mut dyn Write,
) -> Result<()> {
    let mut t = tar::Writer::new(io::BufWriter::with_capacity(1 << 20, out));
    match format {
        SaveFormat::DockerArchive => {
            let mut written = HashSet::new();
            let mut manifest = Vec::new();
            for i in images {
                let mut layer_paths = Vec::new();
                for l in &i.image.layers {
                    let dir = l.diff_id.hex();
                    let p = format!("{dir}/layer.tar");
                    if written.insert(l.diff_id) {
                        t.append_header(&dir_entry(&dir)).ctx(|| "writing the archive".into())?;
                        put_blob(store, &mut t, &p, &l.diff_id)?;
                    }
                    layer_paths.push(p);
                }
                let cfg = format!("{}.json", i.image.config_digest.hex());
                if written.insert(i.image.config_digest) {
                    put_blob(store, &mut t, &cfg, &i.image.config_digest)?;
                }
                let tags = i
                    .names
                    .iter()
                    .filter(|n| n.tag.is_some())
                    .map(|n| n.with_tag(n.tag.as_deref().unwrap_or("latest")).familiar())
                    .collect();
                manifest.push(DockerManifest { config: cfg, repo_tags: tags, layers: layer_paths });
            }
            put_file(&mut t, "manifest.json", &serde_json::to_vec(&manifest).unwrap_or_default())?;
        }
        SaveFormat::OciArchive | SaveFormat::OciDir => {
            let imgs: Vec<&Image> = images.iter().map(|i| &i.image).collect();
            let layers = out_layers(store, &imgs, compression)?;
            put_file(&mut t, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            t.append_header(&dir_entry("blobs")).ctx(|| "writing the archive".into())?;
            t.append_header(&dir_entry("blobs/sha256")).ctx(|| "writing the archive".into())?;
            let mut written = HashSet::new();
            let mut index = Vec::new();
            let mut manifests = Vec::new();
            for i in images {
                let m = manifest_for(&i.image, &layers, ManifestFormat::Oci)?;
                let md = Digest::of(&m);
                manifests.push((md, m.len() as u64, i));
                if written.insert(md) {
                    put_file(&mut t, &format!("blobs/sha256/{}", md.hex()), &m)?;
                }
                if written.insert(i.image.config_digest) {
                    put_blob(
                        store,
                        &mut t,
                        &format!("blobs/sha256/{}", i.image.config_digest.hex()),
                        &i.image.config_digest,
                    )?;
                }
                for l in &i.image.layers {
                    let o = &layers[&l.diff_id];
                    if written.insert(o.digest) {
                        let p = format!("blobs/sha256/{}", o.digest.hex());
                        match &o.file {
                            None => put_blob(store, &mut t, &p, &o.digest)?,
                            Some(f) => {
                                let mut r = BufReader::with_capacity(1 << 20, std::fs::File::open(f).at("reading", f)?);
                                t.append(&file_entry(&p, o.size), &mut r).ctx(|| "writing the archive".into())?;
                            }
                        }
                    }
                }
            }
            for (md, size, i) in &manifests {
                if i.names.is_empty() {
                    index.push((*md, *size, None));
                }
                for n in &i.names {
                    index.push((*md, *size, Some(n)));
                }
            }
            put_file(&mut t, "index.json", &oci_index(&index)?)?;
        }
    }
    let mut w = t.finish().ctx(|| "finishing the archive".into())?;
    w.flush().ctx(|| "writing the archive".into())
}

/// Writes `images` as an OCI layout directory (created if missing).
pub fn save_oci_dir(store: &Store, images: &[SaveImage], compression: Compression, dir: &Path) -> Result<()> {
    // Write the archive into the directory through the same code, then unpack it there:
    // simple, and the layout is the same bytes as the oci-archive.
    std::fs::create_dir_all(dir).at("creating", dir)?;
    let (path, file) = crate::store::tempfile_in(&store.tmp_dir())?;
    let cleanup = scopeguard_path(path.clone());
    let mut w = io::BufWriter::new(file);
    save(store, images, SaveFormat::OciArchive, compression, &mut w)?;
    drop(w);
    let f = std::fs::File::open(&path).at("reading", &path)?;
    crate::layer::apply_layer(BufReader::new(f), dir, crate::layer::ApplyMode::Plain)?;
    drop(cleanup);
    Ok(())
}

struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
fn scopeguard_path(p: PathBuf) -> RemoveOnDrop {
    RemoveOnDrop(p)
}

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

/// Loads every image of a docker-archive or OCI archive (optionally compressed).
pub fn load(store: &Store, r: &mut dyn Read) -> Result<Vec<Loaded>> {
    let _gc = store.gc_guard()?;
    let (_, r) = compress::decompressed(r)?;
    let mut t = tar::Reader::new(r);
    let mut files: HashMap<String, Stored> = HashMap::new();
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    while let Some(e) = t.next_entry().map_err(|e| StoreError::archive(format!("{e}")))? {
        let path = clean_path(&e.path);
        match e.kind {
            EntryKind::File if SMALL_FILES.contains(&path.as_str()) => {
                if e.size > MAX_SMALL {
                    return Err(StoreError::archive(format!("{path} is too large")));
                }
                let mut v = Vec::with_capacity(e.size as usize);
                t.data().read_to_end(&mut v).map_err(|err| StoreError::archive(err.to_string()))?;
                small.insert(path, v);
            }
            EntryKind::File => {
                let mut raw = HashingReader::new(t.data());
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
                files.insert(path, Stored { raw, blob });
            }
            EntryKind::Symlink | EntryKind::Hardlink => {
                let target = String::from_utf8_lossy(&e.link).to_string();
                let resolved = if e.kind == EntryKind::Symlink {
                    resolve_link(&path, &target)
                } else {
                    clean_path(target.as_bytes())
                };
                links.insert(path, resolved);
            }
            _ => {}
        }
    }
    let lookup = |p: &str| -> Result<Stored> {
        let mut p = clean_path(p.as_bytes());
        for _ in 0..16 {
            if let Some(s) = files.get(&p) {
                return Ok(*s);
            }
            match links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        Err(StoreError::archive(format!("{p} is named by the manifest but not in the archive")))
    };

    let mut out: Vec<Loaded> = Vec::new();
    if let Some(m) = small.get("manifest.json") {
        let entries: Vec<DockerManifest> =
            serde_json::from_slice(m).map_err(|e| StoreError::archive(format!("manifest.json: {e}")))?;
        for e in entries {
            let cfg = lookup(&e.config)?;
            let layers: Vec<Digest> = e.layers.iter().map(|l| lookup(l).map(|s| s.blob)).collect::<Result<_>>()?;
            let names = e.repo_tags.iter().filter_map(|n| Reference::parse(n).ok()).collect();
            out.push(Loaded { image: assemble(store, cfg.blob, &layers)?, names });
        }
    } else if let Some(idx) = small.get("index.json") {
        let index =
            ImageIndex::from_reader(idx.as_slice()).map_err(|e| StoreError::archive(format!("index.json: {e}")))?;
        for d in index.manifests() {
            let ann = d.annotations().clone().unwrap_or_default();
            let name = ann
                .get(crate::image::ANNOTATION_IMAGE_NAME)
                .or(ann.get(crate::image::ANNOTATION_REF_NAME))
                .filter(|n| n.contains(['/', ':']))
                .and_then(|n| Reference::parse(n).ok());
            let manifest = oci_manifest_for(d, &lookup, store)?;
            let cfg = lookup(&blob_path(manifest.config().digest()))?;
            let mut layers = Vec::new();
            for l in manifest.layers() {
                let s = lookup(&blob_path(l.digest()))?;
                if s.raw != from_oci_digest(l.digest())? {
                    return Err(StoreError::archive(format!("blob {} does not match its digest", l.digest())));
                }
                layers.push(s.blob);
            }
            match out.iter_mut().find(|l| l.image.config_digest == cfg.blob) {
                Some(l) => l.names.extend(name),
                None => {
                    out.push(Loaded { image: assemble(store, cfg.blob, &layers)?, names: name.into_iter().collect() })
                }
            }
        }
    } else {
        return Err(StoreError::archive("not a docker or OCI image archive (no manifest.json or index.json)"));
    }
    if out.is_empty() {
        return Err(StoreError::archive("the archive holds no images"));
    }
    // Unpack (and so validate) every layer before naming anything.
    let all: Vec<Digest> =
        out.iter().flat_map(|l| l.image.layers.iter().map(|x| x.diff_id)).collect::<HashSet<_>>().into_iter().collect();
    all.par_iter().map(|d| store.ensure_snapshot(d).map(|_| ())).collect::<Result<Vec<()>>>()?;
    store.make_durable(&all)?;
    store.update_index(|entries| {
        for l in &out {
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
    })?;
    for l in &mut out {
        l.image.names = l.names.clone();
    }
    Ok(out)
}

fn blob_path(d: &oci_spec::image::Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.digest())
}

/// The image manifest a descriptor of index.json leads to (through a nested index, the
/// linux/amd64 entry).
fn oci_manifest_for(d: &Descriptor, lookup: &dyn Fn(&str) -> Result<Stored>, store: &Store) -> Result<ImageManifest> {
    let mut desc = d.clone();
    for _ in 0..4 {
        let s = lookup(&blob_path(desc.digest()))?;
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
