//! The persistent stat cache of a build context (see [`StatCache`]).

use super::{hash_file, Entry, EntryKind, Item};
use crate::error::Result;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Persistent stat cache: content digests of context files by (size, mtime, ctime, inode).
///
/// The file is a log: segments of entries, later ones overriding earlier ones. A build
/// that hashed a few files appends one segment; when overridden entries pile up, the next
/// save writes the live entries afresh (atomically). A torn last segment (a crash while
/// appending) is ignored. An entry is recorded only when the file's mtime and ctime are
/// older than the build's start minus a margin, so a file changed within the timestamp
/// granularity after it was hashed is never trusted.
pub struct StatCache {
    pub(super) path: PathBuf,
    pub(super) old: Entries,
    /// Entries in the file, counting overridden ones.
    pub(super) in_file: usize,
    /// Files this build hashed (cache misses), to be recorded.
    new: Mutex<Vec<(Box<[u8]>, CacheEntry)>>,
    started: i128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CacheEntry {
    size: u64,
    mtime: i128,
    ctime: i128,
    ino: u64,
    pub(super) digest: [u8; 32],
}

const STATCACHE_MAGIC: &[u8] = b"rbuild-statcache-2\n";
/// An entry after its path: size, mtime, ctime, ino, digest.
const ENTRY_FIXED: usize = 8 + 16 + 16 + 8 + 32;

/// FxHash: the stat cache's keys are paths it made itself, so no DoS-resistant hash is
/// needed, and std's SipHash was a tenth of a no-op build.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher(u64);

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

pub(super) type FastHash = std::hash::BuildHasherDefault<FxHasher>;
pub(super) type Entries = HashMap<Box<[u8]>, CacheEntry, FastHash>;

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
