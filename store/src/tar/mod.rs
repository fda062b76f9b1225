//! The tar format, as OCI layers and docker archives use it.
//!
//! The reader accepts USTAR, PAX (path, linkpath, size, uid, gid, mtime, xattrs, GNU
//! sparse 0.1 and 1.0) and GNU (long names, old sparse) archives, checks every header
//! checksum and refuses truncated streams. The writer emits USTAR headers with PAX records
//! where a field does not fit, and nothing that depends on the writing machine, so the same
//! tree always gives the same bytes.

mod header;
mod reader;
mod writer;

pub use reader::{EntryReader, Reader, TarDefect};
pub use writer::Writer;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A hard link to an earlier entry (`link` names it).
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// Data regions of a sparse file: `(offset, length)`, in order; the rest is zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseMap {
    pub real_size: u64,
    pub regions: Vec<(u64, u64)>,
}

/// One archive entry's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path as stored (bytes; `/`-separated; directories may end with `/`).
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Bytes of data that follow in the archive (for sparse files: the stored regions).
    pub size: u64,
    pub mtime: i64,
    /// Symlink target or hard-link target path.
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub sparse: Option<SparseMap>,
}

impl Entry {
    pub fn new(path: impl Into<Vec<u8>>, kind: EntryKind) -> Self {
        Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            link: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
            xattrs: Vec::new(),
            sparse: None,
        }
    }

    /// The path for messages.
    pub fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }

    /// The size of the file's content (the real size of a sparse file).
    pub fn content_size(&self) -> u64 {
        self.sparse.as_ref().map_or(self.size, |s| s.real_size)
    }
}

/// The 512-byte block size of the format.
pub const BLOCK: usize = 512;

/// Bytes of padding after `size` bytes of data.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

#[cfg(test)]
mod tests;
