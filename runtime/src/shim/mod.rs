//! The shim: `rbuild __shim SPEC [--detach] [--attach-fd N] [--cgroup PATH]`, a fresh
//! single-threaded process that creates the sandbox's PID 1 and stays as its parent. It makes the cgroup,
//! forwards signals, publishes ports, writes the log, serves `attach` clients, runs the
//! health check, records state and exit code, and cleans up (cgroup, and for `--rm` the
//! container's directory). For a detached container it is the monitor: when the process
//! ends and the restart policy says so, it waits docker's back-off and becomes a fresh
//! shim for the next run (an exec of itself, so the container keeps its id and monitor).
//! For a build step, it is the step's sandbox.

use crate::container::error::ContainerError;
use crate::container::Container;
use crate::error::{Result, RuntimeError, Step};
use crate::network::{self, ports};
use crate::sandbox::cgroups::Cgroup;
use crate::sandbox::devices::Access;
use crate::sandbox::etc;
use crate::sandbox::init::{self, ChildFds, FORWARDED};
use crate::sandbox::spec::{Lifecycle, Network, Spec};
use crate::state::{self, State, Status};
use crate::syscall::{linux, Fork, Linux, Syscall};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod ahead;
mod attach;
pub mod health;
mod restart;
mod streams;
pub(crate) mod wire;

use ahead::Ahead;
use attach::Hub;
pub(crate) use streams::{copy_fd, open_pty, RawTerminal};
use streams::{pump, sync_winsize, Echo};

pub const SHIM_ARG: &str = "__shim";
/// The SPEC argument of a shim that reads its spec from stdin.
pub const SPEC_ON_STDIN: &str = "-";

/// How the shim was started.
#[derive(Debug, Default)]
struct ShimArgs {
    spec_path: String,
    /// A detached monitor: it reports the start on stdout, then leaves the caller.
    detach: bool,
    /// A client attached from the start (`run` without `-d`): one end of a socket pair
    /// the caller made, inherited as this descriptor number.
    attach_fd: Option<i32>,
    /// Started ahead (SPEC `-`): the cgroup to make while the spec is not there yet.
    cgroup: Option<String>,
}

impl ShimArgs {
    /// SPEC `-`: a build step's shim, started ahead of its step; its spec comes on stdin.
    fn started_ahead(&self) -> bool {
        self.spec_path == SPEC_ON_STDIN
    }

    fn parse(args: &[String]) -> Option<ShimArgs> {
        let mut a = ShimArgs { spec_path: args.first()?.clone(), ..Default::default() };
        let mut it = args[1..].iter();
        while let Some(x) = it.next() {
            match x.as_str() {
                "--detach" => a.detach = true,
                "--attach-fd" => a.attach_fd = Some(it.next()?.parse().ok()?),
                "--cgroup" => a.cgroup = Some(it.next()?.clone()),
                _ => return None,
            }
        }
        Some(a)
    }
}

/// Entry point; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let Some(a) = ShimArgs::parse(args) else {
        eprintln!("usage: rbuild {SHIM_ARG} SPEC [--detach] [--attach-fd N] [--cgroup PATH]");
        return 125;
    };
    let ahead = a.started_ahead();
    let mut made = if ahead { Ahead::make(a.cgroup.as_deref()) } else { Ahead::default() };
    let read = if ahead {
        match made.wait_spec() {
            Ok(d) => Ok(d),
            // Not needed after all.
            Err(code) => return code,
        }
    } else {
        std::fs::read(&a.spec_path)
    };
    let mut spec: Spec =
        match read.map_err(|e| e.to_string()).and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string())) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: reading {}: {e}", a.spec_path);
                return 125;
            }
        };
    made.use_netns(&mut spec);
    if restart::canceled_meanwhile(&spec) {
        return 0;
    }
    let cgroup = made.take_cgroup(&spec);
    let code = ran_to_code(&spec, &a, cgroup);
    // The store's lease file of this process (the events and the --rm unpin opened the
    // store) goes with it, as the CLI's does, rather than waiting for a prune.
    rbuild_store::lease::release_all();
    code
}

fn ran_to_code(spec: &Spec, a: &ShimArgs, cgroup: Option<Cgroup>) -> i32 {
    match run(spec, a, cgroup) {
        Ok(ran) => {
            if a.detach {
                // Returns only when the policy does not restart the container.
                restart::after_run(&a.spec_path, spec, &ran);
            }
            ran.code
        }
        Err((code, msg)) => {
            if a.detach {
                // The CLI is reading our stdout for the start result (and its code:
                // 126/127 when the program could not run).
                println!("error {code}: {msg}");
            } else {
                eprintln!("error: {msg}");
            }
            let _ = std::io::stdout().flush();
            code
        }
    }
}

/// Removes what a container leaves behind when it ends (and the --rm parts).
fn cleanup(l: &Lifecycle, cg: Option<&Cgroup>) {
    if let Some(cg) = cg {
        let _ = cg.destroy();
    }
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

/// Moves a `--rm` container's directory into the store's temp dir (its name and id are
/// free from then on, `ps -a` no longer lists it); None when it is not to be removed or
/// could not be moved.
fn set_aside(l: &Lifecycle) -> Option<std::path::PathBuf> {
    let (dir, tmp) = (l.remove_dir.as_ref()?, l.set_aside_in.as_ref()?);
    let trash = rbuild_store::temp_name(tmp, "rm");
    std::fs::rename(dir, &trash).ok()?;
    Some(trash)
}

/// `rbuild __remove-aside DIR CGROUP`: removes a container's directory set aside in the
/// store's temp dir and its cgroup, in a process group of its own (a Ctrl-C at the
/// terminal does not stop it half way). Left half done (killed), prune finishes the
/// directory: its name carries the pid of the shim, which has exited.
pub const REMOVER_ARG: &str = "__remove-aside";

fn spawn_remover(trash: &Path, cgroup: &str) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(std::env::current_exe()?)
        .arg(REMOVER_ARG)
        .arg(trash)
        .arg(cgroup)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

fn remover_main(args: &[String]) -> i32 {
    let [trash, cgroup] = args else {
        eprintln!("usage: rbuild {REMOVER_ARG} DIR CGROUP");
        return 2;
    };
    i32::from(!remove_aside(Path::new(trash), &Cgroup::at(cgroup)))
}

/// Removes a container's cgroup and its directory set aside; whether both are gone.
fn remove_aside(trash: &Path, cg: &Cgroup) -> bool {
    let cg_gone = !cg.exists() || cg.destroy().is_ok();
    let dir_gone = rbuild_store::layer::remove_tree(trash).is_ok();
    cg_gone && dir_gone
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| "creating a pipe".into())
}

type Failed = (i32, String);

fn failed(e: RuntimeError) -> Failed {
    (125, e.to_string())
}

/// A run that started: its exit code and how long the process ran.
pub(crate) struct Ran {
    pub code: i32,
    pub ran_for: Duration,
}

/// Runs the sandbox in `cgroup` (made ahead for it) or a cgroup it makes.
fn run(spec: &Spec, a: &ShimArgs, cgroup: Option<Cgroup>) -> std::result::Result<Ran, Failed> {
    if a.detach {
        let _ = rustix::process::setsid();
    }
    linux::ignore_signal(libc::SIGPIPE);
    let mut blocked = FORWARDED.to_vec();
    blocked.push(libc::SIGCHLD);
    linux::block_signals(&blocked).map_err(|e| (125, format!("blocking signals: {e}")))?;
    let attach = match a.attach_fd {
        Some(fd) => Some(linux::take_inherited(fd).map_err(|e| (125, format!("the attach descriptor: {e}")))?),
        None => None,
    };
    let devices = if spec.security.privileged { Access::All } else { Access::Default };
    let cg = match cgroup {
        Some(cg) => match cg.apply(&spec.cgroup.limits) {
            Ok(()) => cg,
            Err(e) => {
                let _ = cg.destroy();
                return Err(failed(e));
            }
        },
        None => Cgroup::create(&spec.cgroup.path, &spec.cgroup.limits, devices, &spec.cgroup.device_rules)
            .map_err(failed)?,
    };
    // A container's own configuration (build steps have none).
    let container = spec.lifecycle.container_dir().and_then(|d| Container::open(d).ok());
    let hub = container.as_ref().map(|c| Hub::new(c.config.stdin_once));
    let result = start_and_wait(spec, a.detach, &cg, Attach { hub: hub.clone(), first: attach, container });
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
    if a.started_ahead() {
        // A build step's caller goes on with its next step while this one cleans up.
        if let Err((_, msg)) = &result {
            eprintln!("error: {msg}");
        }
        ahead::report(result.as_ref().map_or_else(|(code, _)| *code, |r| r.code));
    }
    // In the foreground, `run --rm` returns once the container is gone: set aside, its
    // files and cgroup are removed by a process of their own while the caller goes on
    // (1.5-2 ms of a `run --rm true`'s 10 on ext4, more behind other writers).
    let aside = if a.detach || a.started_ahead() { None } else { set_aside(&spec.lifecycle) };
    match &aside {
        Some(trash) => {
            // The rest of --rm now (the volumes, the pin); the directory moved, and the
            // cgroup, after.
            cleanup(&Lifecycle { remove_dir: None, ..spec.lifecycle.clone() }, None);
            if spawn_remover(trash, &spec.cgroup.path).is_err() {
                remove_aside(trash, &cg);
            }
        }
        None => {
            cleanup(&spec.lifecycle, Some(&cg));
            if let Some(dir) = spec.lifecycle.container_dir() {
                let _ = std::fs::remove_file(dir.join(wire::SOCKET));
            }
        }
    }
    if let Some(h) = hub {
        h.finish(match &result {
            Ok(r) => r.code,
            Err((code, _)) => *code,
        });
    }
    result
}

/// What a container's run serves besides its process.
struct Attach {
    hub: Option<Arc<Hub>>,
    /// The client attached from the start.
    first: Option<OwnedFd>,
    container: Option<Container>,
}

/// PID 1 forked and the shim's ends of what it was given.
struct Init {
    child: Pid,
    /// Startup errors; it closes on a successful exec.
    err: Option<OwnedFd>,
    ready: OwnedFd,
    /// Taken (written or closed) to let PID 1 exec.
    go: Option<OwnedFd>,
    io: Stdio,
    /// The write end of a detached `-i` container's stdin.
    stdin: Option<OwnedFd>,
}

/// The shim's ends of PID 1's stdio.
struct Stdio {
    /// The pty master (`-t`).
    master: Option<OwnedFd>,
    /// Read ends of captured stdout and stderr.
    out: Option<(OwnedFd, OwnedFd)>,
}

/// Forks PID 1 in a new PID namespace with its stdio (a pty, captured pipes, a stdin pipe
/// for a detached `-i` container).
fn spawn_init(spec: &Spec, detach: bool) -> Result<Init> {
    let sys = Linux;
    let tty = if spec.process.tty { Some(open_pty()?) } else { None };
    // A container's output is always logged (or, with the `none` log driver, still served
    // to attached clients); in the foreground it also goes to the terminal through the
    // shim.
    let container = spec.lifecycle.state_file.is_some();
    let capture =
        if (container || spec.lifecycle.log_file.is_some()) && tty.is_none() { Some((pipe()?, pipe()?)) } else { None };
    // A detached container's stdin is a pipe its attached clients write to.
    let stdin = if detach && container && spec.process.stdin && tty.is_none() { Some(pipe()?) } else { None };
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    // Children of the shim start in a new PID namespace: the first one is PID 1. (Our own
    // namespace is put back for children right after the fork: a process whose children's
    // namespace differs from its own cannot create threads.)
    let own_pidns = open_ns("/proc/self/ns/pid").step(|| "opening the PID namespace".into())?;
    sys.unshare(UnshareFlags::NEWPID).step(|| "creating the PID namespace".into())?;
    let (master, slave) = match tty {
        Some((m, s)) => (Some(m), Some(s)),
        None => (None, None),
    };
    let (out, child_out) = match capture {
        Some(((or, ow), (er, ew))) => (Some((or, er)), Some((ow, ew))),
        None => (None, None),
    };
    let (stdin_r, stdin_w) = match stdin {
        Some((r, w)) => (Some(r), Some(w)),
        None => (None, None),
    };
    let pid = match sys.fork().step(|| "starting the container".into())? {
        Fork::Child => {
            drop((err_r, ready_r, go_w, master, out, stdin_w));
            let fds = ChildFds { err: err_w, ready: ready_w, go: go_r, tty: slave, out: child_out, stdin: stdin_r };
            init::child_main(spec, fds);
        }
        Fork::Parent(pid) => pid,
    };
    drop((err_w, ready_w, go_r, slave, child_out, stdin_r));
    let child = Pid::from_raw(pid).ok_or(ContainerError::BadPid(pid))?;
    sys.setns(own_pidns.as_fd(), LinkNameSpaceType::ProcessID).step(|| "restoring the PID namespace".into())?;
    Ok(Init { child, err: Some(err_r), ready: ready_r, go: Some(go_w), io: Stdio { master, out }, stdin: stdin_w })
}

/// Lets PID 1 go once its network is in place and attach clients can connect; returns
/// its networks, or why it did not start.
fn release_init(
    spec: &Spec,
    init: &mut Init,
    a: &mut Attach,
) -> std::result::Result<Option<network::Connected>, Failed> {
    let pid = init.child.as_raw_nonzero().get();
    // The namespaces exist once PID 1 says so (or it failed before that); the shim
    // attaches its networks, then PID 1 may exec, and its error pipe closes when it has.
    let mut b = [0u8; 1];
    let ready = matches!(rustix::io::read(&init.ready, &mut b), Ok(1));
    let mut connected = None;
    let mut refused = None;
    let go = init.go.take();
    if ready {
        match connect(spec, pid).and_then(|c| serve_attach(spec, init, a).map(|()| c)) {
            Ok(c) => {
                connected = c;
                if let Some(go) = &go {
                    let _ = rustix::io::write(go, b"1");
                }
            }
            Err(e) => refused = Some(e.to_string()),
        }
    }
    drop(go);
    let mut msg = Vec::new();
    if let Some(err) = init.err.take() {
        let _ = std::fs::File::from(err).read_to_end(&mut msg);
    }
    if refused.is_none() && msg.is_empty() && ready {
        return Ok(connected);
    }
    if refused.is_some() {
        let _ = rustix::process::kill_process(init.child, Signal::KILL);
    }
    let status = rustix::process::waitpid(Some(init.child), WaitOptions::empty())
        .ok()
        .flatten()
        .map(|(_, s)| init::exit_code(s))
        .unwrap_or(125);
    if let Some(c) = connected {
        c.release(&spec.id);
    }
    let text = match refused {
        Some(e) => return Err((125, e)),
        None if msg.is_empty() => "the container process exited while starting".to_string(),
        None => String::from_utf8_lossy(&msg).into_owned(),
    };
    Err((if status == 0 { 125 } else { status }, text))
}

/// Gives the hub the container's input and pty, takes the client attached from the start
/// and listens for others — before PID 1 may write anything.
fn serve_attach(spec: &Spec, init: &mut Init, a: &mut Attach) -> Result<()> {
    let (Some(hub), Some(dir)) = (&a.hub, spec.lifecycle.container_dir()) else { return Ok(()) };
    let master = init.io.master.as_ref().map(|m| m.try_clone()).transpose().step(|| "duplicating the pty".into())?;
    let input = match (&master, init.stdin.take()) {
        (Some(m), _) => Some(m.try_clone().step(|| "duplicating the pty".into())?),
        (None, w) => w,
    };
    hub.set_io(input, master);
    if let Some(first) = a.first.take() {
        hub.add(std::os::unix::net::UnixStream::from(first));
    }
    attach::listen(dir, hub.clone()).step(|| format!("listening on {}", dir.join(wire::SOCKET).display()))
}

fn start_and_wait(spec: &Spec, detach: bool, cg: &Cgroup, mut a: Attach) -> std::result::Result<Ran, Failed> {
    let listeners = ports::bind_ports(&spec.ports).map_err(failed)?;
    let mut init = spawn_init(spec, detach).map_err(failed)?;
    let connected = release_init(spec, &mut init, &mut a)?;
    let pid = init.child.as_raw_nonzero().get();
    let started = Instant::now();
    record_running(spec, pid, connected.as_ref());
    if detach {
        leave_caller();
    }
    // Published ports reach the sandbox's address on its first network (with
    // `--network none` there is none: docker publishes nothing then).
    if let Some(c) = connected.as_ref().filter(|_| !listeners.is_empty()) {
        if let (Ok(ns), Some(ep)) = (c.ns.try_clone(), c.endpoints.first()) {
            ports::start_proxies(listeners, ns, ep.ip.into());
        }
    }
    let health = match (&a.container, spec.lifecycle.state_file.as_ref()) {
        (Some(c), Some(f)) => health::start(c, f, started),
        _ => None,
    };
    let (pumps, raw_guard) = pump_output(spec, detach, init.io, a.hub.clone()).map_err(failed)?;
    let status = wait_forwarding(init.child, pumps.master.as_ref())?;
    let code = init::exit_code(status);
    if let Some(h) = health {
        h.stop();
    }
    drop(pumps.master);
    for p in pumps.threads {
        let _ = p.join();
    }
    drop(raw_guard);
    let oom = cg.oom_killed();
    if let Some(c) = connected {
        c.release(&spec.id);
    }
    // docker's `die` (with the exit code), recorded before the state says exited, so it
    // comes before the `stop` or `kill` of whoever waits for that.
    if let Some(c) = &a.container {
        health::EventSink::for_container(c).emit_with("die", &[("exitCode", &code.to_string())]);
    }
    if let Some(f) = &spec.lifecycle.state_file {
        let _ = state::update(f, |s: &mut State| {
            s.status = Status::Exited;
            s.exit_code = code;
            s.oom_killed = oom;
            s.finished_at = state::now();
            s.networks.clear();
            // docker's stopped containers are unhealthy.
            if let Some(h) = &mut s.health {
                h.status = state::HealthStatus::Unhealthy;
            }
        });
    }
    Ok(Ran { code, ran_for: started.elapsed() })
}

fn record_running(spec: &Spec, pid: i32, connected: Option<&network::Connected>) {
    let Some(f) = &spec.lifecycle.state_file else { return };
    let start_time = state::proc_start_time(pid);
    let me = std::process::id() as i32;
    let shim_start = state::proc_start_time(me);
    let _ = state::update(f, |s| {
        s.status = Status::Running;
        s.pid = pid;
        s.pid_start = start_time;
        s.shim_pid = me;
        s.shim_start = shim_start;
        s.started_at = state::now();
        s.exit_code = 0;
        s.error.clear();
        s.finished_at.clear();
        s.networks = connected.map(|c| c.endpoints.clone()).unwrap_or_default();
        if let Some(h) = &mut s.health {
            h.status = state::HealthStatus::Starting;
            h.failing_streak = 0;
        }
    });
}

/// Tells the caller the container started, then lets go of its stdio.
fn leave_caller() {
    println!("started");
    let _ = std::io::stdout().flush();
    if let Ok(null) =
        rustix::fs::open("/dev/null", rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
    {
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
        let _ = rustix::stdio::dup2_stdin(&null);
    }
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

/// Starts the threads that move the sandbox's output into its log, to the attached
/// clients and (in the foreground) to our stdout/stderr, and the keyboard into a
/// foreground `-it` sandbox.
fn pump_output(spec: &Spec, detach: bool, io: Stdio, hub: Option<Arc<Hub>>) -> Result<(Pumps, Option<RawTerminal>)> {
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
        threads.push(pump(o, log.clone(), "stdout", echo.then_some(Echo::Stdout), hub.clone()));
        threads.push(pump(e, log.clone(), "stderr", echo.then_some(Echo::Stderr), hub.clone()));
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
        threads.push(pump(m1, log, "stdout", echo.then_some(Echo::Stdout), hub));
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
        Some(health::HEALTH_ARG) => return Some(health::helper_main(&args[2..])),
        Some(REMOVER_ARG) => return Some(remover_main(&args[2..])),
        Some(network::dns::SERVER_ARG) => return Some(network::dns::server_main(&args[2..])),
        _ => {}
    }
    None
}

/// Writes `spec` next to the container's state for the shim to read.
pub fn write_spec(spec: &Spec, path: &Path) -> Result<()> {
    let data = serde_json::to_vec(spec).map_err(|e| RuntimeError::json("writing the spec", e))?;
    std::fs::write(path, data).step(|| format!("writing {}", path.display()))
}
