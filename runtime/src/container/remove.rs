//! `rm`: a stopped container (any with `force`, killed first), its cgroup, its pin on the
//! image's layers and, with `volumes`, its anonymous volumes.

use super::error::ContainerError;
use super::Container;
use crate::error::Result;
use rbuild_store::Store;

pub fn remove(store: &Store, c: &Container, force: bool, volumes: bool) -> Result<()> {
    if c.running() {
        if !force {
            return Err(ContainerError::RemoveRunning(c.short_id().to_string()).into());
        }
        if let Err(e) = super::kill(c, libc::SIGKILL) {
            // It may have exited by itself meanwhile.
            if c.running() {
                return Err(e);
            }
        }
    }
    let cg = c.cgroup();
    if cg.exists() {
        cg.destroy()?;
    }
    rbuild_store::layer::remove_tree(&c.dir)?;
    store.unpin(&format!("container-{}", c.config.id))?;
    if volumes {
        for v in &c.config.anonymous_volumes {
            rbuild_store::layer::remove_tree(&store.volumes_dir().join(v))?;
        }
    }
    Ok(())
}
