//! `kill`: a signal to the container's PID 1; SIGKILL returns once the container has
//! exited, as docker's does (so `kill x; rm x` works).

use super::state::Status;
use super::Container;
use crate::error::{Result, RuntimeError, Step};
use std::time::Duration;

/// Sends `sig` to PID 1 (for SIGKILL, and waits until the state says exited).
pub fn kill(c: &Container, sig: i32) -> Result<()> {
    let s = c.state();
    if !matches!(s.status, Status::Running | Status::Paused) {
        return Err(RuntimeError::Conflict(format!("container {} is not running", c.config.name)));
    }
    let pid = rustix::process::Pid::from_raw(s.pid).ok_or_else(|| RuntimeError::Invalid("bad pid".into()))?;
    let signal = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| RuntimeError::Invalid(format!("invalid signal {sig}")))?;
    rustix::process::kill_process(pid, signal).step(|| format!("signalling container {}", c.config.name))?;
    if sig == libc::SIGKILL {
        // A frozen process dies only once thawed.
        if s.status == Status::Paused {
            let _ = c.cgroup().freeze(false);
        }
        if super::wait(c, Some(Duration::from_secs(10))).is_none() {
            return Err(RuntimeError::Invalid(format!("container {} did not exit after SIGKILL", c.config.name)));
        }
    }
    Ok(())
}
