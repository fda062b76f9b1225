//! The image's VOLUMEs during a RUN step.
//!
//! docker mounts a fresh volume at each VOLUME path of the image while a RUN step runs,
//! so what the step writes there never reaches its diff, and runc makes a missing
//! mountpoint (with its missing parents) as `0755` root directories in the writable layer.
//! rbuild runs the step without those mounts and then makes its upper dir what docker's
//! would be: [`settle`].

use crate::error::{BuildError, Result};
use rustix::fs::{Gid, Mode, Timespec, Timestamps, Uid, CWD};
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The overlayfs xattr that makes a directory opaque.
const OPAQUE: &str = "trusted.overlay.opaque";

/// The components of a VOLUME path (`/a/./b/` is `a`, `b`); None for `/` and for paths
/// that climb with `..` (docker cleans them away before they get here).
pub(crate) fn components(volume: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = volume.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts)
}

/// `lstat` of `base/parts…`, where every component but the last must be a real directory:
/// a symlink on the way is never followed (an upper dir's symlink may point anywhere on
/// the host).
pub(crate) fn lstat_in(base: &Path, parts: &[&str]) -> Option<Metadata> {
    let mut p = base.to_path_buf();
    let mut m = None;
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        let here = std::fs::symlink_metadata(&p).ok()?;
        if i + 1 < parts.len() && !here.is_dir() {
            return None;
        }
        m = Some(here);
    }
    m
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// What the layers below the step hold at `parts`: the topmost layer's entry, None when
/// the topmost entry is a whiteout or no layer has it.
pub(crate) fn below(lowers: &[PathBuf], parts: &[&str]) -> Option<Metadata> {
    for l in lowers {
        if let Some(m) = lstat_in(l, parts) {
            return (!is_whiteout(&m)).then_some(m);
        }
    }
    None
}

pub(crate) fn is_opaque(p: &Path) -> bool {
    let mut v = [0u8; 4];
    rustix::fs::lgetxattr(p, OPAQUE, &mut v[..]).is_ok_and(|n| &v[..n] == b"y")
}

pub(crate) fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut r| r.next().is_none())
}

fn set_mtime(p: &Path, m: &Metadata) {
    let t = Timespec { tv_sec: m.mtime(), tv_nsec: m.mtime_nsec() as _ };
    let a = Timespec { tv_sec: m.atime(), tv_nsec: m.atime_nsec() as _ };
    let _ = rustix::fs::utimensat(
        CWD,
        p,
        &Timestamps { last_access: a, last_modification: t },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    );
}

/// Is the VOLUME path `volume` missing from `lowers` (top first), so that docker's step
/// gets an empty volume there? (False for `/` and for paths through a symlink below.)
pub fn is_new(lowers: &[PathBuf], volume: &str) -> bool {
    let Some(parts) = components(volume) else { return false };
    (1..parts.len()).all(|i| below(lowers, &parts[..i]).is_none_or(|m| m.is_dir())) && below(lowers, &parts).is_none()
}

/// Makes `upper` (a RUN step's writable layer over `lowers`, top first) what docker's
/// would be with the image's `volumes` mounted during the step:
/// - a VOLUME path that exists below: what the step put there leaves the upper, and so
///   do the directories above it that overlayfs only copied up on the way there (empty
///   now, not opaque, and with the mode, owner and mtime they have below);
/// - a missing one: it is an empty `0755` root directory in the upper, made with its
///   missing parents; a parent that exists below is copied up first (mode, owner and
///   times), as overlayfs does when runc makes the mountpoint.
///
/// A path whose parents in the upper are not plain directories (the step replaced one
/// with a symlink, say) is left alone.
pub fn settle(upper: &Path, lowers: &[PathBuf], volumes: &[String]) -> Result<()> {
    for v in volumes {
        let Some(parts) = components(v) else { continue };
        let (parents, _) = parts.split_at(parts.len() - 1);
        // The parents as the upper holds them, nearest first, while they are unchanged.
        let mut chain: Vec<(PathBuf, Option<Metadata>)> = Vec::new();
        for i in (1..=parents.len()).rev() {
            chain.push((upper.join(parents[..i].join("/")), lstat_in(upper, &parents[..i])));
        }
        if chain.iter().any(|(_, m)| m.as_ref().is_some_and(|m| !m.is_dir())) {
            continue;
        }
        // Through a symlink below, the volume is mounted where the link points: not here.
        if (1..=parents.len()).any(|i| below(lowers, &parents[..i]).is_some_and(|m| !m.is_dir())) {
            continue;
        }
        let target = upper.join(parts.join("/"));
        let in_upper = lstat_in(upper, &parts);
        let Some(lower) = below(lowers, &parts) else {
            mountpoint(upper, lowers, &parts, in_upper.as_ref())?;
            continue;
        };
        if !lower.is_dir() {
            // A symlink (mounted where it points), or a file (VOLUME refuses those).
            continue;
        }
        if in_upper.is_none() {
            continue;
        }
        rbuild_store::layer::remove_tree(&target)?;
        // Climb while a parent is only a copy-up of the one below.
        for (i, (dir, seen)) in chain.iter().enumerate() {
            let Some(seen) = seen else { break };
            let ps = &parents[..parents.len() - i];
            let copy_only = below(lowers, ps).is_some_and(|b| {
                b.is_dir()
                    && (b.mode(), b.uid(), b.gid(), b.mtime(), b.mtime_nsec())
                        == (seen.mode(), seen.uid(), seen.gid(), seen.mtime(), seen.mtime_nsec())
            });
            if copy_only && is_empty_dir(dir) && !is_opaque(dir) {
                std::fs::remove_dir(dir).map_err(BuildError::io("discarding", v))?;
                continue;
            }
            // It stays: removing what it held is no change of the step's.
            set_mtime(dir, seen);
            break;
        }
    }
    Ok(())
}

/// The mountpoint runc makes for a VOLUME path no layer has: an empty 0755 root
/// directory, its missing parents too.
fn mountpoint(upper: &Path, lowers: &[PathBuf], parts: &[&str], in_upper: Option<&Metadata>) -> Result<()> {
    let target = upper.join(parts.join("/"));
    let shown = format!("/{}", parts.join("/"));
    match in_upper {
        Some(m) if m.is_dir() => {
            for e in std::fs::read_dir(&target).map_err(BuildError::io("reading", &shown))?.flatten() {
                rbuild_store::layer::remove_tree(&e.path())?;
            }
        }
        Some(_) => {
            rbuild_store::layer::remove_tree(&target)?;
        }
        None => {}
    }
    for i in 1..=parts.len() {
        let p = upper.join(parts[..i].join("/"));
        if lstat_in(upper, &parts[..i]).is_some() {
            continue;
        }
        let lower = if i < parts.len() { below(lowers, &parts[..i]).filter(|m| m.is_dir()) } else { None };
        std::fs::create_dir(&p).map_err(BuildError::io("creating the mountpoint", &shown))?;
        let (mode, uid, gid) = lower.as_ref().map_or((0o755, 0, 0), |m| (m.mode() & 0o7777, m.uid(), m.gid()));
        rustix::fs::chown(&p, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(BuildError::io("creating the mountpoint", &shown))?;
        rustix::fs::chmod(&p, Mode::from_raw_mode(mode)).map_err(BuildError::io("creating the mountpoint", &shown))?;
        if let Some(m) = &lower {
            set_mtime(&p, m);
        }
    }
    rustix::fs::chown(&target, Some(Uid::ROOT), Some(Gid::ROOT))
        .map_err(BuildError::io("creating the mountpoint", &shown))?;
    rustix::fs::chmod(&target, Mode::from_raw_mode(0o755))
        .map_err(BuildError::io("creating the mountpoint", &shown))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Every path below `root` with its kind and mode, sorted.
    fn listing(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.push(format!("{rel} {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid()));
                if m.is_dir() {
                    walk(root, &e.path(), out);
                }
            }
        }
        walk(root, root, &mut out);
        out.sort();
        out
    }

    /// What overlayfs does to a directory it copies up: made in the upper with the mode and
    /// times it has below, its parent's times kept.
    fn copy_up(lower: &Path, upper: &Path, rel: &str) {
        let m = std::fs::metadata(lower.join(rel)).unwrap();
        let parent = upper.join(rel).parent().unwrap().to_path_buf();
        let pm = std::fs::metadata(&parent).unwrap();
        std::fs::create_dir(upper.join(rel)).unwrap();
        std::fs::set_permissions(upper.join(rel), std::fs::Permissions::from_mode(m.mode() & 0o7777)).unwrap();
        set_mtime(&upper.join(rel), &m);
        set_mtime(&parent, &pm);
    }

    #[test]
    fn writes_to_an_existing_volume_leave_no_trace_in_the_upper() {
        let d = tempfile::tempdir().unwrap();
        let (lower, upper) = (d.path().join("lower"), d.path().join("upper"));
        std::fs::create_dir_all(lower.join("var/www")).unwrap();
        std::fs::create_dir_all(lower.join("srv/data")).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        // `touch /var/www/f`: overlayfs copied /var and /var/www up.
        copy_up(&lower, &upper, "var");
        copy_up(&lower, &upper, "var/www");
        std::fs::write(upper.join("var/www/f"), "x").unwrap();
        // `touch /srv/other /srv/data/f`: /srv stays, it has a change of its own.
        copy_up(&lower, &upper, "srv");
        copy_up(&lower, &upper, "srv/data");
        std::fs::write(upper.join("srv/data/f"), "x").unwrap();
        std::fs::write(upper.join("srv/other"), "x").unwrap();
        settle(&upper, std::slice::from_ref(&lower), &["/var/www".into(), "/srv/data".into()]).unwrap();
        assert_eq!(listing(&upper), ["srv 755 0:0", "srv/other 644 0:0"]);
        // Nothing else written: the step leaves an empty diff, as docker's does.
        std::fs::remove_dir_all(upper.join("srv")).unwrap();
        copy_up(&lower, &upper, "srv");
        copy_up(&lower, &upper, "srv/data");
        std::fs::write(upper.join("srv/data/g"), "x").unwrap();
        settle(&upper, std::slice::from_ref(&lower), &["/srv/data".into()]).unwrap();
        assert!(rbuild_store::layer::writes_nothing(&upper).unwrap());
    }

    #[test]
    fn a_missing_volume_is_an_empty_root_owned_mountpoint() {
        let d = tempfile::tempdir().unwrap();
        let (lower, upper) = (d.path().join("lower"), d.path().join("upper"));
        std::fs::create_dir_all(lower.join("opt")).unwrap();
        std::fs::set_permissions(lower.join("opt"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        // `RUN true` with VOLUME /data and /opt/new/vol: runc makes both mountpoints.
        settle(&upper, std::slice::from_ref(&lower), &["/data".into(), "/opt/new/vol".into()]).unwrap();
        assert_eq!(listing(&upper), ["data 755 0:0", "opt 750 0:0", "opt/new 755 0:0", "opt/new/vol 755 0:0"]);
        // What a step wrote into a new mountpoint is gone; the directory stays.
        std::fs::create_dir_all(upper.join("data/sub")).unwrap();
        std::fs::set_permissions(upper.join("data"), std::fs::Permissions::from_mode(0o700)).unwrap();
        settle(&upper, std::slice::from_ref(&lower), &["/data".into()]).unwrap();
        assert_eq!(listing(&upper)[0], "data 755 0:0");
        assert!(is_empty_dir(&upper.join("data")));
    }

    #[test]
    fn a_symlink_in_the_upper_is_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let (lower, upper, outside) = (d.path().join("lower"), d.path().join("upper"), d.path().join("outside"));
        std::fs::create_dir_all(lower.join("var/lib")).unwrap();
        std::fs::create_dir_all(outside.join("lib")).unwrap();
        std::fs::write(outside.join("lib/precious"), "keep").unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        // The step replaced /var with a link to a host path.
        std::os::unix::fs::symlink(&outside, upper.join("var")).unwrap();
        settle(&upper, std::slice::from_ref(&lower), &["/var/lib".into(), "/var/lib/new".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(outside.join("lib/precious")).unwrap(), "keep");
        assert!(!outside.join("lib/new").exists());
    }
}
