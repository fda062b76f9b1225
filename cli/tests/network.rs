//! Networks, as root: RUN steps and containers in namespaces of their own on bridges in
//! rbuild's network namespace, outbound access through pasta, nothing in the host's
//! network namespace. Tests reach only loopback and namespaces they make themselves.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsFd;

fn env_with_base() -> Env {
    require_root();
    let env = Env::new();
    env.load_base();
    env
}

/// The host's links, without the ones tests make themselves ([`Outside`]'s).
fn host_links() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .filter(|n: &String| !n.starts_with("rbto"))
        .collect();
    v.sort();
    v
}

/// A namespace of the test's own, reachable from the host over a veth (the host's side
/// is the test's, removed on drop): stands for "the outside world".
struct Outside {
    name: String,
    host_if: String,
    pub addr: Ipv4Addr,
}

impl Outside {
    fn new() -> Outside {
        let n = std::process::id() % 200 + 20;
        let name = format!("rbt-out-{}", std::process::id());
        let host_if = format!("rbto{}", std::process::id() % 100000);
        sh_ok(&format!("ip netns add {name}"));
        let o = Outside { name, host_if, addr: Ipv4Addr::new(10, 213, n as u8, 2) };
        sh_ok(&format!(
            "ip link add {hi} type veth peer name eth0 netns {ns} && ip addr add 10.213.{n}.1/30 dev {hi} && ip link set {hi} up && \
             ip netns exec {ns} sh -c 'ip addr add 10.213.{n}.2/30 dev eth0 && ip link set eth0 up && ip link set lo up && ip route add default via 10.213.{n}.1'",
            hi = o.host_if,
            ns = o.name
        ));
        o
    }

    /// An HTTP server in the namespace that answers its first request with `marker`.
    /// (An HTTP exchange, not a bare TCP one: Debian 12's pasta can lose a reply that
    /// races a client's early half-close, as `nc < /dev/null` does.)
    fn serve_once(&self, marker: &'static str) -> (u16, std::thread::JoinHandle<()>) {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        let addr = self.addr;
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
                .unwrap();
            let l = TcpListener::bind((addr, 0)).unwrap();
            tx.send(l.local_addr().unwrap().port()).unwrap();
            l.set_nonblocking(false).unwrap();
            if let Ok((mut c, _)) = l.accept() {
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&b[..n]),
                    }
                }
                let _ = write!(c, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{marker}", marker.len());
            }
        });
        (rx.recv().unwrap(), h)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = sh(&format!("ip link del {}", self.host_if));
        let _ = sh(&format!("ip netns del {}", self.name));
    }
}

/// Regression: RUN steps shared the host's network namespace (they saw eth0, reached
/// services on the host's 127.0.0.1, and could sniff `lo`).
#[test]
fn run_steps_have_a_network_of_their_own() {
    let env = env_with_base();
    let before = host_links();
    // A service on the host's loopback that no step may reach.
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = local.local_addr().unwrap().port();
    local.set_nonblocking(true).unwrap();
    // pasta maps nothing to the host's loopback: not even its gateway address (the host's
    // default gateway, which pasta copies into rbuild's namespace).
    let gw = sh_ok("ip -4 route show default | awk '{print $3; exit}'").trim().to_string();
    let ctx = env.path("ctx");
    let mut probes = String::new();
    for addr in ["127.0.0.1", "172.17.0.1", gw.as_str()].iter().filter(|a| !a.is_empty()) {
        probes.push_str(&format!("(echo x | nc -w 2 {addr} {port} && echo REACHED {addr}) >> /reach 2>&1; "));
    }
    context(
        &ctx,
        &[("Dockerfile", &format!("FROM {BASE}\nRUN ls /sys/class/net | tr '\\n' ' ' > /links; {probes}true\n"))],
    );
    env.ok(&["build", "-t", "netcheck", ctx.to_str().unwrap()]);
    assert_eq!(env.ok(&["run", "--rm", "netcheck", "cat", "/links"]).trim(), "eth0 lo");
    let reach = env.ok(&["run", "--rm", "netcheck", "cat", "/reach"]);
    assert!(!reach.contains("REACHED"), "a step reached the host's loopback: {reach}");
    assert!(local.accept().is_err(), "the host's loopback service saw a connection");
    assert_eq!(host_links(), before, "rbuild changed the host's network namespace");
}

/// The default network reaches the outside through pasta: here a server in a namespace the
/// test made and routes to from the host, as any address the host can reach.
#[test]
fn outbound_traffic_leaves_through_pasta() {
    let env = env_with_base();
    let outside = Outside::new();
    let before = host_links();
    let (port, server) = outside.serve_once("hello-from-outside");
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nRUN wget -q -O /got http://{}:{port}/\n", outside.addr))]);
    env.ok(&["build", "--no-cache", "-t", "outbound", ctx.to_str().unwrap()]);
    server.join().unwrap();
    assert_eq!(env.ok(&["run", "--rm", "outbound", "cat", "/got"]), "hello-from-outside");
    // The same from a container on the default bridge.
    let (port, server) = outside.serve_once("hello-again");
    let got = env.ok(&["run", "--rm", BASE, "wget", "-q", "-O-", &format!("http://{}:{port}/", outside.addr)]);
    server.join().unwrap();
    assert_eq!(got, "hello-again");
    // --network none reaches nothing.
    let none = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        BASE,
        "sh",
        "-c",
        &format!("nc -w 2 {} 1 < /dev/null", outside.addr),
    ]);
    assert!(!none.status.success());
    assert_eq!(host_links(), before);
}

/// Containers on the default bridge get docker's addresses and reach each other by
/// address; published ports serve from the host's loopback; nothing is left afterwards.
#[test]
fn default_bridge_addresses_ports_and_cleanup() {
    let env = env_with_base();
    let before = host_links();
    let name = unique("srv");
    let id = env.ok(&["run", "-d", "--name", &name, BASE, "sh", "-c", "echo served > /i; httpd -f -p 8080 -h /"]);
    let _rm = RmOnDrop(&env, name.clone());
    let inspected = env.run(&["inspect", "--format", "{{.NetworkSettings.IPAddress}}", &name]);
    let ip = String::from_utf8_lossy(&inspected.stdout).to_string();
    let ip = if !inspected.status.success() || ip.trim().is_empty() {
        // Until inspect's templates land, read it inside.
        env.ok(&["exec", &name, "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1"])
    } else {
        ip
    };
    let ip = ip.trim().to_string();
    assert!(ip.starts_with("172.17.0."), "{ip} ({id})");
    let hosts = env.ok(&["exec", &name, "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t")), "{hosts}");
    let mut fetched = String::new();
    for _ in 0..50 {
        fetched = env.ok(&["run", "--rm", BASE, "sh", "-c", &format!("wget -q -O- http://{ip}:8080/i || true")]);
        if !fetched.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(fetched, "served\n");
    env.ok(&["rm", "-f", &name]);
    assert_eq!(host_links(), before);
    // Its address is free again: the next container gets it.
    let again = env.ok(&["run", "--rm", BASE, "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'"]);
    assert_eq!(again.trim(), format!("{ip}/16"));
}

#[test]
fn published_port_reaches_the_bridge_address() {
    let env = env_with_base();
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let name = unique("web");
    env.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1:{free}:80"),
        BASE,
        "sh",
        "-c",
        "echo port-ok > /i; httpd -f -p 80 -h /",
    ]);
    let _rm = RmOnDrop(&env, name.clone());
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", free)) {
            let _ = s.write_all(b"GET /i HTTP/1.0\r\n\r\n");
            body.clear();
            let _ = s.read_to_string(&mut body);
            if body.contains("port-ok") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(body.contains("port-ok"), "{body}");
}

struct RmOnDrop<'a>(&'a Env, String);
impl Drop for RmOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["rm", "-f", &self.1]);
    }
}
