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

/// What a run adds to the files: `--add-host`, `--link`, `--dns`, `--dns-search`.
#[derive(Debug, Clone, Default)]
pub struct EtcOptions {
    /// (name, address) lines of /etc/hosts.
    pub extra_hosts: Vec<(String, String)>,
    /// Linked containers: (address, alias, short id, name).
    pub links: Vec<(String, String, String, String)>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
}

/// resolv.conf with the run's `--dns` servers and `--dns-search` domains in place of the
/// host's, as docker makes it.
fn with_dns(resolv: Vec<u8>, o: &EtcOptions) -> Vec<u8> {
    if o.dns.is_empty() && o.dns_search.is_empty() {
        return resolv;
    }
    let text = String::from_utf8_lossy(&resolv);
    let mut out = String::new();
    if !o.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", o.dns_search.join(" ")));
    }
    for l in text.lines() {
        let drop =
            (l.starts_with("nameserver") && !o.dns.is_empty()) || (l.starts_with("search") && !o.dns_search.is_empty());
        if !drop {
            out.push_str(l);
            out.push('\n');
        }
    }
    for d in &o.dns {
        out.push_str(&format!("nameserver {d}\n"));
    }
    out.into_bytes()
}

/// The contents of hosts, hostname and resolv.conf for a sandbox called `hostname`.
pub fn contents(network: &Network, hostname: &str, o: &EtcOptions) -> [Vec<u8>; 3] {
    let resolv = host_file("/etc/resolv.conf");
    let [mut hosts, name, resolv] = match network {
        // The host's network: the host's names, as docker does.
        Network::Host => [host_file("/etc/hosts"), host_file("/etc/hostname"), resolv],
        // Another container's: its files replace these when it starts.
        Network::None | Network::Container(_) => {
            [HOSTS.as_bytes().to_vec(), format!("{hostname}\n").into_bytes(), resolv]
        }
        Network::Bridge(_) => {
            [HOSTS.as_bytes().to_vec(), format!("{hostname}\n").into_bytes(), bridge_resolv_conf(&resolv)]
        }
    };
    for (ip, alias, id, name) in &o.links {
        let mut names = vec![alias.as_str(), id.as_str()];
        if name != alias {
            names.push(name);
        }
        hosts.extend_from_slice(format!("{ip}\t{}\n", names.join(" ")).as_bytes());
    }
    for (name, ip) in &o.extra_hosts {
        hosts.extend_from_slice(format!("{ip}\t{name}\n").as_bytes());
    }
    [hosts, name, with_dns(resolv, o)]
}

/// Writes the three files into `dir`.
///
/// A file already there (a build's step directory, kept from step to step) is written
/// over in place rather than truncated: on ext4 a file truncated to zero gets its blocks
/// allocated when closed (auto_da_alloc), and freeing them again on the next step cost a
/// synchronous discard each on a filesystem mounted with `discard` (3 a step, ~1 ms).
pub fn write(dir: &Path, network: &Network, hostname: &str, o: &EtcOptions) -> Result<()> {
    use std::os::unix::fs::FileExt;
    for (name, data) in FILES.iter().zip(contents(network, hostname, o)) {
        let p = dir.join(name);
        let step = || format!("writing {}", p.display());
        let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&p).step(step)?;
        f.write_all_at(&data, 0).step(step)?;
        if f.metadata().step(step)?.len() != data.len() as u64 {
            f.set_len(data.len() as u64).step(step)?;
        }
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

/// Points resolv.conf at `server` (rbuild's DNS on a user-defined network), keeping the
/// host's search domains, as docker's embedded DNS does (`options ndots:0`). In place:
/// the file is already bind-mounted into the sandbox.
pub fn use_nameserver(resolv: &Path, server: std::net::Ipv4Addr) -> Result<()> {
    let host = String::from_utf8_lossy(&host_file("/etc/resolv.conf")).to_string();
    let mut text = format!("nameserver {server}\n");
    for l in host.lines().filter(|l| l.starts_with("search ")) {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str("options ndots:0\n");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(resolv)
        .step(|| format!("opening {}", resolv.display()))?;
    f.write_all(text.as_bytes()).step(|| format!("writing {}", resolv.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_network_files_name_the_sandbox() {
        let [hosts, hostname, _] = contents(&Network::None, "0123456789ab", &EtcOptions::default());
        let hosts = String::from_utf8(hosts).unwrap();
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(hosts.contains("ff02::2\tip6-allrouters"));
        assert_eq!(hostname, b"0123456789ab\n");
    }

    #[test]
    fn links_extra_hosts_and_dns_options() {
        let o = EtcOptions {
            extra_hosts: vec![("db.local".into(), "10.0.0.9".into())],
            links: vec![("172.17.0.3".into(), "db".into(), "0123456789ab".into(), "postgres".into())],
            dns: vec!["10.1.1.1".into()],
            dns_search: vec!["corp.example".into()],
        };
        let [hosts, _, resolv] = contents(&Network::None, "h", &o);
        let hosts = String::from_utf8(hosts).unwrap();
        assert!(hosts.ends_with("172.17.0.3\tdb 0123456789ab postgres\n10.0.0.9\tdb.local\n"), "{hosts}");
        let resolv = String::from_utf8(resolv).unwrap();
        assert!(resolv.starts_with("search corp.example\n") && resolv.ends_with("nameserver 10.1.1.1\n"), "{resolv}");
        assert_eq!(resolv.matches("nameserver").count(), 1);
    }

    #[test]
    fn rewritten_files_hold_exactly_the_new_contents() {
        let t = tempfile::tempdir().unwrap();
        let long =
            EtcOptions { extra_hosts: vec![("a-long-name.example".into(), "10.0.0.9".into())], ..Default::default() };
        write(t.path(), &Network::None, "0123456789ab", &long).unwrap();
        // A step may have appended to its /etc/hosts too.
        std::fs::OpenOptions::new().append(true).open(t.path().join("hosts")).unwrap().write_all(b"junk\n").unwrap();
        write(t.path(), &Network::None, "ba9876543210", &EtcOptions::default()).unwrap();
        let want = contents(&Network::None, "ba9876543210", &EtcOptions::default());
        for (f, w) in FILES.iter().zip(want) {
            assert_eq!(std::fs::read(t.path().join(f)).unwrap(), w, "{f}");
        }
    }

    #[test]
    fn bridge_resolv_conf_drops_loopback_servers() {
        let r = bridge_resolv_conf(b"search example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n");
        assert_eq!(r, b"search example\nnameserver 10.0.0.2\noptions edns0\n");
        let r = String::from_utf8(bridge_resolv_conf(b"nameserver 127.0.0.53\n")).unwrap();
        assert_eq!(r, "nameserver 169.254.1.53\n");
    }
}
