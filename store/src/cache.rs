//! Records other crates keep in the store: build-cache entries (key → result) and pins
//! (blobs a container or other owner needs). Both name the digests they depend on, so
//! garbage collection keeps them, and drops cache entries whose blobs are gone.

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::image::LayerRef;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One build-cache entry: what the build step with this key left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: String,
    pub value: CacheValue,
    /// Blobs the entry needs (layers, configs).
    pub refs: Vec<Digest>,
    pub created: i64,
}

/// What a build step left, as the builder records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheValue {
    /// The layer the step committed; None when its diff was empty.
    pub layer: Option<LayerRef>,
    /// The step removed the working directory, which docker makes again for the next
    /// step's container.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub workdir_gone: bool,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= 128 && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// A file of a few hundred bytes, as a cache record is: an open, one read and a close
/// (`fs::read` also stats it and reads again to see the end: a no-op build reads one
/// record a step). A read that fills the buffer goes on to the end; a short read of a
/// regular file is its end (were it not, the record would not parse: a miss).
fn read_small(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    let n = loop {
        match f.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    buf.truncate(n);
    if n == 4096 {
        f.read_to_end(&mut buf)?;
    }
    Ok(buf)
}

impl Store {
    fn cache_path(&self, key: &str) -> PathBuf {
        self.cache_dir().join(format!("{key}.json"))
    }

    /// The entry for `key`, if any (and readable).
    pub fn cache_get(&self, key: &str) -> Option<CacheRecord> {
        if !valid_key(key) {
            return None;
        }
        let data = read_small(&self.cache_path(key)).ok()?;
        let rec: CacheRecord = serde_json::from_slice(&data).ok()?;
        // An entry is only good while everything it names is stored: held first, so that
        // what is there now stays while this process runs.
        self.hold_stored(&rec.refs, false).ok()?.then_some(rec)
    }

    pub fn cache_put(&self, rec: &CacheRecord) -> Result<()> {
        if !valid_key(&rec.key) {
            return Err(crate::StoreError::BadImage(format!("invalid cache key {:?}", rec.key)));
        }
        let data = serde_json::to_vec(rec).unwrap_or_default();
        let path = self.cache_path(&rec.key);
        // The record it replaces (a --no-cache rebuild replaces every step's) is moved
        // into the temp dir and freed by the reaper: renamed over, its blocks were freed
        // in the rename — a synchronous discard on ext4 mounted with discard, 0.1 ms a
        // step and 320 ms once behind writeback. Meanwhile the key reads as a miss.
        crate::reaper::move_aside(&path, &self.tmp_dir());
        // Atomic but not waited for: a record a crash loses or leaves empty reads as a miss
        // (the step runs again), and the blobs it names were synced before it was written.
        // Two fsyncs a build step were a third of steps50's time on this VM's disk.
        self.write_replacing(&path, &data, false)
    }

    /// Every cache entry.
    pub fn cache_entries(&self) -> Result<Vec<CacheRecord>> {
        let dir = self.cache_dir();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).at("reading", &dir)? {
            let e = e.at("reading", &dir)?;
            if e.path().extension().is_some_and(|x| x == "json") {
                if let Ok(r) = serde_json::from_slice::<CacheRecord>(&std::fs::read(e.path()).unwrap_or_default()) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Entries that do not read as records (a crash can leave a new one empty: records
    /// are not synced); prune removes them.
    pub(crate) fn cache_unreadable(&self) -> Result<Vec<PathBuf>> {
        let dir = self.cache_dir();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).at("reading", &dir)?.flatten() {
            let data = std::fs::read(e.path()).unwrap_or_default();
            if e.path().extension().is_some_and(|x| x == "json")
                && serde_json::from_slice::<CacheRecord>(&data).is_err()
            {
                out.push(e.path());
            }
        }
        Ok(out)
    }

    pub fn cache_remove(&self, key: &str) -> Result<()> {
        if !valid_key(key) {
            return Ok(());
        }
        match std::fs::remove_file(self.cache_path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::StoreError::io("removing a cache entry", e)),
        }
    }

    fn pins_dir(&self) -> PathBuf {
        self.state_dir().join("pins")
    }

    /// Keeps `digests` (and their snapshots) from garbage collection until `unpin(owner)`.
    pub fn pin(&self, owner: &str, digests: &[Digest]) -> Result<()> {
        self.write_pin(owner, digests, true)
    }

    /// [`Store::pin`] for an owner that does not outlive a crash (a container removed when
    /// it exits): the pin holds while this machine runs, without waiting for the disk —
    /// behind a large build's writeback, that wait is the longest part of `run --rm`.
    pub fn pin_volatile(&self, owner: &str, digests: &[Digest]) -> Result<()> {
        self.write_pin(owner, digests, false)
    }

    fn write_pin(&self, owner: &str, digests: &[Digest], durable: bool) -> Result<()> {
        let dir = self.pins_dir();
        std::fs::create_dir_all(&dir).at("creating", &dir)?;
        let data = serde_json::to_vec(digests).unwrap_or_default();
        self.write_replacing(&dir.join(owner), &data, durable)
    }

    pub fn unpin(&self, owner: &str) -> Result<()> {
        match std::fs::remove_file(self.pins_dir().join(owner)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::StoreError::io("removing a pin", e)),
        }
    }

    /// The owners whose pins include `digest`.
    pub fn pinned_by(&self, digest: &Digest) -> Result<Vec<String>> {
        let dir = self.pins_dir();
        let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(vec![]) };
        let mut out = Vec::new();
        for e in rd.flatten() {
            if let Ok(v) = serde_json::from_slice::<Vec<Digest>>(&std::fs::read(e.path()).unwrap_or_default()) {
                if v.contains(digest) {
                    out.push(e.file_name().to_string_lossy().to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// All pinned digests.
    pub fn pinned(&self) -> Result<Vec<Digest>> {
        let dir = self.pins_dir();
        let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(vec![]) };
        let mut out = Vec::new();
        for e in rd.flatten() {
            if let Ok(v) = serde_json::from_slice::<Vec<Digest>>(&std::fs::read(e.path()).unwrap_or_default()) {
                out.extend(v);
            }
        }
        Ok(out)
    }
}

/// The config media type of a build-cache artifact: an OCI image manifest whose config
/// lists cache records and whose layers are the blobs they need. Registries store it as
/// any other manifest; `--cache-from` reads it back.
pub const MEDIA_TYPE_CACHE_CONFIG: &str = "application/vnd.rbuild.cache.config.v1+json";

/// The config blob of a cache artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    pub version: u32,
    pub records: Vec<CacheRecord>,
    /// Cache mounts' contents, as layers of the artifact (rbuilds that predate them
    /// ignore the field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<crate::cachemount::CacheMountEntry>,
    /// The builder's record of the steps of the build that exported the cache, so that a
    /// build elsewhere can say why a step missed (the builder's to read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<serde_json::Value>,
}

const CACHE_CONFIG_VERSION: u32 = 1;

impl CacheConfig {
    pub fn from_json(data: &[u8]) -> Result<CacheConfig> {
        let c: CacheConfig = serde_json::from_slice(data)
            .map_err(|e| crate::StoreError::BadImage(format!("build cache config: {e}")))?;
        if c.version != CACHE_CONFIG_VERSION {
            return Err(crate::StoreError::BadImage(format!(
                "build cache config version {} is not supported (this rbuild reads {CACHE_CONFIG_VERSION})",
                c.version
            )));
        }
        if let Some(r) = c.records.iter().find(|r| !valid_key(&r.key)) {
            return Err(crate::StoreError::BadImage(format!("build cache config: invalid key {:?}", r.key)));
        }
        if let Some(m) = c.mounts.iter().find(|m| !crate::cachemount::valid_mount_id(&m.id)) {
            return Err(crate::StoreError::BadImage(format!("build cache config: invalid cache mount {:?}", m.id)));
        }
        Ok(c)
    }
}

/// A cache artifact written into the store, ready to leave it.
#[derive(Debug, Clone)]
pub struct CacheArtifact {
    pub manifest: Digest,
    pub manifest_size: u64,
    pub config: Digest,
    pub config_size: u64,
    /// The blobs the records need (layers), each once.
    pub blobs: Vec<(Digest, u64)>,
    pub records: usize,
}

impl Store {
    /// Writes the cache artifact of the stored records for `keys` (unknown keys are
    /// skipped) as a config blob and a manifest blob.
    pub fn write_cache_artifact(&self, keys: &[String]) -> Result<CacheArtifact> {
        self.write_cache_artifact_with(keys, &[], None)
    }

    /// [`Store::write_cache_artifact`] that also carries the cache mounts `mounts` (their
    /// layers already stored) and the builder's journal of the build.
    pub fn write_cache_artifact_with(
        &self,
        keys: &[String],
        mounts: &[crate::cachemount::CacheMountEntry],
        journal: Option<serde_json::Value>,
    ) -> Result<CacheArtifact> {
        let mut records: Vec<CacheRecord> = Vec::new();
        for k in keys {
            if records.iter().any(|r| &r.key == k) {
                continue;
            }
            if let Some(r) = self.cache_get(k) {
                records.push(r);
            }
        }
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        for d in records.iter().flat_map(|r| r.refs.iter()).chain(mounts.iter().map(|m| &m.layer)) {
            if !blobs.iter().any(|(b, _)| b == d) {
                blobs.push((*d, self.blob_size(d)?));
            }
        }
        let n = records.len();
        let c = CacheConfig { version: CACHE_CONFIG_VERSION, records, mounts: mounts.to_vec(), journal };
        let cfg = serde_json::to_vec(&c).unwrap_or_default();
        let config = self.put_blob(&cfg)?;
        let layers: Vec<crate::LayerRef> =
            blobs.iter().map(|(d, size)| crate::LayerRef { diff_id: *d, size: *size }).collect();
        let manifest = crate::image::build_manifest_of(MEDIA_TYPE_CACHE_CONFIG, config, cfg.len() as u64, &layers)?;
        let m = manifest.to_string().map_err(|e| crate::StoreError::BadImage(e.to_string()))?.into_bytes();
        let manifest = self.put_blob(&m)?;
        Ok(CacheArtifact {
            manifest,
            manifest_size: m.len() as u64,
            config,
            config_size: cfg.len() as u64,
            blobs,
            records: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_need_their_blobs() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let d = s.put_blob(b"layer").unwrap();
        let rec = CacheRecord { key: "k1".into(), value: CacheValue::default(), refs: vec![d], created: 0 };
        s.cache_put(&rec).unwrap();
        assert_eq!(s.cache_get("k1"), Some(rec));
        std::fs::remove_file(s.blob_path(&d)).unwrap();
        assert_eq!(s.cache_get("k1"), None);
        assert_eq!(s.cache_get("../../etc/passwd"), None);
    }

    #[test]
    fn a_replaced_record_is_freed_by_the_reaper() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let old = CacheRecord { key: "k".into(), value: CacheValue::default(), refs: vec![], created: 1 };
        let new = CacheRecord { created: 2, ..old.clone() };
        s.cache_put(&old).unwrap();
        s.cache_put(&new).unwrap();
        assert_eq!(s.cache_get("k"), Some(new));
        crate::reaper::wait();
        let left: Vec<_> = std::fs::read_dir(s.tmp_dir()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "left in the temp dir: {left:?}");
    }

    #[test]
    fn small_reads_read_it_all() {
        let t = tempfile::tempdir().unwrap();
        for n in [0, 1, 4095, 4096, 4097, 9000] {
            let p = t.path().join(n.to_string());
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            assert_eq!(read_small(&p).unwrap(), data, "{n} bytes");
        }
        assert!(read_small(&t.path().join("none")).is_err());
    }

    #[test]
    fn cache_artifacts_carry_records_and_their_blobs() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let d = s.put_blob(b"layer").unwrap();
        s.cache_put(&CacheRecord { key: "a".into(), value: CacheValue::default(), refs: vec![], created: 1 }).unwrap();
        s.cache_put(&CacheRecord {
            key: "b".into(),
            value: CacheValue { layer: Some(LayerRef { diff_id: d, size: 5 }), workdir_gone: true },
            refs: vec![d],
            created: 2,
        })
        .unwrap();
        let art = s.write_cache_artifact(&["a".into(), "b".into(), "b".into(), "missing".into()]).unwrap();
        assert_eq!(art.records, 2);
        assert_eq!(art.blobs, vec![(d, 5)]);
        let cfg = CacheConfig::from_json(&s.read_blob(&art.config).unwrap()).unwrap();
        assert_eq!(cfg.records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let m: serde_json::Value = serde_json::from_slice(&s.read_blob(&art.manifest).unwrap()).unwrap();
        assert_eq!(m["config"]["mediaType"], MEDIA_TYPE_CACHE_CONFIG);
        assert_eq!(m["layers"][0]["digest"], d.to_string());
        // A config with a hostile key is refused.
        let bad =
            serde_json::json!({"version": 1, "records": [{"key": "../x", "value": {}, "refs": [], "created": 0}]});
        assert!(CacheConfig::from_json(bad.to_string().as_bytes()).is_err());
    }
}
