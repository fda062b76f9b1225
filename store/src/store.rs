//! The store root: opening (and securing) it, blobs, locks, temp files and dirs. The
//! layout of everything under the root is documented in the crate's `lib.rs`.

use crate::digest::{Digest, Hasher};
use crate::error::{IoContext, Result, StoreError};
use crate::lease::Held;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// rbuild's on-disk layout version.
pub const LAYOUT_VERSION: &str = "1";

/// The default store root: `/var/lib/rbuild` as root, else `$XDG_DATA_HOME/rbuild`.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/rbuild");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x).join("rbuild"),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
            home.join(".local/share/rbuild")
        }
    }
}

/// An open store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// This process's hold on the store (see [`crate::lease`]).
    held: Arc<Held>,
}

/// A held flock; released on drop.
pub struct LockGuard {
    _file: File,
}

fn write_file_atomic(dir_for_tmp: &Path, path: &Path, data: &[u8]) -> Result<()> {
    write_file_replacing(dir_for_tmp, path, data, true)
}

/// Replaces `path` with `data` in one rename; `durable` also waits for the disk, before
/// and after.
/// The temp file is made in `dir_for_tmp` (the store's tmp area) and removed on failure.
pub(crate) fn write_file_replacing(dir_for_tmp: &Path, path: &Path, data: &[u8], durable: bool) -> Result<()> {
    use crate::atomic::{AtomicWriter, Durability};
    let mut w = AtomicWriter::create_in(dir_for_tmp, path)
        .map_err(|e| StoreError::io(format!("creating a temp file in {}", dir_for_tmp.display()), e))?;
    w.write_all(data).at("writing", path)?;
    w.commit(if durable { Durability::Durable } else { Durability::Atomic }).at("publishing", path)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at("syncing directory", dir)
}

/// A new uniquely named file in `dir`.
pub(crate) fn tempfile_in(dir: &Path) -> Result<(PathBuf, File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    for _ in 0..100 {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("tmp-{}-{}-{n}", std::process::id(), rand_suffix());
        let p = dir.join(name);
        match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(StoreError::io(format!("creating a temp file in {}", dir.display()), e)),
        }
    }
    Err(StoreError::io("creating a temp file", io::ErrorKind::AlreadyExists.into()))
}

pub(crate) fn rand_suffix() -> String {
    let mut b = [0u8; 6];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    hex::encode(b)
}

/// Makes sure nobody but its owner can reach into the store at `root` (creating it when
/// missing): snapshots and containers' upper dirs hold what images and containers put
/// there — setuid binaries, device nodes — which anyone who can reach them could run or
/// open on the host (the CVE-2021-41091 class). The root is the one gate: 0700, owned by
/// the user running rbuild. A directory given as the root is tightened to 0700 whatever
/// it holds, as dockerd sets the mode of an existing data root (0711 there) — a harness
/// may well put a marker file in it first; one of another user is refused.
fn secure_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).at("creating", parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::io(format!("creating {}", root.display()), e)),
    }
    let bad = |reason: String| StoreError::BadStore { path: root.to_path_buf(), reason };
    let meta = fs::metadata(root).at("reading", root)?;
    if !meta.is_dir() {
        return Err(bad("not a directory".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(bad(format!(
            "owned by uid {}, not by the user running rbuild (uid {me}): its files could be swapped under rbuild",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 == 0 {
        return Ok(());
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o700)).at("making private", root)
}

/// On ext4 without a journal, asks ext4 to place each new directory made in `dir` in a
/// block group of its own, by its Orlov allocator (`chattr +T`), as it places top-level
/// directories. Build steps make and remove a dozen inodes each under `tmp/`, and ext4
/// without a journal allocates a new inode only after checking every inode of the group
/// deleted in the last 30 s (`recently_deleted`): with all of them in one group that
/// check was a third of a 50-step build's CPU time on this VM, 4% with the flag. With a
/// journal there is no such check, and Orlov's search of every group (0.1-20 ms for a
/// mkdir on a 250 GB filesystem) would be all cost: the flag is left alone there.
fn spread_subdirs(dir: &Path) {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
    if !ext4_without_journal(dir) {
        return;
    }
    let Ok(d) = File::open(dir) else { return };
    if let Ok(f) = ioctl_getflags(&d) {
        if !f.contains(IFlags::TOPDIR) {
            let _ = ioctl_setflags(&d, f | IFlags::TOPDIR);
        }
    }
}

/// Is `dir` on an ext4 filesystem without a journal? (Its device's
/// `/sys/fs/ext4/DEV/journal_task` says `<none>`.)
fn ext4_without_journal(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    const EXT4_SUPER_MAGIC: u64 = 0xEF53;
    let Ok(st) = rustix::fs::statfs(dir) else { return false };
    if st.f_type as u64 != EXT4_SUPER_MAGIC {
        return false;
    }
    let Ok(m) = fs::metadata(dir) else { return false };
    let (major, minor) = (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev()));
    let Ok(dev) = fs::read_link(format!("/sys/dev/block/{major}:{minor}")) else { return false };
    let Some(name) = dev.file_name() else { return false };
    let task = Path::new("/sys/fs/ext4").join(name).join("journal_task");
    fs::read_to_string(task).is_ok_and(|t| t.trim() == "<none>")
}

/// Creates the layout of a new store at `root`.
fn init(root: &Path) -> Result<()> {
    let state = root.join("rbuild");
    let tmp = state.join("tmp");
    for d in [
        root.join("blobs/sha256"),
        tmp.clone(),
        state.join("snapshots"),
        state.join("cache"),
        state.join("containers"),
        state.join("volumes"),
    ] {
        fs::create_dir_all(&d).at("creating", &d)?;
    }
    let layout = root.join("oci-layout");
    if !layout.exists() {
        write_file_atomic(&tmp, &layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    let index = root.join("index.json");
    if !index.exists() {
        write_file_atomic(
            &tmp,
            &index,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        )?;
    }
    write_file_atomic(&tmp, &state.join("VERSION"), LAYOUT_VERSION.as_bytes())
}

impl Store {
    /// Opens the store at `root`, creating the layout when it does not exist yet. Its root
    /// is made private to its owner (see [`secure_root`]).
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        if root.to_string_lossy().contains(':') {
            // `oci:PATH:NAME` references split at the first colon.
            return Err(StoreError::BadStore { path: root, reason: "the store path must not contain ':'".into() });
        }
        secure_root(&root)?;
        let state = root.join("rbuild");
        let version = state.join("VERSION");
        match fs::read_to_string(&version) {
            Ok(v) if v.trim() == LAYOUT_VERSION => {}
            Ok(v) => {
                return Err(StoreError::BadStore {
                    path: root.clone(),
                    reason: format!(
                        "layout version {} is not supported (this rbuild reads version {LAYOUT_VERSION})",
                        v.trim()
                    ),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => init(&root)?,
            Err(e) => return Err(StoreError::io(format!("reading {}", version.display()), e)),
        }
        spread_subdirs(&state.join("tmp"));
        let held = crate::lease::hold(&root, &state)?;
        let s = Store { root, held };
        s.drop_unsynced_snapshots()?;
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub(crate) fn held(&self) -> &Held {
        &self.held
    }
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("rbuild")
    }
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.state_dir().join("tmp")
    }
    pub fn snapshots_dir(&self) -> PathBuf {
        self.state_dir().join("snapshots")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.state_dir().join("cache")
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.state_dir().join("containers")
    }
    pub fn volumes_dir(&self) -> PathBuf {
        self.state_dir().join("volumes")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).exists()
    }

    /// Size of a stored blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64> {
        let p = self.blob_path(d);
        fs::metadata(&p).map(|m| m.len()).map_err(|e| blob_err(d, &p, e))
    }

    /// A small blob (config, manifest), verified against its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let data = fs::read(&p).map_err(|e| blob_err(d, &p, e))?;
        let actual = Digest::of(&data);
        if actual != *d {
            return Err(StoreError::DigestMismatch {
                what: format!("stored blob {}", p.display()),
                expected: *d,
                actual,
            });
        }
        Ok(data)
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| blob_err(d, &p, e))
    }

    /// Stores `data` (once) and returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        if self.has_blob(&d) {
            self.hold(&[d])?;
            if self.has_blob(&d) {
                return Ok(d);
            }
        }
        let mut w = self.blob_writer()?;
        w.write_all(data).ctx(|| "writing blob".into())?;
        w.commit(Some(d), Some(data.len() as u64)).map(|(d, _)| d)
    }

    /// A writer for a new blob; nothing is stored until `commit`.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(self)
    }

    fn lock(&self, name: &str, exclusive: bool) -> Result<LockGuard> {
        let p = self.state_dir().join(name);
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&p)
            .at("opening lock", &p)?;
        if exclusive {
            f.lock().at("locking", &p)?;
        } else {
            f.lock_shared().at("locking", &p)?;
        }
        Ok(LockGuard { _file: f })
    }

    /// Shared lock for reading index.json consistently.
    pub fn lock_read(&self) -> Result<LockGuard> {
        self.lock("lock", false)
    }

    /// Exclusive lock for changing index.json and other shared state.
    pub fn lock_write(&self) -> Result<LockGuard> {
        self.lock("lock", true)
    }

    /// Held (shared) by every process that writes blobs it has not referenced yet, so a
    /// concurrent prune cannot collect them.
    pub fn gc_guard(&self) -> Result<LockGuard> {
        self.lock("gc.lock", false)
    }

    /// Held (exclusive) by prune.
    pub(crate) fn gc_exclusive(&self) -> Result<LockGuard> {
        self.lock("gc.lock", true)
    }

    /// Writes `data` to `path` (inside the store) atomically.
    pub fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        write_file_atomic(&self.tmp_dir(), path, data)
    }

    /// Replaces `path` (inside the store) in one rename; only `durable` waits for the disk.
    pub(crate) fn write_replacing(&self, path: &Path, data: &[u8], durable: bool) -> Result<()> {
        write_file_replacing(&self.tmp_dir(), path, data, durable)
    }

    /// A fresh empty directory under the store's temp dir, `<prefix>-<pid>-<random>`:
    /// prune leaves it while this process runs (see [`crate::lease`]). Everything made in
    /// the temp dir is named this way.
    pub fn temp_dir(&self, prefix: &str) -> Result<PathBuf> {
        debug_assert!(!prefix.contains('-'), "the pid is the second field of a temp name");
        for _ in 0..100 {
            let p = self.tmp_dir().join(format!("{prefix}-{}-{}", std::process::id(), rand_suffix()));
            match fs::create_dir(&p) {
                Ok(()) => return Ok(p),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(format!("creating {}", p.display()), e)),
            }
        }
        Err(StoreError::io("creating a temp dir", io::ErrorKind::AlreadyExists.into()))
    }
}

/// A directory under the store's tmp dir, removed with everything in it when dropped
/// (also on errors and panics) unless [`TempDir::release`]d.
#[derive(Debug)]
pub struct TempDir(Option<PathBuf>);

impl TempDir {
    /// Takes charge of `path` (a directory made by [`Store::temp_dir`]).
    pub fn adopt(path: PathBuf) -> TempDir {
        TempDir(Some(path))
    }

    pub fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Keeps the directory: the caller moves or removes it.
    pub fn release(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = crate::layer::remove_tree(&p);
        }
    }
}

impl Store {
    /// [`Store::temp_dir`] as a guard that removes it.
    pub fn temp_guard(&self, prefix: &str) -> Result<TempDir> {
        Ok(TempDir(Some(self.temp_dir(prefix)?)))
    }
}

fn blob_err(d: &Digest, p: &Path, e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::NotFound {
        StoreError::BadImage(format!("blob {d} is missing from the store"))
    } else {
        StoreError::io(format!("reading blob {}", p.display()), e)
    }
}

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
    fn new(store: &Store) -> Result<BlobWriter> {
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

    /// The root is private to its owner (issue 12, 5): made 0700, tightened when an
    /// existing store or directory is looser (as dockerd sets its data root's mode; a
    /// benchmark harness puts a marker file in the root before rbuild sees it), refused
    /// when another user owns it.
    #[test]
    fn the_root_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("new/store");
        Store::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        Store::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700, "an existing store is tightened");
        let empty = t.path().join("empty");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o1777)).unwrap();
        Store::open(&empty).unwrap();
        assert_eq!(mode(&empty), 0o700);
        let busy = t.path().join("busy");
        fs::create_dir(&busy).unwrap();
        fs::write(busy.join("notes.txt"), "mine").unwrap();
        fs::set_permissions(&busy, fs::Permissions::from_mode(0o755)).unwrap();
        Store::open(&busy).unwrap();
        assert_eq!(mode(&busy), 0o700, "a directory given as the root is tightened");
        assert_eq!(fs::read_to_string(busy.join("notes.txt")).unwrap(), "mine", "what it held stays");
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
            let e = Store::open(&root).unwrap_err().to_string();
            assert!(e.contains("owned by uid 65534"), "{e}");
        }
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

    #[test]
    fn only_ext4_without_a_journal_is_asked_to_spread_directories() {
        assert!(!ext4_without_journal(Path::new("/proc")));
        assert!(!ext4_without_journal(Path::new("/nonexistent")));
        // A store on tmpfs opens, and its tmp/ is left as it is.
        let t = tempfile::tempdir_in("/dev/shm").unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        assert!(s.tmp_dir().is_dir());
    }

    #[test]
    fn refuses_foreign_versions_and_colons() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("s");
        Store::open(&root).unwrap();
        fs::write(root.join("rbuild/VERSION"), "99").unwrap();
        assert!(Store::open(&root).is_err());
        assert!(Store::open(t.path().join("a:b")).is_err());
    }
}
