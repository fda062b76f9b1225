//! `network create|rm|prune|connect|disconnect`: user-defined networks as docker has
//! them, with addresses from docker's default pools, refused when they overlap, and
//! containers attached and detached while they run.

use super::attach::{self, AttachRequest, Endpoint};
use super::config::{self, NetworkDef, Subnet, DEFAULT};
use super::error::NetworkError;
use super::namespace::Host;
use crate::container::{self, state, Container};
use crate::error::{Result, Step};
use rbuild_store::Store;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Names docker reserves for its own networks.
const RESERVED: [&str; 3] = ["bridge", "host", "none"];

/// `network create`'s options.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    /// Only `bridge` is supported.
    pub driver: Option<String>,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// docker's default address pools for new networks: 172.17–31.0.0/16, then
/// 192.168.0–240.0/20.
fn pool() -> impl Iterator<Item = Subnet> {
    (17..=31u8)
        .map(|b| Subnet { addr: Ipv4Addr::new(172, b, 0, 0), prefix: 16 })
        .chain((0..16u8).map(|i| Subnet { addr: Ipv4Addr::new(192, 168, i * 16, 0), prefix: 20 }))
}

/// Creates a network; returns its definition.
pub fn create(store: &Store, o: &CreateNetwork) -> Result<NetworkDef> {
    let state = store.state_dir();
    if !valid_name(&o.name) {
        return Err(NetworkError::InvalidName(o.name.clone()).into());
    }
    if RESERVED.contains(&o.name.as_str()) {
        return Err(NetworkError::Exists(o.name.clone()).into());
    }
    match o.driver.as_deref() {
        None | Some("bridge") => {}
        Some(d) => return Err(NetworkError::Driver(d.to_string()).into()),
    }
    let existing = config::list(&state)?;
    if existing.iter().any(|n| n.name == o.name) {
        return Err(NetworkError::Exists(o.name.clone()).into());
    }
    let subnet = match o.subnet {
        Some(s) => {
            if let Some(other) = existing.iter().find(|n| n.subnet.overlaps(&s)) {
                return Err(NetworkError::Overlap {
                    subnet: s.to_string(),
                    network: other.name.clone(),
                    other: other.subnet.to_string(),
                }
                .into());
            }
            s
        }
        None => pool().find(|p| !existing.iter().any(|n| n.subnet.overlaps(p))).ok_or(NetworkError::NoPool)?,
    };
    let gateway = match o.gateway {
        Some(g) if !subnet.contains(g) || g == subnet.addr => {
            return Err(NetworkError::Gateway { gateway: g, subnet: subnet.to_string() }.into())
        }
        Some(g) => g,
        None => subnet.nth(1),
    };
    let id = container::random_id();
    let def = NetworkDef {
        name: o.name.clone(),
        bridge: format!("rbr-{}", &id[..11]),
        id,
        driver: "bridge".into(),
        subnet,
        gateway,
        internal: o.internal,
        labels: o.labels.clone(),
        created: state::now(),
        dns: true,
    };
    config::save(&state, &def)?;
    Ok(def)
}

/// The running containers attached to network `name`.
pub fn attached(store: &Store, name: &str) -> Result<Vec<(Container, Endpoint)>> {
    let mut out = Vec::new();
    for c in container::list(store)? {
        if !c.running() {
            continue;
        }
        if let Some(ep) = c.state().networks.into_iter().find(|e| e.network == name) {
            out.push((c, ep));
        }
    }
    Ok(out)
}

/// Removes a network; refused while containers are attached (and for docker's own).
pub fn remove(store: &Store, name: &str) -> Result<()> {
    let state = store.state_dir();
    if RESERVED.contains(&name) {
        return Err(NetworkError::Predefined(name.to_string()).into());
    }
    let def = config::load(&state, name)?;
    let users = attached(store, name)?;
    if !users.is_empty() {
        let names: Vec<&str> = users.iter().map(|(c, _)| c.config.name.as_str()).collect();
        return Err(
            NetworkError::InUse { name: name.to_string(), id: def.id.clone(), containers: names.join(", ") }.into()
        );
    }
    Host::for_store(&state).remove_bridge(&def)?;
    let p = state.join("networks").join(format!("{name}.json"));
    std::fs::remove_file(&p).step(|| format!("removing {}", p.display()))
}

/// Removes every user-defined network no running container uses; returns their names.
pub fn prune(store: &Store) -> Result<Vec<String>> {
    let mut gone = Vec::new();
    for def in config::list(&store.state_dir())? {
        if def.name == DEFAULT || !attached(store, &def.name)?.is_empty() {
            continue;
        }
        remove(store, &def.name)?;
        gone.push(def.name);
    }
    Ok(gone)
}

/// `network connect NET CTR`: a running container joins a network at once (a new
/// interface, `eth1`, …); the container keeps it when it is started again.
pub fn connect(store: &Store, name: &str, c: &Container, aliases: &[String]) -> Result<Endpoint> {
    let state_dir = store.state_dir();
    let def = config::load(&state_dir, name)?;
    let st = c.state();
    if !c.running() {
        return Err(NetworkError::NotRunning(c.config.name.clone()).into());
    }
    if st.networks.iter().any(|e| e.network == name) {
        return Err(
            NetworkError::AlreadyConnected { container: c.config.name.clone(), network: name.to_string() }.into()
        );
    }
    let host = Host::for_store(&state_dir);
    let ns = host.ensure()?;
    let sandbox = rustix::fs::open(
        format!("/proc/{}/ns/net", st.pid).as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(|| format!("opening the network namespace of {}", c.config.name))?;
    let ifname =
        (0..).map(|i| format!("eth{i}")).find(|n| !st.networks.iter().any(|e| &e.ifname == n)).unwrap_or_default();
    let req = AttachRequest {
        def: &def,
        ifname,
        default_route: st.networks.is_empty(),
        isolated: false,
        aliases: aliases.to_vec(),
        holder: st.shim_pid,
        ip: None,
    };
    use rustix::fd::AsFd;
    let ep = attach::attach(&host, ns.as_fd(), sandbox.as_fd(), &req)?;
    super::dns::publish(&host, c, &ep)?;
    state::update(&c.state_path(), |s| s.networks.push(ep.clone()))?;
    remember(c, name, aliases, true)?;
    Ok(ep)
}

/// `network disconnect NET CTR`: the container leaves the network at once.
pub fn disconnect(store: &Store, name: &str, c: &Container) -> Result<()> {
    let state_dir = store.state_dir();
    config::load(&state_dir, name)?;
    let st = c.state();
    let host = Host::for_store(&state_dir);
    match st.networks.iter().find(|e| e.network == name) {
        Some(ep) if c.running() => {
            attach::detach(&host, ep)?;
            super::dns::withdraw(&host, c, ep);
            state::update(&c.state_path(), |s| s.networks.retain(|e| e.network != name))?;
        }
        _ if !c.running() => {}
        _ => {
            return Err(
                NetworkError::NotConnected { container: c.config.name.clone(), network: name.to_string() }.into()
            )
        }
    }
    remember(c, name, &[], false)
}

/// Records a network in (or drops it from) the container's configuration and spec, so a
/// restart joins the same networks.
fn remember(c: &Container, name: &str, aliases: &[String], joined: bool) -> Result<()> {
    use crate::sandbox::spec::{NetRequest, Network};
    let update = |n: &mut Network| {
        if let Network::Bridge(reqs) = n {
            reqs.retain(|r| r.network != name);
            if joined {
                reqs.push(NetRequest { aliases: aliases.to_vec(), ..NetRequest::on(name) });
            }
        }
    };
    let mut c2 = c.clone();
    update(&mut c2.config.network);
    c2.save_config()?;
    let mut spec = c.spec()?;
    update(&mut spec.network);
    crate::shim::write_spec(&spec, &c.spec_path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeError;

    #[test]
    fn pools_follow_dockers_order() {
        let p: Vec<String> = pool().map(|s| s.to_string()).collect();
        assert_eq!(p[0], "172.17.0.0/16");
        assert_eq!(p[1], "172.18.0.0/16");
        assert_eq!(p[15], "192.168.0.0/20");
        assert_eq!(p[16], "192.168.16.0/20");
    }

    #[test]
    fn names_and_pools() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path().join("store")).unwrap();
        let a = create(&store, &CreateNetwork { name: "app".into(), ..Default::default() }).unwrap();
        assert_eq!(a.subnet.to_string(), "172.18.0.0/16");
        assert_eq!(a.gateway, Ipv4Addr::new(172, 18, 0, 1));
        assert!(a.bridge.len() <= 15);
        let b = create(&store, &CreateNetwork { name: "b".into(), ..Default::default() }).unwrap();
        assert_eq!(b.subnet.to_string(), "172.19.0.0/16");
        assert!(matches!(
            create(&store, &CreateNetwork { name: "app".into(), ..Default::default() }),
            Err(RuntimeError::Network(NetworkError::Exists(_)))
        ));
        assert!(create(&store, &CreateNetwork { name: "bridge".into(), ..Default::default() }).is_err());
        assert!(create(&store, &CreateNetwork { name: "-x".into(), ..Default::default() }).is_err());
        let overlap = CreateNetwork {
            name: "c".into(),
            subnet: Some(Subnet::parse("172.18.5.0/24").unwrap()),
            ..Default::default()
        };
        assert!(create(&store, &overlap).unwrap_err().to_string().contains("overlaps with network app"));
        let bad_gw = CreateNetwork {
            name: "d".into(),
            subnet: Some(Subnet::parse("10.5.0.0/24").unwrap()),
            gateway: Some(Ipv4Addr::new(10, 6, 0, 1)),
            ..Default::default()
        };
        assert!(create(&store, &bad_gw).is_err());
        assert!(create(
            &store,
            &CreateNetwork { name: "e".into(), driver: Some("overlay".into()), ..Default::default() }
        )
        .is_err());
        remove(&store, "b").unwrap();
        assert!(config::load(&store.state_dir(), "b").is_err());
        assert!(remove(&store, "bridge").is_err());
        assert_eq!(prune(&store).unwrap(), ["app"]);
    }
}
