//! The store's named areas: every directory under `ROOT/rbuild/` is one, declared in
//! [`AREAS`] with its version, the crate that writes it and whether it may be thrown
//! away. Crates reach their area through [`Store::area`] and write through it
//! ([`Area::write_atomic`], [`Area::write_replacing`]), so nothing writes into the store
//! by a path it made up itself.
//!
//! Versions, as uv versions its cache buckets: version 1 of an area is `ROOT/rbuild/NAME`,
//! a later version `N` is `ROOT/rbuild/NAME-vN`. A new rbuild that changes an area's
//! format bumps its version and starts with an empty directory beside the old one; prune
//! removes directories of versions this rbuild no longer uses.

use crate::error::{IoContext, Result, StoreError};
use crate::store::Store;
use std::path::{Path, PathBuf};

/// One area of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaSpec {
    pub name: &'static str,
    /// Bumped when the area's format changes incompatibly.
    pub version: u32,
    /// The crate that reads and writes it.
    pub owner: &'static str,
    /// Losing it costs only time (it is a cache of what other areas hold).
    pub disposable: bool,
    pub about: &'static str,
}

impl AreaSpec {
    /// Its directory's name under `ROOT/rbuild/`.
    pub fn dir_name(&self) -> String {
        if self.version <= 1 {
            self.name.to_string()
        } else {
            format!("{}-v{}", self.name, self.version)
        }
    }
}

const fn area(
    name: &'static str,
    version: u32,
    owner: &'static str,
    disposable: bool,
    about: &'static str,
) -> AreaSpec {
    AreaSpec { name, version, owner, disposable, about }
}

/// Every area under `ROOT/rbuild/` (the layout in `lib.rs` lists the same).
pub const AREAS: &[AreaSpec] = &[
    area("tmp", 1, "store", true, "temp files and dirs, `<prefix>-<pid>-<random>`, on the blobs' filesystem"),
    area("procs", 1, "store", false, "one flock'd file per live process, listing what it holds"),
    area("pins", 1, "store", false, "what running containers and builds hold, by name"),
    area("snapshots", 1, "store", true, "unpacked layers by diff_id, for overlay mounts"),
    area("unsynced", 1, "store", false, "snapshots published without a sync, per boot"),
    area("cache", 1, "store", false, "the build cache index (key -> record)"),
    area("images", 1, "store", false, "local image records: made here at, registry digests"),
    area("events", 1, "store", false, "the event journal"),
    area("compressed", 1, "store", true, "the compressed forms of layers pushed or pulled (digest, size)"),
    area("cachemounts", 1, "store", true, "the layer each cache mount was last packed as, by its tree's fingerprint"),
    area("statcache", 1, "builder", true, "per-context stat caches of build contexts"),
    area("buildcache", 1, "builder", true, "RUN --mount=type=cache directories"),
    area("explain", 1, "builder", true, "each build's steps and the parts of their keys, for --explain-cache"),
    area("registry", 1, "registry", true, "where blobs are known to live in registries (cross-repository mounts)"),
    area("init-layer", 1, "runtime", true, "the layer every sandbox gets under the image (/etc/hosts, /dev …)"),
    area("containers", 1, "runtime", false, "containers: config, state, upper dir"),
    area("volumes", 1, "runtime", false, "named and anonymous volumes"),
    area("networks", 1, "runtime", false, "network definitions, address leases and DNS records"),
];

/// The declared area named `name`.
pub fn spec(name: &str) -> Option<&'static AreaSpec> {
    AREAS.iter().find(|a| a.name == name)
}

/// A directory the store owns, reached through [`Store::area`].
#[derive(Debug, Clone)]
pub struct Area {
    dir: PathBuf,
    tmp: PathBuf,
    spec: &'static AreaSpec,
}

impl Area {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn spec(&self) -> &'static AreaSpec {
        self.spec
    }

    /// `name` inside the area (a relative path without `..`).
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        let name = name.as_ref();
        debug_assert!(name.is_relative() && !name.components().any(|c| c.as_os_str() == ".."), "{name:?}");
        self.dir.join(name)
    }

    /// Replaces `name` with `data` in one rename, after both reached the disk.
    pub fn write_atomic(&self, name: impl AsRef<Path>, data: &[u8]) -> Result<()> {
        self.write_replacing(name, data, true)
    }

    /// Replaces `name` in one rename; `durable` also waits for the disk (a reader sees the
    /// old or the new content either way; without it a crash may lose the new one).
    pub fn write_replacing(&self, name: impl AsRef<Path>, data: &[u8], durable: bool) -> Result<()> {
        let dest = self.join(name);
        if let Some(parent) = dest.parent().filter(|p| *p != self.dir) {
            std::fs::create_dir_all(parent).at("creating", parent)?;
        }
        crate::store::write_file_replacing(&self.tmp, &dest, data, durable)
    }

    /// The content of `name`, or None when it does not exist.
    pub fn read(&self, name: impl AsRef<Path>) -> Result<Option<Vec<u8>>> {
        let p = self.join(name);
        match std::fs::read(&p) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("reading {}", p.display()), e)),
        }
    }

    /// Removes `name` (a file); a missing one is no error.
    pub fn remove(&self, name: impl AsRef<Path>) -> Result<()> {
        let p = self.join(name);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("removing {}", p.display()), e)),
        }
    }
}

impl Store {
    /// The area `name` (one of [`AREAS`]), its directory made when missing.
    pub fn area(&self, name: &str) -> Result<Area> {
        let spec = spec(name).ok_or_else(|| StoreError::BadStore {
            path: self.root().to_path_buf(),
            reason: format!("no area named {name:?} (areas are declared in rbuild_store::area::AREAS)"),
        })?;
        let dir = self.state_dir().join(spec.dir_name());
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).at("creating", &dir)?;
        }
        Ok(Area { dir, tmp: self.tmp_dir(), spec })
    }

    /// Directories under `ROOT/rbuild/` that are no area of this rbuild (an earlier
    /// version's, or unknown): what prune removes. Files (locks, VERSION) are not listed.
    pub fn retired_areas(&self) -> Result<Vec<PathBuf>> {
        let state = self.state_dir();
        let known: Vec<String> = AREAS.iter().map(|a| a.dir_name()).collect();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&state).at("reading", &state)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let retired = AREAS.iter().any(|a| name.starts_with(&format!("{}-v", a.name)) || name == a.name);
            if e.file_type().is_ok_and(|t| t.is_dir()) && retired && !known.contains(&name) {
                out.push(e.path());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_area_is_in_the_layout_document() {
        let doc = include_str!("lib.rs");
        for a in AREAS {
            assert!(doc.contains(&format!("rbuild/{}/", a.dir_name())), "lib.rs does not describe area {}", a.name);
        }
        let names: std::collections::HashSet<_> = AREAS.iter().map(|a| a.name).collect();
        assert_eq!(names.len(), AREAS.len(), "an area is declared twice");
    }

    #[test]
    fn areas_write_atomically_and_versions_live_beside_each_other() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let a = store.area("compressed").unwrap();
        assert!(a.read("x").unwrap().is_none());
        a.write_atomic("x", b"1").unwrap();
        a.write_replacing("sub/y", b"2", false).unwrap();
        assert_eq!(a.read("x").unwrap().unwrap(), b"1");
        assert_eq!(a.read("sub/y").unwrap().unwrap(), b"2");
        a.remove("x").unwrap();
        a.remove("x").unwrap();
        assert!(store.area("no-such-area").is_err());
        // An older or newer version's directory is retired; the current one is not.
        std::fs::create_dir(store.state_dir().join("compressed-v7")).unwrap();
        let retired = store.retired_areas().unwrap();
        assert_eq!(retired, vec![store.state_dir().join("compressed-v7")]);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0, "temp files left behind");
    }
}
