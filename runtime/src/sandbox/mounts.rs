//! What is mounted inside the new root before pivot_root: /proc, /dev with docker's
//! device nodes, /dev/pts, /dev/shm, /dev/mqueue, /sys and the cgroup filesystems
//! (read-only), the /etc files, the user's mounts, then docker's masked and read-only
//! paths (none of those for `--privileged`, which also gets a writable /sys and the
//! host's devices).
//!
//! Every mount target inside the new root is resolved with `openat2(RESOLVE_IN_ROOT)`
//! ([`Syscall::open_in_root`]), so a symlink in the image (`/data -> /etc`) cannot make a
//! mount land outside the root.

use super::devices;
use super::spec::{MountKind, Spec};
use crate::error::{Result, Step};
use crate::syscall::{Create, Handle, Syscall};
use rustix::mount::MountFlags;
use std::path::Path;

/// docker's masked paths: a read-only empty tmpfs over directories, /dev/null over files.
pub const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// docker's read-only paths.
pub const READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

const NOSUID_NOEXEC_NODEV: MountFlags = MountFlags::NOSUID.union(MountFlags::NOEXEC).union(MountFlags::NODEV);

/// The new root, for mounts inside it.
struct Root<'a> {
    sys: &'a dyn Syscall,
    fd: &'a Handle,
}

impl Root<'_> {
    fn target(&self, path: &str, create: Create) -> Result<Handle> {
        self.sys.open_in_root(self.fd, path, create).step(|| format!("resolving {path} in the container"))
    }

    fn mount_fs(&self, path: &str, fstype: &str, flags: MountFlags, data: &str) -> Result<()> {
        let t = self.target(path, Create::Dir)?;
        self.sys.mount_fs(fstype, t.path(), flags, data).step(|| format!("mounting {fstype} on {path}"))
    }

    fn bind(&self, source: &Path, path: &str, readonly: bool, recursive: bool) -> Result<()> {
        let is_dir =
            std::fs::metadata(source).map(|m| m.is_dir()).step(|| format!("bind source {}", source.display()))?;
        let t = self.target(path, if is_dir { Create::Dir } else { Create::File })?;
        self.sys.bind(source, t.path(), recursive).step(|| format!("bind-mounting {} on {path}", source.display()))?;
        if readonly {
            // The remount must name the new mount, so resolve the path again.
            let t = self.target(path, Create::Nothing)?;
            self.sys
                .remount(t.path(), MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV)
                .step(|| format!("making {path} read-only"))?;
        }
        Ok(())
    }

    /// Masked paths may not exist on this kernel: best effort, as runc does.
    fn mask(&self, path: &str) {
        let Ok(t) = self.target(path, Create::Nothing) else { return };
        if t.is_dir() {
            let _ = self.sys.mount_fs("tmpfs", t.path(), MountFlags::RDONLY, "size=0");
        } else {
            let _ = self.sys.bind(Path::new("/dev/null"), t.path(), false);
        }
    }

    fn readonly(&self, path: &str) {
        let Ok(t) = self.target(path, Create::Nothing) else { return };
        if self.sys.bind(t.path(), t.path(), true).is_ok() {
            if let Ok(t2) = self.target(path, Create::Nothing) {
                let _ = self.sys.remount(t2.path(), MountFlags::RDONLY | NOSUID_NOEXEC_NODEV);
            }
        }
    }
}

/// Everything mounted inside `root` (the assembled overlay) before pivot_root.
pub(crate) fn setup(sys: &dyn Syscall, root: &Handle, spec: &Spec, console: Option<&Path>) -> Result<()> {
    let root = Root { sys, fd: root };
    let privileged = spec.security.privileged;
    root.mount_fs("/proc", "proc", NOSUID_NOEXEC_NODEV, "")?;
    dev(&root, privileged, console, spec.shm_size)?;
    // `--device`: the host's node at its place in /dev (its cgroup rule allows it).
    for d in &spec.devices {
        root.bind(&d.source, &d.target, false, false)?;
    }
    sys_and_cgroups(&root, privileged)?;
    for (path, file) in &spec.etc_files {
        root.bind(file, path, false, false)?;
    }
    for mnt in &spec.mounts {
        match &mnt.kind {
            MountKind::Bind { source, readonly } => root.bind(source, &mnt.target, *readonly, true)?,
            MountKind::Tmpfs { options } => {
                root.mount_fs(&mnt.target, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, options)?
            }
        }
    }
    if !privileged {
        for p in MASKED {
            root.mask(p);
        }
        for p in READONLY {
            root.readonly(p);
        }
    }
    Ok(())
}

fn dev(root: &Root<'_>, privileged: bool, console: Option<&Path>, shm_size: Option<u64>) -> Result<()> {
    root.mount_fs("/dev", "tmpfs", MountFlags::NOSUID | MountFlags::STRICTATIME, "mode=755,size=65536k")?;
    let dev = root.target("/dev", Create::Dir)?;
    for (name, maj, min) in devices::NODES {
        root.sys.mknod_char(&dev, name, 0o666, *maj, *min).step(|| format!("creating /dev/{name}"))?;
    }
    for (link, to) in devices::LINKS {
        root.sys.symlink(to, &dev, link).step(|| format!("creating /dev/{link}"))?;
    }
    drop(dev);
    root.mount_fs(
        "/dev/pts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )?;
    let shm = shm_size.map_or_else(|| "mode=1777,size=65536k".to_string(), |b| format!("mode=1777,size={b}"));
    root.mount_fs("/dev/shm", "tmpfs", NOSUID_NOEXEC_NODEV, &shm)?;
    root.mount_fs("/dev/mqueue", "mqueue", NOSUID_NOEXEC_NODEV, "")?;
    if let Some(c) = console {
        root.bind(c, "/dev/console", false, false)?;
    }
    if privileged {
        // docker's --privileged: every device node of the host, bound from it.
        for d in devices::host_devices(Path::new("/dev")) {
            let path = format!("/dev/{}", d.path.display());
            root.bind(&Path::new("/dev").join(&d.path), &path, false, false)?;
        }
    }
    Ok(())
}

fn sys_and_cgroups(root: &Root<'_>, privileged: bool) -> Result<()> {
    let ro = if privileged { MountFlags::empty() } else { MountFlags::RDONLY };
    // sysfs can only be mounted in a network namespace of our own; with the host's, bind it.
    let s = root.target("/sys", Create::Dir)?;
    if root.sys.mount_fs("sysfs", s.path(), NOSUID_NOEXEC_NODEV | ro, "").is_err() {
        root.sys.bind(Path::new("/sys"), s.path(), true).step(|| "binding /sys".into())?;
        let s2 = root.target("/sys", Create::Dir)?;
        root.sys.remount(s2.path(), NOSUID_NOEXEC_NODEV | ro).step(|| "making /sys read-only".into())?;
    }
    // The sandbox's own cgroups (it is in a cgroup namespace rooted at them), read-only
    // as docker shows them.
    match cgroup_mounts() {
        CgroupMounts::V2 => root.mount_fs("/sys/fs/cgroup", "cgroup2", NOSUID_NOEXEC_NODEV | ro, "")?,
        CgroupMounts::V1(hierarchies) => {
            root.mount_fs("/sys/fs/cgroup", "tmpfs", NOSUID_NOEXEC_NODEV, "mode=755")?;
            for (dir, options) in hierarchies {
                // A hierarchy this namespace cannot mount (rare) is left out, as runc does.
                let _ = root.mount_fs(&format!("/sys/fs/cgroup/{dir}"), "cgroup", NOSUID_NOEXEC_NODEV | ro, &options);
            }
        }
        CgroupMounts::None => {}
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum CgroupMounts {
    V2,
    /// (directory under /sys/fs/cgroup, mount options naming the controllers)
    V1(Vec<(String, String)>),
    None,
}

/// How the host mounts cgroups, read by [`prepare`] or from PID 1's /proc/self/mountinfo
/// (a copy of the host's: this host's mount table made it 0.2 ms of each build step).
fn cgroup_mounts() -> CgroupMounts {
    match HOST_CGROUPS.get() {
        Some(m) => m.clone(),
        None => read_cgroup_mounts(),
    }
}

static HOST_CGROUPS: std::sync::OnceLock<CgroupMounts> = std::sync::OnceLock::new();

/// Reads the host's cgroup mounts in the shim, before PID 1 is forked (a build step's
/// shim started ahead of its step).
pub(crate) fn prepare() {
    HOST_CGROUPS.get_or_init(read_cgroup_mounts);
}

fn read_cgroup_mounts() -> CgroupMounts {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return CgroupMounts::None };
    parse_cgroup_mounts(&info)
}

fn parse_cgroup_mounts(info: &str) -> CgroupMounts {
    let mut v1 = Vec::new();
    for line in info.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mountpoint = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let (fstype, superopts) = (r.next().unwrap_or(""), r.nth(1).unwrap_or(""));
        let Some(dir) = mountpoint.strip_prefix("/sys/fs/cgroup") else { continue };
        match fstype {
            "cgroup2" if dir.is_empty() => return CgroupMounts::V2,
            "cgroup" => {
                let dir = dir.trim_start_matches('/');
                let controllers: Vec<&str> = superopts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.starts_with("release_agent"))
                    .collect();
                if !dir.is_empty() && !dir.contains('/') && !controllers.is_empty() {
                    v1.push((dir.to_string(), controllers.join(",")));
                }
            }
            _ => {}
        }
    }
    if v1.is_empty() {
        CgroupMounts::None
    } else {
        CgroupMounts::V1(v1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::spec::{Command, Root as RootSpec, SecurityOptions, SpecBuilder};
    use crate::syscall::fake::{Call, Recorder};
    use crate::user::ExecUser;
    use std::path::PathBuf;

    fn spec(privileged: bool) -> Spec {
        let root =
            RootSpec { lowers: vec![], upper: None, volatile_upper: false, mountpoint: "/r".into(), readonly: false };
        let cmd = Command { args: vec!["true".into()], ..Default::default() };
        SpecBuilder::new("x", "x", root)
            .process(&cmd, &ExecUser { uid: 0, gid: 0, groups: vec![], home: "/root".into() })
            .etc_files(Path::new("/state"))
            .security(&SecurityOptions { privileged, ..Default::default() })
            .unwrap()
            .build()
    }

    fn targets(calls: &[Call]) -> Vec<String> {
        calls
            .iter()
            .filter_map(|c| match c {
                Call::MountFs { fstype, target, .. } => Some(format!("{fstype} {}", target.display())),
                Call::Bind { source, target, .. } => Some(format!("bind {} {}", source.display(), target.display())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn kernel_filesystems_then_etc_files_then_masks() {
        let sys = Recorder { missing: vec!["/proc/asound".into()], ..Default::default() };
        let root = sys.open_dir(Path::new("/r")).unwrap();
        // /etc files must exist as bind sources.
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(false);
        for (_, f) in &mut s.etc_files {
            *f = dir.path().join(f.file_name().unwrap());
            std::fs::write(&*f, "").unwrap();
        }
        setup(&sys, &root, &s, None).unwrap();
        let t = targets(&sys.calls());
        let pos = |want: &str| t.iter().position(|x| x == want).unwrap_or_else(|| panic!("no {want} in {t:#?}"));
        assert_eq!(t[0], "proc /r/proc");
        assert!(pos("tmpfs /r/dev") < pos("devpts /r/dev/pts"));
        assert!(pos("devpts /r/dev/pts") < pos("sysfs /r/sys"));
        let hosts = format!("bind {} /r/etc/hosts", dir.path().join("hosts").display());
        assert!(pos("sysfs /r/sys") < pos(&hosts));
        // Masks come last, so nothing mounted later uncovers them; a missing one is skipped.
        assert!(pos(&hosts) < pos("tmpfs /r/proc/acpi"));
        assert!(!t.iter().any(|x| x.ends_with("/proc/asound")));
        assert!(
            t.contains(&"bind /dev/null /r/proc/kcore".to_string()) || t.contains(&"tmpfs /r/proc/kcore".to_string())
        );
        let calls = sys.calls();
        let sysfs = calls.iter().find(|c| matches!(c, Call::MountFs { fstype, .. } if fstype == "sysfs")).unwrap();
        assert!(matches!(sysfs, Call::MountFs { flags, .. } if flags.contains(MountFlags::RDONLY)));
        let nodes: Vec<&PathBuf> =
            calls.iter().filter_map(|c| if let Call::Mknod { path, .. } = c { Some(path) } else { None }).collect();
        assert_eq!(nodes.len(), devices::NODES.len());
        assert!(calls.iter().any(|c| matches!(c, Call::Remount { target, flags } if target.ends_with("proc/sys") && flags.contains(MountFlags::RDONLY))));
    }

    #[test]
    fn privileged_gets_a_writable_sys_and_no_masks() {
        let sys = Recorder::default();
        let root = sys.open_dir(Path::new("/r")).unwrap();
        let mut s = spec(true);
        s.etc_files.clear();
        setup(&sys, &root, &s, None).unwrap();
        let calls = sys.calls();
        let sysfs = calls.iter().find(|c| matches!(c, Call::MountFs { fstype, .. } if fstype == "sysfs")).unwrap();
        assert!(matches!(sysfs, Call::MountFs { flags, .. } if !flags.contains(MountFlags::RDONLY)));
        let t = targets(&calls);
        assert!(!t.iter().any(|x| x.contains("/proc/kcore") || x.contains("/proc/acpi")), "{t:#?}");
        assert!(!calls.iter().any(|c| matches!(c, Call::Remount { target, .. } if target.ends_with("proc/sys"))));
    }

    #[test]
    fn cgroup_hierarchies_from_mountinfo() {
        let v1 = "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n\
                  31 30 0:27 / /sys/fs/cgroup/cpu rw shared:9 - cgroup cgroup rw,cpu\n\
                  32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                  33 30 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        match parse_cgroup_mounts(v1) {
            CgroupMounts::V1(h) => {
                assert_eq!(h, [("cpu".into(), "cpu".into()), ("systemd".into(), "name=systemd".into())])
            }
            _ => panic!("v1 expected"),
        }
        let v2 = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert!(matches!(parse_cgroup_mounts(v2), CgroupMounts::V2));
    }
}
