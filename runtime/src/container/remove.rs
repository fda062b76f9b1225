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
    // The monitor (shim) records the exit and its last state in the container's
    // directory after PID 1 is gone: removing the directory under it failed with
    // "Directory not empty" (seen under load). It is given a few seconds to end.
    let s = c.state();
    if s.shim_pid != std::process::id() as i32 {
        let t = std::time::Instant::now();
        while super::state::alive(s.shim_pid, s.shim_start) && t.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(2));
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
