//! The files docker bind-mounts over /etc in every sandbox: hosts, hostname and
//! resolv.conf, made by one function for build steps and containers alike.

use super::spec::Network;
use crate::error::{Result, Step};
use std::path::Path;

/// The names under /etc, as written into the sandbox's directory.
pub const FILES: [&str; 3] = ["hosts", "hostname", "resolv.conf"];

/// docker's /etc/hosts for a container with a network namespace of its own.
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

fn host_file(p: &str) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// The contents of hosts, hostname and resolv.conf for a sandbox called `hostname`.
pub fn contents(network: &Network, hostname: &str) -> [Vec<u8>; 3] {
    let resolv = host_file("/etc/resolv.conf");
    match network {
        // The host's network: the host's names, as docker does.
        Network::Host => [host_file("/etc/hosts"), host_file("/etc/hostname"), resolv],
        Network::None => [HOSTS.as_bytes().to_vec(), format!("{hostname}\n").into_bytes(), resolv],
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
}
