//! Published ports (`-p`, `-P`): a userspace proxy in the shim that listens on the host
//! (TCP and UDP, IPv4 and IPv6) and reaches the sandbox's address from inside rbuild's
//! network namespace, so nothing of the host's firewall or routing changes.

use super::error::NetworkError;
use super::netlink::in_netns;
use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::spec::{Port, Proto};
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{self as n, AddressFamily, SocketType};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a UDP client's session lives without traffic.
const UDP_IDLE: Duration = Duration::from_secs(60);

/// A bound host socket (`IPV6_V6ONLY` on IPv6, so `0.0.0.0:P` and `[::]:P` coexist).
fn bind(ip: IpAddr, port: u16, proto: Proto) -> std::io::Result<OwnedFd> {
    let family = if ip.is_ipv6() { AddressFamily::INET6 } else { AddressFamily::INET };
    let kind = if proto == Proto::Tcp { SocketType::STREAM } else { SocketType::DGRAM };
    let fd = n::socket_with(family, kind, n::SocketFlags::CLOEXEC, None)?;
    if ip.is_ipv6() {
        n::sockopt::set_ipv6_v6only(&fd, true)?;
    }
    if proto == Proto::Tcp {
        n::sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    n::bind(&fd, &SocketAddr::new(ip, port))?;
    if proto == Proto::Tcp {
        n::listen(&fd, 128)?;
    }
    Ok(fd)
}

fn ip_of(p: &Port) -> Result<IpAddr> {
    p.host_ip.parse().map_err(|_| NetworkError::HostAddress(p.host_ip.clone()).into())
}

fn addr_text(p: &Port) -> String {
    if p.host_ip.contains(':') {
        format!("[{}]:{}", p.host_ip, p.host_port)
    } else {
        format!("{}:{}", p.host_ip, p.host_port)
    }
}

fn has_ipv6() -> bool {
    bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0, Proto::Tcp).is_ok()
}

/// The ports a container publishes, settled when it is created (as docker refuses a busy
/// port before anything exists): an empty host address becomes `0.0.0.0` and (when the
/// host has IPv6) `::`, a host port 0 a free one, and every port is checked free now.
pub fn reserve(wanted: &[Port]) -> Result<Vec<Port>> {
    let v6 = wanted.iter().any(|p| p.host_ip.is_empty()) && has_ipv6();
    let mut out = Vec::new();
    let mut held = Vec::new();
    for w in wanted {
        let mut p = w.clone();
        if p.host_ip.is_empty() {
            p.host_ip = "0.0.0.0".into();
        }
        let fd = bind(ip_of(&p)?, p.host_port, p.proto).map_err(|e| busy(&p, e))?;
        if p.host_port == 0 {
            // getsockname, whatever the socket type.
            let l = TcpListener::from(fd.try_clone().step(|| "reading a chosen port".into())?);
            p.host_port = l.local_addr().step(|| "reading a chosen port".into())?.port();
        }
        held.push(fd);
        if w.host_ip.is_empty() && v6 {
            let p6 = Port { host_ip: "::".into(), ..p.clone() };
            held.push(bind(ip_of(&p6)?, p6.host_port, p6.proto).map_err(|e| busy(&p6, e))?);
            out.push(p);
            out.push(p6);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn busy(p: &Port, e: std::io::Error) -> RuntimeError {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        NetworkError::PortAllocated(addr_text(p)).into()
    } else {
        RuntimeError::io(format!("publishing port {}", addr_text(p)), e)
    }
}

/// A host listener and the container port behind it.
pub enum Listener {
    Tcp(TcpListener, u16),
    Udp(UdpSocket, u16),
}

/// Host-side listeners, bound before the container starts.
pub fn bind_ports(ports: &[Port]) -> Result<Vec<Listener>> {
    ports
        .iter()
        .map(|p| {
            let fd = bind(ip_of(p)?, p.host_port, p.proto).map_err(|e| busy(p, e))?;
            Ok(match p.proto {
                Proto::Tcp => Listener::Tcp(TcpListener::from(fd), p.container_port),
                Proto::Udp => Listener::Udp(UdpSocket::from(fd), p.container_port),
            })
        })
        .collect()
}

/// Serves each listener: every TCP connection (every UDP client) is answered from inside
/// `netns` (rbuild's network namespace), to the sandbox's `addr`.
pub fn start_proxies(listeners: Vec<Listener>, netns: OwnedFd, addr: IpAddr) {
    let netns = Arc::new(netns);
    for l in listeners {
        let netns = netns.clone();
        match l {
            Listener::Tcp(listener, port) => {
                thread::spawn(move || {
                    for client in listener.incoming() {
                        let Ok(client) = client else { continue };
                        let netns = netns.clone();
                        thread::spawn(move || {
                            let Ok(server) = in_netns(netns.as_fd(), move || TcpStream::connect((addr, port))) else {
                                return;
                            };
                            crate::relay::relay(client, server);
                        });
                    }
                });
            }
            Listener::Udp(sock, port) => {
                thread::spawn(move || udp_proxy(Arc::new(sock), netns, SocketAddr::new(addr, port)));
            }
        }
    }
}

/// One socket inside the namespace per client: datagrams go in through it, and what the
/// sandbox answers on it goes back to that client, until the session is idle.
fn udp_proxy(host: Arc<UdpSocket>, netns: Arc<OwnedFd>, target: SocketAddr) {
    let sessions: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let Ok((len, client)) = host.recv_from(&mut buf) else { return };
        let existing = sessions.lock().ok().and_then(|s| s.get(&client).cloned());
        let inner = match existing {
            Some(s) => s,
            None => {
                let made = in_netns(netns.as_fd(), move || {
                    let s = UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
                    s.connect(target)?;
                    Ok(s)
                });
                let Ok(s) = made else { continue };
                let s = Arc::new(s);
                let _ = s.set_read_timeout(Some(UDP_IDLE));
                if let Ok(mut m) = sessions.lock() {
                    m.insert(client, s.clone());
                }
                let (back, host, sessions) = (s.clone(), host.clone(), sessions.clone());
                thread::spawn(move || {
                    let mut b = vec![0u8; 64 * 1024];
                    while let Ok(k) = back.recv(&mut b) {
                        let _ = host.send_to(&b[..k], client);
                    }
                    if let Ok(mut m) = sessions.lock() {
                        m.remove(&client);
                    }
                });
                s
            }
        };
        let _ = inner.send(&buf[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_picks_free_ports_and_refuses_busy_ones() {
        let want = [Port { host_ip: "127.0.0.1".into(), host_port: 0, container_port: 80, proto: Proto::Tcp }];
        let got = reserve(&want).unwrap();
        assert_ne!(got[0].host_port, 0);
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let want = [Port { host_ip: "127.0.0.1".into(), host_port: port, container_port: 80, proto: Proto::Tcp }];
        let e = reserve(&want).unwrap_err().to_string();
        assert!(e.contains("port is already allocated"), "{e}");
        // The same number over UDP is another port.
        let udp = Port { proto: Proto::Udp, ..want[0].clone() };
        assert!(reserve(&[udp]).is_ok());
        let all =
            reserve(&[Port { host_ip: String::new(), host_port: 0, container_port: 80, proto: Proto::Tcp }]).unwrap();
        assert_eq!(all[0].host_ip, "0.0.0.0");
        if all.len() == 2 {
            assert_eq!((all[1].host_ip.as_str(), all[1].host_port), ("::", all[0].host_port));
        }
    }
}
