//! The build context: which files a COPY or ADD selects (docker's rules for globs,
//! directories and `.dockerignore`), and their digests for the cache key.
//!
//! Content digests come from a persistent stat cache (path, size, mtime, ctime, inode →
//! sha256) kept in the store, so a no-op rebuild costs one stat per file; files that must
//! be hashed are hashed in parallel. Excluded files are never opened.

use crate::error::{BuildError, Result};
use crate::ignore::{clean, go_match, go_string, Matcher};
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

fn entry_of(rel: PathBuf, host: PathBuf, m: &std::fs::Metadata) -> Entry {
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink(std::fs::read_link(&host).unwrap_or_default())
    } else {
        EntryKind::Other
    };
    Entry {
        rel,
        host,
        kind,
        mode: m.permissions().mode() & 0o7777,
        raw_mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        size: if ft.is_file() { m.len() } else { 0 },
        rdev: m.rdev(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        ino: m.ino(),
        dev: m.dev(),
        nlink: m.nlink(),
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
    /// pre-order, sorted by name, excluded entries left out. Subdirectories are listed in
    /// parallel.
    fn walk(&self, host: &Path, ctx_rel: &Path, item_rel: &Path) -> Result<Vec<Entry>> {
        let rd = std::fs::read_dir(host).map_err(BuildError::io("reading", host))?;
        let mut names: Vec<OsString> = rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort();
        let one = |n: &OsString| -> Result<Vec<Entry>> {
            let (c_rel, i_rel) = (ctx_rel.join(n), item_rel.join(n));
            let p = host.join(n);
            let m = std::fs::symlink_metadata(&p).map_err(BuildError::io("stat", &p))?;
            let mut out = Vec::new();
            if m.is_dir() {
                if self.skip_dir(&c_rel, Some(&i_rel)) {
                    return Ok(out);
                }
                if !self.excluded(&c_rel, Some(&i_rel)) {
                    out.push(entry_of(i_rel.clone(), p.clone(), &m));
                }
                out.extend(self.walk(&p, &c_rel, &i_rel)?);
            } else if !self.excluded(&c_rel, Some(&i_rel)) {
                out.push(entry_of(i_rel, p, &m));
            }
            Ok(out)
        };
        let lists: Vec<Result<Vec<Entry>>> =
            if self.parallel { names.par_iter().map(one).collect() } else { names.iter().map(one).collect() };
        let mut out = Vec::new();
        for l in lists {
            out.extend(l?);
        }
        Ok(out)
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
        let mut entries = vec![entry_of(PathBuf::new(), host.clone(), &m)];
        if m.is_dir() {
            let below = self.walk(&host, &ctx_rel, Path::new(""))?;
            // An excluded directory is in the context only through what is brought back.
            if !top && self.excluded(rel, None) && below.is_empty() {
                return Ok(None);
            }
            entries.extend(below);
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

/// Persistent stat cache: content digests of context files by (size, mtime, ctime, inode).
///
/// The file is a log: segments of entries, later ones overriding earlier ones. A build
/// that hashed a few files appends one segment; when overridden entries pile up, the next
/// save writes the live entries afresh (atomically). A torn last segment (a crash while
/// appending) is ignored. An entry is recorded only when the file's mtime and ctime are
/// older than the build's start minus a margin, so a file changed within the timestamp
/// granularity after it was hashed is never trusted.
pub struct StatCache {
    path: PathBuf,
    old: Entries,
    /// Entries in the file, counting overridden ones.
    in_file: usize,
    /// Files this build hashed (cache misses), to be recorded.
    new: Mutex<Vec<(Box<[u8]>, CacheEntry)>>,
    started: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheEntry {
    size: u64,
    mtime: i128,
    ctime: i128,
    ino: u64,
    digest: [u8; 32],
}

const STATCACHE_MAGIC: &[u8] = b"rbuild-statcache-2\n";
/// An entry after its path: size, mtime, ctime, ino, digest.
const ENTRY_FIXED: usize = 8 + 16 + 16 + 8 + 32;

/// FxHash: the stat cache's keys are paths it made itself, so no DoS-resistant hash is
/// needed, and std's SipHash was a tenth of a no-op build.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FastHash = std::hash::BuildHasherDefault<FxHasher>;
type Entries = HashMap<Box<[u8]>, CacheEntry, FastHash>;

fn now_ns() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

fn encode_entry(out: &mut Vec<u8>, p: &[u8], e: &CacheEntry) {
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(p);
    out.extend_from_slice(&e.size.to_le_bytes());
    out.extend_from_slice(&e.mtime.to_le_bytes());
    out.extend_from_slice(&e.ctime.to_le_bytes());
    out.extend_from_slice(&e.ino.to_le_bytes());
    out.extend_from_slice(&e.digest);
}

impl StatCache {
    /// The cache for the context at `ctx`, kept in `dir`.
    pub fn open(dir: &Path, ctx: &Path) -> StatCache {
        let key = hex::encode(Sha256::digest(ctx.as_os_str().as_encoded_bytes()));
        let path = dir.join(&key[..32]);
        let (old, in_file) = std::fs::read(&path).ok().and_then(|d| Self::decode(&d)).unwrap_or_default();
        // The kernel's file times are coarse: leave a margin before "now".
        StatCache { path, old, in_file, new: Mutex::new(Vec::new()), started: now_ns() - 50_000_000 }
    }

    /// The entries of a cache file and how many it holds in all; None for a foreign file.
    fn decode(data: &[u8]) -> Option<(Entries, usize)> {
        let mut d = data.strip_prefix(STATCACHE_MAGIC)?;
        let mut m = Entries::default();
        let mut total = 0;
        // Segments until the end; a torn one ends the log.
        'segments: while d.len() >= 8 {
            let n = u64::from_le_bytes(d[..8].try_into().ok()?) as usize;
            let mut rest = &d[8..];
            let mut seg = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                let Some(len) = rest.get(..4).map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
                else {
                    break 'segments;
                };
                let Some(body) = rest.get(4..4 + len + ENTRY_FIXED) else { break 'segments };
                let (p, f) = body.split_at(len);
                let i128_at = |o: usize| i128::from_le_bytes(f[o..o + 16].try_into().unwrap_or_default());
                let u64_at = |o: usize| u64::from_le_bytes(f[o..o + 8].try_into().unwrap_or_default());
                let digest: [u8; 32] = f[48..80].try_into().unwrap_or_default();
                seg.push((
                    Box::<[u8]>::from(p),
                    CacheEntry { size: u64_at(0), mtime: i128_at(8), ctime: i128_at(24), ino: u64_at(40), digest },
                ));
                rest = &rest[4 + len + ENTRY_FIXED..];
            }
            total += seg.len();
            m.extend(seg);
            d = rest;
        }
        Some((m, total))
    }

    /// Records what this build hashed: appended to the file, or, when the file holds
    /// many overridden entries, the file rewritten. A failure only costs speed.
    pub fn save(&self) {
        let new = self.new.lock().unwrap_or_else(|e| e.into_inner());
        if new.is_empty() {
            return;
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut seg = Vec::new();
        let live = self.old.len() + new.iter().filter(|(p, _)| !self.old.contains_key(p)).count();
        let compact = self.in_file == 0 || self.in_file + new.len() > live + live / 4 + 1000;
        if compact {
            let mut all: HashMap<&[u8], &CacheEntry, FastHash> = self.old.iter().map(|(p, e)| (&p[..], e)).collect();
            all.extend(new.iter().map(|(p, e)| (&p[..], e)));
            seg.extend_from_slice(STATCACHE_MAGIC);
            seg.extend_from_slice(&(all.len() as u64).to_le_bytes());
            for (p, e) in all {
                encode_entry(&mut seg, p, e);
            }
            // A cache: losing it to a crash costs one stat pass.
            let _ = rbuild_store::write_atomic(&self.path, &seg, rbuild_store::Durability::Atomic);
            return;
        }
        seg.extend_from_slice(&(new.len() as u64).to_le_bytes());
        for (p, e) in new.iter() {
            encode_entry(&mut seg, p, e);
        }
        // One write of the whole segment: a crash leaves a prefix, which decode drops.
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&self.path) {
            let _ = std::io::Write::write_all(&mut f, &seg);
        }
    }

    /// Digests of every file entry of `items`, from the cache where the stat the
    /// selection took matches, hashed (in parallel) otherwise.
    pub fn fill(&self, items: &mut [Item]) -> Result<()> {
        let ns = |(s, n): (i64, i64)| i128::from(s) * 1_000_000_000 + i128::from(n);
        let mut todo: Vec<&mut Entry> =
            items.iter_mut().flat_map(|i| i.entries.iter_mut()).filter(|e| e.kind == EntryKind::File).collect();
        todo.par_iter_mut().try_for_each(|e| -> Result<()> {
            let key = CacheEntry { size: e.size, mtime: ns(e.mtime), ctime: ns(e.ctime), ino: e.ino, digest: [0; 32] };
            let host = e.host.as_os_str().as_bytes();
            let hit = self
                .old
                .get(host)
                .filter(|c| c.size == key.size && c.mtime == key.mtime && c.ctime == key.ctime && c.ino == key.ino);
            if let Some(c) = hit {
                e.digest = Some(c.digest);
                return Ok(());
            }
            let digest = hash_file(&e.host)?;
            e.digest = Some(digest);
            if key.mtime < self.started && key.ctime < self.started {
                self.new.lock().unwrap_or_else(|p| p.into_inner()).push((host.into(), CacheEntry { digest, ..key }));
            }
            Ok(())
        })
    }
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

#[cfg(test)]
mod tests;
