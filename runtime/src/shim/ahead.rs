//! A build step's shim started ahead of its step (`rbuild __shim - --cgroup rbuild/ID`):
//! while the step before it runs on the machine's other core, it is exec'd and makes what
//! every step needs new — a network namespace and the cgroup with docker's device rules —
//! then waits for its spec on stdin. Nothing is shared between steps: each shim serves
//! one step, and what it made is used by that step or removed. Unused (the build ended,
//! or Ctrl-C), it removes its cgroup and exits; its namespace goes with it.
//!
//! Its stdin is a socket: the spec comes on it, and once PID 1 has exited (its mounts
//! and namespaces gone) the exit code goes back on it, before the shim removes the
//! cgroup — the caller commits the step meanwhile and reaps the shim later.

use crate::sandbox::cgroups::Cgroup;
use crate::sandbox::devices::Access;
use crate::sandbox::init::FORWARDED;
use crate::sandbox::spec::{default_sysctls, Limits, Network, Spec};
use crate::syscall::{linux, Linux, Syscall};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use std::io::Read;

/// What the shim made before it knew its step.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    netns: Option<OwnedFd>,
    /// `lo` is up in it, and these sysctls set (docker's for a namespace of its own).
    netns_set: Vec<(String, String)>,
    /// The cgroup at the path it was given, with docker's default device rules.
    cgroup: Option<Cgroup>,
}

impl Ahead {
    /// Blocks the signals the shim forwards (it then sees them while it waits), makes a
    /// network namespace and the cgroup at `cgroup`. What cannot be made is left to the
    /// step, which makes it as any shim does.
    pub(super) fn make(cgroup: Option<&str>) -> Ahead {
        let _ = linux::block_signals(&blocked());
        let (netns, netns_set) = new_netns();
        let cgroup = cgroup.and_then(|p| Cgroup::create(p, &Limits::default(), Access::Default, &[]).ok());
        // What PID 1's mounts read from the host (it will see the same).
        crate::sandbox::mounts::prepare();
        Ahead { netns, netns_set, cgroup }
    }

    /// The spec from stdin; otherwise what was made is removed and the shim exits with
    /// the code given: 0 when stdin closed empty (the build ended first), 128 + the
    /// signal that came meanwhile (a step given to this shim then fails, never passes).
    pub(super) fn wait_spec(&mut self) -> Result<Vec<u8>, i32> {
        let stdin = std::io::stdin();
        let blocked = blocked();
        loop {
            let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
            let timeout = rustix::time::Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
            let ready = match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(n) => n > 0,
                Err(rustix::io::Errno::INTR) => false,
                Err(e) => return Err(self.quit(125, &format!("waiting for the spec: {e}"))),
            };
            if ready {
                let mut d = Vec::new();
                return match stdin.lock().read_to_end(&mut d) {
                    Ok(_) if d.is_empty() => Err(self.quit(0, "")),
                    Ok(_) => Ok(d),
                    Err(e) => Err(self.quit(125, &format!("reading the spec: {e}"))),
                };
            }
            if let Ok(Some(sig)) = linux::wait_signal(&blocked, 0) {
                if sig != libc::SIGCHLD && sig != libc::SIGWINCH {
                    return Err(self.quit(128 + sig, ""));
                }
            }
        }
    }

    fn quit(&mut self, code: i32, msg: &str) -> i32 {
        if !msg.is_empty() {
            eprintln!("error: {msg}");
        }
        self.discard();
        code
    }

    /// Has PID 1 join the namespace made ahead (a fresh one, never used) instead of
    /// making its own, when the spec asks for a namespace of the sandbox's own.
    pub(super) fn use_netns(&self, spec: &mut Spec) {
        if let Some(ns) = &self.netns {
            if spec.network.is_private() && spec.join_netns.is_none() {
                spec.join_netns = Some(format!("/proc/self/fd/{}", rustix::fd::AsRawFd::as_raw_fd(ns)).into());
                spec.netns_ready = !self.netns_set.is_empty() && spec.sysctls == self.netns_set;
            }
        }
    }

    /// The cgroup made ahead when it is the one `spec` asks for (its path, docker's
    /// default devices); otherwise it is removed and the shim makes the spec's.
    pub(super) fn take_cgroup(&mut self, spec: &Spec) -> Option<Cgroup> {
        let cg = self.cgroup.take()?;
        let same = cg.dirs == Cgroup::at(&spec.cgroup.path).dirs
            && !spec.security.privileged
            && spec.cgroup.device_rules.is_empty();
        if same {
            return Some(cg);
        }
        let _ = cg.destroy();
        None
    }

    fn discard(&mut self) {
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        self.netns = None;
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.discard();
    }
}

/// Tells the caller the step's exit code and lets go of its output (the shim's copy of
/// it: PID 1's closed when it exited), so the caller need not wait for the cleanup.
pub(super) fn report(code: i32) {
    use rustix::fs::{Mode, OFlags};
    if let Ok(null) = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    let _ = rustix::io::write(rustix::stdio::stdin(), format!("{code}\n").as_bytes());
    // The caller reads to the end: it has it now, not when the shim exits after the
    // cleanup (0.3-0.5 ms a step, on the build's critical path).
    let _ = rustix::net::shutdown(rustix::stdio::stdin(), rustix::net::Shutdown::Write);
}

fn blocked() -> Vec<i32> {
    let mut b = FORWARDED.to_vec();
    b.push(libc::SIGCHLD);
    b
}

/// A new network namespace with `lo` up and docker's sysctls for a namespace of the
/// sandbox's own (none when they could not be set: PID 1 sets them then); the shim itself
/// stays in its own (ports and bridges are set up from there).
fn new_netns() -> (Option<OwnedFd>, Vec<(String, String)>) {
    let sys = Linux;
    let Ok(own) = super::open_ns("/proc/self/ns/net") else { return (None, vec![]) };
    if sys.unshare(UnshareFlags::NEWNET).is_err() {
        return (None, vec![]);
    }
    let made = super::open_ns("/proc/self/ns/net");
    let defaults = default_sysctls(&Network::None);
    let set = sys.loopback_up().is_ok() && defaults.iter().all(|(k, v)| sys.write_sysctl(k, v).is_ok());
    if let Err(e) = sys.setns(own.as_fd(), LinkNameSpaceType::Network) {
        eprintln!("error: restoring the network namespace: {e}");
        std::process::exit(125);
    }
    (made.ok(), if set { defaults } else { vec![] })
}
