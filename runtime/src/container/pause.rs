//! `pause` / `unpause`: the cgroup freezer.

use super::state::{self, Status};
use super::Container;
use crate::error::{Result, RuntimeError};

pub fn pause(c: &Container, paused: bool) -> Result<()> {
    let s = c.state();
    match (s.status, paused) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => {
            return Err(RuntimeError::Conflict(format!("container {} is already paused", c.config.name)))
        }
        (Status::Running, false) => {
            return Err(RuntimeError::Conflict(format!("container {} is not paused", c.config.name)))
        }
        _ => return Err(RuntimeError::Conflict(format!("container {} is not running", c.config.name))),
    }
    c.cgroup().freeze(paused)?;
    state::update(&c.state_path(), |s| s.status = if paused { Status::Paused } else { Status::Running })?;
    Ok(())
}
