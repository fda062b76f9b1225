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

/// A file capability: the one xattr docker's layers carry.
const CAPABILITY: &str = "security.capability";

/// The xattrs a layer keeps of an entry's `all`, as docker's layers do (pkg/archive's
/// `ReadSecurityXattrToTarHeader`, on every entry, hard links included): only
/// `security.capability`. user.*, ACLs and the rest stay out, as they stay out of every
/// image docker builds, commits or exports. A revision-3 capability (whose root uid means
/// something only in the user namespace that set it) is kept as revision 2, as docker
/// keeps it.
fn layer_xattrs(all: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    all.iter().filter(|(k, _)| k == CAPABILITY).map(|(k, v)| (k.clone(), capability_v2(v))).collect()
}

/// `struct vfs_ns_cap_data` (revision 3, 24 bytes) as `struct vfs_cap_data` (revision 2,
/// 20 bytes): the revision byte of `magic_etc` set to 2 and the root uid dropped.
fn capability_v2(v: &[u8]) -> Vec<u8> {
    const REVISION_BYTE: usize = 3; // the high byte of the little-endian magic_etc
    const V2_LEN: usize = 20;
    if v.len() >= V2_LEN && v[REVISION_BYTE] == 3 {
        let mut out = v[..V2_LEN].to_vec();
        out[REVISION_BYTE] = 2;
        return out;
    }
    v.to_vec()
}

/// `/proc/self/fd/<dir>/<name>`: names `name` in `dir` for the path-only syscalls
/// (xattrs of symlinks) without resolving any other path component.
pub(crate) fn proc_path(dir: &impl rustix::fd::AsRawFd, name: &[u8]) -> std::ffi::CString {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name);
    std::ffi::CString::new(p).unwrap_or_default()
}

/// The xattrs of `path` (not following a symlink), sorted; overlay and host ones left
/// out, except overlayfs' opaque marker.
pub(crate) fn list_xattrs(path: &std::ffi::CStr) -> Result<Vec<(String, Vec<u8>)>> {
    xattrs_where(path, |name| !skip_xattr(name) || name == OPAQUE_XATTR)
}

/// The xattrs of `path` whose names pass `want`, sorted.
fn xattrs_where(path: &std::ffi::CStr, want: impl Fn(&str) -> bool) -> Result<Vec<(String, Vec<u8>)>> {
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
        if !want(&name) {
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

fn is_opaque(path: &std::ffi::CStr) -> bool {
    let mut v = [0u8; 4];
    rfs::lgetxattr(path, OPAQUE_XATTR, &mut v[..]).is_ok_and(|n| &v[..n] == b"y")
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

/// One name of a directory being archived.
struct Named<'a> {
    /// The directory it is in.
    dir: &'a OwnedFd,
    cname: std::ffi::CString,
    /// Its path in the layer.
    path: Vec<u8>,
    /// Its path on disk, for messages.
    full: std::path::PathBuf,
    /// Its /proc/self/fd path, for xattrs.
    pp: std::ffi::CString,
    st: rfs::Stat,
}

/// `prefix/name` (just `name` at the top).
fn joined(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = prefix.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
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

    /// The xattrs the layer keeps for the entry at `pp`. With `fix_source` the tree is
    /// made to hold the same (it becomes the layer's snapshot, which later steps see as
    /// docker's see the unpacked layer): other xattrs, overlay bookkeeping among them, are
    /// removed, the opaque marker and the host's SELinux label stay.
    fn xattrs(&self, pp: &std::ffi::CStr) -> Result<Vec<(String, Vec<u8>)>> {
        if !self.opts.fix_source {
            return Ok(layer_xattrs(&xattrs_where(pp, |n| n == CAPABILITY)?));
        }
        let all = xattrs_where(pp, |n| n != OPAQUE_XATTR && n != "security.selinux")?;
        let kept = layer_xattrs(&all);
        for (k, v) in &all {
            match kept.iter().find(|(n, _)| n == k) {
                Some((_, nv)) if nv != v => {
                    let _ = rfs::lsetxattr(pp, k.as_str(), nv, rfs::XattrFlags::empty());
                }
                Some(_) => {}
                None => {
                    let _ = rfs::lremovexattr(pp, k.as_str());
                }
            }
        }
        Ok(kept)
    }

    fn dir(&mut self, dir: &OwnedFd, prefix: &mut Vec<u8>, root: &Path) -> Result<()> {
        let here = root.join(String::from_utf8_lossy(prefix).as_ref());
        for name in sorted_names(dir, &here)? {
            self.name(dir, prefix, root, &here, name)?;
        }
        Ok(())
    }

    /// Archives the entry `name` of `dir` (at `prefix` in the layer, `here` on disk).
    fn name(&mut self, dir: &OwnedFd, prefix: &mut Vec<u8>, root: &Path, here: &Path, name: Vec<u8>) -> Result<()> {
        let cname = std::ffi::CString::new(name.clone()).map_err(|_| StoreError::archive("NUL in a file name"))?;
        let full = here.join(String::from_utf8_lossy(&name).as_ref());
        let st = rfs::statat(dir, cname.as_c_str(), AtFlags::SYMLINK_NOFOLLOW).at("stat", &full)?;
        let path = joined(prefix, &name);
        let ft = FileType::from_raw_mode(st.st_mode);
        let mtime = self.clamp(st.st_mtime);
        let mut e = Entry::new(path.clone(), EntryKind::File);
        e.mode = st.st_mode & 0o7777;
        e.uid = u64::from(st.st_uid);
        e.gid = u64::from(st.st_gid);
        e.mtime = mtime;
        // An overlay whiteout: a character device 0/0.
        if self.opts.overlay && ft == FileType::CharacterDevice && st.st_rdev == 0 {
            let mut wh = WHITEOUT_PREFIX.as_bytes().to_vec();
            wh.extend_from_slice(&name);
            let mut e = Entry::new(joined(prefix, &wh), EntryKind::File);
            e.mode = 0o600;
            e.mtime = mtime;
            self.tar.append_header(&e).at("writing layer from", root)?;
            self.stats.entries += 1;
            return Ok(());
        }
        let n = Named { dir, pp: Self::proc_path(dir, &name), cname, path, full, st };
        match ft {
            FileType::Directory => self.directory(&n, e, prefix, root),
            FileType::Symlink => {
                e.kind = EntryKind::Symlink;
                e.link = rfs::readlinkat(dir, n.cname.as_c_str(), Vec::new()).at("reading link", &n.full)?.into_bytes();
                self.header(&n, e, root)
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                e.kind = match ft {
                    FileType::CharacterDevice => EntryKind::CharDevice,
                    FileType::BlockDevice => EntryKind::BlockDevice,
                    _ => EntryKind::Fifo,
                };
                e.dev_major = rfs::major(st.st_rdev);
                e.dev_minor = rfs::minor(st.st_rdev);
                self.header(&n, e, root)
            }
            FileType::Socket => Ok(()), // sockets are not archived (as docker does)
            _ => self.file(&n, e, root),
        }
    }

    /// An entry that is its header alone (a symlink, a device, a fifo), with its xattrs.
    fn header(&mut self, n: &Named, mut e: Entry, root: &Path) -> Result<()> {
        e.xattrs = self.xattrs(n.pp.as_c_str())?;
        self.tar.append_header(&e).at("writing layer from", root)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// A directory (and its opaque marker), then what it holds.
    fn directory(&mut self, n: &Named, mut e: Entry, prefix: &mut Vec<u8>, root: &Path) -> Result<()> {
        e.kind = EntryKind::Dir;
        let opaque = self.opts.overlay && is_opaque(n.pp.as_c_str());
        e.xattrs = self.xattrs(n.pp.as_c_str())?;
        self.tar.append_header(&e).at("writing layer from", root)?;
        self.stats.entries += 1;
        if opaque {
            let mut oe = Entry::new(joined(&n.path, WHITEOUT_OPAQUE.as_bytes()), EntryKind::File);
            oe.mode = e.mode;
            oe.uid = e.uid;
            oe.gid = e.gid;
            oe.mtime = e.mtime;
            self.tar.append_header(&oe).at("writing layer from", root)?;
            self.stats.entries += 1;
        }
        let sub = rfs::openat(
            n.dir,
            n.cname.as_c_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .at("opening", &n.full)?;
        let saved = prefix.len();
        *prefix = n.path.clone();
        self.dir(&sub, prefix, root)?;
        prefix.truncate(saved);
        // A directory's mtime changes while its children are written: set it last.
        Ok(())
    }

    /// A regular file, or a hard link to one already written. A link entry carries the
    /// inode's capability too, as docker's do: whoever unpacks the layer may chown each
    /// name it makes, which clears the capability of the inode, so each name must set it
    /// again.
    fn file(&mut self, n: &Named, mut e: Entry, root: &Path) -> Result<()> {
        e.xattrs = self.xattrs(n.pp.as_c_str())?;
        if n.st.st_nlink > 1 {
            let key = (n.st.st_dev, n.st.st_ino);
            if let Some(first) = self.links.get(&key) {
                e.kind = EntryKind::Hardlink;
                e.link = first.clone();
                self.tar.append_header(&e).at("writing layer from", root)?;
                self.stats.entries += 1;
                return Ok(());
            }
            self.links.insert(key, n.path.clone());
        }
        e.size = n.st.st_size as u64;
        let f =
            rfs::openat(n.dir, n.cname.as_c_str(), OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                .at("opening", &n.full)?;
        self.tar.append_header(&e).at("writing layer from", root)?;
        let sparse = (n.st.st_blocks as u64) * 512 < e.size;
        self.file_data(&f, e.size, sparse).map_err(|err| match err {
            StoreError::Io { source, .. } => StoreError::io(format!("archiving {}", n.full.display()), source),
            other => other,
        })?;
        self.tar.finish_data(e.size).at("writing layer from", root)?;
        self.stats.file_bytes += e.size;
        self.stats.entries += 1;
        Ok(())
    }

    /// Copies exactly `size` bytes; holes of sparse files are written as zeros without
    /// reading them.
    ///
    /// Sparse files, decided: a layer holds a file's bytes, holes and preallocated
    /// (`fallocate`d, unwritten) ranges alike as zeros, exactly as docker's layers do, so
    /// the blob and its digest are docker's. Allocation is not content: a tar cannot say
    /// which zeros were allocated, and docker's untar writes every zero, filling holes.
    /// rbuild's unpacking keeps long runs of zeros as holes instead (`apply`), so a sparse
    /// file stays sparse — a hole-punched 100 GB `lastlog` from `useradd -u 1000000000`,
    /// or a hostile layer of compressed zeros, does not fill the host's disk — and a
    /// preallocated file reads the same but is allocated again only as it is written.
    /// (What that changes: `du` and `st_blocks` in rbuild's containers, and `swapon` of a
    /// swap file made with `fallocate` in an earlier step, which refuses holes.)
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
    use std::io::Read;

    const CAP: &str = "security.capability";

    type Xattrs = Vec<(String, Vec<u8>)>;

    /// Every entry of a layer tar: (path, kind, link, xattrs).
    fn entries(tar: &[u8]) -> Vec<(String, EntryKind, String, Xattrs)> {
        let mut r = crate::tar::Reader::new(tar);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            r.data().read_to_end(&mut Vec::new()).unwrap();
            out.push((e.path_lossy(), e.kind, String::from_utf8_lossy(&e.link).into_owned(), e.xattrs));
        }
        out
    }

    fn set(p: &Path, k: &str, v: &[u8]) {
        rfs::lsetxattr(p, k, v, rfs::XattrFlags::empty()).unwrap();
    }

    fn get(p: &Path, k: &str) -> Option<Vec<u8>> {
        let mut v = [0u8; 64];
        rfs::lgetxattr(p, k, &mut v[..]).ok().map(|n| v[..n].to_vec())
    }

    /// `struct vfs_cap_data` with cap_net_raw permitted and effective, revision 2 or (with
    /// a root uid) 3.
    fn cap_net_raw(revision: u8) -> Vec<u8> {
        // magic_etc (revision, effective flag), then permitted/inheritable words: bit 13.
        let mut v = vec![0x01, 0, 0, revision, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        if revision == 3 {
            v.extend_from_slice(&1000u32.to_le_bytes());
        }
        v
    }

    fn needs_root() -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        eprintln!("skipped: setting security.capability needs root");
        false
    }

    #[test]
    fn a_hard_link_entry_carries_the_capability_of_its_inode() {
        if !needs_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::write(r.join("ping"), "elf").unwrap();
        set(&r.join("ping"), CAP, &cap_net_raw(2));
        std::fs::hard_link(r.join("ping"), r.join("ping-link")).unwrap();
        let (tar, _) = write_layer(r, &WriteOptions::default(), Vec::new()).unwrap();
        let want = vec![(CAP.to_string(), cap_net_raw(2))];
        assert_eq!(
            entries(&tar),
            [
                ("ping".into(), EntryKind::File, String::new(), want.clone()),
                ("ping-link".into(), EntryKind::Hardlink, "ping".into(), want),
            ]
        );
    }

    #[test]
    fn layers_keep_only_the_file_capability_as_docker_does() {
        if !needs_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir(r.join("dir")).unwrap();
        set(&r.join("dir"), "user.note", b"dir");
        std::fs::write(r.join("dir/tool"), "elf").unwrap();
        set(&r.join("dir/tool"), "user.origin", b"archive");
        set(&r.join("dir/tool"), "trusted.overlay.origin", b"x");
        set(&r.join("dir/tool"), CAP, &cap_net_raw(3));
        std::os::unix::fs::symlink("tool", r.join("dir/link")).unwrap();
        let opts = WriteOptions { overlay: true, fix_source: false, ..Default::default() };
        let (tar, _) = write_layer(r, &opts, Vec::new()).unwrap();
        let got: Vec<_> = entries(&tar).into_iter().map(|(p, _, _, x)| (p, x)).collect();
        // Revision 3 (a namespaced root uid) is stored as revision 2, 20 bytes.
        let cap = vec![(CAP.to_string(), cap_net_raw(2))];
        assert_eq!(got, [("dir/".into(), vec![]), ("dir/link".into(), vec![]), ("dir/tool".into(), cap)]);
        // Without fix_source the tree is not touched.
        assert_eq!(get(&r.join("dir/tool"), "user.origin").as_deref(), Some(&b"archive"[..]));
        // With it, the tree (the layer's snapshot) holds what the layer holds.
        let opts = WriteOptions { overlay: true, fix_source: true, ..Default::default() };
        let (again, _) = write_layer(r, &opts, Vec::new()).unwrap();
        assert_eq!(again, tar);
        assert_eq!(get(&r.join("dir/tool"), "user.origin"), None);
        assert_eq!(get(&r.join("dir/tool"), "trusted.overlay.origin"), None);
        assert_eq!(get(&r.join("dir"), "user.note"), None);
        assert_eq!(get(&r.join("dir/tool"), CAP), Some(cap_net_raw(2)));
    }

    fn entries_of(root: &Path) -> u64 {
        write_layer(root, &WriteOptions { overlay: true, ..Default::default() }, Vec::new()).unwrap().1.entries
    }

    /// The decision on sparse files, pinned: holes and preallocated ranges are zeros in the
    /// layer (docker's bytes); unpacked, long runs of zeros are holes again, the content
    /// the same.
    #[test]
    fn holes_and_preallocated_ranges_are_zeros_in_a_layer_and_holes_when_unpacked() {
        use std::io::{Seek, Write};
        use std::os::unix::fs::MetadataExt;
        const MIB: u64 = 1 << 20;
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("src"), d.path().join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let mut f = std::fs::File::create(src.join("holey")).unwrap();
        f.write_all(b"head").unwrap();
        f.seek(std::io::SeekFrom::Start(4 * MIB)).unwrap();
        f.write_all(b"tail").unwrap();
        let f = std::fs::File::create(src.join("fallocated")).unwrap();
        if rfs::fallocate(&f, rfs::FallocateFlags::empty(), 0, 2 * MIB).is_err() {
            eprintln!("skipped: this filesystem cannot fallocate");
            return;
        }
        std::fs::write(src.join("zeros"), vec![0u8; (2 * MIB) as usize]).unwrap();
        let (tar, _) = write_layer(&src, &WriteOptions::default(), Vec::new()).unwrap();
        let mut r = crate::tar::Reader::new(tar.as_slice());
        let mut data = std::collections::BTreeMap::new();
        while let Some(e) = r.next_entry().unwrap() {
            assert!(e.sparse.is_none(), "no sparse entries: docker's layers have none");
            let mut v = Vec::new();
            r.data().read_to_end(&mut v).unwrap();
            data.insert(e.path_lossy(), v);
        }
        let mut holey = vec![0u8; (4 * MIB + 4) as usize];
        holey[..4].copy_from_slice(b"head");
        holey[(4 * MIB) as usize..].copy_from_slice(b"tail");
        assert_eq!(data["holey"], holey);
        assert_eq!(data["fallocated"], data["zeros"]);
        crate::layer::apply_layer(tar.as_slice(), &dst, crate::layer::ApplyMode::Merge).unwrap();
        for name in ["holey", "fallocated", "zeros"] {
            assert_eq!(std::fs::read(dst.join(name)).unwrap(), data[name], "{name}");
            let blocks = std::fs::metadata(dst.join(name)).unwrap().blocks() * 512;
            assert!(blocks < MIB, "{name}: {blocks} bytes allocated, the zeros should be holes");
        }
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
