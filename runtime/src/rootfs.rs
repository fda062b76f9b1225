//! The container's root filesystem: an overlay of the image's layer snapshots (plus the
//! init layer) and a writable upper dir, with /proc, /dev, /sys, docker's masked and
//! read-only paths and the user's mounts, then pivot_root.
//!
//! Every mount target inside the new root is resolved with `openat2(RESOLVE_IN_ROOT)`, so
//! a symlink in the image (`/data -> /etc`) cannot make a mount land outside the root.
//! All of this happens in the container's own mount namespace: when its last process
//! exits, the kernel removes every mount, so nothing is left on the host.

use crate::error::{Result, RuntimeError, Step};
use crate::spec::{MountKind, Spec};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use rustix::mount::{self as m, MountFlags, MountPropagationFlags, UnmountFlags};
use std::ffi::CString;
use std::path::{Path, PathBuf};

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// Mount-point files and directories every container needs, kept in a layer of their own
/// between the image and the writable layer (as docker's init layer), so they never end up
/// in a committed layer.
pub const INIT_LAYER: &[(&str, &str)] = &[
    ("dev", "dir"),
    ("dev/pts", "dir"),
    ("dev/shm", "dir"),
    ("dev/console", "file"),
    ("proc", "dir"),
    ("sys", "dir"),
    ("etc", "dir"),
    ("etc/hosts", "file"),
    ("etc/hostname", "file"),
    ("etc/resolv.conf", "file"),
    ("etc/mtab", "/proc/mounts"),
    (".dockerenv", "file"),
];

/// The init layer under `state_dir`, made once (atomically).
pub fn ensure_init_layer(state_dir: &Path) -> Result<PathBuf> {
    let dest = state_dir.join("init-layer");
    if dest.exists() {
        return Ok(dest);
    }
    // Unique per call: parallel build stages of one process may race here.
    let tmp = state_dir.join(format!("tmp/init-{}-{}", std::process::id(), rand_hex()));
    std::fs::create_dir_all(&tmp).step(|| format!("creating {}", tmp.display()))?;
    for (p, kind) in INIT_LAYER {
        let path = tmp.join(p);
        match *kind {
            "dir" => std::fs::create_dir_all(&path).step(|| format!("creating {}", path.display()))?,
            "file" => {
                std::fs::write(&path, b"").step(|| format!("creating {}", path.display()))?;
                let mode = if *p == ".dockerenv" { 0o755 } else { 0o644 };
                rfs::chmod(&path, Mode::from_raw_mode(mode)).step(|| format!("chmod {}", path.display()))?;
            }
            target => std::os::unix::fs::symlink(target, &path).step(|| format!("creating {}", path.display()))?,
        }
    }
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        Err(_) if dest.exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dest)
        }
        Err(e) => Err(RuntimeError::io(format!("creating {}", dest.display()), e)),
    }
}

/// Mounts an overlay of `lowers` (top first) with an optional writable upper at `target`.
///
/// A `volatile` upper is one nobody mounts again (a build step's, committed or dropped
/// after; a `--rm` container's): overlayfs then skips every sync, above all the sync of
/// the whole upper filesystem when the last user unmounts it — behind a large build's
/// writeback that took longer than the step itself. What a step leaves is made durable as
/// a layer blob when it is committed, as before.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    volatile: bool,
    target: &Path,
) -> Result<()> {
    if lowers.is_empty() {
        return Err(RuntimeError::Invalid("an overlay needs at least one lower layer".into()));
    }
    // overlayfs refuses a layer twice (ELOOP). Two equal layers in one image (two steps
    // with the same diff, often empty) look the same with only the upper one: everything
    // the lower copy shows, the upper copy shows first.
    let mut seen = std::collections::HashSet::new();
    let deduped: Vec<PathBuf> = lowers.iter().filter(|l| seen.insert((*l).clone())).cloned().collect();
    let lowers = deduped.as_slice();
    if lowers.len() == 1 && upper.is_none() {
        // overlayfs wants two lowers without an upper; a read-only bind is the same thing.
        m::mount_bind(&lowers[0], target).step(|| format!("bind-mounting {}", lowers[0].display()))?;
        return m::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, c"")
            .step(|| "making the root read-only".into());
    }
    // The new mount API adds lower layers one at a time ("lowerdir+", Linux 6.8), so there
    // is no limit on their number; older kernels get the classic option string.
    let fs = m::fsopen("overlay", m::FsOpenFlags::FSOPEN_CLOEXEC);
    if let Ok(fs) = fs {
        let configured = (|| -> rustix::io::Result<()> {
            for l in lowers {
                m::fsconfig_set_string(&fs, "lowerdir+", l)?;
            }
            if let Some((u, w)) = upper {
                m::fsconfig_set_string(&fs, "upperdir", u)?;
                m::fsconfig_set_string(&fs, "workdir", w)?;
                if volatile {
                    m::fsconfig_set_flag(&fs, "volatile")?;
                }
            }
            for (k, v) in [("redirect_dir", "off"), ("index", "off"), ("metacopy", "off")] {
                m::fsconfig_set_string(&fs, k, v)?;
            }
            m::fsconfig_create(&fs)
        })();
        if configured.is_ok() {
            let mnt = m::fsmount(&fs, m::FsMountFlags::FSMOUNT_CLOEXEC, m::MountAttrFlags::empty())
                .step(|| "mounting the overlay".into())?;
            return m::move_mount(&mnt, c"", rfs::CWD, target, m::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
                .step(|| format!("attaching the overlay at {}", target.display()));
        }
    }
    let mut opts = format!("lowerdir={}", lowers.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(":"));
    if let Some((u, w)) = upper {
        opts.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
        if volatile {
            opts.push_str(",volatile");
        }
    }
    opts.push_str(",redirect_dir=off,index=off,metacopy=off");
    m::mount("overlay", target, "overlay", MountFlags::empty(), cstr(&opts).as_c_str())
        .step(|| format!("mounting the overlay at {}", target.display()))
}

/// Opens (creating when missing) `path` inside the root `root_fd`, resolving every
/// component inside the root. `dir` says what to create at the end.
fn secure_target(root: &OwnedFd, path: &str, dir: bool) -> Result<OwnedFd> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let mut cur = String::new();
    for (i, c) in comps.iter().enumerate() {
        cur.push('/');
        cur.push_str(c);
        let last = i + 1 == comps.len();
        let flags = OFlags::PATH | OFlags::CLOEXEC;
        match rfs::openat2(root, cur.as_str(), flags, Mode::empty(), resolve) {
            Ok(fd) if last => return Ok(fd),
            Ok(_) => {}
            Err(rustix::io::Errno::NOENT) => {
                let parent = rfs::openat2(
                    root,
                    Path::new(&cur).parent().unwrap_or(Path::new("/")),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                    resolve,
                )
                .step(|| format!("resolving {cur} in the container"))?;
                let name = cstr(c);
                if last && !dir {
                    let f = rfs::openat(
                        &parent,
                        name.as_c_str(),
                        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                        Mode::from_raw_mode(0o644),
                    );
                    if let Err(e) = f {
                        if e != rustix::io::Errno::EXIST {
                            return Err(RuntimeError::io(format!("creating {cur} in the container"), e));
                        }
                    }
                } else {
                    match rfs::mkdirat(&parent, name.as_c_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(RuntimeError::io(format!("creating {cur} in the container"), e)),
                    }
                }
                if last {
                    return rfs::openat2(root, cur.as_str(), flags, Mode::empty(), resolve)
                        .step(|| format!("opening {cur} in the container"));
                }
            }
            Err(e) => return Err(RuntimeError::io(format!("resolving {cur} in the container"), e)),
        }
    }
    rfs::openat2(root, "/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), resolve)
        .step(|| "opening the container root".into())
}

/// `/proc/self/fd/N`: mounting onto it mounts onto what the descriptor resolved to.
fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

struct Root {
    fd: OwnedFd,
}

impl Root {
    fn target(&self, path: &str, dir: bool) -> Result<(OwnedFd, String)> {
        let fd = secure_target(&self.fd, path, dir)?;
        let p = fd_path(&fd);
        Ok((fd, p))
    }

    fn mount_fs(&self, path: &str, fstype: &str, flags: MountFlags, data: &str) -> Result<()> {
        let (_fd, p) = self.target(path, true)?;
        m::mount(fstype, p.as_str(), fstype, flags, cstr(data).as_c_str())
            .step(|| format!("mounting {fstype} on {path}"))
    }

    fn bind(&self, source: &Path, path: &str, readonly: bool, recursive: bool) -> Result<()> {
        let is_dir =
            std::fs::metadata(source).map(|m| m.is_dir()).step(|| format!("bind source {}", source.display()))?;
        let (_fd, p) = self.target(path, is_dir)?;
        if recursive { m::mount_bind_recursive(source, p.as_str()) } else { m::mount_bind(source, p.as_str()) }
            .step(|| format!("bind-mounting {} on {path}", source.display()))?;
        if readonly {
            // The remount must name the new mount, so open the path again.
            let (_fd2, p2) = self.target(path, is_dir)?;
            m::mount_remount(
                p2.as_str(),
                MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
                c"",
            )
            .step(|| format!("making {path} read-only"))?;
        }
        Ok(())
    }

    fn mask(&self, path: &str) {
        // Masked paths may not exist on this kernel: best effort, as runc does.
        let Ok(fd) = rfs::openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) else {
            return;
        };
        let p = fd_path(&fd);
        let is_dir = rfs::fstat(&fd)
            .map(|s| rfs::FileType::from_raw_mode(s.st_mode) == rfs::FileType::Directory)
            .unwrap_or(false);
        if is_dir {
            let _ = m::mount("tmpfs", p.as_str(), "tmpfs", MountFlags::RDONLY, c"size=0");
        } else {
            let _ = m::mount_bind("/dev/null", p.as_str());
        }
    }

    fn readonly(&self, path: &str) {
        let Ok(fd) = rfs::openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) else {
            return;
        };
        let p = fd_path(&fd);
        if m::mount_bind_recursive(p.as_str(), p.as_str()).is_ok() {
            if let Ok(fd2) = rfs::openat2(
                &self.fd,
                path,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                let _ = m::mount_remount(
                    fd_path(&fd2).as_str(),
                    MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                    c"",
                );
            }
        }
    }
}

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// The standard device nodes: (name, major, minor).
const DEVICES: &[(&str, u32, u32)] =
    &[("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// Builds the root inside the current (new) mount namespace and pivots into it.
/// `console` is the pty slave to show as /dev/console, if any.
pub fn setup(spec: &Spec, console: Option<&Path>) -> Result<()> {
    // Nothing we mount may propagate back to the host.
    m::mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
        .step(|| "making / private".into())?;
    let target = &spec.rootfs;
    mount_overlay(&spec.lowers, spec.upper.as_ref(), spec.volatile_upper, target)?;
    let root = Root {
        fd: rfs::open(target, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .step(|| format!("opening {}", target.display()))?,
    };
    let nosuid_noexec_nodev = MountFlags::NOSUID | MountFlags::NOEXEC | MountFlags::NODEV;
    root.mount_fs("/proc", "proc", nosuid_noexec_nodev, "")?;
    root.mount_fs("/dev", "tmpfs", MountFlags::NOSUID | MountFlags::STRICTATIME, "mode=755,size=65536k")?;
    let (dev, devp) = root.target("/dev", true)?;
    for (name, maj, min) in DEVICES {
        let p = format!("{devp}/{name}");
        rfs::mknodat(
            rfs::CWD,
            p.as_str(),
            rfs::FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rfs::makedev(*maj, *min),
        )
        .step(|| format!("creating /dev/{name}"))?;
        rfs::chmod(p.as_str(), Mode::from_raw_mode(0o666)).step(|| format!("chmod /dev/{name}"))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        rfs::symlinkat(to, &dev, link).step(|| format!("creating /dev/{link}"))?;
    }
    drop(dev);
    root.mount_fs(
        "/dev/pts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )?;
    root.mount_fs("/dev/shm", "tmpfs", nosuid_noexec_nodev, "mode=1777,size=65536k")?;
    root.mount_fs("/dev/mqueue", "mqueue", nosuid_noexec_nodev, "")?;
    if let Some(c) = console {
        root.bind(c, "/dev/console", false, false)?;
    }
    // sysfs can only be mounted in a network namespace of our own; with the host's, bind it.
    let (_s, sp) = root.target("/sys", true)?;
    if m::mount("sysfs", sp.as_str(), "sysfs", nosuid_noexec_nodev | MountFlags::RDONLY, c"").is_err() {
        m::mount_bind_recursive("/sys", sp.as_str()).step(|| "binding /sys".into())?;
        let (_s2, sp2) = root.target("/sys", true)?;
        m::mount_remount(sp2.as_str(), MountFlags::BIND | MountFlags::RDONLY | nosuid_noexec_nodev, c"")
            .step(|| "making /sys read-only".into())?;
    }
    for (path, file) in &spec.etc_files {
        root.bind(file, path, false, false)?;
    }
    for mnt in &spec.mounts {
        match &mnt.kind {
            MountKind::Bind { source, readonly } => root.bind(source, &mnt.target, *readonly, true)?,
            MountKind::Tmpfs { options } => {
                root.mount_fs(&mnt.target, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, options)?
            }
        }
    }
    for p in MASKED {
        root.mask(p);
    }
    for p in READONLY {
        root.readonly(p);
    }
    drop(root);

    // pivot_root(".", ".") stacks the old root on the new one; unmounting it lazily leaves
    // only the container's root visible.
    rustix::process::chdir(target).step(|| format!("entering {}", target.display()))?;
    rustix::process::pivot_root(".", ".").step(|| "pivot_root".into())?;
    m::unmount(".", UnmountFlags::DETACH).step(|| "detaching the old root".into())?;
    rustix::process::chdir("/").step(|| "chdir /".into())?;
    if spec.readonly_rootfs {
        m::mount_remount("/", MountFlags::BIND | MountFlags::RDONLY, c"")
            .step(|| "making the root read-only".into())?;
    }
    Ok(())
}

/// One overlay to mount for [`with_views`]: layer snapshots (top first) and an optional
/// writable (upper, work) pair.
#[derive(Debug, Clone)]
pub struct View {
    pub lowers: Vec<PathBuf>,
    pub upper: Option<(PathBuf, PathBuf)>,
    /// See [`mount_overlay`].
    pub volatile_upper: bool,
}

/// Runs `f` with an overlay of `lowers` (and `upper`, if given) mounted at a fresh
/// directory, in a mount namespace private to one thread: no other thread or process sees
/// the mount, and it disappears when `f` returns, whatever happens.
pub fn with_mounted<R: Send>(
    scratch: &Path,
    lowers: &[PathBuf],
    upper: Option<(PathBuf, PathBuf)>,
    f: impl FnOnce(&Path) -> R + Send,
) -> Result<R> {
    with_views(scratch, &[View { lowers: lowers.to_vec(), upper, volatile_upper: false }], |roots| f(&roots[0]))
}

/// Like [`with_mounted`] for several overlays at once (a build step's rootfs and the
/// stages it copies from). A view without lowers is an empty directory.
pub fn with_views<R: Send>(scratch: &Path, views: &[View], f: impl FnOnce(&[PathBuf]) -> R + Send) -> Result<R> {
    let base = scratch.join(format!("mnt-{}-{}", std::process::id(), rand_hex()));
    let points: Vec<PathBuf> = (0..views.len()).map(|i| base.join(i.to_string())).collect();
    for p in &points {
        std::fs::create_dir_all(p).step(|| format!("creating {}", p.display()))?;
    }
    let r = std::thread::scope(|s| {
        s.spawn(|| -> Result<R> {
            #[allow(deprecated)]
            rustix::thread::unshare(rustix::thread::UnshareFlags::FS | rustix::thread::UnshareFlags::NEWNS)
                .step(|| "creating a private mount namespace".into())?;
            m::mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
                .step(|| "making / private".into())?;
            for (v, p) in views.iter().zip(&points) {
                if v.lowers.is_empty() && v.upper.is_none() {
                    continue;
                }
                let mut lowers = v.lowers.clone();
                if lowers.is_empty() {
                    // overlayfs needs a lower layer: an empty one stands for scratch.
                    let empty = p.with_extension("empty");
                    std::fs::create_dir_all(&empty).step(|| format!("creating {}", empty.display()))?;
                    lowers.push(empty);
                }
                mount_overlay(&lowers, v.upper.as_ref(), v.volatile_upper, p)?;
            }
            Ok(f(&points))
        })
        .join()
        .unwrap_or_else(|_| Err(RuntimeError::Invalid("the mount helper thread panicked".into())))
    });
    for p in &points {
        let _ = std::fs::remove_dir(p);
        let _ = std::fs::remove_dir(p.with_extension("empty"));
    }
    let _ = std::fs::remove_dir(&base);
    r
}

pub(crate) fn rand_hex() -> String {
    let mut b = [0u8; 8];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b.iter().map(|x| format!("{x:02x}")).collect()
}
