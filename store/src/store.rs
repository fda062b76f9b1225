//! The store root: opening it, reading blobs, locks, temp files and dirs; securing and
//! laying out the root is in `store/root.rs`, writing blobs in `store/blob_writer.rs`.
//! The layout of everything under the root is documented in the crate's `lib.rs`.

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::lease::Held;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod blob_writer;
mod root;

pub use blob_writer::{copy_to_blob, ingest_blob, BlobWriter};
use root::{init, secure_root, spread_subdirs};

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
    kind: Guard,
}

enum Guard {
    /// A lock of its own descriptor, which closing releases.
    File(#[allow(dead_code)] File),
    /// One holder of this process's shared gc lock.
    SharedGc(Arc<Held>),
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Guard::SharedGc(h) = &self.kind {
            h.unlock_gc_shared();
        }
    }
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
        Ok(LockGuard { kind: Guard::File(f) })
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
        self.held.lock_gc_shared(&self.state_dir().join("gc.lock"))?;
        Ok(LockGuard { kind: Guard::SharedGc(self.held.clone()) })
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
        let tmp = self.tmp_dir();
        for _ in 0..100 {
            let p = temp_name(&tmp, prefix);
            match fs::create_dir(&p) {
                Ok(()) => return Ok(p),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StoreError::io(format!("creating {}", p.display()), e)),
            }
        }
        Err(StoreError::io("creating a temp dir", io::ErrorKind::AlreadyExists.into()))
    }
}

/// A new name in a store's temp dir `tmp` ([`Store::tmp_dir`]), `<prefix>-<pid>-<random>`
/// as [`Store::temp_dir`] names its entries, for a process that has the dir but not the
/// store open (a container's shim moving a `--rm` container's directory there).
pub fn temp_name(tmp: &Path, prefix: &str) -> PathBuf {
    debug_assert!(!prefix.contains('-'), "the pid is the second field of a temp name");
    tmp.join(format!("{prefix}-{}-{}", std::process::id(), rand_suffix()))
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
