//! `create`: a container from an image, with docker's rules for its command, environment,
//! volumes and mounts, labels, health check and restart policy; nothing runs yet. The
//! spec is made by the sandbox's one [`SpecBuilder`].

use super::error::ContainerError;
use super::mounts::{mounts, Mounts};
use super::{find, image_lowers, list, random_id, Config, Container, RestartPolicy};
use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::etc::EtcOptions;
use crate::sandbox::spec::{
    Command, Device, Extras, Lifecycle, Limits, Mount, Network, Port, Proto, Rlimit, Root, SecurityOptions, SpecBuilder,
};
use crate::state;
use crate::user::Accounts;
use crate::volume::VolumeSpec;
use rbuild_store::config::{ContainerConfig, HealthConfig};
use rbuild_store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A `--tmpfs PATH[:OPTIONS]` (or `--mount type=tmpfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsSpec {
    pub target: String,
    /// Mount options (`size=64m,mode=1777`); empty: docker's `mode=1777`.
    pub options: String,
}

/// Where a container's output is kept (`--log-driver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// docker's default: a JSON line per line of output, read by `logs`.
    #[default]
    JsonFile,
    /// Nothing is kept.
    None,
}

impl LogDriver {
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
        }
    }
}

/// A `--device HOST[:CONTAINER][:PERMISSIONS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    pub source: PathBuf,
    pub target: String,
    /// `rwm` or a subset.
    pub access: String,
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
    /// `--volumes-from`: (container, read-only).
    pub volumes_from: Vec<(String, bool)>,
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
    pub restart: RestartPolicy,
    /// `--label`s, applied over the image's.
    pub labels: BTreeMap<String, String>,
    /// `--stop-signal` (the image's STOPSIGNAL otherwise).
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// The `--health-*` options (`--no-healthcheck`: a test of `NONE`); merged with the
    /// image's HEALTHCHECK as docker merges them.
    pub healthcheck: Option<HealthConfig>,
    pub log_driver: LogDriver,
    /// The streams `run` attaches (docker's AttachStdin/Stdout/Stderr) and StdinOnce.
    pub attach: (bool, bool, bool),
    pub stdin_once: bool,
    pub ulimits: Vec<Rlimit>,
    /// `--sysctl`s (validated by the CLI against docker's allowed ones).
    pub sysctls: BTreeMap<String, String>,
    pub shm_size: Option<u64>,
    pub devices: Vec<DeviceRequest>,
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

fn container_name(store: &Store, o: &CreateOptions) -> Result<String> {
    let name = match &o.name {
        Some(n) if !valid_name(n) => return Err(ContainerError::InvalidName(n.clone()).into()),
        Some(n) => n.clone(),
        None => random_name(),
    };
    if list(store)?.iter().any(|c| c.config.name == name) {
        return Err(ContainerError::NameInUse(name).into());
    }
    Ok(name)
}

/// docker's combination of ENTRYPOINT, CMD, `--entrypoint` and the arguments.
fn command(cfg: &ContainerConfig, o: &CreateOptions) -> Result<(Vec<String>, Vec<String>)> {
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
        return Err(ContainerError::NoCommand.into());
    }
    Ok((entrypoint, cmd))
}

/// The network, with user networks checked and `container:NAME` resolved to an id.
fn network(store: &Store, o: &CreateOptions) -> Result<Network> {
    Ok(match &o.network {
        Network::Bridge(nets) => {
            for n in nets {
                crate::network::config::load(&store.state_dir(), &n.network)?;
            }
            o.network.clone()
        }
        Network::Container(other) => Network::Container(find(store, other)?.config.id),
        n => n.clone(),
    })
}

/// `-p` and `-P`, reserved now: a busy port is refused before anything exists.
fn ports(cfg: &ContainerConfig, o: &CreateOptions, network: &Network) -> Result<Vec<Port>> {
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
        return Err(ContainerError::PublishOnSharedNetwork.into());
    }
    if matches!(network, Network::None) {
        return Ok(vec![]);
    }
    crate::network::ports::reserve(&wanted)
}

/// `--link`s (running containers on the default bridge), `--add-host`, `--dns*`.
fn etc_options(store: &Store, o: &CreateOptions) -> Result<EtcOptions> {
    let links = o
        .links
        .iter()
        .map(|(name, alias)| {
            let other = find(store, name)?;
            let st = other.state();
            let ep =
                st.networks.iter().find(|e| e.network == crate::network::config::DEFAULT).filter(|_| other.running());
            let ep = ep.ok_or_else(|| RuntimeError::from(ContainerError::LinkTarget(name.clone())))?;
            Ok((ep.ip.to_string(), alias.clone(), other.short_id().to_string(), other.config.name.clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EtcOptions { extra_hosts: o.extra_hosts.clone(), links, dns: o.dns.clone(), dns_search: o.dns_search.clone() })
}

/// docker's merge of the run's health check with the image's: no options, the image's;
/// otherwise what the options leave empty comes from the image.
fn healthcheck(image: Option<&HealthConfig>, run: Option<&HealthConfig>) -> Option<HealthConfig> {
    let (Some(run), Some(image)) = (run, image) else { return run.or(image).cloned() };
    let mut h = run.clone();
    if h.test.is_empty() {
        h.test = image.test.clone();
    }
    for (mine, theirs) in [
        (&mut h.interval, image.interval),
        (&mut h.timeout, image.timeout),
        (&mut h.start_period, image.start_period),
        (&mut h.retries, image.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
    Some(h)
}

/// `--device`s: the host's nodes (every node under a directory), each with its cgroup rule.
fn devices(requests: &[DeviceRequest]) -> Result<Vec<Device>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    for r in requests {
        let bad = |e: std::io::Error| {
            // Go's words for the error: `no such file or directory`.
            let text = e.to_string();
            let reason = text.split(" (os error").next().unwrap_or(&text).to_lowercase();
            ContainerError::DeviceInfo { path: r.source.display().to_string(), reason, source: e }
        };
        let m = std::fs::metadata(&r.source).map_err(bad)?;
        let nodes: Vec<(PathBuf, String, std::fs::Metadata)> = if m.is_dir() {
            crate::sandbox::devices::host_devices(&r.source)
                .into_iter()
                .filter_map(|d| {
                    let src = r.source.join(&d.path);
                    let md = std::fs::metadata(&src).ok()?;
                    Some((src, format!("{}/{}", r.target.trim_end_matches('/'), d.path.display()), md))
                })
                .collect()
        } else {
            vec![(r.source.clone(), r.target.clone(), m)]
        };
        for (source, target, md) in nodes {
            let ft = md.file_type();
            if !ft.is_char_device() && !ft.is_block_device() {
                return Err(ContainerError::NotADevice(source).into());
            }
            out.push(Device {
                kind: if ft.is_block_device() { 'b' } else { 'c' },
                major: rustix::fs::major(md.rdev()),
                minor: rustix::fs::minor(md.rdev()),
                source,
                target,
                access: r.access.clone(),
            });
        }
    }
    Ok(out)
}

/// Creates a container from an image; nothing runs yet.
pub fn create(store: &Store, o: &CreateOptions) -> Result<Container> {
    let image = store.image(&o.image)?;
    let cfg = &image.config.config;
    let id = random_id();
    let name = container_name(store, o)?;
    let (entrypoint, cmd) = command(cfg, o)?;
    let network = network(store, o)?;
    if !network.is_private() {
        if let Some(k) = o.sysctls.keys().find(|k| k.starts_with("net.")) {
            return Err(ContainerError::SysctlOnHostNetwork(k.clone()).into());
        }
    }
    let devices = devices(&o.devices)?;
    let ports = ports(cfg, o, &network)?;
    let etc_options = etc_options(store, o)?;
    let mut env = cfg.env.clone();
    crate::sandbox::spec::merge_env(&mut env, &o.env);

    let dir = store.containers_dir().join(&id);
    for d in ["upper", "work", "rootfs"] {
        std::fs::create_dir_all(dir.join(d)).step(|| format!("creating {}", dir.display()))?;
    }
    let cleanup_on_err = DirGuard(Some(dir.clone()));
    let lowers = image_lowers(store, &image)?;
    let m: Mounts = mounts(store, o, &lowers, cfg.volumes.keys())?;
    let hostname = o.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    crate::sandbox::etc::write(&dir, &network, &hostname, &etc_options)?;
    let mut labels = cfg.labels.clone();
    labels.extend(o.labels.iter().map(|(k, v)| (k.clone(), v.clone())));

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
        stop_signal: o.stop_signal.clone().unwrap_or_else(|| cfg.stop_signal.clone()),
        stop_timeout: o.stop_timeout,
        restart_policy: o.restart,
        labels: Some(labels),
        healthcheck: healthcheck(cfg.healthcheck.as_ref(), o.healthcheck.as_ref()),
        shell: cfg.shell.clone(),
        log_driver: o.log_driver,
        attach_stdin: o.attach.0,
        attach_stdout: o.attach.1,
        attach_stderr: o.attach.2,
        stdin_once: o.stdin_once,
        ulimits: o.ulimits.clone(),
        sysctls: o.sysctls.clone(),
        shm_size: o.shm_size,
        devices,
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
    state::reset(&c.state_path())?;
    std::mem::forget(cleanup_on_err);
    Ok(c)
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
        .extras(&Extras {
            rlimits: cfg.ulimits.clone(),
            sysctls: cfg.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            shm_size: cfg.shm_size,
            devices: cfg.devices.clone(),
        })
        .lifecycle(Lifecycle { state_file: Some(c.state_path()), ..Default::default() })
        .store(&store.state_dir())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_options_merge_with_the_images_as_docker_merges_them() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "probe".into()],
            interval: 5,
            timeout: 6,
            retries: 2,
            ..Default::default()
        };
        assert_eq!(healthcheck(Some(&image), None), Some(image.clone()));
        let run = HealthConfig { interval: 9, ..Default::default() };
        let m = healthcheck(Some(&image), Some(&run)).unwrap();
        assert_eq!((m.test[1].as_str(), m.interval, m.timeout, m.retries), ("probe", 9, 6, 2));
        let none = HealthConfig { test: vec!["NONE".into()], ..Default::default() };
        assert_eq!(healthcheck(Some(&image), Some(&none)).unwrap().test, ["NONE"]);
        assert_eq!(healthcheck(None, None), None);
    }
}
