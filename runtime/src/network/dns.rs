//! Name resolution on user-defined networks, as docker's embedded DNS gives it: every
//! container resolves the others it shares a network with by container name, network
//! alias and short id; other names go to the host's resolvers (through pasta).
//!
//! Records are files (`dns/NETWORK/CONTAINER-ID`: `IP NAME…`), written by the shim when a
//! container joins a network and removed when it leaves, so the server needs no state of
//! its own and survives nothing. The server (`rbuild __dns DIR`) listens on port 53 of
//! rbuild's network namespace (every bridge's gateway), is started on first use, and quits
//! when the namespace goes. It answers A queries for known names (AAAA and others with no
//! records, so clients do not wait), and forwards the rest.

use super::attach::Endpoint;
use super::error::NetworkError;
use super::namespace::Host;
use crate::container::Container;
use crate::error::{Result, RuntimeError, Step};
use rbuild_store::Durability;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const SERVER_ARG: &str = "__dns";

fn record_path(host: &Host, network: &str, id: &str) -> PathBuf {
    host.dns_dir().join(network).join(id)
}

/// The names a container answers to on a network.
pub fn names(c: &Container, ep: &Endpoint) -> Vec<String> {
    let mut n = vec![c.config.name.clone()];
    n.extend(ep.aliases.iter().cloned());
    n.push(c.config.id[..12].to_string());
    n
}

/// Publishes `ep`'s names (the container joined a network with DNS).
pub fn publish_names(host: &Host, id: &str, ep: &Endpoint, names: &[String]) -> Result<()> {
    let p = record_path(host, &ep.network, id);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).step(|| format!("creating {}", d.display()))?;
    }
    let line = format!("{} {}\n", ep.ip, names.join(" "));
    rbuild_store::write_atomic(&p, line.as_bytes(), Durability::Atomic).step(|| format!("writing {}", p.display()))
}

/// [`publish_names`] for a container.
pub fn publish(host: &Host, c: &Container, ep: &Endpoint) -> Result<()> {
    publish_names(host, &c.config.id, ep, &names(c, ep))
}

/// Removes the container's names from `ep`'s network.
pub fn withdraw_id(host: &Host, id: &str, network: &str) {
    let _ = std::fs::remove_file(record_path(host, network, id));
}

pub fn withdraw(host: &Host, c: &Container, ep: &Endpoint) {
    withdraw_id(host, &c.config.id, &ep.network);
}

/// All records: (network, container id, address, names).
fn records(dir: &Path) -> Vec<(String, String, Ipv4Addr, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(nets) = std::fs::read_dir(dir) else { return out };
    for n in nets.flatten() {
        let net = n.file_name().to_string_lossy().to_string();
        let Ok(files) = std::fs::read_dir(n.path()) else { continue };
        for f in files.flatten() {
            let id = f.file_name().to_string_lossy().to_string();
            // A record being written (a temp name starts with a dot; earlier rbuilds'
            // ended in .tmp).
            if id.starts_with('.') || id.ends_with(".tmp") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(f.path()) else { continue };
            let mut w = text.split_whitespace();
            let Some(ip) = w.next().and_then(|i| i.parse().ok()) else { continue };
            out.push((net.clone(), id, ip, w.map(String::from).collect()));
        }
    }
    out
}

/// The address `name` has for a client at `from`: on the networks the client's container
/// is on (found by its address), as docker scopes names.
pub fn resolve(dir: &Path, from: Ipv4Addr, name: &str) -> Option<Ipv4Addr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let all = records(dir);
    let client = all.iter().find(|r| r.2 == from).map(|r| r.1.clone())?;
    let nets: Vec<&String> = all.iter().filter(|r| r.1 == client).map(|r| &r.0).collect();
    all.iter()
        .filter(|r| nets.contains(&&r.0))
        .find(|r| r.3.iter().any(|n| n.to_ascii_lowercase() == name))
        .map(|r| r.2)
}

/// A DNS question: (id, name, type) and where the question section ends.
fn parse_query(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || q[2] & 0x80 != 0 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_string());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

/// The answer to `query` (whose question ends at `end`): one A record, or none.
fn answer(query: &[u8], end: usize, ip: Option<Ipv4Addr>) -> Vec<u8> {
    let mut r = query[..end].to_vec();
    // QR, opcode 0, AA, RD copied, RA; NOERROR.
    r[2] = 0x84 | (query[2] & 0x01);
    r[3] = 0x80;
    r[6..8].copy_from_slice(&(ip.is_some() as u16).to_be_bytes());
    r[8..12].fill(0);
    if let Some(ip) = ip {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        r.extend_from_slice(&600u32.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&ip.octets());
    }
    r
}

/// Answers one datagram: Some(reply) when the name is ours, None to forward it.
pub fn respond(dir: &Path, from: Ipv4Addr, query: &[u8]) -> Option<Vec<u8>> {
    let (name, qtype, end) = parse_query(query)?;
    let ip = resolve(dir, from, &name)?;
    Some(answer(query, end, (qtype == 1).then_some(ip)))
}

/// The upstream resolvers: the host's, as a bridge network sees them.
fn upstreams() -> Vec<SocketAddr> {
    let conf = crate::sandbox::etc::bridge_resolv_conf(&std::fs::read("/etc/resolv.conf").unwrap_or_default());
    String::from_utf8_lossy(&conf)
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

fn forward(sock: &UdpSocket, client: SocketAddr, query: Vec<u8>, upstreams: &[SocketAddr]) {
    for up in upstreams {
        let Ok(u) = UdpSocket::bind("0.0.0.0:0") else { return };
        let _ = u.set_read_timeout(Some(Duration::from_secs(3)));
        if u.send_to(&query, up).is_err() {
            continue;
        }
        let mut buf = [0u8; 4096];
        if let Ok((n, _)) = u.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], client);
            return;
        }
    }
}

/// `rbuild __dns --detach DIR` starts `rbuild __dns --serve DIR` in a session of its own
/// and returns; the server joins the namespace of the runtime directory DIR and serves
/// until the namespace file is gone.
pub fn server_main(args: &[String]) -> i32 {
    let (Some(mode), Some(dir)) = (args.first(), args.get(1).map(PathBuf::from)) else { return 2 };
    if mode == "--detach" {
        use std::os::unix::process::CommandExt;
        let Ok(exe) = std::env::current_exe() else { return 1 };
        let spawned = std::process::Command::new(exe)
            .args([SERVER_ARG, "--serve"])
            .arg(&dir)
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        return i32::from(spawned.is_err());
    }
    match serve(&dir) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn serve(dir: &Path) -> Result<()> {
    let host = Host::at(dir);
    let ns = host.existing().ok_or(NetworkError::NamespaceGone)?;
    rustix::thread::move_into_link_name_space(
        rustix::fd::AsFd::as_fd(&ns),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .step(|| "joining rbuild's network namespace".into())?;
    let sock = UdpSocket::bind("0.0.0.0:53").step(|| "listening on port 53".into())?;
    std::fs::write(host.dns_pid_path(), std::process::id().to_string()).step(|| "writing the DNS pid".into())?;
    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
    let sock = std::sync::Arc::new(sock);
    let records = host.dns_dir();
    let ups = std::sync::Arc::new(upstreams());
    let mut buf = [0u8; 4096];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, client)) => {
                let from = match client.ip() {
                    std::net::IpAddr::V4(a) => a,
                    std::net::IpAddr::V6(_) => continue,
                };
                let q = buf[..n].to_vec();
                match respond(&records, from, &q) {
                    Some(reply) => {
                        let _ = sock.send_to(&reply, client);
                    }
                    None => {
                        let (s, u) = (sock.clone(), ups.clone());
                        std::thread::spawn(move || forward(&s, client, q, &u));
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if host.existing().is_none() {
                    return Ok(());
                }
            }
            Err(e) => return Err(RuntimeError::io("serving DNS", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
        q
    }

    #[test]
    fn names_resolve_on_shared_networks_only() {
        let d = tempfile::tempdir().unwrap();
        let w = |net: &str, id: &str, text: &str| {
            std::fs::create_dir_all(d.path().join(net)).unwrap();
            std::fs::write(d.path().join(net).join(id), text).unwrap();
        };
        w("app", "aaa", "10.1.0.2 web www aaa\n");
        w("app", "bbb", "10.1.0.3 client bbb\n");
        w("other", "ccc", "10.2.0.2 db ccc\n");
        w("other", "bbb", "10.2.0.3 client bbb\n");
        w("lonely", "ddd", "10.3.0.2 alone ddd\n");
        let client = Ipv4Addr::new(10, 1, 0, 3);
        assert_eq!(resolve(d.path(), client, "web"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(resolve(d.path(), client, "WWW."), Some(Ipv4Addr::new(10, 1, 0, 2)));
        // The client is on "other" too (by its id): it sees db there.
        assert_eq!(resolve(d.path(), client, "db"), Some(Ipv4Addr::new(10, 2, 0, 2)));
        assert_eq!(resolve(d.path(), client, "alone"), None, "not a shared network");
        assert_eq!(resolve(d.path(), Ipv4Addr::new(10, 9, 9, 9), "web"), None, "an unknown client");
    }

    #[test]
    fn answers_are_well_formed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("n")).unwrap();
        std::fs::write(d.path().join("n/a"), "10.1.0.2 web a\n").unwrap();
        std::fs::write(d.path().join("n/b"), "10.1.0.3 me b\n").unwrap();
        let from = Ipv4Addr::new(10, 1, 0, 3);
        let q = query("web", 1);
        let r = respond(d.path(), from, &q).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34], "same id");
        assert_eq!(r[2] & 0x80, 0x80, "a response");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 1, 0, 2]);
        let aaaa = respond(d.path(), from, &query("web", 28)).unwrap();
        assert_eq!(u16::from_be_bytes([aaaa[6], aaaa[7]]), 0, "no AAAA record, no wait");
        assert!(respond(d.path(), from, &query("example.org", 1)).is_none(), "forwarded");
        assert!(respond(d.path(), from, &[1, 2, 3]).is_none(), "garbage is not answered");
        let mut bad = query("web", 1);
        bad[12] = 200;
        assert!(respond(d.path(), from, &bad).is_none());
    }
}
