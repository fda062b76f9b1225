//! What `--cache-to` writes besides the records: the build's journal (so that a build
//! elsewhere can say why a step missed) and the contents of its cache mounts, so that a
//! fresh machine's build restores them before the first step that uses one.

use crate::commands::registry::{CacheMode, CacheSpec, RemoteCache};
use crate::commands::util::bytes_size;
use rbuild_builder::Built;
use rbuild_store::{CacheArtifact, CacheMountEntry, Store};
use std::sync::Arc;

/// The cache artifact for `spec` of the finished build `built`, written into the store;
/// `imports` are the build's `--cache-from` caches.
pub fn artifact(
    store: &Store,
    spec: &CacheSpec,
    built: &Built,
    imports: &[Arc<RemoteCache>],
    quiet: bool,
) -> anyhow::Result<CacheArtifact> {
    let keys = match spec.mode {
        CacheMode::Min => &built.image_keys,
        CacheMode::Max => &built.all_keys,
    };
    let keys: Vec<String> = keys.iter().map(|k| k.hex()).collect();
    let journal = serde_json::to_value(&built.journal).ok();
    let mounts = match spec.cache_mounts {
        Some(cap) => {
            let (kept, left) = within_cap(mounts(store, built, imports, quiet), cap);
            for m in left.iter().filter(|_| !quiet) {
                errln!(
                    "[warning] cache mount {} ({}) left out: over the cache-mounts limit of {}",
                    m.id,
                    bytes_size(m.size),
                    bytes_size(cap)
                );
            }
            kept
        }
        None => vec![],
    };
    let art = store.write_cache_artifact_with(&keys, &mounts, journal)?;
    if !quiet && !mounts.is_empty() {
        let size: u64 = mounts.iter().map(|m| m.size).sum();
        errln!("Exporting {} cache mounts ({})", mounts.len(), bytes_size(size));
    }
    Ok(art)
}

/// The cache mounts the build used, as layers: packed from their directories or, for
/// those this machine never made (every step that uses one was cached), the layers an
/// imported cache carries. One that cannot be had is a warning, and left out.
fn mounts(store: &Store, built: &Built, imports: &[Arc<RemoteCache>], quiet: bool) -> Vec<CacheMountEntry> {
    let mut found = Vec::new();
    for (name, dir) in &built.cache_mounts {
        let got = if dir.is_dir() {
            store
                .pack_cache_mount_named(name, dir)
                .map(|(layer, size)| Some((layer, size)))
                .map_err(anyhow::Error::from)
        } else {
            imported(store, imports, name)
        };
        match got {
            Ok(Some((layer, size))) => found.push(CacheMountEntry { id: name.clone(), layer, size }),
            Ok(None) => {}
            Err(e) if !quiet => errln!("[warning] cache mount {name} left out: {e:#}"),
            Err(_) => {}
        }
    }
    found
}

/// The layer (and size) of the cache mount `name` from the first of `imports` that
/// carries it, fetched into the store.
fn imported(
    store: &Store,
    imports: &[Arc<RemoteCache>],
    name: &str,
) -> anyhow::Result<Option<(rbuild_store::Digest, u64)>> {
    for c in imports {
        let Some(m) = c.0.mounts().iter().find(|m| m.id == name) else { continue };
        if let Some(layer) = c.0.fetch_mount(store, name, &rbuild_registry::progress::Quiet)? {
            return Ok(Some((layer, m.size)));
        }
    }
    Ok(None)
}

/// The mounts kept within `cap` bytes in all, the smallest first (the most mounts for
/// the bytes), and those left out; each list in the order of the mounts' sizes.
fn within_cap(mut found: Vec<CacheMountEntry>, cap: u64) -> (Vec<CacheMountEntry>, Vec<CacheMountEntry>) {
    found.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.id.cmp(&b.id)));
    let mut total = 0u64;
    found.into_iter().partition(|m| match total.checked_add(m.size) {
        Some(t) if t <= cap => {
            total = t;
            true
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, size: u64) -> CacheMountEntry {
        CacheMountEntry { id: id.into(), layer: rbuild_store::Digest::of(id.as_bytes()), size }
    }

    #[test]
    fn the_smallest_mounts_fit_under_the_cap_first() {
        let ids = |v: &[CacheMountEntry]| v.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        let all = vec![entry("big", 700), entry("small", 100), entry("mid", 300), entry("tiny", 10)];
        let (kept, left) = within_cap(all.clone(), 500);
        assert_eq!(ids(&kept), ["tiny", "small", "mid"]);
        assert_eq!(ids(&left), ["big"]);
        // A later, smaller one still fits where a larger one did not.
        let (kept, left) = within_cap(vec![entry("a", 60), entry("b", 50), entry("c", 45)], 100);
        assert_eq!((ids(&kept), ids(&left)), (vec!["c".to_string(), "b".into()], vec!["a".to_string()]));
        // Exactly the cap fits; nothing fits under a tiny one; sizes cannot overflow it.
        assert_eq!(within_cap(vec![entry("a", 100)], 100).0.len(), 1);
        assert_eq!(within_cap(all, 1).1.len(), 4);
        let (kept, left) = within_cap(vec![entry("a", u64::MAX), entry("b", 2)], u64::MAX);
        assert_eq!((ids(&kept), ids(&left)), (vec!["b".to_string()], vec!["a".to_string()]));
    }
}
