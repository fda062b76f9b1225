//! Writing blobs: [`BlobWriter`] hashes and writes a blob on a background thread and
//! publishes it by linking an unnamed temp file in; [`ingest_blob`] and [`copy_to_blob`]
//! stream a reader through one.

use super::{sync_dir, tempfile_in, Store};
use crate::digest::{Digest, Hasher};
use crate::error::{IoContext, Result, StoreError};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A blob being written: hashed and written to a temp file on a background thread, so
/// the caller's thread only produces it; published by `commit`. Dropped without commit,
/// it leaves nothing — and neither does a process killed while writing: the temp file
/// is unnamed (`O_TMPFILE`) until it is linked in as the blob.
///
/// Thread and file start with the first full chunk: a blob smaller than that (a build
/// step's small layer) is hashed where it is made, and one already stored makes no file
/// at all — no thread to start, no inode to allocate and free for each step.
pub struct BlobWriter {
    buf: Vec<u8>,
    /// Bytes handed to the worker.
    sent: u64,
    worker: Option<Worker>,
    /// The worker's failure, once it stopped on one (reported by every later call).
    failed: Option<(io::ErrorKind, String)>,
    store: Store,
    committed: bool,
}

/// The thread writing and hashing a blob's chunks into its temp file.
struct Worker {
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    recycle: mpsc::Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<(File, Hasher)>>>,
    tmp: BlobTemp,
}

/// Where a blob is written before it is published.
#[derive(Debug)]
enum BlobTemp {
    /// An `O_TMPFILE` in this directory: nothing to remove.
    Unnamed(PathBuf),
    /// A named temp file (filesystems without `O_TMPFILE`), removed unless published.
    Named(PathBuf),
}

impl BlobTemp {
    /// The new file, unnamed where the filesystem can.
    fn create(dir: &Path) -> Result<(BlobTemp, File)> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        match rustix::fs::open(dir, flags, Mode::from_raw_mode(0o644)) {
            Ok(fd) => Ok((BlobTemp::Unnamed(dir.to_path_buf()), File::from(fd))),
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL) => {
                let (p, f) = tempfile_in(dir)?;
                Ok((BlobTemp::Named(p), f))
            }
            Err(e) => Err(StoreError::io(format!("creating a temp file in {}", dir.display()), e.into())),
        }
    }

    /// For messages: the temp file, or the directory it is in.
    fn describe(&self) -> String {
        match self {
            BlobTemp::Unnamed(d) => format!("a new blob in {}", d.display()),
            BlobTemp::Named(p) => p.display().to_string(),
        }
    }

    /// Gives `file` its name as blob `dest`; false when that blob appeared meanwhile.
    fn publish(&self, file: &File, dest: &Path) -> Result<bool> {
        match self {
            BlobTemp::Named(p) => fs::rename(p, dest).at("publishing blob", dest)?,
            BlobTemp::Unnamed(_) => {
                let fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
                match rustix::fs::linkat(
                    rustix::fs::CWD,
                    fd.as_str(),
                    rustix::fs::CWD,
                    dest,
                    rustix::fs::AtFlags::SYMLINK_FOLLOW,
                ) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::EXIST) => return Ok(false),
                    Err(e) => return Err(StoreError::io(format!("publishing blob {}", dest.display()), e.into())),
                }
            }
        }
        Ok(true)
    }
}

const CHUNK: usize = 1 << 20;

impl Worker {
    fn start(store: &Store) -> Result<Worker> {
        let (tmp, file) = BlobTemp::create(&store.tmp_dir())?;
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let (back_tx, back_rx) = mpsc::sync_channel::<Vec<u8>>(8);
        let thread = std::thread::Builder::new()
            .name("blob-writer".into())
            .spawn(move || -> io::Result<(File, Hasher)> {
                let mut file = crate::stream::StreamingFile::new(file);
                let mut hasher = Hasher::new();
                for chunk in rx {
                    hasher.update(&chunk);
                    file.write_all(&chunk)?;
                    let mut c = chunk;
                    c.clear();
                    let _ = back_tx.try_send(c);
                }
                Ok((file.into_inner(), hasher))
            })
            .map_err(|e| StoreError::io("starting the blob writer", e))?;
        Ok(Worker { tx: Some(tx), recycle: back_rx, thread: Some(thread), tmp })
    }

    /// Ends the thread: its file and hash, or its error.
    fn join(&mut self) -> io::Result<(File, Hasher)> {
        drop(self.tx.take());
        match self.thread.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the blob writer thread panicked")),
            None => Err(io::Error::other("the blob writer stopped")),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.thread.take() {
            let _ = w.join();
        }
    }
}

impl BlobWriter {
    pub(super) fn new(store: &Store) -> Result<BlobWriter> {
        Ok(BlobWriter { buf: Vec::new(), sent: 0, worker: None, failed: None, store: store.clone(), committed: false })
    }

    fn describe(&self) -> String {
        match &self.worker {
            Some(w) => w.tmp.describe(),
            None => format!("a new blob in {}", self.store.tmp_dir().display()),
        }
    }

    /// The worker's error (it stopped: a full disk, an I/O error), with the file named.
    fn worker_error(&mut self) -> io::Error {
        if self.failed.is_none() {
            let e = match self.worker.as_mut() {
                Some(w) => w.join().err().unwrap_or_else(|| io::Error::other("the blob writer stopped")),
                None => io::Error::other("the blob writer stopped"),
            };
            // The kind is what callers test (StorageFull for ENOSPC); the text says where.
            let kind = e.kind();
            self.failed = Some((kind, format!("writing {}: {e}", self.describe())));
        }
        let (kind, text) = self.failed.clone().unwrap_or((io::ErrorKind::Other, String::new()));
        io::Error::new(kind, text)
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.failed.is_some() {
            return Err(self.worker_error());
        }
        if self.committed {
            return Err(io::Error::other("blob already committed"));
        }
        if self.worker.is_none() {
            self.worker = Some(Worker::start(&self.store).map_err(|e| io::Error::other(e.to_string()))?);
        }
        let Some(w) = self.worker.as_mut() else { return Err(io::Error::other("no blob writer")) };
        let next = w.recycle.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        self.sent += full.len() as u64;
        let sent = match &w.tx {
            Some(tx) => tx.send(full).is_ok(),
            None => return Err(io::Error::other("blob already committed")),
        };
        if sent {
            Ok(())
        } else {
            Err(self.worker_error())
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.sent + self.buf.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole blob's file (written by the worker) and hash.
    fn finish_file(&mut self) -> Result<(File, Hasher)> {
        let what = self.describe();
        self.send().map_err(|e| StoreError::io(format!("writing {what}"), e))?;
        if self.failed.is_some() {
            return Err(StoreError::io(format!("writing {what}"), self.worker_error()));
        }
        let w = self.worker.as_mut().ok_or_else(|| StoreError::io("blob writer", io::Error::other("not started")))?;
        w.join().map_err(|e| StoreError::io(format!("writing {what}"), e))
    }

    /// Checks digest and size (when given), fsyncs and publishes the blob.
    pub fn commit(mut self, expected: Option<Digest>, expected_size: Option<u64>) -> Result<(Digest, u64)> {
        // Small: hashed here; a file only if the blob is new.
        let (file, hasher) = if self.worker.is_none() && self.failed.is_none() {
            let mut h = Hasher::new();
            h.update(&self.buf);
            (None, h)
        } else {
            let (f, h) = self.finish_file()?;
            (Some(f), h)
        };
        let size = hasher.len;
        let d = hasher.finish();
        if let Some(want) = expected_size {
            if want != size {
                return Err(StoreError::SizeMismatch { what: "blob".into(), expected: want, actual: size });
            }
        }
        if let Some(want) = expected {
            if want != d {
                return Err(StoreError::DigestMismatch { what: "blob".into(), expected: want, actual: d });
            }
        }
        // Held before it appears, so no prune takes it before its caller refers to it.
        self.store.hold(&[d])?;
        let blobs = self.store.blobs_dir();
        let dest = blobs.join(d.hex());
        if dest.exists() {
            return Ok((d, size)); // stored once; the temp file goes on drop
        }
        let (file, tmp) = match file {
            Some(f) => {
                (f, self.worker.take().map(|mut w| std::mem::replace(&mut w.tmp, BlobTemp::Unnamed(PathBuf::new()))))
            }
            None => {
                let (tmp, mut f) = BlobTemp::create(&self.store.tmp_dir())?;
                if let Err(e) = f.write_all(&self.buf) {
                    if let BlobTemp::Named(p) = &tmp {
                        let _ = fs::remove_file(p);
                    }
                    return Err(StoreError::io(format!("writing {}", tmp.describe()), e));
                }
                (f, Some(tmp))
            }
        };
        let tmp = tmp.ok_or_else(|| StoreError::io("blob writer", io::Error::other("no temp file")))?;
        let what = tmp.describe();
        let published = file
            .sync_all()
            .map_err(|e| StoreError::io(format!("syncing {what}"), e))
            .and_then(|()| tmp.publish(&file, &dest));
        if let (BlobTemp::Named(p), Ok(false) | Err(_)) = (&tmp, &published) {
            let _ = fs::remove_file(p);
        }
        if !published? {
            return Ok((d, size)); // stored meanwhile
        }
        self.committed = true;
        sync_dir(&blobs)?;
        Ok((d, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.buf.capacity() == 0 {
                self.buf.reserve(CHUNK.min(rest.len().next_power_of_two().max(64 << 10)));
            }
            let room = CHUNK - self.buf.len();
            let k = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..k]);
            rest = &rest[k..];
            if self.buf.len() == CHUNK {
                self.send()?;
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            let tmp = match &w.tmp {
                BlobTemp::Named(p) if !self.committed => Some(p.clone()),
                _ => None,
            };
            drop(w);
            if let Some(p) = tmp {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// Stores the blob `digest` of `size` bytes read from `r` (which may say more or less:
/// both are refused, as is any other content). A blob already stored is not read.
pub fn ingest_blob(store: &Store, r: &mut dyn Read, digest: &Digest, size: u64) -> Result<()> {
    store.hold(&[*digest])?;
    if store.has_blob(digest) {
        return Ok(());
    }
    let mut limited = r.take(size.saturating_add(1));
    copy_to_blob(store, &mut limited, Some(*digest), Some(size)).map(|_| ()).map_err(|e| match e {
        StoreError::SizeMismatch { expected, actual, .. } => {
            StoreError::SizeMismatch { what: format!("blob {digest}"), expected, actual }
        }
        StoreError::DigestMismatch { expected, actual, .. } => {
            StoreError::DigestMismatch { what: format!("blob {digest}"), expected, actual }
        }
        other => other,
    })
}

/// Copies a reader into a new blob; returns digest and size.
pub fn copy_to_blob(
    store: &Store,
    r: &mut dyn Read,
    expected: Option<Digest>,
    size: Option<u64>,
) -> Result<(Digest, u64)> {
    let mut w = store.blob_writer()?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io("reading blob data", e)),
        };
        w.write_all(&buf[..n]).ctx(|| "writing blob".into())?;
    }
    w.commit(expected, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_stored_once_and_verified() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("store")).unwrap();
        let d = s.put_blob(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        assert_eq!(s.put_blob(b"hello").unwrap(), d);
        // A wrong expected digest stores nothing.
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"other").unwrap();
        assert!(matches!(w.commit(Some(d), None), Err(StoreError::DigestMismatch { .. })));
        assert!(!s.has_blob(&Digest::of(b"other")));
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0, "temp file left behind");
        // Corruption on disk is detected on read.
        fs::write(s.blob_path(&d), b"HELLO").unwrap();
        assert!(s.read_blob(&d).is_err());
    }

    #[test]
    fn big_blobs_stream() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("store")).unwrap();
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = s.blob_writer().unwrap();
        for c in data.chunks(12345) {
            w.write_all(c).unwrap();
        }
        let (d, n) = w.commit(None, Some(data.len() as u64)).unwrap();
        assert_eq!((d, n), (Digest::of(&data), data.len() as u64));
        assert_eq!(fs::read(s.blob_path(&d)).unwrap(), data);
    }

    /// A small tmpfs, unmounted (lazily) when dropped.
    struct SmallFs(PathBuf);
    impl SmallFs {
        fn mount(at: &Path, size: &str) -> SmallFs {
            fs::create_dir_all(at).unwrap();
            let data = std::ffi::CString::new(format!("size={size},mode=0700")).unwrap();
            rustix::mount::mount("tmpfs", at, "tmpfs", rustix::mount::MountFlags::empty(), data.as_c_str()).unwrap();
            SmallFs(at.to_path_buf())
        }
    }
    impl Drop for SmallFs {
        fn drop(&mut self) {
            let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
        }
    }

    /// Regression (issue 12): a full disk while a blob streamed (a RUN step's commit,
    /// `import`) said only "the blob writer stopped". It says what the disk said, with
    /// the path, and leaves nothing behind.
    #[test]
    fn a_full_disk_says_so_with_the_path() {
        if !rustix::process::geteuid().is_root() {
            return; // mounting the small filesystem needs root; the suite runs as root
        }
        let t = tempfile::tempdir().unwrap();
        let _fs = SmallFs::mount(&t.path().join("small"), "1m");
        let s = Store::open(t.path().join("small/store")).unwrap();
        let mut w = s.blob_writer().unwrap();
        let chunk = vec![7u8; 1 << 16];
        let mut err = None;
        for _ in 0..64 {
            if let Err(e) = w.write_all(&chunk) {
                err = Some(StoreError::io("writing blob", e));
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => w.commit(None, None).unwrap_err(),
        };
        let msg = err.to_string();
        assert!(msg.contains("No space left on device"), "{msg}");
        assert!(msg.contains(&s.tmp_dir().display().to_string()), "{msg}");
        assert!(err.is_no_space(), "{err:?}");
        // A layer commit (what a RUN step does) the same way.
        let tree = t.path().join("tree");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("big"), vec![1u8; 4 << 20]).unwrap();
        let err = s.commit_dir(&tree, &Default::default(), false).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("No space left on device") && msg.contains(&s.tmp_dir().display().to_string()), "{msg}");
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0, "temp files left behind");
    }
}
