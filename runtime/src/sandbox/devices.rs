//! Devices: the nodes docker creates in every sandbox's /dev, and the device cgroup's
//! allow-list (runc's `AllowedDevices`, which docker uses): a sandbox may create any node
//! (`mknod` is in docker's capability set) but open only these. `--privileged` gets the
//! host's devices and no restriction.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The standard device nodes: (name in /dev, major, minor), mode 0666.
pub const NODES: &[(&str, u32, u32)] =
    &[("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// The symlinks in /dev.
pub const LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
];

/// A device cgroup rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `c`, `b` or `a` (all).
    pub kind: char,
    /// None: any.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Any of `r`, `w`, `m`.
    pub access: &'static str,
}

const fn c(major: u32, minor: u32) -> Rule {
    Rule { kind: 'c', major: Some(major), minor: Some(minor), access: "rwm" }
}

/// docker's default allow-list (everything else is denied).
pub const DEFAULT_RULES: &[Rule] = &[
    // mknod of anything (opening it is what the other rules decide).
    Rule { kind: 'c', major: None, minor: None, access: "m" },
    Rule { kind: 'b', major: None, minor: None, access: "m" },
    c(1, 3),
    c(1, 5),
    c(1, 7),
    c(1, 8),
    c(1, 9),
    c(5, 0),
    c(5, 1),
    c(5, 2),
    Rule { kind: 'c', major: Some(136), minor: None, access: "rwm" },
    c(10, 200),
];

/// Everything (`--privileged`).
pub const ALLOW_ALL: &[Rule] = &[Rule { kind: 'a', major: None, minor: None, access: "rwm" }];

/// Which rules a sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    Default,
    All,
}

impl Access {
    pub fn rules(self) -> &'static [Rule] {
        match self {
            Access::Default => DEFAULT_RULES,
            Access::All => ALLOW_ALL,
        }
    }
}

impl Rule {
    /// The v1 `devices.allow` line: `c 1:3 rwm`, `c *:* m`, `a *:* rwm`.
    pub fn v1(&self) -> String {
        let n = |x: Option<u32>| x.map_or("*".to_string(), |v| v.to_string());
        format!("{} {}:{} {}", self.kind, n(self.major), n(self.minor), self.access)
    }
}

/// A device node of the host (for `--privileged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// Relative to /dev.
    pub path: PathBuf,
    pub block: bool,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The host's device nodes under `dev` (docker's `--privileged` gives them all), skipping
/// the per-sandbox ones (pts, shm, mqueue, the standard nodes made anyway) and symlinks.
pub fn host_devices(dev: &Path) -> Vec<HostDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(dev.join(&rel)) else { continue };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            let Ok(m) = e.metadata() else { continue };
            let ft = m.file_type();
            if ft.is_dir() {
                if !matches!(r.to_str(), Some("pts" | "shm" | "mqueue")) {
                    stack.push(r);
                }
            } else if ft.is_char_device() || ft.is_block_device() {
                if rel.as_os_str().is_empty() && NODES.iter().any(|(n, ..)| Path::new(n) == r) {
                    continue;
                }
                let rdev = m.rdev();
                out.push(HostDevice {
                    path: r,
                    block: ft.is_block_device(),
                    major: rustix::fs::major(rdev),
                    minor: rustix::fs::minor(rdev),
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_allow_list_as_v1_lines() {
        let lines: Vec<String> = DEFAULT_RULES.iter().map(Rule::v1).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
                "c 10:200 rwm"
            ]
        );
        assert_eq!(ALLOW_ALL[0].v1(), "a *:* rwm");
        // No block device may be opened by default.
        assert!(DEFAULT_RULES.iter().filter(|r| r.kind != 'c').all(|r| r.access == "m"));
    }

    #[test]
    fn host_devices_skip_the_standard_nodes() {
        let devs = host_devices(Path::new("/dev"));
        assert!(devs.iter().all(|d| d.path != Path::new("null")));
        assert!(devs.iter().all(|d| !d.path.starts_with("pts")));
    }
}
