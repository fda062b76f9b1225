//! Networks, as root: RUN steps and containers in namespaces of their own on bridges in
//! rbuild's network namespace, outbound access through pasta, nothing in the host's
//! network namespace. Tests reach only loopback and namespaces they make themselves.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsFd;

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
    let env = Env::with_base();
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
    let env = Env::with_base();
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
    let env = Env::with_base();
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
    let env = Env::with_base();
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

/// Waits until `f` gives a non-empty answer (a server starting in a detached container).
fn eventually(f: impl Fn() -> String) -> String {
    for _ in 0..50 {
        let v = f();
        if !v.trim().is_empty() {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    f()
}

fn fetch(env: &Env, net: &str, url: &str) -> String {
    let o =
        env.run(&["run", "--rm", "--network", net, BASE, "sh", "-c", &format!("timeout 3 wget -q -O- {url} || true")]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The notes' tomcat example with busybox httpd: a user network, two containers, one
/// fetching from the other by name and by alias; `network rm` refused while in use;
/// nothing in the host's namespace; everything gone afterwards.
#[test]
fn containers_on_a_user_network_find_each_other_by_name() {
    let env = Env::with_base();
    let before = host_links();
    let net = unique("net");
    env.ok(&["network", "create", "-d", "bridge", &net]);
    let web = unique("web");
    env.ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        &net,
        "--network-alias",
        "tomcat",
        BASE,
        "sh",
        "-c",
        "echo by-name > /i; httpd -f -p 8080 -h /",
    ]);
    let _rm = RmOnDrop(&env, web.clone());
    assert_eq!(eventually(|| fetch(&env, &net, &format!("http://{web}:8080/i"))), "by-name\n");
    assert_eq!(fetch(&env, &net, "http://tomcat:8080/i"), "by-name\n");
    let short = env.ok(&["inspect", "--format", "{{.Id}}", &web]).trim()[..12].to_string();
    assert_eq!(fetch(&env, &net, &format!("http://{short}:8080/i")), "by-name\n");
    // Not from the default bridge: names are scoped to the network.
    assert_eq!(fetch(&env, "bridge", &format!("http://{web}:8080/i")), "");
    let ls = env.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(
        ls.contains(&format!("{net} bridge"))
            && ls.contains("bridge bridge")
            && ls.contains("host host")
            && ls.contains("none null"),
        "{ls}"
    );
    let ip =
        env.ok(&["network", "inspect", "--format", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", &net]);
    assert!(ip.starts_with(&format!("{web} 172.")), "{ip}");
    let refused = env.run(&["network", "rm", &net]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("active endpoints"));
    assert_eq!(host_links(), before, "nothing new in the host's network namespace");
    env.ok(&["rm", "-f", &web]);
    env.ok(&["network", "rm", &net]);
    assert!(!env
        .ok(&["network", "ls", "-q", "--filter", &format!("name={net}")])
        .contains(|c: char| c.is_alphanumeric()));
    assert_eq!(host_links(), before);
}

/// `network connect`/`disconnect` on a running container take effect at once.
#[test]
fn connect_and_disconnect_a_running_container() {
    let env = Env::with_base();
    let net = unique("cn");
    env.ok(&["network", "create", "--subnet", "10.77.0.0/24", &net]);
    let srv = unique("srv");
    env.ok(&[
        "run",
        "-d",
        "--name",
        &srv,
        "--network",
        &net,
        BASE,
        "sh",
        "-c",
        "echo joined > /i; httpd -f -p 80 -h /",
    ]);
    let _rm1 = RmOnDrop(&env, srv.clone());
    let cli = unique("cli");
    env.ok(&["run", "-d", "--name", &cli, BASE, "sleep", "60"]);
    let _rm2 = RmOnDrop(&env, cli.clone());
    let get = || {
        let o = env.run(&["exec", &cli, "sh", "-c", &format!("timeout 2 wget -q -O- http://{srv}/i || true")]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(get(), "");
    env.ok(&["network", "connect", "--alias", "buddy", &net, &cli]);
    assert_eq!(
        env.ok(&["exec", &cli, "ls", "/sys/class/net"]).split_whitespace().collect::<Vec<_>>(),
        ["eth0", "eth1", "lo"]
    );
    let ip = env.ok(&[
        "inspect",
        "--format",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &cli,
    ]);
    assert!(ip.trim().starts_with("10.77.0."), "{ip}");
    // Name resolution goes through the first network's DNS: the default bridge has none,
    // so reach the server by address.
    let srv_ip = env.ok(&[
        "inspect",
        "--format",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &srv,
    ]);
    let by_ip = env.ok(&["exec", &cli, "wget", "-q", "-O-", &format!("http://{}/i", srv_ip.trim())]);
    assert_eq!(by_ip, "joined\n");
    env.ok(&["network", "disconnect", &net, &cli]);
    assert_eq!(env.ok(&["exec", &cli, "ls", "/sys/class/net"]).split_whitespace().collect::<Vec<_>>(), ["eth0", "lo"]);
    // Bad input: one line, exit 125, nothing made.
    let stopped = unique("stopped");
    env.ok(&["create", "--name", &stopped, BASE, "true"]);
    let _rm3 = RmOnDrop(&env, stopped.clone());
    for args in [
        vec!["network", "connect", net.as_str(), stopped.as_str()],
        vec!["network", "connect", net.as_str(), "no-such-container"],
        vec!["network", "create", "--subnet", "10.77.0.128/25", "overlapping"],
        vec!["network", "create", net.as_str()],
        vec!["network", "create", "--subnet", "10.1.2.3/99", "badcidr"],
        vec!["network", "create", "--subnet", "not-a-cidr", "badcidr2"],
    ] {
        let o = env.run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
    let names = env.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.contains("overlapping") && !names.contains("badcidr"), "{names}");
    env.ok(&["rm", "-f", &srv, &cli]);
    env.ok(&["network", "rm", &net]);
}

/// `--link` on the default bridge writes the linked container into /etc/hosts, as docker.
#[test]
fn links_on_the_default_bridge() {
    let env = Env::with_base();
    let db = unique("db");
    env.ok(&["run", "-d", "--name", &db, BASE, "sh", "-c", "echo linked > /i; httpd -f -p 80 -h /"]);
    let _rm = RmOnDrop(&env, db.clone());
    let got = eventually(|| {
        let o = env.run(&[
            "run",
            "--rm",
            "--link",
            &format!("{db}:mydb"),
            "--add-host",
            "extra.test:10.9.8.7",
            BASE,
            "sh",
            "-c",
            "grep -q '10.9.8.7.extra.test' /etc/hosts && timeout 2 wget -q -O- http://mydb/i || true",
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    });
    assert_eq!(got, "linked\n");
}

fn http_get(port: u16, path: &str) -> String {
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = write!(s, "GET {path} HTTP/1.0\r\n\r\n");
            body.clear();
            let _ = s.read_to_string(&mut body);
            if body.contains("200") {
                return body;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    body
}

/// `-p` with a random host port, a range, UDP and `-P` serve from the host's 127.0.0.1;
/// a busy host port is refused before anything is created.
#[test]
fn published_ports_ranges_udp_and_publish_all() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nEXPOSE 81\nCOPY udpecho /bin/\nRUN echo exposed > /i\n"))]);
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/udpecho.c");
    let cc = std::process::Command::new("cc").args(["-static", "-O2", "-o"]).arg(ctx.join("udpecho")).arg(src).output();
    let cc = cc.expect("cc (gcc) builds the UDP echo server");
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    env.ok(&["build", "-t", "exposer", ctx.to_str().unwrap()]);
    let name = unique("ports");
    env.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-P",
        "-p",
        "127.0.0.1::80",
        "-p",
        "127.0.0.1:0:82",
        "-p",
        "127.0.0.1::53/udp",
        "exposer",
        "sh",
        "-c",
        "httpd -p 80 -h /; httpd -p 81 -h /; httpd -p 82 -h /; exec udpecho 53",
    ]);
    let _rm = RmOnDrop(&env, name.clone());
    let port = |p: &str| -> u16 {
        let out = env.ok(&["port", &name, p]);
        out.lines()
            .next()
            .unwrap_or("")
            .rsplit(':')
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{p}: {out}"))
    };
    assert!(http_get(port("80"), "/i").contains("exposed"));
    assert!(http_get(port("81"), "/i").contains("exposed"), "-P publishes EXPOSE 81");
    // UDP: an echo through the proxy.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_millis(300))).unwrap();
    let mut got = String::new();
    for _ in 0..30 {
        udp.send_to(b"ping-udp\n", ("127.0.0.1", port("53/udp"))).unwrap();
        let mut b = [0u8; 64];
        if let Ok((n, _)) = udp.recv_from(&mut b) {
            got = String::from_utf8_lossy(&b[..n]).into();
            break;
        }
    }
    assert_eq!(got, "echo:ping-udp\n");
    let ps = env.ok(&["ps", "--filter", &format!("name={name}"), "--format", "{{.Ports}}"]);
    assert!(ps.contains("->53/udp") && ps.contains("->80/tcp"), "{ps}");
    // A range (two free adjacent ports).
    let base = (0..100)
        .find_map(|_| {
            let a = TcpListener::bind("127.0.0.1:0").ok()?;
            let p = a.local_addr().ok()?.port();
            TcpListener::bind(("127.0.0.1", p + 1)).ok().map(|_| p)
        })
        .expect("two free adjacent ports");
    let ranged = unique("range");
    let _rm2 = RmOnDrop(&env, ranged.clone());
    env.ok(&[
        "run",
        "-d",
        "--name",
        &ranged,
        "-p",
        &format!("127.0.0.1:{base}-{}:90-91", base + 1),
        BASE,
        "sh",
        "-c",
        "echo r > /i; httpd -p 90 -h /; httpd -f -p 91 -h /",
    ]);
    assert!(http_get(base, "/i").contains("200"));
    assert!(http_get(base + 1, "/i").contains("200"));
    // A busy port: refused, exit 125, no container left.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let bport = busy.local_addr().unwrap().port();
    let before = env.ok(&["ps", "-aq"]);
    let o = env.run(&["run", "-d", "-p", &format!("127.0.0.1:{bport}:80"), BASE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("port is already allocated"));
    assert_eq!(env.ok(&["ps", "-aq"]), before, "nothing half-made");
}

/// The runtime directory of `env`'s network namespace (it records its store).
fn namespace_dir_of(env: &Env) -> Option<std::path::PathBuf> {
    let root = std::fs::canonicalize(env.root()).ok()?;
    std::fs::read_dir("/run/rbuild").ok()?.flatten().map(|e| e.path()).find(|d| {
        std::fs::read(d.join("store"))
            .is_ok_and(|s| std::path::Path::new(&*String::from_utf8_lossy(&s)).starts_with(&root))
    })
}

/// Regression: a store deleted without `__netns-teardown` (a test killed mid-way) kept its
/// namespace and pasta until a reboot. The next namespace made sweeps it away.
#[test]
fn a_deleted_stores_namespace_is_swept_when_another_is_made() {
    let gone = Env::with_base();
    gone.ok(&["run", "--rm", BASE, "true"]);
    let dir = namespace_dir_of(&gone).expect("the store's namespace records its store");
    let pasta: i32 = std::fs::read_to_string(dir.join("pasta.pid")).unwrap().trim().parse().unwrap();
    std::fs::remove_dir_all(gone.root()).unwrap();
    let next = Env::with_base();
    next.ok(&["run", "--rm", BASE, "true"]);
    assert!(!dir.exists(), "the namespace of the deleted store is still there: {}", dir.display());
    common::docker::poll("pasta of the deleted store to quit", || {
        !std::path::Path::new(&format!("/proc/{pasta}")).exists()
    });
    assert!(namespace_dir_of(&next).is_some());
}
