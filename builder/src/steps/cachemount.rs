//! RUN --mount=type=cache: the directories the store keeps for them (under `buildcache/`),
//! locked as `sharing=` says and made when a step that uses one runs — from the first
//! `--cache-from` cache that carries the mount's contents when there is one (so that an
//! ephemeral CI runner starts warm), else empty or with the files of `from=`.
//!
//! The build notes every cache mount its RUN steps use, run or cached, in
//! [`crate::Built::cache_mounts`], which `--cache-to` exports. A cache mount's contents
//! are never part of a cache key.

use crate::build::Ctx;
use crate::builder::Event;
use crate::context::Source;
use crate::error::{BuildError, Result};
use crate::sources::Files;
use rbuild_parser::instruction::Sharing;
use sha2::{Digest as _, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a new cache directory starts: its owner, mode and the files of `from=`/`source=`.
pub(crate) struct NewCache {
    pub(crate) owner: (u32, u32),
    pub(crate) mode: u32,
    pub(crate) init: Option<(Files, String)>,
}

/// The store's name for the cache mount `id`, which is its directory's name under
/// `buildcache/` and its name in an exported cache: the first half of the sha256 of the
/// id's length (u64, little endian) and bytes.
pub(crate) fn cache_mount_dir(id: &str) -> String {
    let mut h = Sha256::new();
    h.update((id.len() as u64).to_le_bytes());
    h.update(id.as_bytes());
    hex::encode(h.finalize())[..32].to_string()
}

impl Ctx<'_> {
    /// The store's `buildcache` area (its directory is made by the first mount made).
    fn buildcache(&self) -> PathBuf {
        let dir = rbuild_store::area::spec("buildcache").map_or_else(|| "buildcache".into(), |s| s.dir_name());
        self.store.state_dir().join(dir)
    }

    /// Notes that a step of this build uses the cache mount `id` (whether it runs or is
    /// cached), for `--cache-to`.
    pub(crate) fn note_cache_mount(&self, id: &str) {
        let name = cache_mount_dir(id);
        let dir = self.buildcache().join(&name);
        self.cache_mounts.lock().unwrap_or_else(|e| e.into_inner()).insert(name, dir);
    }

    /// The directory of the cache mount `id` for step `step`, locked as `sharing` says:
    /// `shared` takes a shared lock (any number of steps at once, none while one holds it
    /// `locked`), `locked` an exclusive one (waiting for the others), `private` the first
    /// instance no other step holds (a new one when all are busy). A new directory is
    /// restored from an imported cache, or made as `new` says; it gets `new`'s owner and
    /// mode either way.
    ///
    /// Only the mount's own directory travels with an exported cache: a private instance
    /// made because the others were busy is neither restored nor exported.
    pub(crate) fn cache_dir(
        &self,
        id: &str,
        sharing: Sharing,
        new: NewCache,
        step: usize,
    ) -> Result<(PathBuf, std::fs::File)> {
        use rustix::fs::FlockOperation as F;
        let base = self.buildcache();
        std::fs::create_dir_all(&base).map_err(BuildError::io("creating", &base))?;
        let name = cache_mount_dir(id);
        let open_lock = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(p)
                .map_err(BuildError::io("opening", p))
        };
        let (dir, lock) = match sharing {
            Sharing::Shared | Sharing::Locked => {
                let lock_path = base.join(format!("{name}.lock"));
                let lock = open_lock(&lock_path)?;
                let op = if sharing == Sharing::Shared { F::LockShared } else { F::LockExclusive };
                rustix::fs::flock(&lock, op).map_err(BuildError::io("locking", &lock_path))?;
                (base.join(&name), lock)
            }
            Sharing::Private => {
                let mut n = 0;
                loop {
                    let dir = if n == 0 { base.join(&name) } else { base.join(format!("{name}.private-{n}")) };
                    let lock = open_lock(&PathBuf::from(format!("{}.lock", dir.display())))?;
                    if rustix::fs::flock(&lock, F::NonBlockingLockExclusive).is_ok() {
                        break (dir, lock);
                    }
                    n += 1;
                }
            }
        };
        if !dir.exists() {
            let own = dir == base.join(&name);
            self.make_cache_dir(&dir, (own, &name, id), new, step)?;
        }
        Ok((dir, lock))
    }

    /// Makes the cache directory `dir` (published by rename: complete or absent); `own`
    /// says whether it is the mount `name`'s own directory, which may be restored.
    fn make_cache_dir(
        &self,
        dir: &Path,
        (own, name, id): (bool, &str, &str),
        new: NewCache,
        step: usize,
    ) -> Result<()> {
        // Unique in the machine: steps of this build may make one at the same time.
        static FRESH: AtomicUsize = AtomicUsize::new(0);
        let n = FRESH.fetch_add(1, Ordering::Relaxed);
        let fresh = self.buildcache().join(format!("{name}.new-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&fresh);
        let restored = own && self.restore_cache_mount(name, &fresh, id, step);
        let made = (|| {
            if !restored {
                std::fs::create_dir(&fresh).map_err(BuildError::io("creating", &fresh))?;
                if let Some((files, path)) = new.init {
                    self.fill_cache(&fresh, files, &path)?;
                }
            }
            let (uid, gid) = new.owner;
            rustix::fs::chown(&fresh, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)))
                .map_err(BuildError::io("chown", &fresh))?;
            std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(new.mode))
                .map_err(BuildError::io("chmod", &fresh))
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&fresh, dir) {
            // Another build made it meanwhile: use theirs.
            let _ = std::fs::remove_dir_all(&fresh);
            if !dir.is_dir() {
                return Err(BuildError::io("creating", dir)(e));
            }
        }
        Ok(())
    }

    /// Unpacks the cache mount `name` as the new directory `dest` from the first
    /// `--cache-from` cache that carries it, with a progress line for step `step`; false
    /// when none does, or it could not be had (a warning: the mount starts empty).
    fn restore_cache_mount(&self, name: &str, dest: &Path, id: &str, step: usize) -> bool {
        for c in &self.opts.cache_from {
            let restored = c.cache_mount(self.store, name).and_then(|layer| match layer {
                Some(l) => Ok(self.store.unpack_cache_mount(&l, dest).map(|_| true)?),
                None => Ok(false),
            });
            match restored {
                Ok(true) => {
                    let line = format!("restored cache mount {id} from the imported cache\n");
                    self.progress.event(Event::Output { id: step, data: line.as_bytes() });
                    return true;
                }
                Ok(false) => {}
                Err(e) => {
                    let _ = std::fs::remove_dir_all(dest);
                    let message =
                        format!("restoring cache mount {id}: {}; it starts empty", crate::error::message(&*e));
                    self.progress.event(Event::Warning { message });
                    return false;
                }
            }
        }
        false
    }

    /// Copies what `files` hold below `path` into the new cache directory `dir`.
    fn fill_cache(&self, dir: &Path, files: Files, path: &str) -> Result<()> {
        let copy = |root: &Path| -> Result<()> {
            let src = Source { root: root.to_path_buf(), ignore: None, exclude: None, parallel: false };
            let items = src.select(path)?;
            let o = crate::copy::CopyOpts { owner: None, chmod: None };
            crate::copy::copy_items(crate::copy::Root::dir(dir), &items, "/", (0, 0), &o)
        };
        match files {
            Files::Dir { root, .. } => copy(&root),
            Files::Layers { layers, .. } => {
                let lowers = self.lowers(&layers)?;
                rbuild_runtime::with_mounted(&self.store.tmp_dir(), &lowers, None, |root| copy(root))?
            }
        }
    }
}
