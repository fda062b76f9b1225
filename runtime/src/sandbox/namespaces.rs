//! The sandbox's namespaces: mount, UTS, IPC, cgroup, and network unless it shares the
//! host's (the PID namespace is made by the shim, whose first child is PID 1). Also what
//! belongs to a new namespace right away: the hostname, `lo`, docker's network sysctls.

use super::spec::Spec;
use crate::error::{Result, Step};
use crate::syscall::Syscall;
use rustix::thread::UnshareFlags;

/// The namespaces PID 1 unshares for `spec`.
pub(crate) fn flags(spec: &Spec) -> UnshareFlags {
    let mut f = UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC | UnshareFlags::NEWCGROUP;
    // A private network made ahead of time is joined instead (see the shim).
    if spec.network.is_private() && spec.join_netns.is_none() {
        f |= UnshareFlags::NEWNET;
    }
    f
}

/// Creates the namespaces (the caller has joined its cgroup, so the cgroup namespace is
/// rooted there) and sets them up.
pub(crate) fn enter(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    sys.unshare(flags(spec)).step(|| "creating namespaces".into())?;
    if let Some(ns) = &spec.join_netns {
        let fd =
            rustix::fs::open(ns, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
                .step(|| format!("opening {}", ns.display()))?;
        sys.setns(rustix::fd::AsFd::as_fd(&fd), rustix::thread::LinkNameSpaceType::Network)
            .step(|| "joining the other container's network namespace".into())?;
    }
    sys.sethostname(&spec.hostname).step(|| "setting the hostname".into())?;
    if spec.netns_ready {
        return Ok(());
    }
    if spec.network.is_private() {
        sys.loopback_up().step(|| "bringing lo up".into())?;
    }
    for (k, v) in &spec.sysctls {
        sys.write_sysctl(k, v).step(|| format!("setting sysctl {k}={v}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::spec::{Network, Root, SpecBuilder};
    use crate::syscall::fake::{Call, Recorder};
    use rustix::thread::LinkNameSpaceType;

    fn spec(network: Network) -> Spec {
        let root =
            Root { lowers: vec![], upper: None, volatile_upper: false, mountpoint: "/r".into(), readonly: false };
        SpecBuilder::new("id", "host", root).network(network, vec![]).build()
    }

    #[test]
    fn private_network_gets_lo_and_dockers_sysctls() {
        let sys = Recorder::default();
        enter(&sys, &spec(Network::None)).unwrap();
        let calls = sys.calls();
        let Call::Unshare(f) = &calls[0] else { panic!("{calls:?}") };
        assert!(f.contains(UnshareFlags::NEWNET | UnshareFlags::NEWNS | UnshareFlags::NEWCGROUP));
        assert_eq!(calls[1], Call::Sethostname("host".into()));
        assert_eq!(calls[2], Call::LoopbackUp);
        assert_eq!(calls[3], Call::Sysctl("net.ipv4.ping_group_range".into(), "0 2147483647".into()));
        assert_eq!(calls[4], Call::Sysctl("net.ipv4.ip_unprivileged_port_start".into(), "0".into()));
    }

    #[test]
    fn private_network_made_ahead_is_joined_and_set_up() {
        let sys = Recorder::default();
        let mut s = spec(Network::None);
        s.join_netns = Some("/proc/self/ns/net".into());
        enter(&sys, &s).unwrap();
        let calls = sys.calls();
        let Call::Unshare(f) = &calls[0] else { panic!("{calls:?}") };
        assert!(!f.contains(UnshareFlags::NEWNET), "joined, not made twice");
        assert!(f.contains(UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC | UnshareFlags::NEWCGROUP));
        assert!(calls.iter().any(|c| matches!(c, Call::Setns(LinkNameSpaceType::Network))), "{calls:?}");
        assert!(calls.contains(&Call::LoopbackUp));
        assert_eq!(calls.iter().filter(|c| matches!(c, Call::Sysctl(..))).count(), 2);
        // Made with lo up and the sysctls set: joined as it is.
        let sys = Recorder::default();
        s.netns_ready = true;
        enter(&sys, &s).unwrap();
        let calls = sys.calls();
        assert!(calls.iter().any(|c| matches!(c, Call::Setns(LinkNameSpaceType::Network))), "{calls:?}");
        assert!(!calls.contains(&Call::LoopbackUp) && !calls.iter().any(|c| matches!(c, Call::Sysctl(..))));
    }

    #[test]
    fn host_network_keeps_the_hosts_namespace() {
        let sys = Recorder::default();
        enter(&sys, &spec(Network::Host)).unwrap();
        let calls = sys.calls();
        let Call::Unshare(f) = &calls[0] else { panic!("{calls:?}") };
        assert!(!f.contains(UnshareFlags::NEWNET));
        assert!(!calls.contains(&Call::LoopbackUp));
        assert!(!calls.iter().any(|c| matches!(c, Call::Sysctl(..))));
    }
}
