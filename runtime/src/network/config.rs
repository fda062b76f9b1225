//! Network definitions, kept in the store (`rbuild/networks/NAME.json`): a name, an id, a
//! bridge in rbuild's network namespace, a private IPv4 subnet and its gateway. `bridge`
//! (docker's default, 172.17.0.0/16) always exists.

use super::error::NetworkError;
use crate::error::{Result, RuntimeError, Step};
use rbuild_store::Durability;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// docker's default network.
pub const DEFAULT: &str = "bridge";

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// `10.1.0.0/16`; host bits must be zero.
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = || RuntimeError::from(NetworkError::InvalidCidr(s.to_string()));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().ok().filter(|p| (8..=30).contains(p)).ok_or_else(bad)?;
        let net = Subnet { addr, prefix };
        if u32::from(addr) & !net.mask() != 0 {
            return Err(NetworkError::HostBits(s.to_string()).into());
        }
        Ok(net)
    }

    pub fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// The n-th address (`.1` is 1).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    /// Usable host addresses (network and broadcast excluded).
    pub fn hosts(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDef {
    pub name: String,
    /// 64 hex digits, as docker's network ids.
    pub id: String,
    pub driver: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// No traffic to the outside (`--internal`).
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub created: String,
    /// The bridge's name in rbuild's network namespace.
    pub bridge: String,
    /// Containers find each other by name (user-defined networks; not the default bridge).
    pub dns: bool,
}

fn dir(store_state: &Path) -> PathBuf {
    store_state.join("networks")
}

/// The default bridge network, made the same way on every machine.
pub fn default_network() -> NetworkDef {
    NetworkDef {
        name: DEFAULT.into(),
        id: hex_digest(DEFAULT),
        driver: "bridge".into(),
        subnet: Subnet { addr: Ipv4Addr::new(172, 17, 0, 0), prefix: 16 },
        gateway: Ipv4Addr::new(172, 17, 0, 1),
        internal: false,
        labels: BTreeMap::new(),
        created: String::new(),
        bridge: "rbr0".into(),
        dns: false,
    }
}

fn hex_digest(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("rbuild-network\0{s}").as_bytes()))
}

/// The definition of network `name` (`bridge` always exists).
pub fn load(store_state: &Path, name: &str) -> Result<NetworkDef> {
    let p = dir(store_state).join(format!("{name}.json"));
    match std::fs::read(&p) {
        Ok(data) => serde_json::from_slice(&data)
            .map_err(|e| NetworkError::Definition { name: name.to_string(), source: e }.into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == DEFAULT => Ok(default_network()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NetworkError::NotFound(name.to_string()).into()),
        Err(e) => Err(RuntimeError::io(format!("reading {}", p.display()), e)),
    }
}

/// Every network, the default first.
pub fn list(store_state: &Path) -> Result<Vec<NetworkDef>> {
    let mut out = vec![load(store_state, DEFAULT)?];
    let Ok(rd) = std::fs::read_dir(dir(store_state)) else { return Ok(out) };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(String::from))
        .filter(|n| n != DEFAULT)
        .collect();
    names.sort();
    for n in names {
        out.push(load(store_state, &n)?);
    }
    Ok(out)
}

/// Writes a definition (atomically).
pub fn save(store_state: &Path, def: &NetworkDef) -> Result<()> {
    let d = dir(store_state);
    std::fs::create_dir_all(&d).step(|| format!("creating {}", d.display()))?;
    let data = serde_json::to_vec_pretty(def).map_err(|e| RuntimeError::json("writing the network definition", e))?;
    let dest = d.join(format!("{}.json", def.name));
    rbuild_store::write_atomic(&dest, &data, Durability::Atomic).step(|| format!("writing network {}", def.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.1.0.0/16").unwrap();
        assert!(s.contains(Ipv4Addr::new(10, 1, 255, 3)) && !s.contains(Ipv4Addr::new(10, 2, 0, 1)));
        assert_eq!(s.nth(1), Ipv4Addr::new(10, 1, 0, 1));
        assert_eq!(s.hosts(), 65534);
        assert!(s.overlaps(&Subnet::parse("10.1.2.0/24").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("10.2.0.0/24").unwrap()));
        for bad in ["10.1.0.1/16", "10.1.0.0", "10.1.0.0/33", "300.1.0.0/16", "10.0.0.0/4"] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_network_always_exists() {
        let d = tempfile::tempdir().unwrap();
        let def = load(d.path(), DEFAULT).unwrap();
        assert_eq!(def.subnet.to_string(), "172.17.0.0/16");
        assert!(load(d.path(), "nope").is_err());
        let mut other = default_network();
        other.name = "app".into();
        other.bridge = "rbr1".into();
        save(d.path(), &other).unwrap();
        let names: Vec<String> = list(d.path()).unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["bridge", "app"]);
    }
}
