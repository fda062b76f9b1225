//! Volumes: named ones kept in the store (`volumes/NAME/_data`), anonymous ones for the
//! image's VOLUMEs and `-v /path`, both filled from the image on first use as docker does.

use crate::error::{Result, RuntimeError, Step};
use crate::rootfs;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::path::{Path, PathBuf};

/// A parsed `-v` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSpec {
    /// `-v /host:/ctr[:ro]`
    Bind { source: PathBuf, target: String, readonly: bool },
    /// `-v name:/ctr[:ro]`
    Named { name: String, target: String, readonly: bool },
    /// `-v /ctr`
    Anonymous { target: String },
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub fn parse(spec: &str) -> Result<VolumeSpec> {
    let bad = |why: &str| RuntimeError::Invalid(format!("invalid volume specification {spec:?}: {why}"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => {
            return if d.starts_with('/') {
                Ok(VolumeSpec::Anonymous { target: d.to_string() })
            } else {
                Err(bad("the container path must be absolute"))
            }
        }
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad("too many colons")),
    };
    if !dst.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" | "nocopy" | "consistent" | "cached" | "delegated" | "rprivate" | "private" | "rslave"
            | "slave" | "rshared" | "shared" => {}
            _ => return Err(bad(&format!("unknown option {o:?}"))),
        }
    }
    if src.starts_with('/') {
        Ok(VolumeSpec::Bind { source: PathBuf::from(src), target: dst.to_string(), readonly })
    } else if valid_name(src) {
        Ok(VolumeSpec::Named { name: src.to_string(), target: dst.to_string(), readonly })
    } else {
        Err(bad("a volume name must be [a-zA-Z0-9][a-zA-Z0-9_.-]+, a host path must be absolute"))
    }
}

/// The data directory of a volume.
pub fn data_dir(volumes: &Path, name: &str) -> PathBuf {
    volumes.join(name).join("_data")
}

/// Creates the volume if needed; true when it was created now.
pub fn ensure(volumes: &Path, name: &str) -> Result<bool> {
    let d = data_dir(volumes, name);
    if d.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(&d).step(|| format!("creating volume {name}"))?;
    Ok(true)
}

/// Is `path` missing from every layer, so that the image certainly has nothing there?
/// Each layer is walked without following symlinks: a layer that holds the path, a
/// symlink or a non-directory on the way (a whiteout is one) answers "maybe".
/// When no layer has it, no view of them can: a merged entry comes from a layer that
/// holds it under real directories.
fn absent_from_layers(lowers: &[PathBuf], path: &str) -> bool {
    let rel = path.trim_start_matches('/');
    !rel.is_empty()
        && lowers.iter().all(|layer| {
            let Ok(dir) = rustix::fs::open(layer, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            else {
                return false;
            };
            let how =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV;
            matches!(
                rustix::fs::openat2(&dir, rel, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), how),
                Err(rustix::io::Errno::NOENT)
            )
        })
}

/// Copies what the image has at `path` into the (empty) volume directory `dest`, keeping
/// owners, modes and links, as docker fills a new volume.
pub fn fill_from_image(scratch: &Path, lowers: &[PathBuf], path: &str, dest: &Path) -> Result<()> {
    if absent_from_layers(lowers, path) {
        return Ok(()); // the volume starts empty, as it would after a look through the mount
    }
    rootfs::with_mounted(scratch, lowers, None, |root| -> Result<()> {
        let rootfd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .step(|| "opening the image".into())?;
        let src = match rustix::fs::openat2(
            &rootfd,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => fd,
            Err(_) => return Ok(()), // nothing there in the image: the volume starts empty
        };
        let src_path = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&src)));
        copy_tree(&src_path, dest)?;
        // The volume's root takes the image directory's owner and mode.
        let st = rustix::fs::fstat(&src).step(|| "stat".into())?;
        let _ = rustix::fs::chown(
            dest,
            Some(rustix::fs::Uid::from_raw(st.st_uid)),
            Some(rustix::fs::Gid::from_raw(st.st_gid)),
        );
        let _ = rustix::fs::chmod(dest, Mode::from_raw_mode(st.st_mode & 0o7777));
        Ok(())
    })?
}

/// Copies the contents of directory `src` into directory `dest` with everything a layer
/// keeps, through the store's tar writer and its safe apply. Names are copied as they
/// are: a file called `.wh.x` is a file (as docker's copies treat it), not a whiteout —
/// applied as a layer, it deleted `dest/x`, and `.wh...` what is beside `dest`.
pub fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    let (r, w) = std::io::pipe().step(|| "creating a pipe".into())?;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            rbuild_store::layer::write_layer(src, &Default::default(), std::io::BufWriter::with_capacity(1 << 20, w))
                .map(|_| ())
        });
        let applied = rbuild_store::layer::apply_layer(
            std::io::BufReader::with_capacity(1 << 20, r),
            dest,
            rbuild_store::layer::ApplyMode::Plain,
        );
        let written =
            writer.join().unwrap_or_else(|_| Err(rbuild_store::StoreError::BadImage("copy thread panicked".into())));
        written?;
        applied?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_no_layer_holds_is_absent_and_anything_else_is_looked_at() {
        let d = tempfile::tempdir().unwrap();
        let (top, low) = (d.path().join("top"), d.path().join("low"));
        std::fs::create_dir_all(top.join("srv")).unwrap();
        std::fs::create_dir_all(low.join("var/data")).unwrap();
        std::os::unix::fs::symlink("/var", low.join("link")).unwrap();
        std::fs::write(low.join("file"), "x").unwrap();
        let layers = [top, low];
        assert!(absent_from_layers(&layers, "/data"));
        assert!(absent_from_layers(&layers, "/srv/data"));
        assert!(!absent_from_layers(&layers, "/srv"), "an empty directory still has an owner and mode");
        assert!(!absent_from_layers(&layers, "/var/data"));
        assert!(!absent_from_layers(&layers, "/link/data"), "a symlink on the way is followed through the mount");
        assert!(!absent_from_layers(&layers, "/file/data"));
        assert!(!absent_from_layers(&layers, "/"));
    }

    #[test]
    fn parses_volume_specs() {
        assert_eq!(parse("/data").unwrap(), VolumeSpec::Anonymous { target: "/data".into() });
        assert_eq!(
            parse("/h:/c:ro").unwrap(),
            VolumeSpec::Bind { source: "/h".into(), target: "/c".into(), readonly: true }
        );
        assert_eq!(
            parse("vol1:/c").unwrap(),
            VolumeSpec::Named { name: "vol1".into(), target: "/c".into(), readonly: false }
        );
        assert!(parse("rel").is_err());
        assert!(parse("/h:rel").is_err());
        assert!(parse("/h:/c:bogus").is_err());
        assert!(parse("-bad:/c").is_err());
    }
}
