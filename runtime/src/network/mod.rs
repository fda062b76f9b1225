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
pub mod dns;
pub mod error;
pub mod ipam;
pub mod manage;
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
    /// The DNS server the sandbox asks (its first network's gateway, when that network
    /// resolves names).
    pub nameserver: Option<std::net::Ipv4Addr>,
}

impl Connected {
    /// Gives the addresses and names back (the veths go with the sandbox's namespace).
    pub fn release(self, id: &str) {
        for ep in &self.endpoints {
            dns::withdraw_id(&self.host, id, &ep.network);
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
    let mut c = Connected { host, ns, endpoints: vec![], nameserver: None };
    for (i, r) in requests.iter().enumerate() {
        let def = match config::load(&spec.store_state, &r.network) {
            Ok(d) => d,
            Err(e) => {
                c.release(&spec.id);
                return Err(e);
            }
        };
        let req = AttachRequest {
            def: &def,
            ifname: format!("eth{i}"),
            default_route: i == 0,
            isolated: r.isolated,
            aliases: r.aliases.clone(),
            holder: std::process::id() as i32,
            ip: r.ip,
        };
        let done = attach::attach(&c.host, c.ns.as_fd(), sandbox.as_fd(), &req).and_then(|ep| {
            if def.dns {
                let mut names = vec![];
                if !spec.name.is_empty() {
                    names.push(spec.name.clone());
                }
                names.extend(ep.aliases.iter().cloned());
                names.push(spec.id[..12.min(spec.id.len())].to_string());
                dns::publish_names(&c.host, &spec.id, &ep, &names)?;
                c.host.ensure_dns()?;
                if i == 0 {
                    c.nameserver = Some(def.gateway);
                }
            }
            Ok(ep)
        });
        match done {
            Ok(ep) => c.endpoints.push(ep),
            Err(e) => {
                c.release(&spec.id);
                return Err(e);
            }
        }
    }
    Ok(c)
}
