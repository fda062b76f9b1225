//! The monitor's restart loop: after a run of a detached container ends, the policy in
//! the container's configuration (read again: `update --restart` changes it) decides; the
//! shim records `restarting`, waits the back-off — `stop`, `kill` and `rm -f` cancel it
//! and wake it with a signal — and execs itself as a fresh shim for the next run, so the
//! container keeps its id, its monitor and its RestartCount.

use super::{Ran, SHIM_ARG};
use crate::container::restart::should_restart;
use crate::container::Container;
use crate::sandbox::spec::Spec;
use crate::state::{self, Status};
use crate::syscall::linux;
use std::time::{Duration, Instant};

/// The signals that end a back-off early (they are blocked in the shim).
const WAKE: [i32; 6] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

/// Restarts the container if its policy says so (this does not return then); returns
/// when it stays stopped.
pub(crate) fn after_run(spec_path: &str, spec: &Spec, ran: &Ran) {
    let (Some(dir), Some(state_file)) = (spec.lifecycle.container_dir(), &spec.lifecycle.state_file) else {
        return;
    };
    let Ok(c) = Container::open(dir) else { return };
    let mut backoff = None;
    let _ = state::update(state_file, |s| {
        if s.status != Status::Exited {
            return;
        }
        backoff = should_restart(&c.config.restart_policy, s, ran.code, ran.ran_for);
        if let Some(ms) = backoff {
            s.status = Status::Restarting;
            s.restart_count += 1;
            s.backoff_ms = ms;
            s.pid = 0;
            s.pid_start = 0;
        }
    });
    let Some(ms) = backoff else { return };
    let deadline = Instant::now() + Duration::from_millis(ms);
    let canceled = loop {
        if state::read(state_file).restart_canceled {
            break true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        let _ = linux::wait_signal(&WAKE, left.as_millis().clamp(1, 1000) as u64);
    };
    if canceled {
        let _ = state::update(state_file, |s| s.status = Status::Exited);
        return;
    }
    // docker's event for a start by the policy (the next shim records the state).
    super::health::EventSink::for_container(&c).emit("start");
    let err = match std::env::current_exe() {
        Ok(exe) => {
            use std::os::unix::process::CommandExt;
            std::process::Command::new(exe).arg(SHIM_ARG).arg(spec_path).arg("--detach").exec()
        }
        Err(e) => e,
    };
    let _ = state::update(state_file, |s| {
        s.status = Status::Exited;
        s.error = format!("restarting the container: {err}");
    });
}

/// A restart the policy decided but `stop`, `kill` or `rm -f` canceled while this shim
/// was being made: the container stays exited.
pub(crate) fn canceled_meanwhile(spec: &Spec) -> bool {
    let Some(f) = &spec.lifecycle.state_file else { return false };
    let s = state::read(f);
    if s.status == Status::Restarting && s.restart_canceled {
        let _ = state::update(f, |s| s.status = Status::Exited);
        return true;
    }
    false
}
