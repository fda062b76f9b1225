//! `pause` / `unpause`: the cgroup freezer.

use super::error::ContainerError;
use super::state::{self, Status};
use super::Container;
use crate::error::Result;

pub fn pause(c: &Container, paused: bool) -> Result<()> {
    let s = c.state();
    match (s.status, paused) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => return Err(ContainerError::AlreadyPaused(c.config.name.clone()).into()),
        (Status::Running, false) => return Err(ContainerError::NotPaused(c.config.name.clone()).into()),
        _ => return Err(ContainerError::NotRunning(c.config.name.clone()).into()),
    }
    c.cgroup().freeze(paused)?;
    state::update(&c.state_path(), |s| s.status = if paused { Status::Paused } else { Status::Running })?;
    Ok(())
}
