//! What can go wrong with a container's lifecycle, each variant naming the step.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match {0:?}; give more of the ID")]
    Ambiguous(String),
    #[error("invalid container name {0:?}, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("conflict: the container name {0:?} is already in use")]
    NameInUse(String),
    #[error("no command specified")]
    NoCommand,
    #[error("conflicting options: port publishing and the container type network mode")]
    PublishOnSharedNetwork,
    #[error("cannot link to {0}: it is not running on the default bridge network")]
    LinkTarget(String),
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    DeviceInfo {
        path: String,
        /// The error as Go words it (`no such file or directory`).
        reason: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a device node")]
    NotADevice(PathBuf),
    #[error("sysctl {0:?} is not allowed in the host's network namespace")]
    SysctlOnHostNetwork(String),
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    BindSourceMissing(PathBuf),
    #[error("invalid tmpfs {0:?}: the path must be absolute")]
    TmpfsPath(String),
    #[error("conflict: container {0} is not running")]
    NotRunning(String),
    #[error("conflict: container {0} is paused, unpause the container before exec")]
    ExecPaused(String),
    #[error("conflict: container {0} is already paused")]
    AlreadyPaused(String),
    #[error("conflict: container {0} is not paused")]
    NotPaused(String),
    #[error(
        "conflict: you cannot remove a running container {0}. Stop the container before attempting removal or force remove"
    )]
    RemoveRunning(String),
    #[error("conflict: cannot join network of a non running container: {0}")]
    JoinStopped(String),
    #[error("You cannot attach to a paused container, unpause it first")]
    AttachPaused,
    #[error("You cannot attach to a stopped container, start it first")]
    AttachStopped,
    #[error("Restart policy cannot be updated because AutoRemove is enabled for the container")]
    RestartWithAutoRemove,
    #[error("container {0} did not exit after SIGKILL")]
    KillTimeout(String),
    #[error("container {0} did not stop restarting")]
    RestartingTimeout(String),
    #[error("invalid signal {0}")]
    BadSignal(i32),
    #[error("the container's process has no valid pid ({0})")]
    BadPid(i32),
    /// The shim's own words for why the container did not start.
    #[error("{0}")]
    StartFailed(String),
    #[error("the container failed to start")]
    NoStartReport,
}
