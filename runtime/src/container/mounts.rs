//! A new container's mounts: binds, named and anonymous volumes (filled from the image on
//! first use, as docker does), `--volumes-from` and tmpfs.

use super::error::ContainerError;
use super::{find, random_id, CreateOptions, MountInfo};
use crate::error::{Result, Step};
use crate::sandbox::spec::{Mount, MountKind};
use crate::volume::{self, VolumeSpec};
use rbuild_store::Store;
use std::path::PathBuf;

/// The mounts of a new container and how `inspect` shows them.
pub(super) struct Mounts {
    pub mounts: Vec<Mount>,
    pub infos: Vec<MountInfo>,
    pub anonymous: Vec<String>,
}

/// Volumes, binds, tmpfs and `--volumes-from`; the image's VOLUMEs and `-v /path` get
/// anonymous volumes filled from the image.
pub(super) fn mounts<'a>(
    store: &Store,
    o: &CreateOptions,
    lowers: &[PathBuf],
    image_volumes: impl Iterator<Item = &'a String>,
) -> Result<Mounts> {
    let mut m = Mounts { mounts: vec![], infos: vec![], anonymous: vec![] };
    let volumes_dir = store.volumes_dir();
    let scratch = store.tmp_dir();
    let mut targets: Vec<String> = Vec::new();
    let mut anon_targets: Vec<String> = Vec::new();
    let add = |m: &mut Mounts, typ: &str, name: String, source: PathBuf, target: &str, readonly: bool| {
        m.infos.push(MountInfo {
            typ: typ.into(),
            name,
            source: source.display().to_string(),
            destination: target.to_string(),
            rw: !readonly,
        });
        m.mounts.push(Mount { target: target.to_string(), kind: MountKind::Bind { source, readonly } });
    };
    for v in &o.volumes {
        match v {
            VolumeSpec::Bind { source, target, readonly, create_source } => {
                if !source.exists() {
                    if !create_source {
                        return Err(ContainerError::BindSourceMissing(source.clone()).into());
                    }
                    std::fs::create_dir_all(source).step(|| format!("creating bind source {}", source.display()))?;
                }
                add(&mut m, "bind", String::new(), source.clone(), target, *readonly);
                targets.push(target.clone());
            }
            VolumeSpec::Named { name, target, readonly } => {
                let src = volume::data_dir(&volumes_dir, name);
                if volume::ensure(&volumes_dir, name)? {
                    volume::fill_from_image(&scratch, lowers, target, &src)?;
                }
                add(&mut m, "volume", name.clone(), src, target, *readonly);
                targets.push(target.clone());
            }
            VolumeSpec::Anonymous { target } => anon_targets.push(target.clone()),
        }
    }
    for (cname, ro) in &o.volumes_from {
        let (cname, ro) = (cname.as_str(), *ro);
        let other = find(store, cname)?;
        for i in &other.config.mounts {
            if i.typ == "tmpfs" || targets.contains(&i.destination) {
                continue;
            }
            let readonly = ro || !i.rw;
            m.infos.push(MountInfo { rw: !readonly, ..i.clone() });
            m.mounts.push(Mount {
                target: i.destination.clone(),
                kind: MountKind::Bind { source: PathBuf::from(&i.source), readonly },
            });
            targets.push(i.destination.clone());
        }
    }
    let image_targets: Vec<String> = image_volumes.cloned().collect();
    for t in image_targets.into_iter().chain(anon_targets) {
        if targets.contains(&t) {
            continue;
        }
        let vname = random_id();
        volume::ensure(&volumes_dir, &vname)?;
        let src = volume::data_dir(&volumes_dir, &vname);
        volume::fill_from_image(&scratch, lowers, &t, &src)?;
        m.anonymous.push(vname.clone());
        add(&mut m, "volume", vname, src, &t, false);
        targets.push(t);
    }
    for t in &o.tmpfs {
        if !t.target.starts_with('/') {
            return Err(ContainerError::TmpfsPath(t.target.clone()).into());
        }
        let options = if t.options.is_empty() { "mode=1777".to_string() } else { t.options.clone() };
        m.infos.push(MountInfo {
            typ: "tmpfs".into(),
            name: String::new(),
            source: String::new(),
            destination: t.target.clone(),
            rw: true,
        });
        m.mounts.push(Mount { target: t.target.clone(), kind: MountKind::Tmpfs { options } });
    }
    Ok(m)
}
