//! Cache keys and the records stored under them.

use crate::build::*;
use crate::error::Result;
use crate::stage::State;
use rbuild_store::{CacheRecord, LayerRef};
use sha2::{Digest as _, Sha256};

/// Bump when the meaning of a cache key or record changes: old entries then simply miss.
/// 3: a step whose diff is empty records no layer.
pub(crate) const CACHE_VERSION: &str = "rbuild-cache-3";

pub(crate) fn hash_parts(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Ctx<'_> {
    /// The record for `key`: the store's, else the first `--cache-from` cache's.
    pub(crate) fn record(&self, key: &str) -> Option<CacheRecord> {
        if let Some(r) = self.store.cache_get(key) {
            return Some(r);
        }
        for c in &self.opts.cache_from {
            match c.fetch(self.store, key) {
                Ok(Some(r)) => return Some(r),
                Ok(None) => {}
                Err(e) => self.progress.event(Event::Warning { message: format!("cache import: {e}") }),
            }
        }
        None
    }

    /// A cache hit for the current key: the layer (if the step made one) is appended.
    /// Returns Some(layer-or-none) on a hit.
    pub(crate) fn cached(&self, st: &mut State, id: usize) -> Option<Option<LayerRef>> {
        if self.opts.no_cache {
            return None;
        }
        let rec = self.record(&st.key)?;
        let layer = match rec.value.get("layer") {
            Some(serde_json::Value::Object(o)) => {
                let diff_id = o.get("diff_id")?.as_str()?.parse().ok()?;
                let size = o.get("size")?.as_u64()?;
                Some(LayerRef { diff_id, size })
            }
            _ => None,
        };
        if let Some(l) = &layer {
            st.config.rootfs.diff_ids.push(l.diff_id);
            st.layers.push(l.clone());
        }
        st.workdir_gone = rec.value.get("workdir_gone").and_then(|v| v.as_bool()).unwrap_or(false);
        self.used_keys.lock().unwrap_or_else(|e| e.into_inner()).push((st.stage, st.key.clone()));
        self.progress.event(Event::Cached { id });
        Some(layer)
    }

    /// Records the result of a step under the current key.
    pub(crate) fn remember(&self, st: &State, layer: Option<&LayerRef>) -> Result<()> {
        let mut value = match layer {
            Some(l) => serde_json::json!({"layer": {"diff_id": l.diff_id.to_string(), "size": l.size}}),
            None => serde_json::json!({"layer": null}),
        };
        if st.workdir_gone {
            value["workdir_gone"] = serde_json::Value::Bool(true);
        }
        let rec = CacheRecord {
            key: st.key.clone(),
            value,
            refs: layer.map(|l| vec![l.diff_id]).unwrap_or_default(),
            created: now_secs(),
        };
        self.store.cache_put(&rec)?;
        self.used_keys.lock().unwrap_or_else(|e| e.into_inner()).push((st.stage, st.key.clone()));
        Ok(())
    }
}
