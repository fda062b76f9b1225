//! Removals the caller need not wait for. A tree that is already out of the way — renamed
//! to a name nothing looks up, under the store's temp dir (named with this process's pid,
//! so prune finds it should the process die first) — is removed by one background thread
//! while the caller goes on.
//!
//! Freeing an inode's blocks is the slow part of a removal on a filesystem mounted with
//! `discard`: ext4 without a journal discards them before the call returns (~0.1 ms a
//! file on this project's VMs, hundreds of ms behind writeback). A build step's upper and
//! work dirs, and the cache record a rebuild replaces, were freed on the build's critical
//! path; now the build's other core frees them.
//!
//! [`wait`] returns once everything handed over is gone: the end of a build, and
//! [`crate::lease::release_all`] as the process exits.

use crate::layer::remove_tree;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

struct Reaper {
    queue: Sender<PathBuf>,
    thread: JoinHandle<()>,
}

static REAPER: Mutex<Option<Reaper>> = Mutex::new(None);

/// Removes the tree at `path` (never following symlinks) on the background thread, or
/// here when that thread cannot be started. A tree the thread cannot remove stays for
/// prune (or its temp dir's owner) to remove.
pub fn remove_later(path: PathBuf) {
    let mut reaper = REAPER.lock().unwrap_or_else(|e| e.into_inner());
    if reaper.is_none() {
        let (queue, rx) = mpsc::channel::<PathBuf>();
        let spawned = std::thread::Builder::new().name("rbuild-reaper".into()).spawn(move || {
            for p in rx {
                let _ = remove_tree(&p);
            }
        });
        match spawned {
            Ok(thread) => *reaper = Some(Reaper { queue, thread }),
            Err(_) => {
                drop(reaper);
                let _ = remove_tree(&path);
                return;
            }
        }
    }
    if let Some(Err(mpsc::SendError(p))) = reaper.as_ref().map(|r| r.queue.send(path)) {
        drop(reaper);
        let _ = remove_tree(&p);
    }
}

/// Moves `path` into the store's temp dir `tmp` under a name of this process's
/// ([`crate::temp_name`]) and hands it to the reaper; false when it could not be moved
/// (a missing `path` included), and nothing was handed over.
pub fn move_aside(path: &Path, tmp: &Path) -> bool {
    let aside = crate::temp_name(tmp, "gone");
    let moved = std::fs::rename(path, &aside).is_ok();
    if moved {
        remove_later(aside);
    }
    moved
}

/// Waits until everything passed to [`remove_later`] so far is removed.
pub fn wait() {
    let reaper = REAPER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(Reaper { queue, thread }) = reaper {
        drop(queue);
        let _ = thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_handed_over_are_gone_after_wait() {
        let t = tempfile::tempdir().unwrap();
        let mut trees = Vec::new();
        for i in 0..5 {
            let d = t.path().join(format!("gone-{i}"));
            std::fs::create_dir_all(d.join("a/b")).unwrap();
            std::fs::write(d.join("a/b/f"), b"x").unwrap();
            std::os::unix::fs::symlink("/etc", d.join("a/link")).unwrap();
            trees.push(d);
        }
        for d in &trees {
            remove_later(d.clone());
        }
        wait();
        for d in &trees {
            assert!(!d.exists(), "{} left", d.display());
        }
        // The symlink's target is not followed.
        assert!(std::path::Path::new("/etc/passwd").exists());
        // A second round starts a new thread.
        let d = t.path().join("again");
        std::fs::create_dir(&d).unwrap();
        remove_later(d.clone());
        wait();
        assert!(!d.exists());
    }
}
