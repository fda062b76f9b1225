//! Sandbox networking: `lo` in a namespace of the sandbox's own, or the host's namespace;
//! published ports through a userspace proxy ([`ports`]); the netlink requests rbuild's
//! networks are made of ([`netlink`]).

pub mod netlink;
pub mod ports;
