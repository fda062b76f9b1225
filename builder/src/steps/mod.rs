//! The steps: one module per instruction family, and what they share (mounting a
//! stage's rootfs, committing a layer).

pub(crate) mod add;
pub(crate) mod cachemount;
pub(crate) mod copy;
pub(crate) mod meta;
pub(crate) mod mounts;
pub(crate) mod run;
pub(crate) mod ssh;
pub(crate) mod stubs;

use crate::build::Ctx;
use crate::cache_key::CacheKey;
use crate::error::{BuildError, Result};
use crate::stage::State;
use rbuild_store::layer::WriteOptions;
use rbuild_store::{LayerRef, TempDir};
use std::path::{Path, PathBuf};

impl Ctx<'_> {
    /// Snapshots of the state's layers, top first.
    pub(crate) fn lowers(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> =
            layers.iter().map(|l| self.store.ensure_snapshot(&l.diff_id)).collect::<rbuild_store::Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    /// Mounts the state's rootfs with a fresh upper (and read-only `others`), runs `f`
    /// on it, and hands back the upper dir's parent (upper is `dir/upper`).
    pub(crate) fn in_rootfs<T: Send>(
        &self,
        st: &State,
        others: &[Vec<LayerRef>],
        f: impl FnOnce(crate::copy::Root<'_>, &[PathBuf]) -> Result<T> + Send,
    ) -> Result<(TempDir, T)> {
        self.in_layers_with(&st.layers, others, f)
    }

    /// [`Ctx::in_rootfs`] on `layers` alone (none: an empty root).
    pub(crate) fn in_layers<T: Send>(
        &self,
        layers: &[LayerRef],
        f: impl FnOnce(crate::copy::Root<'_>) -> Result<T> + Send,
    ) -> Result<(TempDir, T)> {
        self.in_layers_with(layers, &[], |root, _| f(root))
    }

    pub(crate) fn in_layers_with<T: Send>(
        &self,
        layers: &[LayerRef],
        others: &[Vec<LayerRef>],
        f: impl FnOnce(crate::copy::Root<'_>, &[PathBuf]) -> Result<T> + Send,
    ) -> Result<(TempDir, T)> {
        let dir = self.store.temp_guard("copy")?;
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir(d).map_err(BuildError::io("creating", d))?;
        }
        // The upper is committed (or dropped) once unmounted: volatile.
        let mut views = vec![rbuild_runtime::View {
            lowers: self.lowers(layers)?,
            upper: Some((upper.clone(), work)),
            volatile_upper: true,
        }];
        for o in others {
            views.push(rbuild_runtime::View { lowers: self.lowers(o)?, upper: None, volatile_upper: false });
        }
        let r = rbuild_runtime::with_views(&self.store.tmp_dir(), &views, |roots| {
            f(crate::copy::Root { path: &roots[0], upper: Some(&upper) }, &roots[1..])
        })??;
        Ok((dir, r))
    }

    /// Commits `upper` as the step's layer and records it in the cache and the state.
    ///
    /// A step whose diff would have no entries makes no layer, whatever the instruction:
    /// docker commits every step and appends the diff only when it is not the empty tar
    /// (`image.NewChildImage`, `layer.IsEmpty`), marking the history entry `empty_layer`.
    /// With overlay2's native diff that diff is the upper dir, so a RUN that only reads,
    /// or a COPY that lands nothing below `/`, adds no layer. The cache records the same
    /// (`"layer": null`), so a cached rebuild makes the same image.
    pub(crate) fn commit_dir(&self, st: &mut State, upper: &Path) -> Result<Option<LayerRef>> {
        let layer = self.write_layer(upper, st.clamp)?;
        self.remember(st, layer.as_ref())?;
        if let Some(layer) = &layer {
            st.config.rootfs.diff_ids.push(layer.diff_id);
            st.layers.push(layer.clone());
        }
        Ok(layer)
    }

    /// Commits `upper` as a layer recorded under `key` alone (a layer that does not sit
    /// on a stage's state: a named context's files, a `COPY --link`).
    pub(crate) fn commit_upper(&self, key: &CacheKey, upper: &Path, clamp: i64) -> Result<Option<LayerRef>> {
        let layer = self.write_layer(upper, clamp)?;
        self.record_layer(key, layer.as_ref())?;
        Ok(layer)
    }

    /// The layer of `upper` (times clamped to `clamp`); None when it would be empty.
    fn write_layer(&self, upper: &Path, clamp: i64) -> Result<Option<LayerRef>> {
        if rbuild_store::layer::writes_nothing(upper)? {
            return Ok(None);
        }
        let opts = WriteOptions { overlay: true, mtime_clamp: Some(clamp), fix_source: true };
        Ok(Some(self.store.commit_dir(upper, &opts, true)?))
    }
}

/// The last lines of a step's output, for the failure message.
#[derive(Default)]
pub(crate) struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    const KEEP: usize = 16 * 1024;
    pub(crate) fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        if self.buf.len() > 2 * Self::KEEP {
            self.buf.drain(..self.buf.len() - Self::KEEP);
        }
    }
    pub(crate) fn lines(&self) -> Vec<String> {
        let s = String::from_utf8_lossy(&self.buf);
        let v: Vec<String> = s.lines().map(String::from).collect();
        v[v.len().saturating_sub(10)..].to_vec()
    }
}

/// Makes the working directory `wd` (0755, root, with its parents) where the root lacks it.
pub(crate) fn ensure_workdir(root: &Path, wd: &str) -> Result<()> {
    if !wd.is_empty() && !crate::context::resolve_in_root(root, wd, true)?.is_dir() {
        crate::copy::mkdir_all(root, wd, (0, 0))?;
    }
    Ok(())
}

/// Did a step whose writable layer is `upper` remove the working directory `wd` (or a
/// directory above it)? A whiteout, a non-directory, or an opaque directory without the
/// next name on the way says it may have; an untouched path says it did not.
pub(crate) fn workdir_removed(upper: &Path, wd: &str) -> bool {
    let parts: Vec<&str> = wd.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let mut p = upper.to_path_buf();
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        let Ok(m) = std::fs::symlink_metadata(&p) else { return false };
        if !m.is_dir() {
            return true; // a whiteout (a 0/0 device), a file or a symlink now
        }
        let mut v = [0u8; 4];
        let opaque =
            rustix::fs::lgetxattr(&p, rbuild_store::layer::OPAQUE_XATTR, &mut v[..]).is_ok_and(|n| &v[..n] == b"y");
        if opaque && parts.get(i + 1).is_some_and(|next| std::fs::symlink_metadata(p.join(next)).is_err()) {
            return true;
        }
    }
    false
}
