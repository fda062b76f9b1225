//! `exec`: a new process in a running container, joining its namespaces (setns), its
//! cgroup, and its identity and restrictions.

use crate::container::Container;
use crate::error::{Result, RuntimeError, Step};
use crate::spec::Spec;
use crate::state::Status;
use crate::user::{parse_group, parse_passwd, Accounts};
use crate::{cgroup, process, seccomp, sys};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::thread::{CapabilitySet, CapabilitySets, LinkNameSpaceType};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
}

fn ns(pid: i32, name: &str) -> Result<OwnedFd> {
    rustix::fs::open(format!("/proc/{pid}/ns/{name}").as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .step(|| format!("opening the container's {name} namespace"))
}

/// Runs the command; returns its exit code. The caller must be single-threaded.
pub fn exec(c: &Container, o: &ExecOptions) -> Result<i32> {
    let st = c.state();
    match st.status {
        Status::Running => {}
        Status::Paused => {
            return Err(RuntimeError::Conflict(format!(
                "container {} is paused, unpause the container before exec",
                c.config.name
            )))
        }
        _ => return Err(RuntimeError::Conflict(format!("container {} is not running", c.config.name))),
    }
    if o.args.is_empty() {
        return Err(RuntimeError::Invalid("no command specified".into()));
    }
    let spec: Spec =
        serde_json::from_slice(&std::fs::read(c.spec_path()).step(|| "reading the container spec".into())?)
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let pid = st.pid;
    // The container's own passwd and group, through its root.
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
    let accounts = Accounts {
        passwd: read("/etc/passwd").map(|d| parse_passwd(&d)),
        group: read("/etc/group").map(|d| parse_group(&d)),
    };
    let user = accounts.resolve(o.user.as_deref().unwrap_or(&c.config.user))?;
    let mut env = spec.process.env.clone();
    for e in &o.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        env.push(e.clone());
    }
    let cwd = o.workdir.clone().unwrap_or_else(|| spec.process.cwd.clone());
    let namespaces: Vec<(OwnedFd, LinkNameSpaceType)> = [
        ("ipc", LinkNameSpaceType::InterProcessCommunication),
        ("uts", LinkNameSpaceType::HostNameAndNISDomainName),
        ("net", LinkNameSpaceType::Network),
        ("cgroup", LinkNameSpaceType::ControlGroup),
        ("mnt", LinkNameSpaceType::Mount),
    ]
    .into_iter()
    .map(|(n, t)| ns(pid, n).map(|fd| (fd, t)))
    .collect::<Result<_>>()?;
    let pidns = ns(pid, "pid")?;
    // The pty comes from the container's own devpts instance, so its programs see it
    // under /dev/pts.
    let tty = if o.tty { Some(container_pty(pid)?) } else { None };
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| "creating a pipe".into())?;
    let forwarded = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGCHLD,
    ];
    sys::block_signals(&forwarded).step(|| "blocking signals".into())?;
    let own_pidns = ns(std::process::id() as i32, "pid")?;
    // Children made from now on are born in the container's PID namespace.
    rustix::thread::move_into_link_name_space(pidns.as_fd(), Some(LinkNameSpaceType::ProcessID))
        .step(|| "joining the PID namespace".into())?;
    let (master, slave) = match tty {
        Some((m, s)) => (Some(m), Some(s)),
        None => (None, None),
    };
    let child = sys::fork().step(|| "starting the process".into())?;
    if child == 0 {
        drop(err_r);
        let r = (|| -> Result<()> {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                .step(|| "parent-death signal".into())?;
            if let Some(rel) = &spec.cgroup {
                cgroup::Cgroup::at(rel).join_self()?;
            }
            for (fd, t) in &namespaces {
                rustix::thread::move_into_link_name_space(fd.as_fd(), Some(*t))
                    .step(|| format!("joining the {t:?} namespace"))?;
            }
            rustix::process::chdir(cwd.as_str()).step(|| format!("entering {cwd}"))?;
            if let Some((s, _)) = &slave {
                rustix::process::setsid().step(|| "setsid".into())?;
                rustix::process::ioctl_tiocsctty(s).step(|| "taking the terminal".into())?;
                rustix::stdio::dup2_stdin(s).step(|| "stdin".into())?;
                rustix::stdio::dup2_stdout(s).step(|| "stdout".into())?;
                rustix::stdio::dup2_stderr(s).step(|| "stderr".into())?;
            } else if !o.interactive {
                let null = rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .step(|| "/dev/null".into())?;
                rustix::stdio::dup2_stdin(&null).step(|| "stdin".into())?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            let _ = rustix::io::write(&err_w, e.to_string().as_bytes());
            std::process::exit(126);
        }
        let mut pspec = spec.clone();
        pspec.process.args = o.args.clone();
        pspec.process.env = env.clone();
        pspec.process.uid = user.uid;
        pspec.process.gid = user.gid;
        pspec.process.groups = user.groups.clone();
        pspec.process.init = false;
        let code = exec_in_container(&pspec, &err_w);
        std::process::exit(code);
    }
    drop(err_w);
    drop(slave);
    // Threads cannot be created while children's PID namespace differs from ours.
    rustix::thread::move_into_link_name_space(own_pidns.as_fd(), Some(LinkNameSpaceType::ProcessID))
        .step(|| "restoring the PID namespace".into())?;
    let mut msg = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(err_r), &mut msg);
    let child_pid = Pid::from_raw(child).ok_or_else(|| RuntimeError::Invalid("bad pid".into()))?;
    if !msg.is_empty() {
        let code = rustix::process::waitpid(Some(child_pid), WaitOptions::empty())
            .ok()
            .flatten()
            .map(|(_, s)| process::exit_code(s))
            .unwrap_or(126);
        return Err(RuntimeError::Invalid(format!("{} (exit code {code})", String::from_utf8_lossy(&msg))));
    }
    let _raw = master.as_ref().and_then(|_| crate::shim::RawTerminal::enter());
    let mut output = None;
    if let Some(m) = &master {
        let m1 = m.try_clone().step(|| "dup".into())?;
        let m2 = m.try_clone().step(|| "dup".into())?;
        output = Some(std::thread::spawn(move || crate::shim::copy_fd(&m1, &rustix::stdio::stdout())));
        if o.interactive {
            std::thread::spawn(move || crate::shim::copy_fd(&rustix::stdio::stdin(), &m2));
        }
    }
    loop {
        if let Ok(Some((_, status))) = rustix::process::waitpid(Some(child_pid), WaitOptions::NOHANG) {
            // The output thread ends when the last holder of the terminal is gone.
            if let Some(t) = output {
                let _ = t.join();
            }
            return Ok(process::exit_code(status));
        }
        match sys::wait_signal(&forwarded, 200) {
            Ok(Some(libc::SIGCHLD)) | Ok(None) | Err(_) => {}
            Ok(Some(sig)) => {
                if let Some(s) = Signal::from_named_raw(sig) {
                    let _ = rustix::process::kill_process(child_pid, s);
                }
            }
        }
    }
}

/// Identity, capabilities, no_new_privs, seccomp and exec for an exec'd process.
fn exec_in_container(spec: &Spec, err: &OwnedFd) -> i32 {
    let p = &spec.process;
    let set = CapabilitySet::from_bits_retain(spec.caps);
    let r = (|| -> Result<()> {
        for (_, cnum) in crate::caps::CAPS {
            if spec.caps & (1 << cnum) == 0 {
                match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << cnum)) {
                    Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                    Err(e) => return Err(RuntimeError::io("dropping capabilities", e)),
                }
            }
        }
        rustix::thread::set_keep_capabilities(true).step(|| "keepcaps".into())?;
        let groups: Vec<rustix::process::Gid> = p.groups.iter().map(|g| rustix::process::Gid::from_raw(*g)).collect();
        rustix::thread::set_thread_groups(&groups).step(|| "groups".into())?;
        let gid = rustix::process::Gid::from_raw(p.gid);
        let uid = rustix::process::Uid::from_raw(p.uid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).step(|| "setgid".into())?;
        rustix::thread::set_thread_res_uid(uid, uid, uid).step(|| "setuid".into())?;
        rustix::thread::set_capabilities(
            None,
            CapabilitySets { effective: set, permitted: set, inheritable: CapabilitySet::empty() },
        )
        .step(|| "capset".into())?;
        rustix::thread::set_no_new_privs(true).step(|| "no_new_privs".into())?;
        sys::reset_signals().step(|| "signals".into())?;
        seccomp::install(spec.caps).step(|| "seccomp".into())?;
        Ok(())
    })();
    if let Err(e) = r {
        let _ = rustix::io::write(err, e.to_string().as_bytes());
        return 126;
    }
    let _ = sys::cloexec_from(3);
    use std::os::unix::process::CommandExt;
    let path = p.env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(crate::DEFAULT_PATH).to_string();
    let mut cmd = std::process::Command::new(&p.args[0]);
    cmd.args(&p.args[1..]).env_clear();
    for e in &p.env {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    if !p.env.iter().any(|e| e.starts_with("PATH=")) {
        cmd.env("PATH", path);
    }
    let e = cmd.exec();
    let _ = rustix::io::write(err, format!("exec: {:?}: {e}", p.args[0]).as_bytes());
    if e.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
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
