//! A container's state on disk (`state.json`), changed by the shim at start and exit and by
//! the CLI for pause; every change is an atomic rename under a lock.

use crate::error::{Result, Step};
use rbuild_store::Durability;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    /// Between two runs of a restart policy (docker counts it as running).
    Restarting,
    Exited,
}

impl Status {
    /// docker's `State.Status` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// A health check's verdict (docker's `State.Health.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe (docker's `HealthcheckResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    /// 0 healthy, 1 unhealthy, -1 the probe could not run or timed out.
    pub exit_code: i64,
    pub output: String,
}

/// docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    /// The last five probes, oldest first.
    pub log: Vec<Probe>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// PID 1 of the container, as the host sees it.
    pub pid: i32,
    /// Its start time (clock ticks since boot), to tell it from a later process with the
    /// same pid.
    pub pid_start: u64,
    pub shim_pid: i32,
    pub started_at: String,
    pub finished_at: String,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub error: String,
    /// The container's places on its networks while it runs.
    #[serde(default)]
    pub networks: Vec<crate::network::attach::Endpoint>,
    /// Start time of the shim (with `shim_pid`), to tell a live monitor from a dead one.
    #[serde(default)]
    pub shim_start: u64,
    /// Restarts made by the restart policy since the last `start` (docker's RestartCount).
    #[serde(default)]
    pub restart_count: u32,
    /// The restart policy's current back-off (docker's restart manager: 100 ms doubling,
    /// at most a minute, back to 100 ms after a run of 10 s or more); 0 before the first.
    #[serde(default)]
    pub backoff_ms: u64,
    /// `stop` or `kill` was used (docker's HasBeenManuallyStopped): `unless-stopped`
    /// does not restart.
    #[serde(default)]
    pub manually_stopped: bool,
    /// `stop`, `kill -s KILL` or the stop signal: no policy restarts the container until
    /// it is started again (docker's ExitOnNext).
    #[serde(default)]
    pub restart_canceled: bool,
    /// The health check's state, when the container has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// RFC 3339 with nanoseconds, UTC.
pub fn now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rbuild_store::config::rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces and
/// parentheses), from one read: procfs hands the whole line over at once, where
/// read_to_string took six reads, and `alive` read the file twice.
pub(crate) fn stat_fields(pid: i32) -> Option<String> {
    let f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    // 52 numbers of at most 20 digits and a 16-byte name fit.
    let mut buf = [0u8; 1536];
    let n = rustix::io::read(&f, &mut buf).ok()?;
    let line = std::str::from_utf8(&buf[..n]).ok()?;
    Some(line.rsplit_once(')')?.1.to_string())
}

/// Field 22 (the start time) among the fields after the name (field 3 first).
fn start_time_of(fields: &str) -> u64 {
    fields.split_whitespace().nth(19).and_then(|t| t.parse().ok()).unwrap_or(0)
}

/// Field 22 of /proc/PID/stat.
pub fn proc_start_time(pid: i32) -> u64 {
    stat_fields(pid).map_or(0, |f| start_time_of(&f))
}

/// Is the process that was `pid` (started at `start`) still alive (and not a zombie)?
pub fn alive(pid: i32, start: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Some(fields) = stat_fields(pid) else { return false };
    let state = fields.split_whitespace().next().unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    start == 0 || start_time_of(&fields) == start
}

pub fn read(path: &Path) -> State {
    std::fs::read(path).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
}

/// Read, change, write back atomically, under an exclusive lock. A change that changes
/// nothing writes nothing: a shim's last look at the state (a restart policy's, after
/// `rm -f` saw the container exit) re-created a default state.json in the directory rm
/// was removing, and rm failed with "Directory not empty".
pub fn update(path: &Path, f: impl FnOnce(&mut State)) -> Result<State> {
    write_with(path, f, false)
}

/// A new container's first state, written whatever was there.
pub fn reset(path: &Path) -> Result<State> {
    write_with(path, |s| *s = State::default(), true)
}

fn write_with(path: &Path, f: impl FnOnce(&mut State), always: bool) -> Result<State> {
    let lock_path = path.with_extension("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .step(|| format!("opening {}", lock_path.display()))?;
    lock.lock().step(|| format!("locking {}", lock_path.display()))?;
    let mut s = read(path);
    let before = (!always).then(|| s.clone());
    f(&mut s);
    if before.as_ref() == Some(&s) {
        return Ok(s);
    }
    let data = serde_json::to_vec(&s).unwrap_or_default();
    rbuild_store::write_atomic(path, &data, Durability::Atomic).step(|| format!("writing {}", path.display()))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_with_its_start_time_and_not_with_another() {
        let me = std::process::id() as i32;
        let start = proc_start_time(me);
        assert!(start > 0);
        assert!(alive(me, start));
        assert!(alive(me, 0));
        assert!(!alive(me, start + 1));
        assert!(!alive(0, 0));
    }

    #[test]
    fn an_update_that_changes_nothing_does_not_bring_back_a_removed_state() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        reset(&p).unwrap();
        assert!(p.exists());
        std::fs::remove_file(&p).unwrap();
        update(&p, |s| {
            if s.status == Status::Exited {
                s.restart_count += 1;
            }
        })
        .unwrap();
        assert!(!p.exists(), "a no-op update wrote {}", p.display());
        update(&p, |s| s.status = Status::Exited).unwrap();
        assert_eq!(read(&p).status, Status::Exited);
    }

    #[test]
    fn the_start_time_is_counted_after_a_name_with_spaces_and_parentheses() {
        // "PID (NAME) STATE ...": the state (field 3) comes first after the name.
        let line = "1 (a) b) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 4242 0 0";
        let fields = line.rsplit_once(')').unwrap().1;
        assert_eq!(start_time_of(fields), 4242);
    }
}
