//! Mount stubs: a RUN --mount target that the image lacks is made (with its missing
//! parents) in the step's writable layer so that something can be mounted on it. BuildKit
//! removes those stubs after the step when they are still empty (its executor's
//! `MountStubsCleaner`), so a secret's, a cache's or a tmpfs's mountpoint is never part
//! of the image; rbuild does the same on the upper dir once the step is over.

use crate::volume::{below, components, is_empty_dir, is_opaque, lstat_in};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The paths a mount at `target` will create: `target` and its parents that no layer of
/// `lowers` (top first) has, deepest first. Nothing when a parent is not a directory.
pub(crate) fn missing(lowers: &[PathBuf], target: &str) -> Vec<Vec<String>> {
    let Some(parts) = components(target) else { return vec![] };
    let mut out = Vec::new();
    for n in (1..=parts.len()).rev() {
        match below(lowers, &parts[..n]) {
            None => out.push(parts[..n].iter().map(|s| s.to_string()).collect()),
            Some(_) => break,
        }
    }
    out
}

/// Removes from `upper` the stubs (from [`missing`]) that are still an empty directory or
/// an empty file, deepest first; then the directory above the topmost one, when overlayfs
/// only copied it up to make the stub (empty in the upper, not opaque, the same mode and
/// owner below) — as BuildKit restores its times, so it is not part of the diff.
pub(crate) fn remove(upper: &Path, lowers: &[PathBuf], stubs: &[Vec<String>]) {
    // Several mounts may share parents: every stub once, the deepest first.
    let mut stubs = stubs.to_vec();
    stubs.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    stubs.dedup();
    for stub in &stubs {
        let parts: Vec<&str> = stub.iter().map(String::as_str).collect();
        let Some(m) = lstat_in(upper, &parts) else { continue };
        let p = join(upper, &parts);
        let removed = if m.is_dir() {
            !is_opaque(&p) && is_empty_dir(&p) && std::fs::remove_dir(&p).is_ok()
        } else {
            m.is_file() && m.len() == 0 && std::fs::remove_file(&p).is_ok()
        };
        if !removed {
            continue;
        }
        // The parent that existed below: drop its copy-up when nothing else changed in it.
        let mut parent = parts.clone();
        while parent.len() > 1 {
            parent.pop();
            if stubs.iter().any(|s| s.len() == parent.len() && s.iter().zip(&parent).all(|(a, b)| a == b)) {
                break; // a stub itself, handled in its turn
            }
            let (Some(up), Some(low)) = (lstat_in(upper, &parent), below(lowers, &parent)) else { break };
            let pp = join(upper, &parent);
            let same = up.is_dir()
                && low.is_dir()
                && up.mode() == low.mode()
                && up.uid() == low.uid()
                && up.gid() == low.gid();
            if !(same && !is_opaque(&pp) && is_empty_dir(&pp) && std::fs::remove_dir(&pp).is_ok()) {
                break;
            }
        }
    }
}

fn join(base: &Path, parts: &[&str]) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in parts {
        p.push(c);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mount's stub and the parents it needed leave the upper; a parent that existed
    /// below and was only copied up goes too; anything the step wrote stays.
    #[test]
    fn stubs_leave_the_upper() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        std::fs::create_dir_all(lower.join("var")).unwrap();
        std::fs::create_dir_all(upper.join("var/cache/x")).unwrap();
        std::fs::create_dir_all(upper.join("run/secrets")).unwrap();
        std::fs::write(upper.join("run/secrets/tok"), "").unwrap();
        std::fs::create_dir_all(upper.join("keep")).unwrap();
        std::fs::write(upper.join("keep/data"), "written").unwrap();
        let lowers = vec![lower.clone()];
        let perm = |p: &Path| std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        perm(&lower.join("var")).unwrap();
        perm(&upper.join("var")).unwrap();
        let mut stubs = missing(&lowers, "/var/cache/x");
        assert_eq!(stubs, vec![vec!["var", "cache", "x"], vec!["var", "cache"]]);
        stubs.extend(missing(&lowers, "/run/secrets/tok"));
        stubs.extend(missing(&lowers, "/keep/data"));
        remove(&upper, &lowers, &stubs);
        assert!(!upper.join("var").exists() && !upper.join("run").exists());
        assert_eq!(std::fs::read_to_string(upper.join("keep/data")).unwrap(), "written");
    }
}
