//! Address leases: one file per address in use (`leases/NETWORK/IP`), made with
//! `O_EXCL` so two sandboxes never get the same address without any lock, and naming the
//! process that holds it (pid and start time): a lease whose holder is gone (a killed
//! shim) is taken back by the next allocation. Leases live in the runtime directory
//! (`/run`), so a reboot frees them all, as it ends every sandbox.

use super::config::NetworkDef;
use super::error::NetworkError;
use crate::error::{Result, RuntimeError, Step};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// A held address; [`Lease::release`] gives it back (also done by dropping it unless
/// kept with [`Lease::keep`]).
#[derive(Debug)]
pub struct Lease {
    pub ip: Ipv4Addr,
    path: PathBuf,
    keep: bool,
}

impl Lease {
    /// The lease file (for [`release_path`] from another process).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lease outlives this value (its holder releases it by path).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }

    pub fn release(self) {}
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Gives back the lease at `path`.
pub fn release_path(path: &Path) {
    let _ = std::fs::remove_file(path);
}

fn holder_alive(content: &str) -> bool {
    let mut f = content.split_whitespace();
    let (Some(pid), Some(start)) =
        (f.next().and_then(|p| p.parse::<i32>().ok()), f.next().and_then(|s| s.parse().ok()))
    else {
        return false;
    };
    crate::state::alive(pid, start)
}

/// Takes the first free address of `def` (after the gateway), or `want` if given, for the
/// process `holder` (pid; its start time is recorded with it).
pub fn allocate(leases: &Path, def: &NetworkDef, holder: i32, want: Option<Ipv4Addr>) -> Result<Lease> {
    let dir = leases.join(&def.name);
    std::fs::create_dir_all(&dir).step(|| format!("creating {}", dir.display()))?;
    let record = format!("{holder} {}\n", crate::state::proc_start_time(holder));
    let candidates: Box<dyn Iterator<Item = Ipv4Addr>> = match want {
        Some(ip) => {
            if !def.subnet.contains(ip) || ip == def.gateway {
                return Err(NetworkError::AddressUnusable { ip, network: def.name.clone() }.into());
            }
            Box::new(std::iter::once(ip))
        }
        None => Box::new((1..=def.subnet.hosts()).map(|n| def.subnet.nth(n)).filter(|ip| *ip != def.gateway)),
    };
    for ip in candidates {
        let path = dir.join(ip.to_string());
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(record.as_bytes()).step(|| format!("writing {}", path.display()))?;
                    return Ok(Lease { ip, path, keep: false });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lease whose holder died is stale: take it back and try once more.
                    let content = std::fs::read_to_string(&path).unwrap_or_default();
                    if content.is_empty() || holder_alive(&content) {
                        break;
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(RuntimeError::io(format!("creating {}", path.display()), e)),
            }
        }
    }
    Err(match want {
        Some(ip) => NetworkError::AddressInUse { ip, network: def.name.clone() },
        None => NetworkError::NoAddresses(def.name.clone()),
    }
    .into())
}

/// The addresses in use on network `name`, with their holders alive.
pub fn in_use(leases: &Path, name: &str) -> Vec<Ipv4Addr> {
    let Ok(rd) = std::fs::read_dir(leases.join(name)) else { return vec![] };
    rd.flatten()
        .filter(|e| std::fs::read_to_string(e.path()).map(|c| holder_alive(&c)).unwrap_or(false))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::config::{default_network, Subnet};

    #[test]
    fn leases_are_exclusive_and_stale_ones_come_back() {
        let d = tempfile::tempdir().unwrap();
        let mut def = default_network();
        def.subnet = Subnet::parse("10.9.0.0/29").unwrap(); // .1 gateway, .2–.6 hosts
        def.gateway = Ipv4Addr::new(10, 9, 0, 1);
        let me = std::process::id() as i32;
        let a = allocate(d.path(), &def, me, None).unwrap();
        let b = allocate(d.path(), &def, me, None).unwrap();
        assert_eq!((a.ip, b.ip), (Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 3)));
        assert!(allocate(d.path(), &def, me, Some(a.ip)).is_err(), "an address is held once");
        drop(a);
        assert_eq!(allocate(d.path(), &def, me, None).unwrap().ip, Ipv4Addr::new(10, 9, 0, 2));
        // A holder that is gone (pid 0 never lives) loses its lease.
        std::fs::write(d.path().join(&def.name).join("10.9.0.4"), "999999999 1\n").unwrap();
        let leases: Vec<Lease> = (0..4).map(|_| allocate(d.path(), &def, me, None).unwrap()).collect();
        assert_eq!(leases.last().unwrap().ip, Ipv4Addr::new(10, 9, 0, 6));
        assert!(leases.iter().any(|l| l.ip == Ipv4Addr::new(10, 9, 0, 4)));
        assert!(allocate(d.path(), &def, me, None).is_err(), "the subnet is full");
        assert!(allocate(d.path(), &def, me, Some(def.gateway)).is_err());
        let kept = leases.into_iter().next().unwrap().keep();
        assert!(kept.exists());
        release_path(&kept);
        assert!(!kept.exists());
        assert_eq!(in_use(d.path(), &def.name).len(), 1, "only b is left");
        drop(b);
    }
}
