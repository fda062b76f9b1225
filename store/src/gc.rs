//! Garbage collection (`rbuild prune`) and verification (`rbuild fsck`).

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::layer::remove_tree;
use crate::snapshot::du;
use crate::store::Store;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
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
    /// The blobs whose content does not match their digest.
    pub corrupt: Vec<Digest>,
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
        // shared, and so does every process adding to what it holds (lease.rs); naming an
        // image only references blobs that are already live.
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
        for p in self.cache_unreadable()? {
            std::fs::remove_file(&p).at("removing", &p)?;
            report.cache_entries += 1;
        }
        live.extend(self.pinned()?);
        // What running processes hold: the layers a build made or found so far, the
        // images they looked up; their temp entries too.
        let mut procs = crate::lease::Processes::new(&self.state_dir());
        live.extend(procs.held_digests()?);

        let blobs = self.blobs_dir();
        for e in std::fs::read_dir(&blobs).at("reading", &blobs)? {
            let e = e.at("reading", &blobs)?;
            let name = e.file_name().to_string_lossy().to_string();
            let keep = Digest::from_hex(&name).is_some_and(|d| live.contains(&d));
            if !keep {
                report.bytes += du(&e.path());
                std::fs::remove_file(e.path()).at("removing", &e.path())?;
                report.blobs += 1;
            }
        }
        // What is known about layers that are gone.
        let forms = self.area("compressed")?;
        for e in std::fs::read_dir(forms.path()).at("reading", forms.path())?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let hex = name.strip_suffix(".json").unwrap_or(&name);
            match Digest::from_hex(hex) {
                Some(d) if live.contains(&d) => {}
                Some(d) => self.forget_compressed_forms(&d)?,
                None => forms.remove(&name)?,
            }
        }
        // Areas of other rbuild versions.
        for dir in self.retired_areas()? {
            report.bytes += du(&dir);
            remove_tree(&dir)?;
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
        // A temp entry is in use while the process named in it runs (a build's step dir,
        // its mounts); the others are left from processes that died.
        let tmp = self.tmp_dir();
        for e in std::fs::read_dir(&tmp).at("reading", &tmp)? {
            let e = e.at("reading", &tmp)?;
            let name = e.file_name().to_string_lossy().to_string();
            if crate::lease::pid_of_temp(&name).is_some_and(|pid| procs.alive(pid)) {
                continue;
            }
            report.bytes += du(&e.path());
            remove_tree(&e.path())?;
            report.temp += 1;
        }
        procs.remove_dead()?;
        Ok(report)
    }

    /// Verifies every blob's content against its name and every image's parts. A corrupt
    /// blob is reported with the images that use it and how to repair them.
    pub fn fsck(&self) -> Result<FsckReport> {
        let _gc = self.gc_guard()?;
        let mut r = FsckReport::default();
        self.fsck_top_files(&mut r);
        let bad_blobs = self.fsck_blobs(&mut r)?;
        r.corrupt = bad_blobs.iter().map(|(d, _)| *d).collect();
        let users = self.fsck_images(&mut r)?;
        for (d, msg) in bad_blobs {
            let used = users.get(&d).map(|u| u.join(", ")).unwrap_or_else(|| "used by no image".into());
            r.problems.push(format!(
                "{msg}; it is {used}. To repair: `rbuild fsck --repair` removes it (an image whose manifest or \
                 config it is loses its name), then pull, load or build the image again"
            ));
        }
        self.fsck_leftovers(&mut r)?;
        Ok(r)
    }

    /// oci-layout and index.json are there and JSON.
    fn fsck_top_files(&self, r: &mut FsckReport) {
        for f in ["oci-layout", "index.json"] {
            let p = self.root().join(f);
            match std::fs::read(&p) {
                Ok(d) if serde_json::from_slice::<serde_json::Value>(&d).is_ok() => {}
                Ok(_) => r.problems.push(format!("{f} is not valid JSON")),
                Err(e) => r.problems.push(format!("{f}: {e}")),
            }
        }
    }

    /// Hashes every blob (in parallel): counts them in `r`, reports unreadable ones there and
    /// returns the corrupt ones with their message.
    fn fsck_blobs(&self, r: &mut FsckReport) -> Result<Vec<(Digest, String)>> {
        let blobs = self.blobs_dir();
        let files: Vec<_> =
            std::fs::read_dir(&blobs).at("reading", &blobs)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        r.blobs = files.len();
        let checked: Vec<std::result::Result<(), (Option<Digest>, String)>> =
            files.par_iter().map(|p| check_blob(p)).collect();
        let mut bad_blobs = Vec::new();
        for c in checked.into_iter().filter_map(|c| c.err()) {
            match c {
                (Some(d), msg) => bad_blobs.push((d, msg)),
                (None, msg) => r.problems.push(msg),
            }
        }
        Ok(bad_blobs)
    }

    /// Counts the images and reports the ones with missing or unreadable parts; returns who
    /// uses each blob (for a corrupt blob, the images it breaks).
    fn fsck_images(&self, r: &mut FsckReport) -> Result<HashMap<Digest, Vec<String>>> {
        let mut users: HashMap<Digest, Vec<String>> = HashMap::new();
        for e in self.index_entries()? {
            r.images += 1;
            let label = e.name.as_ref().map(|n| n.familiar()).unwrap_or_else(|| e.manifest.to_string());
            users.entry(e.manifest).or_default().push(format!("the manifest of image {label}"));
            match self.image_by_manifest(&e.manifest) {
                Ok(img) => {
                    users.entry(img.config_digest).or_default().push(format!("the config of image {label}"));
                    let n = img.layers.len();
                    for (i, l) in img.layers.iter().enumerate() {
                        users.entry(l.diff_id).or_default().push(format!("layer {} of {n} of image {label}", i + 1));
                        if !self.has_blob(&l.diff_id) {
                            r.problems.push(format!(
                                "image {label}: layer {} is missing (pull, load or build {label} again)",
                                l.diff_id
                            ));
                        }
                    }
                }
                Err(_) if r.corrupt.contains(&e.manifest) => {} // reported with the blob
                Err(err) => r.problems.push(format!("image {label}: {err}")),
            }
        }
        Ok(users)
    }

    /// What prune would remove: stale cache entries, snapshots without a blob, leftover temp
    /// entries (notes), and snapshots that are not named by a digest (problems).
    fn fsck_leftovers(&self, r: &mut FsckReport) -> Result<()> {
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
        let mut procs = crate::lease::Processes::new(&self.state_dir());
        let temp = std::fs::read_dir(self.tmp_dir())
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        !crate::lease::pid_of_temp(&name).is_some_and(|pid| procs.alive(pid))
                    })
                    .count()
            })
            .unwrap_or(0);
        if temp > 0 {
            r.notes.push(format!("{temp} leftover temp entries (from interrupted writes; prune removes them)"));
        }
        Ok(())
    }

    /// Removes the corrupt blobs `report` found; images whose manifest or config was
    /// corrupt lose their names (nothing could read them). Returns what was done. An image
    /// that lost a layer keeps its name: pulling, loading or building it again brings the
    /// layer back. Snapshots stay: one is only ever made from a blob that matched its
    /// digest, and a running container may have it mounted.
    pub fn repair(&self, report: &FsckReport) -> Result<Vec<String>> {
        let _gc = self.gc_exclusive()?;
        let mut done = Vec::new();
        let bad: HashSet<Digest> = report.corrupt.iter().copied().collect();
        if bad.is_empty() {
            return Ok(done);
        }
        let unreadable = |e: &crate::image::IndexEntry| -> bool {
            bad.contains(&e.manifest)
                || self.image_by_manifest(&e.manifest).is_ok_and(|i| bad.contains(&i.config_digest))
        };
        let dropped = self.update_index(|entries| {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(entries).into_iter().partition(|e| unreadable(e));
            *entries = kept;
            Ok(gone)
        })?;
        for e in dropped {
            let label = e.name.as_ref().map(|n| n.familiar()).unwrap_or_else(|| e.manifest.to_string());
            done.push(format!("removed image {label} (its manifest or config was corrupt)"));
        }
        for d in &report.corrupt {
            let p = self.blob_path(d);
            std::fs::remove_file(&p).at("removing", &p)?;
            done.push(format!("removed corrupt blob {d}"));
        }
        Ok(done)
    }
}

/// A blob's content hashed and compared with its name: `Err((Some(digest), message))` for a
/// corrupt blob, `Err((None, message))` for one that cannot be checked.
fn check_blob(p: &std::path::Path) -> std::result::Result<(), (Option<Digest>, String)> {
    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let Some(want) = Digest::from_hex(&name) else {
        return Err((None, format!("blob {name}: not a sha256 name")));
    };
    let mut f = std::fs::File::open(p).map_err(|e| (None, format!("blob {name}: {e}")))?;
    let mut h = crate::digest::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) => return Err((None, format!("blob {name}: {e}"))),
        }
    }
    let got = h.finish();
    if got == want {
        Ok(())
    } else {
        Err((Some(want), format!("blob {want} is corrupt: its content hashes to {got}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pid of a process that has exited.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    /// Regression (issue 12, 6): prune removed every temp entry and every blob no image,
    /// cache entry or pin named, also those a running build was using. What a live
    /// process holds stays; what dead processes left goes, their files with it.
    /// Regression (issue 12): prune reported apparent sizes — 23 GB "reclaimed" from an
    /// 11 GB store (sparse files, hard links counted per name). It reports the disk
    /// space the removed files took.
    #[test]
    fn prune_reports_the_space_it_freed() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let snap = store.snapshots_dir().join(Digest::of(b"gone").hex());
        std::fs::create_dir_all(&snap).unwrap();
        let sparse = std::fs::File::create(snap.join("sparse")).unwrap();
        sparse.set_len(100 << 20).unwrap();
        std::fs::write(snap.join("a"), vec![1u8; 1 << 20]).unwrap();
        std::fs::hard_link(snap.join("a"), snap.join("b")).unwrap();
        let r = store.prune(false).unwrap();
        assert_eq!(r.snapshots, 1);
        assert!(r.bytes >= 1 << 20 && r.bytes < 2 << 20, "reported {} bytes for 1 MiB on disk", r.bytes);
    }

    #[test]
    fn prune_leaves_what_live_processes_hold() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let mine = store.temp_dir("step").unwrap();
        std::fs::write(mine.join("upper"), "in use").unwrap();
        let made = store.put_blob(b"a layer this process made").unwrap();
        let dead = dead_pid();
        let left = store.tmp_dir().join(format!("step-{dead}-0123456789ab"));
        std::fs::create_dir_all(left.join("upper/deep")).unwrap();
        std::fs::write(store.tmp_dir().join(format!("tmp-{dead}-ab-0")), "half a blob").unwrap();
        // A blob nobody holds, and one only a dead process listed.
        let stray = Digest::of(b"stray");
        std::fs::write(store.blob_path(&stray), b"stray").unwrap();
        let listed = Digest::of(b"listed by the dead");
        std::fs::write(store.blob_path(&listed), b"listed by the dead").unwrap();
        let dead_file = crate::lease::procs_dir(&store.state_dir()).join(dead.to_string());
        std::fs::write(&dead_file, format!("{listed}\n")).unwrap();

        let r = store.prune(false).unwrap();
        assert_eq!(std::fs::read_to_string(mine.join("upper")).unwrap(), "in use");
        assert!(store.has_blob(&made));
        assert!(!left.exists() && !store.tmp_dir().join(format!("tmp-{dead}-ab-0")).exists());
        assert!(!store.has_blob(&stray) && !store.has_blob(&listed));
        assert!(!dead_file.exists());
        assert_eq!((r.temp, r.blobs), (2, 2));
        // A store opened again in this process shares its hold.
        let again = Store::open(t.path().join("s")).unwrap();
        again.prune(true).unwrap();
        assert!(store.has_blob(&made) && mine.exists());
    }
}
