//! HEALTHCHECK: while a container runs, its monitor runs the check (the image's
//! HEALTHCHECK or the `--health-*` options) every interval through the exec path — a
//! fresh `rbuild __health DIR` that execs the probe in the container — and records
//! docker's `State.Health`: `starting` until the first success (failures inside the start
//! period do not count then), `healthy` after a success, `unhealthy` after `retries`
//! failures in a row; the last five probes with their first 4 KiB of output.

use crate::container::exec::{self, ExecOptions};
use crate::container::{Config, Container};
use crate::error::RuntimeError;
use crate::state::{self, Health, HealthStatus, Probe, Status};
use rbuild_store::config::HealthConfig;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const HEALTH_ARG: &str = "__health";

/// docker's defaults (daemon/health.go).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

fn or_default(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

/// The command a check runs, or None when the container has no check (`NONE`, no test).
pub fn probe_command(cfg: &Config) -> Option<Vec<String>> {
    let hc = cfg.healthcheck.as_ref()?;
    match hc.test.first().map(String::as_str) {
        Some("CMD") => Some(hc.test[1..].to_vec()).filter(|a| !a.is_empty()),
        Some("CMD-SHELL") => {
            let mut argv =
                if cfg.shell.is_empty() { vec!["/bin/sh".to_string(), "-c".to_string()] } else { cfg.shell.clone() };
            argv.push(hc.test[1..].join(" "));
            Some(argv)
        }
        _ => None,
    }
}

/// The health monitor of one run.
pub(crate) struct Monitor {
    stop: Arc<AtomicBool>,
}

impl Monitor {
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Starts checking `c` (started at `started`), if it has a check.
pub(crate) fn start(c: &Container, state_file: &Path, started: Instant) -> Option<Monitor> {
    probe_command(&c.config)?;
    let hc = c.config.healthcheck.clone()?;
    let _ = state::update(state_file, |s| {
        let h = s.health.get_or_insert_with(Health::default);
        h.status = HealthStatus::Starting;
        h.failing_streak = 0;
    });
    let stop = Arc::new(AtomicBool::new(false));
    let m = Monitor { stop: stop.clone() };
    let (dir, state_file) = (c.dir.clone(), state_file.to_path_buf());
    let events = EventSink::for_container(c);
    std::thread::Builder::new().spawn(move || monitor(&hc, &dir, &state_file, started, &stop, &events)).ok()?;
    Some(m)
}

/// Sleeps `d` unless told to stop; false when stopped.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    !stop.load(Ordering::SeqCst)
}

fn monitor(hc: &HealthConfig, dir: &Path, state_file: &Path, started: Instant, stop: &AtomicBool, ev: &EventSink) {
    let interval = or_default(hc.interval, DEFAULT_INTERVAL);
    let timeout = or_default(hc.timeout, DEFAULT_TIMEOUT);
    let start_period = or_default(hc.start_period, Duration::ZERO);
    let retries = if hc.retries > 0 { hc.retries } else { DEFAULT_RETRIES };
    while pause(interval, stop) {
        let probe_started = Instant::now();
        let probe = run_probe(dir, timeout);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let in_start_period = probe_started.duration_since(started) < start_period;
        let mut changed = None;
        let _ = state::update(state_file, |s| {
            if s.status != Status::Running {
                return;
            }
            let h = s.health.get_or_insert_with(Health::default);
            let before = h.status;
            record(h, probe, in_start_period, retries);
            if h.status != before {
                changed = Some(h.status);
            }
        });
        if let Some(st) = changed {
            ev.emit(&format!("health_status: {}", st.as_str()));
        }
    }
}

/// docker's handleProbeResult.
fn record(h: &mut Health, probe: Probe, in_start_period: bool, retries: i64) {
    let ok = probe.exit_code == 0;
    h.log.push(probe);
    if h.log.len() > MAX_LOG {
        let extra = h.log.len() - MAX_LOG;
        h.log.drain(..extra);
    }
    if ok {
        h.failing_streak = 0;
        h.status = HealthStatus::Healthy;
        return;
    }
    // While starting, failures inside the start period do not count.
    if h.status == HealthStatus::Starting && in_start_period {
        return;
    }
    h.failing_streak += 1;
    if i64::from(h.failing_streak) >= retries {
        h.status = HealthStatus::Unhealthy;
    }
}

/// Go's `time.Duration` text (`500ms`, `30s`, `1m30s`), as docker's timeout message shows it.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    let trim = |v: f64| {
        let s = format!("{v:.9}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim(ns as f64 / 1e6));
    }
    let secs = d.as_secs_f64();
    let (h, rest) = ((secs / 3600.0).floor(), secs % 3600.0);
    let (m, s) = ((rest / 60.0).floor(), rest % 60.0);
    let mut out = String::new();
    if h > 0.0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0.0 || m > 0.0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim(s)));
    out
}

/// Runs one probe through `rbuild __health DIR`: its output (stdout and stderr, the first
/// 4 KiB) through one pipe, the helper's verdict through another.
fn run_probe(dir: &Path, timeout: Duration) -> Probe {
    let start = state::now();
    let fail = |output: String| Probe { start: start.clone(), end: state::now(), exit_code: -1, output };
    let pipes = (std::io::pipe(), std::io::pipe());
    let ((Ok((out_r, out_w)), Ok((res_r, res_w))), Ok(exe)) = (pipes, std::env::current_exe()) else {
        return fail("starting the health check: no pipe".into());
    };
    let child = std::process::Command::new(exe)
        .arg(HEALTH_ARG)
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(out_w)
        .stderr(res_w)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(format!("starting the health check: {e}")),
    };
    let output = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let output = output.clone();
        std::thread::Builder::new().spawn(move || read_limited(out_r, &output))
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    let Some(status) = status else {
        // The probe dies with its helper (parent-death signal).
        let _ = child.kill();
        let _ = child.wait();
        return fail(format!("Health check exceeded timeout ({})", go_duration(timeout)));
    };
    let mut verdict = String::new();
    let _ = { res_r }.read_to_string(&mut verdict);
    // What the probe left running may hold the output pipe: wait for it only briefly.
    if let Ok(r) = reader {
        let t = Instant::now();
        while !r.is_finished() && t.elapsed() < Duration::from_millis(100) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let text = String::from_utf8_lossy(&output.lock().map(|o| o.clone()).unwrap_or_default()).into_owned();
    match serde_json::from_str::<Verdict>(verdict.trim()) {
        Ok(Verdict::Exited(code)) => Probe { start, end: state::now(), exit_code: code.into(), output: text },
        Ok(Verdict::Failed(message)) => fail(message),
        Err(_) => fail(format!("the health check helper failed ({status})")),
    }
}

fn read_limited(mut r: std::io::PipeReader, out: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Ok(mut o) = out.lock() {
                    let room = MAX_OUTPUT.saturating_sub(o.len());
                    o.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
    }
}

/// What the helper says about its probe.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    /// The probe ran and exited with this code.
    Exited(i32),
    /// It could not run (docker: exit code -1 and the error as output).
    Failed(String),
}

/// `rbuild __health DIR`: runs the container's check once, the probe's stdout and
/// stderr on this process's stdout; the verdict (JSON) on what was stderr.
pub fn helper_main(args: &[String]) -> i32 {
    let Some(dir) = args.first() else { return 2 };
    let Ok(verdict_fd) = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3) else { return 2 };
    if rustix::stdio::dup2_stderr(rustix::stdio::stdout()).is_err() {
        return 2;
    }
    let v = match Container::open(Path::new(dir)) {
        Ok(c) => match probe_command(&c.config) {
            Some(args) => match exec::exec(&c, &ExecOptions { args, ..Default::default() }) {
                Ok(code) => Verdict::Exited(code),
                Err(e @ RuntimeError::ExecFailed { .. }) => Verdict::Failed(format!("exec failed: {e}")),
                Err(e) => Verdict::Failed(e.to_string()),
            },
            None => Verdict::Failed("the container has no health check".into()),
        },
        Err(e) => Verdict::Failed(e.to_string()),
    };
    let _ = crate::sandbox::init::write_all(&verdict_fd, serde_json::to_string(&v).unwrap_or_default().as_bytes());
    0
}

/// Appends the monitor's events to the store's journal.
pub(crate) struct EventSink {
    store_root: Option<PathBuf>,
    id: String,
    name: String,
    image: String,
}

impl EventSink {
    pub(crate) fn for_container(c: &Container) -> EventSink {
        // The store's root is three levels up: ROOT/rbuild/containers/ID.
        let store_root = c.dir.parent().and_then(Path::parent).and_then(Path::parent).map(Path::to_path_buf);
        EventSink { store_root, id: c.config.id.clone(), name: c.config.name.clone(), image: c.config.image.clone() }
    }

    pub(crate) fn emit(&self, action: &str) {
        self.emit_with(action, &[]);
    }

    pub(crate) fn emit_with(&self, action: &str, extra: &[(&str, &str)]) {
        let Some(root) = &self.store_root else { return };
        if let Ok(store) = rbuild_store::Store::open(root) {
            let mut attrs = vec![("image", self.image.as_str()), ("name", self.name.as_str())];
            attrs.extend_from_slice(extra);
            let _ = store.append_event(&rbuild_store::Event::now("container", action, &self.id, &attrs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i64) -> Probe {
        Probe { exit_code: code, ..Default::default() }
    }

    #[test]
    fn probes_as_dockers_monitor_counts_them() {
        let mut h = Health::default();
        record(&mut h, probe(1), true, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0), "start period");
        record(&mut h, probe(1), false, 2);
        record(&mut h, probe(1), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        record(&mut h, probe(0), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..4 {
            record(&mut h, probe(-1), true, 2);
        }
        assert_eq!(h.status, HealthStatus::Unhealthy, "the start period counts only while starting");
        assert_eq!(h.log.len(), 5, "the last five probes");
        assert_eq!(h.log[0].exit_code, 0);
    }

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }
}
