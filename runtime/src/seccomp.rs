//! A seccomp filter equivalent to docker's default profile, compiled to classic BPF as a
//! binary search over syscall numbers (about 10 comparisons per syscall instead of
//! hundreds), with docker's argument rules for `clone`, `personality` and `socket`.
//!
//! Unlisted syscalls fail with EPERM, `clone3` with ENOSYS (so libc falls back to `clone`,
//! whose namespace flags can be checked), as docker's profile does. Only x86-64 syscalls
//! are allowed (x32 and i386 calls are refused).

use crate::sandbox::capabilities as caps;

pub type Insn = libc::sock_filter;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_BIT: u32 = 0x4000_0000;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_hi(i: u32) -> u32 {
    16 + 8 * i + 4
}

const NR_SOCKET: u32 = 41;
const NR_CLONE: u32 = 56;
const NR_PERSONALITY: u32 = 135;
const NR_CLONE3: u32 = 435;
const AF_VSOCK: u32 = 40;
const NS_FLAGS: u32 = 0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x0200_0000;

fn stmt(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

#[derive(Debug, Clone)]
enum Action {
    Allow,
    Errno(u32),
    /// Instructions that check arguments; every path ends in a return.
    Block(Vec<Insn>),
}

fn deny() -> Insn {
    stmt(RET_K, RET_ERRNO | libc::EPERM as u32)
}

/// Syscalls docker's default profile allows unconditionally (x86-64 numbers; names that do
/// not exist on x86-64, like `chown32`, are left out).
pub const ALLOW: &[(&str, u32)] = &[
    ("read", 0),
    ("write", 1),
    ("open", 2),
    ("close", 3),
    ("stat", 4),
    ("fstat", 5),
    ("lstat", 6),
    ("poll", 7),
    ("lseek", 8),
    ("mmap", 9),
    ("mprotect", 10),
    ("munmap", 11),
    ("brk", 12),
    ("rt_sigaction", 13),
    ("rt_sigprocmask", 14),
    ("rt_sigreturn", 15),
    ("ioctl", 16),
    ("pread64", 17),
    ("pwrite64", 18),
    ("readv", 19),
    ("writev", 20),
    ("access", 21),
    ("pipe", 22),
    ("select", 23),
    ("sched_yield", 24),
    ("mremap", 25),
    ("msync", 26),
    ("mincore", 27),
    ("madvise", 28),
    ("shmget", 29),
    ("shmat", 30),
    ("shmctl", 31),
    ("dup", 32),
    ("dup2", 33),
    ("pause", 34),
    ("nanosleep", 35),
    ("getitimer", 36),
    ("alarm", 37),
    ("setitimer", 38),
    ("getpid", 39),
    ("sendfile", 40),
    ("connect", 42),
    ("accept", 43),
    ("sendto", 44),
    ("recvfrom", 45),
    ("sendmsg", 46),
    ("recvmsg", 47),
    ("shutdown", 48),
    ("bind", 49),
    ("listen", 50),
    ("getsockname", 51),
    ("getpeername", 52),
    ("socketpair", 53),
    ("setsockopt", 54),
    ("getsockopt", 55),
    ("fork", 57),
    ("vfork", 58),
    ("execve", 59),
    ("exit", 60),
    ("wait4", 61),
    ("kill", 62),
    ("uname", 63),
    ("semget", 64),
    ("semop", 65),
    ("semctl", 66),
    ("shmdt", 67),
    ("msgget", 68),
    ("msgsnd", 69),
    ("msgrcv", 70),
    ("msgctl", 71),
    ("fcntl", 72),
    ("flock", 73),
    ("fsync", 74),
    ("fdatasync", 75),
    ("truncate", 76),
    ("ftruncate", 77),
    ("getdents", 78),
    ("getcwd", 79),
    ("chdir", 80),
    ("fchdir", 81),
    ("rename", 82),
    ("mkdir", 83),
    ("rmdir", 84),
    ("creat", 85),
    ("link", 86),
    ("unlink", 87),
    ("symlink", 88),
    ("readlink", 89),
    ("chmod", 90),
    ("fchmod", 91),
    ("chown", 92),
    ("fchown", 93),
    ("lchown", 94),
    ("umask", 95),
    ("gettimeofday", 96),
    ("getrlimit", 97),
    ("getrusage", 98),
    ("sysinfo", 99),
    ("times", 100),
    ("ptrace", 101),
    ("getuid", 102),
    ("getgid", 104),
    ("setuid", 105),
    ("setgid", 106),
    ("geteuid", 107),
    ("getegid", 108),
    ("setpgid", 109),
    ("getppid", 110),
    ("getpgrp", 111),
    ("setsid", 112),
    ("setreuid", 113),
    ("setregid", 114),
    ("getgroups", 115),
    ("setgroups", 116),
    ("setresuid", 117),
    ("getresuid", 118),
    ("setresgid", 119),
    ("getresgid", 120),
    ("getpgid", 121),
    ("setfsuid", 122),
    ("setfsgid", 123),
    ("getsid", 124),
    ("capget", 125),
    ("capset", 126),
    ("rt_sigpending", 127),
    ("rt_sigtimedwait", 128),
    ("rt_sigqueueinfo", 129),
    ("rt_sigsuspend", 130),
    ("sigaltstack", 131),
    ("utime", 132),
    ("mknod", 133),
    ("statfs", 137),
    ("fstatfs", 138),
    ("getpriority", 140),
    ("setpriority", 141),
    ("sched_setparam", 142),
    ("sched_getparam", 143),
    ("sched_setscheduler", 144),
    ("sched_getscheduler", 145),
    ("sched_get_priority_max", 146),
    ("sched_get_priority_min", 147),
    ("sched_rr_get_interval", 148),
    ("mlock", 149),
    ("munlock", 150),
    ("mlockall", 151),
    ("munlockall", 152),
    ("modify_ldt", 154),
    ("prctl", 157),
    ("arch_prctl", 158),
    ("adjtimex", 159),
    ("setrlimit", 160),
    ("sync", 162),
    ("gettid", 186),
    ("readahead", 187),
    ("setxattr", 188),
    ("lsetxattr", 189),
    ("fsetxattr", 190),
    ("getxattr", 191),
    ("lgetxattr", 192),
    ("fgetxattr", 193),
    ("listxattr", 194),
    ("llistxattr", 195),
    ("flistxattr", 196),
    ("removexattr", 197),
    ("lremovexattr", 198),
    ("fremovexattr", 199),
    ("tkill", 200),
    ("time", 201),
    ("futex", 202),
    ("sched_setaffinity", 203),
    ("sched_getaffinity", 204),
    ("set_thread_area", 205),
    ("io_setup", 206),
    ("io_destroy", 207),
    ("io_getevents", 208),
    ("io_submit", 209),
    ("io_cancel", 210),
    ("get_thread_area", 211),
    ("epoll_create", 213),
    ("epoll_ctl_old", 214),
    ("epoll_wait_old", 215),
    ("remap_file_pages", 216),
    ("getdents64", 217),
    ("set_tid_address", 218),
    ("restart_syscall", 219),
    ("semtimedop", 220),
    ("fadvise64", 221),
    ("timer_create", 222),
    ("timer_settime", 223),
    ("timer_gettime", 224),
    ("timer_getoverrun", 225),
    ("timer_delete", 226),
    ("clock_gettime", 228),
    ("clock_getres", 229),
    ("clock_nanosleep", 230),
    ("exit_group", 231),
    ("epoll_wait", 232),
    ("epoll_ctl", 233),
    ("tgkill", 234),
    ("utimes", 235),
    ("mq_open", 240),
    ("mq_unlink", 241),
    ("mq_timedsend", 242),
    ("mq_timedreceive", 243),
    ("mq_notify", 244),
    ("mq_getsetattr", 245),
    ("waitid", 247),
    ("ioprio_set", 251),
    ("ioprio_get", 252),
    ("inotify_init", 253),
    ("inotify_add_watch", 254),
    ("inotify_rm_watch", 255),
    ("openat", 257),
    ("mkdirat", 258),
    ("mknodat", 259),
    ("fchownat", 260),
    ("futimesat", 261),
    ("newfstatat", 262),
    ("unlinkat", 263),
    ("renameat", 264),
    ("linkat", 265),
    ("symlinkat", 266),
    ("readlinkat", 267),
    ("fchmodat", 268),
    ("faccessat", 269),
    ("pselect6", 270),
    ("ppoll", 271),
    ("set_robust_list", 273),
    ("get_robust_list", 274),
    ("splice", 275),
    ("tee", 276),
    ("sync_file_range", 277),
    ("vmsplice", 278),
    ("utimensat", 280),
    ("epoll_pwait", 281),
    ("signalfd", 282),
    ("timerfd_create", 283),
    ("eventfd", 284),
    ("fallocate", 285),
    ("timerfd_settime", 286),
    ("timerfd_gettime", 287),
    ("accept4", 288),
    ("signalfd4", 289),
    ("eventfd2", 290),
    ("epoll_create1", 291),
    ("dup3", 292),
    ("pipe2", 293),
    ("inotify_init1", 294),
    ("preadv", 295),
    ("pwritev", 296),
    ("rt_tgsigqueueinfo", 297),
    ("recvmmsg", 299),
    ("fanotify_mark", 301),
    ("prlimit64", 302),
    ("name_to_handle_at", 303),
    ("clock_adjtime", 305),
    ("syncfs", 306),
    ("sendmmsg", 307),
    ("getcpu", 309),
    ("process_vm_readv", 310),
    ("process_vm_writev", 311),
    ("sched_setattr", 314),
    ("sched_getattr", 315),
    ("renameat2", 316),
    ("seccomp", 317),
    ("getrandom", 318),
    ("memfd_create", 319),
    ("execveat", 322),
    ("membarrier", 324),
    ("mlock2", 325),
    ("copy_file_range", 326),
    ("preadv2", 327),
    ("pwritev2", 328),
    ("pkey_mprotect", 329),
    ("pkey_alloc", 330),
    ("pkey_free", 331),
    ("statx", 332),
    ("io_pgetevents", 333),
    ("rseq", 334),
    ("pidfd_send_signal", 424),
    ("io_uring_setup", 425),
    ("io_uring_enter", 426),
    ("io_uring_register", 427),
    ("pidfd_open", 434),
    ("close_range", 436),
    ("openat2", 437),
    ("faccessat2", 439),
    ("epoll_pwait2", 441),
    ("landlock_create_ruleset", 444),
    ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446),
    ("memfd_secret", 447),
    ("process_mrelease", 448),
    ("futex_waitv", 449),
    ("cachestat", 451),
    ("fchmodat2", 452),
    ("map_shadow_stack", 453),
    ("futex_wake", 454),
    ("futex_wait", 455),
    ("futex_requeue", 456),
];

pub const BY_CAP: &[(&str, &str, u32)] = &[
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at", 304),
    ("CAP_SYS_ADMIN", "bpf", 321),
    ("CAP_SYS_ADMIN", "clone", 56),
    ("CAP_SYS_ADMIN", "clone3", 435),
    ("CAP_SYS_ADMIN", "fanotify_init", 300),
    ("CAP_SYS_ADMIN", "fsconfig", 431),
    ("CAP_SYS_ADMIN", "fsmount", 432),
    ("CAP_SYS_ADMIN", "fsopen", 430),
    ("CAP_SYS_ADMIN", "fspick", 433),
    ("CAP_SYS_ADMIN", "lookup_dcookie", 212),
    ("CAP_SYS_ADMIN", "mount", 165),
    ("CAP_SYS_ADMIN", "mount_setattr", 442),
    ("CAP_SYS_ADMIN", "move_mount", 429),
    ("CAP_SYS_ADMIN", "open_tree", 428),
    ("CAP_SYS_ADMIN", "perf_event_open", 298),
    ("CAP_SYS_ADMIN", "quotactl", 179),
    ("CAP_SYS_ADMIN", "quotactl_fd", 443),
    ("CAP_SYS_ADMIN", "setdomainname", 171),
    ("CAP_SYS_ADMIN", "sethostname", 170),
    ("CAP_SYS_ADMIN", "setns", 308),
    ("CAP_SYS_ADMIN", "syslog", 103),
    ("CAP_SYS_ADMIN", "umount2", 166),
    ("CAP_SYS_ADMIN", "unshare", 272),
    ("CAP_SYS_BOOT", "reboot", 169),
    ("CAP_SYS_CHROOT", "chroot", 161),
    ("CAP_SYS_MODULE", "delete_module", 176),
    ("CAP_SYS_MODULE", "init_module", 175),
    ("CAP_SYS_MODULE", "finit_module", 313),
    ("CAP_SYS_PACCT", "acct", 163),
    ("CAP_SYS_PTRACE", "kcmp", 312),
    ("CAP_SYS_PTRACE", "pidfd_getfd", 438),
    ("CAP_SYS_PTRACE", "process_madvise", 440),
    ("CAP_SYS_PTRACE", "process_vm_readv", 310),
    ("CAP_SYS_PTRACE", "process_vm_writev", 311),
    ("CAP_SYS_PTRACE", "ptrace", 101),
    ("CAP_SYS_RAWIO", "iopl", 172),
    ("CAP_SYS_RAWIO", "ioperm", 173),
    ("CAP_SYS_TIME", "settimeofday", 164),
    ("CAP_SYS_TIME", "clock_settime", 227),
    ("CAP_SYS_TTY_CONFIG", "vhangup", 153),
    ("CAP_SYS_NICE", "get_mempolicy", 239),
    ("CAP_SYS_NICE", "mbind", 237),
    ("CAP_SYS_NICE", "set_mempolicy", 238),
    ("CAP_SYS_NICE", "set_mempolicy_home_node", 450),
    ("CAP_SYSLOG", "syslog", 103),
    ("CAP_BPF", "bpf", 321),
    ("CAP_PERFMON", "perf_event_open", 298),
];

/// The rules for a container with capabilities `cap_mask`.
fn rules(cap_mask: u64) -> Vec<(u32, Action)> {
    let has = |name: &str| caps::cap_number(name).map(|c| cap_mask & (1 << c) != 0).unwrap_or(false);
    let mut map: std::collections::BTreeMap<u32, Action> = ALLOW.iter().map(|(_, n)| (*n, Action::Allow)).collect();
    for (cap, _, nr) in BY_CAP {
        if has(cap) {
            map.insert(*nr, Action::Allow);
        }
    }
    // socket: anything but AF_VSOCK.
    map.insert(
        NR_SOCKET,
        Action::Block(vec![
            stmt(LD_W_ABS, arg_hi(0)),
            jump(JEQ_K, 0, 1, 0),
            stmt(RET_K, RET_ALLOW),
            stmt(LD_W_ABS, arg_lo(0)),
            jump(JEQ_K, AF_VSOCK, 0, 1),
            deny(),
            stmt(RET_K, RET_ALLOW),
        ]),
    );
    // personality: only the values docker allows.
    let mut p = vec![stmt(LD_W_ABS, arg_hi(0)), jump(JEQ_K, 0, 1, 0), deny(), stmt(LD_W_ABS, arg_lo(0))];
    let values = [0u32, 0x8, 0x20000, 0x20008, 0xffff_ffff];
    for (i, v) in values.iter().enumerate() {
        // On a match, jump over the remaining comparisons and the deny to the allow.
        let remaining = (values.len() - i - 1) as u8;
        p.push(jump(JEQ_K, *v, remaining + 1, 0));
    }
    p.push(deny());
    p.push(stmt(RET_K, RET_ALLOW));
    map.insert(NR_PERSONALITY, Action::Block(p));
    if !has("SYS_ADMIN") {
        // clone without namespace flags; clone3 cannot be inspected, so it reports ENOSYS.
        map.insert(
            NR_CLONE,
            Action::Block(vec![
                stmt(LD_W_ABS, arg_lo(0)),
                jump(JSET_K, NS_FLAGS, 0, 1),
                deny(),
                stmt(RET_K, RET_ALLOW),
            ]),
        );
        map.insert(NR_CLONE3, Action::Errno(libc::ENOSYS as u32));
    }
    map.into_iter().collect()
}

fn emit(out: &mut Vec<Insn>, rules: &[(u32, Action)]) {
    if rules.len() <= 4 {
        for (nr, act) in rules {
            match act {
                Action::Allow => {
                    out.push(jump(JEQ_K, *nr, 0, 1));
                    out.push(stmt(RET_K, RET_ALLOW));
                }
                Action::Errno(e) => {
                    out.push(jump(JEQ_K, *nr, 0, 1));
                    out.push(stmt(RET_K, RET_ERRNO | e));
                }
                Action::Block(b) => {
                    out.push(jump(JEQ_K, *nr, 0, b.len() as u8));
                    out.extend_from_slice(b);
                }
            }
        }
        out.push(deny());
        return;
    }
    let mid = rules.len() / 2;
    // nr >= pivot: fall to the `ja` that leads to the right half; else skip it.
    out.push(jump(JGE_K, rules[mid].0, 0, 1));
    let ja = out.len();
    out.push(stmt(JA, 0));
    emit(out, &rules[..mid]);
    out[ja].k = (out.len() - ja - 1) as u32;
    emit(out, &rules[mid..]);
}

/// The filter for a container with capabilities `cap_mask`.
pub fn filter(cap_mask: u64) -> Vec<Insn> {
    let mut out = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        deny(),
        stmt(LD_W_ABS, OFF_NR),
        jump(JGE_K, X32_BIT, 0, 1),
        deny(),
    ];
    emit(&mut out, &rules(cap_mask));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the instructions the filter uses.
    fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            match i.code {
                LD_W_ABS => acc = u32::from_le_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
                JEQ_K | JGE_K | JSET_K => {
                    let t = match i.code {
                        JEQ_K => acc == i.k,
                        JGE_K => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += if t { i.jt as usize } else { i.jf as usize };
                }
                JA => pc += i.k as usize,
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
            pc += 1;
        }
    }

    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;

    #[test]
    fn allows_and_denies_like_docker() {
        let default = caps::mask_of(caps::DOCKER_DEFAULT);
        let p = filter(default);
        let x = |nr, args| run(&p, AUDIT_ARCH_X86_64, nr, args);
        let z = [0u64; 6];
        for (name, nr) in ALLOW {
            assert_eq!(x(*nr, z), RET_ALLOW, "{name} should be allowed");
        }
        // Not allowed without their capabilities.
        for nr in [
            165, /* mount */
            272, /* unshare */
            308, /* setns */
            169, /* reboot */
            246, /* kexec_load */
            500,
        ] {
            assert_eq!(x(nr, z), EPERM, "{nr}");
        }
        assert_eq!(x(161 /* chroot, CAP_SYS_CHROOT is default */, z), RET_ALLOW);
        assert_eq!(x(NR_CLONE3, z), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(x(NR_CLONE, [0x11 /* SIGCHLD */, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x(NR_CLONE, [0x2000_0000 /* CLONE_NEWPID */ | 0x11, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(x(NR_SOCKET, [2, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x(NR_SOCKET, [40, 1, 0, 0, 0, 0]), EPERM);
        assert_eq!(x(NR_PERSONALITY, [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x(NR_PERSONALITY, [0x8, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(x(NR_PERSONALITY, [0x1, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(x(X32_BIT, z), EPERM);
        assert_eq!(run(&p, 0x4000_0003 /* i386 */, 3, z), EPERM);
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let p = filter(caps::mask_of(caps::DOCKER_DEFAULT) | (1 << 21) /* SYS_ADMIN */);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, 165, [0; 6]), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, NR_CLONE, [0x2000_0000, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, NR_CLONE3, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn every_syscall_number_gets_a_verdict_quickly() {
        let p = filter(caps::mask_of(caps::DOCKER_DEFAULT));
        assert!(p.len() < 1000, "{} instructions", p.len());
        for nr in 0..1024 {
            let r = run(&p, AUDIT_ARCH_X86_64, nr, [0; 6]);
            assert!(r == RET_ALLOW || r & 0xffff_0000 == RET_ERRNO, "{nr}: {r:#x}");
        }
    }
}
