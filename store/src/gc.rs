//! Garbage collection (`rbuild prune`) and verification (`rbuild fsck`).

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::layer::remove_tree;
use crate::snapshot::du;
use crate::store::Store;
use rayon::prelude::*;
use std::collections::HashSet;
use std::io::Read;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub images: usize,
    pub blobs: usize,
    pub snapshots: usize,
    pub cache_entries: usize,
    pub temp: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    pub blobs: usize,
    pub images: usize,
    /// Things that are wrong: corrupt blobs, images with missing parts.
    pub problems: Vec<String>,
    /// Things worth knowing that are not damage (leftover temp files, stale cache entries).
    pub notes: Vec<String>,
}

impl Store {
    /// The digests index.json needs: manifests, configs and layers of every image.
    fn live_from_index(&self, live: &mut HashSet<Digest>) -> Result<()> {
        for e in self.index_entries()? {
            live.insert(e.manifest);
            if let Ok(img) = self.image_by_manifest(&e.manifest) {
                live.insert(img.config_digest);
                live.extend(img.layers.iter().map(|l| l.diff_id));
            }
        }
        Ok(())
    }

    /// Removes what nothing references: blobs, snapshots, stale cache entries, temp files.
    /// With `all`, also untagged images and the whole build cache.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let _gc = self.gc_exclusive()?;
        let mut report = PruneReport::default();
        if all {
            report.images = self.update_index(|entries| {
                let before = entries.len();
                entries.retain(|e| e.name.is_some());
                Ok(before - entries.len())
            })?;
        }
        // Holding the gc lock exclusively is enough: every process that adds blobs holds it
        // shared, and naming an image only references blobs that are already live.
        let mut live = HashSet::new();
        self.live_from_index(&mut live)?;
        for rec in self.cache_entries()? {
            let complete = rec.refs.iter().all(|d| self.has_blob(d));
            if all || !complete {
                self.cache_remove(&rec.key)?;
                report.cache_entries += 1;
            } else {
                live.extend(rec.refs.iter().copied());
            }
        }
        live.extend(self.pinned()?);

        let blobs = self.blobs_dir();
        for e in std::fs::read_dir(&blobs).at("reading", &blobs)? {
            let e = e.at("reading", &blobs)?;
            let name = e.file_name().to_string_lossy().to_string();
            let keep = Digest::from_hex(&name).is_some_and(|d| live.contains(&d));
            if !keep {
                report.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(e.path()).at("removing", &e.path())?;
                report.blobs += 1;
            }
        }
        let snaps = self.snapshots_dir();
        for e in std::fs::read_dir(&snaps).at("reading", &snaps)? {
            let e = e.at("reading", &snaps)?;
            let name = e.file_name().to_string_lossy().to_string();
            if !Digest::from_hex(&name).is_some_and(|d| live.contains(&d)) {
                report.bytes += du(&e.path());
                remove_tree(&e.path())?;
                self.forget_unsynced(&name);
                report.snapshots += 1;
            }
        }
        // Every writer holds the gc lock shared, so nothing in tmp/ is in use now.
        let tmp = self.tmp_dir();
        for e in std::fs::read_dir(&tmp).at("reading", &tmp)? {
            let e = e.at("reading", &tmp)?;
            report.bytes += du(&e.path());
            remove_tree(&e.path())?;
            report.temp += 1;
        }
        Ok(report)
    }

    /// Verifies every blob's content against its name and every image's parts.
    pub fn fsck(&self) -> Result<FsckReport> {
        let _gc = self.gc_guard()?;
        let mut r = FsckReport::default();
        for f in ["oci-layout", "index.json"] {
            let p = self.root().join(f);
            match std::fs::read(&p) {
                Ok(d) if serde_json::from_slice::<serde_json::Value>(&d).is_ok() => {}
                Ok(_) => r.problems.push(format!("{f} is not valid JSON")),
                Err(e) => r.problems.push(format!("{f}: {e}")),
            }
        }
        let blobs = self.blobs_dir();
        let files: Vec<_> =
            std::fs::read_dir(&blobs).at("reading", &blobs)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        r.blobs = files.len();
        let bad: Vec<String> = files
            .par_iter()
            .filter_map(|p| {
                let name = p.file_name()?.to_string_lossy().to_string();
                let Some(want) = Digest::from_hex(&name) else {
                    return Some(format!("blob {name}: not a sha256 name"));
                };
                let mut f = match std::fs::File::open(p) {
                    Ok(f) => f,
                    Err(e) => return Some(format!("blob {name}: {e}")),
                };
                let mut h = crate::digest::Hasher::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    match f.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => h.update(&buf[..n]),
                        Err(e) => return Some(format!("blob {name}: {e}")),
                    }
                }
                let got = h.finish();
                (got != want).then(|| format!("blob {want} is corrupt: its content hashes to {got}"))
            })
            .collect();
        r.problems.extend(bad);
        for e in self.index_entries()? {
            r.images += 1;
            let label = e.name.as_ref().map(|n| n.familiar()).unwrap_or_else(|| e.manifest.to_string());
            match self.image_by_manifest(&e.manifest) {
                Ok(img) => {
                    for l in &img.layers {
                        if !self.has_blob(&l.diff_id) {
                            r.problems.push(format!("image {label}: layer {} is missing", l.diff_id));
                        }
                    }
                }
                Err(err) => r.problems.push(format!("image {label}: {err}")),
            }
        }
        for rec in self.cache_entries()? {
            if rec.refs.iter().any(|d| !self.has_blob(d)) {
                r.notes.push(format!("cache entry {} names missing blobs (unused; prune removes it)", rec.key));
            }
        }
        let snaps = self.snapshots_dir();
        for e in std::fs::read_dir(&snaps).at("reading", &snaps)?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            match Digest::from_hex(&name) {
                None => r.problems.push(format!("snapshot {name}: not a sha256 name")),
                Some(d) if !self.has_blob(&d) => {
                    r.notes.push(format!("snapshot {name} has no layer blob (prune removes it)"))
                }
                _ => {}
            }
        }
        let temp = std::fs::read_dir(self.tmp_dir()).map(|d| d.count()).unwrap_or(0);
        if temp > 0 {
            r.notes.push(format!("{temp} leftover temp entries (from interrupted writes; prune removes them)"));
        }
        Ok(r)
    }
}
