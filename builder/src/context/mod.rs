//! The build context: which files a COPY or ADD selects (docker's rules for globs,
//! directories and `.dockerignore`), and their digests for the cache key.
//!
//! Content digests come from a persistent stat cache (path, size, mtime, ctime, inode →
//! sha256) kept in the store, so a no-op rebuild costs one stat per file; files that must
//! be hashed are hashed in parallel. Excluded files are never opened.

use crate::error::{BuildError, Result};
use crate::ignore::{clean, go_match, go_string, Matcher};
use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What an entry is. Names and link targets are bytes, as the kernel has them (a context
/// may hold names that are not UTF-8; they reach the image as they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink(PathBuf),
    /// Devices, fifos and sockets: copied as what they are, no content.
    Other,
}

/// One file of a selected source.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path below the source root, slash-separated; "" for the root itself.
    pub rel: PathBuf,
    /// Where it is on the host (or in a mounted rootfs).
    pub host: PathBuf,
    pub kind: EntryKind,
    /// Permission bits (with setuid/setgid/sticky) and the raw st_mode.
    pub mode: u32,
    pub raw_mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u64,
    pub mtime: (i64, i64),
    /// Change time and inode, for the stat cache.
    pub ctime: (i64, i64),
    pub ino: u64,
    /// The device and link count: names of one inode are one file in a directory copy.
    pub dev: u64,
    pub nlink: u64,
    /// Content digest of files, when hashed.
    pub digest: Option<[u8; 32]>,
}

/// One match of a COPY source: a file, or a directory whose contents are copied.
#[derive(Debug, Clone)]
pub struct Item {
    /// The source path as matched (for naming: `dest/` + its base name).
    pub path: PathBuf,
    /// Pre-order: a directory before what it holds. For a file, one entry.
    pub entries: Vec<Entry>,
}

impl Item {
    pub fn is_dir(&self) -> bool {
        self.entries.first().is_some_and(|e| e.kind == EntryKind::Dir)
    }
    pub fn base_name(&self) -> &OsStr {
        self.path.file_name().unwrap_or(self.path.as_os_str())
    }
}

/// Does docker treat `p` as a glob? (`*`, `?`, `[` not escaped by a backslash.)
pub fn has_wildcards(p: &str) -> bool {
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Turns a source as written into a path relative to the root: leading `/` and `./`
/// dropped, cleaned; `..` that leaves the root is refused.
pub fn relative_source(orig: &str) -> Result<String> {
    let trimmed = orig.strip_prefix('/').filter(|r| !r.is_empty()).unwrap_or(orig);
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    let c = clean(trimmed);
    if c == ".." || c.starts_with("../") {
        return Err(BuildError::OutsideContext(orig.to_string()));
    }
    Ok(if c == "." || c == "/" { String::new() } else { c.trim_start_matches('/').to_string() })
}

/// Resolves `rel` below `root`, following symlinks but never leaving `root` (an absolute
/// link target is taken relative to `root`, `..` stops at it), as docker's
/// FollowSymlinkInScope does. With `follow_last` false the last component is not followed.
pub fn resolve_in_root(root: &Path, rel: impl AsRef<Path>, follow_last: bool) -> Result<PathBuf> {
    let rel = rel.as_ref();
    let components = |p: &[u8]| -> Vec<OsString> {
        p.split(|c| *c == b'/').filter(|s| !s.is_empty() && *s != b".").map(|s| OsStr::from_bytes(s).into()).collect()
    };
    let mut parts = components(rel.as_os_str().as_bytes());
    parts.reverse(); // a stack: the next component is last
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = parts.pop() {
        if c.as_bytes() == b".." {
            resolved.pop();
            continue;
        }
        let mut cand = root.to_path_buf();
        for r in &resolved {
            cand.push(r);
        }
        cand.push(&c);
        let is_last = parts.is_empty();
        match std::fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !is_last) => {
                links += 1;
                if links > 255 {
                    return Err(BuildError::SymlinkLoop(rel.to_path_buf()));
                }
                let target = std::fs::read_link(&cand).map_err(BuildError::io("readlink", rel))?;
                let t = target.as_os_str().as_bytes();
                if t.starts_with(b"/") {
                    resolved.clear();
                }
                parts.extend(components(t).into_iter().rev());
            }
            _ => resolved.push(c),
        }
    }
    let mut out = root.to_path_buf();
    for r in resolved {
        out.push(r);
    }
    Ok(out)
}

/// `base.join(name)` for a name without a slash, in one allocation (`join` copies `base`
/// and grows it again: two a name, four an entry, of a walk that is all names).
fn joined(base: &Path, name: &OsStr) -> PathBuf {
    let (b, n) = (base.as_os_str().as_bytes(), name.as_bytes());
    let mut v = Vec::with_capacity(b.len() + 1 + n.len());
    v.extend_from_slice(b);
    if !b.is_empty() && !b.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(n);
    PathBuf::from(OsString::from_vec(v))
}

/// What an entry needs of a file's stat, from std's metadata or from a `statat`.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    rdev: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
    nlink: u64,
}

impl From<&std::fs::Metadata> for Meta {
    fn from(m: &std::fs::Metadata) -> Meta {
        Meta {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            rdev: m.rdev(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
        }
    }
}

// The field types differ between architectures: the casts are no-ops on some.
#[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss, clippy::useless_conversion, clippy::unnecessary_cast)]
impl From<&rustix::fs::Stat> for Meta {
    fn from(m: &rustix::fs::Stat) -> Meta {
        Meta {
            mode: m.st_mode,
            uid: m.st_uid,
            gid: m.st_gid,
            size: m.st_size as u64,
            rdev: m.st_rdev as u64,
            mtime: (m.st_mtime as i64, m.st_mtime_nsec as i64),
            ctime: (m.st_ctime as i64, m.st_ctime_nsec as i64),
            ino: m.st_ino as u64,
            dev: m.st_dev as u64,
            nlink: u64::from(m.st_nlink),
        }
    }
}

const S_IFMT: u32 = 0o170_000;

fn entry_of(rel: PathBuf, host: PathBuf, m: &Meta) -> Entry {
    let (kind, is_file) = match m.mode & S_IFMT {
        0o040_000 => (EntryKind::Dir, false),
        0o100_000 => (EntryKind::File, true),
        0o120_000 => (EntryKind::Symlink(std::fs::read_link(&host).unwrap_or_default()), false),
        _ => (EntryKind::Other, false),
    };
    Entry {
        rel,
        host,
        kind,
        mode: m.mode & 0o7777,
        raw_mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        size: if is_file { m.size } else { 0 },
        rdev: m.rdev,
        mtime: m.mtime,
        ctime: m.ctime,
        ino: m.ino,
        dev: m.dev,
        nlink: m.nlink,
        digest: None,
    }
}

/// A tree to select sources from: the build context (with its .dockerignore) or a
/// stage's or image's root filesystem.
pub struct Source<'a> {
    pub root: PathBuf,
    pub ignore: Option<&'a Matcher>,
    /// Extra `COPY --exclude` patterns.
    pub exclude: Option<Matcher>,
    /// Walk directories on several threads. Off for trees mounted in a thread's private
    /// mount namespace, which other threads do not see.
    pub parallel: bool,
}

impl Source<'_> {
    /// Is the entry at `rel` (below the root) left out: by the .dockerignore (`rel`), or
    /// by `--exclude` (matched, as BuildKit's copy does, against `item_rel`, the path
    /// below the source being copied; never the source itself)?
    fn excluded(&self, rel: &Path, item_rel: Option<&Path>) -> bool {
        let ignored = self.ignore.is_some_and(|m| m.matches(&go_string(rel.as_os_str().as_bytes())));
        let excluded = match (&self.exclude, item_rel) {
            (Some(m), Some(i)) if !i.as_os_str().is_empty() => m.matches(&go_string(i.as_os_str().as_bytes())),
            _ => false,
        };
        ignored || excluded
    }

    /// An excluded directory whose subtree cannot hold anything included.
    fn skip_dir(&self, rel: &Path, item_rel: Option<&Path>) -> bool {
        let skip = |m: &Matcher, p: &Path| {
            let p = go_string(p.as_os_str().as_bytes());
            m.matches(&p) && !(m.has_exclusions() && m.may_include_below(&p))
        };
        let excluded = match (&self.exclude, item_rel) {
            (Some(m), Some(i)) if !i.as_os_str().is_empty() => skip(m, i),
            _ => false,
        };
        self.ignore.is_some_and(|m| skip(m, rel)) || excluded
    }

    /// Everything below directory `host` (relative path `rel` from the source root),
    /// pre-order, sorted by name, excluded entries left out: appended to `out`.
    fn walk(&self, host: &Path, ctx_rel: &Path, item_rel: &Path, out: &mut Vec<Entry>) -> Result<()> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(host, flags, Mode::empty())
            .map_err(|e| BuildError::io("reading", host)(std::io::Error::from(e)))?;
        self.walk_dir(fd, host, ctx_rel, item_rel, out)
    }

    /// `walk` of the open directory `fd`: each name is stat'ed relative to the directory's
    /// descriptor (no path lookup per file), subdirectories opened the same way and walked
    /// in parallel. A no-op rebuild costs this one stat per file.
    fn walk_dir(&self, fd: OwnedFd, host: &Path, ctx_rel: &Path, item_rel: &Path, out: &mut Vec<Entry>) -> Result<()> {
        let reading = |e: rustix::io::Errno| BuildError::io("reading", host)(std::io::Error::from(e));
        let mut dir = rustix::fs::Dir::new(fd).map_err(reading)?;
        // The names in one buffer (not an allocation each), sorted by their bytes.
        let mut buf: Vec<u8> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        while let Some(e) = dir.read() {
            let Ok(e) = e else { continue };
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                spans.push((buf.len(), buf.len() + n.len()));
                buf.extend_from_slice(n);
            }
        }
        spans.sort_unstable_by(|a, b| buf[a.0..a.1].cmp(&buf[b.0..b.1]));
        let names = spans.iter().map(|&(a, b)| OsStr::from_bytes(&buf[a..b]));
        let dfd = dir.fd().map_err(reading)?;
        // This directory's entries in order; a directory also gets the list of what it holds.
        let mut here: Vec<(Option<Entry>, Option<usize>)> = Vec::with_capacity(names.len());
        out.reserve(names.len());
        let mut subdirs: Vec<(OsString, PathBuf, PathBuf, PathBuf)> = Vec::new();
        let matching = self.ignore.is_some() || self.exclude.is_some();
        for n in names {
            let p = joined(host, n);
            let st = rustix::fs::statat(dfd, n, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| BuildError::io("stat", &p)(std::io::Error::from(e)))?;
            let m = Meta::from(&st);
            let i_rel = joined(item_rel, n);
            // The context-relative path only matters to the .dockerignore and --exclude.
            let c_rel = if matching { ctx_rel.join(n) } else { PathBuf::new() };
            if m.mode & S_IFMT == 0o040_000 {
                if matching && self.skip_dir(&c_rel, Some(&i_rel)) {
                    continue;
                }
                let e =
                    (!matching || !self.excluded(&c_rel, Some(&i_rel))).then(|| entry_of(i_rel.clone(), p.clone(), &m));
                here.push((e, Some(subdirs.len())));
                subdirs.push((n.to_os_string(), p, c_rel, i_rel));
            } else if !matching || !self.excluded(&c_rel, Some(&i_rel)) {
                here.push((Some(entry_of(i_rel, p, &m)), None));
            }
        }
        let sub = |(n, p, c_rel, i_rel): &(OsString, PathBuf, PathBuf, PathBuf), out: &mut Vec<Entry>| {
            let fd = rustix::fs::openat(
                dfd,
                n.as_os_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| BuildError::io("reading", p)(std::io::Error::from(e)))?;
            self.walk_dir(fd, p, c_rel, i_rel, out)
        };
        // Subdirectories are walked in parallel a few at a time, each into its own list
        // that is appended and freed before the next few: an entry is copied once per
        // parallel level, and the whole tree is never held twice.
        let parallel = self.parallel && subdirs.len() > 1;
        let chunk = rayon::current_num_threads().max(1) * 4;
        let mut walked: std::collections::VecDeque<Result<Vec<Entry>>> = std::collections::VecDeque::new();
        for (e, d) in here {
            out.extend(e);
            let Some(i) = d else { continue };
            if !parallel {
                sub(&subdirs[i], out)?;
                continue;
            }
            if walked.is_empty() {
                let next = &subdirs[i..(i + chunk).min(subdirs.len())];
                walked = next
                    .par_iter()
                    .map(|s| {
                        let mut list = Vec::new();
                        sub(s, &mut list).map(|()| list)
                    })
                    .collect::<Vec<_>>()
                    .into();
            }
            if let Some(list) = walked.pop_front() {
                out.append(&mut list?);
            }
        }
        Ok(())
    }

    /// The item for one existing path (symlinks followed in scope).
    fn item(&self, rel: &Path, shown: &Path) -> Result<Option<Item>> {
        let host = resolve_in_root(&self.root, rel, true)?;
        let Ok(m) = std::fs::metadata(&host) else { return Ok(None) };
        // An excluded file is not in the context; an excluded directory only when no
        // exception can bring back something below it.
        let top = rel.as_os_str().is_empty();
        if !top && self.excluded(rel, None) && (!m.is_dir() || self.skip_dir(rel, None)) {
            return Ok(None);
        }
        // The resolved path decides what is excluded below it.
        let ctx_rel = host.strip_prefix(&self.root).map(Path::to_path_buf).unwrap_or_default();
        let mut entries = vec![entry_of(PathBuf::new(), host.clone(), &Meta::from(&m))];
        if m.is_dir() {
            self.walk(&host, &ctx_rel, Path::new(""), &mut entries)?;
            // An excluded directory is in the context only through what is brought back.
            if !top && self.excluded(rel, None) && entries.len() == 1 {
                return Ok(None);
            }
        }
        Ok(Some(Item { path: shown.to_path_buf(), entries }))
    }

    /// Docker's selection for one source as written: a path (file or directory) or a glob
    /// matched against every path of the tree.
    pub fn select(&self, orig: &str) -> Result<Vec<Item>> {
        let rel = relative_source(orig)?;
        if !has_wildcards(&rel) {
            return match self.item(Path::new(&rel), Path::new(if rel.is_empty() { "." } else { &rel }))? {
                Some(i) => Ok(vec![i]),
                None => Err(BuildError::SourceNotFound(rel)),
            };
        }
        // Walk only as deep as the pattern has components.
        let depth = rel.split('/').count();
        let mut out = Vec::new();
        self.glob(&self.root.clone(), Path::new(""), &rel, depth, &mut out)?;
        Ok(out)
    }

    fn glob(&self, host: &Path, rel: &Path, pattern: &str, depth: usize, out: &mut Vec<Item>) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(host) else { return Ok(()) };
        let mut names: Vec<OsString> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let r = rel.join(&name);
            if self.skip_dir(&r, None) {
                continue;
            }
            let matched = go_match(pattern, &go_string(r.as_os_str().as_bytes()))
                .map_err(|source| BuildError::Glob { pattern: pattern.to_string(), source })?;
            let p = host.join(&name);
            if matched {
                if let Some(i) = self.item(&r, &r)? {
                    out.push(i);
                }
                continue;
            }
            if r.components().count() < depth && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                self.glob(&p, &r, pattern, depth, out)?;
            }
        }
        Ok(())
    }
}

/// The entries below `dir` (the context's `sub` directory) that the context's
/// `.dockerignore` leaves out, relative to `dir`: a directory whose whole subtree is out
/// is one entry. For a bind mount of the context, which must not show them.
pub fn ignored_below(dir: &Path, sub: &Path, m: &Matcher) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if m.patterns.is_empty() {
        return Ok(out);
    }
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let host = dir.join(&rel);
        let rd = std::fs::read_dir(&host).map_err(BuildError::io("reading", &host))?;
        for e in rd.filter_map(|e| e.ok()) {
            let r = rel.join(e.file_name());
            let ctx_rel = go_string(sub.join(&r).as_os_str().as_bytes()).into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if m.matches(&ctx_rel) && !(is_dir && m.has_exclusions() && m.may_include_below(&ctx_rel)) {
                out.push(r);
            } else if is_dir {
                todo.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// sha256 of a file's content.
pub fn hash_file(p: &Path) -> Result<[u8; 32]> {
    let mut f = std::fs::File::open(p).map_err(BuildError::io("reading", p))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BuildError::io("reading", p)(e)),
        }
    }
    Ok(h.finalize().into())
}

/// The cache-key digest of selected sources: every entry's path, type, mode, owner, size,
/// content digest and link target — never its mtime.
pub fn items_digest(items: &[Item]) -> String {
    let mut h = Sha256::new();
    for it in items {
        h.update(b"item\0");
        h.update(it.path.as_os_str().as_bytes());
        h.update(b"\0");
        // Hard links within the item are copied as links: which names share an inode is
        // part of what is copied.
        let mut first_name: HashMap<(u64, u64), &Path> = HashMap::new();
        for e in &it.entries {
            if e.kind == EntryKind::File && e.nlink > 1 {
                let first = *first_name.entry((e.dev, e.ino)).or_insert(&e.rel);
                if first != e.rel {
                    h.update(b"link\0");
                    h.update(first.as_os_str().as_bytes());
                    h.update(b"\0");
                }
            }
            h.update(e.rel.as_os_str().as_bytes());
            h.update(b"\0");
            let (t, link): (u8, &[u8]) = match &e.kind {
                EntryKind::File => (b'f', b""),
                EntryKind::Dir => (b'd', b""),
                EntryKind::Symlink(l) => (b'l', l.as_os_str().as_bytes()),
                EntryKind::Other => (b'o', b""),
            };
            h.update([t]);
            h.update(e.raw_mode.to_le_bytes());
            h.update(e.uid.to_le_bytes());
            h.update(e.gid.to_le_bytes());
            h.update(e.size.to_le_bytes());
            h.update(e.rdev.to_le_bytes());
            h.update(e.digest.unwrap_or([0; 32]));
            h.update(link);
            h.update(b"\0");
        }
    }
    hex::encode(h.finalize())
}

mod statcache;
pub use statcache::StatCache;

#[cfg(test)]
mod tests;
