//! The shim: `rbuild __shim SPEC [--detach]`, a fresh single-threaded process that
//! creates the sandbox's PID 1 and stays as its parent. It makes the cgroup, forwards
//! signals, publishes ports, writes the log, records state and exit code, and cleans up
//! (cgroup, and for `--rm` the container's directory). For a detached container it is the
//! monitor; for a build step, the step's sandbox.

use crate::error::{Result, RuntimeError, Step};
use crate::network::{self, ports};
use crate::sandbox::cgroups::Cgroup;
use crate::sandbox::devices::Access;
use crate::sandbox::etc;
use crate::sandbox::init::{self, ChildFds, FORWARDED};
use crate::sandbox::spec::{Network, Spec};
use crate::state::{self, State, Status};
use crate::syscall::{linux, Fork, Linux, Syscall};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

mod streams;
pub(crate) use streams::{copy_fd, open_pty, RawTerminal};
use streams::{pump, sync_winsize, Echo};

pub const SHIM_ARG: &str = "__shim";

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

type Failed = (i32, String);

fn run(spec: &Spec, detach: bool) -> std::result::Result<i32, Failed> {
    let fail = |e: RuntimeError| (125, e.to_string());
    if detach {
        let _ = rustix::process::setsid();
    }
    linux::ignore_signal(libc::SIGPIPE);
    let mut blocked = FORWARDED.to_vec();
    blocked.push(libc::SIGCHLD);
    linux::block_signals(&blocked).map_err(|e| (125, format!("blocking signals: {e}")))?;
    let devices = if spec.security.privileged { Access::All } else { Access::Default };
    let cg = Cgroup::create(&spec.cgroup.path, &spec.cgroup.limits, devices).map_err(fail)?;
    let result = start_and_wait(spec, detach, &cg);
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
    cleanup(spec, Some(&cg));
    result
}

/// The shim's ends of PID 1's stdio.
struct Stdio {
    /// The pty master (`-t`).
    master: Option<OwnedFd>,
    /// Read ends of captured stdout and stderr.
    out: Option<(OwnedFd, OwnedFd)>,
}

fn start_and_wait(spec: &Spec, detach: bool, cg: &Cgroup) -> std::result::Result<i32, Failed> {
    let fail = |e: RuntimeError| (125, e.to_string());
    let sys = Linux;
    let listeners = ports::bind_ports(&spec.ports).map_err(fail)?;
    let tty = if spec.process.tty { Some(open_pty().map_err(fail)?) } else { None };
    // A container's output is always logged; in the foreground it also goes to the
    // terminal through the shim.
    let capture = if spec.lifecycle.log_file.is_some() && tty.is_none() {
        Some((pipe().map_err(fail)?, pipe().map_err(fail)?))
    } else {
        None
    };
    let (err_r, err_w) = pipe().map_err(fail)?;
    let (ready_r, ready_w) = pipe().map_err(fail)?;
    let (go_r, go_w) = pipe().map_err(fail)?;

    // Children of the shim start in a new PID namespace: the first one is PID 1. (Our own
    // namespace is put back for children right after the fork: a process whose children's
    // namespace differs from its own cannot create threads.)
    let own_pidns = open_ns("/proc/self/ns/pid").map_err(|e| (125, format!("opening the PID namespace: {e}")))?;
    sys.unshare(UnshareFlags::NEWPID).map_err(|e| (125, format!("creating the PID namespace: {e}")))?;
    let (master, slave) = match tty {
        Some((m, s)) => (Some(m), Some(s)),
        None => (None, None),
    };
    let (out, child_out) = match capture {
        Some(((or, ow), (er, ew))) => (Some((or, er)), Some((ow, ew))),
        None => (None, None),
    };
    let pid = match sys.fork().map_err(|e| (125, format!("starting the container: {e}")))? {
        Fork::Child => {
            drop((err_r, ready_r, go_w, master, out));
            init::child_main(spec, ChildFds { err: err_w, ready: ready_w, go: go_r, tty: slave, out: child_out });
        }
        Fork::Parent(pid) => pid,
    };
    drop((err_w, ready_w, go_r, slave, child_out));
    let child = Pid::from_raw(pid).ok_or((125, "bad pid".to_string()))?;
    sys.setns(own_pidns.as_fd(), LinkNameSpaceType::ProcessID)
        .map_err(|e| (125, format!("restoring the PID namespace: {e}")))?;

    // The namespaces exist once PID 1 says so (or it failed before that); the shim
    // attaches its networks, then PID 1 may exec, and its error pipe closes when it has.
    let mut b = [0u8; 1];
    let ready = matches!(rustix::io::read(&ready_r, &mut b), Ok(1));
    let mut connected = None;
    let mut failed = None;
    if ready {
        match connect(spec, pid) {
            Ok(c) => {
                connected = c;
                let _ = rustix::io::write(&go_w, b"1");
            }
            Err(e) => failed = Some(e.to_string()),
        }
    }
    drop(go_w);
    let mut msg = Vec::new();
    let _ = std::fs::File::from(err_r).read_to_end(&mut msg);
    if failed.is_some() || !msg.is_empty() || !ready {
        if failed.is_some() {
            let _ = rustix::process::kill_process(child, Signal::KILL);
        }
        let status = rustix::process::waitpid(Some(child), WaitOptions::empty())
            .ok()
            .flatten()
            .map(|(_, s)| init::exit_code(s))
            .unwrap_or(125);
        if let Some(c) = connected {
            c.release(&spec.id);
        }
        let text = match failed {
            Some(e) => return Err((125, e)),
            None if msg.is_empty() => "the container process exited while starting".to_string(),
            None => String::from_utf8_lossy(&msg).into_owned(),
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
            s.networks = connected.as_ref().map(|c| c.endpoints.clone()).unwrap_or_default();
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
    // Published ports reach the sandbox's address on its first network (with
    // `--network none` there is none: docker publishes nothing then).
    if let Some(c) = connected.as_ref().filter(|_| !listeners.is_empty()) {
        if let (Ok(ns), Some(ep)) = (c.ns.try_clone(), c.endpoints.first()) {
            ports::start_proxies(listeners, ns, ep.ip.into());
        }
    }
    let (pumps, raw_guard) = pump_output(spec, detach, Stdio { master, out }).map_err(fail)?;
    let status = wait_forwarding(child, pumps.master.as_ref())?;
    let code = init::exit_code(status);
    drop(pumps.master);
    for p in pumps.threads {
        let _ = p.join();
    }
    drop(raw_guard);
    let oom = cg.oom_killed();
    if let Some(c) = connected {
        c.release(&spec.id);
    }
    if let Some(f) = &spec.lifecycle.state_file {
        let _ = state::update(f, |s: &mut State| {
            s.status = Status::Exited;
            s.exit_code = code;
            s.oom_killed = oom;
            s.finished_at = state::now();
            s.networks.clear();
        });
    }
    Ok(code)
}

/// Attaches PID 1's namespace to the spec's bridge networks and writes its addresses
/// into its /etc/hosts.
fn connect(spec: &Spec, pid: i32) -> Result<Option<network::Connected>> {
    let Network::Bridge(requests) = &spec.network else { return Ok(None) };
    let c = network::connect(spec, requests, pid)?;
    let file = |name: &str| spec.etc_files.iter().find(|(p, _)| p == name).map(|(_, f)| f);
    let written = (|| -> Result<()> {
        if let Some(hosts) = file("/etc/hosts") {
            etc::add_endpoints(hosts, &spec.hostname, &c.endpoints)?;
        }
        if let (Some(ns), Some(resolv)) = (c.nameserver, file("/etc/resolv.conf")) {
            etc::use_nameserver(resolv, ns)?;
        }
        Ok(())
    })();
    match written {
        Ok(()) => Ok(Some(c)),
        Err(e) => {
            c.release(&spec.id);
            Err(e)
        }
    }
}

fn open_ns(path: &str) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(path, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
}

struct Pumps {
    threads: Vec<JoinHandle<()>>,
    /// Kept for window-size changes; dropped once the process is gone.
    master: Option<OwnedFd>,
}

/// Starts the threads that move the sandbox's output into its log (and, in the
/// foreground, to our stdout/stderr), and the keyboard into a `-it` sandbox.
fn pump_output(spec: &Spec, detach: bool, io: Stdio) -> Result<(Pumps, Option<RawTerminal>)> {
    let log = match &spec.lifecycle.log_file {
        Some(p) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .step(|| format!("opening the log {}", p.display()))?,
        ))),
        None => None,
    };
    let mut threads = Vec::new();
    let mut raw = None;
    let echo = !detach;
    if let Some((o, e)) = io.out {
        threads.push(pump(o, log.clone(), "stdout", echo.then_some(Echo::Stdout)));
        threads.push(pump(e, log.clone(), "stderr", echo.then_some(Echo::Stderr)));
    }
    if let Some(m) = &io.master {
        let m1 = m.try_clone().step(|| "duplicating the pty".into())?;
        if echo {
            raw = RawTerminal::enter();
            sync_winsize(Some(m));
            if spec.process.stdin {
                let m2 = m.try_clone().step(|| "duplicating the pty".into())?;
                // Keyboard to the container; this thread ends with the process.
                std::thread::spawn(move || copy_fd(&rustix::stdio::stdin(), &m2));
            }
        }
        threads.push(pump(m1, log, "stdout", echo.then_some(Echo::Stdout)));
    }
    Ok((Pumps { threads, master: io.master }, raw))
}

/// Waits for PID 1, passing signals on to it; returns its wait status.
fn wait_forwarding(child: Pid, master: Option<&OwnedFd>) -> std::result::Result<rustix::process::WaitStatus, Failed> {
    let mut blocked = FORWARDED.to_vec();
    blocked.push(libc::SIGCHLD);
    loop {
        match rustix::process::waitpid(Some(child), WaitOptions::NOHANG) {
            Ok(Some((_, st))) => return Ok(st),
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err((125, format!("waiting for the container: {e}"))),
        }
        match linux::wait_signal(&blocked, 200) {
            Ok(Some(libc::SIGCHLD)) | Ok(None) => {}
            Ok(Some(libc::SIGWINCH)) if master.is_some() => sync_winsize(master),
            Ok(Some(sig)) => {
                if let Some(s) = Signal::from_named_raw(sig) {
                    let _ = rustix::process::kill_process(child, s);
                }
            }
            Err(_) => {}
        }
    }
}

/// Runs the shim in this process if the arguments ask for it (`rbuild __shim …`).
pub fn dispatch_if_shim() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some(SHIM_ARG) => return Some(main(&args[2..])),
        Some(network::dns::SERVER_ARG) => return Some(network::dns::server_main(&args[2..])),
        _ => {}
    }
    None
}

/// Writes `spec` next to the container's state for the shim to read.
pub fn write_spec(spec: &Spec, path: &Path) -> Result<()> {
    let data = serde_json::to_vec(spec).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    std::fs::write(path, data).step(|| format!("writing {}", path.display()))
}
