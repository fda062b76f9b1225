//! The runtime's errors, each naming the step that failed.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{step}: {source}")]
    Io {
        step: String,
        #[source]
        source: io::Error,
    },
    /// The program of an `exec` could not be started; `code` is docker's exit code for
    /// it (126 cannot execute, 127 not found).
    #[error("{message}")]
    ExecFailed { code: i32, message: String },
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("{0}")]
    Invalid(String),
    #[error("conflict: {0}")]
    Conflict(String),
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
