//! Containers on disk and their lifecycle, one file per verb. Each container is a
//! directory under the store's `rbuild/containers/` with its configuration, the shim's
//! spec, its state, its writable layer and its log; there is no daemon: a running
//! container is watched by its shim.

pub mod attach;
mod create;
pub mod error;
pub mod exec;
mod kill;
mod mounts;
mod pause;
mod remove;
pub mod restart;
mod start;
pub mod state;
pub mod stats;
mod stop;
mod update;

pub use attach::{attach, AttachOptions, Attached};
pub use create::{create, CreateOptions, DeviceRequest, LogDriver, TmpfsSpec};
pub use kill::kill;
pub use pause::pause;
pub use remove::remove;
pub use restart::RestartPolicy;
pub use start::{start, start_attached, StartMode};
pub use stop::{stop, wait};
pub use update::{update, UpdateOptions};

use crate::error::{Result, RuntimeError};
use crate::sandbox::cgroups::Cgroup;
use crate::sandbox::rootfs;
use crate::sandbox::spec::{Device, Limits, Network, Port, Rlimit};
use error::ContainerError;
use rbuild_store::config::HealthConfig;
use rbuild_store::{Digest, Image, Store};
use serde::{Deserialize, Serialize};
use state::{State, Status};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub security_opt: Vec<String>,
    pub read_only: bool,
    pub init: bool,
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL (`--stop-timeout`; None: docker's 10).
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// The container's labels: the image's with `--label` applied (None for containers
    /// made before containers kept their own: the image's are shown).
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// The health check: the image's with the `--health-*` options applied.
    #[serde(default)]
    pub healthcheck: Option<HealthConfig>,
    /// The image's SHELL (for CMD-SHELL health checks).
    #[serde(default)]
    pub shell: Vec<String>,
    #[serde(default)]
    pub log_driver: LogDriver,
    /// docker's AttachStdin/AttachStdout/AttachStderr: the streams `run` attached.
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    /// docker's StdinOnce: the container's stdin closes when the attached client's does.
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub ulimits: Vec<Rlimit>,
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default)]
    pub shm_size: Option<u64>,
    #[serde(default)]
    pub devices: Vec<Device>,
}

/// A container: its directory and configuration.
#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub config: Config,
}

impl Container {
    /// The container whose directory is `dir`.
    pub fn open(dir: &Path) -> Result<Container> {
        let data =
            std::fs::read(dir.join("config.json")).map_err(|e| RuntimeError::io("reading the container config", e))?;
        let config =
            serde_json::from_slice(&data).map_err(|e| RuntimeError::json("reading the container config", e))?;
        Ok(Container { dir: dir.to_path_buf(), config })
    }

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
    /// cannot record the exit, so `ps` looks at the real pid; a restarting container's
    /// monitor is its shim).
    pub fn state(&self) -> State {
        let mut s = state::read(&self.state_path());
        let gone = match s.status {
            Status::Running | Status::Paused => !state::alive(s.pid, s.pid_start),
            Status::Restarting => !state::alive(s.shim_pid, s.shim_start),
            _ => false,
        };
        if gone {
            if s.status != Status::Restarting && s.exit_code == 0 {
                s.exit_code = 137;
            }
            s.status = Status::Exited;
            if s.finished_at.is_empty() {
                s.finished_at = state::now();
            }
        }
        s
    }

    /// Running, paused or between two runs of its restart policy (docker counts all three
    /// as running: they must be stopped before removal).
    pub fn running(&self) -> bool {
        matches!(self.state().status, Status::Running | Status::Paused | Status::Restarting)
    }

    /// The labels `inspect`, `ps` and filters show.
    pub fn labels(&self, store: &Store) -> BTreeMap<String, String> {
        if let Some(l) = &self.config.labels {
            return l.clone();
        }
        store
            .read_blob(&self.config.image_id)
            .ok()
            .and_then(|d| rbuild_store::ImageConfig::from_json(&d).ok())
            .map(|cfg| cfg.config.labels)
            .unwrap_or_default()
    }

    /// Seconds `stop` waits by default.
    pub fn stop_timeout(&self) -> i64 {
        self.config.stop_timeout.unwrap_or(10)
    }

    pub fn cgroup(&self) -> Cgroup {
        Cgroup::at(&format!("rbuild/{}", self.config.id))
    }

    /// The stored spec the shim starts the container from.
    pub fn spec(&self) -> Result<crate::sandbox::spec::Spec> {
        let data = std::fs::read(self.spec_path()).map_err(|e| RuntimeError::io("reading the container spec", e))?;
        serde_json::from_slice(&data).map_err(|e| RuntimeError::json("reading the container spec", e))
    }

    /// Writes the configuration back (after a rename).
    pub fn save_config(&self) -> Result<()> {
        let data = serde_json::to_vec_pretty(&self.config)
            .map_err(|e| RuntimeError::json("writing the container config", e))?;
        rbuild_store::write_atomic(&self.dir.join("config.json"), &data, rbuild_store::Durability::Atomic)
            .map_err(|e| RuntimeError::io("writing the container config", e))
    }
}

/// Every container in the store.
pub fn list(store: &Store) -> Result<Vec<Container>> {
    let dir = store.containers_dir();
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
        [] => Err(ContainerError::NoSuchContainer(spec.to_string()).into()),
        _ => Err(ContainerError::Ambiguous(spec.to_string()).into()),
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

pub(crate) fn random_id() -> String {
    let mut b = [0u8; 32];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b.iter().map(|x| format!("{x:02x}")).collect()
}
