//! `stop` and `wait`: the stop signal, then SIGKILL after the timeout; waiting for the
//! recorded exit (a container between two runs of its restart policy is still running).

use super::state::{self, Status};
use super::Container;
use crate::error::Result;
use std::time::{Duration, Instant};

/// Waits until the container is no longer running; returns its exit code (None on
/// timeout).
pub fn wait(c: &Container, timeout: Option<Duration>) -> Option<i32> {
    let t = Instant::now();
    loop {
        let s = c.state();
        if !matches!(s.status, Status::Running | Status::Paused | Status::Restarting) {
            // Give the shim a moment to record the real exit code.
            let s2 = state::read(&c.state_path());
            if s2.status == Status::Exited || !c.dir.exists() {
                return Some(s2.exit_code);
            }
            if t.elapsed() > timeout.unwrap_or(Duration::MAX).min(Duration::from_secs(2)) + Duration::from_millis(200) {
                return Some(s.exit_code);
            }
        }
        if let Some(to) = timeout {
            if t.elapsed() >= to {
                return None;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The stop signal (the image's STOPSIGNAL or SIGTERM), then SIGKILL after `timeout`;
/// returns once the container has exited. Its restart policy ends (docker's stop).
pub fn stop(c: &Container, timeout: Duration) -> Result<()> {
    if !c.running() {
        return Ok(());
    }
    let s = super::kill::mark_stopped(c, true)?;
    if s.status == Status::Restarting {
        return super::kill::end_restarting(c, &s);
    }
    if s.status == Status::Paused {
        let _ = c.cgroup().freeze(false);
    }
    let sig = if c.config.stop_signal.is_empty() {
        libc::SIGTERM
    } else {
        crate::signal::parse_signal(&c.config.stop_signal).unwrap_or(libc::SIGTERM)
    };
    let _ = super::kill(c, sig);
    if wait(c, Some(timeout)).is_none() {
        if let Err(e) = super::kill(c, libc::SIGKILL) {
            if c.running() {
                return Err(e);
            }
        }
    }
    Ok(())
}
