//! The 512-byte header block: field offsets, numbers, checksums.

use super::BLOCK;

pub const NAME: (usize, usize) = (0, 100);
pub const MODE: (usize, usize) = (100, 8);
pub const UID: (usize, usize) = (108, 8);
pub const GID: (usize, usize) = (116, 8);
pub const SIZE: (usize, usize) = (124, 12);
pub const MTIME: (usize, usize) = (136, 12);
pub const CHKSUM: (usize, usize) = (148, 8);
pub const TYPEFLAG: usize = 156;
pub const LINKNAME: (usize, usize) = (157, 100);
pub const MAGIC: (usize, usize) = (257, 6);
pub const VERSION: (usize, usize) = (263, 2);
pub const DEVMAJOR: (usize, usize) = (329, 8);
pub const DEVMINOR: (usize, usize) = (337, 8);
pub const PREFIX: (usize, usize) = (345, 155);
// Old GNU format: sparse entries in the header.
pub const GNU_SPARSE: usize = 386;
pub const GNU_IS_EXTENDED: usize = 482;
pub const GNU_REAL_SIZE: (usize, usize) = (483, 12);

pub type Block = [u8; BLOCK];

pub fn field(b: &Block, f: (usize, usize)) -> &[u8] {
    &b[f.0..f.0 + f.1]
}

/// A NUL-terminated string field.
pub fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// A numeric field: octal text (NUL/space padded), or GNU base-256 when the high bit of
/// the first byte is set.
pub fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return Some(0);
    }
    if b[0] & 0x80 != 0 {
        if b[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v: u64 = u64::from(b[0] & 0x3f);
        for &c in &b[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(c))?;
        }
        return Some(v);
    }
    let s = cstr(b);
    let s: Vec<u8> = s.iter().copied().filter(|c| *c != b' ').collect();
    if s.is_empty() {
        return Some(0);
    }
    let mut v: u64 = 0;
    for c in s {
        if !(b'0'..=b'7').contains(&c) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// The sum used for header checksums (with the checksum field counted as spaces), both the
/// unsigned and the historical signed variant.
pub fn checksums(b: &Block) -> (u64, i64) {
    let mut u: u64 = 0;
    let mut s: i64 = 0;
    for (i, &c) in b.iter().enumerate() {
        let c = if (CHKSUM.0..CHKSUM.0 + CHKSUM.1).contains(&i) { b' ' } else { c };
        u += u64::from(c);
        s += i64::from(c as i8);
    }
    (u, s)
}

/// Writes `v` as zero-padded octal filling `width - 1` digits plus a NUL. Returns false
/// when it does not fit.
pub fn put_octal(b: &mut Block, f: (usize, usize), v: u64) -> bool {
    let digits = f.1 - 1;
    let s = format!("{v:0digits$o}");
    if s.len() > digits {
        return false;
    }
    b[f.0..f.0 + digits].copy_from_slice(s.as_bytes());
    b[f.0 + digits] = 0;
    true
}

pub fn put_bytes(b: &mut Block, f: (usize, usize), v: &[u8]) -> bool {
    if v.len() > f.1 {
        return false;
    }
    b[f.0..f.0 + v.len()].copy_from_slice(v);
    true
}

pub fn set_checksum(b: &mut Block) {
    let (sum, _) = checksums(b);
    // Six octal digits, NUL, space: the traditional layout.
    let s = format!("{sum:06o}");
    b[CHKSUM.0..CHKSUM.0 + 6].copy_from_slice(s.as_bytes());
    b[CHKSUM.0 + 6] = 0;
    b[CHKSUM.0 + 7] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"   644 \0"), Some(0o644));
        assert_eq!(number(b"\0\0\0"), Some(0));
        assert_eq!(number(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(b"0009"), None);
        let mut b = [0u8; BLOCK];
        assert!(put_octal(&mut b, MODE, 0o755));
        assert_eq!(field(&b, MODE), b"0000755\0");
        assert!(!put_octal(&mut b, UID, 0o77777777));
    }
}
