//! The real [`Syscall`]: rustix where it has a safe wrapper, `libc` behind `unsafe`
//! otherwise. This file and the free functions below are the only `unsafe` in the crate.
#![allow(unsafe_code)]

use super::{Create, Fork, Handle, OverlayUpper, Syscall};
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use rustix::mount::{self as m, MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::{CapabilitySet, CapabilitySets, LinkNameSpaceType, UnshareFlags};
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// The kernel.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Linux;

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{s:?} contains a NUL byte")))
}

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// `comps` under `root_fd` (resolved in it), opened O_PATH: at once when it is there (one
/// call, where opening every prefix took one each: ~120 a run's sandbox); else its parent
/// is opened, made as a directory when missing (also for `Create::Nothing`, as before),
/// and the last component made as `create` says.
fn open_or_make(root_fd: BorrowedFd<'_>, comps: &[&str], create: Create) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let full = format!("/{}", comps.join("/"));
    match rfs::openat2(root_fd, full.as_str(), flags, Mode::empty(), IN_ROOT) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) if !comps.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    let (last, parents) = comps.split_last().expect("not empty: the root itself exists");
    let dir = open_or_make(root_fd, parents, Create::Dir)?;
    let name = cstr(last)?;
    match create {
        Create::Nothing => return Err(rustix::io::Errno::NOENT.into()),
        Create::File => {
            let made = rfs::openat(
                &dir,
                name.as_c_str(),
                OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o644),
            );
            match made {
                Ok(_) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Create::Dir => match rfs::mkdirat(&dir, name.as_c_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(rfs::openat2(root_fd, full.as_str(), flags, Mode::empty(), IN_ROOT)?)
}

fn handle(fd: rustix::fd::OwnedFd) -> io::Result<Handle> {
    let is_dir = rfs::fstat(&fd).map(|s| rfs::FileType::from_raw_mode(s.st_mode) == rfs::FileType::Directory)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    Ok(Handle::new(Some(fd), path, is_dir))
}

impl Syscall for Linux {
    fn fork(&self) -> io::Result<Fork> {
        fork().map(|pid| if pid == 0 { Fork::Child } else { Fork::Parent(pid) })
    }

    fn unshare(&self, flags: UnshareFlags) -> io::Result<()> {
        // SAFETY: unshare(2) is unsafe in rustix because unsharing CLONE_FILES or CLONE_FS
        // can invalidate what other threads assume about shared descriptors and cwd. The
        // sandbox calls this from single-threaded processes (the shim before it starts
        // threads, PID 1) or, for CLONE_FS|CLONE_NEWNS, from a thread whose only job is the
        // mounts it makes there.
        unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(Into::into)
    }

    fn setns(&self, fd: BorrowedFd<'_>, kind: LinkNameSpaceType) -> io::Result<()> {
        rustix::thread::move_into_link_name_space(fd, Some(kind)).map_err(Into::into)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        rustix::system::sethostname(name.as_bytes()).map_err(Into::into)
    }

    fn write_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        if key.split('.').any(|c| c.is_empty() || c == "..") {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid sysctl {key:?}")));
        }
        std::fs::write(Path::new("/proc/sys").join(key.replace('.', "/")), value)
    }

    fn loopback_up(&self) -> io::Result<()> {
        crate::network::netlink::Netlink::open()?.set_up(1)
    }

    fn set_parent_death_signal(&self, sig: i32) -> io::Result<()> {
        let s = rustix::process::Signal::from_named_raw(sig)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("signal {sig}")))?;
        rustix::process::set_parent_process_death_signal(Some(s)).map_err(Into::into)
    }

    fn make_rprivate(&self, path: &Path) -> io::Result<()> {
        m::mount_change(path, MountPropagationFlags::REC | MountPropagationFlags::PRIVATE).map_err(Into::into)
    }

    fn mount_overlay(&self, lowers: &[PathBuf], upper: Option<OverlayUpper<'_>>, target: &Path) -> io::Result<()> {
        // The new mount API adds lower layers one at a time ("lowerdir+", Linux 6.8), so
        // there is no limit on their number; older kernels get the classic option string.
        if let Ok(fs) = m::fsopen("overlay", m::FsOpenFlags::FSOPEN_CLOEXEC) {
            let configured = (|| -> rustix::io::Result<()> {
                for l in lowers {
                    m::fsconfig_set_string(&fs, "lowerdir+", l)?;
                }
                if let Some(u) = &upper {
                    m::fsconfig_set_string(&fs, "upperdir", u.upper)?;
                    m::fsconfig_set_string(&fs, "workdir", u.work)?;
                    if u.volatile {
                        m::fsconfig_set_flag(&fs, "volatile")?;
                    }
                }
                for (k, v) in [("redirect_dir", "off"), ("index", "off"), ("metacopy", "off")] {
                    m::fsconfig_set_string(&fs, k, v)?;
                }
                m::fsconfig_create(&fs)
            })();
            if configured.is_ok() {
                let mnt = m::fsmount(&fs, m::FsMountFlags::FSMOUNT_CLOEXEC, m::MountAttrFlags::empty())?;
                return m::move_mount(&mnt, c"", rfs::CWD, target, m::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
                    .map_err(Into::into);
            }
        }
        let mut opts =
            format!("lowerdir={}", lowers.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(":"));
        if let Some(u) = &upper {
            opts.push_str(&format!(",upperdir={},workdir={}", u.upper.display(), u.work.display()));
            if u.volatile {
                opts.push_str(",volatile");
            }
        }
        opts.push_str(",redirect_dir=off,index=off,metacopy=off");
        m::mount("overlay", target, "overlay", MountFlags::empty(), cstr(&opts)?.as_c_str()).map_err(Into::into)
    }

    fn mount_fs(&self, fstype: &str, target: &Path, flags: MountFlags, data: &str) -> io::Result<()> {
        m::mount(fstype, target, fstype, flags, cstr(data)?.as_c_str()).map_err(Into::into)
    }

    fn bind(&self, source: &Path, target: &Path, recursive: bool) -> io::Result<()> {
        if recursive { m::mount_bind_recursive(source, target) } else { m::mount_bind(source, target) }
            .map_err(Into::into)
    }

    fn remount(&self, target: &Path, flags: MountFlags) -> io::Result<()> {
        m::mount_remount(target, MountFlags::BIND | flags, c"").map_err(Into::into)
    }

    fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
        // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only
        // the new root visible (pivot_root(2), "NOTES").
        rustix::process::chdir(new_root)?;
        rustix::process::pivot_root(".", ".")?;
        m::unmount(".", UnmountFlags::DETACH)?;
        rustix::process::chdir("/").map_err(Into::into)
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        rustix::process::chdir(path).map_err(Into::into)
    }

    fn open_dir(&self, path: &Path) -> io::Result<Handle> {
        handle(rfs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
    }

    fn open_in_root(&self, root: &Handle, path: &str, create: Create) -> io::Result<Handle> {
        let root_fd = root.fd().ok_or_else(|| io::Error::other("a fake handle given to the real kernel"))?;
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        handle(open_or_make(root_fd, &comps, create)?)
    }

    fn mknod_char(&self, dir: &Handle, name: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        let p = dir.path().join(name);
        rfs::mknodat(
            rfs::CWD,
            &p,
            rfs::FileType::CharacterDevice,
            Mode::from_raw_mode(mode),
            rfs::makedev(major, minor),
        )?;
        // mknod applies the umask; devices are exactly `mode`.
        rfs::chmod(&p, Mode::from_raw_mode(mode)).map_err(Into::into)
    }

    fn symlink(&self, target: &str, dir: &Handle, name: &str) -> io::Result<()> {
        rfs::symlink(target, dir.path().join(name)).map_err(Into::into)
    }

    fn mkdir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn set_groups(&self, groups: &[u32]) -> io::Result<()> {
        let g: Vec<rustix::process::Gid> = groups.iter().map(|g| rustix::process::Gid::from_raw(*g)).collect();
        rustix::thread::set_thread_groups(&g).map_err(Into::into)
    }

    fn set_res_gid(&self, gid: u32) -> io::Result<()> {
        let g = rustix::process::Gid::from_raw(gid);
        rustix::thread::set_thread_res_gid(g, g, g).map_err(Into::into)
    }

    fn set_res_uid(&self, uid: u32) -> io::Result<()> {
        let u = rustix::process::Uid::from_raw(uid);
        rustix::thread::set_thread_res_uid(u, u, u).map_err(Into::into)
    }

    fn set_keep_caps(&self, keep: bool) -> io::Result<()> {
        rustix::thread::set_keep_capabilities(keep).map_err(Into::into)
    }

    fn drop_bounding(&self, cap: u32) -> io::Result<()> {
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << cap)) {
            // A capability this kernel does not know is not in the bounding set.
            Ok(()) | Err(rustix::io::Errno::INVAL) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn set_caps(&self, effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
        let sets = CapabilitySets {
            effective: CapabilitySet::from_bits_retain(effective),
            permitted: CapabilitySet::from_bits_retain(permitted),
            inheritable: CapabilitySet::from_bits_retain(inheritable),
        };
        rustix::thread::set_capabilities(None, sets).map_err(Into::into)
    }

    fn set_no_new_privs(&self) -> io::Result<()> {
        rustix::thread::set_no_new_privs(true).map_err(Into::into)
    }

    fn install_seccomp(&self, program: &[libc::sock_filter]) -> io::Result<()> {
        let len = u16::try_from(program.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "seccomp program too long"))?;
        let fprog = libc::sock_fprog { len, filter: program.as_ptr() as *mut libc::sock_filter };
        // SAFETY: `fprog` points to `program`, which outlives the call; the kernel copies
        // the program during the syscall and keeps no reference to our memory.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_ulong,
                &fprog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn reset_signals(&self) -> io::Result<()> {
        reset_signals()
    }

    fn set_rlimit(&self, name: &str, soft: i64, hard: i64) -> io::Result<()> {
        use rustix::process::Rlimit;
        let resource = rlimit_resource(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("unknown ulimit {name:?}")))?;
        let v = |x: i64| u64::try_from(x).ok();
        rustix::process::setrlimit(resource, Rlimit { current: v(soft), maximum: v(hard) })?;
        Ok(())
    }

    fn cloexec_from(&self, first: u32) -> io::Result<()> {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 4;
        // SAFETY: close_range only changes descriptor flags; it takes no pointers.
        let r = unsafe {
            libc::syscall(libc::SYS_close_range, first as libc::c_uint, u32::MAX as libc::c_uint, CLOSE_RANGE_CLOEXEC)
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn exec(&self, path: &str, argv0: &str, args: &[String], env: &[String]) -> io::Error {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(path);
        cmd.arg0(argv0).args(args).env_clear();
        for e in env {
            match e.split_once('=') {
                Some((k, v)) => cmd.env(k, v),
                None => cmd.env(e, ""),
            };
        }
        cmd.exec()
    }
}

/// `fork(2)`: 0 in the child, the child's pid in the parent.
///
/// The caller must be single-threaded (the shim and PID 1 are): the child of a
/// multi-threaded process may only call async-signal-safe functions.
pub(crate) fn fork() -> io::Result<i32> {
    // SAFETY: fork has no memory-safety preconditions of its own; the single-threaded
    // requirement above keeps the child free of locks held by other threads.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid)
}

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before sigaddset reads it,
    // and both get a valid pointer to our local.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Blocks `signals` in the calling thread (threads spawned later inherit the mask).
pub(crate) fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Unblocks every signal and restores default dispositions (in a child, before exec).
pub(crate) fn reset_signals() -> io::Result<()> {
    let set = sigset(&[]);
    // SAFETY: as in `block_signals`; SIG_DFL is a valid disposition for every signal we
    // reset (SIGKILL and SIGSTOP cannot be changed and are skipped).
    unsafe {
        let r = libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        for s in 1..32 {
            if s != libc::SIGKILL && s != libc::SIGSTOP {
                libc::signal(s, libc::SIG_DFL);
            }
        }
    }
    Ok(())
}

/// Waits up to `timeout_ms` for one of the blocked `signals`; returns it, or None.
pub(crate) fn wait_signal(signals: &[i32], timeout_ms: u64) -> io::Result<Option<i32>> {
    let set = sigset(signals);
    let ts = libc::timespec {
        tv_sec: (timeout_ms / 1000) as libc::time_t,
        tv_nsec: ((timeout_ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: siginfo_t is plain data the kernel writes; all pointers are to our locals.
    let r = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::sigtimedwait(&set, &mut info, &ts)
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(r))
}

/// Ignores `sig` for the calling process (the shim writes to pipes the other side may
/// close).
pub(crate) fn ignore_signal(sig: i32) {
    // SAFETY: SIG_IGN is a valid disposition for the ordinary signals we pass.
    unsafe {
        libc::signal(sig, libc::SIG_IGN);
    }
}

/// Takes ownership of descriptor `fd`, which the process that started this one opened
/// and left open for it (the shim's `--attach-fd`); it becomes close-on-exec.
pub(crate) fn take_inherited(fd: i32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    if fd < 3 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("descriptor {fd} is stdio")));
    }
    // SAFETY: F_GETFD only reads the flags of a descriptor number; an unused one fails
    // with EBADF, which tells us it was not inherited.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above) and was opened by our parent for
    // this process alone, named only by the argument, which is read once: nothing else in
    // the process owns it, so this OwnedFd is its only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    Ok(owned)
}

/// The resource of a ulimit name, as docker (`go-units`) names them.
pub(crate) fn rlimit_resource(name: &str) -> Option<rustix::process::Resource> {
    use rustix::process::Resource as R;
    Some(match name {
        "core" => R::Core,
        "cpu" => R::Cpu,
        "data" => R::Data,
        "fsize" => R::Fsize,
        "locks" => R::Locks,
        "memlock" => R::Memlock,
        "msgqueue" => R::Msgqueue,
        "nice" => R::Nice,
        "nofile" => R::Nofile,
        "nproc" => R::Nproc,
        "rss" => R::Rss,
        "rtprio" => R::Rtprio,
        "rttime" => R::Rttime,
        "sigpending" => R::Sigpending,
        "stack" => R::Stack,
        "as" => R::As,
        _ => return None,
    })
}
