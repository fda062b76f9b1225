//! The sandbox: one path for build steps, containers and execs.
//!
//! [`spec::SpecBuilder`] says what a sandbox is (docker's defaults unless asked otherwise);
//! the shim starts PID 1, which enters it in this order:
//!
//! 1. [`cgroups`]: join the sandbox's cgroup (devices allow-list, limits);
//! 2. [`namespaces`]: unshare mount, UTS, IPC, cgroup (and network) namespaces, hostname,
//!    `lo`, docker's network sysctls;
//! 3. [`rootfs`] and [`mounts`]: the overlay, /proc, /dev ([`devices`]), /sys, cgroups, the
//!    /etc files ([`etc`]), the user's mounts, masked and read-only paths, pivot_root;
//! 4. [`init`]: working directory, stdio, then [`privileges`] (identity, capabilities
//!    ([`capabilities`]), no_new_privs, seccomp) and exec.
//!
//! Every system call goes through [`crate::syscall::Syscall`], so the order above is unit
//! tested with a recording fake.

pub mod capabilities;
pub mod cgroups;
pub mod devices;
pub mod error;
pub mod etc;
pub mod init;
pub(crate) mod mounts;
pub(crate) mod namespaces;
pub(crate) mod privileges;
pub mod rootfs;
pub mod seccomp;
pub mod spec;

/// docker's default seccomp profile for a sandbox holding `caps`, as a BPF program for
/// this machine (refused off x86_64).
pub(crate) fn seccomp_filter(caps: u64) -> Result<Vec<libc::sock_filter>, seccomp::SeccompError> {
    seccomp::filter(caps)
}
