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

fn io_err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> BuildError {
    BuildError::msg(format!("{what}: {e}"))
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
        return Err(BuildError::msg(format!(
            "cannot create directory {}: {} is not a directory",
            path.display(),
            p.strip_prefix(root).unwrap_or(&p).display()
        )));
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(format!("creating {}", path.display()), e)),
        }
        chown(d, owner)?;
        rustix::fs::chmod(d, Mode::from_raw_mode(0o755)).map_err(|e| io_err(format!("chmod {}", path.display()), e))?;
    }
    let made = missing.first() == Some(&host);
    Ok((host, made))
}

fn chown(p: &Path, (u, g): (u32, u32)) -> Result<()> {
    rustix::fs::chownat(CWD, p, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(format!("chown {}", p.display()), e))
}

/// Removes whatever is at `p` unless it is a directory and `keep_dir`.
fn make_room(p: &Path, keep_dir: bool) -> Result<bool> {
    match std::fs::symlink_metadata(p) {
        Err(_) => Ok(false),
        Ok(m) if m.is_dir() && keep_dir => Ok(true),
        Ok(m) if m.is_dir() => {
            std::fs::remove_dir_all(p).map(|_| false).map_err(|e| io_err(format!("replacing {}", p.display()), e))
        }
        Ok(_) => std::fs::remove_file(p).map(|_| false).map_err(|e| io_err(format!("replacing {}", p.display()), e)),
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
        Err(e) => return Err(io_err(format!("reading the capability of {}", from.display()), e)),
    };
    // A revision-3 capability (with a namespaced root uid) goes over as revision 2, as in
    // docker's archives.
    let mut cap = v[..n].to_vec();
    if cap.len() >= 20 && cap[3] == 3 {
        cap.truncate(20);
        cap[3] = 2;
    }
    rustix::fs::fsetxattr(to, CAP, &cap, rustix::fs::XattrFlags::empty())
        .map_err(|e| io_err(format!("setting the capability of {}", from.display()), e))
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
                std::fs::create_dir(to).map_err(|err| io_err(format!("creating {}", to.display()), err))?;
            }
            chown(to, owner)?;
            rustix::fs::chmod(to, Mode::from_raw_mode(perm(e.mode)))
                .map_err(|err| io_err(format!("chmod {}", to.display()), err))?;
        }
        EntryKind::File => {
            make_room(to, false)?;
            let mut src =
                std::fs::File::open(&e.host).map_err(|err| io_err(format!("reading {}", e.host.display()), err))?;
            let mut dst = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(to)
                .map_err(|err| io_err(format!("creating {}", to.display()), err))?;
            std::io::copy(&mut src, &mut dst).map_err(|err| io_err(format!("copying {}", e.host.display()), err))?;
            rustix::fs::fchown(&dst, Some(Uid::from_raw(owner.0)), Some(Gid::from_raw(owner.1)))
                .map_err(|err| io_err(format!("chown {}", to.display()), err))?;
            rustix::fs::fchmod(&dst, Mode::from_raw_mode(leaf_perm(e.mode)))
                .map_err(|err| io_err(format!("chmod {}", to.display()), err))?;
            if o.owner.is_none() && !root_of_copy {
                copy_capability(&e.host, &dst)?;
            }
            let t = Timespec { tv_sec: e.mtime.0, tv_nsec: e.mtime.1 as _ };
            let _ = rustix::fs::futimens(&dst, &Timestamps { last_access: t, last_modification: t });
        }
        EntryKind::Symlink(target) => {
            make_room(to, false)?;
            std::os::unix::fs::symlink(target, to).map_err(|err| io_err(format!("creating {}", to.display()), err))?;
            chown(to, owner)?;
        }
        EntryKind::Other => {
            make_room(to, false)?;
            let ft = rustix::fs::FileType::from_raw_mode(e.raw_mode);
            rustix::fs::mknodat(CWD, to, ft, Mode::from_raw_mode(e.mode), e.rdev)
                .map_err(|err| io_err(format!("creating {}", to.display()), err))?;
            chown(to, owner)?;
            let mode = if o.owner.is_some() { chowned_mode(e.mode) } else { e.mode };
            rustix::fs::chmod(to, Mode::from_raw_mode(mode))
                .map_err(|err| io_err(format!("chmod {}", to.display()), err))?;
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
            // docker's CopyWithTar makes the destination and its missing parents as root
            // (MkdirAllAndChownNew with the root pair); then only the destination is
            // chowned, with what was copied. (A file's missing parents, below, get the
            // owner instead: copyFile makes them with it.)
            let (host, dest_made) = made_dirs(root, dest, (0, 0))?;
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
                std::fs::hard_link(first, to).map_err(|e| io_err(format!("linking {}", to.display()), e))?;
            }
            touch_dest(root, &host)?;
            continue;
        }
        let (_, to) = file_target(root, dest, dest_is_dir, it.base_name(), identity)?;
        if to == root {
            return Err(BuildError::msg(format!("cannot copy {} onto /", it.path.display())));
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
        .map_err(|e| io_err(format!("updating {}", host.display()), e))
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
    std::fs::write(&to, content).map_err(|e| io_err(format!("writing {file_dest}"), e))?;
    chown(&to, owner)?;
    rustix::fs::chmod(&to, Mode::from_raw_mode(mode)).map_err(|e| io_err(format!("chmod {file_dest}"), e))?;
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
/// docker's UntarPath makes them; --chown does not apply to an archive's content either.
pub fn extract_archive(root: &Path, archive: &Path, dest: &str) -> Result<()> {
    let host = mkdir_all(root, dest, (0, 0))?;
    let f = std::fs::File::open(archive).map_err(|e| io_err(format!("reading {}", archive.display()), e))?;
    let (_, r) = rbuild_store::compress::decompressed(f)?;
    // docker's untar is chrooted at the destination: links resolve inside it.
    rbuild_store::layer::extract_in_root(r, &host, &host)
        .map_err(|e| BuildError::msg(format!("extracting {}: {e}", archive.display())))?;
    touch_dest(root, &host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Source;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/dir/sub")).unwrap();
        std::fs::write(d.path().join("src/f.txt"), "f").unwrap();
        std::fs::write(d.path().join("src/dir/sub/g"), "g").unwrap();
        std::fs::create_dir_all(d.path().join("root/existing")).unwrap();
        d
    }

    /// `n` files `m<i % dirs>/f<i>` holding "content <i>", in order.
    fn numbered_files(root: &Path, n: usize, dirs: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| {
                let p = root.join(format!("m{}/f{i:03}", i % dirs));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, format!("content {i}")).unwrap();
                p
            })
            .collect()
    }

    #[test]
    fn docker_naming_rules() {
        let d = tree();
        let src = Source { root: d.path().join("src"), ignore: None, exclude: None, parallel: true };
        let root = d.path().join("root");
        let o = CopyOpts { owner: Some((0, 0)), chmod: None };
        copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/existing", (0, 0), &o).unwrap();
        assert!(root.join("existing/f.txt").is_file());
        copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/new/", (0, 0), &o).unwrap();
        assert!(root.join("new/f.txt").is_file());
        copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/renamed", (0, 0), &o).unwrap();
        assert!(root.join("renamed").is_file());
        copy_items(Root::dir(&root), &src.select("dir").unwrap(), "/d", (0, 0), &o).unwrap();
        assert!(root.join("d/sub/g").is_file());
        assert!(!root.join("d/dir").exists());
        // a symlink in the destination resolves inside the root
        std::os::unix::fs::symlink("/existing", root.join("link")).unwrap();
        copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/link/x", (0, 0), &o).unwrap();
        assert!(root.join("existing/x").is_file());
        // so does a symlink that is the destination itself (dangling: its target is made)
        std::fs::write(root.join("real"), "old").unwrap();
        std::os::unix::fs::symlink("/real", root.join("to-real")).unwrap();
        std::os::unix::fs::symlink("/made/here", root.join("dangling")).unwrap();
        for dest in ["/to-real", "/dangling"] {
            copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), dest, (0, 0), &o).unwrap();
        }
        assert!(root.join("to-real").is_symlink() && root.join("dangling").is_symlink());
        assert_eq!(std::fs::read(root.join("real")).unwrap(), std::fs::read(src.root.join("f.txt")).unwrap());
        assert!(root.join("made/here").is_file());
        // a symlink named like the file in a directory destination is replaced
        std::fs::remove_file(root.join("existing/f.txt")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("existing/f.txt")).unwrap();
        copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/existing/", (0, 0), &o).unwrap();
        assert!(root.join("existing/f.txt").is_file() && !root.join("existing/f.txt").is_symlink());
    }

    /// Names of one inode in a copied directory stay one inode, as docker's copy keeps
    /// them (its tar of the directory has hard links); through an overlay whose new
    /// directories are filled in the upper dir, too.
    #[test]
    fn hard_links_inside_a_directory_copy_stay_links() {
        use rbuild_runtime::{with_views, View};
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("d/sub")).unwrap();
        std::fs::write(src.join("d/a"), "x").unwrap();
        std::fs::hard_link(src.join("d/a"), src.join("d/sub/b")).unwrap();
        std::fs::hard_link(src.join("d/a"), src.join("d/c")).unwrap();
        let items = Source { root: src, ignore: None, exclude: None, parallel: true }.select("d").unwrap();
        let lower = d.path().join("lower");
        std::fs::create_dir_all(lower.join("srv")).unwrap();
        let (upper, work) = (d.path().join("upper"), d.path().join("work"));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let view = View { lowers: vec![lower], upper: Some((upper.clone(), work)), volatile_upper: true };
        let o = CopyOpts { owner: Some((0, 0)), chmod: None };
        let inodes = with_views(&d.path().join("scratch"), &[view], |roots| {
            let r = &roots[0];
            copy_items(Root { path: r, upper: Some(&upper) }, &items, "/srv/new/", (0, 0), &o).unwrap();
            ["srv/new/a", "srv/new/sub/b", "srv/new/c"].map(|p| {
                let m = std::fs::metadata(r.join(p)).unwrap();
                (m.ino(), m.nlink())
            })
        })
        .unwrap();
        assert_eq!(inodes[0], inodes[1]);
        assert_eq!(inodes[0], inodes[2]);
        assert_eq!(inodes[0].1, 3);
    }

    /// A name that is not UTF-8 lands as it is, as a file copied alone and inside a
    /// directory copy.
    #[test]
    fn names_that_are_not_utf8_are_copied_as_they_are() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        let odd = OsStr::from_bytes(b"caf\xe9");
        std::fs::create_dir_all(src.join("dir").join(odd)).unwrap();
        std::fs::write(src.join("dir").join(odd).join(odd), "x").unwrap();
        std::fs::write(src.join(odd), "y").unwrap();
        let source = Source { root: src, ignore: None, exclude: None, parallel: true };
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let o = CopyOpts { owner: Some((0, 0)), chmod: None };
        copy_items(Root::dir(&root), &source.select("dir").unwrap(), "/d/", (0, 0), &o).unwrap();
        copy_items(Root::dir(&root), &source.select("caf*").unwrap(), "/f/", (0, 0), &o).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("d").join(odd).join(odd)).unwrap(), "x");
        assert_eq!(std::fs::read_to_string(root.join("f").join(odd)).unwrap(), "y");
    }

    /// Inside a directory the copy made, files go straight to the overlay's upper dir;
    /// elsewhere through the overlay. Seen again through a fresh mount, the tree is the
    /// one a copy through the overlay alone makes.
    #[test]
    fn a_copy_into_an_overlay_fills_new_directories_through_the_upper_dir() {
        use rbuild_runtime::{with_views, View};
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let src_root = d.path().join("src");
        numbered_files(&src_root.join("pkg"), 300, 3);
        std::fs::write(src_root.join("top.txt"), "new top").unwrap();
        std::fs::set_permissions(src_root.join("pkg/m1"), std::fs::Permissions::from_mode(0o700)).unwrap();
        // The image already has /app with a file the copy replaces and one it keeps.
        let lower = d.path().join("lower");
        std::fs::create_dir_all(lower.join("app")).unwrap();
        std::fs::write(lower.join("app/top.txt"), "old top").unwrap();
        std::fs::write(lower.join("app/keep"), "kept").unwrap();
        let (upper, work) = (d.path().join("upper"), d.path().join("work"));
        for p in [&upper, &work] {
            std::fs::create_dir(p).unwrap();
        }
        let scratch = d.path().join("scratch");
        let view =
            |upper: Option<(PathBuf, PathBuf)>| View { lowers: vec![lower.clone()], upper, volatile_upper: true };
        let items = Source { root: src_root, ignore: None, exclude: None, parallel: true }.select(".").unwrap();
        let o = CopyOpts { owner: Some((7, 8)), chmod: None };
        with_views(&scratch, &[view(Some((upper.clone(), work.clone())))], |roots| {
            copy_items(Root { path: &roots[0], upper: Some(&upper) }, &items, "/app/", (0, 0), &o)
        })
        .unwrap()
        .unwrap();
        assert!(upper.join("app/pkg/m2/f299").is_file(), "new directories are filled in the upper dir");
        // Lowers: the step's upper over the image.
        let merged = with_views(
            &scratch,
            &[View { lowers: vec![upper.clone(), lower.clone()], upper: None, volatile_upper: false }],
            |roots| {
                let r = &roots[0];
                let read = |p: &str| std::fs::read_to_string(r.join(p)).unwrap();
                assert_eq!(read("app/top.txt"), "new top");
                assert_eq!(read("app/keep"), "kept");
                for i in 0..300 {
                    assert_eq!(read(&format!("app/pkg/m{}/f{i:03}", i % 3)), format!("content {i}"));
                }
                let m1 = std::fs::metadata(r.join("app/pkg/m1")).unwrap();
                (m1.mode() & 0o7777, m1.uid(), m1.gid(), std::fs::metadata(r.join("app/pkg/m0/f000")).unwrap().uid())
            },
        )
        .unwrap();
        assert_eq!(merged, (0o700, 7, 8, 7));
    }

    fn mode_of(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// Context files with setuid/setgid bits, copied as docker copies them.
    fn setuid_tree(src: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(src.join("d2775")).unwrap();
        std::fs::set_permissions(src.join("d2775"), std::fs::Permissions::from_mode(0o2775)).unwrap();
        for m in [0o4755, 0o2755, 0o6755, 0o2745, 0o1755, 0o7777, 0o640] {
            let p = src.join(format!("f{m:o}"));
            std::fs::write(&p, "x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        rustix::fs::mknodat(CWD, src.join("fifo"), rustix::fs::FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
        rustix::fs::chmod(src.join("fifo"), Mode::from_raw_mode(0o4755)).unwrap();
    }

    #[test]
    fn a_chowned_copy_drops_setuid_and_setgid_of_files_as_docker_does() {
        let d = tempfile::tempdir().unwrap();
        setuid_tree(&d.path().join("src"));
        let items =
            Source { root: d.path().join("src"), ignore: None, exclude: None, parallel: true }.select(".").unwrap();
        let copy = |o: CopyOpts, name: &str| -> Vec<(String, u32)> {
            let root = d.path().join(name);
            std::fs::create_dir(&root).unwrap();
            copy_items(Root::dir(&root), &items, "/c/", (0, 0), &o).unwrap();
            let mut v: Vec<_> = std::fs::read_dir(root.join("c"))
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.file_name().to_string_lossy().into_owned(), mode_of(&e.path()))
                })
                .collect();
            v.sort();
            v
        };
        let all = |ms: [u32; 9]| -> Vec<(String, u32)> {
            ["d2775", "f1755", "f2745", "f2755", "f4755", "f640", "f6755", "f7777", "fifo"]
                .iter()
                .zip(ms)
                .map(|(n, m)| (n.to_string(), m))
                .collect()
        };
        // From the context (owned by root, or --chown): setuid goes, setgid with g+x goes,
        // the sticky bit and directories keep theirs.
        assert_eq!(
            copy(CopyOpts { owner: Some((0, 0)), chmod: None }, "chowned"),
            all([0o2775, 0o1755, 0o2745, 0o755, 0o755, 0o640, 0o755, 0o1777, 0o755])
        );
        // COPY --from without --chown keeps owners, and the bits.
        assert_eq!(
            copy(CopyOpts { owner: None, chmod: None }, "kept"),
            all([0o2775, 0o1755, 0o2745, 0o2755, 0o4755, 0o640, 0o6755, 0o7777, 0o4755])
        );
        // --chmod is applied as written.
        assert_eq!(copy(CopyOpts { owner: Some((0, 0)), chmod: Some(0o4711) }, "chmod")[4], ("f4755".into(), 0o4711));
    }

    /// A directory COPY --from without --chown keeps its files' capabilities, as docker's
    /// archived copy does; a chowned copy, and a copy of the file alone, have none.
    #[test]
    fn a_copy_that_keeps_owners_keeps_the_file_capability() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: setting security.capability needs root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("ping"), "elf").unwrap();
        // cap_net_raw permitted and effective, revision 3 (with a root uid).
        let mut v3 = vec![0x01, 0, 0, 3, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        v3.extend_from_slice(&1000u32.to_le_bytes());
        let cap = "security.capability";
        rustix::fs::lsetxattr(src.join("ping"), cap, &v3, rustix::fs::XattrFlags::empty()).unwrap();
        let source = Source { root: src, ignore: None, exclude: None, parallel: true };
        let get = |p: &Path| {
            let mut v = [0u8; 64];
            rustix::fs::lgetxattr(p, cap, &mut v[..]).ok().map(|n| v[..n].to_vec())
        };
        let mut v2 = v3[..20].to_vec();
        v2[3] = 2; // kept as revision 2
        for (what, owner, want) in [(".", None, Some(v2)), (".", Some((0, 0)), None), ("ping", None, None)] {
            let root = d.path().join(format!("root-{what}-{}", owner.is_some()));
            std::fs::create_dir(&root).unwrap();
            let o = CopyOpts { owner, chmod: None };
            copy_items(Root::dir(&root), &source.select(what).unwrap(), "/bin/", (0, 0), &o).unwrap();
            assert_eq!(get(&root.join("bin/ping")), want, "{what} owner {owner:?}");
        }
    }

    /// Ownership of what a copy creates, as docker's copy gives it: a directory copy makes
    /// the destination's parents as root and chowns the destination; a file copy makes
    /// the parents with the owner; an archive's destination is root's.
    #[test]
    fn directories_a_copy_makes_are_owned_as_dockers_are() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("dir/x")).unwrap();
        std::fs::write(src.join("f"), "f").unwrap();
        let tar = d.path().join("a.tar");
        let mut w = rbuild_store::tar::Writer::new(std::fs::File::create(&tar).unwrap());
        let mut e = rbuild_store::tar::Entry::new("x/y", rbuild_store::tar::EntryKind::File);
        (e.uid, e.gid, e.size) = (7, 8, 1);
        w.append(&e, &mut &b"y"[..]).unwrap();
        w.finish().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let source = Source { root: src, ignore: None, exclude: None, parallel: true };
        let o = CopyOpts { owner: Some((1000, 1000)), chmod: None };
        copy_items(Root::dir(&root), &source.select("dir").unwrap(), "/new/sub/", (1000, 1000), &o).unwrap();
        copy_items(Root::dir(&root), &source.select("f").unwrap(), "/new2/sub/", (1000, 1000), &o).unwrap();
        extract_archive(&root, &tar, "/new3/sub/").unwrap();
        let owner = |p: &str| {
            let m = std::fs::symlink_metadata(root.join(p)).unwrap();
            (m.uid(), m.gid())
        };
        let got: Vec<_> =
            ["new", "new/sub", "new/sub/x", "new2", "new2/sub", "new2/sub/f", "new3", "new3/sub", "new3/sub/x/y"]
                .iter()
                .map(|p| (p.to_string(), owner(p)))
                .collect();
        let want: Vec<_> = [
            ("new", (0, 0)),
            ("new/sub", (1000, 1000)),
            ("new/sub/x", (1000, 1000)),
            ("new2", (1000, 1000)),
            ("new2/sub", (1000, 1000)),
            ("new2/sub/f", (1000, 1000)),
            ("new3", (0, 0)),
            ("new3/sub", (0, 0)),
            ("new3/sub/x/y", (7, 8)),
        ]
        .iter()
        .map(|(p, o)| (p.to_string(), *o))
        .collect();
        assert_eq!(got, want);
    }

    /// docker's copy of a directory changes the destination even when nothing lands in it
    /// (its untar is chrooted there): the step's layer has the destination, `/` excepted.
    #[test]
    fn a_directory_copy_changes_its_destination_even_when_empty() {
        use rbuild_runtime::{with_views, View};
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/empty")).unwrap();
        let lower = d.path().join("lower");
        std::fs::create_dir_all(lower.join("tmp")).unwrap();
        let items =
            Source { root: d.path().join("src"), ignore: None, exclude: None, parallel: true }.select("empty").unwrap();
        let o = CopyOpts { owner: Some((0, 0)), chmod: None };
        for (dest, lands) in [("/", false), ("/tmp/", true)] {
            let up = d.path().join(format!("upper{}", dest.len()));
            let (upper, work) = (up.join("upper"), up.join("work"));
            std::fs::create_dir_all(&upper).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            let view = View { lowers: vec![lower.clone()], upper: Some((upper.clone(), work)), volatile_upper: true };
            with_views(&d.path().join("scratch"), &[view], |roots| {
                copy_items(Root { path: &roots[0], upper: Some(&upper) }, &items, dest, (0, 0), &o)
            })
            .unwrap()
            .unwrap();
            assert_eq!(upper.join("tmp").is_dir(), lands, "{dest}");
            assert_eq!(rbuild_store::layer::writes_nothing(&upper).unwrap(), !lands, "{dest}");
        }
    }

    #[test]
    fn large_directories_copy_on_all_cores_and_replace_what_was_there() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let src_root = d.path().join("src");
        for (i, p) in numbered_files(&src_root, 700, 7).iter().enumerate() {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600 + (i % 2) as u32 * 0o55)).unwrap();
        }
        let root = d.path().join("root");
        // In the way: a directory where a file goes, a file where a directory goes.
        std::fs::create_dir_all(root.join("app/m0/f000/old")).unwrap();
        std::fs::write(root.join("app/m1"), "a file").unwrap();
        let src = Source { root: src_root.clone(), ignore: None, exclude: None, parallel: true };
        let o = CopyOpts { owner: Some((0, 0)), chmod: None };
        copy_items(Root::dir(&root), &src.select(".").unwrap(), "/app", (0, 0), &o).unwrap();
        for i in 0..700 {
            let p = root.join(format!("app/m{}/f{i:03}", i % 7));
            assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("content {i}"), "{}", p.display());
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600 + (i % 2) as u32 * 0o55);
        }
        // An error on a worker thread is the copy's error.
        let mut items = Source { root: src_root, ignore: None, exclude: None, parallel: true }.select(".").unwrap();
        let victim = items[0].entries.iter_mut().find(|e| e.rel == Path::new("m6/f699")).unwrap();
        victim.host = d.path().join("missing");
        std::fs::create_dir(d.path().join("root2")).unwrap();
        let e = copy_items(Root::dir(&d.path().join("root2")), &items, "/app", (0, 0), &o).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
