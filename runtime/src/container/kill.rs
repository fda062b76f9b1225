//! `kill`: a signal to the container's PID 1; SIGKILL returns once the container has
//! exited, as docker's does (so `kill x; rm x` works). A kill is a manual stop for the
//! restart policy, as docker counts it: `unless-stopped` ends, and SIGKILL or the
//! container's stop signal (any signal when it has none) cancels every policy.

use super::error::ContainerError;
use super::state::{self, State, Status};
use super::Container;
use crate::error::{Result, Step};
use std::time::Duration;

/// Does `sig` end the restart policy (docker's ExitOnNext)?
fn cancels(c: &Container, sig: i32) -> bool {
    sig == libc::SIGKILL
        || c.config.stop_signal.is_empty()
        || crate::signal::parse_signal(&c.config.stop_signal).ok() == Some(sig)
}

/// Records a manual stop (and whether it cancels the policy) before any signal goes, so
/// the monitor sees it when the process ends.
pub(super) fn mark_stopped(c: &Container, cancel: bool) -> Result<State> {
    state::update(&c.state_path(), |s| {
        s.manually_stopped = true;
        s.restart_canceled |= cancel;
    })
}

/// Wakes a monitor waiting out a restart back-off (it then sees the cancel) and waits
/// until the container is recorded as exited.
pub(super) fn end_restarting(c: &Container, s: &State) -> Result<()> {
    if state::alive(s.shim_pid, s.shim_start) {
        if let Some(pid) = rustix::process::Pid::from_raw(s.shim_pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    match super::wait(c, Some(Duration::from_secs(10))) {
        Some(_) => Ok(()),
        None => Err(ContainerError::RestartingTimeout(c.config.name.clone()).into()),
    }
}

/// Sends `sig` to PID 1 (for SIGKILL, and waits until the state says exited).
pub fn kill(c: &Container, sig: i32) -> Result<()> {
    let s = c.state();
    if !matches!(s.status, Status::Running | Status::Paused | Status::Restarting) {
        return Err(ContainerError::NotRunning(c.config.name.clone()).into());
    }
    let signal = rustix::process::Signal::from_named_raw(sig).ok_or(ContainerError::BadSignal(sig))?;
    let cancel = cancels(c, sig);
    let s = mark_stopped(c, cancel)?;
    if s.status == Status::Restarting {
        // Between two runs there is no process: ending the policy is the kill.
        return if cancel { end_restarting(c, &s) } else { Ok(()) };
    }
    let pid = rustix::process::Pid::from_raw(s.pid).ok_or(ContainerError::BadPid(s.pid))?;
    match rustix::process::kill_process(pid, signal) {
        // It ended meanwhile: its monitor records that.
        Err(rustix::io::Errno::SRCH) => {}
        r => r.step(|| format!("signalling container {}", c.config.name))?,
    }
    if sig == libc::SIGKILL {
        // A frozen process dies only once thawed.
        if s.status == Status::Paused {
            let _ = c.cgroup().freeze(false);
        }
        if super::wait(c, Some(Duration::from_secs(10))).is_none() {
            return Err(ContainerError::KillTimeout(c.config.name.clone()).into());
        }
    }
    Ok(())
}
