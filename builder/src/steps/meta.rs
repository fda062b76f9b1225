//! Metadata steps: ARG, ENV, WORKDIR and the instructions that only change the config.

use crate::build::{Ctx, FResult};
use crate::builder::Event;
use crate::error::{BuildError, Result};
use crate::stage::State;
use crate::steps::ensure_workdir;

impl Ctx<'_> {
    /// A metadata instruction's commit: no layer, unless the step before removed the
    /// working directory, which docker's container for this commit makes again.
    pub(crate) fn commit_meta(
        &self,
        st: &mut State,
        created_by: String,
        label: &str,
        index: usize,
        total: usize,
        text: &str,
    ) -> FResult<()> {
        if st.workdir_gone && !st.config.config.working_dir.is_empty() {
            return self.commit_workdir(st, created_by, label, index, total, text);
        }
        st.history(created_by, true);
        Ok(())
    }

    /// Commits the working directory, made (0755, root) where it is missing: docker makes
    /// it for every step's container (`SetupWorkingDirectory`), so WORKDIR commits a layer
    /// only when its directory is new.
    pub(crate) fn commit_workdir(
        &self,
        st: &mut State,
        created_by: String,
        label: &str,
        index: usize,
        total: usize,
        text: &str,
    ) -> FResult<()> {
        let wd = st.config.config.working_dir.clone();
        let (id, t0) = self.start(label, index, total, text);
        if let Some(r) = self.cached(st, id) {
            st.history(created_by, r.is_none());
            return Ok(());
        }
        let (dir, ()) = self.in_rootfs(st, &[], |root, _| ensure_workdir(root.path, &wd))?;
        st.workdir_gone = false;
        let layer = self.commit_dir(st, &dir.path().join("upper"))?;
        st.history(created_by, layer.is_none());
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        Ok(())
    }

    /// docker creates a container for the VOLUME instruction's commit, and creating a
    /// container refuses a volume where the image has something that is not a directory
    /// (`stat`, following symlinks inside the root): "cannot mount volume over existing
    /// file". Checked through a read-only mount of the stage's layers.
    pub(crate) fn check_volumes(&self, st: &State) -> Result<()> {
        if st.layers.is_empty() {
            return Ok(());
        }
        let volumes: Vec<String> = st.config.config.volumes.keys().cloned().collect();
        let view = rbuild_runtime::View { lowers: self.lowers(&st.layers)?, upper: None, volatile_upper: false };
        let found = rbuild_runtime::with_views(&self.store.tmp_dir(), &[view], |roots| -> Result<Option<String>> {
            for v in &volumes {
                let host = crate::context::resolve_in_root(&roots[0], v, true)?;
                if std::fs::metadata(&host).is_ok_and(|m| !m.is_dir()) {
                    return Ok(Some(v.clone()));
                }
            }
            Ok(None)
        })??;
        match found {
            Some(v) => Err(BuildError::VolumeOverFile(v)),
            None => Ok(()),
        }
    }
}
