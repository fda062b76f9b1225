//! The files docker bind-mounts over /etc in every sandbox: hosts, hostname and
//! resolv.conf, made by one function for build steps and containers alike. On a bridge
//! network the shim adds the sandbox's own address to hosts once it has one
//! ([`add_endpoints`]), rewriting the bound file in place.

use super::spec::Network;
use crate::error::{Result, Step};
use crate::network::attach::Endpoint;
use std::io::Write;
use std::path::Path;

/// The names under /etc, as written into the sandbox's directory.
pub const FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// docker's /etc/hosts for a container with a network namespace of its own.
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

fn host_file(p: &str) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// The host's resolv.conf as docker gives it to a bridge network: loopback nameservers
/// cannot be reached from there, so they go; when none is left, pasta's DNS forwarder
/// (which asks the host's resolver) stands in.
pub fn bridge_resolv_conf(host: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(host);
    let mut out = String::new();
    let mut servers = 0;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            let loopback = addr.parse::<std::net::IpAddr>().map(|a| a.is_loopback()).unwrap_or(false);
            if loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str(&format!("nameserver {}\n", crate::network::namespace::DNS_FORWARD));
    }
    out.into_bytes()
}

/// The contents of hosts, hostname and resolv.conf for a sandbox called `hostname`.
pub fn contents(network: &Network, hostname: &str) -> [Vec<u8>; 3] {
    let resolv = host_file("/etc/resolv.conf");
    match network {
        // The host's network: the host's names, as docker does.
        Network::Host => [host_file("/etc/hosts"), host_file("/etc/hostname"), resolv],
        Network::None => [HOSTS.as_bytes().to_vec(), format!("{hostname}\n").into_bytes(), resolv],
        Network::Bridge(_) => {
            [HOSTS.as_bytes().to_vec(), format!("{hostname}\n").into_bytes(), bridge_resolv_conf(&resolv)]
        }
    }
}

/// Writes the three files into `dir`.
pub fn write(dir: &Path, network: &Network, hostname: &str) -> Result<()> {
    for (name, data) in FILES.iter().zip(contents(network, hostname)) {
        let p = dir.join(name);
        std::fs::write(&p, data).step(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// Appends the sandbox's addresses to its hosts file (`IP\tHOSTNAME`, as docker writes
/// it), in place: the file is already bind-mounted into the sandbox.
pub fn add_endpoints(hosts: &Path, hostname: &str, endpoints: &[Endpoint]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(hosts).step(|| format!("opening {}", hosts.display()))?;
    let mut text = String::new();
    for ep in endpoints {
        text.push_str(&format!("{}\t{hostname}\n", ep.ip));
    }
    f.write_all(text.as_bytes()).step(|| format!("writing {}", hosts.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_network_files_name_the_sandbox() {
        let [hosts, hostname, _] = contents(&Network::None, "0123456789ab");
        let hosts = String::from_utf8(hosts).unwrap();
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(hosts.contains("ff02::2\tip6-allrouters"));
        assert_eq!(hostname, b"0123456789ab\n");
    }

    #[test]
    fn bridge_resolv_conf_drops_loopback_servers() {
        let r = bridge_resolv_conf(b"search example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n");
        assert_eq!(r, b"search example\nnameserver 10.0.0.2\noptions edns0\n");
        let r = String::from_utf8(bridge_resolv_conf(b"nameserver 127.0.0.53\n")).unwrap();
        assert_eq!(r, "nameserver 169.254.1.53\n");
    }
}
