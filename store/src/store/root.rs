//! A store's root on disk: made private to its owner, given the layout when new, and its
//! tmp/ spread over ext4's block groups where that helps.

use super::{write_file_atomic, LAYOUT_VERSION};
use crate::error::{IoContext, Result, StoreError};
use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Makes sure nobody but its owner can reach into the store at `root` (creating it when
/// missing): snapshots and containers' upper dirs hold what images and containers put
/// there — setuid binaries, device nodes — which anyone who can reach them could run or
/// open on the host (the CVE-2021-41091 class). The root is the one gate: 0700, owned by
/// the user running rbuild. A directory given as the root is tightened to 0700 whatever
/// it holds, as dockerd sets the mode of an existing data root (0711 there) — a harness
/// may well put a marker file in it first; one of another user is refused.
pub(super) fn secure_root(root: &Path) -> Result<()> {
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
pub(super) fn spread_subdirs(dir: &Path) {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags};
    // The flag first: once set (every open but the first), the filesystem is not
    // looked at again (a statfs and three sysfs calls at every rbuild start).
    let Ok(d) = File::open(dir) else { return };
    let Ok(f) = ioctl_getflags(&d) else { return };
    if f.contains(IFlags::TOPDIR) || !ext4_without_journal(dir) {
        return;
    }
    let _ = ioctl_setflags(&d, f | IFlags::TOPDIR);
}

/// Is `dir` on an ext4 filesystem without a journal? (Its device's
/// `/sys/fs/ext4/DEV/journal_task` says `<none>`.)
pub(super) fn ext4_without_journal(dir: &Path) -> bool {
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
pub(super) fn init(root: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

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
