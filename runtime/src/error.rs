//! The runtime's errors: one enum per module (containers, sandbox, networks, volumes,
//! files), each variant naming the step that failed and carrying its source; this enum
//! gathers them for the crate's API, with I/O failures named by their step.

use std::io;

pub use crate::container::error::ContainerError;
pub use crate::fsops::CopyError;
pub use crate::network::error::NetworkError;
pub use crate::sandbox::error::SandboxError;
pub use crate::volume::VolumeError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{step}: {source}")]
    Io {
        step: String,
        #[source]
        source: io::Error,
    },
    /// The program of an `exec` (or of a container's start) could not run; `code` is
    /// docker's exit code for it (126 cannot execute, 127 not found).
    #[error("{message}")]
    ExecFailed { code: i32, message: String },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error("{what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    #[error(transparent)]
    Store(#[from] rbuild_store::StoreError),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    pub fn io(step: impl Into<String>, source: impl Into<io::Error>) -> Self {
        RuntimeError::Io { step: step.into(), source: source.into() }
    }

    /// A JSON document of `what` that could not be read or written.
    pub fn json(what: &'static str, source: serde_json::Error) -> Self {
        RuntimeError::Json { what, source }
    }
}

/// Adds the failed step to I/O results.
pub trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RuntimeError::io(what(), e))
    }
}

impl<T> Step<T> for rustix::io::Result<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RuntimeError::io(what(), e))
    }
}
