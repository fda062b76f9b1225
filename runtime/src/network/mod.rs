//! Sandbox networking, without touching the host's network namespace.
//!
//! - `none`: a namespace of the sandbox's own with only `lo`;
//! - `host`: the host's namespace;
//! - bridge networks ([`config`]): bridges in rbuild's own network namespace
//!   ([`namespace`]), which reaches the outside through pasta; each sandbox gets a veth
//!   on its networks' bridges ([`attach`]) and an address lease ([`ipam`]);
//! - published ports ([`ports`]): a userspace proxy on the host that connects to the
//!   sandbox's address from inside rbuild's namespace;
//! - the netlink requests all of this is made of ([`netlink`]).

pub mod attach;
pub mod config;
pub mod ipam;
pub mod namespace;
pub mod netlink;
pub mod ports;

use crate::error::{Result, Step};
use crate::sandbox::spec::{NetRequest, Spec};
use attach::{AttachRequest, Endpoint};
use namespace::Host;
use rustix::fd::{AsFd, OwnedFd};

/// A sandbox on its networks, as the shim holds it while the sandbox runs.
pub struct Connected {
    pub host: Host,
    /// rbuild's network namespace.
    pub ns: OwnedFd,
    pub endpoints: Vec<Endpoint>,
}

impl Connected {
    /// Gives the addresses back (the veths go with the sandbox's namespace).
    pub fn release(self) {
        for ep in &self.endpoints {
            ipam::release_path(&ep.lease);
        }
    }
}

/// Attaches the namespace of process `pid` to `requests` (`eth0` on the first, which has
/// the default route), holding the leases for this process.
pub fn connect(spec: &Spec, requests: &[NetRequest], pid: i32) -> Result<Connected> {
    let host = Host::for_store(&spec.store_state);
    let ns = host.ensure()?;
    let sandbox = rustix::fs::open(
        format!("/proc/{pid}/ns/net").as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(|| "opening the sandbox's network namespace".into())?;
    let mut c = Connected { host, ns, endpoints: vec![] };
    for (i, r) in requests.iter().enumerate() {
        let def = config::load(&spec.store_state, &r.network)?;
        let req = AttachRequest {
            def: &def,
            ifname: format!("eth{i}"),
            default_route: i == 0,
            isolated: r.isolated,
            aliases: r.aliases.clone(),
            holder: std::process::id() as i32,
            ip: r.ip,
        };
        match attach::attach(&c.host, c.ns.as_fd(), sandbox.as_fd(), &req) {
            Ok(ep) => c.endpoints.push(ep),
            Err(e) => {
                c.release();
                return Err(e);
            }
        }
    }
    Ok(c)
}
