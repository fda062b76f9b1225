//! Cache mounts (`RUN --mount=type=cache`) as layers, so that their contents can travel
//! with an exported build cache: a mount's directory is packed as an ordinary layer blob
//! (a deterministic tar: the same contents give the same digest, which registries and
//! OCI layouts then store once) and unpacked into a fresh directory on another machine.

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::layer::{apply_layer, remove_tree, write_layer, ApplyMode, WriteOptions};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One cache mount in an exported build cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMountEntry {
    /// The mount's name in the store (the builder's name for its `id`).
    pub id: String,
    /// The uncompressed layer holding its contents.
    pub layer: Digest,
    pub size: u64,
}

/// A name a cache mount may have: it becomes a directory name.
pub fn valid_mount_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// What was packed last time for a mount: the fingerprint of its tree and the layer.
#[derive(Debug, Serialize, Deserialize)]
struct Packed {
    fingerprint: String,
    layer: Digest,
    size: u64,
}

/// A digest of `dir`'s and every entry's name, type, mode, owner, size, mtime, ctime and
/// inode: the same fingerprint, the same tree (as a stat cache tells, ctime catching a
/// write that put the mtime back; contents are not read).
fn fingerprint(dir: &Path) -> Result<String> {
    use sha2::{Digest as _, Sha256};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    let stat = |h: &mut Sha256, m: &std::fs::Metadata| {
        for n in [u64::from(m.mode()), u64::from(m.uid()), u64::from(m.gid()), m.size(), m.ino()] {
            h.update(n.to_le_bytes());
        }
        for n in [m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()] {
            h.update(n.to_le_bytes());
        }
    };
    stat(&mut h, &std::fs::symlink_metadata(dir).at("stat", dir)?);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&d).at("reading", &d)?.filter_map(|e| e.ok()).collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).at("stat", &p)?;
            h.update(p.strip_prefix(dir).unwrap_or(&p).as_os_str().as_bytes());
            h.update([0]);
            stat(&mut h, &m);
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

impl Store {
    /// Packs the cache mount directory `dir` as a layer blob (mtimes as they are, the
    /// directory itself left untouched); returns the blob's digest and size.
    pub fn pack_cache_mount(&self, dir: &Path) -> Result<(Digest, u64)> {
        let _gc = self.gc_guard()?;
        let w = self.blob_writer()?;
        let opts = WriteOptions { overlay: false, mtime_clamp: None, fix_source: false };
        let (w, _) = write_layer(dir, &opts, w)?;
        w.commit(None, None)
    }

    /// [`Store::pack_cache_mount`] for the mount `name`, which is not packed again while
    /// its tree is as it was when it last was (and that layer is still stored).
    pub fn pack_cache_mount_named(&self, name: &str, dir: &Path) -> Result<(Digest, u64)> {
        if !valid_mount_id(name) {
            return Err(StoreError::BadImage(format!("invalid cache mount name {name:?}")));
        }
        let area = self.area("cachemounts")?;
        let note = format!("{name}.json");
        let fp = fingerprint(dir)?;
        if let Some(p) = std::fs::read(area.join(&note)).ok().and_then(|b| serde_json::from_slice::<Packed>(&b).ok()) {
            if p.fingerprint == fp && self.has_blob(&p.layer) {
                return Ok((p.layer, p.size));
            }
        }
        let (layer, size) = self.pack_cache_mount(dir)?;
        let data = serde_json::to_vec(&Packed { fingerprint: fp, layer, size }).unwrap_or_default();
        area.write_atomic(&note, &data)?;
        Ok((layer, size))
    }

    /// Unpacks the stored layer `layer` as the new directory `dest`, which appears
    /// complete (by rename) or not at all; an existing `dest` is left as it is.
    pub fn unpack_cache_mount(&self, layer: &Digest, dest: &Path) -> Result<bool> {
        if dest.exists() {
            return Ok(false);
        }
        let tmp = self.temp_dir("cachemount")?;
        let unpacked = (|| {
            let mut blob = self.open_verified(layer)?;
            apply_layer(std::io::BufReader::with_capacity(1 << 20, &mut blob), &tmp, ApplyMode::Plain)?;
            blob.verify_rest()
        })();
        if let Err(e) = unpacked {
            let _ = remove_tree(&tmp);
            return Err(e);
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).at("creating", parent)?;
        }
        match std::fs::rename(&tmp, dest) {
            Ok(()) => Ok(true),
            // Another build made it meanwhile: theirs stays.
            Err(_) if dest.exists() => remove_tree(&tmp).map(|()| false),
            Err(e) => {
                let _ = remove_tree(&tmp);
                Err(StoreError::io(format!("creating cache mount {}", dest.display()), e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_mount_travels_as_a_layer() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let dir = t.path().join("mount");
        std::fs::create_dir_all(dir.join("pkgs/a")).unwrap();
        std::fs::write(dir.join("pkgs/a/wheel"), "data").unwrap();
        std::os::unix::fs::symlink("a/wheel", dir.join("pkgs/latest")).unwrap();
        let (d, size) = s.pack_cache_mount(&dir).unwrap();
        assert!(size > 0 && s.has_blob(&d));
        // The same contents, the same layer; an unchanged tree is not packed again.
        assert_eq!(s.pack_cache_mount(&dir).unwrap().0, d);
        assert_eq!(s.pack_cache_mount_named("m1", &dir).unwrap().0, d);
        assert!(s.retired_areas().unwrap().is_empty(), "the note is in a declared area, which prune keeps");
        std::fs::remove_file(s.blob_path(&d)).unwrap();
        assert_eq!(s.pack_cache_mount_named("m1", &dir).unwrap().0, d, "a missing layer is made again");
        assert!(s.has_blob(&d));
        std::fs::write(dir.join("pkgs/a/new"), "more").unwrap();
        assert_ne!(s.pack_cache_mount_named("m1", &dir).unwrap().0, d);

        let dest = t.path().join("restored");
        assert!(s.unpack_cache_mount(&d, &dest).unwrap());
        assert_eq!(std::fs::read_to_string(dest.join("pkgs/latest")).unwrap(), "data");
        // An existing directory is not replaced.
        std::fs::write(dest.join("mine"), "x").unwrap();
        assert!(!s.unpack_cache_mount(&d, &dest).unwrap());
        assert!(dest.join("mine").exists());
        assert!(valid_mount_id("0123abcd") && !valid_mount_id("../x") && !valid_mount_id(""));
    }
}
