//! rbuild's container runtime: the sandbox every RUN step and every `rbuild run` uses.
//!
//! - [`spec`]: what the shim needs to start a process;
//! - [`shim`]: the process that creates PID 1, forwards signals, records state;
//! - [`process`], [`rootfs`], [`net`], [`cgroup`], [`caps`], [`seccomp`]: the isolation;
//! - [`container`], [`exec`], [`logs`], [`fsops`], [`volume`]: containers and their verbs;
//! - [`step`]: the builder's entry point.

pub mod caps;
pub mod cgroup;
pub mod container;
pub mod error;
pub mod exec;
pub mod fsops;
pub mod logs;
pub mod net;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
pub mod signal;
pub mod spec;
pub mod state;
pub mod step;
#[allow(unsafe_code)]
pub mod sys;
pub mod user;
pub mod volume;

pub use container::DEFAULT_PATH;
pub use error::{Result, RuntimeError};
