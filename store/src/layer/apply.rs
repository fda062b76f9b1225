//! Applying a layer tar to a directory, safely.
//!
//! Every path is resolved one component at a time with `openat(O_NOFOLLOW)` from a file
//! descriptor of the target root, so no entry can land outside it: `..` components and
//! absolute names are refused, writing through a symlink (or any non-directory) is
//! refused, and hard links must name an existing entry inside the root.

use super::remove::{dir_names, remove_at};
use super::{OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::error::{IoContext, Result, StoreError};
use crate::tar::{Entry, EntryKind, Reader};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io::Read;
use std::path::Path;

/// What whiteouts mean for the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyMode {
    /// The target is a layer snapshot for overlayfs: whiteouts become 0/0 character
    /// devices and opaque markers the `trusted.overlay.opaque` xattr.
    Overlay,
    /// The target is a whole tree: whiteouts delete what they name.
    Merge,
    /// A plain archive extracted into a tree (`ADD app.tar /dst`): `.wh.` names are
    /// ordinary files, as docker's untar treats them.
    Plain,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub entries: u64,
    pub bytes: u64,
}

fn unsafe_entry(path: &[u8], reason: impl Into<String>) -> StoreError {
    StoreError::UnsafeEntry { path: String::from_utf8_lossy(path).into_owned(), reason: reason.into() }
}

/// The components of an entry path, cleaned as Go's `filepath.Clean` cleans a name before
/// docker's untar joins it to the target (`a/../b` is `b`); refuses absolute paths, a `..`
/// that leaves the root and NUL bytes.
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>> {
    if path.first() == Some(&b'/') {
        return Err(unsafe_entry(path, "absolute path"));
    }
    if path.contains(&0) {
        return Err(unsafe_entry(path, "NUL byte in the path"));
    }
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." if out.pop().is_some() => {}
            b".." => return Err(unsafe_entry(path, "path leaves the root (..)")),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn cstr(b: &[u8]) -> CString {
    CString::new(b).unwrap_or_default()
}

fn errno_io(e: Errno) -> std::io::Error {
    e.into()
}

struct Applier {
    root: OwnedFd,
    mode: ApplyMode,
    /// For archives extracted into a container's root: a symlink among an entry's parents
    /// is followed, but resolved inside this root (as docker's chrooted untar does).
    scope: Option<OwnedFd>,
    /// Open directories along the current path: (component, fd).
    stack: Vec<(Vec<u8>, OwnedFd)>,
    /// Paths this layer created (for opaque whiteouts in merge mode).
    created: HashSet<Vec<u8>>,
    dir_times: Vec<(Vec<u8>, i64)>,
    buf: Vec<u8>,
    stats: ApplyStats,
}

impl Applier {
    /// The directory `comps` (relative to the root), creating missing components when
    /// `create` is set. Every component must be a real directory.
    fn dir(&mut self, comps: &[&[u8]], create: bool, entry: &[u8]) -> Result<()> {
        let keep = self.stack.iter().zip(comps.iter()).take_while(|((a, _), b)| a.as_slice() == **b).count();
        self.stack.truncate(keep);
        for c in &comps[keep..] {
            let parent: &OwnedFd = self.stack.last().map(|(_, fd)| fd).unwrap_or(&self.root);
            let name = cstr(c);
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rfs::openat(parent, name.as_c_str(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    rfs::mkdirat(parent, name.as_c_str(), Mode::from_raw_mode(0o755))
                        .ctx(|| format!("creating directory for {}", String::from_utf8_lossy(entry)))?;
                    rfs::openat(parent, name.as_c_str(), flags, Mode::empty())
                        .ctx(|| format!("opening directory for {}", String::from_utf8_lossy(entry)))?
                }
                Err(Errno::NOENT) => return Err(unsafe_entry(entry, "a parent directory does not exist")),
                Err(Errno::NOTDIR) | Err(Errno::LOOP) if self.scope.is_some() => {
                    self.follow_in_scope(parent, &name, create, entry)?
                }
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => {
                    return Err(unsafe_entry(
                        entry,
                        format!("parent {:?} is a symlink or not a directory", String::from_utf8_lossy(c)),
                    ))
                }
                Err(e) => {
                    return Err(StoreError::io(
                        format!("opening parent of {}", String::from_utf8_lossy(entry)),
                        e.into(),
                    ))
                }
            };
            // O_PATH|O_NOFOLLOW can open a symlink itself: make sure it is a directory.
            let st = rfs::fstat(&fd).ctx(|| "stat".into())?;
            let fd = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink && self.scope.is_some() {
                let parent: &OwnedFd = self.stack.last().map(|(_, fd)| fd).unwrap_or(&self.root);
                self.follow_in_scope(parent, &name, create, entry)?
            } else {
                fd
            };
            let st = rfs::fstat(&fd).ctx(|| "stat".into())?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(unsafe_entry(
                    entry,
                    format!("parent {:?} is a symlink or not a directory", String::from_utf8_lossy(c)),
                ));
            }
            self.stack.push((c.to_vec(), fd));
        }
        Ok(())
    }

    /// The directory the symlink `name` in `parent` points to, resolved inside the scope
    /// root (missing directories created when `create`).
    fn follow_in_scope(&self, parent: &OwnedFd, name: &CStr, create: bool, entry: &[u8]) -> Result<OwnedFd> {
        let Some(scope) = &self.scope else { return Err(unsafe_entry(entry, "symlink parent")) };
        let link = rfs::readlinkat(parent, name, Vec::new())
            .ctx(|| format!("reading link for {}", String::from_utf8_lossy(entry)))?;
        let link = link.to_bytes().to_vec();
        let where_is = |fd: &OwnedFd| {
            std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd))).unwrap_or_default()
        };
        let (pp, sp) = (where_is(parent), where_is(scope));
        let rel_parent = pp.strip_prefix(&sp).map_err(|_| unsafe_entry(entry, "parent outside the root"))?;
        let mut target: Vec<u8> =
            if link.starts_with(b"/") { Vec::new() } else { rel_parent.as_os_str().as_encoded_bytes().to_vec() };
        target.push(b'/');
        target.extend_from_slice(&link);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let resolve = rfs::ResolveFlags::IN_ROOT | rfs::ResolveFlags::NO_MAGICLINKS;
        let comps: Vec<&[u8]> = target.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").collect();
        // Open the longest existing prefix, then create the rest.
        let mut cur = rfs::openat2(scope, c".", flags, Mode::empty(), resolve).ctx(|| "opening the root".into())?;
        let mut i = 0;
        while i < comps.len() {
            let prefix = cstr(&comps[..=i].join(&b'/'));
            match rfs::openat2(scope, prefix.as_c_str(), flags, Mode::empty(), resolve) {
                Ok(fd) => cur = fd,
                Err(Errno::NOENT) if create && comps[i] != b".." => {
                    rfs::mkdirat(&cur, cstr(comps[i]).as_c_str(), Mode::from_raw_mode(0o755))
                        .ctx(|| format!("creating directory for {}", String::from_utf8_lossy(entry)))?;
                    cur = rfs::openat2(scope, prefix.as_c_str(), flags, Mode::empty(), resolve)
                        .ctx(|| "opening directory".into())?;
                }
                Err(e) => {
                    return Err(unsafe_entry(
                        entry,
                        format!(
                            "parent {:?} does not lead to a directory: {e}",
                            String::from_utf8_lossy(name.to_bytes())
                        ),
                    ))
                }
            }
            i += 1;
        }
        Ok(cur)
    }

    fn parent_fd(&self) -> &OwnedFd {
        self.stack.last().map(|(_, fd)| fd).unwrap_or(&self.root)
    }

    /// Removes `name` in the current directory, recursively.
    fn remove(&self, name: &CStr) -> Result<()> {
        remove_at(self.parent_fd(), name)
    }

    /// A whiteout entry `base` (`.wh.` + `target`) in the directory `parents`: an opaque
    /// marker, AUFS metadata (ignored), or the removal of one entry.
    fn apply_whiteout(&self, e: &Entry, parents: &[&[u8]], base: &[u8], target: &[u8]) -> Result<()> {
        if base == WHITEOUT_OPAQUE.as_bytes() {
            match self.mode {
                ApplyMode::Overlay => {
                    let dir = rfs::openat(
                        self.parent_fd(),
                        c".",
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .ctx(|| "opening directory".into())?;
                    rfs::fsetxattr(&dir, OPAQUE_XATTR, b"y", rfs::XattrFlags::empty())
                        .ctx(|| format!("marking {} opaque", String::from_utf8_lossy(&e.path)))?;
                }
                ApplyMode::Merge | ApplyMode::Plain => {
                    let prefix: Vec<u8> = parents.join(&b'/');
                    let names = dir_names(self.parent_fd())?;
                    for n in names {
                        let mut p = prefix.clone();
                        if !p.is_empty() {
                            p.push(b'/');
                        }
                        p.extend_from_slice(&n);
                        if !self.created.contains(&p) {
                            self.remove(&cstr(&n))?;
                        }
                    }
                }
            }
            return Ok(());
        }
        if base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            return Ok(()); // other .wh..wh. names are AUFS metadata
        }
        // A whiteout names one entry of its own directory: `.wh..` would delete that
        // directory, `.wh...` the one above it (the root's parent for a top-level
        // entry, outside the target).
        if matches!(target, b"" | b"." | b"..") || target.contains(&b'/') {
            return Err(unsafe_entry(
                &e.path,
                format!("a whiteout must name an entry of its directory, not {:?}", String::from_utf8_lossy(target)),
            ));
        }
        let name = cstr(target);
        self.remove(&name)?;
        if self.mode == ApplyMode::Overlay {
            rfs::mknodat(self.parent_fd(), name.as_c_str(), FileType::CharacterDevice, Mode::empty(), 0)
                .ctx(|| format!("creating whiteout {}", String::from_utf8_lossy(&e.path)))?;
        }
        Ok(())
    }

    /// A hard link entry `name` in the directory `parents` (the current one), to a file
    /// already in the tree.
    fn apply_hardlink(&mut self, e: &Entry, parents: &[&[u8]], name: &CStr, mode: Mode) -> Result<()> {
        let ctx = |what: &str| format!("{what} {}", String::from_utf8_lossy(&e.path));
        let tcomps = components(&e.link).map_err(|_| unsafe_entry(&e.path, "hard link target leaves the root"))?;
        let Some((&tbase, tparents)) = tcomps.split_last() else {
            return Err(unsafe_entry(&e.path, "hard link to the root"));
        };
        // Resolve the target's directory without creating anything.
        let saved: Vec<&[u8]> = parents.to_vec();
        self.dir(tparents, false, &e.path)?;
        let tname = cstr(tbase);
        let tst = rfs::statat(self.parent_fd(), tname.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(|_| {
            unsafe_entry(&e.path, format!("hard link target {:?} does not exist", String::from_utf8_lossy(&e.link)))
        })?;
        if FileType::from_raw_mode(tst.st_mode) == FileType::Directory {
            return Err(unsafe_entry(&e.path, "hard link to a directory"));
        }
        let tdir =
            rfs::openat(self.parent_fd(), c".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .ctx(|| "opening".into())?;
        self.dir(&saved, true, &e.path)?;
        rfs::linkat(&tdir, tname.as_c_str(), self.parent_fd(), name, AtFlags::empty())
            .ctx(|| ctx("creating hard link"))?;
        // docker's untar gives a link entry's owner, mode (unless the inode is a
        // symlink), xattrs and mtime to the inode it shares with its target.
        let pfd = self.parent_fd();
        rfs::chownat(pfd, name, Some(uid(e.uid)?), Some(gid(e.gid)?), AtFlags::SYMLINK_NOFOLLOW)
            .ctx(|| ctx("setting owner of"))?;
        if FileType::from_raw_mode(tst.st_mode) != FileType::Symlink {
            rfs::chmodat(pfd, name, mode, AtFlags::empty()).ctx(|| ctx("setting mode of"))?;
        }
        self.path_xattrs(e, name)?;
        rfs::utimensat(pfd, name, &times(e.mtime), AtFlags::SYMLINK_NOFOLLOW).ctx(|| ctx("setting times of"))?;
        Ok(())
    }

    fn apply_entry<R: Read>(&mut self, e: &Entry, tar: &mut Reader<R>) -> Result<()> {
        let comps = components(&e.path)?;
        let Some((&base, parents)) = comps.split_last() else {
            return Ok(()); // the root itself: its metadata is the target's
        };
        let norm: Vec<u8> = comps.join(&b'/');
        self.dir(parents, true, &e.path)?;

        // Whiteouts.
        if let Some(target) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()).filter(|_| self.mode != ApplyMode::Plain) {
            return self.apply_whiteout(e, parents, base, target);
        }

        let name = cstr(base);
        // Most files are new (all, in a fresh snapshot): created first, no stat unless EEXIST.
        if e.kind == EntryKind::File {
            match self.create_file(&name) {
                Ok(fd) => return self.fill_file(&fd, e, tar, norm),
                Err(Errno::EXIST) => {}
                Err(err) => {
                    return Err(StoreError::io(format!("creating {}", String::from_utf8_lossy(&e.path)), err.into()))
                }
            }
        }
        let pfd = self.parent_fd();
        // What is there now?
        let existing = match rfs::statat(pfd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
            Err(Errno::NOENT) => None,
            Err(err) => return Err(StoreError::io(format!("stat {}", String::from_utf8_lossy(&e.path)), err.into())),
        };
        let keep_dir = e.kind == EntryKind::Dir && existing == Some(FileType::Directory);
        if existing.is_some() && !keep_dir {
            if e.kind == EntryKind::Hardlink && components(&e.link)? == comps {
                return Ok(()); // a link to itself
            }
            self.remove(&name)?;
        }
        let ctx = |what: &str| format!("{what} {}", String::from_utf8_lossy(&e.path));
        let pfd = self.parent_fd();
        let mode = Mode::from_raw_mode(e.mode & 0o7777);
        match e.kind {
            EntryKind::Dir => {
                if !keep_dir {
                    rfs::mkdirat(pfd, name.as_c_str(), Mode::from_raw_mode(0o700)).ctx(|| ctx("creating directory"))?;
                }
                let fd = rfs::openat(
                    pfd,
                    name.as_c_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(|| ctx("opening"))?;
                if keep_dir {
                    // A directory entry carries the directory's whole xattr set.
                    let p = super::write::proc_path(pfd, base);
                    for (k, _) in super::write::list_xattrs(p.as_c_str())? {
                        if k != OPAQUE_XATTR && !e.xattrs.iter().any(|(n, _)| *n == k) {
                            let _ = rfs::fremovexattr(&fd, k.as_str());
                        }
                    }
                }
                self.fd_metadata(&fd, e, mode)?;
                self.dir_times.push((norm.clone(), e.mtime));
            }
            EntryKind::File => {
                let fd = self.create_file(&name).ctx(|| ctx("creating"))?;
                return self.fill_file(&fd, e, tar, norm);
            }
            EntryKind::Symlink => {
                let target = cstr(&e.link);
                rfs::symlinkat(target.as_c_str(), pfd, name.as_c_str()).ctx(|| ctx("creating symlink"))?;
                rfs::chownat(pfd, name.as_c_str(), Some(uid(e.uid)?), Some(gid(e.gid)?), AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx("setting owner of"))?;
                self.path_xattrs(e, &name)?;
                rfs::utimensat(pfd, name.as_c_str(), &times(e.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx("setting times of"))?;
            }
            EntryKind::Hardlink => self.apply_hardlink(e, parents, &name, mode)?,
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                let ft = match e.kind {
                    EntryKind::CharDevice => FileType::CharacterDevice,
                    EntryKind::BlockDevice => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let dev = if e.kind == EntryKind::Fifo { 0 } else { rfs::makedev(e.dev_major, e.dev_minor) };
                rfs::mknodat(pfd, name.as_c_str(), ft, mode, dev).ctx(|| ctx("creating device"))?;
                rfs::chownat(pfd, name.as_c_str(), Some(uid(e.uid)?), Some(gid(e.gid)?), AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx("setting owner of"))?;
                rfs::chmodat(pfd, name.as_c_str(), mode, AtFlags::empty()).ctx(|| ctx("setting mode of"))?;
                self.path_xattrs(e, &name)?;
                rfs::utimensat(pfd, name.as_c_str(), &times(e.mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .ctx(|| ctx("setting times of"))?;
            }
        }
        if self.mode == ApplyMode::Merge {
            self.created.insert(norm);
        }
        Ok(())
    }

    /// A new regular file in the current directory (owner-only until its metadata is set).
    fn create_file(&self, name: &CStr) -> rustix::io::Result<OwnedFd> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rfs::openat(self.parent_fd(), name, flags, Mode::from_raw_mode(0o600))
    }

    /// A created file's content, metadata and times; `norm` is its path in the root.
    fn fill_file<R: Read>(&mut self, fd: &OwnedFd, e: &Entry, tar: &mut Reader<R>, norm: Vec<u8>) -> Result<()> {
        let ctx = |what: &str| format!("{what} {}", String::from_utf8_lossy(&e.path));
        self.file_data(fd, e, tar).map_err(|err| match err {
            StoreError::Io { source, .. } => StoreError::io(ctx("writing"), source),
            other => other,
        })?;
        self.fd_metadata(fd, e, Mode::from_raw_mode(e.mode & 0o7777))?;
        rfs::futimens(fd, &times(e.mtime)).ctx(|| ctx("setting times of"))?;
        if self.mode == ApplyMode::Merge {
            self.created.insert(norm);
        }
        Ok(())
    }

    /// Owner, then mode (chown clears setuid bits), then xattrs.
    fn fd_metadata(&self, fd: &OwnedFd, e: &Entry, mode: Mode) -> Result<()> {
        let ctx = |what: &str| format!("{what} {}", String::from_utf8_lossy(&e.path));
        rfs::fchown(fd, Some(uid(e.uid)?), Some(gid(e.gid)?)).ctx(|| ctx("setting owner of"))?;
        rfs::fchmod(fd, mode).ctx(|| ctx("setting mode of"))?;
        for (k, v) in &e.xattrs {
            match rfs::fsetxattr(fd, k.as_str(), v, rfs::XattrFlags::empty()) {
                Ok(()) | Err(Errno::NOTSUP) => {}
                Err(err) => {
                    return Err(StoreError::io(
                        format!("setting xattr {k} on {}", String::from_utf8_lossy(&e.path)),
                        err.into(),
                    ))
                }
            }
        }
        Ok(())
    }

    fn path_xattrs(&self, e: &Entry, name: &CStr) -> Result<()> {
        if e.xattrs.is_empty() {
            return Ok(());
        }
        let p = super::write::proc_path(self.parent_fd(), name.to_bytes());
        for (k, v) in &e.xattrs {
            match rfs::lsetxattr(p.as_c_str(), k.as_str(), v, rfs::XattrFlags::empty()) {
                // user.* xattrs are not allowed on symlinks and devices; nor is anything
                // on filesystems without xattrs.
                Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) => {}
                Err(err) => {
                    return Err(StoreError::io(
                        format!("setting xattr {k} on {}", String::from_utf8_lossy(&e.path)),
                        err.into(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Writes the file's content. Sparse entries keep their holes; long runs of zeros in
    /// other files become holes too, so sparse files survive a layer round trip.
    fn file_data<R: Read>(&mut self, fd: &OwnedFd, e: &Entry, tar: &mut Reader<R>) -> Result<()> {
        let regions: Vec<(u64, u64)> = match &e.sparse {
            Some(s) => s.regions.clone(),
            None => vec![(0, e.size)],
        };
        let real = e.content_size();
        let mut data = tar.data();
        let mut end = 0u64;
        // Bytes of a big file handed to writeback so far (see WRITEBACK).
        let mut kicked = 0u64;
        for (off, len) in regions {
            let mut pos = off;
            let stop = off + len;
            while pos < stop {
                let want = ((stop - pos) as usize).min(self.buf.len());
                data.read_exact(&mut self.buf[..want]).map_err(|err| StoreError::io("reading archive", err))?;
                let chunk = &self.buf[..want];
                // In big files, 64 KiB blocks of zeros are not written: they become holes.
                const HOLE: usize = 64 * 1024;
                let mut at = 0;
                while at < want {
                    let mut end = (at + HOLE).min(want);
                    let zero = real >= 2 * HOLE as u64 && end - at == HOLE && chunk[at..end].iter().all(|&b| b == 0);
                    if !zero {
                        // Coalesce with following non-zero blocks into one write.
                        while end < want {
                            let next = (end + HOLE).min(want);
                            if next - end == HOLE && real >= 2 * HOLE as u64 && chunk[end..next].iter().all(|&b| b == 0)
                            {
                                break;
                            }
                            end = next;
                        }
                        let mut written = at;
                        while written < end {
                            let n = rustix::io::pwrite(fd.as_fd(), &chunk[written..end], pos + written as u64)
                                .map_err(errno_io)
                                .map_err(|err| StoreError::io("writing", err))?;
                            written += n;
                        }
                    }
                    at = end;
                }
                pos += want as u64;
                if real >= WRITEBACK && pos - kicked >= WRITEBACK {
                    kicked = start_writeback(fd, kicked, pos);
                }
            }
            end = end.max(stop);
            self.stats.bytes += len;
        }
        if end < real || e.sparse.is_some() || real >= 2 * 64 * 1024 {
            rfs::ftruncate(fd, real).map_err(errno_io).map_err(|err| StoreError::io("setting size", err))?;
        }
        if real >= WRITEBACK && kicked < end {
            start_writeback(fd, kicked, end);
        }
        Ok(())
    }

    fn finish_dir_times(&mut self) -> Result<()> {
        let times_list = std::mem::take(&mut self.dir_times);
        // Deepest first, so setting a parent's time is not undone by a child.
        for (path, mtime) in times_list.into_iter().rev() {
            let comps = components(&path)?;
            let Some((&base, parents)) = comps.split_last() else { continue };
            let owned: Vec<Vec<u8>> = parents.iter().map(|c| c.to_vec()).collect();
            let refs: Vec<&[u8]> = owned.iter().map(|c| c.as_slice()).collect();
            if self.dir(&refs, false, &path).is_err() {
                continue; // removed by a later whiteout
            }
            let name = cstr(base);
            let _ = rfs::utimensat(self.parent_fd(), name.as_c_str(), &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
        }
        Ok(())
    }
}

/// Files this large are handed to writeback every this many bytes as they are written:
/// the disk works during the download and the unpack rather than all in the syncfs
/// that makes a loaded or imported layer durable ([`crate::Store::make_durable`]).
const WRITEBACK: u64 = 8 << 20;

/// Starts writeback (no wait) of `[from, to)` of `fd`; returns `to`. Refused: the final sync does it.
fn start_writeback(fd: &OwnedFd, from: u64, to: u64) -> u64 {
    if let (Ok(off), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) {
        let _ = crate::sys::sync_file_range(fd, off, len, libc::SYNC_FILE_RANGE_WRITE);
    }
    to
}

fn uid(v: u64) -> Result<rfs::Uid> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v != u32::MAX)
        .map(rfs::Uid::from_raw)
        .ok_or_else(|| StoreError::archive(format!("uid {v} out of range")))
}

fn gid(v: u64) -> Result<rfs::Gid> {
    u32::try_from(v)
        .ok()
        .filter(|v| *v != u32::MAX)
        .map(rfs::Gid::from_raw)
        .ok_or_else(|| StoreError::archive(format!("gid {v} out of range")))
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec { tv_sec: mtime, tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

/// Applies the layer tar read from `r` onto the directory `root` (which must exist).
pub fn apply_layer(r: impl Read, root: &Path, mode: ApplyMode) -> Result<ApplyStats> {
    apply_with_scope(r, root, mode, None)
}

/// Extracts a plain archive (`ADD app.tar /dst`) into `dest`, a directory inside the
/// container root `scope`: symlinks among the entries' parents are followed, resolved
/// inside `scope`, as docker's chrooted untar follows them.
pub fn extract_in_root(r: impl Read, scope: &Path, dest: &Path) -> Result<ApplyStats> {
    let scope_fd =
        rfs::open(scope, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).at("opening", scope)?;
    apply_with_scope(r, dest, ApplyMode::Plain, Some(scope_fd))
}

fn apply_with_scope(r: impl Read, root: &Path, mode: ApplyMode, scope: Option<OwnedFd>) -> Result<ApplyStats> {
    let root_fd =
        rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).at("opening", root)?;
    let mut a = Applier {
        root: root_fd,
        mode,
        scope,
        stack: Vec::new(),
        created: HashSet::new(),
        dir_times: Vec::new(),
        buf: vec![0u8; 1 << 20],
        stats: ApplyStats::default(),
    };
    let mut tar = Reader::new(r);
    while let Some(e) = tar.next_entry()? {
        a.apply_entry(&e, &mut tar)?;
        a.stats.entries += 1;
    }
    a.finish_dir_times()?;
    Ok(a.stats)
}
