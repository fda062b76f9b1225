//! rbuild's own network namespace: every bridge, veth end, address and NAT rule rbuild
//! makes lives there, never in the host's namespace. It is a file in the runtime
//! directory (`/run/rbuild/<store>/netns`, an nsfs bind mount, as `ip netns` keeps
//! them), made on first use and again after a reboot (`/run` is empty then).
//!
//! Outbound traffic leaves through `pasta` (Debian's `passt`): a userspace network stack
//! attached to the namespace, which turns the namespace's connections into ordinary
//! sockets of the host. It is started with every port forward off and with
//! `--no-map-gw`, so nothing in the namespace reaches the host's loopback services, and
//! nothing outside reaches the namespace unless a port is published. pasta runs as root
//! (it must join a namespace the host's root owns) and confines itself: no capabilities
//! but CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN, no_new_privs, a seccomp filter, an empty
//! root. It quits by itself when the namespace file is removed.
//!
//! Inside, bridges' traffic to the outside is masqueraded to pasta's address (`nft`), and
//! routed traffic between two different bridges is dropped (networks are isolated from
//! each other, as docker's are).

use super::config::NetworkDef;
use super::error::NetworkError;
use super::netlink::{in_netns, Netlink};
use crate::error::{Result, RuntimeError, Step};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// pasta's interface in the namespace.
pub const UPLINK: &str = "pasta0";
/// The address in the namespace that pasta answers DNS queries on (forwarded to the
/// host's first resolver).
pub const DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 53);
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// rbuild's network namespace for one store.
#[derive(Debug, Clone)]
pub struct Host {
    dir: PathBuf,
    /// The store's state directory, when known: recorded beside the namespace so that a
    /// namespace whose store is gone can be found and removed ([`sweep_orphans`]).
    store: Option<PathBuf>,
}

fn hash(root: &Path) -> String {
    use sha2::Digest;
    let canon = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    hex::encode(&sha2::Sha256::digest(canon.as_os_str().as_encoded_bytes())[..8])
}

fn is_nsfs(p: &Path) -> Option<OwnedFd> {
    let fd = rustix::fs::open(p, rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
        .ok()?;
    let st = rustix::fs::fstatfs(&fd).ok()?;
    (st.f_type as i64 == NSFS_MAGIC).then_some(fd)
}

impl Host {
    /// The namespace of the store whose state directory is `root` (nothing is made yet).
    pub fn for_store(root: &Path) -> Host {
        let base =
            std::env::var_os("RBUILD_RUNTIME_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/rbuild"));
        Host { dir: base.join(hash(root)), store: Some(root.to_path_buf()) }
    }

    /// The namespace whose runtime directory is `dir`.
    pub fn at(dir: &Path) -> Host {
        Host { dir: dir.to_path_buf(), store: None }
    }

    /// The DNS records of user-defined networks ([`super::dns`]).
    pub fn dns_dir(&self) -> PathBuf {
        self.dir.join("dns")
    }

    pub fn dns_pid_path(&self) -> PathBuf {
        self.dir.join("dns.pid")
    }

    fn dns_alive(&self) -> bool {
        let Ok(pid) = std::fs::read_to_string(self.dns_pid_path()) else { return false };
        let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", pid.trim())) else { return false };
        let dir = self.dir.as_os_str().as_encoded_bytes();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.contains(&super::dns::SERVER_ARG.as_bytes()) && args.contains(&dir)
    }

    /// Starts the DNS server of user-defined networks unless it runs.
    pub fn ensure_dns(&self) -> Result<()> {
        if self.dns_alive() {
            return Ok(());
        }
        let _lock = self.lock()?;
        if self.dns_alive() {
            return Ok(());
        }
        std::fs::create_dir_all(self.dns_dir()).step(|| format!("creating {}", self.dns_dir().display()))?;
        let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
        // `__dns --detach DIR` starts the server (`__dns --serve DIR`) and exits, so the
        // server is nobody's child to reap.
        let status = Command::new(exe)
            .args([super::dns::SERVER_ARG, "--detach"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .step(|| "starting the DNS server".into())?;
        let t = std::time::Instant::now();
        while !self.dns_alive() && t.elapsed().as_secs() < 3 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if !status.success() || !self.dns_alive() {
            return Err(NetworkError::DnsDidNotStart.into());
        }
        Ok(())
    }

    fn ns_path(&self) -> PathBuf {
        self.dir.join("netns")
    }

    /// Where address leases live.
    pub fn leases(&self) -> PathBuf {
        self.dir.join("leases")
    }

    fn pid_path(&self) -> PathBuf {
        self.dir.join("pasta.pid")
    }

    /// The namespace, made (or repaired: pasta restarted) when needed.
    pub fn ensure(&self) -> Result<OwnedFd> {
        if let (Some(fd), true) = (is_nsfs(&self.ns_path()), self.pasta_alive()) {
            return Ok(fd);
        }
        std::fs::create_dir_all(&self.dir).step(|| format!("creating {}", self.dir.display()))?;
        let _ = rustix::fs::chmod(&self.dir, rustix::fs::Mode::from_raw_mode(0o700));
        let _lock = self.lock()?;
        let fd = match is_nsfs(&self.ns_path()) {
            Some(fd) => fd,
            None => {
                let fd = self.create()?;
                if let Some(base) = self.dir.parent() {
                    sweep_orphans(base, &self.dir);
                }
                fd
            }
        };
        if !self.pasta_alive() {
            self.start_pasta()?;
        }
        Ok(fd)
    }

    /// The namespace if it exists (nothing is made).
    pub fn existing(&self) -> Option<OwnedFd> {
        is_nsfs(&self.ns_path())
    }

    fn lock(&self) -> Result<std::fs::File> {
        let p = self.dir.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .step(|| format!("opening {}", p.display()))?;
        f.lock().step(|| format!("locking {}", p.display()))?;
        Ok(f)
    }

    /// A new namespace bound to the file, with `lo`, forwarding and the NAT table.
    fn create(&self) -> Result<OwnedFd> {
        let path = self.ns_path();
        if let Some(store) = &self.store {
            let canon = std::fs::canonicalize(store).unwrap_or_else(|_| store.clone());
            let p = self.dir.join(STORE_FILE);
            std::fs::write(&p, canon.as_os_str().as_encoded_bytes()).step(|| format!("writing {}", p.display()))?;
        }
        std::fs::write(&path, b"").step(|| format!("creating {}", path.display()))?;
        let made = std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                use crate::syscall::Syscall;
                let sys = crate::syscall::Linux;
                sys.unshare(rustix::thread::UnshareFlags::NEWNET)
                    .step(|| "creating rbuild's network namespace".into())?;
                sys.bind(Path::new("/proc/thread-self/ns/net"), &path, false)
                    .step(|| format!("binding the namespace to {}", path.display()))?;
                sys.loopback_up().step(|| "bringing lo up".into())?;
                sys.write_sysctl("net.ipv4.ip_forward", "1").step(|| "enabling forwarding".into())?;
                Ok(())
            })
            .join()
            .unwrap_or_else(|_| Err(NetworkError::NamespaceThread.into()))
        });
        if let Err(e) = made {
            let _ = rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let script = format!(
            "table ip rbuild {{\n chain postrouting {{\n  type nat hook postrouting priority 100;\n  oifname \"{UPLINK}\" masquerade\n }}\n chain forward {{\n  type filter hook forward priority 0;\n }}\n}}\n"
        );
        if let Err(e) = self.nft(&script) {
            let _ = self.teardown();
            return Err(e);
        }
        is_nsfs(&path).ok_or_else(|| NetworkError::NotANamespace(path.clone()).into())
    }

    /// Runs `nft -f -` with `script` inside the namespace.
    fn nft(&self, script: &str) -> Result<()> {
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", self.ns_path().display()))
            .args(["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RuntimeError::io("running nft in rbuild's network namespace (install nftables)", e))?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(script.as_bytes()).step(|| "writing nft rules".into())?;
        }
        let out = child.wait_with_output().step(|| "running nft".into())?;
        if !out.status.success() {
            return Err(NetworkError::Nft(String::from_utf8_lossy(&out.stderr).trim().to_string()).into());
        }
        Ok(())
    }

    fn pasta_alive(&self) -> bool {
        let Ok(pid) = std::fs::read_to_string(self.pid_path()) else { return false };
        let Ok(cmdline) = std::fs::read(format!("/proc/{}/cmdline", pid.trim())) else { return false };
        let ns = self.ns_path();
        let ns = ns.as_os_str().as_encoded_bytes();
        cmdline.split(|b| *b == 0).any(|a| a == ns)
    }

    fn start_pasta(&self) -> Result<()> {
        let _ = std::fs::remove_file(self.pid_path());
        let out = Command::new("pasta")
            .args(["--quiet", "--config-net", "--netns"])
            .arg(self.ns_path())
            .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw", "--ipv4-only"])
            .args(["--ns-ifname", UPLINK, "--runas", "0:0", "--dns-forward", &DNS_FORWARD.to_string(), "--pid"])
            .arg(self.pid_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| {
                RuntimeError::io(
                    "starting pasta for rbuild's network (install the passt package, or use --network none|host)",
                    e,
                )
            })?;
        if !out.status.success() || !self.pasta_alive() {
            return Err(NetworkError::Pasta(String::from_utf8_lossy(&out.stderr).trim().to_string()).into());
        }
        Ok(())
    }

    /// Makes `def`'s bridge (with its gateway address and isolation rules) if missing;
    /// returns its index. `nl` is a socket in rbuild's namespace `ns`.
    pub fn ensure_bridge(&self, nl: &Netlink, ns: BorrowedFd<'_>, def: &NetworkDef) -> Result<i32> {
        if let Ok(i) = nl.index(&def.bridge) {
            return Ok(i);
        }
        let _lock = self.lock()?;
        let made = in_netns(ns, || {
            let nl = Netlink::open()?;
            if let Ok(i) = nl.index(&def.bridge) {
                return Ok((i, false));
            }
            nl.add_bridge(&def.bridge, None)?;
            let i = nl.index(&def.bridge)?;
            nl.add_address(i, def.gateway, def.subnet.prefix)?;
            nl.set_up(i)?;
            Ok((i, true))
        })
        .step(|| format!("creating the bridge of network {}", def.name))?;
        if made.1 {
            // Routed traffic from this bridge may go to the outside (unless internal), never
            // to another bridge.
            let allowed =
                if def.internal { format!("\"{}\"", def.bridge) } else { format!("\"{}\", \"{UPLINK}\"", def.bridge) };
            self.nft(&format!(
                "add rule ip rbuild forward iifname \"{}\" oifname != {{ {allowed} }} drop\n",
                def.bridge
            ))?;
        }
        Ok(made.0)
    }

    /// Removes a network's bridge (its rules stay harmless: they name a missing device).
    pub fn remove_bridge(&self, def: &NetworkDef) -> Result<()> {
        let Some(ns) = self.existing() else { return Ok(()) };
        in_netns(ns.as_fd(), || {
            let nl = Netlink::open()?;
            match nl.index(&def.bridge) {
                Ok(i) => nl.delete(i),
                Err(_) => Ok(()),
            }
        })
        .step(|| format!("removing the bridge of network {}", def.name))
    }

    /// Removes the namespace (pasta quits with it) and the runtime directory.
    pub fn teardown(&self) -> Result<()> {
        let p = self.ns_path();
        if is_nsfs(&p).is_some() {
            rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH)
                .step(|| format!("unmounting {}", p.display()))?;
        }
        let pasta = std::fs::read_to_string(self.pid_path()).ok().and_then(|p| p.trim().parse().ok());
        let alive = self.pasta_alive();
        let dns = std::fs::read_to_string(self.dns_pid_path()).ok().and_then(|p| p.trim().parse().ok());
        let dns_alive = self.dns_alive();
        let _ = std::fs::remove_file(&p);
        // pasta watches the directory and quits when the file goes; it blocks SIGTERM, so
        // one that is still there after a second is killed (it is ours: its command line
        // names this namespace).
        if let (Some(pid), true) = (pasta.and_then(rustix::process::Pid::from_raw), alive) {
            let t = std::time::Instant::now();
            while Path::new(&format!("/proc/{}", pid.as_raw_nonzero())).exists() && t.elapsed().as_secs() < 1 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        // The DNS server quits within two seconds of the file going; ours, so end it now.
        if let (Some(pid), true) = (dns.and_then(rustix::process::Pid::from_raw), dns_alive) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io(format!("removing {}", self.dir.display()), e)),
        }
    }
}

/// The file beside a namespace that names its store's state directory.
const STORE_FILE: &str = "store";

/// Removes the namespaces (and their pasta) under `base` whose store no longer exists:
/// a store deleted without `rbuild __netns-teardown` (a test killed mid-way, `rm -rf` of
/// a scratch store) would otherwise keep its namespace and pasta until the next reboot.
/// Runs when a namespace is made, which is rare. A namespace made before stores were
/// recorded (no `store` file) and `keep` are left alone; each is removed under its own
/// lock, after checking again, so one that is being made is never touched.
fn sweep_orphans(base: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for e in entries.flatten() {
        let dir = e.path();
        if dir == keep || !orphaned(&dir) {
            continue;
        }
        let host = Host::at(&dir);
        let Ok(_lock) = host.lock() else { continue };
        if orphaned(&dir) {
            let _ = host.teardown();
        }
    }
}

/// Whether the namespace directory `dir` records a store that is gone.
fn orphaned(dir: &Path) -> bool {
    match std::fs::read(dir.join(STORE_FILE)) {
        Ok(p) if !p.is_empty() => {
            let store = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&p));
            !store.exists()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_whose_store_is_gone_is_swept_and_others_stay() {
        let base = tempfile::tempdir().unwrap();
        let live_store = tempfile::tempdir().unwrap();
        let mk = |name: &str, store: Option<&Path>| {
            let d = base.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("netns"), b"").unwrap();
            if let Some(s) = store {
                std::fs::write(d.join(STORE_FILE), s.as_os_str().as_encoded_bytes()).unwrap();
            }
            d
        };
        let gone = mk("gone", Some(Path::new("/var/tmp/rbuild-no-such-store/state")));
        let live = mk("live", Some(live_store.path()));
        let old = mk("old", None);
        let me = mk("me", Some(Path::new("/var/tmp/rbuild-no-such-store/too")));
        sweep_orphans(base.path(), &me);
        assert!(!gone.exists(), "the namespace of a deleted store stays");
        assert!(live.exists() && old.exists() && me.exists(), "a namespace in use was removed");
    }

    #[test]
    fn one_namespace_per_store() {
        let a = Host::for_store(Path::new("/var/lib/rbuild"));
        let b = Host::for_store(Path::new("/var/tmp/other"));
        assert_ne!(a.dir, b.dir);
        assert_eq!(a.dir, Host::for_store(Path::new("/var/lib/rbuild")).dir);
    }
}
