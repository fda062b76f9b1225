//! What `--cache-to` writes besides the records: the build's journal (so that a build
//! elsewhere can say why a step missed) and the contents of its cache mounts.

use crate::commands::registry::{CacheMode, CacheSpec};
use rbuild_builder::Built;
use rbuild_store::{CacheArtifact, Store};

/// The cache artifact for `spec` of the finished build `built`, written into the store.
pub fn artifact(store: &Store, spec: &CacheSpec, built: &Built) -> anyhow::Result<CacheArtifact> {
    let keys = match spec.mode {
        CacheMode::Min => &built.image_keys,
        CacheMode::Max => &built.all_keys,
    };
    let keys: Vec<String> = keys.iter().map(|k| k.hex()).collect();
    let journal = serde_json::to_value(&built.journal).ok();
    Ok(store.write_cache_artifact_with(&keys, &[], journal)?)
}
