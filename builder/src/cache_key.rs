//! Cache keys and the records stored under them.
//!
//! A step's key is the sha256 of an explicit encoding of everything that decides its
//! result: the version of this encoding, the step's kind, its parent's key (except for
//! steps whose layer does not depend on what is below it) and its inputs, each written
//! with a type tag and its length, in an order fixed by the code. Nothing in it comes from
//! a `Debug` string, a hash map's order or a file's mtime.

use crate::build::Ctx;
use crate::builder::Event;
use crate::error::Result;
use crate::stage::State;
use rbuild_store::{CacheRecord, CacheValue, LayerRef};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Bump when the meaning or the encoding of a key or a record changes: old entries then
/// simply miss.
/// 3: a step whose diff is empty records no layer.
/// 4: typed, ordered encodings (no Debug strings); records hold a typed `CacheValue`.
/// 5: steps give docker's results where they did not (archives' hard-link entries and
///    `a/../b` names, COPY onto a symlink, CMD/ENTRYPOINT without arguments, HEALTHCHECK
///    timings, a working directory with `..`, proxy build args in RUN, `--label` steps).
const CACHE_VERSION: u64 = 5;

/// A build step's cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The hex form the store names records by.
    pub fn hex(&self) -> String {
        // A sha256 like a digest, and formatted by the same table.
        rbuild_store::Digest::from_bytes(self.0).hex()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.hex())
    }
}

/// What a key is the key of: the first thing encoded after the version.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyKind {
    /// A stage's start: scratch or a base image.
    Base,
    Arg,
    Workdir,
    /// Another metadata instruction, by its history text.
    Meta,
    Copy,
    Add,
    Run,
    /// A `COPY --link` layer, whose key does not depend on the stage before it.
    Link,
}

impl KeyKind {
    fn tag(self) -> &'static str {
        match self {
            KeyKind::Base => "base",
            KeyKind::Arg => "arg",
            KeyKind::Workdir => "workdir",
            KeyKind::Meta => "meta",
            KeyKind::Copy => "copy",
            KeyKind::Add => "add",
            KeyKind::Run => "run",
            KeyKind::Link => "link",
        }
    }
}

/// The encoder: each value is a type tag, then its length or count (u64, little endian),
/// then its bytes or items.
pub(crate) struct KeyBuilder {
    h: Sha256,
    /// The named parts so far (for `--explain-cache`): each hashes what is encoded while
    /// it is the last one; items are recorded beside, outside the key.
    parts: Vec<(String, Sha256, BTreeMap<String, String>)>,
}

impl KeyBuilder {
    /// A key of `kind` (versioned).
    pub(crate) fn new(kind: KeyKind) -> Self {
        let mut k = KeyBuilder { h: Sha256::new(), parts: Vec::new() };
        k.num(CACHE_VERSION).text(kind.tag());
        k
    }

    /// A key of `kind` that continues `parent`'s.
    pub(crate) fn child(kind: KeyKind, parent: &CacheKey) -> Self {
        let mut k = Self::new(kind);
        k.key(parent);
        k
    }

    fn update(&mut self, b: &[u8]) {
        self.h.update(b);
        if let Some((_, h, _)) = self.parts.last_mut() {
            h.update(b);
        }
    }

    fn tagged(&mut self, tag: u8, len: u64) -> &mut Self {
        self.update(&[tag]);
        self.update(&len.to_le_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.tagged(b'b', b.len() as u64);
        self.update(b);
        self
    }

    /// Starts the named part of the key that what follows belongs to (the key itself does
    /// not change: names are for explaining a miss).
    pub(crate) fn part(&mut self, name: &str) -> &mut Self {
        self.parts.push((name.to_string(), Sha256::new(), BTreeMap::new()));
        self
    }

    /// Records an item of the current part (a variable's value, a file's digest), for
    /// explaining which of them changed; not part of the key.
    pub(crate) fn item(&mut self, name: &str, value: &str) -> &mut Self {
        if let Some((_, _, items)) = self.parts.last_mut() {
            items.insert(name.to_string(), value.to_string());
        }
        self
    }

    /// The parts recorded, with their digests.
    pub(crate) fn take_parts(&mut self) -> Vec<crate::explain::Part> {
        std::mem::take(&mut self.parts)
            .into_iter()
            .map(|(name, h, items)| {
                let digest = rbuild_store::Digest::from_bytes(h.finalize().into()).hex();
                crate::explain::Part { name, digest, items }
            })
            .collect()
    }

    pub(crate) fn text(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub(crate) fn num(&mut self, n: u64) -> &mut Self {
        self.tagged(b'u', n)
    }

    pub(crate) fn flag(&mut self, b: bool) -> &mut Self {
        self.tagged(b'f', u64::from(b))
    }

    pub(crate) fn key(&mut self, k: &CacheKey) -> &mut Self {
        self.tagged(b'k', 32);
        self.update(&k.0);
        self
    }

    pub(crate) fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.tagged(b'n', 0),
            Some(s) => self.tagged(b's', 1).text(s),
        }
    }

    pub(crate) fn opt_num(&mut self, n: Option<u64>) -> &mut Self {
        match n {
            None => self.tagged(b'n', 0),
            Some(n) => self.tagged(b's', 1).num(n),
        }
    }

    pub(crate) fn texts<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.tagged(b'l', items.len() as u64);
        for s in items {
            self.text(s.as_ref());
        }
        self
    }

    pub(crate) fn finish(&mut self) -> CacheKey {
        CacheKey(std::mem::take(&mut self.h).finalize().into())
    }
}

/// The key of a stage that starts from `image`, and of `image` as a source of files.
pub(crate) fn image_key(image: &rbuild_store::Image) -> CacheKey {
    KeyBuilder::new(KeyKind::Base).text("image").text(&image.id().to_string()).finish()
}

/// The key of a stage that starts from nothing.
pub(crate) fn scratch_key() -> CacheKey {
    KeyBuilder::new(KeyKind::Base).text("scratch").finish()
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Ctx<'_> {
    /// The record for `key`: the store's, else the first `--cache-from` cache's.
    fn record(&self, key: &CacheKey) -> Option<CacheRecord> {
        let hex = key.hex();
        if let Some(r) = self.store.cache_get(&hex) {
            return Some(r);
        }
        for c in &self.opts.cache_from {
            match c.fetch(self.store, &hex) {
                Ok(Some(r)) => return Some(r),
                Ok(None) => {}
                Err(e) => self
                    .progress
                    .event(Event::Warning { message: format!("cache import: {}", crate::error::message(e.as_ref())) }),
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
        let Some(rec) = self.record(&st.key) else {
            if self.opts.explain_cache {
                let reason = self.previous().explain(&st.trail);
                self.progress.event(Event::CacheMiss { id, reason: &reason });
            }
            return None;
        };
        let CacheValue { layer, workdir_gone } = rec.value;
        self.apply_hit(st, id, layer, workdir_gone)
    }

    /// What a hit does to the state: the layer appended, the record's facts taken.
    pub(crate) fn apply_hit(
        &self,
        st: &mut State,
        id: usize,
        layer: Option<LayerRef>,
        workdir_gone: bool,
    ) -> Option<Option<LayerRef>> {
        if let Some(l) = &layer {
            st.config.rootfs.diff_ids.push(l.diff_id);
            st.layers.push(l.clone());
        }
        st.workdir_gone = workdir_gone;
        self.used_keys.lock().unwrap_or_else(|e| e.into_inner()).push((st.stage, st.key));
        self.progress.event(Event::Cached { id });
        Some(layer)
    }

    /// Records the result of a step under the current key.
    pub(crate) fn remember(&self, st: &State, layer: Option<&LayerRef>) -> Result<()> {
        self.put_record(&st.key, layer, st.workdir_gone)?;
        self.used_keys.lock().unwrap_or_else(|e| e.into_inner()).push((st.stage, st.key));
        Ok(())
    }

    /// The layer recorded under `key` alone (not a stage's step): Some(layer-or-none) on
    /// a hit.
    pub(crate) fn cached_layer(&self, key: &CacheKey) -> Option<Option<LayerRef>> {
        if self.opts.no_cache {
            return None;
        }
        Some(self.record(key)?.value.layer)
    }

    /// Records `layer` under `key` alone.
    pub(crate) fn record_layer(&self, key: &CacheKey, layer: Option<&LayerRef>) -> Result<()> {
        self.put_record(key, layer, false)
    }

    fn put_record(&self, key: &CacheKey, layer: Option<&LayerRef>, workdir_gone: bool) -> Result<()> {
        let rec = CacheRecord {
            key: key.hex(),
            value: CacheValue { layer: layer.cloned(), workdir_gone },
            refs: layer.map(|l| vec![l.diff_id]).unwrap_or_default(),
            created: now_secs(),
        };
        Ok(self.store.cache_put(&rec)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: impl FnOnce(&mut KeyBuilder)) -> CacheKey {
        let mut k = KeyBuilder::new(KeyKind::Meta);
        f(&mut k);
        k.finish()
    }

    /// Values cannot run into each other: where one ends is part of the encoding.
    #[test]
    fn boundaries_and_types_are_encoded() {
        assert_ne!(
            key(|k| {
                k.text("ab").text("c");
            }),
            key(|k| {
                k.text("a").text("bc");
            })
        );
        assert_ne!(
            key(|k| {
                k.opt_text(None);
            }),
            key(|k| {
                k.opt_text(Some(""));
            })
        );
        assert_ne!(
            key(|k| {
                k.texts(&["a", "b"]);
            }),
            key(|k| {
                k.texts(&["a"]).text("b");
            })
        );
        assert_ne!(
            key(|k| {
                k.num(1);
            }),
            key(|k| {
                k.flag(true);
            })
        );
        assert_ne!(KeyBuilder::new(KeyKind::Copy).finish(), KeyBuilder::new(KeyKind::Add).finish());
        assert_eq!(
            key(|k| {
                k.text("x").num(7);
            }),
            key(|k| {
                k.text("x").num(7);
            })
        );
    }

    /// The encoding is fixed: a change to it must bump CACHE_VERSION (and this value).
    #[test]
    fn encoding_is_stable() {
        let base = scratch_key();
        let k = KeyBuilder::child(KeyKind::Run, &base).texts(&["/bin/sh", "-c", "true"]).opt_num(Some(0o644)).finish();
        assert_eq!(k.hex(), "cc8d2afb354cd6807f1837a5e3628c5418fdeaf584ca022bc85bdd44ae1b0c7c");
    }
}
