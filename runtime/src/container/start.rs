//! `start`: the shim takes over, in the foreground (this process becomes it), detached
//! (a new session that monitors the container), or detached with this process attached
//! to it from the first byte of output (docker's `run` without `-d`, `start -a`).

use super::attach::{self, AttachOptions, Attached};
use super::create::LogDriver;
use super::error::ContainerError;
use super::state;
use super::Container;
use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::spec::{Lifecycle, Network};
use rbuild_store::Store;
use std::path::PathBuf;

/// How `start` runs the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Replace this process with the shim: the terminal is the container's (its output
    /// is logged as well).
    Foreground,
    /// A detached shim monitors the container; output goes to the log.
    Detached,
}

fn lifecycle(store: &Store, c: &Container) -> Lifecycle {
    // Every container's output is logged (docker's json-file), attached or not, unless
    // its log driver is `none`.
    let log_file = (c.config.log_driver == LogDriver::JsonFile).then(|| c.log_path());
    let mut l = Lifecycle { state_file: Some(c.state_path()), log_file, ..Default::default() };
    if c.config.auto_remove {
        l.remove_dir = Some(c.dir.clone());
        l.set_aside_in = Some(store.tmp_dir());
        l.unpin = Some((store.root().to_path_buf(), format!("container-{}", c.config.id)));
        l.remove_volumes = c.config.anonymous_volumes.iter().map(|v| store.volumes_dir().join(v)).collect();
    }
    l
}

/// Writes the spec the shim starts from (this start's lifecycle, the network of a
/// `container:` network as it is now) and resets what a start resets (docker's restart
/// manager: the count, the back-off, a manual stop).
fn prepare(store: &Store, c: &Container) -> Result<PathBuf> {
    let mut spec = c.spec()?;
    // Snapshots may have been pruned while the container was stopped (they are pinned, but
    // a crash may have left them missing): make sure they exist.
    for d in &c.config.layers {
        store.ensure_snapshot(d)?;
    }
    spec.lifecycle = lifecycle(store, c);
    // `--network container:X`: X's namespace and its /etc files, as they are now.
    if let Network::Container(other) = &c.config.network {
        let o = super::find(store, other)?;
        let st = o.state();
        if !o.running() {
            return Err(ContainerError::JoinStopped(o.config.name.clone()).into());
        }
        spec.join_netns = Some(format!("/proc/{}/ns/net", st.pid).into());
        spec.etc_files = crate::sandbox::etc::FILES.iter().map(|f| (format!("/etc/{f}"), o.dir.join(f))).collect();
    }
    crate::shim::write_spec(&spec, &c.spec_path())?;
    let s = state::read(&c.state_path());
    if s.restart_count != 0 || s.backoff_ms != 0 || s.manually_stopped || s.restart_canceled {
        state::update(&c.state_path(), |s| {
            s.restart_count = 0;
            s.backoff_ms = 0;
            s.manually_stopped = false;
            s.restart_canceled = false;
        })?;
    }
    Ok(c.spec_path())
}

/// Starts a detached shim (with `extra` arguments) and waits for its first word.
fn spawn_detached(c: &Container, extra: &[String]) -> Result<()> {
    let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
    let out = std::process::Command::new(exe)
        .arg(crate::shim::SHIM_ARG)
        .arg(c.spec_path())
        .arg("--detach")
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .step(|| "starting the shim".into())?;
    let mut first = String::new();
    use std::io::BufRead;
    let stdout = out.stdout.ok_or(ContainerError::NoStartReport)?;
    let _ = std::io::BufReader::new(stdout).read_line(&mut first);
    match first.trim() {
        "started" => Ok(()),
        "" => Err(ContainerError::NoStartReport.into()),
        other => {
            // `error CODE: MESSAGE`
            let (code, message) = other
                .strip_prefix("error ")
                .and_then(|r| r.split_once(": "))
                .and_then(|(c, m)| Some((c.parse::<i32>().ok()?, m.to_string())))
                .unwrap_or((125, other.to_string()));
            Err(match code {
                126 | 127 => RuntimeError::ExecFailed { code, message },
                _ => ContainerError::StartFailed(message).into(),
            })
        }
    }
}

/// Starts a created (or stopped) container. In the foreground this does not return on
/// success: the process becomes the shim and exits with the container.
pub fn start(store: &Store, c: &Container, mode: StartMode) -> Result<()> {
    if c.running() {
        return Ok(());
    }
    prepare(store, c)?;
    match mode {
        StartMode::Foreground => {
            let spec = c.spec_path();
            // The shim must be its process's only thread (the signals it forwards are
            // blocked in that thread alone). When this process is, it becomes the shim
            // here: exec'ing this binary again cost a process image load (~1 ms of cpu
            // a `run`).
            if only_thread() {
                let code = crate::shim::main(&[spec.to_string_lossy().into_owned()]);
                std::process::exit(code.clamp(0, 255));
            }
            use std::os::unix::process::CommandExt;
            let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
            let err = std::process::Command::new(exe).arg(crate::shim::SHIM_ARG).arg(spec).exec();
            Err(RuntimeError::io("starting the shim", err))
        }
        StartMode::Detached => spawn_detached(c, &[]),
    }
}

/// Whether this process has one thread (/proc/PID/stat's 20th field; unknown: no).
fn only_thread() -> bool {
    let fields = state::stat_fields(std::process::id() as i32).unwrap_or_default();
    // The fields after the command name start at the 3rd.
    fields.split_whitespace().nth(17) == Some("1")
}

/// Starts the container detached with this process attached from the start (a socket
/// pair the shim inherits, so no output is missed), and stays attached until the process
/// ends or the user detaches. A running container is attached to.
pub fn start_attached(store: &Store, c: &Container, o: &AttachOptions) -> Result<Attached> {
    if c.running() {
        return attach::attach(c, o);
    }
    prepare(store, c)?;
    let (mut client, server) = attach::pair(o)?;
    let inherited = rustix::io::fcntl_setfd(&server, rustix::io::FdFlags::empty())
        .step(|| "passing the attach socket".into())
        .and_then(|()| {
            use rustix::fd::AsRawFd;
            spawn_detached(c, &["--attach-fd".into(), server.as_raw_fd().to_string()])
        });
    drop(server);
    inherited?;
    attach::run_client(c, &mut client, o, false)
}
