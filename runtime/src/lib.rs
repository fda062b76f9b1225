//! rbuild's container runtime: the sandbox every RUN step, every `rbuild run` and every
//! `exec` uses, and the container lifecycle, without a daemon.
//!
//! - [`sandbox`]: one path for all of them — [`SpecBuilder`] makes the spec (docker's
//!   defaults), PID 1 enters cgroup, namespaces, root filesystem, privileges;
//! - [`shim`]: the process that creates PID 1, forwards signals, logs, serves `attach`,
//!   runs health checks, records state and carries out the restart policy;
//! - [`container`]: containers on disk, one file per verb (create, start, attach, kill,
//!   stop, remove, pause, exec, update, stats, state) and the restart policy;
//! - [`step`]: the builder's entry point (a RUN step);
//! - [`network`]: `lo`, published ports, netlink; [`relay`]: the byte relay between two
//!   sockets that the port proxy and the builder's ssh agent proxy share;
//! - [`fsops`], [`logs`], [`volume`], [`user`], [`signal`]: what the verbs need.
//!
//! Every system call of the sandbox goes through the crate-private `syscall::Syscall`
//! trait, the only place with `unsafe`.

pub mod container;
pub mod error;
pub mod fsops;
pub mod logs;
pub mod network;
pub mod relay;
pub mod sandbox;
pub mod shim;
pub mod signal;
pub mod step;
#[allow(unsafe_code)]
mod syscall;
pub mod user;
pub mod volume;

pub use container::state;
// The short path fsops and volume use.
pub use error::{Result, RuntimeError};
pub(crate) use sandbox::rootfs;
pub use sandbox::rootfs::{with_mounted, with_views, View};
pub use sandbox::spec::{
    Command, Device, ExecProcess, Extras, Limits, Mount, MountKind, NetRequest, Network, Port, Proto, Rlimit,
    SecurityOptions, Spec, SpecBuilder, DEFAULT_PATH,
};

/// Is `name` a resource `--ulimit` knows (`nofile`, `nproc`, `core`, …)?
pub fn ulimit_known(name: &str) -> bool {
    syscall::linux::rlimit_resource(name).is_some()
}
