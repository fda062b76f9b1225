//! What a sandboxed process needs, written by the caller (CLI or builder) and read by the
//! shim: the rootfs layers, mounts, process, identity, limits and isolation settings.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// A new network namespace with only `lo`.
    #[default]
    None,
    /// The host's network namespace.
    Host,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// Limits applied through the container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<i64>,
    pub cpus: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// argv; `args[0]` is looked up in the container's PATH when it has no `/`.
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub id: String,
    pub hostname: String,
    /// Read-only layers, top first (the init layer, then the image's, newest first).
    pub lowers: Vec<PathBuf>,
    /// The writable layer and overlay's work dir (same filesystem). None: read-only root
    /// without an upper layer.
    pub upper: Option<(PathBuf, PathBuf)>,
    /// The upper layer is thrown away or committed right after the run (a build step, a
    /// `--rm` container): overlayfs's `volatile`, so unmounting it does not sync the
    /// whole filesystem underneath.
    #[serde(default)]
    pub volatile_upper: bool,
    /// Where the root is assembled before pivot_root (an empty directory).
    pub rootfs: PathBuf,
    pub readonly_rootfs: bool,
    pub mounts: Vec<Mount>,
    /// Files bind-mounted over /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc_files: Vec<(String, PathBuf)>,
    pub process: Process,
    pub network: Network,
    pub ports: Vec<Port>,
    /// Capability set (bitmask).
    pub caps: u64,
    pub seccomp: bool,
    pub no_new_privs: bool,
    /// The cgroup, relative to each hierarchy's root (`rbuild/<id>`); None: no cgroup.
    pub cgroup: Option<String>,
    pub limits: Limits,
    pub lifecycle: Lifecycle,
}
