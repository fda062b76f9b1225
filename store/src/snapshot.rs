//! Unpacked layers ("snapshots") for overlay mounts, one directory per diff_id, and
//! committing directories (an overlay upper dir) as layers.

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::image::{Image, LayerRef};
use crate::layer::{apply_layer, remove_tree, write_layer, ApplyMode, WriteOptions};
use crate::store::Store;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// This boot of the machine (Linux's random boot id).
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|s| !s.is_empty() && !s.contains('/'))
}

impl Store {
    pub fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.snapshots_dir().join(diff_id.hex())
    }

    /// The unpacked form of a stored layer, made from its blob when missing. A snapshot
    /// appears by rename, so it is complete or absent; two processes making the same one
    /// at once both succeed.
    pub fn ensure_snapshot(&self, diff_id: &Digest) -> Result<PathBuf> {
        let dest = self.snapshot_path(diff_id);
        if dest.exists() {
            return Ok(dest);
        }
        // The blob is checked against its digest as it is unpacked: a damaged one makes
        // no snapshot (all of it is read, also what follows the tar's end marker).
        let mut blob = self.open_verified(diff_id)?;
        let tmp = self.temp_dir("snap")?;
        let r = match apply_layer(&mut blob, &tmp, ApplyMode::Overlay) {
            Ok(_) => blob.verify_rest(),
            // Damage shows as a broken archive first, more often than not: say which.
            Err(e) => Err(match blob.verify_rest() {
                Err(corrupt @ StoreError::Corrupt(_)) => corrupt,
                _ => e
                    .corrupt_blob()
                    .cloned()
                    .map(StoreError::Corrupt)
                    .unwrap_or_else(|| StoreError::BadImage(format!("unpacking layer {diff_id}: {e}"))),
            }),
        };
        if let Err(e) = r {
            let _ = remove_tree(&tmp);
            return Err(e);
        }
        self.publish_snapshot(&tmp, &dest)?;
        Ok(dest)
    }

    /// Where snapshots published without waiting for the disk are listed, per boot:
    /// `unsynced/<boot id>/<hex>`.
    fn unsynced_dir(&self) -> PathBuf {
        self.state_dir().join("unsynced")
    }

    fn publish_snapshot(&self, tmp: &Path, dest: &Path) -> Result<()> {
        // A snapshot is written through the page cache and published without a sync
        // (syncing 20,000 files, or the filesystem, costs more than the build step). It
        // is listed first, durably, so that after a crash it is made again from its blob.
        if let (Some(boot), Some(name)) = (boot_id(), dest.file_name()) {
            let dir = self.unsynced_dir().join(boot);
            if !dir.is_dir() {
                std::fs::create_dir_all(&dir).at("creating", &dir)?;
                crate::store::sync_dir(&self.unsynced_dir())?;
            }
            std::fs::File::create(dir.join(name)).at("listing a new snapshot in", &dir)?;
            crate::store::sync_dir(&dir)?;
        }
        match std::fs::rename(tmp, dest) {
            Ok(()) => Ok(()),
            Err(_) if dest.exists() => remove_tree(tmp),
            Err(e) => {
                let _ = remove_tree(tmp);
                Err(StoreError::io(format!("publishing snapshot {}", dest.display()), e))
            }
        }
    }

    /// Snapshots of all layers of an image, bottom first; the missing ones are made, in
    /// parallel when there are several. One missing (or none: every `run` of an image used
    /// before) is made here: rayon's pool would start a thread per core, whose spinning
    /// takes the cores from a short-lived `run` (up to 40 sched_yield calls a run seen
    /// under strace). Each layer's snapshot is looked for once.
    pub fn ensure_snapshots(&self, image: &Image) -> Result<Vec<PathBuf>> {
        let paths: Vec<PathBuf> = image.layers.iter().map(|l| self.snapshot_path(&l.diff_id)).collect();
        let missing: Vec<&Digest> =
            image.layers.iter().zip(&paths).filter(|(_, p)| !p.exists()).map(|(l, _)| &l.diff_id).collect();
        let made = if missing.len() <= 1 {
            missing.iter().try_for_each(|d| self.ensure_snapshot(d).map(drop))
        } else {
            missing.par_iter().try_for_each(|d| self.ensure_snapshot(d).map(drop))
        };
        made.map_err(|e| e.in_image(|| crate::archive::image_label(image)))?;
        Ok(paths)
    }

    /// Stores the tree at `dir` as a layer blob. With `adopt`, the directory itself then
    /// becomes the layer's snapshot (it is moved; nothing is copied), so it must be in
    /// snapshot form: an overlay upper dir, or a plain tree without whiteouts.
    pub fn commit_dir(&self, dir: &Path, opts: &WriteOptions, adopt: bool) -> Result<LayerRef> {
        let _gc = self.gc_guard()?;
        let w = self.blob_writer()?;
        let mut opts = opts.clone();
        opts.fix_source = adopt;
        let (w, _stats) = write_layer(dir, &opts, w)?;
        let (diff_id, size) = w.commit(None, None)?;
        if adopt {
            let dest = self.snapshot_path(&diff_id);
            if dest.exists() {
                remove_tree(dir)?;
            } else {
                self.publish_snapshot(dir, &dest)?;
            }
        }
        Ok(LayerRef { diff_id, size })
    }

    /// Stores a layer tar read from `r` (uncompressed) as a blob and checks it unpacks.
    pub fn commit_tar(&self, r: &mut dyn std::io::Read) -> Result<LayerRef> {
        let (diff_id, size) = crate::store::copy_to_blob(self, r, None, None)?;
        self.ensure_snapshot(&diff_id)?;
        Ok(LayerRef { diff_id, size })
    }

    /// Stores a layer that arrives from elsewhere (a registry, an OCI layout): `r` gives
    /// the bytes of the blob `raw` (compressed or not, `raw_size` long). In one pass they
    /// are checked against `raw` and `raw_size`, decompressed, written to the blob store
    /// and unpacked into a snapshot (which checks their entries); blob and snapshot are
    /// published only when all of it arrived, matched, and decompressed to `diff_id`. A
    /// layer already stored is not read.
    pub fn ingest_layer(
        &self,
        r: &mut dyn std::io::Read,
        raw: &Digest,
        raw_size: u64,
        diff_id: &Digest,
    ) -> Result<LayerRef> {
        let _gc = self.gc_guard()?;
        self.hold(&[*diff_id])?;
        if !self.has_blob(diff_id) {
            self.receive_layer(r, raw, raw_size, diff_id)?;
        }
        self.ensure_snapshot(diff_id)?;
        Ok(LayerRef { diff_id: *diff_id, size: self.blob_size(diff_id)? })
    }

    /// [`Store::ingest_layer`]'s pass: blob and snapshot at once.
    fn receive_layer(&self, r: &mut dyn std::io::Read, raw: &Digest, raw_size: u64, diff_id: &Digest) -> Result<()> {
        use std::io::Read as _;
        let receiving = |e| StoreError::io(format!("receiving layer {raw}"), e);
        // An uncompressed layer is its own blob: the blob writer's digest checks it.
        let hash_raw = raw != diff_id;
        let mut counted = crate::digest::MaybeHashing::new(r.take(raw_size.saturating_add(1)), hash_raw);
        let mut w = self.blob_writer()?;
        let tmp = crate::store::TempDir::adopt(self.temp_dir("snap")?);
        let (applied, broken) = {
            let (_, inner) = crate::compress::decompressed(&mut counted)?;
            let mut tee = Tee { inner, out: &mut w, read_error: None };
            let applied = apply_layer(&mut tee, tmp.path(), ApplyMode::Overlay);
            // What follows the tar's end marker is part of the blob too.
            let rest = std::io::copy(&mut tee, &mut std::io::sink());
            match tee.read_error.take() {
                Some(e) => (applied, Some(e)),
                None => (applied, rest.err()),
            }
        };
        // What the decompressor left unread (padding after a compressed stream); after a
        // broken stream, the rest of the blob, to tell damage (a digest mismatch) from a
        // broken connection.
        let drained = std::io::copy(&mut counted, &mut std::io::sink());
        let (got, n) = counted.finish();
        if let Some(e) = broken {
            if drained.is_ok() && (n != raw_size || got.is_some_and(|g| g != *raw)) {
                return Err(mismatch(raw, raw_size, got, n));
            }
            return Err(receiving(e));
        }
        drained.map_err(receiving)?;
        if n != raw_size || got.is_some_and(|g| g != *raw) {
            return Err(mismatch(raw, raw_size, got, n));
        }
        let what = if hash_raw {
            format!("the uncompressed content of layer {raw} (the config's diff_id)")
        } else {
            format!("layer {raw}")
        };
        w.commit(Some(*diff_id), None).map_err(|e| match e {
            StoreError::DigestMismatch { expected, actual, .. } => {
                StoreError::DigestMismatch { what, expected, actual }
            }
            other => other,
        })?;
        // The content matched: an entry the applier refused is the layer's own fault.
        applied.map_err(|e| StoreError::BadImage(format!("unpacking layer {diff_id}: {e}")))?;
        let dest = self.snapshot_path(diff_id);
        if !dest.exists() {
            self.publish_snapshot(&tmp.release(), &dest)?;
        }
        Ok(())
    }

    /// Makes the snapshots of `diff_ids` durable: one `syncfs` of the store's filesystem,
    /// then they leave the list of unsynced snapshots, so a reboot does not drop them.
    /// Load and import call it: an image that arrives is unpacked then, as docker and
    /// podman unpack it, and stays unpacked — not unpacked again by the first build after
    /// a reboot. (A build's own snapshots, and a pull's, stay unsynced: made again from
    /// their blobs after a crash; docker and containerd do not sync a pull's either.)
    pub fn make_durable(&self, diff_ids: &[Digest]) -> Result<()> {
        let Some(boot) = boot_id() else { return Ok(()) };
        let listed = self.unsynced_dir().join(boot);
        let names: Vec<String> = diff_ids.iter().map(Digest::hex).filter(|h| listed.join(h).exists()).collect();
        if names.is_empty() {
            return Ok(());
        }
        let root = std::fs::File::open(self.root()).at("opening", self.root())?;
        rustix::fs::syncfs(&root).at("syncing the filesystem of", self.root())?;
        for n in names {
            let _ = std::fs::remove_file(listed.join(n));
        }
        Ok(())
    }

    /// Removes a removed snapshot's listing (this boot's; earlier ones are gone).
    pub(crate) fn forget_unsynced(&self, name: &str) {
        if let Some(boot) = boot_id() {
            let _ = std::fs::remove_file(self.unsynced_dir().join(boot).join(name));
        }
    }

    /// Drops the snapshots published during an earlier boot that may not have reached
    /// the disk (a crash or power loss can leave them with lost data); each is made again
    /// from its blob when next needed. One readdir, unless the machine has rebooted since.
    pub(crate) fn drop_unsynced_snapshots(&self) -> Result<()> {
        let dir = self.unsynced_dir();
        let current = boot_id();
        let stale = || -> Vec<PathBuf> {
            let Ok(rd) = std::fs::read_dir(&dir) else { return vec![] };
            rd.flatten().filter(|e| current.as_deref().is_none_or(|c| e.file_name() != c)).map(|e| e.path()).collect()
        };
        if stale().is_empty() {
            return Ok(());
        }
        // Nobody may use or make snapshots meanwhile; builds hold this shared.
        let _gc = self.gc_exclusive()?;
        for boot in stale() {
            for e in std::fs::read_dir(&boot).at("reading", &boot)?.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                    remove_tree(&self.snapshots_dir().join(&*name))?;
                }
                std::fs::remove_file(e.path()).at("removing", &e.path())?;
            }
            std::fs::remove_dir(&boot).at("removing", &boot)?;
        }
        Ok(())
    }

    /// Disk usage of a snapshot directory.
    pub fn snapshot_size(&self, diff_id: &Digest) -> u64 {
        du(&self.snapshot_path(diff_id))
    }
}

/// Disk space the files under `p` take (allocated blocks, each inode once: sparse files
/// and hard links are not counted at their apparent sizes), 0 when missing.
/// The bytes of the files under `p` (apparent sizes, directories not counted): what docker
/// shows as an image's or a container's size.
pub fn content_bytes(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else { return 0 };
    if !m.is_dir() {
        return m.len();
    }
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.filter_map(|e| e.ok()).map(|e| content_bytes(&e.path())).sum::<u64>()
}

/// The disk space under `p` (allocated blocks, each inode once): what removing it frees.
pub fn du(p: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    du_in(p, &mut seen)
}

fn du_in(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(p) else { return 0 };
    let own = if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) { 0 } else { m.blocks() * 512 };
    if !m.is_dir() {
        return own;
    }
    let Ok(rd) = std::fs::read_dir(p) else { return own };
    own + rd.filter_map(|e| e.ok()).map(|e| du_in(&e.path(), seen)).sum::<u64>()
}

/// A reader that copies what it reads into the new blob, keeping the first read error
/// (the download's or the decompressor's) for the message.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut crate::store::BlobWriter,
    read_error: Option<std::io::Error>,
}

impl<R: std::io::Read> std::io::Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Write as _;
        match self.inner.read(buf) {
            Ok(n) => {
                self.out.write_all(&buf[..n])?;
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let shown = std::io::Error::new(e.kind(), e.to_string());
                self.read_error.get_or_insert(e);
                Err(shown)
            }
        }
    }
}

/// The error for a blob that arrived other than announced.
fn mismatch(raw: &Digest, raw_size: u64, got: Option<Digest>, n: u64) -> StoreError {
    match got {
        _ if n != raw_size => StoreError::SizeMismatch { what: format!("layer {raw}"), expected: raw_size, actual: n },
        Some(got) => StoreError::DigestMismatch { what: format!("layer {raw}"), expected: *raw, actual: got },
        None => StoreError::BadImage(format!("layer {raw} did not arrive whole")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snapshots listed under another boot are dropped when the store is opened, and
    /// made again, the same, from their blobs.
    #[test]
    fn snapshots_of_an_earlier_boot_are_made_again_from_their_blobs() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("store")).unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/conf"), "value").unwrap();
        let layer = store.commit_dir(&tree, &WriteOptions::default(), true).unwrap();
        let snap = store.snapshot_path(&layer.diff_id);
        assert_eq!(std::fs::read_to_string(snap.join("etc/conf")).unwrap(), "value");
        let boot = store.unsynced_dir().join(boot_id().unwrap());
        assert!(boot.join(layer.diff_id.hex()).exists());

        // Reopened in the same boot: kept.
        let store = Store::open(d.path().join("store")).unwrap();
        assert!(snap.exists());

        // As if the machine had crashed: the data of the last write never arrived.
        std::fs::write(snap.join("etc/conf"), "").unwrap();
        std::fs::rename(&boot, store.unsynced_dir().join("an-earlier-boot")).unwrap();
        let store = Store::open(d.path().join("store")).unwrap();
        assert!(!snap.exists());
        assert_eq!(std::fs::read_dir(store.unsynced_dir()).unwrap().count(), 0);
        let again = store.ensure_snapshot(&layer.diff_id).unwrap();
        assert_eq!(std::fs::read_to_string(again.join("etc/conf")).unwrap(), "value");
    }

    /// What pull, load and import unpack is made durable there: a reboot keeps it, so the
    /// first build after one does not unpack its base again.
    #[test]
    fn durable_snapshots_survive_a_reboot() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("store")).unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/conf"), "value").unwrap();
        let layer = store.commit_dir(&tree, &WriteOptions::default(), true).unwrap();
        store.make_durable(&[layer.diff_id]).unwrap();
        let boot = store.unsynced_dir().join(boot_id().unwrap());
        assert!(!boot.join(layer.diff_id.hex()).exists());
        std::fs::rename(&boot, store.unsynced_dir().join("an-earlier-boot")).unwrap();
        let store = Store::open(d.path().join("store")).unwrap();
        assert!(store.snapshot_path(&layer.diff_id).join("etc/conf").exists());
    }
}
