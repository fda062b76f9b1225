//! Containers on disk and their lifecycle. Each container is a directory under the
//! store's `rbuild/containers/` with its configuration, the shim's spec, its state, its
//! writable layer and its log; there is no daemon: a detached container is watched by its
//! shim.

use crate::error::{Result, RuntimeError, Step};
use crate::spec::{Lifecycle, Limits, Mount, MountKind, Network, Port, Process, Spec};
use crate::state::{self, State, Status};
use crate::user::Accounts;
use crate::{caps, cgroup, net, rootfs, volume};
use rbuild_store::config::ImageConfig;
use rbuild_store::{Digest, Image, Store};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The PATH docker gives containers whose image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A mount as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountInfo {
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Source")]
    pub source: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
}

/// What a container was created with (`config.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: Digest,
    pub layers: Vec<Digest>,
    /// The container's own configuration (image config with the run options applied).
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub network: Network,
    pub ports: Vec<Port>,
    pub mounts: Vec<MountInfo>,
    /// Anonymous volumes this container created (removed with `rm -v` / `--rm`).
    pub anonymous_volumes: Vec<String>,
    pub limits: Limits,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub init: bool,
    pub stop_signal: String,
}

/// docker run's options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    pub args: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub volumes: Vec<String>,
    pub volumes_from: Vec<String>,
    pub tmpfs: Vec<String>,
    pub network: Network,
    pub publish: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    pub init: bool,
    pub limits: Limits,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub hostname: Option<String>,
    pub auto_remove: bool,
}

/// A container: its directory and configuration.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub config: Config,
}

fn random_id() -> String {
    let mut b = [0u8; 32];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b.iter().map(|x| format!("{x:02x}")).collect()
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

/// docker's `RAMInBytes`: `512`, `64k`, `128m`, `1g` (binary units).
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim().to_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| RuntimeError::Invalid(format!("invalid size: {s:?}")))?;
    if v < 0.0 {
        return Err(RuntimeError::Invalid(format!("invalid size: {s:?}")));
    }
    Ok((v * mult as f64) as u64)
}

/// docker's ReplaceOrAppendEnvValues.
fn merge_env(base: &mut Vec<String>, overrides: &[String]) {
    for o in overrides {
        let key = o.split_once('=').map_or(o.as_str(), |(k, _)| k);
        match base.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
            Some(e) => *e = o.clone(),
            None => base.push(o.clone()),
        }
    }
}

impl Container {
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn spec_path(&self) -> PathBuf {
        self.dir.join("spec.json")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log.json")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn id(&self) -> &str {
        &self.config.id
    }
    pub fn short_id(&self) -> &str {
        &self.config.id[..12]
    }

    /// The recorded state, corrected when the recorded process is gone (a killed shim
    /// cannot record the exit, so `ps` looks at the real pid).
    pub fn state(&self) -> State {
        let mut s = state::read(&self.state_path());
        if matches!(s.status, Status::Running | Status::Paused) && !state::alive(s.pid, s.pid_start) {
            s.status = Status::Exited;
            if s.exit_code == 0 {
                s.exit_code = 137;
            }
            if s.finished_at.is_empty() {
                s.finished_at = state::now();
            }
        }
        s
    }

    pub fn running(&self) -> bool {
        matches!(self.state().status, Status::Running | Status::Paused)
    }

    pub fn cgroup(&self) -> cgroup::Cgroup {
        cgroup::Cgroup::at(&format!("rbuild/{}", self.config.id))
    }

    /// Writes the configuration back (after a rename).
    pub fn save_config(&self) -> Result<()> {
        let data = serde_json::to_vec_pretty(&self.config).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let tmp = self.dir.join("config.json.tmp");
        std::fs::write(&tmp, data).step(|| "writing the container config".into())?;
        std::fs::rename(&tmp, self.dir.join("config.json")).step(|| "writing the container config".into())
    }
}

fn containers_dir(store: &Store) -> PathBuf {
    store.containers_dir()
}

/// Every container in the store.
pub fn list(store: &Store) -> Result<Vec<Container>> {
    let dir = containers_dir(store);
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(out) };
    for e in rd.flatten() {
        let p = e.path();
        if let Ok(data) = std::fs::read(p.join("config.json")) {
            if let Ok(config) = serde_json::from_slice::<Config>(&data) {
                out.push(Container { dir: p, config });
            }
        }
    }
    out.sort_by(|a, b| b.config.created.cmp(&a.config.created));
    Ok(out)
}

/// By name, full ID or unique ID prefix.
pub fn find(store: &Store, spec: &str) -> Result<Container> {
    let all = list(store)?;
    let spec = spec.trim_start_matches('/');
    if let Some(c) = all.iter().find(|c| c.config.name == spec || c.config.id == spec) {
        return Ok(c.clone());
    }
    let hits: Vec<&Container> = all.iter().filter(|c| !spec.is_empty() && c.config.id.starts_with(spec)).collect();
    match hits.as_slice() {
        [c] => Ok((*c).clone()),
        [] => Err(RuntimeError::NoSuchContainer(spec.to_string())),
        _ => Err(RuntimeError::Invalid(format!("multiple containers match {spec:?}; give more of the ID"))),
    }
}

/// The layer snapshots of an image, top first, with the init layer on top.
pub fn image_lowers(store: &Store, image: &Image) -> Result<Vec<PathBuf>> {
    let mut lowers = vec![rootfs::ensure_init_layer(&store.state_dir())?];
    let mut snaps = store.ensure_snapshots(image)?;
    snaps.reverse();
    lowers.extend(snaps);
    Ok(lowers)
}

fn host_file(p: &str) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// Creates a container from an image; nothing runs yet.
pub fn create(store: &Store, o: &CreateOptions) -> Result<Container> {
    let image = store.image(&o.image)?;
    let cfg: &ImageConfig = &image.config;
    let id = random_id();
    let name = match &o.name {
        Some(n) => {
            let valid = n.len() >= 2
                && n.as_bytes()[0].is_ascii_alphanumeric()
                && n.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
            if !valid {
                return Err(RuntimeError::Invalid(format!(
                    "invalid container name {n:?}, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            n.clone()
        }
        None => random_name(),
    };
    if list(store)?.iter().any(|c| c.config.name == name) {
        return Err(RuntimeError::Conflict(format!("the container name {name:?} is already in use")));
    }
    // Command: docker's combination of ENTRYPOINT, CMD, --entrypoint and arguments.
    let entrypoint = match &o.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => cfg.config.entrypoint.clone().unwrap_or_default(),
    };
    let cmd = if !o.args.is_empty() {
        o.args.clone()
    } else if o.entrypoint.is_some() {
        vec![]
    } else {
        cfg.config.cmd.clone().unwrap_or_default()
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(RuntimeError::Invalid("no command specified".into()));
    }
    // Environment: the image's, then --env-file and -e (NAME alone takes the host's value).
    let mut env = cfg.config.env.clone();
    let mut extra = Vec::new();
    for f in &o.env_files {
        let text = std::fs::read_to_string(f).step(|| format!("reading env file {}", f.display()))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            extra.push(line.to_string());
        }
    }
    extra.extend(o.env.iter().cloned());
    let extra: Vec<String> = extra
        .into_iter()
        .filter_map(|e| if e.contains('=') { Some(e) } else { std::env::var(&e).ok().map(|v| format!("{e}={v}")) })
        .collect();
    merge_env(&mut env, &extra);

    let dir = containers_dir(store).join(&id);
    std::fs::create_dir_all(dir.join("upper")).step(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("work")).step(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("rootfs")).step(|| format!("creating {}", dir.display()))?;
    let cleanup_on_err = DirGuard(Some(dir.clone()));

    let lowers = image_lowers(store, &image)?;
    // Volumes, binds, tmpfs, --volumes-from.
    let mut mounts = Vec::new();
    let mut infos = Vec::new();
    let mut anonymous = Vec::new();
    let volumes_dir = store.volumes_dir();
    let scratch = store.tmp_dir();
    let mut targets: Vec<String> = Vec::new();
    for v in &o.volumes {
        match volume::parse(v)? {
            volume::VolumeSpec::Bind { source, target, readonly } => {
                if !source.exists() {
                    std::fs::create_dir_all(&source).step(|| format!("creating bind source {}", source.display()))?;
                }
                infos.push(MountInfo {
                    typ: "bind".into(),
                    name: String::new(),
                    source: source.display().to_string(),
                    destination: target.clone(),
                    rw: !readonly,
                });
                mounts.push(Mount { target: target.clone(), kind: MountKind::Bind { source, readonly } });
                targets.push(target);
            }
            volume::VolumeSpec::Named { name, target, readonly } => {
                if volume::ensure(&volumes_dir, &name)? {
                    volume::fill_from_image(&scratch, &lowers, &target, &volume::data_dir(&volumes_dir, &name))?;
                }
                let src = volume::data_dir(&volumes_dir, &name);
                infos.push(MountInfo {
                    typ: "volume".into(),
                    name: name.clone(),
                    source: src.display().to_string(),
                    destination: target.clone(),
                    rw: !readonly,
                });
                mounts.push(Mount { target: target.clone(), kind: MountKind::Bind { source: src, readonly } });
                targets.push(target);
            }
            volume::VolumeSpec::Anonymous { target } => targets.push(format!("anon:{target}")),
        }
    }
    for from in &o.volumes_from {
        let (cname, ro) = match from.rsplit_once(':') {
            Some((c, "ro")) => (c, true),
            Some((c, "rw")) => (c, false),
            _ => (from.as_str(), false),
        };
        let other = find(store, cname)?;
        for m in &other.config.mounts {
            if m.typ == "tmpfs" || targets.contains(&m.destination) {
                continue;
            }
            let readonly = ro || !m.rw;
            infos.push(MountInfo { rw: !readonly, ..m.clone() });
            mounts.push(Mount {
                target: m.destination.clone(),
                kind: MountKind::Bind { source: PathBuf::from(&m.source), readonly },
            });
            targets.push(m.destination.clone());
        }
    }
    // The image's VOLUMEs and `-v /path` get anonymous volumes filled from the image.
    let mut anon_targets: Vec<String> = cfg.config.volumes.keys().cloned().collect();
    anon_targets.extend(targets.iter().filter_map(|t| t.strip_prefix("anon:").map(String::from)));
    for t in anon_targets {
        if targets.contains(&t) || infos.iter().any(|i| i.destination == t) {
            continue;
        }
        let vname = random_id();
        volume::ensure(&volumes_dir, &vname)?;
        let src = volume::data_dir(&volumes_dir, &vname);
        volume::fill_from_image(&scratch, &lowers, &t, &src)?;
        anonymous.push(vname.clone());
        infos.push(MountInfo {
            typ: "volume".into(),
            name: vname,
            source: src.display().to_string(),
            destination: t.clone(),
            rw: true,
        });
        mounts.push(Mount { target: t.clone(), kind: MountKind::Bind { source: src, readonly: false } });
        targets.push(t);
    }
    for t in &o.tmpfs {
        let (target, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !target.starts_with('/') {
            return Err(RuntimeError::Invalid(format!("invalid tmpfs {t:?}: the path must be absolute")));
        }
        let options = if opts.is_empty() { "mode=1777".to_string() } else { opts.to_string() };
        infos.push(MountInfo {
            typ: "tmpfs".into(),
            name: String::new(),
            source: String::new(),
            destination: target.into(),
            rw: true,
        });
        mounts.push(Mount { target: target.into(), kind: MountKind::Tmpfs { options } });
    }

    let hostname = o.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let hosts = match o.network {
        Network::Host => host_file("/etc/hosts"),
        Network::None => b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_vec(),
    };
    let hostname_file = match o.network {
        Network::Host => host_file("/etc/hostname"),
        Network::None => format!("{hostname}\n").into_bytes(),
    };
    std::fs::write(dir.join("hosts"), hosts).step(|| "writing hosts".into())?;
    std::fs::write(dir.join("hostname"), hostname_file).step(|| "writing hostname".into())?;
    std::fs::write(dir.join("resolv.conf"), host_file("/etc/resolv.conf")).step(|| "writing resolv.conf".into())?;

    let ports = o.publish.iter().map(|p| net::parse_publish(p)).collect::<Result<Vec<_>>>()?;
    if !ports.is_empty() && o.network == Network::Host {
        return Err(RuntimeError::Invalid("published ports are discarded when using host network mode".into()));
    }
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
        user: o.user.clone().unwrap_or_else(|| cfg.config.user.clone()),
        working_dir: o.workdir.clone().unwrap_or_else(|| cfg.config.working_dir.clone()),
        hostname,
        tty: o.tty,
        open_stdin: o.interactive,
        auto_remove: o.auto_remove,
        network: o.network,
        ports,
        mounts: infos,
        anonymous_volumes: anonymous,
        limits: o.limits.clone(),
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        read_only: o.read_only,
        init: o.init,
        stop_signal: cfg.config.stop_signal.clone(),
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
    let spec = build_spec(store, &c, lowers, mounts)?;
    crate::shim::write_spec(&spec, &c.spec_path())?;
    c.save_config()?;
    state::update(&c.state_path(), |s| *s = State::default())?;
    std::mem::forget(cleanup_on_err);
    Ok(c)
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

fn build_spec(_store: &Store, c: &Container, lowers: Vec<PathBuf>, mounts: Vec<Mount>) -> Result<Spec> {
    let cfg = &c.config;
    let accounts = Accounts::from_layers(&lowers);
    let user = accounts.resolve(&cfg.user)?;
    // docker's environment: PATH, HOSTNAME (and TERM for a tty), then the container's.
    let mut env = vec![format!("PATH={DEFAULT_PATH}"), format!("HOSTNAME={}", cfg.hostname)];
    if cfg.tty {
        env.push("TERM=xterm".into());
    }
    merge_env(&mut env, &cfg.env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", if user.home.is_empty() { "/" } else { &user.home }));
    }
    let mut args = cfg.entrypoint.clone();
    args.extend(cfg.cmd.iter().cloned());
    let cap_mask =
        caps::effective_set(&cfg.cap_add, &cfg.cap_drop).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    Ok(Spec {
        id: cfg.id.clone(),
        hostname: cfg.hostname.clone(),
        lowers,
        upper: Some((c.dir.join("upper"), c.dir.join("work"))),
        volatile_upper: cfg.auto_remove,
        rootfs: c.dir.join("rootfs"),
        readonly_rootfs: cfg.read_only,
        mounts,
        etc_files: vec![
            ("/etc/hosts".into(), c.dir.join("hosts")),
            ("/etc/hostname".into(), c.dir.join("hostname")),
            ("/etc/resolv.conf".into(), c.dir.join("resolv.conf")),
        ],
        process: Process {
            args,
            env,
            cwd: if cfg.working_dir.is_empty() { "/".into() } else { cfg.working_dir.clone() },
            uid: user.uid,
            gid: user.gid,
            groups: user.groups,
            tty: cfg.tty,
            stdin: cfg.open_stdin,
            init: cfg.init,
        },
        network: cfg.network,
        ports: cfg.ports.clone(),
        caps: cap_mask,
        seccomp: true,
        no_new_privs: true,
        cgroup: Some(format!("rbuild/{}", cfg.id)),
        limits: cfg.limits.clone(),
        lifecycle: Lifecycle {
            state_file: Some(c.state_path()),
            log_file: None,
            remove_dir: None,
            unpin: None,
            remove_volumes: vec![],
        },
    })
}

/// How `start` runs the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Replace this process with the shim: the terminal is the container's.
    Foreground,
    /// A detached shim monitors the container; output goes to the log.
    Detached,
}

fn lifecycle(store: &Store, c: &Container, mode: StartMode) -> Lifecycle {
    let mut l = Lifecycle { state_file: Some(c.state_path()), ..Default::default() };
    // A detached container's output goes to its log; in the foreground it goes straight to
    // the terminal (without a copy through the shim).
    if mode == StartMode::Detached {
        l.log_file = Some(c.log_path());
    }
    if c.config.auto_remove {
        l.remove_dir = Some(c.dir.clone());
        l.unpin = Some((store.root().to_path_buf(), format!("container-{}", c.config.id)));
        l.remove_volumes = c.config.anonymous_volumes.iter().map(|v| store.volumes_dir().join(v)).collect();
    }
    l
}

/// Starts a created (or stopped) container. In the foreground this does not return on
/// success: the process becomes the shim and exits with the container.
pub fn start(store: &Store, c: &Container, mode: StartMode) -> Result<()> {
    if c.running() {
        return Ok(());
    }
    let mut spec: Spec =
        serde_json::from_slice(&std::fs::read(c.spec_path()).step(|| "reading the container spec".into())?)
            .map_err(|e| RuntimeError::Invalid(format!("container spec: {e}")))?;
    // Snapshots may have been pruned while the container was stopped (they are pinned, but
    // a crash may have left them missing): make sure they exist.
    for d in &c.config.layers {
        store.ensure_snapshot(d)?;
    }
    spec.lifecycle = lifecycle(store, c, mode);
    crate::shim::write_spec(&spec, &c.spec_path())?;
    let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
    match mode {
        StartMode::Foreground => {
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new(exe).arg(crate::shim::SHIM_ARG).arg(c.spec_path()).exec();
            Err(RuntimeError::io("starting the shim", err))
        }
        StartMode::Detached => {
            let out = std::process::Command::new(exe)
                .arg(crate::shim::SHIM_ARG)
                .arg(c.spec_path())
                .arg("--detach")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .step(|| "starting the shim".into())?;
            let mut first = String::new();
            use std::io::BufRead;
            let mut r =
                std::io::BufReader::new(out.stdout.ok_or_else(|| RuntimeError::Invalid("no shim output".into()))?);
            let _ = r.read_line(&mut first);
            match first.trim() {
                "started" => Ok(()),
                other => Err(RuntimeError::Invalid(
                    other
                        .strip_prefix("error: ")
                        .unwrap_or(if other.is_empty() { "the container failed to start" } else { other })
                        .to_string(),
                )),
            }
        }
    }
}

/// Sends a signal to PID 1.
pub fn kill(c: &Container, sig: i32) -> Result<()> {
    let s = c.state();
    if !matches!(s.status, Status::Running | Status::Paused) {
        return Err(RuntimeError::Conflict(format!("container {} is not running", c.config.name)));
    }
    let pid = rustix::process::Pid::from_raw(s.pid).ok_or_else(|| RuntimeError::Invalid("bad pid".into()))?;
    let signal = rustix::process::Signal::from_named_raw(sig)
        .ok_or_else(|| RuntimeError::Invalid(format!("invalid signal {sig}")))?;
    rustix::process::kill_process(pid, signal).step(|| format!("signalling container {}", c.config.name))
}

/// Waits until the container is no longer running; returns its exit code.
pub fn wait(c: &Container, timeout: Option<std::time::Duration>) -> Option<i32> {
    let t = std::time::Instant::now();
    loop {
        let s = c.state();
        if !matches!(s.status, Status::Running | Status::Paused) {
            // Give the shim a moment to record the real exit code.
            let s2 = state::read(&c.state_path());
            if s2.status == Status::Exited || !c.dir.exists() {
                return Some(s2.exit_code);
            }
            if t.elapsed()
                > timeout.unwrap_or(std::time::Duration::MAX).min(std::time::Duration::from_secs(2))
                    + std::time::Duration::from_millis(200)
            {
                return Some(s.exit_code);
            }
        }
        if let Some(to) = timeout {
            if t.elapsed() >= to {
                return None;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The stop signal (the image's STOPSIGNAL or SIGTERM), then SIGKILL after `timeout`.
pub fn stop(c: &Container, timeout: std::time::Duration) -> Result<()> {
    if !c.running() {
        return Ok(());
    }
    if c.state().status == Status::Paused {
        let _ = c.cgroup().freeze(false);
    }
    let sig = if c.config.stop_signal.is_empty() {
        libc::SIGTERM
    } else {
        crate::signal::parse_signal(&c.config.stop_signal).unwrap_or(libc::SIGTERM)
    };
    let _ = kill(c, sig);
    if wait(c, Some(timeout)).is_none() {
        let _ = kill(c, libc::SIGKILL);
        wait(c, Some(std::time::Duration::from_secs(10)));
    }
    Ok(())
}

/// Removes a container (stopped, or any with `force`) and, with `volumes`, its anonymous
/// volumes.
pub fn remove(store: &Store, c: &Container, force: bool, volumes: bool) -> Result<()> {
    if c.running() {
        if !force {
            return Err(RuntimeError::Conflict(format!(
                "you cannot remove a running container {}. Stop the container before attempting removal or force remove",
                c.short_id()
            )));
        }
        let _ = c.cgroup().freeze(false);
        let _ = kill(c, libc::SIGKILL);
        wait(c, Some(std::time::Duration::from_secs(10)));
    }
    let cg = c.cgroup();
    if cg.exists() {
        cg.destroy()?;
    }
    rbuild_store::layer::remove_tree(&c.dir)?;
    store.unpin(&format!("container-{}", c.config.id))?;
    if volumes {
        for v in &c.config.anonymous_volumes {
            rbuild_store::layer::remove_tree(&store.volumes_dir().join(v))?;
        }
    }
    Ok(())
}

pub fn pause(c: &Container, paused: bool) -> Result<()> {
    let s = c.state();
    match (s.status, paused) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => {
            return Err(RuntimeError::Conflict(format!("container {} is already paused", c.config.name)))
        }
        (Status::Running, false) => {
            return Err(RuntimeError::Conflict(format!("container {} is not paused", c.config.name)))
        }
        _ => return Err(RuntimeError::Conflict(format!("container {} is not running", c.config.name))),
    }
    c.cgroup().freeze(paused)?;
    state::update(&c.state_path(), |s| s.status = if paused { Status::Paused } else { Status::Running })?;
    Ok(())
}
