//! Streaming tar reader with strict validation.

use super::header::{self, Block};
use super::{padding, Entry, EntryKind, SparseMap, BLOCK};
use crate::error::{Result, StoreError};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Upper bound for metadata carried in the data area (PAX records, GNU long names, sparse
/// maps), so a lying size field cannot make us allocate without limit.
const MAX_META: u64 = 16 << 20;

pub struct Reader<R> {
    r: R,
    /// Data bytes of the current entry not yet consumed.
    remaining: u64,
    /// Padding that follows the current entry's data.
    pad: u64,
    /// Bytes consumed from the stream, for messages.
    offset: u64,
    global: BTreeMap<String, Vec<u8>>,
    current: String,
    done: bool,
}

/// What is wrong in a tar stream's metadata records (the reader adds where).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarDefect {
    #[error("sparse region overflows")]
    SparseOverflow,
    #[error("sparse regions out of order or beyond the file size")]
    SparseOrder,
    #[error("missing GNU.sparse.size")]
    SparseSize,
    #[error("invalid sparse map")]
    SparseMap,
    #[error("invalid PAX record")]
    PaxRecord,
    #[error("invalid PAX record length")]
    PaxLength,
    #[error("unsupported entry type {typeflag:?} for {path}")]
    EntryType { typeflag: char, path: String },
}

fn bad(offset: u64, msg: impl std::fmt::Display) -> StoreError {
    StoreError::archive(format!("{msg} (at byte {offset})"))
}

impl<R: Read> Reader<R> {
    pub fn new(r: R) -> Self {
        Reader { r, remaining: 0, pad: 0, offset: 0, global: BTreeMap::new(), current: String::new(), done: false }
    }

    pub fn into_inner(self) -> R {
        self.r
    }

    /// Reads exactly `buf.len()` bytes or fails with a truncation error.
    fn read_exact_or_truncated(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => return Err(bad(self.offset + got as u64, format!("unexpected end of archive in {what}"))),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StoreError::io(format!("reading archive ({what})"), e)),
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, mut n: u64, what: &str) -> Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.read_exact_or_truncated(&mut buf[..k], what)?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Reads a whole small data area (PAX records, long names).
    fn read_meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>> {
        if size > MAX_META {
            return Err(bad(self.offset, format!("{what} of {size} bytes is larger than allowed")));
        }
        let mut v = vec![0u8; size as usize];
        self.read_exact_or_truncated(&mut v, what)?;
        self.skip(padding(size), what)?;
        Ok(v)
    }

    fn read_block(&mut self, what: &str) -> Result<Option<Block>> {
        let mut b = [0u8; BLOCK];
        // End of stream exactly at a header boundary means the end-of-archive marker is
        // missing: the stream was cut.
        let mut got = 0;
        while got < BLOCK {
            match self.r.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(bad(self.offset + got as u64, format!("unexpected end of archive in {what}"))),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StoreError::io(format!("reading archive ({what})"), e)),
            }
        }
        self.offset += BLOCK as u64;
        Ok(Some(b))
    }

    /// The next entry, or `None` after the end-of-archive marker.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let (rem, pad) = (self.remaining, self.pad);
        let cur = std::mem::take(&mut self.current);
        self.skip(rem + pad, &format!("the data of {cur}"))?;
        self.remaining = 0;
        self.pad = 0;

        let mut pax: BTreeMap<String, Vec<u8>> = self.global.clone();
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        loop {
            let Some(b) = self.read_block("a header")? else {
                return Err(bad(self.offset, "unexpected end of archive (no end-of-archive marker)"));
            };
            if b.iter().all(|&c| c == 0) {
                // The end marker is two zero blocks; tolerate a missing second one.
                let _ = self.read_block("the end-of-archive marker")?;
                self.done = true;
                return Ok(None);
            }
            let stored = header::number(header::field(&b, header::CHKSUM))
                .ok_or_else(|| bad(self.offset - BLOCK as u64, "invalid header checksum field"))?;
            let (u, s) = header::checksums(&b);
            if stored != u && stored as i64 != s {
                return Err(bad(
                    self.offset - BLOCK as u64,
                    "header checksum mismatch (not a tar archive, or corrupt)",
                ));
            }
            let size = header::number(header::field(&b, header::SIZE))
                .ok_or_else(|| bad(self.offset, "invalid size field"))?;
            let typeflag = b[header::TYPEFLAG];
            if self.read_extension(typeflag, size, &mut pax, &mut long_name, &mut long_link)? {
                continue;
            }
            let num = |f: (usize, usize), name: &str| -> Result<u64> {
                header::number(header::field(&b, f)).ok_or_else(|| bad(self.offset, format!("invalid {name} field")))
            };
            let gnu = header::field(&b, header::MAGIC) == b"ustar ";
            let path = entry_path(&b, &pax, long_name.as_ref());
            let link = match pax.get("linkpath").or(long_link.as_ref()) {
                Some(l) => l.clone(),
                None => header::cstr(header::field(&b, header::LINKNAME)).to_vec(),
            };
            let kind = entry_kind(typeflag, &path).map_err(|m| bad(self.offset, m))?;
            let pax_num = |k: &str| -> Result<Option<u64>> {
                match pax.get(k) {
                    None => Ok(None),
                    Some(v) => std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Some)
                        .ok_or_else(|| bad(self.offset, format!("invalid PAX {k} record"))),
                }
            };
            let size = pax_num("size")?.unwrap_or(size);
            let mtime = match pax.get("mtime") {
                Some(v) => {
                    let s = String::from_utf8_lossy(v);
                    let int = s.trim().split('.').next().unwrap_or("0");
                    int.parse::<i64>().map_err(|_| bad(self.offset, "invalid PAX mtime record"))?
                }
                None => num(header::MTIME, "mtime")? as i64,
            };
            let mut xattrs: Vec<(String, Vec<u8>)> = pax
                .iter()
                .filter_map(|(k, v)| k.strip_prefix("SCHILY.xattr.").map(|n| (n.to_string(), v.clone())))
                .collect();
            xattrs.sort();
            let mut e = Entry {
                path,
                kind,
                mode: (num(header::MODE, "mode")? & 0o7777) as u32,
                uid: pax_num("uid")?.unwrap_or(num(header::UID, "uid")?),
                gid: pax_num("gid")?.unwrap_or(num(header::GID, "gid")?),
                size: if matches!(kind, EntryKind::File) { size } else { 0 },
                mtime,
                link,
                dev_major: num(header::DEVMAJOR, "devmajor").unwrap_or(0) as u32,
                dev_minor: num(header::DEVMINOR, "devminor").unwrap_or(0) as u32,
                xattrs,
                sparse: None,
            };
            // Entries other than files may still declare data (hard links from some
            // writers): it is skipped.
            self.remaining = size;
            self.pad = padding(size);
            self.read_sparse_map(&mut e, &b, typeflag == b'S' && gnu, &pax)?;
            self.current = e.path_lossy();
            return Ok(Some(e));
        }
    }

    /// Reads the data of an extension header (PAX, PAX global, GNU long name or long link
    /// name) into what it extends; false when `typeflag` is an entry's.
    fn read_extension(
        &mut self,
        typeflag: u8,
        size: u64,
        pax: &mut BTreeMap<String, Vec<u8>>,
        long_name: &mut Option<Vec<u8>>,
        long_link: &mut Option<Vec<u8>>,
    ) -> Result<bool> {
        match typeflag {
            b'x' => {
                let data = self.read_meta(size, "a PAX header")?;
                parse_pax(&data, pax).map_err(|m| bad(self.offset, m))?;
            }
            b'g' => {
                let data = self.read_meta(size, "a PAX global header")?;
                parse_pax(&data, &mut self.global).map_err(|m| bad(self.offset, m))?;
                parse_pax(&data, pax).map_err(|m| bad(self.offset, m))?;
            }
            b'L' => {
                let mut v = self.read_meta(size, "a GNU long name")?;
                v.truncate(header::cstr(&v).len());
                *long_name = Some(v);
            }
            b'K' => {
                let mut v = self.read_meta(size, "a GNU long link name")?;
                v.truncate(header::cstr(&v).len());
                *long_link = Some(v);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The sparse map of `e` (an old GNU sparse header when `old_gnu`, else from the PAX
    /// records of format 1.0 or 0.1), and its size then: the data stored.
    fn read_sparse_map(
        &mut self,
        e: &mut Entry,
        b: &Block,
        old_gnu: bool,
        pax: &BTreeMap<String, Vec<u8>>,
    ) -> Result<()> {
        if old_gnu {
            e.sparse = Some(self.old_gnu_sparse(b)?);
        } else if let Some(major) = pax.get("GNU.sparse.major") {
            if major.as_slice() == b"1" {
                e.sparse = Some(self.sparse_1_0(pax)?);
            } else {
                return Err(bad(self.offset, "unsupported GNU sparse format"));
            }
        } else if let Some(map) = pax.get("GNU.sparse.map") {
            e.sparse = Some(sparse_0_1(map, pax).map_err(|m| bad(self.offset, m))?);
        }
        if let Some(s) = &e.sparse {
            let stored: u64 = s.regions.iter().map(|r| r.1).sum();
            if stored != self.remaining {
                return Err(bad(self.offset, "sparse map does not match the stored data size"));
            }
            e.size = self.remaining;
        }
        Ok(())
    }

    fn old_gnu_sparse(&mut self, b: &Block) -> Result<SparseMap> {
        let mut regions = Vec::new();
        let mut push = |off: &[u8], len: &[u8], at: u64| -> Result<()> {
            let o = header::number(off).ok_or_else(|| bad(at, "invalid sparse offset"))?;
            let l = header::number(len).ok_or_else(|| bad(at, "invalid sparse length"))?;
            if o != 0 || l != 0 {
                regions.push((o, l));
            }
            Ok(())
        };
        for i in 0..4 {
            let base = header::GNU_SPARSE + i * 24;
            push(&b[base..base + 12], &b[base + 12..base + 24], self.offset)?;
        }
        let real_size = header::number(header::field(b, header::GNU_REAL_SIZE))
            .ok_or_else(|| bad(self.offset, "invalid sparse size"))?;
        let mut extended = b[header::GNU_IS_EXTENDED] != 0;
        while extended {
            let Some(x) = self.read_block("a sparse extension header")? else {
                return Err(bad(self.offset, "unexpected end of archive in a sparse header"));
            };
            for i in 0..21 {
                let base = i * 24;
                push(&x[base..base + 12], &x[base + 12..base + 24], self.offset)?;
            }
            extended = x[504] != 0;
        }
        check_regions(&regions, real_size).map_err(|m| bad(self.offset, m))?;
        Ok(SparseMap { real_size, regions })
    }

    fn sparse_1_0(&mut self, pax: &BTreeMap<String, Vec<u8>>) -> Result<SparseMap> {
        let real_size = pax
            .get("GNU.sparse.realsize")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .ok_or_else(|| bad(self.offset, "missing GNU.sparse.realsize"))?;
        // The map is in the data area: decimal numbers, one a line, padded to a block.
        let mut consumed = 0u64;
        let mut numbers: Vec<u64> = Vec::new();
        let mut cur = String::new();
        let mut expected: Option<u64> = None;
        let mut block = [0u8; BLOCK];
        'blocks: loop {
            if consumed + BLOCK as u64 > self.remaining || consumed > MAX_META {
                return Err(bad(self.offset, "sparse map larger than the entry"));
            }
            self.read_exact_or_truncated(&mut block, "a sparse map")?;
            consumed += BLOCK as u64;
            for &c in &block {
                if c == b'\n' {
                    let n: u64 = cur.parse().map_err(|_| bad(self.offset, "invalid sparse map"))?;
                    cur.clear();
                    if expected.is_none() {
                        if n > 1 << 20 {
                            return Err(bad(self.offset, "sparse map too large"));
                        }
                        expected = Some(n);
                    } else {
                        numbers.push(n);
                    }
                    if expected.is_some_and(|e| numbers.len() as u64 == e * 2) {
                        break 'blocks;
                    }
                } else if c.is_ascii_digit() {
                    cur.push(c as char);
                } else {
                    return Err(bad(self.offset, "invalid sparse map"));
                }
            }
        }
        self.remaining -= consumed;
        self.pad = padding(self.remaining);
        let regions: Vec<(u64, u64)> =
            numbers.chunks(2).map(|c| (c[0], c[1])).filter(|r| r.1 != 0 || r.0 != real_size).collect();
        check_regions(&regions, real_size).map_err(|m| bad(self.offset, m))?;
        Ok(SparseMap { real_size, regions })
    }

    /// Reader over the current entry's stored data.
    pub fn data(&mut self) -> EntryReader<'_, R> {
        EntryReader { t: self }
    }
}

fn check_regions(regions: &[(u64, u64)], real_size: u64) -> std::result::Result<(), TarDefect> {
    let mut end = 0u64;
    for &(o, l) in regions {
        let e = o.checked_add(l).ok_or(TarDefect::SparseOverflow)?;
        if o < end || e > real_size {
            return Err(TarDefect::SparseOrder);
        }
        end = e;
    }
    Ok(())
}

fn sparse_0_1(map: &[u8], pax: &BTreeMap<String, Vec<u8>>) -> std::result::Result<SparseMap, TarDefect> {
    let real_size: u64 = pax
        .get("GNU.sparse.size")
        .or(pax.get("GNU.sparse.realsize"))
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .ok_or(TarDefect::SparseSize)?;
    let s = std::str::from_utf8(map).map_err(|_| TarDefect::SparseMap)?;
    let nums: Vec<u64> = if s.is_empty() {
        vec![]
    } else {
        s.split(',').map(|n| n.parse().map_err(|_| TarDefect::SparseMap)).collect::<std::result::Result<_, _>>()?
    };
    if !nums.len().is_multiple_of(2) {
        return Err(TarDefect::SparseMap);
    }
    let regions: Vec<(u64, u64)> =
        nums.chunks(2).map(|c| (c[0], c[1])).filter(|r| r.1 != 0 || r.0 != real_size).collect();
    check_regions(&regions, real_size)?;
    Ok(SparseMap { real_size, regions })
}

/// Parses PAX records (`"%d %s=%s\n"`) into `out`; an empty value deletes the key.
fn parse_pax(data: &[u8], out: &mut BTreeMap<String, Vec<u8>>) -> std::result::Result<(), TarDefect> {
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&c| c == 0) {
            break;
        }
        let sp = rest.iter().position(|&c| c == b' ').ok_or(TarDefect::PaxRecord)?;
        let len: usize =
            std::str::from_utf8(&rest[..sp]).ok().and_then(|s| s.parse().ok()).ok_or(TarDefect::PaxLength)?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(TarDefect::PaxRecord);
        }
        let rec = &rest[sp + 1..len - 1];
        let eq = rec.iter().position(|&c| c == b'=').ok_or(TarDefect::PaxRecord)?;
        let key = String::from_utf8_lossy(&rec[..eq]).into_owned();
        let value = rec[eq + 1..].to_vec();
        if value.is_empty() {
            out.remove(&key);
        } else {
            out.insert(key, value);
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// `Read` over one entry's data; reading past the end returns 0, a cut stream an error.
pub struct EntryReader<'a, R> {
    t: &'a mut Reader<R>,
}

impl<R: Read> Read for EntryReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.t.remaining == 0 {
            return Ok(0);
        }
        let k = (buf.len() as u64).min(self.t.remaining) as usize;
        let n = self.t.r.read(&mut buf[..k])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("unexpected end of archive in the data of {} (at byte {})", self.t.current, self.t.offset),
            ));
        }
        self.t.remaining -= n as u64;
        self.t.offset += n as u64;
        Ok(n)
    }
}

/// An entry's path: from PAX, a GNU long name, or the header's prefix and name (the
/// prefix only in POSIX ustar headers); a GNU sparse file's real name wins over all.
fn entry_path(b: &Block, pax: &BTreeMap<String, Vec<u8>>, long_name: Option<&Vec<u8>>) -> Vec<u8> {
    if let Some(n) = pax.get("GNU.sparse.name") {
        return n.clone();
    }
    if let Some(p) = pax.get("path").or(long_name) {
        return p.clone();
    }
    let posix = header::field(b, header::MAGIC) == b"ustar\0";
    let name = header::cstr(header::field(b, header::NAME)).to_vec();
    let prefix = if posix { header::cstr(header::field(b, header::PREFIX)) } else { b"" };
    if prefix.is_empty() {
        return name;
    }
    let mut p = prefix.to_vec();
    p.push(b'/');
    p.extend_from_slice(&name);
    p
}

/// The kind of entry a type flag names (a regular file whose name ends in `/` is a
/// directory, as old tars wrote them).
fn entry_kind(typeflag: u8, path: &[u8]) -> std::result::Result<EntryKind, TarDefect> {
    Ok(match typeflag {
        b'0' | b'\0' | b'7' | b'S' => {
            if path.ends_with(b"/") && typeflag != b'S' {
                EntryKind::Dir
            } else {
                EntryKind::File
            }
        }
        b'1' => EntryKind::Hardlink,
        b'2' => EntryKind::Symlink,
        b'3' => EntryKind::CharDevice,
        b'4' => EntryKind::BlockDevice,
        b'5' => EntryKind::Dir,
        b'6' => EntryKind::Fifo,
        other => {
            return Err(TarDefect::EntryType {
                typeflag: other as char,
                path: String::from_utf8_lossy(path).into_owned(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader's metadata defects keep their words (the reader adds the byte offset).
    #[test]
    fn defects_say_what_is_wrong() {
        assert_eq!(entry_kind(b'Z', b"a/b").unwrap_err().to_string(), "unsupported entry type 'Z' for a/b");
        let mut m = BTreeMap::new();
        assert_eq!(parse_pax(b"x", &mut m), Err(TarDefect::PaxRecord));
        assert_eq!(parse_pax(b"x y=z\n", &mut m).unwrap_err().to_string(), "invalid PAX record length");
        assert_eq!(
            check_regions(&[(5, 1), (0, 1)], 10).unwrap_err().to_string(),
            "sparse regions out of order or beyond the file size"
        );
        assert_eq!(check_regions(&[(u64::MAX, 1)], 10), Err(TarDefect::SparseOverflow));
        assert_eq!(sparse_0_1(b"1", &BTreeMap::new()).unwrap_err().to_string(), "missing GNU.sparse.size");
        let size: BTreeMap<String, Vec<u8>> = [("GNU.sparse.size".to_string(), b"10".to_vec())].into();
        assert_eq!(sparse_0_1(b"1", &size), Err(TarDefect::SparseMap));
    }
}
