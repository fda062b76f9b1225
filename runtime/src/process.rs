//! Inside the container: PID 1's setup (namespaces, hostname, loopback, root filesystem,
//! stdio), the optional init, and the last steps before exec (identity, capabilities,
//! no_new_privs, seccomp).

use crate::error::{Result, RuntimeError, Step};
use crate::spec::{Network, Spec};
use crate::{caps, cgroup, net, rootfs, seccomp, sys};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::{Pid, Signal};
use rustix::thread::{CapabilitySet, CapabilitySets, UnshareFlags};
use std::io::Write;
use std::os::unix::process::CommandExt;

/// Descriptors the shim hands to PID 1.
pub struct ChildFds {
    /// Startup errors go here; it closes on a successful exec.
    pub err: OwnedFd,
    /// One byte once the namespaces exist (the shim then joins the network namespace).
    pub ready: OwnedFd,
    /// The pty slave and its path (`/dev/pts/N`), for `-t`.
    pub tty: Option<(OwnedFd, std::path::PathBuf)>,
    /// Write ends for captured stdout and stderr.
    pub out: Option<(OwnedFd, OwnedFd)>,
}

/// Exit codes for startup failures, as docker uses them.
pub const EXIT_NOT_FOUND: i32 = 127;
pub const EXIT_CANNOT_EXEC: i32 = 126;
pub const EXIT_SETUP: i32 = 125;

/// PID 1: never returns. Reports failures on `fds.err` and exits.
pub fn child_main(spec: &Spec, fds: ChildFds) -> ! {
    let code = match setup(spec, &fds) {
        Ok(()) => exec_or_init(spec, &fds),
        Err(e) => {
            report(&fds.err, &format!("{e}"));
            EXIT_SETUP
        }
    };
    std::process::exit(code)
}

fn report(fd: &OwnedFd, msg: &str) {
    let _ = rustix::io::write(fd, msg.as_bytes());
}

fn setup(spec: &Spec, fds: &ChildFds) -> Result<()> {
    // If the shim dies, the container dies with it.
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .step(|| "setting the parent-death signal".into())?;
    if let Some(cg) = &spec.cgroup {
        cgroup::Cgroup::at(cg).join_self()?;
    }
    let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC;
    if spec.network == Network::None {
        flags |= UnshareFlags::NEWNET;
    }
    if spec.cgroup.is_some() {
        flags |= UnshareFlags::NEWCGROUP;
    }
    #[allow(deprecated)]
    rustix::thread::unshare(flags).step(|| "creating namespaces".into())?;
    rustix::system::sethostname(spec.hostname.as_bytes()).step(|| "setting the hostname".into())?;
    if spec.network == Network::None {
        net::loopback_up()?;
    }
    rustix::io::write(&fds.ready, b"1").step(|| "signalling the shim".into())?;
    // The pty by path: a descriptor's mount belongs to the namespace it was opened in.
    let console = fds.tty.as_ref().map(|(_, p)| p.clone());
    rootfs::setup(spec, console.as_deref())?;
    // docker creates a missing working directory.
    let cwd = if spec.process.cwd.is_empty() { "/" } else { spec.process.cwd.as_str() };
    std::fs::create_dir_all(cwd).step(|| format!("creating the working directory {cwd}"))?;
    rustix::process::chdir(cwd).step(|| format!("entering the working directory {cwd}"))?;
    stdio(spec, fds)
}

fn stdio(spec: &Spec, fds: &ChildFds) -> Result<()> {
    use rustix::stdio::{dup2_stderr, dup2_stdin, dup2_stdout};
    if let Some((t, _)) = &fds.tty {
        rustix::process::setsid().step(|| "starting a session".into())?;
        rustix::process::ioctl_tiocsctty(t).step(|| "taking the terminal".into())?;
        dup2_stdin(t).step(|| "stdin".into())?;
        dup2_stdout(t).step(|| "stdout".into())?;
        dup2_stderr(t).step(|| "stderr".into())?;
        return Ok(());
    }
    if let Some((o, e)) = &fds.out {
        dup2_stdout(o).step(|| "stdout".into())?;
        dup2_stderr(e).step(|| "stderr".into())?;
    }
    if !spec.process.stdin {
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .step(|| "opening /dev/null".into())?;
        dup2_stdin(&null).step(|| "stdin".into())?;
    }
    Ok(())
}

fn exec_or_init(spec: &Spec, fds: &ChildFds) -> i32 {
    if !spec.process.init {
        return exec(spec, fds);
    }
    match sys::fork() {
        Ok(0) => exec(spec, fds),
        Ok(pid) => init_loop(pid),
        Err(e) => {
            report(&fds.err, &format!("starting the init process: {e}"));
            EXIT_SETUP
        }
    }
}

/// `--init`: PID 1 reaps every orphan and forwards signals to the main process; it exits
/// with the main process's status.
fn init_loop(main: i32) -> i32 {
    let forwarded =
        [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];
    let mut all = forwarded.to_vec();
    all.push(libc::SIGCHLD);
    let _ = sys::block_signals(&all);
    loop {
        while let Ok(Some((pid, status))) = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG) {
            if pid.as_raw_nonzero().get() == main {
                return exit_code(status);
            }
        }
        if let Ok(Some(sig)) = sys::wait_signal(&all, 1000) {
            if sig != libc::SIGCHLD {
                if let (Some(p), Some(s)) = (Pid::from_raw(main), Signal::from_named_raw(sig)) {
                    let _ = rustix::process::kill_process(p, s);
                }
            }
        }
    }
}

/// docker's exit code of a wait status: the code, or 128 + the signal.
pub fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(c) = status.exit_status() {
        return c;
    }
    if let Some(s) = status.terminating_signal() {
        return 128 + s;
    }
    255
}

/// Looks `cmd` up in PATH (from the process environment) inside the container.
fn lookup(cmd: &str, env: &[String]) -> std::result::Result<String, (i32, String)> {
    use std::os::unix::fs::PermissionsExt;
    if cmd.is_empty() {
        return Err((EXIT_NOT_FOUND, "exec: \"\": executable file not found in $PATH".into()));
    }
    let check = |p: &str| -> Option<std::result::Result<String, (i32, String)>> {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Some(Ok(p.to_string())),
            Ok(m) if m.is_dir() => Some(Err((EXIT_CANNOT_EXEC, format!("exec: \"{cmd}\": is a directory")))),
            Ok(_) => Some(Err((EXIT_CANNOT_EXEC, format!("exec: \"{cmd}\": permission denied")))),
            Err(_) => None,
        }
    };
    if cmd.contains('/') {
        return check(cmd).unwrap_or_else(|| {
            Err((EXIT_NOT_FOUND, format!("exec: \"{cmd}\": stat {cmd}: no such file or directory")))
        });
    }
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(crate::DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        if let Some(r) = check(&format!("{dir}/{cmd}")) {
            if r.is_ok() {
                return r;
            }
        }
    }
    Err((EXIT_NOT_FOUND, format!("exec: \"{cmd}\": executable file not found in $PATH")))
}

/// Drops to the configured identity and privileges, then execs. Returns only on failure.
fn exec(spec: &Spec, fds: &ChildFds) -> i32 {
    let p = &spec.process;
    let Some(argv0) = p.args.first() else {
        report(&fds.err, "no command specified");
        return EXIT_SETUP;
    };
    let path = match lookup(argv0, &p.env) {
        Ok(path) => path,
        Err((code, msg)) => {
            report(&fds.err, &msg);
            return code;
        }
    };
    if let Err(e) = drop_privileges(spec) {
        report(&fds.err, &e.to_string());
        return EXIT_SETUP;
    }
    // Descriptors other than stdio must not reach the container's program (the error pipe
    // is already close-on-exec: it closing tells the shim the exec worked).
    let _ = sys::cloexec_from(3);
    let mut cmd = std::process::Command::new(&path);
    cmd.arg0(argv0).args(&p.args[1..]).env_clear();
    for e in &p.env {
        match e.split_once('=') {
            Some((k, v)) => cmd.env(k, v),
            None => cmd.env(e, ""),
        };
    }
    let err = cmd.exec();
    let code = match err.raw_os_error() {
        Some(libc::ENOENT) => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_EXEC,
    };
    report(&fds.err, &format!("exec {argv0}: {err}"));
    code
}

fn drop_privileges(spec: &Spec) -> Result<()> {
    let p = &spec.process;
    let set = CapabilitySet::from_bits_retain(spec.caps);
    for (_, c) in caps::CAPS {
        if spec.caps & (1 << c) == 0 {
            match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << c)) {
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(RuntimeError::io("dropping capabilities", e)),
            }
        }
    }
    rustix::thread::set_keep_capabilities(true).step(|| "keeping capabilities".into())?;
    let groups: Vec<rustix::process::Gid> = p.groups.iter().map(|g| rustix::process::Gid::from_raw(*g)).collect();
    rustix::thread::set_thread_groups(&groups).step(|| "setting supplementary groups".into())?;
    let gid = rustix::process::Gid::from_raw(p.gid);
    let uid = rustix::process::Uid::from_raw(p.uid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).step(|| format!("setting gid {}", p.gid))?;
    rustix::thread::set_thread_res_uid(uid, uid, uid).step(|| format!("setting uid {}", p.uid))?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets { effective: set, permitted: set, inheritable: CapabilitySet::empty() },
    )
    .step(|| "setting capabilities".into())?;
    rustix::thread::set_keep_capabilities(false).step(|| "keeping capabilities".into())?;
    if spec.no_new_privs {
        rustix::thread::set_no_new_privs(true).step(|| "setting no_new_privs".into())?;
    }
    sys::reset_signals().step(|| "resetting signals".into())?;
    if spec.seccomp {
        seccomp::install(spec.caps).step(|| "installing the seccomp filter".into())?;
    }
    Ok(())
}

/// Writes the whole buffer to a raw descriptor (used for small control messages).
pub fn write_all(fd: &impl AsFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::write(fd, data)?;
        data = &data[n..];
    }
    Ok(())
}

/// For `std::io::Write` users of a raw descriptor.
pub struct FdWriter<'a>(pub &'a OwnedFd);
impl Write for FdWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(rustix::io::write(self.0, b)?)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
