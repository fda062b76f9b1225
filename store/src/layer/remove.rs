//! Removing trees without following symlinks (whiteouts, failed snapshots, prune).

use crate::error::{IoContext, Result, StoreError};
use rustix::fd::AsFd;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::path::Path;

fn cstr(b: &[u8]) -> CString {
    CString::new(b).unwrap_or_default()
}

pub(crate) fn dir_names(dir: &impl AsFd) -> Result<Vec<Vec<u8>>> {
    // A readable descriptor of our own (`dir` may be O_PATH), read by Dir itself:
    // read_from would open "." once more.
    let fd = rfs::openat(dir, c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| "opening directory".into())?;
    let d = rfs::Dir::new(fd).ctx(|| "reading directory".into())?;
    let mut out = Vec::new();
    for ent in d {
        let ent = ent.ctx(|| "reading directory".into())?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(n.to_vec());
        }
    }
    Ok(out)
}

/// Removes `name` in `dir`, recursively for directories, never following symlinks.
pub(crate) fn remove_at(dir: &impl AsFd, name: &CStr) -> Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(StoreError::io(format!("removing {}", name.to_string_lossy()), e.into())),
    }
    // An empty directory (a container's rootfs mount point, an unused upper dir) goes in
    // one call rather than the nine of opening and reading it.
    if let Ok(()) | Err(Errno::NOENT) = rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        return Ok(());
    }
    let sub =
        rfs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .ctx(|| format!("opening {}", name.to_string_lossy()))?;
    for n in dir_names(&sub)? {
        remove_at(&sub, &cstr(&n))?;
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(StoreError::io(format!("removing {}", name.to_string_lossy()), e.into())),
    }
}

/// Removes a whole directory tree (never following symlinks). Missing is fine.
pub fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(StoreError::io(format!("removing {}", path.display()), std::io::ErrorKind::InvalidInput.into()));
    };
    let dir = match rfs::open(parent, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(d) => d,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(StoreError::io(format!("removing {}", path.display()), e.into())),
    };
    use std::os::unix::ffi::OsStrExt;
    remove_at(&dir, &cstr(name.as_bytes()))
}
