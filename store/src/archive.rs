//! Images in and out of the store: `save` (docker-archive, oci-archive, oci-dir) here, and
//! in [`load`](mod@load) `load` (docker-archive and oci-archive, plain or compressed) and
//! `import` (a rootfs tarball).

mod load;

pub use load::{import, load, Loaded};

use crate::compress::{self, Compression};
use crate::config;
use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::image::{to_oci_digest, Image};
use crate::reference::Reference;
use crate::store::Store;
use crate::tar::{self, Entry, EntryKind};
use crate::verify::io_err;
use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};
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
            put_file(&mut t, "index.json", &crate::image::oci_index(&index)?)?;
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
