//! Users and groups of the image: /etc/passwd and /etc/group read through the layers
//! (top first, honouring whiteouts and opaque directories), and docker's rules for
//! `USER name`, `uid`, `name:group`, `uid:gid`.

use crate::error::{Result, RuntimeError};
use std::path::{Path, PathBuf};

/// Reads `path` (absolute, inside the image) from layer directories given top first.
pub fn read_layered(layers: &[PathBuf], path: &str) -> Option<Vec<u8>> {
    read_layered_depth(layers, path, 0, &probe)
}

/// [`read_layered`] for layers that never change (a build's snapshots): what each layer
/// has at the path is looked up once per build ([`forget_snapshots`]), so a step on 50
/// layers does not stat its way through all of them for /etc/passwd and /etc/group. A
/// step that changes either file makes a new layer, which is looked at.
pub fn read_snapshots(layers: &[PathBuf], path: &str) -> Option<Vec<u8>> {
    read_layered_depth(layers, path, 0, &|l: &Path, comps: &[&str]| {
        let key = (l.to_path_buf(), comps.join("/"));
        if let Some(p) = PROBED.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return p;
        }
        let p = probe(l, comps);
        if let Ok(mut m) = PROBED.lock() {
            m.insert(key, p.clone());
        }
        p
    })
}

type Probed = std::collections::HashMap<(PathBuf, String), Probe>;
static PROBED: std::sync::LazyLock<std::sync::Mutex<Probed>> = std::sync::LazyLock::new(Default::default);

/// Forgets what [`read_snapshots`] learned (the end of a build).
pub fn forget_snapshots() {
    if let Ok(mut m) = PROBED.lock() {
        m.clear();
    }
}

fn is_whiteout(p: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::symlink_metadata(p).map(|m| m.file_type().is_char_device() && m.rdev() == 0).unwrap_or(false)
}

fn is_opaque(p: &Path) -> bool {
    let mut v = [0u8; 2];
    matches!(rustix::fs::lgetxattr(p, "trusted.overlay.opaque", &mut v[..]), Ok(1) if v[0] == b'y')
}

/// What one layer has at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// Nothing: look in the layers below.
    Missing,
    /// A whiteout, an opaque directory, a non-directory on the way, or not a file: the
    /// path does not exist.
    Gone,
    /// The component at this index is a symlink to the target.
    Symlink(usize, String),
    /// The file, in this layer.
    File(PathBuf),
}

fn probe(layer: &Path, comps: &[&str]) -> Probe {
    // A whiteout or opaque directory on the way hides everything below this layer.
    let mut p = layer.to_path_buf();
    for (i, c) in comps.iter().enumerate() {
        p.push(c);
        if is_whiteout(&p) {
            return Probe::Gone;
        }
        let last = i + 1 == comps.len();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            // Not in this layer; an opaque parent means not in lower ones either.
            let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
            return if i > 0 && is_opaque(&parent) { Probe::Gone } else { Probe::Missing };
        };
        if meta.file_type().is_symlink() {
            return match std::fs::read_link(&p) {
                Ok(t) => Probe::Symlink(i, t.to_string_lossy().into_owned()),
                Err(_) => Probe::Gone,
            };
        }
        if last {
            return if meta.is_file() { Probe::File(p) } else { Probe::Gone };
        }
        if !meta.is_dir() {
            return Probe::Gone;
        }
    }
    Probe::Missing
}

fn read_layered_depth(
    layers: &[PathBuf],
    path: &str,
    depth: u32,
    probe: &dyn Fn(&Path, &[&str]) -> Probe,
) -> Option<Vec<u8>> {
    if depth > 8 {
        return None;
    }
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    for layer in layers {
        match probe(layer, &comps) {
            Probe::Missing => {}
            Probe::Gone => return None,
            Probe::File(p) => return std::fs::read(p).ok(),
            Probe::Symlink(i, target) => {
                let rest = comps[i + 1..].join("/");
                let resolved = if target.starts_with('/') {
                    format!("{target}/{rest}")
                } else {
                    format!("/{}/{target}/{rest}", comps[..i].join("/"))
                };
                return read_layered_depth(layers, &normalize(&resolved), depth + 1, probe);
            }
        }
    }
    None
}

fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

pub fn parse_passwd(data: &str) -> Vec<PasswdEntry> {
    data.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

pub fn parse_group(data: &str) -> Vec<GroupEntry> {
    data.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The identity a process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// The image's passwd and group files.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub passwd: Option<Vec<PasswdEntry>>,
    pub group: Option<Vec<GroupEntry>>,
}

impl Accounts {
    pub fn from_layers(layers: &[PathBuf]) -> Accounts {
        Accounts::read_with(layers, read_layered)
    }

    /// [`Accounts::from_layers`] on a build's snapshots ([`read_snapshots`]).
    pub fn from_snapshots(layers: &[PathBuf]) -> Accounts {
        Accounts::read_with(layers, read_snapshots)
    }

    fn read_with(layers: &[PathBuf], read_layered: fn(&[PathBuf], &str) -> Option<Vec<u8>>) -> Accounts {
        let read = |p: &str| read_layered(layers, p).map(|d| String::from_utf8_lossy(&d).into_owned());
        Accounts {
            passwd: read("/etc/passwd").map(|d| parse_passwd(&d)),
            group: read("/etc/group").map(|d| parse_group(&d)),
        }
    }

    /// docker's resolution of a USER spec (`""` is root).
    pub fn resolve(&self, spec: &str) -> Result<ExecUser> {
        let (user_arg, group_arg) = match spec.split_once(':') {
            Some((u, g)) => (u, g),
            None => (spec, ""),
        };
        let uid_num: Option<u32> = user_arg.parse().ok();
        let gid_num: Option<u32> = group_arg.parse().ok();
        let mut u = ExecUser { uid: 0, gid: 0, groups: vec![], home: "/".into() };
        let passwd = self.passwd.as_deref().unwrap_or(&[]);
        let found = passwd.iter().find(|p| match (user_arg, uid_num) {
            ("", _) => p.uid == 0,
            (_, Some(n)) => p.uid == n,
            (name, None) => p.name == name,
        });
        let mut matched_name = String::new();
        match found {
            Some(p) => {
                matched_name = p.name.clone();
                u.uid = p.uid;
                u.gid = p.gid;
                u.home = p.home.clone();
            }
            None if !user_arg.is_empty() => match uid_num {
                Some(n) => u.uid = n,
                None => return Err(RuntimeError::NoSuchUser(user_arg.to_string())),
            },
            None => {}
        }
        if !group_arg.is_empty() || !matched_name.is_empty() {
            let groups = self.group.as_deref().unwrap_or(&[]);
            if !group_arg.is_empty() {
                match groups.iter().find(|g| match gid_num {
                    Some(n) => g.gid == n,
                    None => g.name == group_arg,
                }) {
                    Some(g) => u.gid = g.gid,
                    None => match gid_num {
                        Some(n) => u.gid = n,
                        None => return Err(RuntimeError::NoSuchGroup(group_arg.to_string())),
                    },
                }
            } else {
                u.groups = groups.iter().filter(|g| g.members.contains(&matched_name)).map(|g| g.gid).collect();
            }
        }
        // docker's daemon starts the supplementary groups with the primary gid, then the
        // memberships (runc's GetExecUser); a setgid binary's process keeps the user's own
        // group that way (`id` shows it in groups=).
        u.groups.retain(|&g| g != u.gid);
        u.groups.insert(0, u.gid);
        Ok(u)
    }

    /// `--chown`/`COPY --chown` resolution as docker's builder does it: a name is looked up
    /// in passwd (user) and group (group); with no group part, the user part is also used
    /// as the group.
    pub fn resolve_chown(&self, spec: &str) -> Result<(u32, u32)> {
        let (user_arg, group_arg) = match spec.split_once(':') {
            Some((u, g)) => (u, g),
            None => (spec, spec),
        };
        let uid = match user_arg.parse::<u32>() {
            Ok(n) => n,
            Err(_) => self
                .passwd
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .find(|p| p.name == user_arg)
                .map(|p| p.uid)
                .ok_or_else(|| RuntimeError::NoSuchUser(user_arg.to_string()))?,
        };
        let gid = match group_arg.parse::<u32>() {
            Ok(n) => n,
            Err(_) => self
                .group
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .find(|g| g.name == group_arg)
                .map(|g| g.gid)
                .ok_or_else(|| RuntimeError::NoSuchGroup(group_arg.to_string()))?,
        };
        Ok((uid, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        Accounts {
            passwd: Some(parse_passwd("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")),
            group: Some(parse_group("root:x:0:\napp:x:1000:\nwheel:x:10:app,other\n")),
        }
    }

    #[test]
    fn resolves_like_docker() {
        let a = accounts();
        assert_eq!(a.resolve("").unwrap(), ExecUser { uid: 0, gid: 0, groups: vec![0], home: "/root".into() });
        assert_eq!(
            a.resolve("app").unwrap(),
            ExecUser { uid: 1000, gid: 1000, groups: vec![1000, 10], home: "/home/app".into() }
        );
        assert_eq!(a.resolve("1000:10").unwrap().gid, 10);
        assert_eq!(a.resolve("1000:10").unwrap().groups, vec![10]);
        assert_eq!(a.resolve("4242").unwrap(), ExecUser { uid: 4242, gid: 0, groups: vec![0], home: "/".into() });
        assert_eq!(a.resolve("app:app").unwrap().groups, vec![1000]);
        assert_eq!(a.resolve("app:wheel").unwrap().gid, 10);
        assert!(a.resolve("nobody").is_err());
        assert!(a.resolve("app:nogroup").is_err());
        assert_eq!(a.resolve_chown("app").unwrap(), (1000, 1000));
        assert_eq!(a.resolve_chown("1:2").unwrap(), (1, 2));
        assert!(a.resolve_chown("app:nope").is_err());
    }

    #[test]
    fn layered_reads_honour_whiteouts_and_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        std::fs::create_dir_all(bottom.join("usr/lib")).unwrap();
        std::fs::write(bottom.join("etc/passwd"), "bottom").unwrap();
        std::fs::write(bottom.join("usr/lib/group"), "via link").unwrap();
        std::os::unix::fs::symlink("../usr/lib/group", bottom.join("etc/group")).unwrap();
        let layers = vec![top.clone(), bottom.clone()];
        assert_eq!(read_layered(&layers, "/etc/passwd").unwrap(), b"bottom");
        assert_eq!(read_layered(&layers, "/etc/group").unwrap(), b"via link");
        std::fs::write(top.join("etc/passwd"), "top").unwrap();
        assert_eq!(read_layered(&layers, "/etc/passwd").unwrap(), b"top");
        std::fs::remove_file(top.join("etc/passwd")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            top.join("etc/passwd"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        assert_eq!(read_layered(&layers, "/etc/passwd"), None);
    }

    #[test]
    fn snapshot_reads_see_a_new_layer_and_agree_with_plain_reads() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, l3) = (t.path().join("1"), t.path().join("2"), t.path().join("3"));
        for l in [&l1, &l2, &l3] {
            std::fs::create_dir_all(l.join("etc")).unwrap();
        }
        std::fs::write(l1.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", l1.join("etc/group")).unwrap();
        let mut layers = vec![l2.clone(), l1.clone()];
        let a = Accounts::from_snapshots(&layers);
        assert_eq!(a.passwd.as_ref().unwrap()[0].home, "/root");
        assert_eq!(read_snapshots(&layers, "/etc/group"), read_layered(&layers, "/etc/group"));
        // A step that adds a user makes a layer on top: seen, though the others are cached.
        std::fs::write(l3.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:7:7::/app:/bin/sh\n").unwrap();
        layers.insert(0, l3.clone());
        assert_eq!(Accounts::from_snapshots(&layers).resolve("app").unwrap().uid, 7);
        assert_eq!(read_snapshots(&layers, "/etc/passwd"), read_layered(&layers, "/etc/passwd"));
        forget_snapshots();
        assert!(PROBED.lock().unwrap().is_empty());
    }
}
