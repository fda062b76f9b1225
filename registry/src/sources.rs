//! Where blobs are known to live in registries, so a push can mount a blob from another
//! repository of the same registry instead of uploading it again. Kept in the store's
//! `registry` area (`rbuild/registry/sources.json`); losing it only costs uploads.

use rbuild_store::{Digest, Store};
use std::collections::BTreeMap;

const MAX_PER_BLOB: usize = 8;

const FILE: &str = "sources.json";

fn read(store: &Store) -> BTreeMap<String, Vec<String>> {
    let data = store.area("registry").ok().and_then(|a| a.read(FILE).ok().flatten());
    data.and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
}

/// Repositories (`registry/repo`) of `registry` that hold `digest`.
pub fn repositories(store: &Store, registry: &str, digest: &Digest) -> Vec<String> {
    let prefix = format!("{registry}/");
    read(store)
        .remove(&digest.to_string())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.strip_prefix(&prefix).map(String::from))
        .collect()
}

/// Notes that `registry/repo` holds `digests`.
pub fn record(store: &Store, registry: &str, repo: &str, digests: &[Digest]) {
    let Ok(_l) = store.lock_write() else { return };
    let mut all = read(store);
    let name = format!("{registry}/{repo}");
    for d in digests {
        let v = all.entry(d.to_string()).or_default();
        v.retain(|r| *r != name);
        v.insert(0, name.clone());
        v.truncate(MAX_PER_BLOB);
    }
    if let (Ok(data), Ok(area)) = (serde_json::to_vec(&all), store.area("registry")) {
        let _ = area.write_replacing(FILE, &data, false);
    }
}
