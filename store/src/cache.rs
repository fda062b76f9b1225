//! Records other crates keep in the store: build-cache entries (key → result) and pins
//! (blobs a container or other owner needs). Both name the digests they depend on, so
//! garbage collection keeps them, and drops cache entries whose blobs are gone.

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One build-cache entry. `value` belongs to whoever wrote it (the builder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: String,
    pub value: serde_json::Value,
    /// Blobs the entry needs (layers, configs).
    pub refs: Vec<Digest>,
    pub created: i64,
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= 128 && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
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
        let data = std::fs::read(self.cache_path(key)).ok()?;
        let rec: CacheRecord = serde_json::from_slice(&data).ok()?;
        // An entry is only good while everything it names is stored.
        rec.refs.iter().all(|d| self.has_blob(d)).then_some(rec)
    }

    pub fn cache_put(&self, rec: &CacheRecord) -> Result<()> {
        if !valid_key(&rec.key) {
            return Err(crate::StoreError::BadImage(format!("invalid cache key {:?}", rec.key)));
        }
        let data = serde_json::to_vec(rec).unwrap_or_default();
        self.write_atomic(&self.cache_path(&rec.key), &data)
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
        let dir = self.pins_dir();
        std::fs::create_dir_all(&dir).at("creating", &dir)?;
        let data = serde_json::to_vec(digests).unwrap_or_default();
        self.write_atomic(&dir.join(owner), &data)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_need_their_blobs() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let d = s.put_blob(b"layer").unwrap();
        let rec = CacheRecord { key: "k1".into(), value: serde_json::json!({"x": 1}), refs: vec![d], created: 0 };
        s.cache_put(&rec).unwrap();
        assert_eq!(s.cache_get("k1"), Some(rec));
        std::fs::remove_file(s.blob_path(&d)).unwrap();
        assert_eq!(s.cache_get("k1"), None);
        assert_eq!(s.cache_get("../../etc/passwd"), None);
    }
}
