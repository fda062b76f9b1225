//! A directory tree (an overlay upper dir, or any tree) as a deterministic layer tar.

use super::{OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::error::{IoContext, Result, StoreError};
use crate::tar::{Entry, EntryKind, Writer};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, SeekFrom};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// How a tree becomes a layer.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The tree is an overlay upper dir: its whiteout devices and opaque-dir xattrs become
    /// `.wh.` entries.
    pub overlay: bool,
    /// Clamp every mtime to at most this (SOURCE_DATE_EPOCH).
    pub mtime_clamp: Option<i64>,
    /// Make the source tree fit to be kept as the layer's snapshot: overlay bookkeeping
    /// xattrs (other than the opaque marker) are removed. Mtimes stay real in the tree
    /// (a build's later steps see true times, as `make` needs); only the tar is clamped.
    pub fix_source: bool,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub entries: u64,
    pub file_bytes: u64,
}

/// Xattrs that describe the overlay or the host, not the file.
fn skip_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") || name == "security.selinux"
}

/// `/proc/self/fd/<dir>/<name>`: names `name` in `dir` for the path-only syscalls
/// (xattrs of symlinks) without resolving any other path component.
pub(crate) fn proc_path(dir: &impl rustix::fd::AsRawFd, name: &[u8]) -> std::ffi::CString {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    std::ffi::CString::new(p).unwrap_or_default()
}

pub(crate) fn list_xattrs(path: &std::ffi::CStr) -> Result<Vec<(String, Vec<u8>)>> {
    let shown = || path.to_string_lossy().into_owned();
    let mut names = vec![0u8; 1024];
    let n = loop {
        match rfs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) => {
                let need: usize =
                    rfs::llistxattr(path, &mut [0u8; 0][..]).ctx(|| format!("listing xattrs of {}", shown()))?;
                names.resize(need.max(names.len() * 2), 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(vec![]),
            Err(e) => return Err(StoreError::io(format!("listing xattrs of {}", shown()), e.into())),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|c| *c == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if skip_xattr(&name) && name != OPAQUE_XATTR {
            continue;
        }
        let mut v = vec![0u8; 256];
        let len = loop {
            match rfs::lgetxattr(path, name.as_str(), &mut v[..]) {
                Ok(n) => break n,
                Err(rustix::io::Errno::RANGE) => {
                    let need: usize = rfs::lgetxattr(path, name.as_str(), &mut [0u8; 0][..])
                        .ctx(|| format!("reading xattr {name} of {}", shown()))?;
                    v.resize(need.max(v.len() * 2), 0);
                }
                Err(rustix::io::Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(StoreError::io(format!("reading xattr {name} of {}", shown()), e.into())),
            }
        };
        if len != usize::MAX {
            v.truncate(len);
            out.push((name, v));
        }
    }
    out.sort();
    Ok(out)
}

struct Walk<'a, W: Write> {
    tar: &'a mut Writer<W>,
    opts: &'a WriteOptions,
    links: HashMap<(u64, u64), Vec<u8>>,
    buf: Vec<u8>,
    stats: WriteStats,
}

/// Writes the tree at `root` (not the root itself) as a tar to `out`, entries sorted by
/// name, depth first. Returns the writer after the end-of-archive marker.
pub fn write_layer<W: Write>(root: &Path, opts: &WriteOptions, out: W) -> Result<(W, WriteStats)> {
    let dir =
        rfs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).at("opening", root)?;
    let mut tar = Writer::new(out);
    let mut w =
        Walk { tar: &mut tar, opts, links: HashMap::new(), buf: vec![0u8; 1 << 20], stats: WriteStats::default() };
    let mut prefix = Vec::new();
    w.dir(&dir, &mut prefix, root)?;
    let stats = w.stats;
    let out = tar.finish().at("writing layer from", root)?;
    Ok((out, stats))
}

/// Would [`write_layer`] write no entries for the tree at `root`? True when it holds
/// nothing, or only sockets (which layers leave out, as docker's do).
///
/// docker commits a step whose diff has no entries as no layer at all: the image's history
/// records the step with `empty_layer` (`image.NewChildImage` with `layer.IsEmpty`). A
/// build step asks this of its upper dir before it commits.
pub fn writes_nothing(root: &Path) -> Result<bool> {
    for ent in std::fs::read_dir(root).at("reading directory", root)? {
        let ent = ent.at("reading directory", root)?;
        let ft = ent.file_type().at("stat", &ent.path())?;
        if !std::os::unix::fs::FileTypeExt::is_socket(&ft) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn sorted_names(dir: &OwnedFd, path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    let d = rfs::Dir::read_from(dir).at("reading directory", path)?;
    for ent in d {
        let ent = ent.at("reading directory", path)?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

impl<W: Write> Walk<'_, W> {
    fn clamp(&self, t: i64) -> i64 {
        match self.opts.mtime_clamp {
            Some(c) if t > c => c,
            _ => t,
        }
    }

    fn proc_path(dir: &OwnedFd, name: &[u8]) -> std::ffi::CString {
        proc_path(dir, name)
    }

    fn dir(&mut self, dir: &OwnedFd, prefix: &mut Vec<u8>, root: &Path) -> Result<()> {
        let here_path = root.join(String::from_utf8_lossy(prefix).as_ref());
        let here = || here_path.clone();
        for name in sorted_names(dir, &here())? {
            let cname = std::ffi::CString::new(name.clone()).map_err(|_| StoreError::archive("NUL in a file name"))?;
            let st = rfs::statat(dir, cname.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                .at("stat", &here().join(String::from_utf8_lossy(&name).as_ref()))?;
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            let ft = FileType::from_raw_mode(st.st_mode);
            let mtime = self.clamp(st.st_mtime);
            let mut e = Entry::new(path.clone(), EntryKind::File);
            e.mode = st.st_mode & 0o7777;
            e.uid = u64::from(st.st_uid);
            e.gid = u64::from(st.st_gid);
            e.mtime = mtime;

            // An overlay whiteout: a character device 0/0.
            if self.opts.overlay && ft == FileType::CharacterDevice && st.st_rdev == 0 {
                let mut wh = prefix.clone();
                if !wh.is_empty() {
                    wh.push(b'/');
                }
                wh.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
                wh.extend_from_slice(&name);
                let mut e = Entry::new(wh, EntryKind::File);
                e.mode = 0o600;
                e.mtime = mtime;
                self.tar.append_header(&e).at("writing layer from", root)?;
                self.stats.entries += 1;
                continue;
            }
            let full = || here().join(String::from_utf8_lossy(&name).as_ref());
            let pp = Self::proc_path(dir, &name);
            match ft {
                FileType::Directory => {
                    e.kind = EntryKind::Dir;
                    let mut xattrs = list_xattrs(pp.as_c_str())?;
                    let opaque = xattrs.iter().any(|(k, v)| k == OPAQUE_XATTR && v.as_slice() == b"y");
                    if self.opts.fix_source {
                        for (k, _) in &xattrs {
                            if k != OPAQUE_XATTR && skip_xattr(k) {
                                let _ = rfs::lremovexattr(pp.as_c_str(), k.as_str());
                            }
                        }
                    }
                    xattrs.retain(|(k, _)| !skip_xattr(k));
                    e.xattrs = xattrs;
                    self.tar.append_header(&e).at("writing layer from", root)?;
                    self.stats.entries += 1;
                    if self.opts.overlay && opaque {
                        let mut o = path.clone();
                        o.push(b'/');
                        o.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
                        let mut oe = Entry::new(o, EntryKind::File);
                        oe.mode = e.mode;
                        oe.uid = e.uid;
                        oe.gid = e.gid;
                        oe.mtime = mtime;
                        self.tar.append_header(&oe).at("writing layer from", root)?;
                        self.stats.entries += 1;
                    }
                    let sub = rfs::openat(
                        dir,
                        cname.as_c_str(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .at("opening", &full())?;
                    let saved = prefix.len();
                    *prefix = path.clone();
                    self.dir(&sub, prefix, root)?;
                    prefix.truncate(saved);
                    // A directory's mtime changes while its children are written: set it last.
                    continue;
                }
                FileType::Symlink => {
                    e.kind = EntryKind::Symlink;
                    e.link =
                        rfs::readlinkat(dir, cname.as_c_str(), Vec::new()).at("reading link", &full())?.into_bytes();
                    e.xattrs = list_xattrs(pp.as_c_str())?.into_iter().filter(|(k, _)| !skip_xattr(k)).collect();
                    self.tar.append_header(&e).at("writing layer from", root)?;
                }
                FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                    e.kind = match ft {
                        FileType::CharacterDevice => EntryKind::CharDevice,
                        FileType::BlockDevice => EntryKind::BlockDevice,
                        _ => EntryKind::Fifo,
                    };
                    e.dev_major = rfs::major(st.st_rdev);
                    e.dev_minor = rfs::minor(st.st_rdev);
                    e.xattrs = list_xattrs(pp.as_c_str())?.into_iter().filter(|(k, _)| !skip_xattr(k)).collect();
                    self.tar.append_header(&e).at("writing layer from", root)?;
                }
                FileType::Socket => continue, // sockets are not archived (as docker does)
                _ => {
                    // A regular file, or a hard link to one already written.
                    if st.st_nlink > 1 {
                        let key = (st.st_dev, st.st_ino);
                        if let Some(first) = self.links.get(&key) {
                            e.kind = EntryKind::Hardlink;
                            e.link = first.clone();
                            self.tar.append_header(&e).at("writing layer from", root)?;
                            self.stats.entries += 1;
                            continue;
                        }
                        self.links.insert(key, path.clone());
                    }
                    e.size = st.st_size as u64;
                    e.xattrs = list_xattrs(pp.as_c_str())?.into_iter().filter(|(k, _)| !skip_xattr(k)).collect();
                    let f = rfs::openat(
                        dir,
                        cname.as_c_str(),
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .at("opening", &full())?;
                    self.tar.append_header(&e).at("writing layer from", root)?;
                    let sparse = (st.st_blocks as u64) * 512 < e.size;
                    self.file_data(&f, e.size, sparse).map_err(|err| match err {
                        StoreError::Io { source, .. } => {
                            StoreError::io(format!("archiving {}", full().display()), source)
                        }
                        other => other,
                    })?;
                    self.tar.finish_data(e.size).at("writing layer from", root)?;
                    self.stats.file_bytes += e.size;
                }
            }
            self.stats.entries += 1;
        }
        Ok(())
    }

    /// Copies exactly `size` bytes; holes of sparse files are written as zeros without
    /// reading them.
    fn file_data(&mut self, f: &OwnedFd, size: u64, sparse: bool) -> Result<()> {
        let mut pos = 0u64;
        while pos < size {
            if sparse {
                // Where does data continue? Everything before it is a hole.
                let data_at = match rfs::seek(f, SeekFrom::Data(pos)) {
                    Ok(d) => d.min(size),
                    Err(rustix::io::Errno::NXIO) => size,
                    Err(e) => return Err(StoreError::io("seeking data", e.into())),
                };
                while pos < data_at {
                    let k = ((data_at - pos) as usize).min(self.buf.len());
                    self.buf[..k].fill(0);
                    self.tar.write_data(&self.buf[..k]).ctx(|| "writing layer".into())?;
                    pos += k as u64;
                }
                if pos >= size {
                    break;
                }
                rfs::seek(f, SeekFrom::Start(pos)).ctx(|| "seeking".into())?;
            }
            let want = ((size - pos) as usize).min(self.buf.len());
            let n = rustix::io::read(f.as_fd(), &mut self.buf[..want]).ctx(|| "reading".into())?;
            if n == 0 {
                return Err(StoreError::io(
                    "reading",
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank while it was archived"),
                ));
            }
            self.tar.write_data(&self.buf[..n]).ctx(|| "writing layer".into())?;
            pos += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(root: &Path) -> u64 {
        write_layer(root, &WriteOptions { overlay: true, ..Default::default() }, Vec::new()).unwrap().1.entries
    }

    #[test]
    fn a_tree_writes_nothing_exactly_when_its_layer_has_no_entries() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        assert!(writes_nothing(r).unwrap());
        assert_eq!(entries_of(r), 0);
        // Sockets are not archived: a tree of sockets is still an empty diff.
        let _sock = std::os::unix::net::UnixListener::bind(r.join("sock")).unwrap();
        assert!(writes_nothing(r).unwrap());
        assert_eq!(entries_of(r), 0);
        // An empty directory is an entry.
        std::fs::create_dir(r.join("d")).unwrap();
        assert!(!writes_nothing(r).unwrap());
        assert_eq!(entries_of(r), 1);
        std::fs::remove_dir(r.join("d")).unwrap();
        // So is a whiteout (an overlay's 0/0 character device), where the system lets us make one.
        if rfs::mknodat(rfs::CWD, r.join("gone"), FileType::CharacterDevice, Mode::from_raw_mode(0o600), 0).is_ok() {
            assert!(!writes_nothing(r).unwrap());
            assert_eq!(entries_of(r), 1);
        }
    }
}
