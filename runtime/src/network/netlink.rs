//! A small rtnetlink client: the link, address and route requests rbuild's networks need
//! (bridges, veth pairs, moving a link to another namespace, addresses, default routes),
//! each acknowledged by the kernel. Written by hand over a raw netlink socket (rustix):
//! about twenty message shapes from `rtnetlink(7)` do not justify an async netlink stack.
//!
//! A netlink socket talks to the network namespace it was created in: [`Netlink::open_in`]
//! makes one in another namespace from the calling thread (which joins it for the
//! `socket` call only), [`in_netns`] runs code on a thread inside another namespace.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{self as n, AddressFamily, SocketType};
use std::io;
use std::net::Ipv4Addr;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const NLA_F_NESTED: u16 = 0x8000;
const IFA_LOCAL: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 1;
const AF_BRIDGE: u8 = 7;
const AF_INET: u8 = 2;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// A netlink message under construction: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
    /// Offsets of nested attributes still open.
    open: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish()
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        Msg { buf, open: vec![] }
    }

    /// `struct ifinfomsg`.
    fn ifinfo(mut self, family: u8, index: i32, flags: u32, change: u32) -> Msg {
        ifinfo(&mut self.buf, family, index, flags, change);
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn str_attr(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(kind, &d)
    }

    fn begin(&mut self, kind: u16) -> &mut Msg {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Msg {
        let at = self.open.pop().expect("end() without begin()");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn finish(mut self) -> Vec<u8> {
        assert!(self.open.is_empty(), "unclosed netlink attribute");
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

fn ifinfo(buf: &mut Vec<u8>, family: u8, index: i32, flags: u32, change: u32) {
    buf.push(family);
    buf.push(0);
    buf.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    buf.extend_from_slice(&index.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&change.to_ne_bytes());
}

/// An rtnetlink socket in the namespace it was opened in.
pub struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    pub fn open() -> io::Result<Netlink> {
        let fd = n::socket_with(AddressFamily::NETLINK, SocketType::RAW, n::SocketFlags::CLOEXEC, None)?;
        Ok(Netlink { fd })
    }

    /// A socket in the namespace `ns`, made by the calling thread: it joins `ns`, makes
    /// the socket and goes back to its own namespace (the socket keeps talking to `ns`).
    /// No thread is started — two per run (and a scheduler wait for each on a busy
    /// machine) was what [`in_netns`] cost a `run --network bridge`.
    pub fn open_in(ns: BorrowedFd<'_>) -> io::Result<Netlink> {
        use rustix::fs::{Mode, OFlags};
        use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
        let own = rustix::fs::open("/proc/thread-self/ns/net", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        move_into_link_name_space(ns, Some(LinkNameSpaceType::Network))?;
        let made = Netlink::open();
        move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::Network))
            .map_err(|e| io::Error::other(format!("returning to the thread's network namespace: {e}")))?;
        made
    }

    /// Sends one request and returns the reply's payload when the kernel answers with
    /// data, or an empty vector for a plain acknowledgement; a negative answer is the
    /// errno.
    fn request(&self, msg: Msg) -> io::Result<Vec<u8>> {
        let data = msg.finish();
        n::send(&self.fd, &data, n::SendFlags::empty())?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut reply = Vec::new();
        loop {
            let (k, _) = n::recv(&self.fd, &mut buf[..], n::RecvFlags::empty())?;
            let mut off = 0;
            while off + 16 <= k {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or_default()) as usize;
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if len < 16 || off + len > k {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink reply"));
                }
                if kind == NLMSG_ERROR {
                    let err = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap_or_default());
                    if err != 0 {
                        return Err(io::Error::from_raw_os_error(-err));
                    }
                    return Ok(reply);
                }
                reply = buf[off + 16..off + len].to_vec();
                off += (len + 3) & !3;
            }
        }
    }

    /// Brings a link up.
    pub fn set_up(&self, index: i32) -> io::Result<()> {
        self.request(Msg::new(RTM_NEWLINK, 0).ifinfo(0, index, IFF_UP, IFF_UP)).map(drop)
    }

    /// The index of the link called `name`.
    pub fn index(&self, name: &str) -> io::Result<i32> {
        let mut m = Msg::new(RTM_GETLINK, 0).ifinfo(0, 0, 0, 0);
        m.str_attr(IFLA_IFNAME, name);
        let reply = self.request(m)?;
        if reply.len() < 16 {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no link {name}")));
        }
        Ok(i32::from_ne_bytes(reply[4..8].try_into().unwrap_or_default()))
    }

    /// Creates a bridge called `name`, down.
    pub fn add_bridge(&self, name: &str, mac: Option<[u8; 6]>) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, 0, 0, 0);
        m.str_attr(IFLA_IFNAME, name);
        if let Some(mac) = mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m.begin(IFLA_LINKINFO).str_attr(IFLA_INFO_KIND, "bridge").end();
        self.request(m).map(drop)
    }

    /// Creates a veth pair: `name` here, `peer` (with `peer_mac`) directly in the
    /// namespace `peer_ns`, down. Without `master`, `name` is down too; with it, in the
    /// same request, `name` is a port of the bridge `master` and up (the peer cannot be
    /// brought up in that request: it has no peer yet when the kernel configures it).
    pub fn add_veth(
        &self,
        name: &str,
        peer: &str,
        peer_ns: BorrowedFd<'_>,
        peer_mac: [u8; 6],
        mtu: u32,
        master: Option<i32>,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let up = if master.is_some() { IFF_UP } else { 0 };
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, 0, up, up);
        m.str_attr(IFLA_IFNAME, name);
        m.attr(IFLA_MTU, &mtu.to_ne_bytes());
        if let Some(master) = master {
            m.attr(IFLA_MASTER, &master.to_ne_bytes());
        }
        m.begin(IFLA_LINKINFO).str_attr(IFLA_INFO_KIND, "veth").begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
        ifinfo(&mut m.buf, 0, 0, 0, 0);
        m.str_attr(IFLA_IFNAME, peer);
        m.attr(IFLA_ADDRESS, &peer_mac);
        m.attr(IFLA_MTU, &mtu.to_ne_bytes());
        m.attr(IFLA_NET_NS_FD, &peer_ns.as_raw_fd().to_ne_bytes());
        m.end().end().end();
        self.request(m).map(drop)
    }

    /// Enslaves link `index` to the bridge `master` and brings it up; `isolated` ports
    /// reach only the bridge itself, not each other (IFLA_BRPORT_ISOLATED).
    pub fn attach(&self, index: i32, master: i32, isolated: bool) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(0, index, IFF_UP, IFF_UP);
        m.attr(IFLA_MASTER, &master.to_ne_bytes());
        self.request(m)?;
        if isolated {
            self.isolate(index)?;
        }
        Ok(())
    }

    /// Makes the bridge port `index` reach only the bridge itself (IFLA_BRPORT_ISOLATED).
    pub fn isolate(&self, index: i32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(AF_BRIDGE, index, 0, 0);
        m.begin(IFLA_PROTINFO | NLA_F_NESTED).attr(IFLA_BRPORT_ISOLATED, &[1]).end();
        self.request(m).map(drop)
    }

    /// Deletes a link (a veth's peer goes with it).
    pub fn delete(&self, index: i32) -> io::Result<()> {
        self.request(Msg::new(RTM_DELLINK, 0).ifinfo(0, index, 0, 0)).map(drop)
    }

    /// Adds `addr/prefix` to link `index`.
    pub fn add_address(&self, index: i32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[AF_INET, prefix, 0, 0]);
        m.buf.extend_from_slice(&(index as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        self.request(m).map(drop)
    }

    /// A default route through `gateway`.
    pub fn add_default_route(&self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope (universe), type
        m.buf.extend_from_slice(&[AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, 0, RTN_UNICAST]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets());
        self.request(m).map(drop)
    }
}

/// Runs `f` on a thread that has joined the network namespace `ns` (netlink sockets and
/// sockets made there belong to it); the calling thread stays where it is.
pub fn in_netns<T: Send>(ns: BorrowedFd<'_>, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(move || {
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a network thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_aligned_and_nested_lengths_close() {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE).ifinfo(0, 0, 0, 0);
        m.str_attr(IFLA_IFNAME, "br0");
        m.begin(IFLA_LINKINFO).str_attr(IFLA_INFO_KIND, "bridge").end();
        let b = m.finish();
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        assert_eq!(b.len() % 4, 0);
        // IFLA_IFNAME "br0\0": 4 header + 4 data.
        assert_eq!(&b[32..40], &[8, 0, 3, 0, b'b', b'r', b'0', 0]);
        // LINKINFO holds KIND "bridge\0" (4 + 7, padded to 12): 16 in all.
        assert_eq!(u16::from_ne_bytes([b[40], b[41]]), 16);
    }

    /// As root: a throwaway network namespace (made on a thread, gone with it) gets a
    /// bridge, a veth into a second namespace, addresses and a route; the two ends ping
    /// each other's address over TCP.
    #[test]
    fn bridge_and_veth_in_private_namespaces() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        use rustix::thread::UnshareFlags;
        let made = std::thread::spawn(|| -> io::Result<()> {
            let sys = crate::syscall::Linux;
            crate::syscall::Syscall::unshare(&sys, UnshareFlags::NEWNET)?;
            let outer = rustix::fs::open(
                "/proc/thread-self/ns/net",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?;
            let nl = Netlink::open()?;
            nl.set_up(1)?;
            nl.add_bridge("rbtest0", None)?;
            let br = nl.index("rbtest0")?;
            nl.add_address(br, Ipv4Addr::new(10, 123, 0, 1), 24)?;
            nl.set_up(br)?;
            // The inner namespace, held by a descriptor.
            let inner = std::thread::spawn(|| -> io::Result<OwnedFd> {
                crate::syscall::Syscall::unshare(&crate::syscall::Linux, UnshareFlags::NEWNET)?;
                Ok(rustix::fs::open(
                    "/proc/thread-self/ns/net",
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?)
            })
            .join()
            .unwrap()?;
            // The port joins the bridge and comes up in the creating request.
            nl.add_veth("rbtestv0", "eth0", inner.as_fd(), [0x02, 0x42, 10, 123, 0, 2], 1500, Some(br))?;
            let v = nl.index("rbtestv0")?;
            nl.isolate(v)?;
            // Configured from this thread through a socket made in the inner namespace;
            // the thread is back in its own namespace afterwards.
            let here = || rustix::fs::stat("/proc/thread-self/ns/net").map(|s| s.st_ino);
            let before = here()?;
            let inside = Netlink::open_in(inner.as_fd())?;
            assert_eq!(here()?, before, "the thread went back to its namespace");
            inside.set_up(1)?;
            let e = inside.index("eth0")?;
            assert!(nl.index("eth0").is_err(), "eth0 is in the inner namespace only");
            inside.add_address(e, Ipv4Addr::new(10, 123, 0, 2), 24)?;
            inside.set_up(e)?;
            inside.add_default_route(Ipv4Addr::new(10, 123, 0, 1))?;
            let listener = std::net::TcpListener::bind("10.123.0.1:0")?;
            let port = listener.local_addr()?.port();
            let got = in_netns(inner.as_fd(), move || {
                // The route is in place once the link is up; give carrier a moment.
                let t = std::time::Instant::now();
                loop {
                    match std::net::TcpStream::connect_timeout(
                        &(Ipv4Addr::new(10, 123, 0, 1), port).into(),
                        std::time::Duration::from_secs(1),
                    ) {
                        Ok(s) => return Ok(s.local_addr()?.ip()),
                        Err(e) if t.elapsed().as_secs() > 5 => return Err(e),
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                    }
                }
            })?;
            assert_eq!(got, Ipv4Addr::new(10, 123, 0, 2));
            nl.delete(v)?;
            assert!(nl.index("rbtestv0").is_err());
            drop(outer);
            Ok(())
        })
        .join()
        .unwrap();
        made.unwrap();
    }
}
