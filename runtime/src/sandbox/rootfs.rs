//! The sandbox's root filesystem: an overlay of the image's layer snapshots (plus the
//! init layer) and a writable upper dir, assembled at a mount point and pivoted into.
//! Also the builder's way to look at layers: [`with_views`] mounts overlays in a mount
//! namespace private to one thread.
//!
//! All of this happens in the sandbox's own mount namespace: when its last process
//! exits, the kernel removes every mount, so nothing is left on the host.

use super::error::SandboxError;
use super::spec::Spec;
use crate::error::{Result, RuntimeError, Step};
use crate::syscall::{Linux, OverlayUpper, Syscall};
use rustix::mount::MountFlags;
use rustix::thread::UnshareFlags;
use std::path::{Path, PathBuf};

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
                rustix::fs::chmod(&path, rustix::fs::Mode::from_raw_mode(mode))
                    .step(|| format!("chmod {}", path.display()))?;
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
pub(crate) fn mount_overlay(
    sys: &dyn Syscall,
    lowers: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    volatile: bool,
    target: &Path,
) -> Result<()> {
    if lowers.is_empty() {
        return Err(SandboxError::NoLowerLayer.into());
    }
    // overlayfs refuses a layer twice (ELOOP). Two equal layers in one image (two steps
    // with the same diff, often empty) look the same with only the upper one: everything
    // the lower copy shows, the upper copy shows first.
    let mut seen = std::collections::HashSet::new();
    let deduped: Vec<PathBuf> = lowers.iter().filter(|l| seen.insert((*l).clone())).cloned().collect();
    if deduped.len() == 1 && upper.is_none() {
        // overlayfs wants two lowers without an upper; a read-only bind is the same thing.
        sys.bind(&deduped[0], target, false).step(|| format!("bind-mounting {}", deduped[0].display()))?;
        return sys.remount(target, MountFlags::RDONLY).step(|| "making the root read-only".into());
    }
    let upper = upper.map(|(u, w)| OverlayUpper { upper: u, work: w, volatile });
    sys.mount_overlay(&deduped, upper, target).step(|| format!("mounting the overlay at {}", target.display()))
}

/// Builds the sandbox's root inside its (new) mount namespace and pivots into it:
/// the overlay, then the kernel filesystems, devices and mounts ([`super::mounts`]),
/// then pivot_root. `console` is the pty slave to show as /dev/console, if any.
pub(crate) fn setup(sys: &dyn Syscall, spec: &Spec, console: Option<&Path>) -> Result<()> {
    // Nothing we mount may propagate back to the host.
    sys.make_rprivate(Path::new("/")).step(|| "making / private".into())?;
    let r = &spec.root;
    mount_overlay(sys, &r.lowers, r.upper.as_ref(), r.volatile_upper, &r.mountpoint)?;
    let root = sys.open_dir(&r.mountpoint).step(|| format!("opening {}", r.mountpoint.display()))?;
    super::mounts::setup(sys, &root, spec, console)?;
    drop(root);
    sys.pivot_root(&r.mountpoint).step(|| "pivot_root".into())?;
    if r.readonly {
        sys.remount(Path::new("/"), MountFlags::RDONLY).step(|| "making the root read-only".into())?;
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
            let sys = Linux;
            sys.unshare(UnshareFlags::FS | UnshareFlags::NEWNS).step(|| "creating a private mount namespace".into())?;
            sys.make_rprivate(Path::new("/")).step(|| "making / private".into())?;
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
                mount_overlay(&sys, &lowers, v.upper.as_ref(), v.volatile_upper, p)?;
            }
            Ok(f(&points))
        })
        .join()
        .unwrap_or_else(|_| Err(SandboxError::MountThread.into()))
    });
    for p in &points {
        let _ = std::fs::remove_dir(p);
        let _ = std::fs::remove_dir(p.with_extension("empty"));
    }
    let _ = std::fs::remove_dir(&base);
    r
}

/// 16 random hex digits.
pub(crate) fn rand_hex() -> String {
    let mut b = [0u8; 8];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b.iter().map(|x| format!("{x:02x}")).collect()
}
