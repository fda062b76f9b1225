//! What this store knows about an image beyond its config: when it was made here and the
//! registry digests it has (`RepoDigests`). An image config's `created` is fixed for
//! reproducible builds (the base image's time, or `SOURCE_DATE_EPOCH`), so `images` and
//! `inspect` show the local record's time when there is one; a registry's manifest digest
//! is not the store's own (layers are compressed on the wire), so pull and push record it.
//!
//! ```text
//! ROOT/rbuild/images/<config hex>.json   {"created_here":"…","repo_digests":["repo@sha256:…"]}
//! ```
//! Records are keyed by image ID and written atomically under the store lock.

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::reference::Reference;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The local record of one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// When the image was first made in this store (RFC 3339), for builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_here: Option<String>,
    /// `repository@sha256:…` as the registry knows the image (full repository names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_digests: Vec<String>,
    /// The bytes of the image's files (what docker shows as its size), once measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_size: Option<u64>,
}

impl ImageRecord {
    /// The registry digests as `Reference`s (those that parse).
    pub fn repo_digest_refs(&self) -> Vec<Reference> {
        self.repo_digests.iter().filter_map(|s| Reference::parse(s).ok()).filter(|r| r.digest.is_some()).collect()
    }
}

impl Store {
    fn records_dir(&self) -> PathBuf {
        self.state_dir().join("images")
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.records_dir().join(format!("{}.json", id.hex()))
    }

    /// The record of image `id` (empty when there is none or it cannot be read).
    pub fn image_record(&self, id: &Digest) -> ImageRecord {
        std::fs::read(self.record_path(id)).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
    }

    /// Changes the record of `id` under the store's lock.
    pub fn update_image_record(&self, id: &Digest, f: impl FnOnce(&mut ImageRecord)) -> Result<ImageRecord> {
        let dir = self.records_dir();
        std::fs::create_dir_all(&dir).at("creating", &dir)?;
        let _l = self.lock_write()?;
        let before = self.image_record(id);
        let mut rec = before.clone();
        f(&mut rec);
        // A record that did not change is not written again (a cached rebuild, a re-tag).
        if rec != before || !self.record_path(id).exists() {
            let data = serde_json::to_vec(&rec).unwrap_or_default();
            self.write_replacing(&self.record_path(id), &data, false)?;
        }
        Ok(rec)
    }

    /// Notes that `id` was made here at `time` (the first time is kept: a rebuild from the
    /// cache gives the same image, as docker's does).
    pub fn record_created_here(&self, id: &Digest, time: &str) -> Result<()> {
        self.update_image_record(id, |r| {
            if r.created_here.is_none() {
                r.created_here = Some(time.to_string());
            }
        })
        .map(|_| ())
    }

    /// Records that `repository` (full name, e.g. `127.0.0.1:5000/app`) holds image `id`
    /// as manifest `digest`; an older digest for the same repository is replaced.
    pub fn record_repo_digest(&self, id: &Digest, repository: &str, digest: &Digest) -> Result<()> {
        let entry = format!("{repository}@{digest}");
        self.update_image_record(id, |r| {
            r.repo_digests.retain(|d| d.rsplit_once('@').map(|(repo, _)| repo) != Some(repository));
            r.repo_digests.push(entry);
            r.repo_digests.sort();
        })
        .map(|_| ())
    }

    /// The size docker shows for an image: the bytes of its files (apparent sizes of its
    /// unpacked layers), not of its tar blobs. Measured on the snapshots once and kept in
    /// the record; while a layer is not unpacked, its blob's size stands in (not kept).
    pub fn image_content_size(&self, img: &crate::image::Image) -> u64 {
        if let Some(n) = self.image_record(&img.config_digest).content_size {
            return n;
        }
        let mut all_unpacked = true;
        let total = img
            .layers
            .iter()
            .map(|l| {
                let snap = self.snapshot_path(&l.diff_id);
                if snap.is_dir() {
                    crate::snapshot::content_bytes(&snap)
                } else {
                    all_unpacked = false;
                    l.size
                }
            })
            .sum();
        if all_unpacked {
            let _ = self.update_image_record(&img.config_digest, |r| r.content_size = Some(total));
        }
        total
    }

    /// Drops the records of images no longer in the store; returns how many.
    pub fn prune_image_records(&self) -> Result<usize> {
        let live: std::collections::HashSet<Digest> = self.images()?.into_iter().map(|i| i.config_digest).collect();
        let dir = self.records_dir();
        let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(0) };
        let mut n = 0;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(hex) = name.strip_suffix(".json") else { continue };
            if Digest::from_hex(hex).is_some_and(|d| !live.contains(&d)) {
                std::fs::remove_file(e.path()).at("removing", &e.path())?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_first_time_and_one_digest_per_repository() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let id = Digest::of(b"config");
        assert_eq!(s.image_record(&id), ImageRecord::default());
        s.record_created_here(&id, "2026-01-01T00:00:00Z").unwrap();
        s.record_created_here(&id, "2027-01-01T00:00:00Z").unwrap();
        assert_eq!(s.image_record(&id).created_here.as_deref(), Some("2026-01-01T00:00:00Z"));
        let (d1, d2) = (Digest::of(b"m1"), Digest::of(b"m2"));
        s.record_repo_digest(&id, "127.0.0.1:5000/app", &d1).unwrap();
        s.record_repo_digest(&id, "127.0.0.1:5000/other", &d1).unwrap();
        s.record_repo_digest(&id, "127.0.0.1:5000/app", &d2).unwrap();
        let r = s.image_record(&id);
        assert_eq!(r.repo_digests, vec![format!("127.0.0.1:5000/app@{d2}"), format!("127.0.0.1:5000/other@{d1}")]);
        assert_eq!(r.repo_digest_refs().len(), 2);
        // No image holds `id`: prune drops its record.
        assert_eq!(s.prune_image_records().unwrap(), 1);
        assert_eq!(s.image_record(&id), ImageRecord::default());
    }

    #[test]
    fn an_images_size_is_its_files_bytes_as_dockers() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let tree = t.path().join("tree");
        std::fs::create_dir_all(tree.join("d")).unwrap();
        std::fs::write(tree.join("d/a"), vec![1u8; 1000]).unwrap();
        std::fs::write(tree.join("b"), vec![2u8; 234]).unwrap();
        let layer = s.commit_dir(&tree, &crate::layer::WriteOptions::default(), true).unwrap();
        let mut cfg = crate::ImageConfig::default();
        cfg.rootfs.diff_ids.push(layer.diff_id);
        let img = s.write_image(&cfg, std::slice::from_ref(&layer)).unwrap();
        assert!(img.size() > 1234, "the tar has headers");
        assert_eq!(s.image_content_size(&img), 1234);
        assert_eq!(s.image_record(&img.config_digest).content_size, Some(1234));
    }
}
