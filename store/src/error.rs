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
    /// A stored blob whose content does not match its digest.
    #[error(transparent)]
    Corrupt(#[from] crate::verify::CorruptBlob),
    /// What went wrong with (a part of) an image, naming the image.
    #[error("image {image}: {source}")]
    InImage {
        image: String,
        #[source]
        source: Box<StoreError>,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io { context: context.into(), source }
    }

    pub fn archive(msg: impl Into<String>) -> Self {
        StoreError::BadArchive(msg.into())
    }

    /// Names the image a corrupt blob belongs to (other errors stay as they are).
    pub fn in_image(self, image: impl FnOnce() -> String) -> Self {
        match self {
            e @ StoreError::Corrupt(_) => StoreError::InImage { image: image(), source: Box::new(e) },
            other => other,
        }
    }

    /// The corrupt blob behind this error, if that is what it is.
    pub fn corrupt_blob(&self) -> Option<&crate::verify::CorruptBlob> {
        match self {
            StoreError::Corrupt(c) => Some(c),
            StoreError::InImage { source, .. } => source.corrupt_blob(),
            StoreError::Io { source, .. } => crate::verify::CorruptBlob::in_io(source),
            _ => None,
        }
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
