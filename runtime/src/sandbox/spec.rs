//! What a sandboxed process needs — its root filesystem, mounts, process, identity,
//! network, security and cgroup — and the one [`SpecBuilder`] that makes it for a build
//! step, a container and (through [`Spec::exec_process`]) an exec, so docker's defaults
//! cannot drift between them. The shim reads the spec from a file.

use super::capabilities;
use crate::error::Result;
use crate::user::ExecUser;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The PATH docker gives processes whose image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the sandbox's network namespace is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// A new network namespace with only `lo`.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// A new network namespace attached to rbuild's networks: a veth on each network's
    /// bridge in rbuild's own network namespace ([`crate::network`]).
    Bridge(Vec<NetRequest>),
    /// Another container's network namespace (`--network container:NAME`; its id here).
    Container(String),
}

/// One network a sandbox joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRequest {
    pub network: String,
    /// More names for the sandbox on this network (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The bridge port reaches only the gateway (build steps: they cannot reach each other).
    #[serde(default)]
    pub isolated: bool,
    /// A fixed address (`--ip`).
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
}

impl NetRequest {
    pub fn on(network: &str) -> NetRequest {
        NetRequest { network: network.to_string(), aliases: vec![], isolated: false, ip: None }
    }
}

impl Network {
    /// The networks' names as docker shows them (`host`, `none`, or each network).
    pub fn names(&self) -> Vec<String> {
        match self {
            Network::None => vec!["none".into()],
            Network::Host => vec!["host".into()],
            Network::Bridge(reqs) => reqs.iter().map(|r| r.network.clone()).collect(),
            Network::Container(id) => vec![format!("container:{id}")],
        }
    }

    /// The default network of `run` (docker's `bridge`).
    pub fn bridge() -> Network {
        Network::Bridge(vec![NetRequest::on(crate::network::config::DEFAULT)])
    }

    /// The default network of a RUN step: its own namespace on the default bridge, with
    /// outbound access, unable to reach other steps.
    pub fn build_step() -> Network {
        Network::Bridge(vec![NetRequest { isolated: true, ..NetRequest::on(crate::network::config::DEFAULT) }])
    }

    /// A namespace of the sandbox's own (docker then sets its network sysctls).
    pub fn is_private(&self) -> bool {
        matches!(self, Network::None | Network::Bridge(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountKind {
    /// A bind mount of a host path (file or directory).
    Bind { source: PathBuf, readonly: bool },
    /// A tmpfs with mount options (`size=…`, `mode=…`).
    Tmpfs { options: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub target: String,
    #[serde(flatten)]
    pub kind: MountKind,
}

/// Transport of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// A published port: `host_ip:host_port` on the host to `container_port` inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default)]
    pub proto: Proto,
}

/// Limits applied through the sandbox's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<i64>,
    pub cpus: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// argv; `args[0]` is looked up in the process's PATH when it has no `/`.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Allocate a pseudo-terminal.
    pub tty: bool,
    /// Keep standard input (otherwise it is /dev/null).
    pub stdin: bool,
    /// Run a small init as PID 1 that reaps zombies and forwards signals.
    pub init: bool,
    /// Resource limits set before the program starts (`--ulimit`).
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
}

/// A resource limit (`--ulimit nofile=1024:2048`): the resource's name as `ulimit` and
/// docker spell it (`nofile`, `nproc`, `core`, …), soft and hard values (-1: unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A host device given to the sandbox (`--device`): bound at `target` in /dev, allowed
/// in its device cgroup with `access` (`rwm` or a subset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub source: PathBuf,
    pub target: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    pub access: String,
}

/// Where the shim reports and how it cleans up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The container's state file, updated at start and exit.
    pub state_file: Option<PathBuf>,
    /// Capture stdout/stderr into this docker json-file log instead of passing them on.
    pub log_file: Option<PathBuf>,
    /// Remove this directory (the container's) after exit (`--rm`).
    pub remove_dir: Option<PathBuf>,
    /// Store pin to drop after exit (with `remove_dir`).
    pub unpin: Option<(PathBuf, String)>,
    /// Anonymous volume directories to remove after exit (`--rm`).
    pub remove_volumes: Vec<PathBuf>,
    /// The store's temp dir: a `--rm` container run in the foreground is moved there (one
    /// rename) as its process exits, so that it is gone when `run` returns, and its files
    /// and cgroup are removed from there by a process of their own after (see
    /// [`crate::shim::REMOVER_ARG`]). None: removed in place before `run` returns.
    #[serde(default)]
    pub set_aside_in: Option<PathBuf>,
}

impl Lifecycle {
    /// The container's directory (its configuration and `attach.sock`), for a container.
    pub fn container_dir(&self) -> Option<&Path> {
        self.state_file.as_deref().and_then(Path::parent)
    }
}

/// The root filesystem: an overlay of read-only layers and an optional writable one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// Read-only layers, top first (the init layer, then the image's, newest first).
    pub lowers: Vec<PathBuf>,
    /// The writable layer and overlay's work dir (same filesystem). None: read-only root
    /// without an upper layer.
    pub upper: Option<(PathBuf, PathBuf)>,
    /// The upper layer is thrown away or committed right after the run (a build step, a
    /// `--rm` container): overlayfs's `volatile`, so unmounting it does not sync the
    /// whole filesystem underneath.
    pub volatile_upper: bool,
    /// Where the root is assembled before pivot_root (an empty directory).
    pub mountpoint: PathBuf,
    pub readonly: bool,
}

/// What the sandbox may do: docker's defaults unless asked otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Capability set (bitmask): bounding, permitted and effective.
    pub caps: u64,
    /// `--security-opt no-new-privileges`; docker leaves it off by default (setuid
    /// binaries, file capabilities and sudo work).
    pub no_new_privs: bool,
    /// docker's default seccomp profile (off for `--privileged` and `seccomp=unconfined`).
    pub seccomp: bool,
    /// `--privileged`: no masked or read-only paths, a writable /sys, the host's devices.
    pub privileged: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            caps: capabilities::mask_of(capabilities::DOCKER_DEFAULT),
            no_new_privs: false,
            seccomp: true,
            privileged: false,
        }
    }
}

/// The security options of `run`, `create`, `exec` and `build`, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges[=true]`
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=unconfined`
    pub seccomp_unconfined: bool,
}

impl SecurityOptions {
    fn resolve(&self) -> Result<Security> {
        let caps = if self.privileged {
            capabilities::all_held()
        } else {
            capabilities::effective_set(&self.cap_add, &self.cap_drop).map_err(super::error::SandboxError::from)?
        };
        Ok(Security {
            caps,
            no_new_privs: self.no_new_privileges,
            seccomp: !self.privileged && !self.seccomp_unconfined,
            privileged: self.privileged,
        })
    }
}

/// The sandbox's cgroup (every sandbox has one: devices, limits, cleanup).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupSpec {
    /// Relative to each hierarchy's root: `rbuild/<id>`.
    pub path: String,
    pub limits: Limits,
    /// Device rules allowed besides docker's defaults (`--device`), v1 `devices.allow` lines.
    #[serde(default)]
    pub device_rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub id: String,
    /// The container's name (empty for a build step): its name on user networks.
    #[serde(default)]
    pub name: String,
    pub hostname: String,
    pub root: Root,
    pub mounts: Vec<Mount>,
    /// Files bind-mounted over /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(String, PathBuf)>,
    pub process: Process,
    pub network: Network,
    pub ports: Vec<Port>,
    pub security: Security,
    /// Namespaced sysctls set inside the sandbox.
    pub sysctls: Vec<(String, String)>,
    pub cgroup: CgroupSpec,
    pub lifecycle: Lifecycle,
    /// The store's state directory (network definitions), for the shim.
    #[serde(default)]
    pub store_state: PathBuf,
    /// The network namespace to join instead of making one (`--network container:`), set
    /// when the container starts.
    #[serde(default)]
    pub join_netns: Option<PathBuf>,
    /// The namespace to join is new, with `lo` up and `sysctls` set: a build step's shim
    /// made it ahead of the step (never stored: it holds for the shim's child only).
    #[serde(skip)]
    pub netns_ready: bool,
    /// The size of /dev/shm in bytes (docker's default 64 MiB).
    #[serde(default)]
    pub shm_size: Option<u64>,
    /// Host devices bound into /dev (`--device`).
    #[serde(default)]
    pub devices: Vec<Device>,
}

/// docker's ReplaceOrAppendEnvValues: each override replaces the variable of the same
/// name, or is appended.
pub fn merge_env(base: &mut Vec<String>, overrides: &[String]) {
    fn key(e: &str) -> &str {
        e.split_once('=').map_or(e, |(k, _)| k)
    }
    for o in overrides {
        match base.iter_mut().find(|e| key(e) == key(o)) {
            Some(e) => *e = o.clone(),
            None => base.push(o.clone()),
        }
    }
}

/// A process's environment as docker makes it: PATH, HOSTNAME (and TERM on a tty), then
/// each layer of variables merged in order (the image's and the run's, then an exec's),
/// then HOME from the user's passwd entry when nothing set it (as runc does).
pub fn process_env(hostname: &str, tty: bool, layers: &[&[String]], home: &str) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}"), format!("HOSTNAME={hostname}")];
    if tty {
        env.push("TERM=xterm".into());
    }
    for l in layers {
        merge_env(&mut env, l);
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", if home.is_empty() { "/" } else { home }));
    }
    env
}

/// docker's default sysctls for a sandbox with a network namespace of its own: ping
/// without privileges, and ports below 1024 without CAP_NET_BIND_SERVICE.
pub fn default_sysctls(network: &Network) -> Vec<(String, String)> {
    if !network.is_private() {
        return vec![];
    }
    vec![
        ("net.ipv4.ping_group_range".into(), "0 2147483647".into()),
        ("net.ipv4.ip_unprivileged_port_start".into(), "0".into()),
    ]
}

/// The command a sandbox runs and the environment the image and the run give it.
#[derive(Debug, Clone, Default)]
pub struct Command {
    pub args: Vec<String>,
    /// The image's (or build step's) variables with the run's applied.
    pub env: Vec<String>,
    pub cwd: String,
    pub tty: bool,
    pub stdin: bool,
    pub init: bool,
}

/// The cgroup of sandbox `id`, relative to each hierarchy's root.
pub fn cgroup_path(id: &str) -> String {
    format!("rbuild/{id}")
}

/// Makes the [`Spec`] of every sandbox: build steps, containers and (from a stored spec)
/// execs.
#[derive(Debug)]
pub struct SpecBuilder {
    spec: Spec,
}

impl SpecBuilder {
    /// A sandbox `id` (its cgroup is `rbuild/<id>`) on `root`, with docker's default
    /// security, no mounts and only `lo`.
    pub fn new(id: &str, hostname: &str, root: Root) -> SpecBuilder {
        SpecBuilder {
            spec: Spec {
                id: id.to_string(),
                name: String::new(),
                hostname: hostname.to_string(),
                root,
                mounts: vec![],
                etc_files: vec![],
                process: Process {
                    args: vec![],
                    env: vec![],
                    cwd: "/".into(),
                    uid: 0,
                    gid: 0,
                    groups: vec![],
                    tty: false,
                    stdin: false,
                    init: false,
                    rlimits: vec![],
                },
                network: Network::None,
                ports: vec![],
                security: Security::default(),
                sysctls: default_sysctls(&Network::None),
                cgroup: CgroupSpec { path: cgroup_path(id), limits: Limits::default(), device_rules: vec![] },
                lifecycle: Lifecycle::default(),
                store_state: PathBuf::new(),
                join_netns: None,
                netns_ready: false,
                shm_size: None,
                devices: vec![],
            },
        }
    }

    /// The process: the command, run as `user` with docker's environment.
    pub fn process(mut self, cmd: &Command, user: &ExecUser) -> SpecBuilder {
        let p = &mut self.spec.process;
        p.args = cmd.args.clone();
        p.env = process_env(&self.spec.hostname, cmd.tty, &[&cmd.env], &user.home);
        p.cwd = if cmd.cwd.is_empty() { "/".into() } else { cmd.cwd.clone() };
        p.uid = user.uid;
        p.gid = user.gid;
        p.groups = user.groups.clone();
        p.tty = cmd.tty;
        p.stdin = cmd.stdin;
        p.init = cmd.init;
        self
    }

    pub fn mounts(mut self, mounts: Vec<Mount>) -> SpecBuilder {
        self.spec.mounts = mounts;
        self
    }

    /// /etc/hosts, /etc/hostname and /etc/resolv.conf from the files [`super::etc::write`]
    /// made in `dir`.
    pub fn etc_files(mut self, dir: &Path) -> SpecBuilder {
        self.spec.etc_files = super::etc::FILES.iter().map(|f| (format!("/etc/{f}"), dir.join(f))).collect();
        self
    }

    pub fn network(mut self, network: Network, ports: Vec<Port>) -> SpecBuilder {
        self.spec.sysctls = default_sysctls(&network);
        self.spec.network = network;
        self.spec.ports = ports;
        self
    }

    pub fn security(mut self, o: &SecurityOptions) -> Result<SpecBuilder> {
        self.spec.security = o.resolve()?;
        Ok(self)
    }

    pub fn limits(mut self, limits: Limits) -> SpecBuilder {
        self.spec.cgroup.limits = limits;
        self
    }

    /// The container's name.
    pub fn name(mut self, name: &str) -> SpecBuilder {
        self.spec.name = name.to_string();
        self
    }

    /// The store whose networks the sandbox joins.
    pub fn store(mut self, state_dir: &Path) -> SpecBuilder {
        self.spec.store_state = state_dir.to_path_buf();
        self
    }

    /// What a container adds to the sandbox: `--ulimit`, `--sysctl` (after docker's
    /// defaults), `--shm-size` and `--device`.
    pub fn extras(mut self, e: &Extras) -> SpecBuilder {
        self.spec.process.rlimits = e.rlimits.clone();
        self.spec.sysctls.extend(e.sysctls.iter().cloned());
        self.spec.shm_size = e.shm_size;
        self.spec.cgroup.device_rules =
            e.devices.iter().map(|d| format!("{} {}:{} {}", d.kind, d.major, d.minor, d.access)).collect();
        self.spec.devices = e.devices.clone();
        self
    }

    pub fn lifecycle(mut self, l: Lifecycle) -> SpecBuilder {
        self.spec.lifecycle = l;
        self
    }

    pub fn build(self) -> Spec {
        self.spec
    }
}

impl Spec {
    /// The process and security of an `exec` in this sandbox: the container's variables
    /// with the exec's applied, TERM for the exec's own tty, HOME of the exec's user; with
    /// `privileged`, all capabilities and no seccomp, as `docker exec --privileged`.
    pub fn exec_process(&self, config_env: &[String], o: &ExecProcess, user: &ExecUser) -> (Process, Security) {
        let process = Process {
            args: o.args.clone(),
            env: process_env(&self.hostname, o.tty, &[config_env, &o.env], &user.home),
            cwd: o.cwd.clone().unwrap_or_else(|| self.process.cwd.clone()),
            uid: user.uid,
            gid: user.gid,
            groups: user.groups.clone(),
            tty: o.tty,
            stdin: o.stdin,
            init: false,
            rlimits: self.process.rlimits.clone(),
        };
        let mut security = self.security.clone();
        if o.privileged {
            security.caps = capabilities::all_held();
            security.seccomp = false;
        }
        (process, security)
    }
}

/// A container's additions to its sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    pub rlimits: Vec<Rlimit>,
    /// Namespaced sysctls (docker's allowed ones; `net.*` only with a network namespace
    /// of the sandbox's own).
    pub sysctls: Vec<(String, String)>,
    pub shm_size: Option<u64>,
    pub devices: Vec<Device>,
}

/// What an `exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    pub privileged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(home: &str) -> ExecUser {
        ExecUser { uid: 1000, gid: 1000, groups: vec![1000, 27], home: home.into() }
    }

    fn root() -> Root {
        Root { lowers: vec![], upper: None, volatile_upper: false, mountpoint: "/r".into(), readonly: false }
    }

    #[test]
    fn environment_as_docker_makes_it() {
        let env =
            process_env("abc", true, &[&["PATH=/x".into(), "A=1".into()], &["A=2".into(), "B".into()]], "/home/u");
        assert_eq!(env, ["PATH=/x", "HOSTNAME=abc", "TERM=xterm", "A=2", "B", "HOME=/home/u"]);
        // HOME set by the image wins; a user without a home gets /.
        assert_eq!(process_env("h", false, &[&["HOME=/srv".into()]], "/root").last().unwrap(), "HOME=/srv");
        assert_eq!(process_env("h", false, &[], "").last().unwrap(), "HOME=/");
    }

    #[test]
    fn every_sandbox_has_a_cgroup_and_docker_defaults() {
        let cmd = Command { args: vec!["true".into()], ..Default::default() };
        let s = SpecBuilder::new("0123456789abcdef", "0123456789ab", root()).process(&cmd, &user("/home/u")).build();
        assert_eq!(s.cgroup.path, "rbuild/0123456789abcdef");
        assert_eq!(s.security.caps, 0xa80425fb);
        assert!(!s.security.no_new_privs, "docker does not set no_new_privs unless asked");
        assert!(s.security.seccomp && !s.security.privileged);
        assert_eq!(s.sysctls[0], ("net.ipv4.ping_group_range".into(), "0 2147483647".into()));
        assert_eq!((s.process.uid, s.process.gid, s.process.cwd.as_str()), (1000, 1000, "/"));
        let host = SpecBuilder::new("x", "x", root()).network(Network::Host, vec![]).build();
        assert!(host.sysctls.is_empty(), "no network sysctls in the host's namespace");
    }

    #[test]
    fn security_options_resolve_as_dockers() {
        let o = SecurityOptions { no_new_privileges: true, seccomp_unconfined: true, ..Default::default() };
        let s = SpecBuilder::new("x", "x", root()).security(&o).unwrap().build();
        assert!(s.security.no_new_privs && !s.security.seccomp);
        let p = SecurityOptions { privileged: true, ..Default::default() };
        let s = SpecBuilder::new("x", "x", root()).security(&p).unwrap().build();
        assert_eq!(s.security.caps, capabilities::all_held());
        assert!(s.security.privileged && !s.security.seccomp);
        let bad = SecurityOptions { cap_add: vec!["NOPE".into()], ..Default::default() };
        assert!(SpecBuilder::new("x", "x", root()).security(&bad).is_err());
    }

    #[test]
    fn exec_gets_the_containers_environment_and_its_own_tty_and_user() {
        let cmd = Command { args: vec!["sh".into()], env: vec!["A=1".into()], tty: true, ..Default::default() };
        let s = SpecBuilder::new("x", "host1", root()).process(&cmd, &user("/root")).build();
        let o = ExecProcess { args: vec!["id".into()], env: vec!["B=2".into()], ..Default::default() };
        let (p, sec) = s.exec_process(&["A=1".into()], &o, &user("/home/u"));
        assert_eq!(
            p.env,
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=host1",
                "A=1",
                "B=2",
                "HOME=/home/u"
            ]
        );
        assert_eq!(p.cwd, "/");
        assert_eq!(sec, s.security);
        let (_, sec) = s.exec_process(&[], &ExecProcess { privileged: true, ..o }, &user("/"));
        assert_eq!((sec.caps, sec.seccomp), (capabilities::all_held(), false));
    }
}
