//! The last steps before exec, shared by PID 1 and `exec`: the identity (groups, gid, uid),
//! the capability sets, no_new_privs and the seccomp filter, in runc's order.
//!
//! - The bounding set is cut to the sandbox's capabilities before the uid changes.
//! - A non-root user gets no permitted or effective capabilities (what docker gives: the
//!   bounding set still limits what setuid binaries and file capabilities can reach).
//! - Without no_new_privs, installing a seccomp filter needs CAP_SYS_ADMIN, so the filter
//!   goes first, while the process still has it (docker's profile allows every call that
//!   follows); with no_new_privs it goes last, right before exec.

use super::seccomp_filter;
use super::spec::{Process, Security};
use crate::error::{Result, Step};
use crate::syscall::Syscall;

/// The highest capability number the kernel may know (CAP_CHECKPOINT_RESTORE is 40).
const LAST_CAP: u32 = 63;

/// Drops to `process`'s identity and `security`'s privileges.
pub(crate) fn drop_privileges(sys: &dyn Syscall, process: &Process, security: &Security) -> Result<()> {
    let program = if security.seccomp {
        Some(seccomp_filter(security.caps).step(|| "compiling the seccomp filter".into())?)
    } else {
        None
    };
    if let (Some(p), false) = (&program, security.no_new_privs) {
        sys.install_seccomp(p).step(|| "installing the seccomp filter".into())?;
    }
    for cap in 0..=LAST_CAP {
        if security.caps & (1 << cap) == 0 {
            sys.drop_bounding(cap).step(|| format!("dropping capability {cap}"))?;
        }
    }
    sys.set_keep_caps(true).step(|| "keeping capabilities".into())?;
    sys.set_groups(&process.groups).step(|| "setting supplementary groups".into())?;
    sys.set_res_gid(process.gid).step(|| format!("setting gid {}", process.gid))?;
    sys.set_res_uid(process.uid).step(|| format!("setting uid {}", process.uid))?;
    let held = if process.uid == 0 { security.caps } else { 0 };
    sys.set_caps(held, held, 0).step(|| "setting capabilities".into())?;
    sys.set_keep_caps(false).step(|| "keeping capabilities".into())?;
    if security.no_new_privs {
        sys.set_no_new_privs().step(|| "setting no_new_privs".into())?;
        if let Some(p) = &program {
            sys.install_seccomp(p).step(|| "installing the seccomp filter".into())?;
        }
    }
    sys.reset_signals().step(|| "resetting signals".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::fake::{Call, Recorder};

    fn process(uid: u32) -> Process {
        Process {
            args: vec!["sh".into()],
            env: vec![],
            cwd: "/".into(),
            uid,
            gid: 100,
            groups: vec![100, 27],
            tty: false,
            stdin: false,
            init: false,
            rlimits: vec![],
        }
    }

    fn position(calls: &[Call], f: impl Fn(&Call) -> bool) -> usize {
        calls.iter().position(f).unwrap_or_else(|| panic!("not found in {calls:#?}"))
    }

    #[test]
    fn docker_default_filter_first_then_identity_then_caps() {
        let sys = Recorder::default();
        drop_privileges(&sys, &process(0), &Security::default()).unwrap();
        let c = sys.calls();
        let seccomp = position(&c, |c| matches!(c, Call::Seccomp(_)));
        let bounding = position(&c, |c| matches!(c, Call::DropBounding(_)));
        let groups = position(&c, |c| *c == Call::SetGroups(vec![100, 27]));
        let gid = position(&c, |c| *c == Call::SetResGid(100));
        let uid = position(&c, |c| *c == Call::SetResUid(0));
        let caps = position(&c, |c| matches!(c, Call::SetCaps { .. }));
        assert!(seccomp < bounding && bounding < groups && groups < gid && gid < uid && uid < caps, "{c:#?}");
        assert!(!c.contains(&Call::NoNewPrivs), "docker does not set no_new_privs by default");
        assert!(c.contains(&Call::SetCaps { effective: 0xa80425fb, permitted: 0xa80425fb, inheritable: 0 }));
        // Only capabilities outside docker's set leave the bounding set.
        assert!(!c.contains(&Call::DropBounding(0)) && c.contains(&Call::DropBounding(21)));
    }

    #[test]
    fn no_new_privs_puts_the_filter_last() {
        let sys = Recorder::default();
        let sec = Security { no_new_privs: true, ..Security::default() };
        drop_privileges(&sys, &process(0), &sec).unwrap();
        let c = sys.calls();
        let nnp = position(&c, |c| *c == Call::NoNewPrivs);
        let seccomp = position(&c, |c| matches!(c, Call::Seccomp(_)));
        let caps = position(&c, |c| matches!(c, Call::SetCaps { .. }));
        assert!(caps < nnp && nnp < seccomp, "{c:#?}");
        assert_eq!(c.iter().filter(|c| matches!(c, Call::Seccomp(_))).count(), 1);
    }

    #[test]
    fn a_user_holds_no_capabilities_and_privileged_no_filter() {
        let sys = Recorder::default();
        drop_privileges(&sys, &process(1000), &Security::default()).unwrap();
        assert!(sys.calls().contains(&Call::SetCaps { effective: 0, permitted: 0, inheritable: 0 }));
        let sys = Recorder::default();
        let sec =
            Security { caps: crate::sandbox::capabilities::ALL, seccomp: false, privileged: true, no_new_privs: false };
        drop_privileges(&sys, &process(0), &sec).unwrap();
        let c = sys.calls();
        assert!(!c.iter().any(|c| matches!(c, Call::Seccomp(_))));
        assert!(!c.iter().any(|c| matches!(c, Call::DropBounding(n) if *n <= 40)));
    }

    #[test]
    fn a_failed_step_stops_the_drop() {
        let sys = Recorder { fail: Some(|c| matches!(c, Call::SetResUid(_))), ..Default::default() };
        let e = drop_privileges(&sys, &process(1000), &Security::default()).unwrap_err();
        assert!(e.to_string().contains("setting uid 1000"), "{e}");
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::SetCaps { .. })));
    }
}
