//! docker's filesystem options parsed into the runtime's typed ones: `-v`, `--mount`,
//! `--tmpfs`, `--volumes-from`, `--device`.

use crate::commands::options::bytes;
use anyhow::bail;
use rbuild_runtime::container::{DeviceRequest, TmpfsSpec};
use rbuild_runtime::volume::VolumeSpec;
use std::path::PathBuf;

/// `--tmpfs PATH[:OPTIONS]`.
pub fn tmpfs(s: &str) -> TmpfsSpec {
    let (target, options) = s.split_once(':').unwrap_or((s, ""));
    TmpfsSpec { target: target.to_string(), options: options.to_string() }
}

/// docker's device permissions: a non-empty set of `r`, `w`, `m`, each at most once.
fn device_mode(m: &str) -> bool {
    !m.is_empty() && m.len() <= 3 && m.chars().all(|c| "rwm".contains(c)) && {
        let mut v: Vec<char> = m.chars().collect();
        v.sort_unstable();
        v.dedup();
        v.len() == m.len()
    }
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]` (docker's parseDevice).
pub fn device(s: &str) -> anyhow::Result<DeviceRequest> {
    let parts: Vec<&str> = s.split(':').collect();
    let (src, mut dst, mut access) = (parts[0], "", "rwm");
    match parts.as_slice() {
        [_] => {}
        [_, b] if device_mode(b) => access = b,
        [_, b] => dst = b,
        [_, b, c] => {
            dst = b;
            access = c;
        }
        _ => bail!("invalid device specification: {s}"),
    }
    if !device_mode(access) {
        bail!("bad mode specified: {access}");
    }
    let dst = if dst.is_empty() { src } else { dst };
    if !src.starts_with('/') || !dst.starts_with('/') {
        bail!("invalid device specification: {s}: paths must be absolute");
    }
    Ok(DeviceRequest { source: PathBuf::from(src), target: dst.to_string(), access: access.to_string() })
}

/// `-v` (docker's volume specification).
pub fn volume(spec: &str) -> anyhow::Result<VolumeSpec> {
    let bad = |why: &str| anyhow::anyhow!("invalid volume specification {spec:?}: {why}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] if d.starts_with('/') => return Ok(VolumeSpec::Anonymous { target: d.to_string() }),
        [_] => return Err(bad("the container path must be absolute")),
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
        Ok(VolumeSpec::Bind { source: PathBuf::from(src), target: dst.to_string(), readonly, create_source: true })
    } else if rbuild_runtime::volume::valid_name(src) {
        Ok(VolumeSpec::Named { name: src.to_string(), target: dst.to_string(), readonly })
    } else {
        Err(bad("a volume name must be [a-zA-Z0-9][a-zA-Z0-9_.-]+, a host path must be absolute"))
    }
}

/// What a `--mount` becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    Volume(VolumeSpec),
    Tmpfs(TmpfsSpec),
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]`
/// (docker's opts/mount.go; a bind's source must exist, unlike `-v`'s).
pub fn mount(s: &str) -> anyhow::Result<MountSpec> {
    let bad = |why: String| anyhow::anyhow!("invalid argument {s:?} for \"--mount\" flag: {why}");
    let (mut typ, mut source, mut target, mut readonly) = ("volume".to_string(), None, None, false);
    let mut tmpfs_opts = Vec::new();
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let flag = |v: Option<&str>| -> anyhow::Result<bool> {
            match v.map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(x) => Err(bad(format!("invalid value for {k}: {x}"))),
            }
        };
        let need = |v: Option<&str>| {
            v.map(String::from).ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")))
        };
        match k.as_str() {
            "type" => typ = need(v)?,
            "source" | "src" => source = Some(need(v)?),
            "target" | "destination" | "dst" => target = Some(need(v)?),
            "readonly" | "ro" => readonly = flag(v)?,
            "tmpfs-size" => tmpfs_opts.push(format!("size={}", bytes(&need(v)?)?)),
            "tmpfs-mode" => {
                let m = need(v)?;
                u32::from_str_radix(&m, 8).map_err(|_| bad(format!("invalid value for tmpfs-mode: {m}")))?;
                tmpfs_opts.push(format!("mode={m}"));
            }
            "consistency" | "bind-propagation" | "bind-nonrecursive" | "volume-nocopy" | "volume-driver" => {}
            "volume-label" | "volume-opt" => {}
            _ => return Err(bad(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    let target = target.ok_or_else(|| bad("target is required".into()))?;
    if !target.starts_with('/') {
        return Err(bad(format!("invalid mount path: '{target}' mount path must be absolute")));
    }
    let invalid = |why: &str| anyhow::anyhow!("invalid mount config for type \"{typ}\": {why}");
    match typ.as_str() {
        "bind" => {
            let source = source.ok_or_else(|| invalid("field Source must not be empty"))?;
            if !source.starts_with('/') {
                return Err(invalid(&format!("invalid mount path: '{source}' mount path must be absolute")));
            }
            Ok(MountSpec::Volume(VolumeSpec::Bind {
                source: PathBuf::from(source),
                target,
                readonly,
                create_source: false,
            }))
        }
        "volume" => Ok(MountSpec::Volume(match source {
            Some(name) => {
                if !rbuild_runtime::volume::valid_name(&name) {
                    return Err(invalid(&format!("invalid volume name {name:?}")));
                }
                VolumeSpec::Named { name, target, readonly }
            }
            None => VolumeSpec::Anonymous { target },
        })),
        "tmpfs" => {
            if source.is_some() {
                return Err(invalid("field Source must not be specified"));
            }
            Ok(MountSpec::Tmpfs(TmpfsSpec { target, options: tmpfs_opts.join(",") }))
        }
        other => Err(bad(format!("invalid mount type: {other}"))),
    }
}

/// `--volumes-from CONTAINER[:ro|rw]`.
pub fn volumes_from(s: &str) -> (String, bool) {
    match s.rsplit_once(':') {
        Some((c, "ro")) => (c.to_string(), true),
        Some((c, "rw")) => (c.to_string(), false),
        _ => (s.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_as_docker_parses_them() {
        assert_eq!(
            mount("type=bind,source=/h,target=/c,readonly").unwrap(),
            MountSpec::Volume(VolumeSpec::Bind {
                source: "/h".into(),
                target: "/c".into(),
                readonly: true,
                create_source: false
            })
        );
        assert_eq!(
            mount("src=data,dst=/d").unwrap(),
            MountSpec::Volume(VolumeSpec::Named { name: "data".into(), target: "/d".into(), readonly: false })
        );
        assert_eq!(mount("target=/d").unwrap(), MountSpec::Volume(VolumeSpec::Anonymous { target: "/d".into() }));
        assert_eq!(
            mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            MountSpec::Tmpfs(TmpfsSpec { target: "/t".into(), options: "size=1048576,mode=1770".into() })
        );
        assert!(mount("type=bind,target=/c").unwrap_err().to_string().contains("Source must not be empty"));
        assert!(mount("type=tmpfs,src=x,dst=/t").is_err());
        assert!(mount("type=bind,source=/h").unwrap_err().to_string().contains("target is required"));
        assert!(mount("type=nfs,dst=/x").is_err() && mount("bogus=1,dst=/x").is_err());
        assert!(mount("type=bind,src=/h,dst=/c,readonly=maybe").is_err());
    }

    #[test]
    fn volume_specs() {
        assert_eq!(volume("/c").unwrap(), VolumeSpec::Anonymous { target: "/c".into() });
        assert!(matches!(volume("data:/d:ro").unwrap(), VolumeSpec::Named { readonly: true, .. }));
        assert!(matches!(volume("/h:/c").unwrap(), VolumeSpec::Bind { create_source: true, .. }));
        assert!(volume("rel/x:/c").is_err() && volume("/h:c").is_err() && volume("/h:/c:bogus").is_err());
        assert!(volume("a:/b:ro:x").is_err());
    }

    #[test]
    fn devices_as_docker_parses_them() {
        let d = device("/dev/null:/dev/xnull:r").unwrap();
        assert_eq!((d.target.as_str(), d.access.as_str()), ("/dev/xnull", "r"));
        assert_eq!(device("/dev/null:rw").unwrap().target, "/dev/null");
        assert!(device("/dev/null:/x:rwq").is_err() && device("null").is_err() && device("/a:/b:r:x").is_err());
    }
}
