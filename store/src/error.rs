//! The store's errors. Every variant names what failed and carries the path, digest or
//! name involved.

use crate::digest::Digest;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("invalid reference format: {0}")]
    BadReference(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: Digest, actual: Digest },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("invalid archive: {0}")]
    BadArchive(String),
    #[error("refusing archive entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: String },
    #[error("invalid image: {0}")]
    BadImage(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store at {path}: {reason}")]
    BadStore { path: PathBuf, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io { context: context.into(), source }
    }

    pub fn archive(msg: impl Into<String>) -> Self {
        StoreError::BadArchive(msg.into())
    }

    /// True when the underlying cause is a full disk.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }
}

/// Adds context to I/O results.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
    fn at(self, what: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| StoreError::io(context(), e))
    }
    fn at(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(|e| StoreError::io(format!("{what} {}", path.display()), e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| StoreError::io(context(), e.into()))
    }
    fn at(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(|e| StoreError::io(format!("{what} {}", path.display()), e.into()))
    }
}
