//! Linux capabilities by name, and docker's default set.

/// Names and numbers of all capabilities up to CAP_CHECKPOINT_RESTORE.
pub const CAPS: &[(&str, u32)] = &[
    ("CHOWN", 0),
    ("DAC_OVERRIDE", 1),
    ("DAC_READ_SEARCH", 2),
    ("FOWNER", 3),
    ("FSETID", 4),
    ("KILL", 5),
    ("SETGID", 6),
    ("SETUID", 7),
    ("SETPCAP", 8),
    ("LINUX_IMMUTABLE", 9),
    ("NET_BIND_SERVICE", 10),
    ("NET_BROADCAST", 11),
    ("NET_ADMIN", 12),
    ("NET_RAW", 13),
    ("IPC_LOCK", 14),
    ("IPC_OWNER", 15),
    ("SYS_MODULE", 16),
    ("SYS_RAWIO", 17),
    ("SYS_CHROOT", 18),
    ("SYS_PTRACE", 19),
    ("SYS_PACCT", 20),
    ("SYS_ADMIN", 21),
    ("SYS_BOOT", 22),
    ("SYS_NICE", 23),
    ("SYS_RESOURCE", 24),
    ("SYS_TIME", 25),
    ("SYS_TTY_CONFIG", 26),
    ("MKNOD", 27),
    ("LEASE", 28),
    ("AUDIT_WRITE", 29),
    ("AUDIT_CONTROL", 30),
    ("SETFCAP", 31),
    ("MAC_OVERRIDE", 32),
    ("MAC_ADMIN", 33),
    ("SYSLOG", 34),
    ("WAKE_ALARM", 35),
    ("BLOCK_SUSPEND", 36),
    ("AUDIT_READ", 37),
    ("PERFMON", 38),
    ("BPF", 39),
    ("CHECKPOINT_RESTORE", 40),
];

/// Every capability this table knows (`--privileged`).
pub const ALL: u64 = (1 << 41) - 1;

/// Every capability this process could give: [`ALL`] within its own bounding set (a
/// host may have taken some away, e.g. CAP_SYS_RESOURCE; asking for those would fail).
pub fn all_held() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(ALL);
    ALL & bounding
}

/// docker's default capabilities (CapEff 0x00000000a80425fb).
pub const DOCKER_DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability: {0:?}")]
pub struct UnknownCap(pub String);

/// `NET_ADMIN`, `CAP_NET_ADMIN`, `net_admin` → 12.
pub fn cap_number(name: &str) -> Result<u32, UnknownCap> {
    let up = name.to_uppercase();
    let short = up.strip_prefix("CAP_").unwrap_or(&up);
    CAPS.iter().find(|(n, _)| *n == short).map(|(_, v)| *v).ok_or_else(|| UnknownCap(name.to_string()))
}

pub fn mask_of(names: &[&str]) -> u64 {
    names.iter().filter_map(|n| cap_number(n).ok()).fold(0u64, |m, c| m | (1 << c))
}

/// docker's default set with `--cap-add` / `--cap-drop` applied (`ALL` allowed in both).
pub fn effective_set(add: &[String], drop: &[String]) -> Result<u64, UnknownCap> {
    let mut set = mask_of(DOCKER_DEFAULT);
    for d in drop {
        if d.eq_ignore_ascii_case("all") {
            set = 0;
        } else {
            set &= !(1u64 << cap_number(d)?);
        }
    }
    for a in add {
        if a.eq_ignore_ascii_case("all") {
            set = ALL;
        } else {
            set |= 1u64 << cap_number(a)?;
        }
    }
    Ok(set)
}

/// Capability names in a mask, `CAP_`-prefixed.
pub fn names_of(mask: u64) -> Vec<String> {
    CAPS.iter().filter(|(_, c)| mask & (1 << c) != 0).map(|(n, _)| format!("CAP_{n}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_is_a80425fb() {
        assert_eq!(mask_of(DOCKER_DEFAULT), 0xa80425fb);
        assert_eq!(effective_set(&["NET_ADMIN".into()], &["CAP_CHOWN".into()]).unwrap(), (0xa80425fb | (1 << 12)) & !1);
        assert_eq!(effective_set(&[], &["ALL".into()]).unwrap(), 0);
        assert!(effective_set(&["NOPE".into()], &[]).is_err());
        assert_eq!(ALL, CAPS.iter().fold(0, |m, (_, c)| m | (1 << c)));
        assert_eq!(effective_set(&["ALL".into()], &[]).unwrap(), ALL);
    }
}
