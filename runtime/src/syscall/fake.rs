//! A [`Syscall`] that records every call instead of making it, for unit tests of the
//! sandbox's order of operations (no root, no kernel state).

use super::{Create, Fork, Handle, OverlayUpper, Syscall};
use rustix::fd::BorrowedFd;
use rustix::mount::MountFlags;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};

/// One recorded call, with its arguments in a form tests can compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Fork,
    Unshare(UnshareFlags),
    Setns(LinkNameSpaceType),
    Sethostname(String),
    Sysctl(String, String),
    LoopbackUp,
    ParentDeathSignal(i32),
    MakePrivate(PathBuf),
    Overlay { lowers: Vec<PathBuf>, upper: Option<(PathBuf, PathBuf, bool)>, target: PathBuf },
    MountFs { fstype: String, target: PathBuf, flags: MountFlags, data: String },
    Bind { source: PathBuf, target: PathBuf, recursive: bool },
    Remount { target: PathBuf, flags: MountFlags },
    PivotRoot(PathBuf),
    Chdir(PathBuf),
    Mknod { path: PathBuf, mode: u32, major: u32, minor: u32 },
    Symlink { target: String, path: PathBuf },
    MkdirAll(PathBuf),
    SetGroups(Vec<u32>),
    SetResGid(u32),
    SetResUid(u32),
    KeepCaps(bool),
    DropBounding(u32),
    SetCaps { effective: u64, permitted: u64, inheritable: u64 },
    NoNewPrivs,
    Seccomp(usize),
    ResetSignals,
    CloexecFrom(u32),
    Rlimit(String, i64, i64),
    Exec { path: String, args: Vec<String>, env: Vec<String> },
}

/// Records calls; paths opened "inside a root" are the root's path joined with the
/// in-root path, so tests read them as the container would.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub calls: RefCell<Vec<Call>>,
    /// In-root paths that do not exist (open_in_root with Create::Nothing fails).
    pub missing: Vec<String>,
    /// Calls that fail (matched by a predicate on the call).
    pub fail: Option<fn(&Call) -> bool>,
}

impl Recorder {
    fn rec(&self, c: Call) -> io::Result<()> {
        let fails = self.fail.is_some_and(|f| f(&c));
        self.calls.borrow_mut().push(c);
        if fails {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(())
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }
}

impl Syscall for Recorder {
    fn fork(&self) -> io::Result<Fork> {
        self.rec(Call::Fork)?;
        Ok(Fork::Parent(4242))
    }
    fn unshare(&self, flags: UnshareFlags) -> io::Result<()> {
        self.rec(Call::Unshare(flags))
    }
    fn setns(&self, _fd: BorrowedFd<'_>, kind: LinkNameSpaceType) -> io::Result<()> {
        self.rec(Call::Setns(kind))
    }
    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.rec(Call::Sethostname(name.into()))
    }
    fn write_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        self.rec(Call::Sysctl(key.into(), value.into()))
    }
    fn loopback_up(&self) -> io::Result<()> {
        self.rec(Call::LoopbackUp)
    }
    fn set_parent_death_signal(&self, sig: i32) -> io::Result<()> {
        self.rec(Call::ParentDeathSignal(sig))
    }
    fn make_rprivate(&self, path: &Path) -> io::Result<()> {
        self.rec(Call::MakePrivate(path.into()))
    }
    fn mount_overlay(&self, lowers: &[PathBuf], upper: Option<OverlayUpper<'_>>, target: &Path) -> io::Result<()> {
        let upper = upper.map(|u| (u.upper.to_path_buf(), u.work.to_path_buf(), u.volatile));
        self.rec(Call::Overlay { lowers: lowers.to_vec(), upper, target: target.into() })
    }
    fn mount_fs(&self, fstype: &str, target: &Path, flags: MountFlags, data: &str) -> io::Result<()> {
        self.rec(Call::MountFs { fstype: fstype.into(), target: target.into(), flags, data: data.into() })
    }
    fn bind(&self, source: &Path, target: &Path, recursive: bool) -> io::Result<()> {
        self.rec(Call::Bind { source: source.into(), target: target.into(), recursive })
    }
    fn remount(&self, target: &Path, flags: MountFlags) -> io::Result<()> {
        self.rec(Call::Remount { target: target.into(), flags })
    }
    fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
        self.rec(Call::PivotRoot(new_root.into()))
    }
    fn chdir(&self, path: &Path) -> io::Result<()> {
        self.rec(Call::Chdir(path.into()))
    }
    fn open_dir(&self, path: &Path) -> io::Result<Handle> {
        Ok(Handle::new(None, path.into(), true))
    }
    fn open_in_root(&self, root: &Handle, path: &str, create: Create) -> io::Result<Handle> {
        let clean =
            format!("/{}", path.split('/').filter(|c| !c.is_empty() && *c != ".").collect::<Vec<_>>().join("/"));
        if create == Create::Nothing && self.missing.contains(&clean) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let joined = root.path().join(clean.trim_start_matches('/'));
        Ok(Handle::new(None, joined, create != Create::File))
    }
    fn mknod_char(&self, dir: &Handle, name: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.rec(Call::Mknod { path: dir.path().join(name), mode, major, minor })
    }
    fn symlink(&self, target: &str, dir: &Handle, name: &str) -> io::Result<()> {
        self.rec(Call::Symlink { target: target.into(), path: dir.path().join(name) })
    }
    fn mkdir_all(&self, path: &Path) -> io::Result<()> {
        self.rec(Call::MkdirAll(path.into()))
    }
    fn set_groups(&self, groups: &[u32]) -> io::Result<()> {
        self.rec(Call::SetGroups(groups.to_vec()))
    }
    fn set_res_gid(&self, gid: u32) -> io::Result<()> {
        self.rec(Call::SetResGid(gid))
    }
    fn set_res_uid(&self, uid: u32) -> io::Result<()> {
        self.rec(Call::SetResUid(uid))
    }
    fn set_keep_caps(&self, keep: bool) -> io::Result<()> {
        self.rec(Call::KeepCaps(keep))
    }
    fn drop_bounding(&self, cap: u32) -> io::Result<()> {
        self.rec(Call::DropBounding(cap))
    }
    fn set_caps(&self, effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
        self.rec(Call::SetCaps { effective, permitted, inheritable })
    }
    fn set_no_new_privs(&self) -> io::Result<()> {
        self.rec(Call::NoNewPrivs)
    }
    fn install_seccomp(&self, program: &[libc::sock_filter]) -> io::Result<()> {
        self.rec(Call::Seccomp(program.len()))
    }
    fn reset_signals(&self) -> io::Result<()> {
        self.rec(Call::ResetSignals)
    }
    fn cloexec_from(&self, first: u32) -> io::Result<()> {
        self.rec(Call::CloexecFrom(first))
    }
    fn set_rlimit(&self, name: &str, soft: i64, hard: i64) -> io::Result<()> {
        self.rec(Call::Rlimit(name.into(), soft, hard))
    }
    fn exec(&self, path: &str, _argv0: &str, args: &[String], env: &[String]) -> io::Error {
        let _ = self.rec(Call::Exec { path: path.into(), args: args.to_vec(), env: env.to_vec() });
        io::Error::from_raw_os_error(libc::ENOEXEC)
    }
}
