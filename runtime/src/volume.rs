//! Volumes: named ones kept in the store (`volumes/NAME/_data`), anonymous ones for the
//! image's VOLUMEs and `-v /path`, both filled from the image on first use as docker does;
//! and volumes as objects (`volume create|ls|inspect|rm|prune`): each has its metadata
//! beside its data (`volumes/NAME/meta.json`: created, labels), and is in use while a
//! container mounts it.

use crate::error::{Result, Step};
use crate::rootfs;
use rbuild_store::Durability;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A volume or bind of a container (the CLI parses `-v` and `--mount` into these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSpec {
    /// `-v /host:/ctr[:ro]` (a missing source is made, as `-v` does; `--mount
    /// type=bind` refuses it)
    Bind { source: PathBuf, target: String, readonly: bool, create_source: bool },
    /// `-v name:/ctr[:ro]`
    Named { name: String, target: String, readonly: bool },
    /// `-v /ctr`
    Anonymous { target: String },
}

/// docker's volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// What can go wrong with a volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error(
        "create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName(String),
    #[error("conflict: remove {name}: volume is in use - [{containers}]")]
    InUse { name: String, containers: String },
}

/// The data directory of a volume.
pub fn data_dir(volumes: &Path, name: &str) -> PathBuf {
    volumes.join(name).join("_data")
}

/// Creates the volume if needed; true when it was created now. Volumes a container makes
/// for itself with a random name (hex, 64 characters) are anonymous, as docker labels them.
pub fn ensure(volumes: &Path, name: &str) -> Result<bool> {
    let d = data_dir(volumes, name);
    if d.exists() {
        return Ok(false);
    }
    let anonymous = name.len() == 64 && name.bytes().all(|c| c.is_ascii_hexdigit());
    let mut labels = BTreeMap::new();
    if anonymous {
        labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
    }
    create_dirs(volumes, name, &labels)?;
    Ok(true)
}

/// docker's label on the volumes containers make for themselves (docker 23 on).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// What `volume inspect` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub name: String,
    /// RFC 3339, seconds.
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    pub mountpoint: PathBuf,
}

impl VolumeInfo {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// `meta.json` beside a volume's data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn now_secs() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    rbuild_store::config::rfc3339(d.as_secs() as i64, 0)
}

fn create_dirs(volumes: &Path, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    let dir = volumes.join(name);
    // The metadata goes first: a volume directory without it is one made before volumes
    // had metadata, and is still listed.
    std::fs::create_dir_all(&dir).step(|| format!("creating volume {name}"))?;
    let meta = Meta { created_at: now_secs(), labels: labels.clone() };
    let data = serde_json::to_vec(&meta).unwrap_or_default();
    rbuild_store::write_atomic(&dir.join("meta.json"), &data, Durability::Atomic)
        .step(|| format!("creating volume {name}"))?;
    std::fs::create_dir_all(dir.join("_data")).step(|| format!("creating volume {name}"))
}

/// `volume create [--label K=V] NAME`: a new empty volume, or the existing one of that
/// name (as docker answers a second create).
pub fn create(volumes: &Path, name: &str, labels: &BTreeMap<String, String>) -> Result<VolumeInfo> {
    if !valid_name(name) {
        return Err(VolumeError::InvalidName(name.to_string()).into());
    }
    if !data_dir(volumes, name).exists() {
        create_dirs(volumes, name, labels)?;
    }
    inspect(volumes, name)
}

/// One volume.
pub fn inspect(volumes: &Path, name: &str) -> Result<VolumeInfo> {
    let dir = volumes.join(name);
    if !valid_name(name) || !dir.join("_data").is_dir() {
        return Err(VolumeError::NoSuchVolume(name.to_string()).into());
    }
    let meta: Meta = match std::fs::read(dir.join("meta.json")) {
        Ok(d) => serde_json::from_slice(&d).unwrap_or_default(),
        Err(_) => Meta::default(),
    };
    let created_at = if meta.created_at.is_empty() {
        let secs = std::fs::metadata(&dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        rbuild_store::config::rfc3339(secs, 0)
    } else {
        meta.created_at
    };
    Ok(VolumeInfo { name: name.to_string(), created_at, labels: meta.labels, mountpoint: dir.join("_data") })
}

/// Every volume, by name.
pub fn list(volumes: &Path) -> Result<Vec<VolumeInfo>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(volumes) else { return Ok(out) };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Ok(v) = inspect(volumes, &name) {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The containers (IDs) that mount volume `name`.
pub fn users(store: &rbuild_store::Store, name: &str) -> Result<Vec<String>> {
    Ok(crate::container::list(store)?
        .into_iter()
        .filter(|c| c.config.mounts.iter().any(|m| m.typ == "volume" && m.name == name))
        .map(|c| c.config.id.clone())
        .collect())
}

/// `volume rm`: refused while a container (running or not) mounts it, as docker's is.
pub fn remove(store: &rbuild_store::Store, name: &str) -> Result<()> {
    let v = inspect(&store.volumes_dir(), name)?;
    let users = users(store, name)?;
    if !users.is_empty() {
        return Err(VolumeError::InUse { name: name.to_string(), containers: users.join(", ") }.into());
    }
    let dir = v.mountpoint.parent().map(Path::to_path_buf).unwrap_or_default();
    rbuild_store::layer::remove_tree(&dir)?;
    Ok(())
}

/// `volume ls --filter` / `volume prune --filter`, typed (the CLI parses docker's
/// filter strings).
#[derive(Debug, Clone, Default)]
pub struct VolumeFilter {
    pub dangling: Option<bool>,
    /// Substrings of the name (any).
    pub names: Vec<String>,
    /// `KEY` or `KEY=VALUE` (all).
    pub labels: Vec<(String, Option<String>)>,
    /// `label!=KEY[=VALUE]` (none).
    pub not_labels: Vec<(String, Option<String>)>,
    pub drivers: Vec<String>,
}

impl VolumeFilter {
    /// Whether `v` (used by `in_use` containers) passes.
    pub fn matches(&self, v: &VolumeInfo, in_use: bool) -> bool {
        let has = |(k, val): &(String, Option<String>)| match val {
            Some(val) => v.labels.get(k) == Some(val),
            None => v.labels.contains_key(k),
        };
        self.dangling.is_none_or(|d| d != in_use)
            && (self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str())))
            && self.labels.iter().all(has)
            && !self.not_labels.iter().any(has)
            && (self.drivers.is_empty() || self.drivers.iter().any(|d| d == "local"))
    }
}

/// `volume prune`: removes the volumes no container uses that pass `filter` — only
/// anonymous ones unless `all` (docker 23 on). Returns the removed names and the bytes
/// they held.
pub fn prune(store: &rbuild_store::Store, filter: &VolumeFilter, all: bool) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut bytes = 0;
    for v in list(&store.volumes_dir())? {
        if !(all || v.anonymous()) || !filter.matches(&v, false) || !users(store, &v.name)?.is_empty() {
            continue;
        }
        bytes += rbuild_store::snapshot::du(&v.mountpoint);
        remove(store, &v.name)?;
        removed.push(v.name);
    }
    Ok((removed, bytes))
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
        let Ok(src) = rustix::fs::openat2(
            &rootfd,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) else {
            return Ok(()); // nothing there in the image: the volume starts empty
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
    use crate::RuntimeError;

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
    fn volume_objects_have_metadata_and_filters() {
        let d = tempfile::tempdir().unwrap();
        let vols = d.path().join("volumes");
        let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let v = create(&vols, "data1", &labels).unwrap();
        assert_eq!(v.labels, labels);
        assert!(v.mountpoint.ends_with("volumes/data1/_data") && v.mountpoint.is_dir());
        assert!(rbuild_store::config::parse_rfc3339(&v.created_at) > 1_700_000_000);
        // A second create answers the existing volume.
        assert_eq!(create(&vols, "data1", &BTreeMap::new()).unwrap(), v);
        assert!(create(&vols, "bad/name", &BTreeMap::new()).is_err());
        let anon = "ab".repeat(32);
        assert!(ensure(&vols, &anon).unwrap());
        assert!(!ensure(&vols, &anon).unwrap());
        assert!(inspect(&vols, &anon).unwrap().anonymous());
        assert!(!v.anonymous());
        // A volume from before metadata existed is still a volume.
        std::fs::create_dir_all(vols.join("old/_data")).unwrap();
        let names: Vec<String> = list(&vols).unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, [anon.clone(), "data1".into(), "old".into()]);
        assert!(matches!(inspect(&vols, "nosuch"), Err(RuntimeError::Volume(VolumeError::NoSuchVolume(_)))));
        let f = VolumeFilter {
            labels: vec![("a".into(), Some("1".into()))],
            names: vec!["ata".into()],
            ..Default::default()
        };
        assert!(f.matches(&v, false) && !f.matches(&inspect(&vols, "old").unwrap(), false));
        assert!(!VolumeFilter { dangling: Some(true), ..Default::default() }.matches(&v, true));
        let not_a = VolumeFilter { not_labels: vec![("a".into(), None)], ..Default::default() };
        assert!(not_a.matches(&inspect(&vols, "old").unwrap(), false));
    }
}
