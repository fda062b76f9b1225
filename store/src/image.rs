//! Images: manifests and configs in blobs, names in index.json.
//!
//! Every layer blob in the store is an uncompressed tar named by its diff_id, so a
//! manifest's layer digests are the config's diff_ids. Named entries carry the familiar
//! name in `org.opencontainers.image.ref.name` (what `skopeo inspect oci:ROOT:NAME` and
//! umoci look up) and the full name in `io.containerd.image.name`; untagged images
//! (dangling, or built without `-t`) are entries without annotations.

use crate::config::{ImageConfig, MEDIA_TYPE_CONFIG, MEDIA_TYPE_LAYER, MEDIA_TYPE_MANIFEST};
use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::reference::Reference;
use crate::store::Store;
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder, MediaType};
use std::collections::HashMap;
use std::str::FromStr;

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// One entry of index.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub manifest: Digest,
    pub size: u64,
    pub name: Option<Reference>,
}

/// A layer of an image as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRef {
    pub diff_id: Digest,
    pub size: u64,
}

/// What `rmi` did, line by line as docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// `Untagged: NAME`
    Untagged(Reference),
    /// `Deleted: sha256:…` (the image's id)
    Deleted(Digest),
}

/// A resolved image.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub manifest: ImageManifest,
    /// The image ID.
    pub config_digest: Digest,
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
    pub names: Vec<Reference>,
}

impl Image {
    /// Uncompressed size of all layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    pub fn id(&self) -> Digest {
        self.config_digest
    }
}

pub(crate) fn to_oci_digest(d: &Digest) -> oci_spec::image::Digest {
    oci_spec::image::Digest::from_str(&d.to_string()).expect("a sha256 digest is a valid OCI digest")
}

pub(crate) fn from_oci_digest(d: &oci_spec::image::Digest) -> Result<Digest> {
    d.to_string().parse::<Digest>().map_err(|e| StoreError::BadImage(e.to_string()))
}

impl Store {
    fn index_path(&self) -> std::path::PathBuf {
        self.root().join("index.json")
    }

    fn read_index_unlocked(&self) -> Result<Vec<IndexEntry>> {
        let p = self.index_path();
        let data = std::fs::read(&p).at("reading", &p)?;
        let idx = ImageIndex::from_reader(data.as_slice())
            .map_err(|e| StoreError::BadStore { path: p.clone(), reason: format!("index.json: {e}") })?;
        let mut out = Vec::new();
        for d in idx.manifests() {
            let ann = d.annotations().clone().unwrap_or_default();
            let name =
                ann.get(ANNOTATION_IMAGE_NAME).or(ann.get(ANNOTATION_REF_NAME)).and_then(|n| Reference::parse(n).ok());
            out.push(IndexEntry { manifest: from_oci_digest(d.digest())?, size: d.size(), name });
        }
        Ok(out)
    }

    fn write_index_unlocked(&self, entries: &[IndexEntry]) -> Result<()> {
        let entries: Vec<_> = entries.iter().map(|e| (e.manifest, e.size, e.name.as_ref())).collect();
        self.write_atomic(&self.index_path(), &oci_index(&entries)?)
    }

    /// The entries of index.json.
    pub fn index_entries(&self) -> Result<Vec<IndexEntry>> {
        let _l = self.lock_read()?;
        self.read_index_unlocked()
    }

    /// Changes index.json under the exclusive lock.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Vec<IndexEntry>) -> Result<T>) -> Result<T> {
        let _l = self.lock_write()?;
        let mut entries = self.read_index_unlocked()?;
        let before = entries.clone();
        let r = f(&mut entries)?;
        // Unchanged (a rebuild tagging the name it already has): no write, no fsync.
        if entries != before {
            self.write_index_unlocked(&entries)?;
        }
        Ok(r)
    }

    /// Points `name` at a manifest. The image that had the name before stays, untagged,
    /// if nothing else names it.
    pub fn set_name(&self, name: &Reference, manifest: Digest, size: u64) -> Result<()> {
        self.update_index(|entries| {
            set_name_in(entries, name, manifest, size);
            Ok(())
        })
    }

    /// `rmi SPEC` as docker does it: a name given is untagged, and the image deleted
    /// when that was its last name; an id (or digest) deletes the image with all its
    /// names, which needs `force` when it has more than one. An image a container uses
    /// is kept unless `force` (or a name of several is untagged). Blobs stay until prune.
    pub fn remove_image(&self, spec: &str, force: bool) -> Result<Vec<Removal>> {
        let img = self.image(spec)?;
        let by_name = Reference::parse(spec).ok().filter(|r| img.names.contains(r));
        let users = self.pinned_by(&img.config_digest)?;
        if !users.is_empty() && !force && (by_name.is_none() || img.names.len() == 1) {
            return Err(StoreError::Conflict(format!(
                "unable to remove {spec} (must be forced) - image {} is used by container {}",
                img.config_digest.short(),
                users.join(", ")
            )));
        }
        let mut out = Vec::new();
        match by_name {
            Some(name) => {
                let last = img.names.len() == 1;
                self.update_index(|entries| {
                    entries.retain(|e| e.name.as_ref() != Some(&name));
                    if last {
                        entries.retain(|e| e.manifest != img.manifest_digest);
                    }
                    Ok(())
                })?;
                out.push(Removal::Untagged(name));
                if last {
                    out.push(Removal::Deleted(img.config_digest));
                }
            }
            None => {
                if img.names.len() > 1 && !force {
                    return Err(StoreError::Conflict(format!(
                        "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        img.config_digest.short()
                    )));
                }
                self.update_index(|entries| {
                    entries.retain(|e| e.manifest != img.manifest_digest);
                    Ok(())
                })?;
                out.extend(img.names.iter().cloned().map(Removal::Untagged));
                out.push(Removal::Deleted(img.config_digest));
            }
        }
        Ok(out)
    }

    /// Records an image without a name (it is kept until removed or pruned).
    pub fn add_untagged(&self, manifest: Digest, size: u64) -> Result<()> {
        self.update_index(|entries| {
            if !entries.iter().any(|e| e.manifest == manifest) {
                entries.push(IndexEntry { manifest, size, name: None });
            }
            Ok(())
        })
    }

    /// Writes a config and a manifest for `layers` (stored uncompressed). Returns the
    /// image (not yet named).
    pub fn write_image(&self, config: &ImageConfig, layers: &[LayerRef]) -> Result<Image> {
        if config.rootfs.diff_ids.len() != layers.len()
            || config.rootfs.diff_ids.iter().zip(layers).any(|(a, b)| *a != b.diff_id)
        {
            return Err(StoreError::BadImage("config diff_ids do not match the layers".into()));
        }
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        if !self.hold_stored(&diff_ids, true)? {
            let missing = layers.iter().find(|l| !self.has_blob(&l.diff_id));
            let what = missing.map_or_else(|| "a layer".to_string(), |l| format!("layer {}", l.diff_id));
            return Err(StoreError::BadImage(format!("{what} is missing from the store")));
        }
        let cfg_bytes = config.to_json();
        if cfg_bytes.len() > crate::config::MAX_CONFIG_SIZE {
            return Err(StoreError::BadImage(format!(
                "the image config is {} bytes, more than the {} MiB rbuild writes",
                cfg_bytes.len(),
                crate::config::MAX_CONFIG_SIZE >> 20
            )));
        }
        let cfg_digest = self.put_blob(&cfg_bytes)?;
        let manifest = build_manifest(cfg_digest, cfg_bytes.len() as u64, layers)?;
        let m_bytes = manifest.to_string().map_err(|e| StoreError::BadImage(e.to_string()))?.into_bytes();
        let m_digest = self.put_blob(&m_bytes)?;
        Ok(Image {
            manifest_digest: m_digest,
            manifest_size: m_bytes.len() as u64,
            manifest,
            config_digest: cfg_digest,
            config: config.clone(),
            layers: layers.to_vec(),
            names: vec![],
        })
    }

    /// The image of the stored config blob `config` (kept byte for byte: its digest is the
    /// image ID) and the stored layers `layers`, checked against the config's diff_ids.
    /// Writes the image's manifest; names nothing.
    pub fn image_from_config(&self, config: Digest, layers: &[Digest]) -> Result<Image> {
        let cfg = ImageConfig::from_json(&self.read_blob(&config)?)
            .map_err(|e| StoreError::BadImage(format!("image config {config}: {e}")))?;
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(StoreError::BadImage(format!(
                "image {config}: the config names {} layers, the image has {}",
                cfg.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let mut refs = Vec::new();
        for (want, got) in cfg.rootfs.diff_ids.iter().zip(layers) {
            if want != got {
                return Err(StoreError::DigestMismatch {
                    what: format!("a layer of image {config}"),
                    expected: *want,
                    actual: *got,
                });
            }
            refs.push(LayerRef { diff_id: *got, size: self.blob_size(got)? });
        }
        let manifest = build_manifest(config, self.blob_size(&config)?, &refs)?;
        let m = manifest.to_string().map_err(|e| StoreError::BadImage(e.to_string()))?.into_bytes();
        let md = self.put_blob(&m)?;
        Ok(Image {
            manifest_digest: md,
            manifest_size: m.len() as u64,
            manifest,
            config_digest: config,
            config: cfg,
            layers: refs,
            names: vec![],
        })
    }

    /// Loads the image whose manifest is `digest`.
    pub fn image_by_manifest(&self, digest: &Digest) -> Result<Image> {
        let data = self.read_blob(digest)?;
        let manifest = ImageManifest::from_reader(data.as_slice())
            .map_err(|e| StoreError::BadImage(format!("manifest {digest}: {e}")))?;
        let config_digest = from_oci_digest(manifest.config().digest())?;
        let config = ImageConfig::from_json(&self.read_blob(&config_digest)?)
            .map_err(|e| StoreError::BadImage(format!("config {config_digest}: {e}")))?;
        let mut layers = Vec::new();
        for (i, l) in manifest.layers().iter().enumerate() {
            let blob = from_oci_digest(l.digest())?;
            let diff_id =
                config.rootfs.diff_ids.get(i).copied().ok_or_else(|| {
                    StoreError::BadImage(format!("manifest {digest} has more layers than its config"))
                })?;
            if blob != diff_id {
                return Err(StoreError::BadImage(format!("layer {blob} of {digest} is not stored uncompressed")));
            }
            layers.push(LayerRef { diff_id, size: l.size() });
        }
        if layers.len() != config.rootfs.diff_ids.len() {
            return Err(StoreError::BadImage(format!("manifest {digest} has fewer layers than its config")));
        }
        Ok(Image {
            manifest_digest: *digest,
            manifest_size: data.len() as u64,
            manifest,
            config_digest,
            config,
            layers,
            names: vec![],
        })
    }

    /// Finds an image by name, image ID (or a unique prefix of it) or manifest digest.
    /// What it is made of stays in the store while this process runs (see [`crate::lease`]).
    pub fn image(&self, spec: &str) -> Result<Image> {
        let img = self.find_image(spec)?;
        let mut parts = vec![img.manifest_digest, img.config_digest];
        parts.extend(img.layers.iter().map(|l| l.diff_id));
        self.hold(&parts)?;
        Ok(img)
    }

    fn find_image(&self, spec: &str) -> Result<Image> {
        let entries = self.index_entries()?;
        let names_of = |m: &Digest| -> Vec<Reference> {
            entries.iter().filter(|e| e.manifest == *m).filter_map(|e| e.name.clone()).collect()
        };
        if let Ok(r) = Reference::parse(spec) {
            let hit = entries.iter().find(|e| match (&e.name, &r.digest) {
                (_, Some(d)) if e.manifest == *d => true,
                (Some(n), _) => *n == r,
                _ => false,
            });
            if let Some(e) = hit {
                let mut img = self.image_by_manifest(&e.manifest)?;
                img.names = names_of(&e.manifest);
                return Ok(img);
            }
        }
        let hex = spec.strip_prefix("sha256:").unwrap_or(spec);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            let mut found: Vec<Image> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for e in &entries {
                if !seen.insert(e.manifest) {
                    continue;
                }
                if e.manifest.hex().starts_with(hex) {
                    found.push(self.image_by_manifest(&e.manifest)?);
                    continue;
                }
                let img = self.image_by_manifest(&e.manifest)?;
                if img.config_digest.hex().starts_with(hex) {
                    found.push(img);
                }
            }
            found.dedup_by_key(|i| i.config_digest);
            match found.len() {
                0 => {}
                1 => {
                    let mut img = found.remove(0);
                    img.names = names_of(&img.manifest_digest);
                    return Ok(img);
                }
                _ => {
                    return Err(StoreError::Conflict(format!(
                        "{spec} matches {} images; give more of the ID",
                        found.len()
                    )))
                }
            }
        }
        Err(StoreError::ImageNotFound(spec.to_string()))
    }

    /// Every image in index.json, with its names.
    pub fn images(&self) -> Result<Vec<Image>> {
        let entries = self.index_entries()?;
        let mut out: Vec<Image> = Vec::new();
        for e in &entries {
            if let Some(img) = out.iter_mut().find(|i| i.manifest_digest == e.manifest) {
                if let Some(n) = &e.name {
                    img.names.push(n.clone());
                }
                continue;
            }
            let mut img = self.image_by_manifest(&e.manifest)?;
            img.names = e.name.iter().cloned().collect();
            out.push(img);
        }
        Ok(out)
    }
}

pub(crate) fn set_name_in(entries: &mut Vec<IndexEntry>, name: &Reference, manifest: Digest, size: u64) {
    // A name that already points at this manifest keeps its place: re-tagging it (a cached
    // rebuild) leaves index.json as it is, so nothing is written.
    if entries.iter().any(|e| e.name.as_ref() == Some(name) && e.manifest == manifest && e.size == size) {
        entries.retain(|e| !(e.manifest == manifest && e.name.is_none()));
        return;
    }
    let previous = entries.iter().position(|e| e.name.as_ref() == Some(name)).map(|i| entries.remove(i));
    entries.retain(|e| !(e.manifest == manifest && e.name.is_none()));
    entries.push(IndexEntry { manifest, size, name: Some(name.clone()) });
    if let Some(p) = previous {
        if p.manifest != manifest && !entries.iter().any(|e| e.manifest == p.manifest) {
            entries.push(IndexEntry { manifest: p.manifest, size: p.size, name: None });
        }
    }
}

pub fn build_manifest(config: Digest, config_size: u64, layers: &[LayerRef]) -> Result<ImageManifest> {
    build_manifest_of(MEDIA_TYPE_CONFIG, config, config_size, layers)
}

/// An OCI manifest whose config blob has media type `config_media` (an image config, or
/// an artifact's such as the build cache's) and whose layers are uncompressed tars.
pub(crate) fn build_manifest_of(
    config_media: &str,
    config: Digest,
    config_size: u64,
    layers: &[LayerRef],
) -> Result<ImageManifest> {
    let cfg = Descriptor::new(MediaType::from(config_media), config_size, to_oci_digest(&config));
    let ls: Vec<Descriptor> = layers
        .iter()
        .map(|l| Descriptor::new(MediaType::from(MEDIA_TYPE_LAYER), l.size, to_oci_digest(&l.diff_id)))
        .collect();
    ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(MEDIA_TYPE_MANIFEST))
        .config(cfg)
        .layers(ls)
        .build()
        .map_err(|e| StoreError::BadImage(e.to_string()))
}

/// The media type string of a descriptor.
pub fn media_type_str(m: &MediaType) -> String {
    m.to_string()
}

/// An OCI image index of `entries` (manifest digest, size, name): the store's index.json
/// and an OCI archive's, each name in the annotations containerd and docker read.
pub(crate) fn oci_index(entries: &[(Digest, u64, Option<&Reference>)]) -> Result<Vec<u8>> {
    let ds: Vec<Descriptor> = entries
        .iter()
        .map(|(d, size, name)| {
            let mut desc = Descriptor::new(MediaType::ImageManifest, *size, to_oci_digest(d));
            if let Some(n) = name {
                let mut ann = HashMap::new();
                ann.insert(ANNOTATION_REF_NAME.to_string(), n.familiar());
                ann.insert(ANNOTATION_IMAGE_NAME.to_string(), n.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// rmi as docker's: a name of several is untagged, the last name deletes, an id
    /// with several names needs force, and the index keeps the others.
    #[test]
    fn remove_image_untags_then_deletes_as_dockers_rmi() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("store")).unwrap();
        let img = store.write_image(&ImageConfig::default(), &[]).unwrap();
        let (a, b) = (Reference::parse("x/a:1").unwrap(), Reference::parse("x/b:1").unwrap());
        store.set_name(&a, img.manifest_digest, img.manifest_size).unwrap();
        store.set_name(&b, img.manifest_digest, img.manifest_size).unwrap();
        let id = img.config_digest.to_string();
        let e = store.remove_image(&id, false).unwrap_err();
        assert!(e.to_string().contains("referenced in multiple repositories"), "{e}");
        assert_eq!(store.remove_image("x/a:1", false).unwrap(), vec![Removal::Untagged(a)]);
        assert_eq!(
            store.remove_image("x/b:1", false).unwrap(),
            vec![Removal::Untagged(b), Removal::Deleted(img.config_digest)]
        );
        assert!(store.index_entries().unwrap().is_empty());
        assert!(store.remove_image(&id, true).is_err(), "gone");
    }

    /// Re-tagging a name with the image it already names (a cached rebuild after another
    /// build tagged a second name) leaves index.json untouched; moving it still writes.
    #[test]
    fn retagging_a_name_in_place_writes_nothing() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("store")).unwrap();
        let one = store.write_image(&ImageConfig::default(), &[]).unwrap();
        let cfg = ImageConfig { author: Some("b".into()), ..ImageConfig::default() };
        let two = store.write_image(&cfg, &[]).unwrap();
        let (a, b) = (Reference::parse("x/a:1").unwrap(), Reference::parse("x/b:1").unwrap());
        store.set_name(&a, one.manifest_digest, one.manifest_size).unwrap();
        store.set_name(&b, two.manifest_digest, two.manifest_size).unwrap();
        let index = d.path().join("store/index.json");
        let ino = std::fs::metadata(&index).unwrap().ino();
        store.set_name(&a, one.manifest_digest, one.manifest_size).unwrap();
        assert_eq!(std::fs::metadata(&index).unwrap().ino(), ino, "index.json rewritten for an unchanged name");
        store.set_name(&a, two.manifest_digest, two.manifest_size).unwrap();
        assert_ne!(std::fs::metadata(&index).unwrap().ino(), ino, "a moved name must be written");
        let names: Vec<_> = store.index_entries().unwrap().into_iter().filter_map(|e| e.name).collect();
        assert_eq!(names, vec![b, a]);
    }
}
