//! The shim: `rbuild __shim SPEC [--detach]`, a fresh single-threaded process that
//! creates the container's PID 1 and stays as its parent. It forwards signals, publishes
//! ports, writes logs, records state and exit code, and cleans up (cgroup, and for `--rm`
//! the container's directory). For a detached container it is the monitor.

use crate::cgroup::Cgroup;
use crate::error::{Result, RuntimeError, Step};
use crate::process::{self, ChildFds};
use crate::spec::Spec;
use crate::state::{self, State, Status};
use crate::{net, sys};
use rustix::fd::OwnedFd;
use rustix::process::{Pid, Signal, WaitOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub const SHIM_ARG: &str = "__shim";

/// Signals the shim passes on to the container.
const FORWARDED: [i32; 7] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// Entry point; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let Some(spec_path) = args.first() else {
        eprintln!("usage: rbuild {SHIM_ARG} SPEC [--detach]");
        return 125;
    };
    let detach = args.iter().any(|a| a == "--detach");
    let spec: Spec = match std::fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: reading {spec_path}: {e}");
            return 125;
        }
    };
    match run(&spec, detach) {
        Ok(code) => code,
        Err((code, msg)) => {
            if detach {
                // The CLI is reading our stdout for the start result.
                println!("error: {msg}");
            } else {
                eprintln!("error: {msg}");
            }
            let _ = std::io::stdout().flush();
            code
        }
    }
}

/// Removes what a container leaves behind when it ends (and the --rm parts).
fn cleanup(spec: &Spec, cg: Option<&Cgroup>) {
    if let Some(cg) = cg {
        let _ = cg.destroy();
    }
    let l = &spec.lifecycle;
    if let Some(d) = &l.remove_dir {
        let _ = rbuild_store::layer::remove_tree(d);
    }
    for v in &l.remove_volumes {
        let _ = rbuild_store::layer::remove_tree(v);
    }
    if let Some((root, owner)) = &l.unpin {
        if let Ok(s) = rbuild_store::Store::open(root) {
            let _ = s.unpin(owner);
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| "creating a pipe".into())
}

fn run(spec: &Spec, detach: bool) -> std::result::Result<i32, (i32, String)> {
    let fail = |e: RuntimeError| (125, e.to_string());
    if detach {
        let _ = rustix::process::setsid();
    }
    sys::ignore_signal(libc::SIGPIPE);
    let mut blocked = FORWARDED.to_vec();
    blocked.push(libc::SIGCHLD);
    sys::block_signals(&blocked).map_err(|e| (125, format!("blocking signals: {e}")))?;

    let cg = match &spec.cgroup {
        Some(rel) => Some(Cgroup::create(rel, &spec.limits).map_err(fail)?),
        None => None,
    };
    let cg_ref = cg.as_ref();
    let result = start_and_wait(spec, detach, cg_ref);
    if let Err((code, msg)) = &result {
        if let Some(f) = &spec.lifecycle.state_file {
            let _ = state::update(f, |s| {
                s.status = Status::Exited;
                s.exit_code = *code;
                s.error = msg.clone();
                s.finished_at = state::now();
            });
        }
    }
    cleanup(spec, cg_ref);
    result
}

fn start_and_wait(spec: &Spec, detach: bool, cg: Option<&Cgroup>) -> std::result::Result<i32, (i32, String)> {
    let fail = |e: RuntimeError| (125, e.to_string());
    let listeners = net::bind_ports(&spec.ports).map_err(fail)?;
    let tty = if spec.process.tty { Some(open_pty().map_err(fail)?) } else { None };
    let capture = if spec.lifecycle.log_file.is_some() && tty.is_none() {
        Some((pipe().map_err(fail)?, pipe().map_err(fail)?))
    } else {
        None
    };
    let (err_r, err_w) = pipe().map_err(fail)?;
    let (ready_r, ready_w) = pipe().map_err(fail)?;

    // Children of the shim start in a new PID namespace: the first one is PID 1. (Our own
    // namespace is put back for children right after the fork: a process whose children's
    // namespace differs from its own cannot create threads.)
    let own_pidns = rustix::fs::open(
        "/proc/self/ns/pid",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| (125, format!("opening the PID namespace: {e}")))?;
    #[allow(deprecated)]
    rustix::thread::unshare(rustix::thread::UnshareFlags::NEWPID)
        .map_err(|e| (125, format!("creating the PID namespace: {e}")))?;
    let (master, slave) = match tty {
        Some((m, s)) => (Some(m), Some(s)),
        None => (None, None),
    };
    let (out_r, err_pipe_r, child_out) = match capture {
        Some(((or, ow), (er, ew))) => (Some(or), Some(er), Some((ow, ew))),
        None => (None, None, None),
    };
    let pid = sys::fork().map_err(|e| (125, format!("starting the container: {e}")))?;
    if pid == 0 {
        drop((err_r, ready_r, master, out_r, err_pipe_r));
        process::child_main(spec, ChildFds { err: err_w, ready: ready_w, tty: slave, out: child_out });
    }
    drop((err_w, ready_w, slave, child_out));
    let child = Pid::from_raw(pid).ok_or((125, "bad pid".to_string()))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&own_pidns),
        Some(rustix::thread::LinkNameSpaceType::ProcessID),
    )
    .map_err(|e| (125, format!("restoring the PID namespace: {e}")))?;

    // The namespaces exist once PID 1 says so (or it failed before that).
    let mut b = [0u8; 1];
    let ready = matches!(rustix::io::read(&ready_r, &mut b), Ok(1));
    let mut msg = Vec::new();
    let _ = std::fs::File::from(err_r).read_to_end(&mut msg);
    if !msg.is_empty() || !ready {
        let status = rustix::process::waitpid(Some(child), WaitOptions::empty())
            .ok()
            .flatten()
            .map(|(_, s)| process::exit_code(s))
            .unwrap_or(125);
        let text = if msg.is_empty() {
            "the container process exited while starting".to_string()
        } else {
            String::from_utf8_lossy(&msg).into_owned()
        };
        return Err((if status == 0 { 125 } else { status }, text));
    }
    if let Some(f) = &spec.lifecycle.state_file {
        let start_time = state::proc_start_time(pid);
        let _ = state::update(f, |s| {
            s.status = Status::Running;
            s.pid = pid;
            s.pid_start = start_time;
            s.shim_pid = std::process::id() as i32;
            s.started_at = state::now();
            s.exit_code = 0;
            s.error.clear();
            s.finished_at.clear();
        });
    }
    if detach {
        println!("started");
        let _ = std::io::stdout().flush();
        // Nothing more goes to whoever started us.
        if let Ok(null) = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            let _ = rustix::stdio::dup2_stdout(&null);
            let _ = rustix::stdio::dup2_stderr(&null);
            let _ = rustix::stdio::dup2_stdin(&null);
        }
    }
    if !listeners.is_empty() {
        if let Ok(ns) = rustix::fs::open(
            format!("/proc/{pid}/ns/net").as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            net::start_proxies(listeners, ns);
        }
    }
    let log = spec
        .lifecycle
        .log_file
        .as_ref()
        .and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok())
        .map(|f| Arc::new(Mutex::new(f)));
    let mut pumps: Vec<JoinHandle<()>> = Vec::new();
    let mut raw_guard = None;
    if let Some(or) = out_r {
        pumps.push(pump_log(or, log.clone(), "stdout"));
    }
    if let Some(er) = err_pipe_r {
        pumps.push(pump_log(er, log.clone(), "stderr"));
    }
    if let Some(m) = &master {
        let m = m.try_clone().map_err(|e| (125, e.to_string()))?;
        if log.is_some() {
            pumps.push(pump_log(m, log.clone(), "stdout"));
        } else {
            raw_guard = RawTerminal::enter();
            sync_winsize(master.as_ref());
            let m2 = m.try_clone().map_err(|e| (125, e.to_string()))?;
            pumps.push(std::thread::spawn(move || copy_fd(&m, &rustix::stdio::stdout())));
            if spec.process.stdin {
                // Keyboard to the container; this thread ends with the process.
                std::thread::spawn(move || copy_fd(&rustix::stdio::stdin(), &m2));
            }
        }
    }

    let mut blocked = FORWARDED.to_vec();
    blocked.push(libc::SIGCHLD);
    let status = loop {
        match rustix::process::waitpid(Some(child), WaitOptions::NOHANG) {
            Ok(Some((_, st))) => break st,
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err((125, format!("waiting for the container: {e}"))),
        }
        match sys::wait_signal(&blocked, 200) {
            Ok(Some(libc::SIGCHLD)) | Ok(None) => {}
            Ok(Some(libc::SIGWINCH)) if master.is_some() => sync_winsize(master.as_ref()),
            Ok(Some(sig)) => {
                if let Some(s) = Signal::from_named_raw(sig) {
                    let _ = rustix::process::kill_process(child, s);
                }
            }
            Err(_) => {}
        }
    };
    let code = process::exit_code(status);
    drop(master);
    for p in pumps {
        let _ = p.join();
    }
    drop(raw_guard);
    let oom = cg.map(|c| c.oom_killed()).unwrap_or(false);
    if let Some(f) = &spec.lifecycle.state_file {
        let _ = state::update(f, |s: &mut State| {
            s.status = Status::Exited;
            s.exit_code = code;
            s.oom_killed = oom;
            s.finished_at = state::now();
        });
    }
    Ok(code)
}

pub(crate) fn open_pty() -> Result<(OwnedFd, (OwnedFd, std::path::PathBuf))> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).step(|| "opening a pty".into())?;
    grantpt(&master).step(|| "grantpt".into())?;
    unlockpt(&master).step(|| "unlockpt".into())?;
    let name = ptsname(&master, Vec::new()).step(|| "ptsname".into())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(|| "opening the pty".into())?;
    let path = std::path::PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.as_bytes()));
    Ok((master, (slave, path)))
}

fn sync_winsize(master: Option<&OwnedFd>) {
    let Some(m) = master else { return };
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(m, ws);
    }
}

/// The terminal in raw mode while a `-t` container runs in the foreground.
pub(crate) struct RawTerminal(rustix::termios::Termios);

impl RawTerminal {
    pub(crate) fn enter() -> Option<RawTerminal> {
        let stdin = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), rustix::termios::OptionalActions::Now, &self.0);
    }
}

pub(crate) fn copy_fd(from: &impl rustix::fd::AsFd, to: &impl rustix::fd::AsFd) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match rustix::io::read(from, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if process::write_all(to, &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Copies a stream into the json-file log, one entry per line (as docker's json-file).
fn pump_log(fd: OwnedFd, log: Option<Arc<Mutex<std::fs::File>>>, stream: &'static str) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut buf = vec![0u8; 32 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let emit = |line: &[u8]| {
            if let Some(l) = &log {
                let entry =
                    serde_json::json!({"log": String::from_utf8_lossy(line), "stream": stream, "time": state::now()});
                if let Ok(mut w) = l.lock() {
                    let _ = writeln!(w, "{entry}");
                }
            }
        };
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(i) = pending.iter().position(|&c| c == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                emit(&line);
            }
            if pending.len() > 16 * 1024 {
                emit(&pending);
                pending.clear();
            }
        }
        if !pending.is_empty() {
            emit(&pending);
        }
    })
}

/// Runs the shim in this process if the arguments ask for it (`rbuild __shim …`).
pub fn dispatch_if_shim() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(SHIM_ARG) {
        return Some(main(&args[2..]));
    }
    None
}

/// Writes `spec` next to the container's state for the shim to read.
pub fn write_spec(spec: &Spec, path: &Path) -> Result<()> {
    let data = serde_json::to_vec(spec).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    std::fs::write(path, data).step(|| format!("writing {}", path.display()))
}
