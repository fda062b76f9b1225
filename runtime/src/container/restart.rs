//! Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`), decided as
//! docker's restart manager decides them. The container's shim carries them out: there is
//! no daemon, so a policy lives as long as the container's monitor (see the README on
//! host reboots).

use super::state::State;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// docker's HostConfig.RestartPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// Restart after a non-zero exit, at most `max_retries` times (0: no limit).
    OnFailure {
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// docker's `Name`.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    /// docker's `MaximumRetryCount`.
    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max_retries } => *max_retries,
            _ => 0,
        }
    }

    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }
}

/// The first back-off, its growth and its ceiling, and the run that resets it (docker's
/// restartmanager constants).
const FIRST_BACKOFF_MS: u64 = 100;
const MAX_BACKOFF_MS: u64 = 60_000;
const RESET_AFTER: Duration = Duration::from_secs(10);

/// Should the container run again after a run of `ran_for` that ended with `exit_code`?
/// The back-off (milliseconds) to wait first when it should, as docker computes it: 100 ms,
/// doubled at each restart up to a minute, back to 100 ms after a run of 10 s or more.
pub fn should_restart(policy: &RestartPolicy, s: &State, exit_code: i32, ran_for: Duration) -> Option<u64> {
    if s.restart_canceled {
        return None;
    }
    let previous = if ran_for >= RESET_AFTER { 0 } else { s.backoff_ms };
    let backoff = if previous == 0 { FIRST_BACKOFF_MS } else { (previous * 2).min(MAX_BACKOFF_MS) };
    let restart = match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always => true,
        RestartPolicy::UnlessStopped => !s.manually_stopped,
        RestartPolicy::OnFailure { max_retries } => {
            exit_code != 0 && (*max_retries == 0 || s.restart_count < *max_retries)
        }
    };
    restart.then_some(backoff)
}

/// Was `c` running when its monitor went away (a host reboot, a killed shim), with a
/// policy that asks for it to run again? What dockerd restarts when it starts, and
/// `rbuild system boot` does.
pub fn lost_and_restartable(c: &super::Container) -> bool {
    use super::state::{self, Status};
    let s = state::read(&c.state_path());
    let was_running = matches!(s.status, Status::Running | Status::Paused | Status::Restarting);
    if !was_running || state::alive(s.shim_pid, s.shim_start) || s.restart_canceled {
        return false;
    }
    match c.config.restart_policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::OnFailure { .. } => true,
        RestartPolicy::UnlessStopped => !s.manually_stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(count: u32, backoff: u64) -> State {
        State { restart_count: count, backoff_ms: backoff, ..Default::default() }
    }

    #[test]
    fn policies_as_dockers_restart_manager() {
        let short = Duration::from_millis(50);
        assert_eq!(should_restart(&RestartPolicy::No, &st(0, 0), 1, short), None);
        assert_eq!(should_restart(&RestartPolicy::Always, &st(0, 0), 0, short), Some(100));
        let f = RestartPolicy::OnFailure { max_retries: 2 };
        assert_eq!(should_restart(&f, &st(0, 0), 0, short), None, "on-failure ignores success");
        assert_eq!(should_restart(&f, &st(1, 100), 3, short), Some(200));
        assert_eq!(should_restart(&f, &st(2, 200), 3, short), None, "two retries made");
        let unlimited = RestartPolicy::OnFailure { max_retries: 0 };
        assert_eq!(should_restart(&unlimited, &st(50, 100), 1, short), Some(200));
        let stopped = State { manually_stopped: true, ..st(0, 0) };
        assert_eq!(should_restart(&RestartPolicy::UnlessStopped, &stopped, 1, short), None);
        assert_eq!(should_restart(&RestartPolicy::Always, &stopped, 1, short), Some(100));
        let canceled = State { restart_canceled: true, ..st(0, 0) };
        assert_eq!(should_restart(&RestartPolicy::Always, &canceled, 1, short), None);
    }

    #[test]
    fn back_off_doubles_to_a_minute_and_resets_after_ten_seconds() {
        let short = Duration::from_millis(50);
        let mut b = 0;
        let mut seen = vec![];
        for _ in 0..12 {
            b = should_restart(&RestartPolicy::Always, &st(0, b), 1, short).unwrap();
            seen.push(b);
        }
        assert_eq!(&seen[..4], [100, 200, 400, 800]);
        assert_eq!(*seen.last().unwrap(), 60_000);
        assert_eq!(should_restart(&RestartPolicy::Always, &st(0, 60_000), 1, Duration::from_secs(10)), Some(100));
    }
}
