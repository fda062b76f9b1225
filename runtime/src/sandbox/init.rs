//! PID 1 of a sandbox: its setup (cgroup, namespaces, root filesystem, working directory,
//! stdio), the optional init, and the exec, whose last steps (lookup, privileges) an
//! `exec` shares.

use super::cgroups::Cgroup;
use super::error::SandboxError;
use super::spec::{Process, Security, Spec};
use super::{namespaces, privileges, rootfs};
use crate::error::{Result, Step};
use crate::syscall::{self, Fork, Syscall};
use rustix::fd::{AsFd, OwnedFd};
use rustix::process::{Pid, Signal};
use std::path::Path;

/// Descriptors the shim hands to PID 1.
pub struct ChildFds {
    /// Startup errors go here; it closes on a successful exec.
    pub err: OwnedFd,
    /// One byte once the namespaces exist (the shim then attaches the network).
    pub ready: OwnedFd,
    /// One byte (or EOF) when the shim is done with the namespaces: PID 1 waits for it
    /// before it execs, so the program starts with its network in place.
    pub go: OwnedFd,
    /// The pty slave and its path (`/dev/pts/N`), for `-t`.
    pub tty: Option<(OwnedFd, std::path::PathBuf)>,
    /// Write ends for captured stdout and stderr.
    pub out: Option<(OwnedFd, OwnedFd)>,
    /// The read end of a pipe for stdin (a detached `-i` container's attach clients).
    pub stdin: Option<OwnedFd>,
}

/// Exit codes for startup failures, as docker uses them.
pub const EXIT_NOT_FOUND: i32 = 127;
pub const EXIT_CANNOT_EXEC: i32 = 126;
pub const EXIT_SETUP: i32 = 125;

/// Signals an init passes on to the main process.
pub(crate) const FORWARDED: [i32; 7] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// PID 1: never returns. Reports failures on `fds.err` and exits.
pub fn child_main(spec: &Spec, fds: ChildFds) -> ! {
    let sys = syscall::Linux;
    let code = match setup(&sys, spec, &fds) {
        Ok(()) => exec_or_init(&sys, spec, &fds),
        Err(e) => {
            report(&fds.err, &format!("{e}"));
            EXIT_SETUP
        }
    };
    std::process::exit(code)
}

pub(crate) fn report(fd: &OwnedFd, msg: &str) {
    let _ = rustix::io::write(fd, msg.as_bytes());
}

fn setup(sys: &dyn Syscall, spec: &Spec, fds: &ChildFds) -> Result<()> {
    // If the shim dies, the sandbox dies with it.
    sys.set_parent_death_signal(libc::SIGKILL).step(|| "setting the parent-death signal".into())?;
    Cgroup::at(&spec.cgroup.path).join_self()?;
    namespaces::enter(sys, spec)?;
    rustix::io::write(&fds.ready, b"1").step(|| "signalling the shim".into())?;
    // The pty by path: a descriptor's mount belongs to the namespace it was opened in.
    let console = fds.tty.as_ref().map(|(_, p)| p.clone());
    rootfs::setup(sys, spec, console.as_deref())?;
    enter_cwd(sys, &spec.process.cwd)?;
    stdio(spec.process.stdin, fds)?;
    let mut b = [0u8; 1];
    match rustix::io::read(&fds.go, &mut b) {
        Ok(1) => Ok(()),
        // The shim closed the pipe without a go: it failed and reported why.
        _ => Err(SandboxError::NotFinished.into()),
    }
}

/// docker creates a missing working directory, its path cleaned first (the daemon's
/// `SetupWorkingDirectory` runs `filepath.Clean`): `WORKDIR /a/b/../c` makes `/a/c` and
/// no `/a/b`, which a `mkdir -p` of the raw path would leave behind.
pub(crate) fn enter_cwd(sys: &dyn Syscall, cwd: &str) -> Result<()> {
    let mut parts: Vec<&str> = Vec::new();
    for c in cwd.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let cwd = format!("/{}", parts.join("/"));
    sys.mkdir_all(Path::new(&cwd)).step(|| format!("creating the working directory {cwd}"))?;
    sys.chdir(Path::new(&cwd)).step(|| format!("entering the working directory {cwd}"))
}

fn stdio(keep_stdin: bool, fds: &ChildFds) -> Result<()> {
    use rustix::stdio::{dup2_stderr, dup2_stdout};
    if let Some((t, _)) = &fds.tty {
        return take_terminal(t);
    }
    if let Some((o, e)) = &fds.out {
        dup2_stdout(o).step(|| "stdout".into())?;
        dup2_stderr(e).step(|| "stderr".into())?;
    }
    if let Some(i) = &fds.stdin {
        rustix::stdio::dup2_stdin(i).step(|| "stdin".into())?;
    } else if !keep_stdin {
        null_stdin()?;
    }
    Ok(())
}

/// Makes `tty` the controlling terminal and stdio of a new session.
pub(crate) fn take_terminal(tty: &OwnedFd) -> Result<()> {
    use rustix::stdio::{dup2_stderr, dup2_stdin, dup2_stdout};
    rustix::process::setsid().step(|| "starting a session".into())?;
    rustix::process::ioctl_tiocsctty(tty).step(|| "taking the terminal".into())?;
    dup2_stdin(tty).step(|| "stdin".into())?;
    dup2_stdout(tty).step(|| "stdout".into())?;
    dup2_stderr(tty).step(|| "stderr".into())
}

/// /dev/null as stdin, stdout and stderr (`exec -d`).
pub(crate) fn null_stdio() -> Result<()> {
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(|| "opening /dev/null".into())?;
    rustix::stdio::dup2_stdin(&null).step(|| "stdin".into())?;
    rustix::stdio::dup2_stdout(&null).step(|| "stdout".into())?;
    rustix::stdio::dup2_stderr(&null).step(|| "stderr".into())
}

pub(crate) fn null_stdin() -> Result<()> {
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(|| "opening /dev/null".into())?;
    rustix::stdio::dup2_stdin(&null).step(|| "stdin".into())
}

fn exec_or_init(sys: &dyn Syscall, spec: &Spec, fds: &ChildFds) -> i32 {
    if !spec.process.init {
        return exec(sys, &spec.process, &spec.security, &fds.err);
    }
    match sys.fork() {
        Ok(Fork::Child) => exec(sys, &spec.process, &spec.security, &fds.err),
        Ok(Fork::Parent(pid)) => init_loop(pid),
        Err(e) => {
            report(&fds.err, &format!("starting the init process: {e}"));
            EXIT_SETUP
        }
    }
}

/// `--init`: PID 1 reaps every orphan and forwards signals to the main process; it exits
/// with the main process's status.
fn init_loop(main: i32) -> i32 {
    let mut all = FORWARDED.to_vec();
    all.push(libc::SIGCHLD);
    let _ = syscall::linux::block_signals(&all);
    loop {
        while let Ok(Some((pid, status))) = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG) {
            if pid.as_raw_nonzero().get() == main {
                return exit_code(status);
            }
        }
        if let Ok(Some(sig)) = syscall::linux::wait_signal(&all, 1000) {
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

/// Looks `cmd` up in PATH (from the process environment) inside the sandbox, with
/// docker's messages and exit codes (127 not found, 126 not executable).
pub(crate) fn lookup(cmd: &str, env: &[String]) -> std::result::Result<String, (i32, String)> {
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
    let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(super::spec::DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        if let Some(r @ Ok(_)) = check(&format!("{dir}/{cmd}")) {
            return r;
        }
    }
    Err((EXIT_NOT_FOUND, format!("exec: \"{cmd}\": executable file not found in $PATH")))
}

/// Finds the program, drops to the process's identity and privileges, and execs it.
/// Returns (the exit code to use) only on failure, after reporting it on `err`.
pub(crate) fn exec(sys: &dyn Syscall, p: &Process, security: &Security, err: &OwnedFd) -> i32 {
    let Some(argv0) = p.args.first() else {
        report(err, "no command specified");
        return EXIT_SETUP;
    };
    let path = match lookup(argv0, &p.env) {
        Ok(path) => path,
        Err((code, msg)) => {
            report(err, &msg);
            return code;
        }
    };
    // Descriptors other than stdio must not reach the program (the error pipe is already
    // close-on-exec: its closing tells the shim the exec worked). Done before the seccomp
    // filter, which may not allow close_range.
    if let Err(e) = sys.cloexec_from(3) {
        report(err, &format!("closing descriptors: {e}"));
        return EXIT_SETUP;
    }
    // Limits before the privileges go: raising a hard limit needs CAP_SYS_RESOURCE.
    for r in &p.rlimits {
        if let Err(e) = sys.set_rlimit(&r.name, r.soft, r.hard) {
            report(err, &format!("setting the {} ulimit: {e}", r.name));
            return EXIT_SETUP;
        }
    }
    if let Err(e) = privileges::drop_privileges(sys, p, security) {
        report(err, &e.to_string());
        return EXIT_SETUP;
    }
    let e = sys.exec(&path, argv0, &p.args[1..], &p.env);
    let code = match e.raw_os_error() {
        Some(libc::ENOENT) => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_EXEC,
    };
    report(err, &format!("exec {argv0}: {e}"));
    code
}

/// Writes the whole buffer to a raw descriptor (used for small control messages).
pub fn write_all(fd: &impl AsFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::write(fd, data)?;
        data = &data[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, Recorder};

    #[test]
    fn lookup_follows_path_with_dockers_codes() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(lookup("sh", &env).unwrap(), "/bin/sh");
        assert_eq!(lookup("no-such-program", &env).unwrap_err().0, EXIT_NOT_FOUND);
        assert_eq!(lookup("/etc", &env).unwrap_err().0, EXIT_CANNOT_EXEC);
        assert_eq!(lookup("/etc/passwd", &env).unwrap_err().0, EXIT_CANNOT_EXEC);
        assert_eq!(lookup("", &env).unwrap_err().0, EXIT_NOT_FOUND);
    }

    #[test]
    fn exec_closes_descriptors_then_drops_privileges_then_execs() {
        let sys = Recorder::default();
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let p = Process {
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            groups: vec![],
            tty: false,
            stdin: false,
            init: false,
            rlimits: vec![],
        };
        let code = exec(&sys, &p, &Security::default(), &w);
        assert_eq!(code, EXIT_CANNOT_EXEC, "the fake's exec fails");
        let c = sys.calls();
        assert_eq!(c[0], Call::CloexecFrom(3));
        let uid = c.iter().position(|x| *x == Call::SetResUid(0)).unwrap();
        let exec = c.iter().position(|x| matches!(x, Call::Exec { .. })).unwrap();
        assert!(uid < exec);
        assert_eq!(
            c[exec],
            Call::Exec { path: "/bin/sh".into(), args: vec!["-c".into(), "true".into()], env: p.env.clone() }
        );
    }

    #[test]
    fn missing_working_directory_is_made() {
        let sys = Recorder::default();
        enter_cwd(&sys, "/srv/app").unwrap();
        assert_eq!(sys.calls(), [Call::MkdirAll("/srv/app".into()), Call::Chdir("/srv/app".into())]);
    }

    #[test]
    fn the_working_directory_is_cleaned_before_it_is_made() {
        for (given, made) in [("/a/b/../c/./d//", "/a/c/d"), ("", "/"), ("/../x/..", "/"), ("rel/dir", "/rel/dir")] {
            let sys = Recorder::default();
            enter_cwd(&sys, given).unwrap();
            assert_eq!(sys.calls(), [Call::MkdirAll(made.into()), Call::Chdir(made.into())], "{given}");
        }
    }
}
