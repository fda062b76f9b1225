//! What running processes hold in the store, so that `prune` leaves it alone.
//!
//! Every process that opens a store holds `ROOT/rbuild/procs/<pid>` under a shared flock
//! for as long as it runs, and appends to that file the digest of every blob it makes or
//! looks up to use (layers it committed, cache records and images it found). `prune`
//! treats a process whose file it cannot lock exclusively as alive: what that process
//! listed stays, and so do its entries in the temp dir, whose names carry the pid of
//! the process that made them (`<prefix>-<pid>-…`). Files of dead processes are removed.
//!
//! A build thus keeps its step dirs, its mounts and the layers it made or found in the
//! cache while it runs, however long, and prune still collects everything else at once
//! (it does not wait for builds). Appends happen under the gc lock held shared, and prune
//! holds it exclusively while it decides, so a digest is either listed before prune
//! looks, or added after it finished (when the blob, if prune took it, is found missing
//! and made again by the caller).

use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::store::Store;
use rustix::fs::FlockOperation;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// This process's hold on one store.
#[derive(Debug)]
pub(crate) struct Held {
    path: PathBuf,
    state: Mutex<HeldState>,
    gc: Mutex<SharedGc>,
}

/// The gc lock as this process holds it shared: one descriptor, flocked while any guard
/// of any thread lives (shared locks of one process are one lock to everybody else).
/// Opening `gc.lock` afresh for every guard was a path lookup, an open and a close per
/// cached build step.
#[derive(Debug, Default)]
struct SharedGc {
    file: Option<File>,
    holders: usize,
}

#[derive(Debug)]
struct HeldState {
    file: File,
    listed: HashSet<Digest>,
    /// Listed digests this process then found stored: held, they stay (prune keeps them).
    stored: HashSet<Digest>,
}

/// The holds of this process, one per store (by the root's device and inode).
type Registry = Mutex<HashMap<(u64, u64), Arc<Held>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Default::default)
}

pub(crate) fn procs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("procs")
}

/// This process's hold on the store at `root` (whose state dir is `state_dir`), taken
/// the first time the process opens it.
pub(crate) fn hold(root: &Path, state_dir: &Path) -> Result<Arc<Held>> {
    let m = fs::metadata(root).at("reading", root)?;
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = reg.get(&(m.dev(), m.ino())) {
        return Ok(h.clone());
    }
    let dir = procs_dir(state_dir);
    fs::create_dir_all(&dir).at("creating", &dir)?;
    let path = dir.join(std::process::id().to_string());
    let file = loop {
        let f = fs::OpenOptions::new().create(true).append(true).open(&path).at("opening", &path)?;
        // Blocks only while a prune that took this file for a dead process's removes it.
        rustix::fs::flock(&f, FlockOperation::LockShared).at("locking", &path)?;
        let m = f.metadata().at("reading", &path)?;
        if m.nlink() == 0 {
            continue;
        }
        if m.len() == 0 {
            break f;
        }
        // What a dead process of the same pid listed is not ours: its file goes (under
        // our lock, so no prune is deciding about it) and a new one is made. Not cleared
        // in place: ext4 writes back a file truncated to zero when it is closed, and
        // this process's exit then waited for the disk (0.5 to 48 ms of a no-op build
        // behind other writers).
        fs::remove_file(&path).at("removing", &path)?;
    };
    let h = Arc::new(Held {
        path,
        state: Mutex::new(HeldState { file, listed: HashSet::new(), stored: HashSet::new() }),
        gc: Mutex::new(SharedGc::default()),
    });
    reg.insert((m.dev(), m.ino()), h.clone());
    Ok(h)
}

impl Held {
    /// Takes the gc lock `path` shared for one more holder (blocks while a prune has it).
    pub(crate) fn lock_gc_shared(&self, path: &Path) -> Result<()> {
        let mut gc = self.gc.lock().unwrap_or_else(|e| e.into_inner());
        if gc.holders == 0 {
            let f = match gc.file.take() {
                Some(f) => f,
                None => fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(path)
                    .at("opening lock", path)?,
            };
            let locked = rustix::fs::flock(&f, FlockOperation::LockShared).at("locking", path);
            gc.file = Some(f);
            locked?;
        }
        gc.holders += 1;
        Ok(())
    }

    /// One holder fewer; the last one unlocks.
    pub(crate) fn unlock_gc_shared(&self) {
        let mut gc = self.gc.lock().unwrap_or_else(|e| e.into_inner());
        gc.holders = gc.holders.saturating_sub(1);
        if gc.holders == 0 {
            if let Some(f) = &gc.file {
                let _ = rustix::fs::flock(f, FlockOperation::Unlock);
            }
        }
    }
}

/// Gives up this process's holds, for a process about to exit: its files go now rather
/// than at the next prune. Nothing may use a store of this process after.
pub fn release_all() {
    // What this process handed to the reaper is under its lease until gone.
    crate::reaper::wait();
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    for (_, h) in reg.drain() {
        // Removed while still locked: a prune that meets the name meanwhile waits.
        let _ = fs::remove_file(&h.path);
    }
}

impl Store {
    /// Keeps `digests` (and their snapshots) from `prune` while this process runs. The
    /// caller checks afterwards that what it needs is still there: a prune that ran just
    /// before may have taken it.
    pub fn hold(&self, digests: &[Digest]) -> Result<()> {
        let held = self.held();
        let mut st = held.state.lock().unwrap_or_else(|e| e.into_inner());
        let new: Vec<Digest> = digests.iter().copied().filter(|d| !st.listed.contains(d)).collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut text = String::with_capacity(new.len() * 72);
        for d in &new {
            text.push_str(&format!("{d}\n"));
        }
        let _gc = self.gc_guard()?;
        st.file.write_all(text.as_bytes()).at("writing", &held.path)?;
        st.listed.extend(new);
        Ok(())
    }

    /// Holds `digests`, then tells whether all of them are stored. `known` digests this
    /// process already found stored after holding them are not looked at again (a no-op
    /// build checked every layer twice: at its cache hit and when writing the image).
    pub(crate) fn hold_stored(&self, digests: &[Digest], known: bool) -> Result<bool> {
        self.hold(digests)?;
        let held = self.held();
        let look: Vec<Digest> = {
            let st = held.state.lock().unwrap_or_else(|e| e.into_inner());
            digests.iter().copied().filter(|d| !(known && st.stored.contains(d))).collect()
        };
        let mut all = true;
        let mut st_found = Vec::with_capacity(look.len());
        for d in look {
            let there = self.has_blob(&d);
            all &= there;
            st_found.push((d, there));
        }
        let mut st = held.state.lock().unwrap_or_else(|e| e.into_inner());
        for (d, there) in st_found {
            if there {
                st.stored.insert(d);
            } else {
                st.stored.remove(&d);
            }
        }
        Ok(all)
    }
}

/// The processes prune met, by pid: alive or not. The locks of dead ones' files are kept
/// until prune ends, so no new process of the same pid can take such a file meanwhile;
/// then the files are removed.
#[derive(Default)]
pub(crate) struct Processes {
    dir: PathBuf,
    known: HashMap<u32, bool>,
    dead: Vec<(PathBuf, File)>,
}

impl Processes {
    pub(crate) fn new(state_dir: &Path) -> Processes {
        Processes { dir: procs_dir(state_dir), ..Default::default() }
    }

    /// Is the process `pid` one that holds the store now?
    pub(crate) fn alive(&mut self, pid: u32) -> bool {
        if let Some(a) = self.known.get(&pid) {
            return *a;
        }
        let path = self.dir.join(pid.to_string());
        let alive = match File::open(&path) {
            Err(_) => false,
            Ok(f) => match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    self.dead.push((path, f));
                    false
                }
                Err(_) => true,
            },
        };
        self.known.insert(pid, alive);
        alive
    }

    /// What every live process holds; every process file is looked at.
    pub(crate) fn held_digests(&mut self) -> Result<HashSet<Digest>> {
        let mut out = HashSet::new();
        let Ok(rd) = fs::read_dir(&self.dir) else { return Ok(out) };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if self.alive(pid) {
                let text = fs::read_to_string(e.path()).unwrap_or_default();
                out.extend(text.lines().filter_map(|l| l.parse::<Digest>().ok()));
            }
        }
        Ok(out)
    }

    /// Removes the files of the dead processes met.
    pub(crate) fn remove_dead(self) -> Result<()> {
        for (path, _lock) in self.dead {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(format!("removing {}", path.display()), e)),
            }
        }
        Ok(())
    }
}

/// The pid in a temp entry's name (`<prefix>-<pid>-…`), if it has one.
pub(crate) fn pid_of_temp(name: &str) -> Option<u32> {
    name.split('-').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_their_pid() {
        assert_eq!(pid_of_temp("tmp-123-abcdef-4"), Some(123));
        assert_eq!(pid_of_temp("step-77-0011aa"), Some(77));
        assert_eq!(pid_of_temp("mnt-9-ff"), Some(9));
        assert_eq!(pid_of_temp("leftover"), None);
        assert_eq!(pid_of_temp("x-y-z"), None);
    }

    #[test]
    fn the_shared_gc_lock_is_held_while_any_guard_lives() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let lock = store.state_dir().join("gc.lock");
        // What a prune in another process would get: an exclusive lock of its own.
        let prune_could_run = || {
            let f = File::options().read(true).write(true).open(&lock).unwrap();
            rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive).is_ok()
        };
        let a = store.gc_guard().unwrap();
        let b = Store::open(t.path().join("s")).unwrap().gc_guard().unwrap();
        assert!(!prune_could_run());
        drop(a);
        assert!(!prune_could_run(), "one guard's end released the other's lock");
        drop(b);
        assert!(prune_could_run());
        let c = store.gc_guard().unwrap();
        assert!(!prune_could_run(), "the lock is taken again");
        drop(c);
    }

    #[test]
    fn only_known_stored_digests_skip_the_look() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let (a, b) = (store.put_blob(b"a layer").unwrap(), store.put_blob(b"b layer").unwrap());
        assert!(store.hold_stored(&[a, b], false).unwrap());
        std::fs::remove_file(store.blob_path(&a)).unwrap();
        std::fs::remove_file(store.blob_path(&b)).unwrap();
        // Writing the image trusts what this process found (held, prune keeps it) ...
        assert!(store.hold_stored(&[a], true).unwrap());
        // ... a cache hit looks again (a record whose blob went is a miss), and what it
        // found gone is not trusted after.
        assert!(!store.hold_stored(&[b], false).unwrap());
        assert!(!store.hold_stored(&[b], true).unwrap());
        let never = Digest::of(b"never stored");
        assert!(!store.hold_stored(&[never], true).unwrap());
    }

    #[test]
    fn a_dead_namesakes_list_is_not_held() {
        let t = tempfile::tempdir().unwrap();
        let (root, state) = (t.path().join("r"), t.path().join("r/rbuild"));
        let path = procs_dir(&state).join(std::process::id().to_string());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("{}\n", Digest::of(b"listed by a dead process"))).unwrap();
        // Kept open so that its inode number cannot be given to the new file.
        let old = File::open(&path).unwrap();
        let held = hold(&root, &state).unwrap();
        let new = fs::metadata(&path).unwrap();
        assert_eq!(new.len(), 0);
        assert_ne!(new.ino(), old.metadata().unwrap().ino(), "the old file was cleared in place");
        // What this process lists goes to the new file.
        let mine = Digest::of(b"mine");
        let mut st = held.state.lock().unwrap();
        st.file.write_all(format!("{mine}\n").as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{mine}\n"));
    }
}
