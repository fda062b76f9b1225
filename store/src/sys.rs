//! The store's one syscall that rustix does not wrap.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// `sync_file_range(2)` on `[offset, offset + len)` of `fd`.
pub(crate) fn sync_file_range(fd: impl AsFd, offset: i64, len: i64, flags: libc::c_uint) -> io::Result<()> {
    let fd = fd.as_fd();
    // SAFETY: sync_file_range takes no pointers; `fd` is borrowed, so the descriptor
    // stays open for the whole call.
    let r = unsafe { libc::sync_file_range(fd.as_raw_fd(), offset, len, flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
