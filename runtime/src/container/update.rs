//! `update`: a container's limits and restart policy, changed in its configuration (and
//! its spec, for the next start) and, while it runs, in its cgroup at once; its monitor
//! reads the policy again when the process ends.

use super::error::ContainerError;
use super::{Container, RestartPolicy};
use crate::error::Result;
use crate::sandbox::cgroups::Cgroup;
use crate::sandbox::spec::Limits;

/// What `update` changes (None: unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOptions {
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub restart: Option<RestartPolicy>,
}

pub fn update(c: &mut Container, o: &UpdateOptions) -> Result<()> {
    if let Some(r) = &o.restart {
        if c.config.auto_remove && !r.is_no() {
            return Err(ContainerError::RestartWithAutoRemove.into());
        }
    }
    let change = Limits { memory: o.memory, cpus: o.cpus, pids: o.pids };
    if c.running() {
        Cgroup::at(&format!("rbuild/{}", c.config.id)).apply(&change)?;
    }
    let l = &mut c.config.limits;
    l.memory = o.memory.or(l.memory);
    l.cpus = o.cpus.or(l.cpus);
    l.pids = o.pids.or(l.pids);
    if let Some(r) = o.restart {
        c.config.restart_policy = r;
    }
    let mut spec = c.spec()?;
    spec.cgroup.limits = c.config.limits.clone();
    crate::shim::write_spec(&spec, &c.spec_path())?;
    c.save_config()
}
