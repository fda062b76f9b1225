//! `create`: a container from an image, with docker's rules for its command, environment,
//! volumes and mounts; nothing runs yet. The spec is made by the sandbox's one
//! [`SpecBuilder`].

use super::{find, image_lowers, list, random_id, Config, Container, MountInfo};
use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::spec::{
    Command, Lifecycle, Limits, Mount, MountKind, Network, Port, Proto, Root, SecurityOptions, SpecBuilder,
};
use crate::state::{self, State};
use crate::user::Accounts;
use crate::volume::{self, VolumeSpec};
use rbuild_store::Store;
use std::path::PathBuf;

/// A `--tmpfs PATH[:OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsSpec {
    pub target: String,
    /// Mount options (`size=64m,mode=1777`); empty: docker's `mode=1777`.
    pub options: String,
}

/// docker run's options, typed (the CLI parses docker's option strings).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    pub args: Vec<String>,
    pub entrypoint: Option<String>,
    /// The run's variables (`--env-file`, then `-e`), `NAME=VALUE` each.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub volumes: Vec<VolumeSpec>,
    pub volumes_from: Vec<String>,
    pub tmpfs: Vec<TmpfsSpec>,
    pub network: Network,
    /// `-p`: a host port 0 is chosen at random, an empty host IP means IPv4 and IPv6.
    pub publish: Vec<Port>,
    /// `-P`: every EXPOSEd port of the image on a random host port.
    pub publish_exposed: bool,
    /// `--add-host`: (name, address).
    pub extra_hosts: Vec<(String, String)>,
    /// `--link`: (container, alias).
    pub links: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub init: bool,
    pub limits: Limits,
    pub security: SecurityOptions,
    /// The `--security-opt` values as given (for inspect).
    pub security_opt: Vec<String>,
    pub read_only: bool,
    pub hostname: Option<String>,
    pub auto_remove: bool,
}

fn random_name() -> String {
    const ADJ: &[&str] = &[
        "brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky",
        "sharp", "tender", "vibrant", "wizardly", "zealous", "bold", "crisp", "dreamy",
    ];
    const NAMES: &[&str] = &[
        "turing",
        "hopper",
        "lovelace",
        "ritchie",
        "thompson",
        "knuth",
        "dijkstra",
        "liskov",
        "hamilton",
        "noether",
        "curie",
        "euler",
        "gauss",
        "shannon",
        "torvalds",
        "kernighan",
        "pike",
        "lamport",
        "backus",
        "mccarthy",
    ];
    let mut b = [0u8; 2];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    format!("{}_{}", ADJ[b[0] as usize % ADJ.len()], NAMES[b[1] as usize % NAMES.len()])
}

fn valid_name(n: &str) -> bool {
    n.len() >= 2
        && n.as_bytes()[0].is_ascii_alphanumeric()
        && n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Removes a directory unless defused (for half-created containers).
struct DirGuard(Option<PathBuf>);
impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = rbuild_store::layer::remove_tree(d);
        }
    }
}

/// The mounts of a new container and how `inspect` shows them.
struct Mounts {
    mounts: Vec<Mount>,
    infos: Vec<MountInfo>,
    anonymous: Vec<String>,
}

/// Creates a container from an image; nothing runs yet.
pub fn create(store: &Store, o: &CreateOptions) -> Result<Container> {
    let image = store.image(&o.image)?;
    let cfg = &image.config.config;
    let id = random_id();
    let name = match &o.name {
        Some(n) if !valid_name(n) => {
            return Err(RuntimeError::Invalid(format!(
                "invalid container name {n:?}, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )))
        }
        Some(n) => n.clone(),
        None => random_name(),
    };
    if list(store)?.iter().any(|c| c.config.name == name) {
        return Err(RuntimeError::Conflict(format!("the container name {name:?} is already in use")));
    }
    // Command: docker's combination of ENTRYPOINT, CMD, --entrypoint and arguments.
    let entrypoint = match &o.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => cfg.entrypoint.clone().unwrap_or_default(),
    };
    let cmd = if !o.args.is_empty() {
        o.args.clone()
    } else if o.entrypoint.is_some() {
        vec![]
    } else {
        cfg.cmd.clone().unwrap_or_default()
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(RuntimeError::Invalid("no command specified".into()));
    }
    let network = match &o.network {
        Network::Bridge(nets) => {
            for n in nets {
                crate::network::config::load(&store.state_dir(), &n.network)?;
            }
            o.network.clone()
        }
        Network::Container(other) => Network::Container(find(store, other)?.config.id),
        n => n.clone(),
    };
    let mut wanted = o.publish.clone();
    if o.publish_exposed {
        for p in cfg.exposed_ports.keys() {
            let (num, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
            let proto = if proto == "udp" { Proto::Udp } else { Proto::Tcp };
            if let Ok(container_port) = num.parse() {
                wanted.push(Port { host_ip: String::new(), host_port: 0, container_port, proto });
            }
        }
    }
    if !wanted.is_empty() && matches!(network, Network::Host | Network::Container(_)) {
        return Err(RuntimeError::Invalid(
            "conflicting options: port publishing and the container type network mode".into(),
        ));
    }
    let ports = if matches!(network, Network::None) { vec![] } else { crate::network::ports::reserve(&wanted)? };
    let links = o
        .links
        .iter()
        .map(|(name, alias)| {
            let other = find(store, name)?;
            let st = other.state();
            let ep =
                st.networks.iter().find(|e| e.network == crate::network::config::DEFAULT).filter(|_| other.running());
            let ep = ep.ok_or_else(|| {
                RuntimeError::Invalid(format!("cannot link to {name}: it is not running on the default bridge network"))
            })?;
            Ok((ep.ip.to_string(), alias.clone(), other.short_id().to_string(), other.config.name.clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    let etc_options = crate::sandbox::etc::EtcOptions {
        extra_hosts: o.extra_hosts.clone(),
        links,
        dns: o.dns.clone(),
        dns_search: o.dns_search.clone(),
    };
    let mut env = cfg.env.clone();
    crate::sandbox::spec::merge_env(&mut env, &o.env);

    let dir = store.containers_dir().join(&id);
    for d in ["upper", "work", "rootfs"] {
        std::fs::create_dir_all(dir.join(d)).step(|| format!("creating {}", dir.display()))?;
    }
    let cleanup_on_err = DirGuard(Some(dir.clone()));
    let lowers = image_lowers(store, &image)?;
    let m = mounts(store, o, &lowers, cfg.volumes.keys())?;
    let hostname = o.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    crate::sandbox::etc::write(&dir, &network, &hostname, &etc_options)?;

    let config = Config {
        id: id.clone(),
        name,
        created: state::now(),
        image: o.image.clone(),
        image_id: image.config_digest,
        layers: image.layers.iter().map(|l| l.diff_id).collect(),
        env,
        entrypoint,
        cmd,
        user: o.user.clone().unwrap_or_else(|| cfg.user.clone()),
        working_dir: o.workdir.clone().unwrap_or_else(|| cfg.working_dir.clone()),
        hostname,
        tty: o.tty,
        open_stdin: o.interactive,
        auto_remove: o.auto_remove,
        network,
        ports,
        mounts: m.infos,
        anonymous_volumes: m.anonymous,
        limits: o.limits.clone(),
        cap_add: o.security.cap_add.clone(),
        cap_drop: o.security.cap_drop.clone(),
        privileged: o.security.privileged,
        security_opt: o.security_opt.clone(),
        read_only: o.read_only,
        init: o.init,
        stop_signal: cfg.stop_signal.clone(),
    };
    let c = Container { dir: dir.clone(), config };
    // The image's layers stay while the container exists, even if the image is removed.
    let mut pins = c.config.layers.clone();
    pins.push(c.config.image_id);
    if c.config.auto_remove {
        store.pin_volatile(&format!("container-{id}"), &pins)?;
    } else {
        store.pin(&format!("container-{id}"), &pins)?;
    }
    let spec = spec(store, &c, lowers, m.mounts, &o.security)?;
    crate::shim::write_spec(&spec, &c.spec_path())?;
    c.save_config()?;
    state::update(&c.state_path(), |s| *s = State::default())?;
    std::mem::forget(cleanup_on_err);
    Ok(c)
}

/// Volumes, binds, tmpfs and `--volumes-from`; the image's VOLUMEs and `-v /path` get
/// anonymous volumes filled from the image.
fn mounts<'a>(
    store: &Store,
    o: &CreateOptions,
    lowers: &[PathBuf],
    image_volumes: impl Iterator<Item = &'a String>,
) -> Result<Mounts> {
    let mut m = Mounts { mounts: vec![], infos: vec![], anonymous: vec![] };
    let volumes_dir = store.volumes_dir();
    let scratch = store.tmp_dir();
    let mut targets: Vec<String> = Vec::new();
    let mut anon_targets: Vec<String> = Vec::new();
    let add = |m: &mut Mounts, typ: &str, name: String, source: PathBuf, target: &str, readonly: bool| {
        m.infos.push(MountInfo {
            typ: typ.into(),
            name,
            source: source.display().to_string(),
            destination: target.to_string(),
            rw: !readonly,
        });
        m.mounts.push(Mount { target: target.to_string(), kind: MountKind::Bind { source, readonly } });
    };
    for v in &o.volumes {
        match v {
            VolumeSpec::Bind { source, target, readonly } => {
                if !source.exists() {
                    std::fs::create_dir_all(source).step(|| format!("creating bind source {}", source.display()))?;
                }
                add(&mut m, "bind", String::new(), source.clone(), target, *readonly);
                targets.push(target.clone());
            }
            VolumeSpec::Named { name, target, readonly } => {
                let src = volume::data_dir(&volumes_dir, name);
                if volume::ensure(&volumes_dir, name)? {
                    volume::fill_from_image(&scratch, lowers, target, &src)?;
                }
                add(&mut m, "volume", name.clone(), src, target, *readonly);
                targets.push(target.clone());
            }
            VolumeSpec::Anonymous { target } => anon_targets.push(target.clone()),
        }
    }
    for from in &o.volumes_from {
        let (cname, ro) = match from.rsplit_once(':') {
            Some((c, "ro")) => (c, true),
            Some((c, "rw")) => (c, false),
            _ => (from.as_str(), false),
        };
        let other = find(store, cname)?;
        for i in &other.config.mounts {
            if i.typ == "tmpfs" || targets.contains(&i.destination) {
                continue;
            }
            let readonly = ro || !i.rw;
            m.infos.push(MountInfo { rw: !readonly, ..i.clone() });
            m.mounts.push(Mount {
                target: i.destination.clone(),
                kind: MountKind::Bind { source: PathBuf::from(&i.source), readonly },
            });
            targets.push(i.destination.clone());
        }
    }
    let image_targets: Vec<String> = image_volumes.cloned().collect();
    for t in image_targets.into_iter().chain(anon_targets) {
        if targets.contains(&t) {
            continue;
        }
        let vname = random_id();
        volume::ensure(&volumes_dir, &vname)?;
        let src = volume::data_dir(&volumes_dir, &vname);
        volume::fill_from_image(&scratch, lowers, &t, &src)?;
        m.anonymous.push(vname.clone());
        add(&mut m, "volume", vname, src, &t, false);
        targets.push(t);
    }
    for t in &o.tmpfs {
        if !t.target.starts_with('/') {
            return Err(RuntimeError::Invalid(format!("invalid tmpfs {:?}: the path must be absolute", t.target)));
        }
        let options = if t.options.is_empty() { "mode=1777".to_string() } else { t.options.clone() };
        m.infos.push(MountInfo {
            typ: "tmpfs".into(),
            name: String::new(),
            source: String::new(),
            destination: t.target.clone(),
            rw: true,
        });
        m.mounts.push(Mount { target: t.target.clone(), kind: MountKind::Tmpfs { options } });
    }
    Ok(m)
}

/// The container's sandbox, from its configuration.
fn spec(
    store: &Store,
    c: &Container,
    lowers: Vec<PathBuf>,
    mounts: Vec<Mount>,
    security: &SecurityOptions,
) -> Result<crate::sandbox::spec::Spec> {
    let cfg = &c.config;
    let user = Accounts::from_layers(&lowers).resolve(&cfg.user)?;
    let mut args = cfg.entrypoint.clone();
    args.extend(cfg.cmd.iter().cloned());
    let root = Root {
        lowers,
        upper: Some((c.dir.join("upper"), c.dir.join("work"))),
        volatile_upper: cfg.auto_remove,
        mountpoint: c.dir.join("rootfs"),
        readonly: cfg.read_only,
    };
    let cmd = Command {
        args,
        env: cfg.env.clone(),
        cwd: cfg.working_dir.clone(),
        tty: cfg.tty,
        stdin: cfg.open_stdin,
        init: cfg.init,
    };
    Ok(SpecBuilder::new(&cfg.id, &cfg.hostname, root)
        .name(&cfg.name)
        .process(&cmd, &user)
        .mounts(mounts)
        .etc_files(&c.dir)
        .network(cfg.network.clone(), cfg.ports.clone())
        .security(security)?
        .limits(cfg.limits.clone())
        .lifecycle(Lifecycle { state_file: Some(c.state_path()), ..Default::default() })
        .store(&store.state_dir())
        .build())
}
