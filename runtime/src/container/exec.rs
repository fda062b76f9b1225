//! `exec`: a new process in a running container. It joins the container's namespaces
//! (setns) and cgroup, then takes the same last steps as the container's own PID 1
//! ([`init::exec`]: lookup, identity, capabilities, no_new_privs, seccomp), with the
//! process the container's spec makes for it ([`Spec::exec_process`]).
//!
//! [`Spec::exec_process`]: crate::sandbox::spec::Spec::exec_process

use super::error::ContainerError;
use super::state::Status;
use super::Container;
use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::init::{self, FORWARDED};
use crate::sandbox::spec::{ExecProcess, Process, Security};
use crate::syscall::{linux, Fork, Linux, Syscall};
use crate::user::{parse_group, parse_passwd, Accounts};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::LinkNameSpaceType;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    /// All capabilities and no seccomp filter (`exec --privileged`).
    pub privileged: bool,
    /// Start it and return (`exec -d`): its stdio is /dev/null and it outlives us.
    pub detach: bool,
}

fn ns(pid: i32, name: &str) -> Result<OwnedFd> {
    rustix::fs::open(format!("/proc/{pid}/ns/{name}").as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .step(|| format!("opening the container's {name} namespace"))
}

/// The container's own passwd and group, read through its root.
fn accounts(pid: i32) -> Accounts {
    let root = format!("/proc/{pid}/root");
    let read = |p: &str| -> Option<String> {
        let rootfd =
            rustix::fs::open(root.as_str(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?;
        let fd = rustix::fs::openat2(
            &rootfd,
            p,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        )
        .ok()?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).ok()?;
        Some(s)
    };
    Accounts {
        passwd: read("/etc/passwd").map(|d| parse_passwd(&d)),
        group: read("/etc/group").map(|d| parse_group(&d)),
    }
}

/// The container's namespaces an exec joins (all but PID, which its children enter).
const NAMESPACES: [(&str, LinkNameSpaceType); 5] = [
    ("ipc", LinkNameSpaceType::InterProcessCommunication),
    ("uts", LinkNameSpaceType::HostNameAndNISDomainName),
    ("net", LinkNameSpaceType::Network),
    ("cgroup", LinkNameSpaceType::ControlGroup),
    ("mnt", LinkNameSpaceType::Mount),
];

/// The process an exec starts and the security it runs with, from the container's spec.
fn process_of(c: &Container, o: &ExecOptions, pid: i32) -> Result<(Process, Security, String)> {
    let spec = c.spec()?;
    let user = accounts(pid).resolve(o.user.as_deref().unwrap_or(&c.config.user))?;
    let request = ExecProcess {
        args: o.args.clone(),
        env: o.env.clone(),
        cwd: o.workdir.clone(),
        tty: o.tty,
        stdin: o.interactive,
        privileged: o.privileged,
    };
    let (process, security) = spec.exec_process(&c.config.env, &request, &user);
    Ok((process, security, spec.cgroup.path))
}

/// In the forked child: the cgroup, the namespaces, the working directory and stdio, then
/// the exec itself. Never returns.
fn child(
    sys: &Linux,
    o: &ExecOptions,
    joined: (&str, &[(OwnedFd, LinkNameSpaceType)]),
    run: (&Process, &Security),
    slave: Option<&OwnedFd>,
    err_w: &OwnedFd,
) -> ! {
    let (cgroup, namespaces) = joined;
    let (process, security) = run;
    let setup = (|| -> Result<()> {
        if !o.detach {
            sys.set_parent_death_signal(libc::SIGKILL).step(|| "parent-death signal".into())?;
        }
        crate::sandbox::cgroups::Cgroup::at(cgroup).join_self()?;
        for (fd, t) in namespaces {
            sys.setns(fd.as_fd(), *t).step(|| format!("joining the {t:?} namespace"))?;
        }
        sys.chdir(std::path::Path::new(&process.cwd)).step(|| format!("entering {}", process.cwd))?;
        match slave {
            Some(s) => init::take_terminal(s),
            None if o.detach => init::null_stdio(),
            None if !o.interactive => init::null_stdin(),
            None => Ok(()),
        }
    })();
    if let Err(e) = setup {
        init::report(err_w, &e.to_string());
        std::process::exit(init::EXIT_CANNOT_EXEC);
    }
    std::process::exit(init::exec(sys, process, security, err_w));
}

/// Runs the command; returns its exit code. The caller must be single-threaded.
pub fn exec(c: &Container, o: &ExecOptions) -> Result<i32> {
    let st = c.state();
    match st.status {
        Status::Running => {}
        Status::Paused => return Err(ContainerError::ExecPaused(c.config.name.clone()).into()),
        _ => return Err(ContainerError::NotRunning(c.config.name.clone()).into()),
    }
    if o.args.is_empty() {
        return Err(ContainerError::NoCommand.into());
    }
    let pid = st.pid;
    let (process, security, cgroup) = process_of(c, o, pid)?;
    let namespaces: Vec<(OwnedFd, LinkNameSpaceType)> =
        NAMESPACES.into_iter().map(|(n, t)| ns(pid, n).map(|fd| (fd, t))).collect::<Result<_>>()?;
    let pidns = ns(pid, "pid")?;
    // The pty comes from the container's own devpts instance, so its programs see it
    // under /dev/pts.
    let (master, slave) = if o.tty { container_pty(pid).map(|(m, (s, _))| (Some(m), Some(s)))? } else { (None, None) };
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| "creating a pipe".into())?;
    let mut forwarded = FORWARDED.to_vec();
    forwarded.push(libc::SIGCHLD);
    linux::block_signals(&forwarded).step(|| "blocking signals".into())?;
    let sys = Linux;
    let own_pidns = ns(std::process::id() as i32, "pid")?;
    // Children made from now on are born in the container's PID namespace.
    sys.setns(pidns.as_fd(), LinkNameSpaceType::ProcessID).step(|| "joining the PID namespace".into())?;
    let forked = match sys.fork().step(|| "starting the process".into())? {
        Fork::Child => {
            drop(err_r);
            child(&sys, o, (&cgroup, &namespaces), (&process, &security), slave.as_ref(), &err_w)
        }
        Fork::Parent(pid) => pid,
    };
    drop(err_w);
    drop(slave);
    // Threads cannot be created while children's PID namespace differs from ours.
    sys.setns(own_pidns.as_fd(), LinkNameSpaceType::ProcessID).step(|| "restoring the PID namespace".into())?;
    let mut msg = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(err_r), &mut msg);
    let child_pid = Pid::from_raw(forked).ok_or(ContainerError::BadPid(forked))?;
    if !msg.is_empty() {
        let _ = rustix::process::waitpid(Some(child_pid), WaitOptions::empty());
        // docker's exec fails with 126 whatever stopped the program (not found included;
        // `run` uses 127 for that).
        return Err(RuntimeError::ExecFailed {
            code: init::EXIT_CANNOT_EXEC,
            message: String::from_utf8_lossy(&msg).into_owned(),
        });
    }
    if o.detach {
        // Its parent goes: the container's PID 1 adopts it, as docker's `exec -d`
        // processes belong to the container alone.
        return Ok(0);
    }
    wait(child_pid, master, o.interactive, &forwarded)
}

/// Copies the terminal both ways (with `-t`) and passes signals on until the process
/// ends; its exit code.
fn wait(child: Pid, master: Option<OwnedFd>, interactive: bool, forwarded: &[i32]) -> Result<i32> {
    let _raw = master.as_ref().and_then(|_| crate::shim::RawTerminal::enter());
    let mut output = None;
    if let Some(m) = &master {
        let m1 = m.try_clone().step(|| "dup".into())?;
        let m2 = m.try_clone().step(|| "dup".into())?;
        output = Some(std::thread::spawn(move || crate::shim::copy_fd(&m1, &rustix::stdio::stdout())));
        if interactive {
            std::thread::spawn(move || crate::shim::copy_fd(&rustix::stdio::stdin(), &m2));
        }
    }
    loop {
        if let Ok(Some((_, status))) = rustix::process::waitpid(Some(child), WaitOptions::NOHANG) {
            // The output thread ends when the last holder of the terminal is gone.
            if let Some(t) = output {
                let _ = t.join();
            }
            return Ok(init::exit_code(status));
        }
        match linux::wait_signal(forwarded, 200) {
            Ok(Some(libc::SIGCHLD)) | Ok(None) | Err(_) => {}
            Ok(Some(sig)) => {
                if let Some(s) = Signal::from_named_raw(sig) {
                    let _ = rustix::process::kill_process(child, s);
                }
            }
        }
    }
}

/// A pty pair from the container's devpts (through its root), and the slave's path inside.
fn container_pty(pid: i32) -> Result<(OwnedFd, (OwnedFd, std::path::PathBuf))> {
    use rustix::pty::{grantpt, ptsname, unlockpt};
    let root = rustix::fs::open(
        format!("/proc/{pid}/root").as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| "opening the container root".into())?;
    let rf = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
    let master =
        rustix::fs::openat2(&root, "/dev/pts/ptmx", OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty(), rf)
            .step(|| "opening the container's ptmx".into())?;
    grantpt(&master).step(|| "grantpt".into())?;
    unlockpt(&master).step(|| "unlockpt".into())?;
    let name = ptsname(&master, Vec::new()).step(|| "ptsname".into())?;
    let name = name.to_string_lossy().to_string();
    let slave =
        rustix::fs::openat2(&root, name.as_str(), OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty(), rf)
            .step(|| "opening the pty".into())?;
    Ok((master, (slave, std::path::PathBuf::from(name))))
}
