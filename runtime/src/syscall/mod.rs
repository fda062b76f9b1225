//! Every system call the sandbox makes, behind one trait.
//!
//! The sandbox code (namespaces, root filesystem, mounts, devices, privileges) calls the
//! kernel only through [`Syscall`]. [`Linux`] is the real implementation and the only
//! place in the crate with `unsafe` (each block with its `SAFETY` note); the recording
//! fake in [`fake`] lets unit tests check the order of mounts, pivot_root, unshare and
//! privilege drops without root (youki's `syscall/` is the model).

pub(crate) mod linux;

#[cfg(test)]
pub(crate) mod fake;

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::mount::MountFlags;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use std::io;
use std::path::{Path, PathBuf};

pub(crate) use linux::Linux;

/// Something the sandbox holds open inside the new root. Mounts and nodes go through its
/// [`Handle::path`] (`/proc/self/fd/N` for a real descriptor), so the kernel acts on what
/// was resolved inside the root, never on a path a symlink in the image could redirect.
#[derive(Debug)]
pub(crate) struct Handle {
    /// The open descriptor (None in the fake).
    fd: Option<OwnedFd>,
    path: PathBuf,
    is_dir: bool,
}

impl Handle {
    pub(crate) fn new(fd: Option<OwnedFd>, path: PathBuf, is_dir: bool) -> Handle {
        Handle { fd, path, is_dir }
    }

    /// The path that names this object for the kernel.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// The descriptor (None for a fake handle).
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        use rustix::fd::AsFd;
        self.fd.as_ref().map(|f| f.as_fd())
    }
}

/// What [`Syscall::open_in_root`] makes when the last component is missing (missing
/// parents are always made as directories, 0755, as runc makes mount points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Nothing: a missing path is an error (`NotFound`).
    Nothing,
    Dir,
    File,
}

/// An overlay's writable layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OverlayUpper<'a> {
    pub upper: &'a Path,
    pub work: &'a Path,
    /// overlayfs's `volatile`: no syncs (see `rootfs::mount_overlay`).
    pub volatile: bool,
}

/// The result of [`Syscall::fork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fork {
    Child,
    Parent(i32),
}

/// The kernel interface of the sandbox. Paths given to mount calls are either host paths
/// (before pivot_root) or [`Handle::path`]s inside the new root.
pub(crate) trait Syscall {
    // Processes and namespaces.
    /// `fork(2)`; the caller must be single-threaded (the shim and PID 1 are).
    fn fork(&self) -> io::Result<Fork>;
    fn unshare(&self, flags: UnshareFlags) -> io::Result<()>;
    fn setns(&self, fd: BorrowedFd<'_>, kind: LinkNameSpaceType) -> io::Result<()>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// Writes `/proc/sys/<key with dots as slashes>` (a namespaced sysctl).
    fn write_sysctl(&self, key: &str, value: &str) -> io::Result<()>;
    /// Brings `lo` up in the current network namespace.
    fn loopback_up(&self) -> io::Result<()>;
    /// The signal this process gets when its parent dies.
    fn set_parent_death_signal(&self, sig: i32) -> io::Result<()>;

    // Mounts.
    /// Makes every mount under `path` private (nothing propagates back to the host).
    fn make_rprivate(&self, path: &Path) -> io::Result<()>;
    fn mount_overlay(&self, lowers: &[PathBuf], upper: Option<OverlayUpper<'_>>, target: &Path) -> io::Result<()>;
    /// A new filesystem of `fstype` (`proc`, `tmpfs`, `devpts`, …) at `target`.
    fn mount_fs(&self, fstype: &str, target: &Path, flags: MountFlags, data: &str) -> io::Result<()>;
    fn bind(&self, source: &Path, target: &Path, recursive: bool) -> io::Result<()>;
    /// Changes the flags of the bind mount at `target` (`MS_REMOUNT | MS_BIND | flags`).
    fn remount(&self, target: &Path, flags: MountFlags) -> io::Result<()>;
    /// Makes `new_root` the root: pivot_root, the old root detached, cwd `/`.
    fn pivot_root(&self, new_root: &Path) -> io::Result<()>;
    fn chdir(&self, path: &Path) -> io::Result<()>;

    // Files inside the new root.
    /// Opens a directory of the host (O_PATH).
    fn open_dir(&self, path: &Path) -> io::Result<Handle>;
    /// Opens `path` inside `root`, resolving every component inside it
    /// (`openat2(RESOLVE_IN_ROOT)`), creating what is missing as `create` says.
    fn open_in_root(&self, root: &Handle, path: &str, create: Create) -> io::Result<Handle>;
    fn mknod_char(&self, dir: &Handle, name: &str, mode: u32, major: u32, minor: u32) -> io::Result<()>;
    fn symlink(&self, target: &str, dir: &Handle, name: &str) -> io::Result<()>;
    /// `mkdir -p` in the current root (the working directory, after pivot_root).
    fn mkdir_all(&self, path: &Path) -> io::Result<()>;

    // Identity and privileges.
    fn set_groups(&self, groups: &[u32]) -> io::Result<()>;
    fn set_res_gid(&self, gid: u32) -> io::Result<()>;
    fn set_res_uid(&self, uid: u32) -> io::Result<()>;
    /// `PR_SET_KEEPCAPS`: keep the permitted set across the uid change.
    fn set_keep_caps(&self, keep: bool) -> io::Result<()>;
    /// Drops one capability from the bounding set (absent ones are ignored).
    fn drop_bounding(&self, cap: u32) -> io::Result<()>;
    /// The effective, permitted and inheritable sets (bitmasks).
    fn set_caps(&self, effective: u64, permitted: u64, inheritable: u64) -> io::Result<()>;
    fn set_no_new_privs(&self) -> io::Result<()>;
    fn install_seccomp(&self, program: &[libc::sock_filter]) -> io::Result<()>;
    /// Unblocks every signal and restores default dispositions.
    fn reset_signals(&self) -> io::Result<()>;
    /// Marks every descriptor from `first` on close-on-exec.
    fn cloexec_from(&self, first: u32) -> io::Result<()>;
    /// `setrlimit(2)` of the resource `ulimit` calls `name` (`nofile`, `nproc`, …); -1 is
    /// unlimited.
    fn set_rlimit(&self, name: &str, soft: i64, hard: i64) -> io::Result<()>;
    /// Replaces the process image; returns only on failure.
    fn exec(&self, path: &str, argv0: &str, args: &[String], env: &[String]) -> io::Error;
}
