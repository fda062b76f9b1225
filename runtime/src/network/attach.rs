//! Attaching a sandbox's network namespace to a network: an address lease, a veth pair
//! (one end on the network's bridge in rbuild's namespace, the other in the sandbox as
//! `eth0`, `eth1`, …), the address and the default route inside.

use super::config::NetworkDef;
use super::ipam::{self, Lease};
use super::namespace::Host;
use super::netlink::{in_netns, Netlink};
use crate::error::{Result, Step};
use rustix::fd::BorrowedFd;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A sandbox's place on a network, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub network: String,
    pub network_id: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// The interface inside the sandbox.
    pub ifname: String,
    /// The veth end on the bridge, in rbuild's namespace.
    pub host_ifname: String,
    pub aliases: Vec<String>,
    /// The lease file (released when the sandbox ends).
    pub lease: std::path::PathBuf,
}

/// docker's MAC for an address: 02:42 and the address's four bytes.
pub fn mac_of(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// What to attach.
#[derive(Debug, Clone)]
pub struct AttachRequest<'a> {
    pub def: &'a NetworkDef,
    /// `eth0` for the first network.
    pub ifname: String,
    /// The default route goes through this network's gateway.
    pub default_route: bool,
    /// The bridge port reaches only the gateway, not other ports (build steps).
    pub isolated: bool,
    pub aliases: Vec<String>,
    /// The process the lease is held for (the sandbox's shim).
    pub holder: i32,
    pub ip: Option<Ipv4Addr>,
}

/// Attaches the namespace `sandbox` (an open `/proc/PID/ns/net`) to `req.def`.
pub fn attach(host: &Host, ns: BorrowedFd<'_>, sandbox: BorrowedFd<'_>, req: &AttachRequest<'_>) -> Result<Endpoint> {
    let def = req.def;
    // One netlink socket on each side, made from this thread (no thread per namespace
    // switch): rbuild's namespace for the bridge and the veth, the sandbox's for eth0.
    let outside = Netlink::open_in(ns).step(|| format!("attaching to network {}", def.name))?;
    let bridge = host.ensure_bridge(&outside, ns, def)?;
    let lease: Lease = ipam::allocate(&host.leases(), def, req.holder, req.ip)?;
    let ip = lease.ip;
    let mac = mac_of(ip);
    let host_ifname = format!("rbv{}", &crate::sandbox::rootfs::rand_hex()[..8]);
    let ifname = req.ifname.clone();
    (|| -> std::io::Result<()> {
        // The port is on the bridge and up from the creating request.
        outside.add_veth(&host_ifname, &ifname, sandbox, mac, 1500, Some(bridge))?;
        if req.isolated {
            outside.isolate(outside.index(&host_ifname)?)?;
        }
        Ok(())
    })()
    .step(|| format!("attaching to network {}", def.name))?;
    let (gateway, prefix) = (def.gateway, def.subnet.prefix);
    (|| -> std::io::Result<()> {
        let inside = Netlink::open_in(sandbox)?;
        let e = inside.index(&ifname)?;
        inside.add_address(e, ip, prefix)?;
        inside.set_up(e)?;
        if req.default_route {
            inside.add_default_route(gateway)?;
        }
        Ok(())
    })()
    .step(|| format!("configuring {ifname} on network {}", def.name))?;
    Ok(Endpoint {
        network: def.name.clone(),
        network_id: def.id.clone(),
        ip,
        prefix,
        gateway,
        mac: mac_string(mac),
        ifname,
        host_ifname,
        aliases: req.aliases.clone(),
        lease: lease.keep(),
    })
}

/// Takes a sandbox off a network: its veth goes (with the peer inside), its lease is
/// released.
pub fn detach(host: &Host, ep: &Endpoint) -> Result<()> {
    if let Some(ns) = host.existing() {
        let name = ep.host_ifname.clone();
        let _ = in_netns(rustix::fd::AsFd::as_fd(&ns), || {
            let nl = Netlink::open()?;
            match nl.index(&name) {
                Ok(i) => nl.delete(i),
                Err(_) => Ok(()),
            }
        });
    }
    ipam::release_path(&ep.lease);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_macs() {
        assert_eq!(mac_string(mac_of(Ipv4Addr::new(172, 17, 0, 2))), "02:42:ac:11:00:02");
    }
}
