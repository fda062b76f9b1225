//! Helpers for the store's integration tests: tree snapshots for comparison, overlay
//! mounts that always unmount.
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests create devices, chown files and mount overlays: run them as root"
    );
}

/// Everything a layer must preserve about one path (not mtimes of directories, which
/// overlay copy-up changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub sha: String,
    pub link: String,
    pub rdev: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Other paths that are the same inode.
    pub hardlinks: Vec<String>,
}

fn xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(p, &mut buf[..]) else { return vec![] };
    let mut out = Vec::new();
    for name in buf[..n].split(|c| *c == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(name).to_string();
        if name.starts_with("trusted.overlay.") || name == "security.selinux" {
            continue;
        }
        let mut v = vec![0u8; 4096];
        if let Ok(k) = rustix::fs::lgetxattr(p, name.as_str(), &mut v[..]) {
            v.truncate(k);
            out.push((name, v));
        }
    }
    out.sort();
    out
}

/// A comparable picture of the tree under `root`.
pub fn capture(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        for name in names {
            let r = rel.join(&name);
            let p = root.join(&r);
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let key = String::from_utf8_lossy(r.as_os_str().as_bytes()).to_string();
            let (kind, sha, link) = if ft.is_dir() {
                stack.push(r.clone());
                ("dir", String::new(), String::new())
            } else if ft.is_symlink() {
                (
                    "symlink",
                    String::new(),
                    String::from_utf8_lossy(std::fs::read_link(&p).unwrap().as_os_str().as_bytes()).to_string(),
                )
            } else if ft.is_file() {
                ("file", hex::encode(Sha256::digest(std::fs::read(&p).unwrap())), String::new())
            } else if ft.is_fifo() {
                ("fifo", String::new(), String::new())
            } else if ft.is_char_device() {
                ("char", String::new(), String::new())
            } else if ft.is_block_device() {
                ("block", String::new(), String::new())
            } else {
                ("other", String::new(), String::new())
            };
            if !ft.is_dir() && m.nlink() > 1 {
                inodes.entry((m.dev(), m.ino())).or_default().push(key.clone());
            }
            out.insert(
                key,
                Node {
                    kind,
                    mode: m.permissions().mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    size: if ft.is_file() { m.len() } else { 0 },
                    sha,
                    link,
                    rdev: if ft.is_char_device() || ft.is_block_device() { m.rdev() } else { 0 },
                    xattrs: xattrs(&p),
                    hardlinks: vec![],
                },
            );
        }
    }
    for group in inodes.values() {
        for p in group {
            let mut others: Vec<String> = group.iter().filter(|o| *o != p).cloned().collect();
            others.sort();
            out.get_mut(p).unwrap().hardlinks = others;
        }
    }
    // Symlink modes are always 0777; dropped for comparison.
    for n in out.values_mut() {
        if n.kind == "symlink" {
            n.mode = 0;
        }
    }
    out
}

/// An overlay mount that is unmounted when dropped, even when a test fails.
pub struct Overlay {
    pub merged: PathBuf,
}

impl Overlay {
    pub fn mount(lowers: &[&Path], upper: Option<(&Path, &Path)>, merged: &Path) -> Overlay {
        let mut opts =
            format!("lowerdir={}", lowers.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(":"));
        if let Some((u, w)) = upper {
            opts.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
        }
        opts.push_str(",redirect_dir=off,metacopy=off,index=off");
        rustix::mount::mount(
            "overlay",
            merged,
            "overlay",
            rustix::mount::MountFlags::empty(),
            Some(std::ffi::CString::new(opts.clone()).unwrap().as_c_str()),
        )
        .unwrap_or_else(|e| panic!("mounting overlay ({opts}): {e}"));
        Overlay { merged: merged.to_path_buf() }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::DETACH);
    }
}
