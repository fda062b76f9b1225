//! The persistent stat cache of a build context (see [`StatCache`]).

use super::{hash_file, Entry, EntryKind, Item};
use crate::error::Result;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::cmp::Ordering;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Persistent stat cache: content digests of context files by (size, mtime, ctime, inode).
///
/// The file is a log: segments of entries, later ones overriding earlier ones. A build
/// that hashed a few files appends one segment; when overridden entries pile up, the next
/// save writes the live entries afresh (atomically), sorted in the walk's order. A torn
/// last segment (a crash while appending) is ignored. An entry is recorded only when the
/// file's mtime and ctime are older than the build's start minus a margin, so a file
/// changed within the timestamp granularity after it was hashed is never trusted.
///
/// In memory the cache is the file's bytes and the offsets of its live entries, sorted by
/// path in the walk's order: a lookup in walk order is one comparison with the entry
/// after the last hit (a binary search otherwise), and nothing is allocated per entry.
pub struct StatCache {
    pub(super) path: PathBuf,
    data: Vec<u8>,
    /// Offsets in `data` of the live entries (the last one of each path), sorted by path.
    index: Vec<u32>,
    /// Entries in the file, counting overridden ones.
    pub(super) in_file: usize,
    /// Files this build hashed (cache misses), to be recorded.
    new: Mutex<Vec<(Box<[u8]>, CacheEntry)>>,
    started: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CacheEntry {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    pub(super) digest: [u8; 32],
}

/// Version 3: times as (seconds, nanoseconds), compacted files sorted in walk order. A
/// file of another version is ignored (and replaced by the next save), never misread.
const STATCACHE_MAGIC: &[u8] = b"rbuild-statcache-3\n";
/// An entry after its path: size, mtime, ctime, ino, digest.
const ENTRY_FIXED: usize = 8 + 16 + 16 + 8 + 32;

/// The walk's order of two paths: by component, each compared by its bytes (a directory's
/// contents come right after it, before a sibling whose name extends the directory's).
pub(super) fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    let key = |c: &u8| if *c == b'/' { 0 } else { *c };
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => key(&a[i]).cmp(&key(&b[i])),
        None => a.len().cmp(&b.len()),
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

fn ns((s, n): (i64, i64)) -> i128 {
    i128::from(s) * 1_000_000_000 + i128::from(n)
}

fn encode_entry(out: &mut Vec<u8>, p: &[u8], e: &CacheEntry) {
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(p);
    for v in [e.size as i64, e.mtime.0, e.mtime.1, e.ctime.0, e.ctime.1, e.ino as i64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&e.digest);
}

/// The path of the entry at `off` of a decoded file.
fn path_at(data: &[u8], off: u32) -> &[u8] {
    let o = off as usize;
    let len = u32::from_le_bytes(data[o..o + 4].try_into().unwrap_or_default()) as usize;
    &data[o + 4..o + 4 + len]
}

/// The whole entry (length, path, fields) at `off`, as it is in the file.
fn raw_at(data: &[u8], off: u32) -> &[u8] {
    let o = off as usize;
    &data[o..o + 4 + path_at(data, off).len() + ENTRY_FIXED]
}

fn entry_at(data: &[u8], off: u32) -> CacheEntry {
    let f = &data[off as usize + 4 + path_at(data, off).len()..];
    let i64_at = |o: usize| i64::from_le_bytes(f[o..o + 8].try_into().unwrap_or_default());
    CacheEntry {
        size: i64_at(0) as u64,
        mtime: (i64_at(8), i64_at(16)),
        ctime: (i64_at(24), i64_at(32)),
        ino: i64_at(40) as u64,
        digest: f[48..80].try_into().unwrap_or_default(),
    }
}

/// The offsets of the entries of a cache file in file order, and where the valid part
/// ends; None for a foreign file (or one too big to index).
fn decode(data: &[u8]) -> Option<Vec<u32>> {
    let mut at = STATCACHE_MAGIC.len();
    if !data.starts_with(STATCACHE_MAGIC) || u32::try_from(data.len()).is_err() {
        return None;
    }
    let mut offs = Vec::new();
    // Segments until the end; a torn one ends the log.
    'segments: while let Some(n) = data.get(at..at + 8) {
        let n = u64::from_le_bytes(n.try_into().ok()?);
        let mut o = at + 8;
        let first = offs.len();
        for _ in 0..n {
            let Some(len) = data.get(o..o + 4) else {
                offs.truncate(first);
                break 'segments;
            };
            let end = o + 4 + u32::from_le_bytes(len.try_into().ok()?) as usize + ENTRY_FIXED;
            if end > data.len() {
                offs.truncate(first);
                break 'segments;
            }
            offs.push(o as u32);
            o = end;
        }
        at = o;
    }
    Some(offs)
}

/// The live entries of a decoded file, sorted in walk order: of several entries of one
/// path, the last in the file.
fn live_index(data: &[u8], mut offs: Vec<u32>) -> Vec<u32> {
    let lt = |a: &u32, b: &u32| walk_order(path_at(data, *a), path_at(data, *b)) == Ordering::Less;
    if offs.is_sorted_by(lt) {
        return offs; // a compacted file: sorted, one entry a path
    }
    // Stable: equal paths stay in file order; reversed, the last comes first and is kept.
    offs.sort_by(|a, b| walk_order(path_at(data, *a), path_at(data, *b)));
    offs.reverse();
    offs.dedup_by(|a, b| path_at(data, *a) == path_at(data, *b));
    offs.reverse();
    offs
}

impl StatCache {
    /// The cache for the context at `ctx`, kept in `dir`.
    pub fn open(dir: &Path, ctx: &Path) -> StatCache {
        let key = hex::encode(Sha256::digest(ctx.as_os_str().as_encoded_bytes()));
        let path = dir.join(&key[..32]);
        let mut data = std::fs::read(&path).unwrap_or_default();
        let (index, in_file) = match decode(&data) {
            Some(offs) => {
                let n = offs.len();
                (live_index(&data, offs), n)
            }
            None => {
                data = Vec::new();
                (Vec::new(), 0)
            }
        };
        // The kernel's file times are coarse: leave a margin before "now".
        StatCache { path, data, index, in_file, new: Mutex::new(Vec::new()), started: now_ns() - 50_000_000 }
    }

    /// How many paths the cache knows.
    #[cfg(test)]
    pub(super) fn live(&self) -> usize {
        self.index.len()
    }

    /// Where `p` is in the index: `hint` first (the entry after the last hit), then a
    /// binary search.
    fn find(&self, p: &[u8], hint: usize) -> Option<usize> {
        if self.index.get(hint).is_some_and(|o| path_at(&self.data, *o) == p) {
            return Some(hint);
        }
        self.index.binary_search_by(|o| walk_order(path_at(&self.data, *o), p)).ok()
    }

    /// The recorded entry of the file at `p`.
    #[cfg(test)]
    pub(super) fn get(&self, p: &[u8]) -> Option<CacheEntry> {
        self.find(p, 0).map(|i| entry_at(&self.data, self.index[i]))
    }

    /// Records what this build hashed: appended to the file, or, when the file holds
    /// many overridden entries, the file rewritten. A failure only costs speed.
    pub fn save(&self) {
        let mut new = self.new.lock().unwrap_or_else(|e| e.into_inner());
        if new.is_empty() {
            return;
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Sorted, and one entry a path (the last recorded).
        new.sort_by(|a, b| walk_order(&a.0, &b.0));
        new.reverse();
        new.dedup_by(|a, b| a.0 == b.0);
        new.reverse();
        let live = self.index.len() + new.iter().filter(|(p, _)| self.find(p, 0).is_none()).count();
        let compact = self.in_file == 0 || self.in_file + new.len() > live + live / 4 + 1000;
        let mut seg = Vec::new();
        if compact {
            seg.extend_from_slice(STATCACHE_MAGIC);
            seg.extend_from_slice(&(live as u64).to_le_bytes());
            self.merge_into(&new, &mut seg);
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

    /// The live entries and `new` (sorted, one a path, overriding), merged in walk order.
    fn merge_into(&self, new: &[(Box<[u8]>, CacheEntry)], out: &mut Vec<u8>) {
        let (mut old, mut new) = (self.index.iter().peekable(), new.iter().peekable());
        loop {
            let ord = match (old.peek(), new.peek()) {
                (Some(o), Some((p, _))) => walk_order(path_at(&self.data, **o), p),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => return,
            };
            if ord == Ordering::Less {
                out.extend_from_slice(raw_at(&self.data, *old.next().unwrap_or(&0)));
                continue;
            }
            if ord == Ordering::Equal {
                old.next();
            }
            if let Some((p, e)) = new.next() {
                encode_entry(out, p, e);
            }
        }
    }

    /// Digests of every file entry of `items`, from the cache where the stat the
    /// selection took matches, hashed (in parallel) otherwise.
    pub fn fill(&self, items: &mut [Item]) -> Result<()> {
        let mut hint = 0;
        let mut todo: Vec<&mut Entry> = Vec::new();
        for e in items.iter_mut().flat_map(|i| i.entries.iter_mut()).filter(|e| e.kind == EntryKind::File) {
            if let Some(i) = self.find(e.host.as_os_str().as_bytes(), hint) {
                hint = i + 1;
                let c = entry_at(&self.data, self.index[i]);
                if (c.size, c.mtime, c.ctime, c.ino) == (e.size, e.mtime, e.ctime, e.ino) {
                    e.digest = Some(c.digest);
                    continue;
                }
            }
            todo.push(e);
        }
        todo.par_iter_mut().try_for_each(|e| -> Result<()> {
            let digest = hash_file(&e.host)?;
            e.digest = Some(digest);
            if ns(e.mtime) < self.started && ns(e.ctime) < self.started {
                let c = CacheEntry { size: e.size, mtime: e.mtime, ctime: e.ctime, ino: e.ino, digest };
                self.new.lock().unwrap_or_else(|p| p.into_inner()).push((e.host.as_os_str().as_bytes().into(), c));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
