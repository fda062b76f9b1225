//! Published ports (`-p`): a userspace proxy that accepts on the host and connects to the
//! sandbox's address from inside rbuild's network namespace.

use crate::error::{Result, Step};
use crate::sandbox::spec::Port;
use rustix::fd::OwnedFd;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;

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

/// Serves each listener: every connection is answered by a thread that has joined
/// `netns` (rbuild's network namespace) and connects to the sandbox's `addr`.
pub fn start_proxies(listeners: Vec<(TcpListener, u16)>, netns: OwnedFd, addr: std::net::IpAddr) {
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
                    let Ok(server) = TcpStream::connect((addr, ctr_port)) else { return };
                    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { return };
                    let up = thread::spawn(move || pump(client, server));
                    pump(s2, c2);
                    let _ = up.join();
                });
            }
        });
    }
}
