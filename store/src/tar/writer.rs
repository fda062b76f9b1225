//! Deterministic tar writer: USTAR headers, PAX records where needed, no host details.

use super::header::{self, Block};
use super::{padding, Entry, EntryKind, BLOCK};
use std::io::{self, Read, Write};

pub struct Writer<W: Write> {
    w: W,
    written: u64,
}

const ZEROS: [u8; BLOCK] = [0u8; BLOCK];

pub(crate) fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    // The length counts itself: find the fixed point.
    let base = key.len() + value.len() + 3; // ' ' '=' '\n'
    let mut len = base + 1;
    loop {
        let total = base + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Splits a path into USTAR (prefix, name), if it fits.
fn split_ustar(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((b"", path));
    }
    if path.len() > 256 {
        return None;
    }
    // The name part must be ≤100 bytes and the prefix ≤155, split at a '/'.
    let start = path.len().saturating_sub(101);
    for i in start..path.len().min(156) {
        if path[i] == b'/' && i > 0 && path.len() - i - 1 <= 100 && path.len() - i > 1 {
            return Some((&path[..i], &path[i + 1..]));
        }
    }
    None
}

impl<W: Write> Writer<W> {
    pub fn new(w: W) -> Self {
        Writer { w, written: 0 }
    }

    pub fn get_ref(&self) -> &W {
        &self.w
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    /// Writes the header (and PAX header when needed) for `e`. The caller then writes
    /// exactly `e.size` bytes with `write_data` and calls `finish_data`.
    pub fn append_header(&mut self, e: &Entry) -> io::Result<()> {
        let mut b: Block = [0u8; BLOCK];
        let mut pax: Vec<u8> = Vec::new();
        let mut path = e.path.clone();
        if e.kind == EntryKind::Dir && !path.ends_with(b"/") {
            path.push(b'/');
        }
        match split_ustar(&path).filter(|_| path.is_ascii()) {
            Some((prefix, name)) => {
                header::put_bytes(&mut b, header::NAME, name);
                header::put_bytes(&mut b, header::PREFIX, prefix);
            }
            None => {
                pax_record(&mut pax, "path", &path);
                let short: Vec<u8> =
                    path.iter().rev().take(99).rev().map(|c| if c.is_ascii() { *c } else { b'_' }).collect();
                header::put_bytes(&mut b, header::NAME, &short);
            }
        }
        if !e.link.is_empty() {
            if e.link.len() <= 100 && e.link.is_ascii() {
                header::put_bytes(&mut b, header::LINKNAME, &e.link);
            } else {
                pax_record(&mut pax, "linkpath", &e.link);
            }
        }
        header::put_octal(&mut b, header::MODE, u64::from(e.mode & 0o7777));
        if !header::put_octal(&mut b, header::UID, e.uid) {
            pax_record(&mut pax, "uid", e.uid.to_string().as_bytes());
            header::put_octal(&mut b, header::UID, 0);
        }
        if !header::put_octal(&mut b, header::GID, e.gid) {
            pax_record(&mut pax, "gid", e.gid.to_string().as_bytes());
            header::put_octal(&mut b, header::GID, 0);
        }
        let size = if e.kind == EntryKind::File { e.size } else { 0 };
        if !header::put_octal(&mut b, header::SIZE, size) {
            pax_record(&mut pax, "size", size.to_string().as_bytes());
            header::put_octal(&mut b, header::SIZE, 0);
        }
        if e.mtime < 0 || !header::put_octal(&mut b, header::MTIME, e.mtime as u64) {
            pax_record(&mut pax, "mtime", e.mtime.to_string().as_bytes());
            header::put_octal(&mut b, header::MTIME, 0);
        }
        for (k, v) in &e.xattrs {
            pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
        }
        b[header::TYPEFLAG] = match e.kind {
            EntryKind::File => b'0',
            EntryKind::Hardlink => b'1',
            EntryKind::Symlink => b'2',
            EntryKind::CharDevice => b'3',
            EntryKind::BlockDevice => b'4',
            EntryKind::Dir => b'5',
            EntryKind::Fifo => b'6',
        };
        header::put_bytes(&mut b, header::MAGIC, b"ustar\0");
        header::put_bytes(&mut b, header::VERSION, b"00");
        header::put_octal(&mut b, header::DEVMAJOR, u64::from(e.dev_major));
        header::put_octal(&mut b, header::DEVMINOR, u64::from(e.dev_minor));
        header::set_checksum(&mut b);

        if !pax.is_empty() {
            let mut p: Block = [0u8; BLOCK];
            let base: Vec<u8> = path
                .rsplit(|c| *c == b'/')
                .find(|s| !s.is_empty())
                .unwrap_or(b"x")
                .iter()
                .take(80)
                .map(|c| if c.is_ascii() && *c != 0 { *c } else { b'_' })
                .collect();
            let mut name = b"PaxHeaders.0/".to_vec();
            name.extend_from_slice(&base);
            header::put_bytes(&mut p, header::NAME, &name);
            header::put_octal(&mut p, header::MODE, 0o644);
            header::put_octal(&mut p, header::UID, 0);
            header::put_octal(&mut p, header::GID, 0);
            header::put_octal(&mut p, header::SIZE, pax.len() as u64);
            header::put_octal(&mut p, header::MTIME, 0);
            p[header::TYPEFLAG] = b'x';
            header::put_bytes(&mut p, header::MAGIC, b"ustar\0");
            header::put_bytes(&mut p, header::VERSION, b"00");
            header::set_checksum(&mut p);
            self.put(&p)?;
            self.put(&pax)?;
            let pad = padding(pax.len() as u64) as usize;
            self.put(&ZEROS[..pad])?;
        }
        self.put(&b)
    }

    /// Writes entry data (the caller writes exactly the header's size in total).
    pub fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.put(data)
    }

    /// Pads the data of an entry of `size` bytes to the block boundary.
    pub fn finish_data(&mut self, size: u64) -> io::Result<()> {
        let pad = padding(size) as usize;
        self.put(&ZEROS[..pad])
    }

    /// Header, exactly `e.size` bytes from `data`, padding. A short reader is an error.
    pub fn append(&mut self, e: &Entry, data: &mut dyn Read) -> io::Result<()> {
        self.append_header(e)?;
        if e.kind != EntryKind::File {
            return Ok(());
        }
        let mut left = e.size;
        let mut buf = vec![0u8; (left.min(1 << 20) as usize).max(1)];
        while left > 0 {
            let k = (buf.len() as u64).min(left) as usize;
            let n = data.read(&mut buf[..k])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while it was being archived", String::from_utf8_lossy(&e.path)),
                ));
            }
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        self.finish_data(e.size)
    }

    /// The end-of-archive marker; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&ZEROS)?;
        self.put(&ZEROS)?;
        self.w.flush()?;
        Ok(self.w)
    }
}
