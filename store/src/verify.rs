//! Reading a stored blob with its digest checked as it streams.
//!
//! Every read of a blob that leaves the store (`save`, `push`, a cache export) or makes a
//! snapshot goes through [`VerifiedBlob`]: the bytes are hashed as they pass, and the
//! last of them are handed out only once the digest matched, so a consumer never sees a
//! complete copy of a damaged blob — its archive or upload is cut short and the command
//! fails, naming the blob. Big blobs are hashed on a helper thread while the consumer
//! writes the bytes out (one pass over the blob; the hashing costs no wall time where the
//! output is the slower part, as a disk or a network is).

use crate::digest::{Digest, Hasher};
use crate::error::{Result, StoreError};
use crate::store::Store;
use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes read from the file at a time.
const CHUNK: usize = 1 << 20;

/// A stored blob whose content does not match its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blob {digest} is corrupt: {found} (run `rbuild fsck` to find every damaged blob and how to repair it)")]
pub struct CorruptBlob {
    pub digest: Digest,
    /// What was found instead.
    pub found: String,
}

impl CorruptBlob {
    /// The corruption an I/O error from a [`VerifiedBlob`] carries, if any.
    pub fn in_io(e: &io::Error) -> Option<&CorruptBlob> {
        e.get_ref().and_then(|i| i.downcast_ref::<CorruptBlob>())
    }
}

/// Turns an I/O error into the store's: the corruption it carries, or `context: e`.
pub(crate) fn io_err(context: impl FnOnce() -> String, e: io::Error) -> StoreError {
    match CorruptBlob::in_io(&e) {
        Some(c) => StoreError::Corrupt(c.clone()),
        None => StoreError::io(context(), e),
    }
}

enum Hashing {
    Inline(Hasher),
    Thread { tx: Option<mpsc::SyncSender<Arc<Vec<u8>>>>, worker: Option<JoinHandle<Digest>> },
}

/// A reader over the blob `digest`; see the module.
pub struct VerifiedBlob {
    file: File,
    digest: Digest,
    size: u64,
    /// Bytes read from the file.
    read: u64,
    /// The chunk being handed out, and how much of it has been.
    cur: Arc<Vec<u8>>,
    pos: usize,
    hashing: Hashing,
    /// The verdict, once the whole blob was read (an error stays an error).
    verdict: Option<std::result::Result<(), CorruptBlob>>,
}

impl std::fmt::Debug for VerifiedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifiedBlob({}, {}/{} bytes)", self.digest, self.read, self.size)
    }
}

impl Store {
    /// The blob `d`, checked against its digest as it is read (see [`VerifiedBlob`]).
    pub fn open_verified(&self, d: &Digest) -> Result<VerifiedBlob> {
        let file = self.open_blob(d)?;
        let size = file.metadata().map_err(|e| StoreError::io(format!("reading blob {d}"), e))?.len();
        VerifiedBlob::new(file, *d, size)
    }
}

impl VerifiedBlob {
    fn new(file: File, digest: Digest, size: u64) -> Result<VerifiedBlob> {
        let hashing = if size <= 2 * CHUNK as u64 {
            Hashing::Inline(Hasher::new())
        } else {
            let (tx, rx) = mpsc::sync_channel::<Arc<Vec<u8>>>(4);
            let worker = std::thread::Builder::new()
                .name("blob-verify".into())
                .spawn(move || {
                    let mut h = Hasher::new();
                    for chunk in rx {
                        h.update(&chunk);
                    }
                    h.finish()
                })
                .map_err(|e| StoreError::io("starting the blob verifier", e))?;
            Hashing::Thread { tx: Some(tx), worker: Some(worker) }
        };
        Ok(VerifiedBlob { file, digest, size, read: 0, cur: Arc::new(Vec::new()), pos: 0, hashing, verdict: None })
    }

    /// The blob's size (as stored).
    pub fn size(&self) -> u64 {
        self.size
    }

    fn corrupt(&self, found: String) -> CorruptBlob {
        CorruptBlob { digest: self.digest, found }
    }

    /// Reads the next chunk from the file; the last one only after the digest matched.
    fn next_chunk(&mut self) -> io::Result<()> {
        let want = (self.size - self.read).min(CHUNK as u64) as usize;
        let mut buf = Arc::try_unwrap(std::mem::take(&mut self.cur)).unwrap_or_default();
        buf.clear();
        buf.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.file.read(&mut buf[got..]) {
                Ok(0) => {
                    let e =
                        self.corrupt(format!("it ends after {} of its {} bytes", self.read + got as u64, self.size));
                    self.verdict = Some(Err(e.clone()));
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.read += want as u64;
        let chunk = Arc::new(buf);
        match &mut self.hashing {
            Hashing::Inline(h) => h.update(&chunk),
            Hashing::Thread { tx, .. } => {
                if let Some(tx) = tx {
                    let _ = tx.send(chunk.clone());
                }
            }
        }
        if self.read == self.size {
            self.finish()?;
        }
        self.cur = chunk;
        self.pos = 0;
        Ok(())
    }

    /// All bytes were read: the digest decides.
    fn finish(&mut self) -> io::Result<()> {
        let actual = match std::mem::replace(&mut self.hashing, Hashing::Inline(Hasher::new())) {
            Hashing::Inline(h) => h.finish(),
            Hashing::Thread { mut tx, mut worker } => {
                drop(tx.take());
                match worker.take().map(|w| w.join()) {
                    Some(Ok(d)) => d,
                    _ => return Err(io::Error::other("the blob verifier thread failed")),
                }
            }
        };
        let verdict =
            if actual == self.digest { Ok(()) } else { Err(self.corrupt(format!("its content hashes to {actual}"))) };
        self.verdict = Some(verdict.clone());
        verdict.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Reads what is left, so the digest is checked even where the consumer stopped
    /// early (a layer's tar ends before the blob does: padding after the end marker).
    pub fn verify_rest(&mut self) -> Result<()> {
        io::copy(self, &mut io::sink()).map_err(|e| io_err(|| format!("reading blob {}", self.digest), e))?;
        Ok(())
    }
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(Err(e)) = &self.verdict {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        if self.pos == self.cur.len() {
            if self.read == self.size {
                if self.size == 0 && self.verdict.is_none() {
                    self.finish()?;
                }
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for VerifiedBlob {
    fn drop(&mut self) {
        if let Hashing::Thread { tx, worker } = &mut self.hashing {
            drop(tx.take());
            if let Some(w) = worker.take() {
                let _ = w.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn stored(data: &[u8]) -> (tempfile::TempDir, Store, Digest) {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let mut w = s.blob_writer().unwrap();
        w.write_all(data).unwrap();
        let (d, _) = w.commit(None, None).unwrap();
        (t, s, d)
    }

    #[test]
    fn a_sound_blob_reads_whole_whatever_its_size() {
        for len in [0usize, 1, 511, CHUNK, 2 * CHUNK + 1, 5 * CHUNK + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let (_t, s, d) = stored(&data);
            let mut back = Vec::new();
            s.open_verified(&d).unwrap().read_to_end(&mut back).unwrap();
            assert!(back == data, "{len}");
        }
    }

    /// One flipped byte: the reader fails before handing out the last bytes, small blob
    /// (hashed inline) or big (on the helper thread); a cut blob fails too.
    #[test]
    fn a_damaged_blob_is_never_read_whole() {
        for len in [100usize, 3 * CHUNK + 5] {
            let data = vec![9u8; len];
            let (_t, s, d) = stored(&data);
            let p = s.blob_path(&d);
            let mut bad = data.clone();
            bad[len / 2] ^= 1;
            std::fs::write(&p, &bad).unwrap();
            let mut r = s.open_verified(&d).unwrap();
            let mut got = Vec::new();
            let e = r.read_to_end(&mut got).unwrap_err();
            let c = CorruptBlob::in_io(&e).unwrap_or_else(|| panic!("{e}"));
            assert_eq!(c.digest, d);
            assert!(c.found.contains("hashes to"), "{c}");
            assert!(got.len() < len, "{len}: the whole damaged blob was handed out");
            assert!(r.read(&mut [0u8; 10]).is_err(), "and it stays an error");
            std::fs::write(&p, &data[..len - 1]).unwrap();
            let e = s.open_verified(&d).unwrap().read_to_end(&mut Vec::new()).unwrap_err();
            assert!(CorruptBlob::in_io(&e).is_some(), "{e}");
        }
    }
}
