//! COPY and ADD into a mounted root filesystem, with docker's naming rules: a directory
//! source copies its contents, a file goes to `dest/` + its base name when the
//! destination ends in `/` or is an existing directory, missing parents are created.

use crate::context::{resolve_in_root, Entry, EntryKind, Item};
use crate::error::{BuildError, Result};
use rustix::fs::{AtFlags, Gid, Mode, Timespec, Timestamps, Uid, CWD};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How copied entries are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOpts {
    /// `--chown` or the builder's default (0:0 from the context); None keeps the source's.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`: replaces the permission bits of files and directories.
    pub chmod: Option<u32>,
}

/// Creates `path` (in the root) and its missing parents as 0755 directories owned by
/// `owner`; existing ones are left as they are. Returns the host path.
pub fn mkdir_all(root: &Path, path: impl AsRef<Path>, owner: (u32, u32)) -> Result<PathBuf> {
    made_dirs(root, path.as_ref(), owner).map(|(host, _)| host)
}

/// [`mkdir_all`], also saying whether `path` itself was missing (and made now).
fn made_dirs(root: &Path, path: impl AsRef<Path>, owner: (u32, u32)) -> Result<(PathBuf, bool)> {
    let path = path.as_ref();
    let host = resolve_in_root(root, path, true)?;
    let mut missing = Vec::new();
    let mut p = host.clone();
    while p != root && std::fs::symlink_metadata(&p).is_err() {
        missing.push(p.clone());
        if !p.pop() {
            break;
        }
    }
    if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
        return Err(BuildError::NotADirectory {
            path: path.to_path_buf(),
            parent: p.strip_prefix(root).unwrap_or(&p).to_path_buf(),
        });
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(BuildError::io("creating", path)(e)),
        }
        chown(d, owner)?;
        rustix::fs::chmod(d, Mode::from_raw_mode(0o755)).map_err(BuildError::io("chmod", path))?;
    }
    let made = missing.first() == Some(&host);
    Ok((host, made))
}

fn chown(p: &Path, (u, g): (u32, u32)) -> Result<()> {
    rustix::fs::chownat(CWD, p, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(BuildError::io("chown", p))
}

/// Removes whatever is at `p` unless it is a directory and `keep_dir`.
fn make_room(p: &Path, keep_dir: bool) -> Result<bool> {
    match std::fs::symlink_metadata(p) {
        Err(_) => Ok(false),
        Ok(m) if m.is_dir() && keep_dir => Ok(true),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).map(|()| false).map_err(BuildError::io("replacing", p)),
        Ok(_) => std::fs::remove_file(p).map(|()| false).map_err(BuildError::io("replacing", p)),
    }
}

/// The mode docker's copy leaves on a non-directory it chowned: its copy chowns every
/// copied path (`fixPermissions`) when an owner is given, which COPY and ADD from the
/// context always do (root, or --chown), and `chown(2)` clears setuid, and setgid when
/// group-execute is set, on anything but a directory. So 4755 and 2755 files of a context
/// arrive as 755, while 2745 and the sticky bit stay. Builds rely on this (a context
/// checked out with odd modes yields no setuid binaries), so rbuild follows it; an explicit
/// `--chmod` is applied as written.
fn chowned_mode(mode: u32) -> u32 {
    let mut m = mode & !0o4000;
    if m & 0o010 != 0 {
        m &= !0o2000;
    }
    m
}

/// The file capability of `from`, for a file of a directory copy that keeps owners (COPY
/// --from without --chown): docker archives a directory with its files' capabilities and
/// its untar sets them again. A chowned copy loses them (chown clears a capability), and a
/// single file never has one: docker copies a file through CopyFileWithTar, whose header
/// carries no xattrs. Copies follow docker in both, as images built by it have none there.
fn copy_capability(from: &Path, to: &std::fs::File) -> Result<()> {
    const CAP: &str = "security.capability";
    let mut v = [0u8; 64];
    let n = match rustix::fs::lgetxattr(from, CAP, &mut v[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(BuildError::io("reading the capability of", from)(e)),
    };
    // A revision-3 capability (with a namespaced root uid) goes over as revision 2, as in
    // docker's archives.
    let mut cap = v[..n].to_vec();
    if cap.len() >= 20 && cap[3] == 3 {
        cap.truncate(20);
        cap[3] = 2;
    }
    rustix::fs::fsetxattr(to, CAP, &cap, rustix::fs::XattrFlags::empty())
        .map_err(BuildError::io("setting the capability of", from))
}

/// Writes one entry at host path `to`. `root_of_copy` marks the directory a directory
/// copy lands in: an existing one keeps its metadata. `empty_parent`: the parent was
/// just made, so nothing can be in the way.
fn put(e: &Entry, to: &Path, o: &CopyOpts, root_of_copy: bool, empty_parent: bool) -> Result<()> {
    let make_room = |p: &Path, keep_dir: bool| if empty_parent { Ok(false) } else { make_room(p, keep_dir) };
    let owner = o.owner.unwrap_or((e.uid, e.gid));
    let perm = |m: u32| o.chmod.unwrap_or(m);
    // Non-directories docker chowned lose setuid/setgid; --chmod is exact.
    let leaf_perm = |m: u32| match (o.chmod, o.owner) {
        (Some(c), _) => c,
        (None, Some(_)) => chowned_mode(m),
        (None, None) => m,
    };
    match &e.kind {
        EntryKind::Dir => {
            let existed = make_room(to, true)?;
            if existed && root_of_copy {
                return Ok(());
            }
            if !existed {
                std::fs::create_dir(to).map_err(BuildError::io("creating", to))?;
            }
            chown(to, owner)?;
            rustix::fs::chmod(to, Mode::from_raw_mode(perm(e.mode))).map_err(BuildError::io("chmod", to))?;
        }
        EntryKind::File => {
            make_room(to, false)?;
            let mut src = std::fs::File::open(&e.host).map_err(BuildError::io("reading", &e.host))?;
            let mut dst = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(to)
                .map_err(BuildError::io("creating", to))?;
            std::io::copy(&mut src, &mut dst).map_err(BuildError::io("copying", &e.host))?;
            rustix::fs::fchown(&dst, Some(Uid::from_raw(owner.0)), Some(Gid::from_raw(owner.1)))
                .map_err(BuildError::io("chown", to))?;
            rustix::fs::fchmod(&dst, Mode::from_raw_mode(leaf_perm(e.mode))).map_err(BuildError::io("chmod", to))?;
            if o.owner.is_none() && !root_of_copy {
                copy_capability(&e.host, &dst)?;
            }
            let t = Timespec { tv_sec: e.mtime.0, tv_nsec: e.mtime.1 as _ };
            let _ = rustix::fs::futimens(&dst, &Timestamps { last_access: t, last_modification: t });
        }
        EntryKind::Symlink(target) => {
            make_room(to, false)?;
            std::os::unix::fs::symlink(target, to).map_err(BuildError::io("creating", to))?;
            chown(to, owner)?;
        }
        EntryKind::Other => {
            make_room(to, false)?;
            let ft = rustix::fs::FileType::from_raw_mode(e.raw_mode);
            rustix::fs::mknodat(CWD, to, ft, Mode::from_raw_mode(e.mode), e.rdev)
                .map_err(BuildError::io("creating", to))?;
            chown(to, owner)?;
            let mode = if o.owner.is_some() { chowned_mode(e.mode) } else { e.mode };
            rustix::fs::chmod(to, Mode::from_raw_mode(mode)).map_err(BuildError::io("chmod", to))?;
        }
    }
    Ok(())
}

/// Host path for `dest` in the root, its parent resolved (symlinks followed in scope),
/// its last component not followed.
fn target_path(root: &Path, dest: &Path) -> Result<PathBuf> {
    let b = dest.as_os_str().as_bytes();
    let d = &b[..b.len() - b.iter().rev().take_while(|c| **c == b'/').count()];
    let (parent, name) = match d.iter().rposition(|c| *c == b'/') {
        Some(i) => (&d[..i], &d[i + 1..]),
        None => (&b""[..], d),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return resolve_in_root(root, OsStr::from_bytes(d), true);
    }
    Ok(resolve_in_root(root, OsStr::from_bytes(parent), true)?.join(OsStr::from_bytes(name)))
}

/// Does `dest` name a directory: written with a trailing `/`, or one that exists?
fn is_dir_dest(root: &Path, dest: &str) -> bool {
    dest.ends_with('/') || resolve_in_root(root, dest, true).is_ok_and(|p| p.is_dir())
}

/// Where a file named `name` lands for `dest` (docker's rule: `dest/name` when `dest` is a
/// directory, else `dest` itself), with its missing parents made for `identity`.
/// Returns the path in the image and on the host. `name` is bytes: a context's names
/// need not be UTF-8.
///
/// docker resolves the destination with every symlink followed, its last component too
/// (`ResolveScopedPath`): `COPY f /link` writes through a symlink `/link` into what it
/// points to. Only the name joined to a directory destination is not followed.
fn file_target(
    root: &Path,
    dest: &str,
    dest_is_dir: bool,
    name: &OsStr,
    identity: (u32, u32),
) -> Result<(PathBuf, PathBuf)> {
    if !dest_is_dir {
        let to = resolve_in_root(root, dest, true)?;
        let parent = to.parent().and_then(|p| p.strip_prefix(root).ok()).unwrap_or(Path::new(""));
        mkdir_all(root, Path::new("/").join(parent), identity)?;
        return Ok((PathBuf::from(dest), to));
    }
    let file_dest = Path::new(dest.trim_end_matches('/')).join(name);
    let parent = file_dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("/"));
    mkdir_all(root, parent, identity)?;
    let to = target_path(root, &file_dest)?;
    Ok((file_dest, to))
}

/// The root a copy writes into: a directory, or a step's mounted overlay together with
/// its upper directory.
#[derive(Debug, Clone, Copy)]
pub struct Root<'a> {
    pub path: &'a Path,
    /// The overlay's upper directory. What a copy puts inside a directory it made itself
    /// is written there directly: nothing below can show through a directory that did not
    /// exist, and creating files through overlayfs costs about twice as much. The overlay
    /// never looked at those paths, so it holds no stale entries for them.
    pub upper: Option<&'a Path>,
}

impl<'a> Root<'a> {
    pub fn dir(path: &'a Path) -> Self {
        Root { path, upper: None }
    }

    /// Where to write `to` (a path under the mounted root) when its parent is a directory
    /// this copy made: the same place in the upper directory, when there is one.
    fn direct(&self, to: PathBuf) -> PathBuf {
        match self.upper.zip(to.strip_prefix(self.path).ok()) {
            Some((upper, rel)) => upper.join(rel),
            None => to,
        }
    }
}

/// Copies `items` to `dest` (absolute, trailing `/` meaningful) in `root`.
/// `identity` owns the directories made for the destination.
///
/// A directory is copied in two passes: its directories in order (each before what it
/// holds), then everything else on all cores. Threads started here share this thread's
/// mount namespace, so they see `root` even when it is a private mount.
pub fn copy_items(into: Root<'_>, items: &[Item], dest: &str, identity: (u32, u32), o: &CopyOpts) -> Result<()> {
    let root = into.path;
    let dest_is_dir = is_dir_dest(root, dest);
    for it in items {
        if it.is_dir() {
            // The destination and its missing parents are made as `identity` (the --chown
            // owner), as BuildKit's copy makes them (docker's legacy builder made them as
            // root); then the destination is chowned with what was copied.
            let (host, dest_made) = made_dirs(root, dest, identity)?;
            if let (true, Some(owner)) = (dest_made, o.owner) {
                chown(&host, owner)?;
            }
            // Directories this copy made: nothing was in them, so their files need no room.
            let top = Path::new("");
            let mut fresh: std::collections::HashSet<&Path> = std::collections::HashSet::new();
            if dest_made {
                fresh.insert(top);
            }
            let mut seen: std::collections::HashSet<&Path> = std::collections::HashSet::from([top]);
            let mut rest: Vec<(&Entry, PathBuf, bool)> = Vec::new();
            // Names of one inode: the first is copied, the others linked to it afterwards
            // (through the mounted root, where both names are), as docker's tar of the
            // directory carries them.
            let mut first_of: std::collections::HashMap<(u64, u64), PathBuf> = std::collections::HashMap::new();
            let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
            for e in &it.entries[1..] {
                let to = host.join(&e.rel);
                if e.kind == EntryKind::File && e.nlink > 1 {
                    match first_of.get(&(e.dev, e.ino)) {
                        Some(first) => {
                            links.push((first.clone(), to));
                            continue;
                        }
                        None => {
                            first_of.insert((e.dev, e.ino), to.clone());
                        }
                    }
                }
                let parent_rel = e.rel.parent().unwrap_or(top);
                // A file re-included below an excluded directory comes without its
                // parent: it is made as docker's untar makes it.
                if !seen.contains(parent_rel) {
                    if let Some(parent) = to.parent().filter(|p| !p.exists()) {
                        mkdir_all(root, parent.strip_prefix(root).unwrap_or(parent), o.owner.unwrap_or(identity))?;
                    }
                }
                let in_fresh = fresh.contains(parent_rel);
                let to = if in_fresh { into.direct(to) } else { to };
                if e.kind == EntryKind::Dir {
                    if in_fresh || !to.exists() {
                        fresh.insert(&e.rel);
                    }
                    seen.insert(&e.rel);
                    put(e, &to, o, false, in_fresh)?;
                } else {
                    rest.push((e, to, in_fresh));
                }
            }
            put_all(&rest, o)?;
            for (first, to) in &links {
                if let Some(parent) = to.parent().filter(|p| !p.exists()) {
                    mkdir_all(root, parent.strip_prefix(root).unwrap_or(parent), o.owner.unwrap_or(identity))?;
                }
                make_room(to, false)?;
                std::fs::hard_link(first, to).map_err(BuildError::io("linking", to))?;
            }
            touch_dest(root, &host)?;
            continue;
        }
        let (_, to) = file_target(root, dest, dest_is_dir, it.base_name(), identity)?;
        if to == root {
            return Err(BuildError::OntoRoot(it.path.clone()));
        }
        put(&it.entries[0], &to, o, true, false)?;
    }
    Ok(())
}

/// Marks the directory a directory (or archive) was copied into as changed, as docker's
/// copy changes it: docker untars into the destination chrooted there, and its chroot
/// makes and removes a `.pivot_root` directory in it, so the destination is copied up into
/// the step's layer, with a new mtime, even when nothing was copied (an empty directory,
/// or everything excluded). `/` itself is never part of a layer.
fn touch_dest(root: &Path, host: &Path) -> Result<()> {
    if host == root {
        return Ok(());
    }
    let now = Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW };
    rustix::fs::utimensat(CWD, host, &Timestamps { last_access: now, last_modification: now }, AtFlags::empty())
        .map_err(BuildError::io("updating", host))
}

/// `put` for many non-directory entries, on all cores; the first error wins.
fn put_all(entries: &[(&Entry, PathBuf, bool)], o: &CopyOpts) -> Result<()> {
    // Contiguous runs keep each thread mostly in its own directories.
    const RUN: usize = 64;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(entries.len().div_ceil(RUN)).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed: std::sync::Mutex<Option<BuildError>> = std::sync::Mutex::new(None);
    let work = || loop {
        let start = next.fetch_add(RUN, std::sync::atomic::Ordering::Relaxed);
        if start >= entries.len() || failed.lock().map(|f| f.is_some()).unwrap_or(true) {
            return;
        }
        for (e, to, in_fresh) in &entries[start..(start + RUN).min(entries.len())] {
            if let Err(err) = put(e, to, o, false, *in_fresh) {
                failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(err);
                return;
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Writes `content` as a file at `dest` (COPY <<EOF and downloaded ADD sources use
/// this): mode `mode`, owned by `owner`, mtime `mtime`.
#[allow(clippy::too_many_arguments)]
pub fn write_file(
    root: &Path,
    dest: &str,
    name: &str,
    content: &[u8],
    mode: u32,
    owner: (u32, u32),
    identity: (u32, u32),
    mtime: i64,
) -> Result<()> {
    let (file_dest, to) = file_target(root, dest, is_dir_dest(root, dest), OsStr::new(name), identity)?;
    let file_dest = file_dest.display();
    make_room(&to, false)?;
    std::fs::write(&to, content).map_err(BuildError::io("writing", file_dest.to_string()))?;
    chown(&to, owner)?;
    rustix::fs::chmod(&to, Mode::from_raw_mode(mode)).map_err(BuildError::io("chmod", file_dest.to_string()))?;
    let t = Timespec { tv_sec: mtime, tv_nsec: 0 };
    let _ = rustix::fs::utimensat(
        CWD,
        &to,
        &Timestamps { last_access: t, last_modification: t },
        AtFlags::SYMLINK_NOFOLLOW,
    );
    Ok(())
}

/// Is the file a tar archive, plain or compressed (gzip, bzip2, xz, zstd), as docker's
/// ADD decides: its first header reads.
pub fn is_archive(p: &Path) -> bool {
    std::fs::File::open(p).is_ok_and(rbuild_store::compress::is_tar_archive)
}

/// Extracts an archive into directory `dest` of the root (created if missing), keeping
/// the archive's owners and modes; `.wh.` names are ordinary files here, and symlinks
/// among an entry's parents are followed without leaving `dest`.
///
/// The destination and its missing parents are made as root whatever `--chown` says, as
/// docker's UntarPath makes them (the legacy builder; an ADD --chown of an archive into a
/// new directory left it root:root in docker's images, issue 16); --chown does not apply
/// to an archive's content either.
pub fn extract_archive(root: &Path, archive: &Path, dest: &str) -> Result<()> {
    let host = mkdir_all(root, dest, (0, 0))?;
    let f = std::fs::File::open(archive).map_err(BuildError::io("reading", archive))?;
    let (_, r) = rbuild_store::compress::decompressed(f)?;
    // docker's untar is chrooted at the destination: links resolve inside it.
    rbuild_store::layer::extract_in_root(r, &host, &host)
        .map_err(|source| BuildError::Extract { path: archive.to_path_buf(), source })?;
    touch_dest(root, &host)
}

#[cfg(test)]
mod tests;
