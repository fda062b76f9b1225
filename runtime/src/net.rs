//! Networking without bridges: a new namespace with only `lo` (brought up over netlink),
//! or the host's; and `-p` published ports through a userspace proxy that accepts on the
//! host and connects from inside the container's namespace.

use crate::error::{Result, RuntimeError, Step};
use crate::spec::Port;
use rustix::fd::OwnedFd;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;

/// Brings the loopback interface (index 1 in a new namespace) up with an RTM_NEWLINK
/// request, and waits for the kernel's acknowledgement.
pub fn loopback_up() -> Result<()> {
    use rustix::net::{self as n, AddressFamily, SocketType};
    let fd = n::socket(AddressFamily::NETLINK, SocketType::RAW, None).step(|| "opening a netlink socket".into())?;
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const IFF_UP: u32 = 1;
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len: header (16) + ifinfomsg (16)
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid
    msg.push(0); // ifi_family AF_UNSPEC
    msg.push(0);
    msg.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    msg.extend_from_slice(&1i32.to_ne_bytes()); // ifi_index: lo
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
    n::send(&fd, &msg, n::SendFlags::empty()).step(|| "sending the netlink request".into())?;
    let mut buf = [0u8; 512];
    let k = n::recv(&fd, &mut buf[..], n::RecvFlags::empty()).step(|| "reading the netlink answer".into())?.0;
    // NLMSG_ERROR (2) carries the errno (0 is the acknowledgement).
    if k >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == 2 {
        let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if err != 0 {
            return Err(RuntimeError::io("bringing lo up", std::io::Error::from_raw_os_error(-err)));
        }
    }
    Ok(())
}

/// Parses `[IP:]HOST:CONTAINER[/tcp]`.
pub fn parse_publish(s: &str) -> Result<Port> {
    let bad = || RuntimeError::Invalid(format!("invalid publish spec {s:?} (expected [IP:]HOST_PORT:CONTAINER_PORT)"));
    let spec = s.strip_suffix("/tcp").unwrap_or(s);
    if spec.contains('/') {
        return Err(RuntimeError::Invalid(format!("{s}: only tcp ports can be published")));
    }
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c, h] => ("0.0.0.0", *h, *c),
        [c, h, ip] => (*ip, *h, *c),
        _ => return Err(bad()),
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad);
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>().map_err(|_| bad())?;
    Ok(Port { host_ip: ip.to_string(), host_port: port(host)?, container_port: port(ctr)? })
}

/// Host-side listeners, bound before the container starts so a busy port fails early.
pub fn bind_ports(ports: &[Port]) -> Result<Vec<(TcpListener, u16)>> {
    ports
        .iter()
        .map(|p| {
            let addr = if p.host_ip.contains(':') {
                format!("[{}]:{}", p.host_ip, p.host_port)
            } else {
                format!("{}:{}", p.host_ip, p.host_port)
            };
            TcpListener::bind(&addr).step(|| format!("publishing port {addr}")).map(|l| (l, p.container_port))
        })
        .collect()
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Serves each listener: every connection is answered by a thread that has joined the
/// container's network namespace and connects to the container port on 127.0.0.1.
pub fn start_proxies(listeners: Vec<(TcpListener, u16)>, netns: OwnedFd) {
    let netns = std::sync::Arc::new(netns);
    for (listener, ctr_port) in listeners {
        let netns = netns.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let netns = netns.clone();
                thread::spawn(move || {
                    if rustix::thread::move_into_link_name_space(
                        netns.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .is_err()
                    {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(("127.0.0.1", ctr_port)) else { return };
                    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { return };
                    let up = thread::spawn(move || pump(client, server));
                    pump(s2, c2);
                    let _ = up.join();
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_specs() {
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            Port { host_ip: "0.0.0.0".into(), host_port: 8080, container_port: 80 }
        );
        assert_eq!(parse_publish("127.0.0.1:8080:80/tcp").unwrap().host_ip, "127.0.0.1");
        assert!(parse_publish("80").is_err());
        assert!(parse_publish("a:80").is_err());
        assert!(parse_publish("1:2/udp").is_err());
    }
}
