//! A built image leaving the store as `build --output` writes it, in BuildKit's forms:
//!
//! - [`rootfs_dir`] (`type=local`): the image's filesystem, all layers merged, copied
//!   into a directory;
//! - [`rootfs_tar`] (`type=tar`): the same as one tar, entries in walk order (sorted per
//!   directory, depth first), no root entry, directories with a trailing `/`;
//! - [`layout_tar`] / [`layout_dir`] (`type=oci`, `type=docker`): an OCI image layout,
//!   layers gzip-compressed by default, index.json entries with the platform and
//!   BuildKit's annotations; the docker form adds the `manifest.json` that `docker load`
//!   reads (docker 25+'s `docker save` form, which older engines load too).
//!
//! The filesystem is made from the layer blobs (checked against their digests as they
//! are read), so what leaves is what the image's layers say — modes, owners, mtimes,
//! hard links and file capabilities — whichever way the store's snapshots were made.

use crate::archive::{manifest_for, out_layers, OutLayer};
use crate::compress::Compression;
use crate::config;
use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::image::{Image, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::layer::{apply_layer, write_layer, ApplyMode, WriteOptions};
use crate::reference::Reference;
use crate::store::Store;
use crate::tar::{self, Entry, EntryKind};
use crate::verify::io_err;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// BuildKit's annotation of an exported manifest: when the image was made.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// Which image layout [`layout_tar`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutFormat {
    /// `type=oci`: OCI manifest and media types.
    Oci,
    /// `type=docker`: docker schema 2 manifest, plus `manifest.json` for `docker load`.
    Docker,
}

/// How [`layout_tar`] writes an image.
#[derive(Debug, Clone)]
pub struct LayoutOptions {
    pub format: LayoutFormat,
    /// Layer compression (BuildKit's default: gzip).
    pub compression: Compression,
    /// Names for index.json (and manifest.json's RepoTags).
    pub names: Vec<Reference>,
}

/// The manifest an export wrote, as buildx's metadata file describes it
/// (`containerimage.descriptor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedManifest {
    pub media_type: &'static str,
    pub digest: Digest,
    pub size: u64,
}

/// An OCI descriptor with BuildKit's field order (serde_json keeps a struct's order).
#[derive(Debug, Serialize)]
pub struct DescriptorJson {
    #[serde(rename = "mediaType")]
    pub media_type: &'static str,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<&'static str, String>,
    pub platform: PlatformJson,
}

#[derive(Debug, Serialize)]
pub struct PlatformJson {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl ExportedManifest {
    /// The descriptor as buildx's metadata file has it: media type, digest, size, the
    /// creation annotation and the platform of `image`.
    pub fn descriptor(&self, image: &Image) -> DescriptorJson {
        self.descriptor_named(image, None)
    }

    /// The descriptor of an index.json entry, with the image's name when it has one.
    fn descriptor_named(&self, image: &Image, name: Option<&Reference>) -> DescriptorJson {
        let mut annotations = BTreeMap::new();
        if let Some(n) = name {
            annotations.insert(ANNOTATION_IMAGE_NAME, n.to_string());
            annotations.insert(ANNOTATION_REF_NAME, n.tag.clone().unwrap_or_else(|| "latest".into()));
        }
        if let Some(c) = &image.config.created {
            annotations.insert(ANNOTATION_CREATED, created_seconds(c));
        }
        DescriptorJson {
            media_type: self.media_type,
            digest: self.digest.to_string(),
            size: self.size,
            annotations,
            platform: PlatformJson {
                architecture: image.config.architecture.clone(),
                os: image.config.os.clone(),
                variant: image.config.variant.clone().filter(|v| !v.is_empty()),
            },
        }
    }
}

/// RFC 3339 at second precision, as BuildKit writes the creation annotation.
fn created_seconds(c: &str) -> String {
    match c.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => c.to_string(),
    }
}

/// Applies every layer of `image`, bottom first, onto `dir` (whiteouts delete).
fn unpack_merged(store: &Store, image: &Image, dir: &Path) -> Result<()> {
    for l in &image.layers {
        let mut blob = store.open_verified(&l.diff_id)?;
        apply_layer(BufReader::with_capacity(1 << 20, &mut blob), dir, ApplyMode::Merge)
            .map_err(|e| e.in_image(|| crate::archive::image_label(image)))?;
        blob.verify_rest()?;
    }
    Ok(())
}

/// The merged tree at `dir` as a tar, BuildKit's `type=tar` form.
fn tar_tree(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let opts = WriteOptions { overlay: false, mtime_clamp: None, fix_source: false };
    let (mut w, _) = write_layer(dir, &opts, io::BufWriter::with_capacity(1 << 20, out))?;
    w.flush().ctx(|| "writing the filesystem tar".into())
}

/// Writes the filesystem of `image` (all layers merged) to `out` as a tar.
pub fn rootfs_tar(store: &Store, image: &Image, out: &mut dyn Write) -> Result<()> {
    let tmp = store.temp_guard("export")?;
    unpack_merged(store, image, tmp.path())?;
    tar_tree(tmp.path(), out)
}

/// Copies the filesystem of `image` into `dest`, made (mode 0700, as BuildKit's local
/// exporter makes it) when missing. Every file written belongs to the user running the
/// export, as BuildKit's files sent to the client do (its receiver owns them); modes
/// stay, setuid and setgid included. What `dest` holds already stays unless the image
/// has a path of the same name, which replaces it; nothing is written outside `dest`
/// (symlinks in it are not followed).
pub fn rootfs_dir(store: &Store, image: &Image, dest: &Path) -> Result<()> {
    if !dest.exists() {
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).at("creating", parent)?;
        }
        std::fs::DirBuilder::new().mode(0o700).create(dest).at("creating", dest)?;
    }
    let owner = (rustix::process::geteuid(), rustix::process::getegid());
    let empty = std::fs::read_dir(dest).at("reading", dest)?.next().is_none();
    if empty {
        // Nothing there a later layer's whiteout could delete: apply the layers in place.
        unpack_merged(store, image, dest)?;
        return own_tree(dest, owner);
    }
    // The merged tree, streamed as a tar into `dest`: whiteouts never reach the files
    // that were there before.
    let tmp = store.temp_guard("export")?;
    unpack_merged(store, image, tmp.path())?;
    own_tree(tmp.path(), owner)?;
    piped(|w| tar_tree(tmp.path(), w), dest)
}

/// Gives everything under `root` (not following symlinks) to `owner`, keeping the
/// setuid and setgid bits a change of owner clears.
fn own_tree(root: &Path, owner: (rustix::process::Uid, rustix::process::Gid)) -> Result<()> {
    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
    let dir =
        rfs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).at("opening", root)?;
    let mut stack = vec![(dir, root.to_path_buf())];
    while let Some((dir, path)) = stack.pop() {
        let names: Vec<std::ffi::CString> = rfs::Dir::read_from(&dir)
            .at("reading", &path)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for name in names {
            let here = || path.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
            let st = rfs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW).at("stat", &here())?;
            let ft = FileType::from_raw_mode(st.st_mode);
            if st.st_uid != owner.0.as_raw() || st.st_gid != owner.1.as_raw() {
                rfs::chownat(&dir, &name, Some(owner.0), Some(owner.1), AtFlags::SYMLINK_NOFOLLOW)
                    .at("changing the owner of", &here())?;
                if st.st_mode & 0o6000 != 0 && ft != FileType::Symlink {
                    rfs::chmodat(&dir, &name, Mode::from_raw_mode(st.st_mode & 0o7777), AtFlags::empty())
                        .at("setting the mode of", &here())?;
                }
            }
            if ft == FileType::Directory {
                let sub = rfs::openat(
                    &dir,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .at("opening", &here())?;
                stack.push((sub, here()));
            }
        }
    }
    Ok(())
}

/// Runs `produce` on a thread writing into a pipe whose other end is applied onto `dest`
/// as a plain archive.
fn piped<T: Send>(produce: impl FnOnce(&mut dyn Write) -> Result<T> + Send, dest: &Path) -> Result<T> {
    let (reader, mut writer) = io::pipe().ctx(|| "making a pipe".into())?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(&mut writer));
        let mut r = BufReader::with_capacity(1 << 20, reader);
        // Read to the end after the archive's end marker: the writer is not cut short.
        let applied = apply_layer(&mut r, dest, ApplyMode::Plain)
            .and_then(|_| io::copy(&mut r, &mut io::sink()).map(|_| ()).ctx(|| "reading the archive".into()));
        drop(r);
        let produced = producer.join().unwrap_or_else(|_| Err(StoreError::archive("the archive writer panicked")));
        match (produced, applied) {
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(a)) => Err(a),
            // The reading side stopped first: its error is the cause of the broken pipe.
            (Err(StoreError::Io { source, .. }), Err(a)) if source.kind() == io::ErrorKind::BrokenPipe => Err(a),
            (Err(p), _) => Err(p),
        }
    })
}

fn blob_entry(path: &str, size: u64, mode: u32) -> Entry {
    let mut e = Entry::new(path, EntryKind::File);
    e.size = size;
    e.mode = mode;
    e
}

/// One file of a layout: bytes in memory, a stored blob, or a compressed layer.
enum Source<'a> {
    Bytes(Vec<u8>),
    Blob(Digest),
    Layer(&'a OutLayer),
}

#[derive(Serialize)]
struct IndexJson {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<DescriptorJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestJson {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn index_json(image: &Image, m: &ExportedManifest, names: &[Reference]) -> Result<Vec<u8>> {
    let manifests = if names.is_empty() {
        vec![m.descriptor_named(image, None)]
    } else {
        names.iter().map(|n| m.descriptor_named(image, Some(n))).collect()
    };
    let idx = IndexJson { schema_version: 2, media_type: config::MEDIA_TYPE_INDEX, manifests };
    serde_json::to_vec(&idx).map_err(|e| StoreError::BadImage(e.to_string()))
}

/// Writes `image` as an OCI image layout tar (BuildKit's `type=oci` / `type=docker`).
pub fn layout_tar(store: &Store, image: &Image, opts: &LayoutOptions, out: &mut dyn Write) -> Result<ExportedManifest> {
    if opts.format == LayoutFormat::Docker && opts.compression == Compression::Zstd {
        return Err(StoreError::BadImage("a docker image cannot carry zstd layers (use type=oci)".into()));
    }
    let layers = out_layers(store, &[image], opts.compression)?;
    let mformat = match opts.format {
        LayoutFormat::Oci => crate::archive::ManifestFormat::Oci,
        LayoutFormat::Docker => crate::archive::ManifestFormat::Docker,
    };
    let manifest = manifest_for(image, &layers, mformat)?;
    let exported = ExportedManifest {
        media_type: mformat.media_type(),
        digest: Digest::of(&manifest),
        size: manifest.len() as u64,
    };
    // Blobs by digest, written in digest order as BuildKit's layout tars have them.
    let mut blobs: BTreeMap<String, Source> = BTreeMap::new();
    blobs.insert(image.config_digest.hex(), Source::Blob(image.config_digest));
    for l in &image.layers {
        let o = &layers[&l.diff_id];
        blobs.insert(o.digest.hex(), Source::Layer(o));
    }
    blobs.insert(exported.digest.hex(), Source::Bytes(manifest));
    let mut t = tar::Writer::new(io::BufWriter::with_capacity(1 << 20, out));
    let werr = |e| io_err(|| "writing the image layout".into(), e);
    for d in ["blobs", "blobs/sha256"] {
        let mut e = Entry::new(d, EntryKind::Dir);
        e.mode = 0o755;
        t.append_header(&e).map_err(werr)?;
    }
    for (hex, src) in &blobs {
        let path = format!("blobs/sha256/{hex}");
        match src {
            Source::Bytes(b) => t.append(&blob_entry(&path, b.len() as u64, 0o444), &mut &b[..]).map_err(werr)?,
            Source::Blob(d) => {
                let mut f = store.open_verified(d)?;
                t.append(&blob_entry(&path, f.size(), 0o444), &mut f).map_err(werr)?;
            }
            Source::Layer(o) => {
                let mut r = BufReader::with_capacity(1 << 20, o.open(store)?);
                t.append(&blob_entry(&path, o.size, 0o444), &mut r).map_err(werr)?;
            }
        }
    }
    let index = index_json(image, &exported, &opts.names)?;
    t.append(&blob_entry("index.json", index.len() as u64, 0o644), &mut &index[..]).map_err(werr)?;
    if opts.format == LayoutFormat::Docker {
        let tags: Vec<String> =
            opts.names.iter().map(|n| n.with_tag(n.tag.as_deref().unwrap_or("latest")).familiar()).collect();
        let ls: Vec<String> =
            image.layers.iter().map(|l| format!("blobs/sha256/{}", layers[&l.diff_id].digest.hex())).collect();
        let m = [DockerManifestJson {
            config: format!("blobs/sha256/{}", image.config_digest.hex()),
            repo_tags: if tags.is_empty() { None } else { Some(tags) },
            layers: ls,
        }];
        let b = serde_json::to_vec(&m).map_err(|e| StoreError::BadImage(e.to_string()))?;
        t.append(&blob_entry("manifest.json", b.len() as u64, 0o644), &mut &b[..]).map_err(werr)?;
    }
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    t.append(&blob_entry("oci-layout", layout.len() as u64, 0o444), &mut &layout[..]).map_err(werr)?;
    let mut w = t.finish().map_err(werr)?;
    w.flush().map_err(werr)?;
    Ok(exported)
}

/// Writes `image` as an OCI image layout directory (`type=oci,tar=false`), made when
/// missing; blobs already there stay, index.json and manifest.json are replaced.
pub fn layout_dir(store: &Store, image: &Image, opts: &LayoutOptions, dir: &Path) -> Result<ExportedManifest> {
    std::fs::create_dir_all(dir).at("creating", dir)?;
    piped(|w| layout_tar(store, image, opts, w), dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ImageConfig;
    use crate::tar::Reader;
    use std::io::Read;

    fn layer(entries: &[(&str, EntryKind, &str)]) -> Vec<u8> {
        let mut w = tar::Writer::new(Vec::new());
        for (path, kind, data) in entries {
            let mut e = Entry::new(*path, *kind);
            e.mode = if *kind == EntryKind::Dir { 0o755 } else { 0o644 };
            match kind {
                EntryKind::Hardlink | EntryKind::Symlink => e.link = data.as_bytes().to_vec(),
                _ => e.size = data.len() as u64,
            }
            let body: &[u8] = if *kind == EntryKind::File { data.as_bytes() } else { b"" };
            w.append(&e, &mut &body[..]).unwrap();
        }
        w.finish().unwrap()
    }

    fn image(store: &Store) -> Image {
        use EntryKind::*;
        let l1 = layer(&[
            ("a", Dir, ""),
            ("a/gone", File, "x"),
            ("a/keep", File, "keep"),
            ("o", Dir, ""),
            ("o/old", File, "old"),
        ]);
        let l2 = layer(&[
            ("a", Dir, ""),
            ("a/.wh.gone", File, ""),
            ("a/keep2", File, "two"),
            ("a/keep.hard", Hardlink, "a/keep2"),
            ("o", Dir, ""),
            ("o/.wh..wh..opq", File, ""),
            ("o/new", File, "new"),
        ]);
        let refs: Vec<_> = [l1, l2].iter().map(|l| store.commit_tar(&mut l.as_slice()).unwrap()).collect();
        let mut cfg = ImageConfig { created: Some("2026-01-02T03:04:05.678Z".into()), ..Default::default() };
        cfg.rootfs.diff_ids = refs.iter().map(|r| r.diff_id).collect();
        store.write_image(&cfg, &refs).unwrap()
    }

    fn names(tar: &[u8]) -> Vec<(String, EntryKind, String)> {
        let mut r = Reader::new(tar);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let mut b = Vec::new();
            r.data().read_to_end(&mut b).unwrap();
            let d = String::from_utf8_lossy(&b).into_owned();
            let link = String::from_utf8_lossy(&e.link).into_owned();
            out.push((String::from_utf8_lossy(&e.path).into_owned(), e.kind, if link.is_empty() { d } else { link }));
        }
        out
    }

    #[test]
    fn rootfs_tar_merges_layers_as_buildkit_walks_them() {
        use EntryKind::*;
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let img = image(&store);
        let mut out = Vec::new();
        rootfs_tar(&store, &img, &mut out).unwrap();
        let got = names(&out);
        let want = [
            ("a/", Dir, ""),
            ("a/keep", File, "keep"),
            ("a/keep.hard", Hardlink, "a/keep2"),
            ("a/keep2", File, ""),
            ("o/", Dir, ""),
            ("o/new", File, "new"),
        ];
        let want: Vec<_> = want.iter().map(|(p, k, d)| (p.to_string(), *k, d.to_string())).collect();
        // The first name of a hard-linked file carries the data, the later ones link to
        // it (as a walk in name order meets them).
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(&want) {
            if w.0 == "a/keep.hard" {
                assert_eq!((g.1, g.2.as_str()), (File, "two"), "{got:?}");
            } else if w.0 == "a/keep2" {
                assert_eq!((g.1, g.2.as_str()), (Hardlink, "a/keep.hard"), "{got:?}");
            } else {
                assert_eq!(g, w);
            }
        }
        // Nothing left behind in the store's tmp.
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn layout_tar_names_its_manifest_and_layers() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let img = image(&store);
        let names_ = vec![Reference::parse("org/app:1").unwrap()];
        for format in [LayoutFormat::Oci, LayoutFormat::Docker] {
            let opts = LayoutOptions { format, compression: Compression::Gzip, names: names_.clone() };
            let mut out = Vec::new();
            let m = layout_tar(&store, &img, &opts, &mut out).unwrap();
            let files = names(&out);
            let get = |p: &str| files.iter().find(|f| f.0 == p).map(|f| f.2.clone()).unwrap_or_default();
            let index: serde_json::Value = serde_json::from_str(&get("index.json")).unwrap();
            let d = &index["manifests"][0];
            assert_eq!(d["digest"], m.digest.to_string());
            assert_eq!(d["annotations"][ANNOTATION_REF_NAME], "1");
            assert_eq!(d["annotations"][ANNOTATION_IMAGE_NAME], "docker.io/org/app:1");
            assert_eq!(d["annotations"][ANNOTATION_CREATED], "2026-01-02T03:04:05Z");
            assert_eq!(d["platform"]["os"], "linux");
            let manifest = get(&format!("blobs/sha256/{}", m.digest.hex()));
            assert_eq!(Digest::of(manifest.as_bytes()), m.digest);
            let dm = get("manifest.json");
            match format {
                LayoutFormat::Oci => assert!(dm.is_empty()),
                LayoutFormat::Docker => {
                    let v: serde_json::Value = serde_json::from_str(&dm).unwrap();
                    assert_eq!(v[0]["RepoTags"][0], "org/app:1");
                    assert_eq!(v[0]["Layers"].as_array().unwrap().len(), 2);
                }
            }
        }
        let opts = LayoutOptions { format: LayoutFormat::Docker, compression: Compression::Zstd, names: vec![] };
        assert!(layout_tar(&store, &img, &opts, &mut Vec::new()).is_err());
    }

    #[test]
    fn creation_annotation_has_seconds() {
        assert_eq!(created_seconds("2026-12-07T07:57:38.598484981Z"), "2026-12-07T07:57:38Z");
        assert_eq!(created_seconds("2026-12-07T07:57:38Z"), "2026-12-07T07:57:38Z");
    }
}
