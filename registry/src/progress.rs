//! What pulls and pushes report as they go; the CLI draws it.

use rbuild_store::Digest;
use std::io::{self, Read};

/// A blob's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobEvent<'a> {
    /// Transfer of `total` bytes begins.
    Start {
        total: u64,
    },
    Bytes {
        done: u64,
        total: u64,
    },
    /// Already there: in the store (pull) or in the registry (push).
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted {
        from: &'a str,
    },
    Done,
}

pub trait Progress: Sync {
    /// A line of status (`Pulling from …`, `Digest: …`).
    fn status(&self, _line: &str) {}
    fn blob(&self, _digest: &Digest, _event: BlobEvent<'_>) {}
}

/// Reports nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// A reader that reports the bytes through it, every 256 KiB or so.
pub(crate) struct Counting<'a, R> {
    pub inner: R,
    pub digest: Digest,
    pub total: u64,
    pub done: u64,
    pub reported: u64,
    pub progress: &'a dyn Progress,
}

impl<'a, R: Read> Counting<'a, R> {
    pub fn new(inner: R, digest: Digest, total: u64, progress: &'a dyn Progress) -> Self {
        progress.blob(&digest, BlobEvent::Start { total });
        Counting { inner, digest, total, done: 0, reported: 0, progress }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 256 * 1024 || (n == 0 && self.done != self.reported) {
            self.reported = self.done;
            self.progress.blob(&self.digest, BlobEvent::Bytes { done: self.done, total: self.total });
        }
        Ok(n)
    }
}
