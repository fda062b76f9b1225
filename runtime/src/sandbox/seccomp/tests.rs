//! The compiler checked against docker's own filters (testdata/, dumped from docker 26.1.5),
//! the profile, the kernel's syscall tables and a probe run under the filter.

use super::*;
use serde_json::Value;
use std::collections::BTreeMap;

const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;
const KERNEL: KernelVersion = KernelVersion { major: 6, minor: 18 };
const SYS_ADMIN: u64 = 1 << 21;
const SYS_PTRACE: u64 = 1 << 19;
const CLONE_NEWNS: u64 = 0x20000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const SIGCHLD: u64 = 17;

fn default_caps() -> u64 {
    caps::mask_of(caps::DOCKER_DEFAULT)
}

fn all_caps() -> u64 {
    caps::CAPS.iter().fold(0, |m, (_, c)| m | 1 << c)
}

/// A classic-BPF interpreter for seccomp programs (every instruction libseccomp and
/// runc emit, and ours). Returns the filter's verdict and the instructions it ran.
fn run_counted(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut pc, mut a, mut x, mut mem, mut steps) = (0usize, 0u32, 0u32, [0u32; 16], 0);
    loop {
        let i = prog[pc];
        pc += 1;
        steps += 1;
        let src = if i.code & 0x08 != 0 { x } else { i.k };
        match i.code & 0x07 {
            0x00 => match i.code {
                0x20 => a = u32::from_le_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap()),
                0x00 => a = i.k,
                0x60 => a = mem[i.k as usize],
                c => panic!("ld {c:#x}"),
            },
            0x01 => match i.code {
                0x01 => x = i.k,
                0x61 => x = mem[i.k as usize],
                c => panic!("ldx {c:#x}"),
            },
            0x02 => mem[i.k as usize] = a,
            0x03 => mem[i.k as usize] = x,
            0x04 => {
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x40 => a | src,
                    0x50 => a & src,
                    0xa0 => a ^ src,
                    c => panic!("alu {c:#x}"),
                }
            }
            0x05 => {
                let taken = match i.code & 0xf0 {
                    0x00 => {
                        pc += i.k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    c => panic!("jmp {c:#x}"),
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            0x06 => return (if i.code & 0x10 != 0 { a } else { i.k }, steps),
            _ if i.code == 0x07 => x = a,
            _ => a = x,
        }
    }
}

fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run_counted(prog, arch, nr, args).0
}

fn arg0(a: u64) -> [u64; 6] {
    [a, 0, 0, 0, 0, 0]
}

/// Where each ABI's numbers are: (ABI, AUDIT_ARCH, first number).
const SPACES: [(Abi, u32, u32); 3] = [
    (Abi::X86_64, AUDIT_ARCH_X86_64, 0),
    (Abi::X32, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT),
    (Abi::I386, AUDIT_ARCH_I386, 0),
];

/// Arguments that tell the profile's conditions apart: its values, their neighbours,
/// values with high bits (which only x86_64 compares), the namespace flags.
const PROBES: [u64; 16] = [
    0,
    1,
    8,
    40,
    41,
    0x20000,
    0x20008,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0028,
    0xffff_ffff_ffff_ffff,
    SIGCHLD,
    SIGCHLD | CLONE_NEWNS,
    SIGCHLD | CLONE_NEWUSER,
    0x7e02_0000,
];

/// The filters docker 26.1.5 loaded into containers (see README.md here), with the
/// capabilities each container had.
fn docker_filters() -> Vec<(&'static str, u64, Vec<Insn>)> {
    let load = |bytes: &[u8]| -> Vec<Insn> {
        bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    };
    vec![
        ("default", default_caps(), load(include_bytes!("testdata/docker-26.1.5-default.bpf"))),
        ("--cap-drop ALL", 0, load(include_bytes!("testdata/docker-26.1.5-cap-drop-all.bpf"))),
        (
            "--cap-add SYS_ADMIN",
            default_caps() | SYS_ADMIN,
            load(include_bytes!("testdata/docker-26.1.5-cap-add-sys-admin.bpf")),
        ),
        (
            "--cap-add SYS_PTRACE",
            default_caps() | SYS_PTRACE,
            load(include_bytes!("testdata/docker-26.1.5-cap-add-sys-ptrace.bpf")),
        ),
        ("--cap-add ALL", all_caps(), load(include_bytes!("testdata/docker-26.1.5-cap-add-all.bpf"))),
    ]
}

#[test]
fn same_verdict_as_docker_26_for_every_syscall_and_argument() {
    let mut diffs = vec![];
    for (what, caps, docker) in docker_filters() {
        let ours = compile(caps, KERNEL).unwrap();
        for (abi, arch, base) in SPACES {
            let numbers = (0..1100).map(|n| base + n).chain([base | 0x3fff_ffff, 0x7fff_ffff, 0xffff_ffff]);
            for nr in numbers {
                for index in 0..2 {
                    for value in PROBES {
                        let mut args = [0; 6];
                        args[index] = value;
                        let (d, o) = (run(&docker, arch, nr, args), run(&ours, arch, nr, args));
                        if d != o {
                            diffs.push(format!(
                                "{what}, {abi:?} {nr:#x} arg{index}={value:#x}: docker {d:#x}, ours {o:#x}"
                            ));
                        }
                    }
                }
            }
        }
        // An architecture the filter does not cover (aarch64).
        assert_eq!(run(&ours, 0xc000_00b7, 1, [0; 6]), run(&docker, 0xc000_00b7, 1, [0; 6]));
    }
    assert!(diffs.is_empty(), "{} differences, the first: {:#?}", diffs.len(), &diffs[..diffs.len().min(20)]);
}

/// syscalls.tsv read afresh: name → number per ABI (x32's with its bit).
fn tsv() -> BTreeMap<String, [Option<u32>; 3]> {
    let mut m = BTreeMap::new();
    for line in include_str!("syscalls.tsv").lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let n = |s: &str| s.parse::<u32>().ok();
        m.insert(f[0].to_string(), [n(f[1]), n(f[3]).map(|n| n | X32_SYSCALL_BIT), n(f[2])]);
    }
    m
}

/// The kept rules that name one syscall: (BPF return value, docker's `args`).
type Kept = Vec<(u32, Vec<Value>)>;

/// docker's semantics, straight from default.json: the verdict for one syscall.
struct Model {
    /// Per ABI: number → its rules.
    rules: [BTreeMap<u32, Kept>; 3],
    last: [u32; 3],
}

impl Model {
    fn new(caps: u64, kernel: KernelVersion) -> Model {
        let profile: Value = serde_json::from_str(include_str!("default.json")).unwrap();
        let numbers = tsv();
        let held = |c: &Value| {
            let c = c.as_str().unwrap();
            caps::CAPS.iter().any(|(n, bit)| format!("CAP_{n}") == c && caps & (1 << bit) != 0)
        };
        let list = |w: &Value, k: &str| w.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        let min =
            |w: &Value| w.get("minKernel").and_then(Value::as_str).map(|s| KernelVersion::parse(s).unwrap() <= kernel);
        let mut model = Model { rules: Default::default(), last: [0; 3] };
        for r in profile["syscalls"].as_array().unwrap() {
            let (ex, inc) = (&r["excludes"], &r["includes"]);
            if list(ex, "arches").iter().any(|a| a == "amd64")
                || list(ex, "caps").iter().any(held)
                || min(ex) == Some(true)
            {
                continue;
            }
            let arches = list(inc, "arches");
            if (!arches.is_empty() && !arches.iter().any(|a| a == "amd64"))
                || !list(inc, "caps").iter().all(held)
                || min(inc) == Some(false)
            {
                continue;
            }
            let action = match r["action"].as_str().unwrap() {
                "SCMP_ACT_ALLOW" => RET_ALLOW,
                "SCMP_ACT_ERRNO" => RET_ERRNO | r.get("errnoRet").and_then(Value::as_u64).unwrap_or(1) as u32,
                a => panic!("{a}"),
            };
            let args = r.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
            for name in r["names"].as_array().unwrap() {
                let Some(nrs) = numbers.get(name.as_str().unwrap()) else { continue };
                for abi in Abi::ALL {
                    if let Some(nr) = nrs[abi as usize] {
                        model.last[abi as usize] = model.last[abi as usize].max(nr);
                        model.rules[abi as usize].entry(nr).or_default().push((action, args.clone()));
                    }
                }
            }
        }
        model
    }

    fn verdict(&self, abi: Abi, nr: u32, args: [u64; 6]) -> u32 {
        if nr > self.last[abi as usize] {
            return ENOSYS;
        }
        let Some(rules) = self.rules[abi as usize].get(&nr) else { return EPERM };
        let holds = |c: &Value| {
            let mut v = args[c["index"].as_u64().unwrap() as usize];
            if abi != Abi::X86_64 {
                v &= 0xffff_ffff;
            }
            let value = c["value"].as_u64().unwrap();
            match c["op"].as_str().unwrap() {
                "SCMP_CMP_EQ" => v == value,
                "SCMP_CMP_NE" => v != value,
                "SCMP_CMP_MASKED_EQ" => v & value == c.get("valueTwo").and_then(Value::as_u64).unwrap_or(0),
                op => panic!("{op}"),
            }
        };
        rules.iter().find(|(_, conds)| conds.iter().all(holds)).map_or(EPERM, |(action, _)| *action)
    }

    /// Arguments that satisfy, then break, each condition a syscall's rules have.
    fn args_for(&self, abi: Abi, nr: u32) -> Vec<[u64; 6]> {
        let mut out = vec![[0; 6]];
        for (_, conds) in self.rules[abi as usize].get(&nr).into_iter().flatten() {
            for c in conds {
                let (i, v) = (c["index"].as_u64().unwrap() as usize, c["value"].as_u64().unwrap());
                let (good, bad) = match c["op"].as_str().unwrap() {
                    "SCMP_CMP_EQ" => (v, v + 1),
                    "SCMP_CMP_NE" => (v + 1, v),
                    _ => {
                        let want = c.get("valueTwo").and_then(Value::as_u64).unwrap_or(0);
                        (want, want ^ (v & v.wrapping_neg()))
                    }
                };
                for a in [good, bad] {
                    let mut args = [0; 6];
                    args[i] = a;
                    out.push(args);
                }
            }
        }
        out
    }
}

/// Capability sets: docker's default, none, all, and each capability alone and added
/// to the default set.
fn cap_sets() -> Vec<u64> {
    let mut sets = vec![default_caps(), 0, all_caps()];
    for (_, c) in caps::CAPS {
        sets.push(1 << c);
        sets.push(default_caps() | 1 << c);
    }
    sets
}

#[test]
fn every_entry_of_the_profile_gets_its_action() {
    let table = tsv();
    let names: Vec<u32> = (0..=600).collect();
    for kernel in [KernelVersion { major: 4, minor: 7 }, KERNEL] {
        for caps in cap_sets() {
            let model = Model::new(caps, kernel);
            let prog = compile(caps, kernel).unwrap();
            for (abi, arch, base) in SPACES {
                // Every number: those the profile names get their rules' verdict for
                // arguments that meet and that break their conditions; the others
                // EPERM, or ENOSYS above the last one named.
                let known: Vec<u32> = table.values().filter_map(|n| n[abi as usize]).collect();
                for nr in names.iter().map(|n| base + n).chain(known) {
                    for args in model.args_for(abi, nr) {
                        let (want, got) = (model.verdict(abi, nr, args), run(&prog, arch, nr, args));
                        assert_eq!(got, want, "caps {caps:#x}, kernel {kernel:?}, {abi:?} {nr:#x} {args:x?}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_generated_tables_hold_the_profiles_names_by_number() {
    let (profile, table) = (profile(), tsv());
    let rules = profile["syscalls"].as_array().unwrap();
    assert_eq!(PROFILE.rules.len(), rules.len());
    let mut want: [BTreeMap<u32, u64>; 3] = Default::default();
    let mut unresolved = vec![];
    for (i, r) in rules.iter().enumerate() {
        for name in r["names"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            let nrs = table.get(name).copied().unwrap_or_default();
            if nrs == [None; 3] {
                unresolved.push(name);
            }
            for abi in Abi::ALL {
                if let Some(nr) = nrs[abi as usize] {
                    *want[abi as usize].entry(nr - abi.base()).or_default() |= 1 << i;
                }
            }
        }
    }
    for abi in Abi::ALL {
        // BY_NUMBER's ranges, number by number, up to the range after the last one.
        let ranges = BY_NUMBER[abi as usize];
        let mut got = BTreeMap::new();
        for (i, &(start, rules)) in ranges.iter().enumerate() {
            let end = ranges.get(i + 1).map_or(start + 1, |r| r.0);
            got.extend((start..end).filter(|_| rules != 0).map(|nr| (nr, rules)));
        }
        assert_eq!(got, want[abi as usize], "{abi:?}");
        let last = ranges.last().unwrap();
        assert_eq!(*last, (want[abi as usize].keys().next_back().unwrap() + 1, 0), "{abi:?}");
    }
    unresolved.sort_unstable();
    unresolved.dedup();
    // Only other architectures' own syscalls (and the two socketcall-only calls) are
    // missing on all three x86 ABIs: a name lost from the table would show here.
    assert_eq!(
        unresolved,
        [
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "breakpoint",
            "cacheflush",
            "recv",
            "riscv_flush_icache",
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
            "send",
            "set_tls",
            "swapcontext",
            "sync_file_range2"
        ]
    );
}

/// The kernel headers on this machine (linux-libc-dev, older than syscalls.tsv's) agree
/// with every number they have.
#[test]
fn syscalls_tsv_agrees_with_the_kernel_headers_here() {
    let table = tsv();
    let dir = "/usr/include/x86_64-linux-gnu/asm";
    for (file, abi) in [("unistd_64.h", Abi::X86_64), ("unistd_x32.h", Abi::X32), ("unistd_32.h", Abi::I386)] {
        let path = format!("{dir}/{file}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (linux-libc-dev)"));
        let mut n = 0;
        for line in text.lines() {
            let Some(def) = line.strip_prefix("#define __NR_") else { continue };
            let (name, value) = def.split_once(' ').unwrap();
            let value = value.trim_start_matches("(__X32_SYSCALL_BIT + ").trim_end_matches(')');
            let mut nr: u32 = value.parse().unwrap();
            if abi == Abi::X32 {
                nr |= X32_SYSCALL_BIT;
            }
            assert_eq!(table.get(name).and_then(|n| n[abi as usize]), Some(nr), "{file}: {name}");
            n += 1;
        }
        assert!(n > 300, "{path}: only {n} syscalls");
    }
}

#[test]
fn docker_defaults_in_words() {
    let p = compile(default_caps(), KERNEL).unwrap();
    let x = |nr: u32, args: [u64; 6]| run(&p, AUDIT_ARCH_X86_64, nr, args);
    let i386 = |nr: u32, args: [u64; 6]| run(&p, AUDIT_ARCH_I386, nr, args);
    assert_eq!(x(libc::SYS_getpid as u32, [0; 6]), RET_ALLOW);
    assert_eq!(x(libc::SYS_chroot as u32, [0; 6]), RET_ALLOW, "CAP_SYS_CHROOT is a default");
    assert_eq!(x(libc::SYS_ptrace as u32, [0; 6]), RET_ALLOW, "kernel >= 4.8");
    assert_eq!(x(libc::SYS_personality as u32, arg0(0xffff_ffff)), RET_ALLOW);
    assert_eq!(x(libc::SYS_personality as u32, arg0(0x8)), RET_ALLOW);
    assert_eq!(x(libc::SYS_personality as u32, arg0(0x40_0000)), EPERM);
    assert_eq!(x(libc::SYS_socket as u32, arg0(libc::AF_INET as u64)), RET_ALLOW);
    assert_eq!(x(libc::SYS_socket as u32, arg0(libc::AF_VSOCK as u64)), EPERM);
    assert_eq!(x(libc::SYS_clone as u32, arg0(SIGCHLD)), RET_ALLOW);
    assert_eq!(x(libc::SYS_clone as u32, arg0(SIGCHLD | CLONE_NEWUSER)), EPERM);
    assert_eq!(x(libc::SYS_clone3 as u32, [0; 6]), ENOSYS);
    for nr in [libc::SYS_mount, libc::SYS_unshare, libc::SYS_setns, libc::SYS_keyctl, libc::SYS_reboot, libc::SYS_bpf] {
        assert_eq!(x(nr as u32, [0; 6]), EPERM, "{nr}");
    }
    assert_eq!(x(libc::SYS_io_uring_setup as u32, [0; 6]), EPERM, "docker 25+ refuses io_uring");
    assert_eq!(x(500, [0; 6]), ENOSYS, "past the profile's last syscall");
    // 32-bit programs: getpid, socketcall (any call) and mmap2 are allowed, mount is not.
    assert_eq!(i386(20, [0; 6]), RET_ALLOW);
    assert_eq!(i386(102, arg0(1)), RET_ALLOW);
    assert_eq!(i386(192, [0; 6]), RET_ALLOW);
    assert_eq!(i386(21, [0; 6]), EPERM);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, [0; 6]), RET_ALLOW, "x32 getpid");
    assert_eq!(run(&p, 0xc000_00b7, 1, [0; 6]), RET_KILL_THREAD, "aarch64");

    let admin = compile(default_caps() | SYS_ADMIN, KERNEL).unwrap();
    let x = |nr: u32, args: [u64; 6]| run(&admin, AUDIT_ARCH_X86_64, nr, args);
    assert_eq!(x(libc::SYS_mount as u32, [0; 6]), RET_ALLOW);
    assert_eq!(x(libc::SYS_clone as u32, arg0(SIGCHLD | CLONE_NEWUSER)), RET_ALLOW);
    assert_eq!(x(libc::SYS_clone3 as u32, [0; 6]), RET_ALLOW);
}

#[test]
fn ptrace_needs_kernel_4_8_or_the_capability() {
    let ptrace = libc::SYS_ptrace as u32;
    let old = KernelVersion { major: 4, minor: 7 };
    let p = compile(default_caps(), old).unwrap();
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, ptrace, [0; 6]), EPERM);
    let p = compile(default_caps() | SYS_PTRACE, old).unwrap();
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, ptrace, [0; 6]), RET_ALLOW);
    let p = compile(default_caps(), KernelVersion { major: 4, minor: 8 }).unwrap();
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, ptrace, [0; 6]), RET_ALLOW);
}

#[test]
fn kernel_releases_read_like_docker() {
    let v = |s| KernelVersion::parse(s).unwrap();
    assert_eq!(v("6.18.44-fc-v1045"), KernelVersion { major: 6, minor: 18 });
    assert_eq!(v("3.12-1-amd64"), KernelVersion { major: 3, minor: 12 });
    assert_eq!(v("4.8"), KernelVersion { major: 4, minor: 8 });
    assert!(v("4.10") > v("4.8"));
    for bad in ["", "6", "six.1", "6.", "6.x"] {
        let e = KernelVersion::parse(bad).unwrap_err();
        assert!(e.to_string().contains("major.minor"), "{bad}: {e}");
    }
    KernelVersion::running().unwrap();
}

#[test]
fn refuses_other_architectures_with_an_error() {
    check_arch("x86_64").unwrap();
    for arch in ["aarch64", "x86", "riscv64"] {
        let e = check_arch(arch).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("docker's seccomp profile is compiled for x86_64 only; this machine is {arch}")
        );
        let step = Err::<(), _>(e).step(|| "installing the seccomp filter".into()).unwrap_err();
        assert!(step.to_string().starts_with("installing the seccomp filter: docker's"), "{step}");
    }
}

#[test]
fn every_verdict_takes_a_handful_of_instructions() {
    for caps in [default_caps(), all_caps(), 0] {
        let p = compile(caps, KERNEL).unwrap();
        // The kernel JIT-compiles the filter on every install: one conditional jump per
        // search step where it reaches (~640 instructions; docker's ~1000).
        assert!(p.len() < 800, "{} instructions", p.len());
        let mut worst = 0;
        for (_, arch, base) in SPACES {
            for nr in 0..1100 {
                for a in PROBES {
                    worst = worst.max(run_counted(&p, arch, base + nr, arg0(a)).1);
                }
            }
        }
        // A binary search of ~9 levels (a linear one would run hundreds), then at
        // worst personality's five alternatives of four instructions.
        assert!(worst <= 40, "{worst} instructions for one syscall");
    }
}

/// Builds testdata/probe.c (statically, so it runs in any container) into `dir`.
pub(crate) fn build_probe(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("probe");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sandbox/seccomp/testdata/probe.c");
    let cc = std::process::Command::new("cc").args(["-static", "-O2", "-o"]).arg(&out).arg(src).output();
    let cc = cc.expect("cc (gcc) builds the seccomp probe");
    assert!(cc.status.success(), "cc {src}: {}", String::from_utf8_lossy(&cc.stderr));
    out
}

/// Runs `probe` on `calls` (with extra leading arguments); checks each call's errno is
/// one of those expected and returns the Seccomp lines of its /proc/self/status.
pub(crate) fn probe(cmd: &mut std::process::Command, calls: &[(&str, &[i32])]) -> String {
    let out = cmd.arg("--status").args(calls.iter().map(|c| c.0)).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "probe: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    for (call, want) in calls {
        let got = stdout
            .lines()
            .find_map(|l| l.strip_prefix(call).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{call} missing from the probe's output: {stdout}"));
        let got: i32 = got.parse().unwrap();
        assert!(want.contains(&got), "{call}: errno {got}, want one of {want:?}\n{stdout}");
    }
    stdout.lines().filter(|l| l.starts_with("Seccomp")).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_kernel_enforces_the_compiled_filter() {
    use libc::{EINVAL, ENOSYS, EPERM, ESRCH};
    let dir = tempfile::tempdir().unwrap();
    let probe_bin = build_probe(dir.path());
    let file = dir.path().join("filter.bpf");
    let prog = filter(default_caps()).unwrap();
    let bytes: Vec<u8> =
        prog.iter().flat_map(|i| [&i.code.to_le_bytes()[..], &[i.jt, i.jf], &i.k.to_le_bytes()].concat()).collect();
    std::fs::write(&file, bytes).unwrap();
    // The probe runs with every capability (a test runs as root), so EPERM here comes
    // from the filter, and an allowed call shows the kernel's own answer.
    let calls: &[(&str, &[i32])] = &[
        ("64:39", &[0]),                           // getpid
        ("64:272:0", &[EPERM]),                    // unshare(0)
        ("64:165", &[EPERM]),                      // mount(NULL, ...)
        ("64:250:0:0xffffffffffffffff", &[EPERM]), // keyctl(KEYCTL_GET_KEYRING_ID, thread)
        ("64:435", &[ENOSYS]),                     // clone3(NULL, 0)
        ("64:56:0x20200", &[EPERM]),               // clone(CLONE_NEWNS | CLONE_FS)
        ("64:56:0x10000", &[EINVAL]),              // clone(CLONE_THREAD): allowed, then invalid
        ("64:135:0xffffffff", &[0]),               // personality(query)
        ("64:135:0x400000", &[EPERM]),             // personality(READ_IMPLIES_EXEC)
        ("64:41:40:1", &[EPERM]),                  // socket(AF_VSOCK, SOCK_STREAM)
        ("64:41:1:1", &[0]),                       // socket(AF_UNIX, SOCK_STREAM)
        ("64:101:0x7fff", &[ESRCH]),               // ptrace(bogus, pid 0): allowed
        ("64:450", &[EPERM]),                      // set_mempolicy_home_node: CAP_SYS_NICE
        ("64:457", &[ENOSYS]),                     // statmount: past the profile's last syscall
        ("32:20", &[0]),                           // i386 getpid
        ("32:21", &[EPERM]),                       // i386 mount
        ("32:310:0", &[EPERM]),                    // i386 unshare(0)
        ("32:102:0", &[EINVAL]),                   // i386 socketcall(0, NULL): allowed
        ("32:500", &[ENOSYS]),
        ("x32:39", &[0, ENOSYS]), // x32 getpid: allowed (ENOSYS if the kernel has no x32)
        ("x32:165", &[EPERM]),    // x32 mount
    ];
    let mut cmd = std::process::Command::new(&probe_bin);
    cmd.arg("--filter").arg(&file);
    let status = probe(&mut cmd, calls);
    assert_eq!(status, "Seccomp:\t2\nSeccomp_filters:\t1");
}

fn profile() -> Value {
    serde_json::from_str(include_str!("default.json")).unwrap()
}

fn render(p: &Value) -> Result<String, String> {
    generate::render(p, &generate::syscall_numbers(include_str!("syscalls.tsv")).unwrap())
}

#[test]
fn the_generator_refuses_what_the_compiler_does_not_implement() {
    render(&profile()).unwrap();
    type Change = fn(&mut Value);
    let cases: [(&str, Change); 6] = [
        ("\"SCMP_CMP_GT\" is not implemented", |p| p["syscalls"][2]["args"][0]["op"] = "SCMP_CMP_GT".into()),
        ("\"SCMP_ACT_KILL\" is not implemented", |p| p["syscalls"][0]["action"] = "SCMP_ACT_KILL".into()),
        ("\"flags\" is not implemented", |p| p["flags"] = serde_json::json!(["SECCOMP_FILTER_FLAG_LOG"])),
        ("\"priority\" is not implemented", |p| p["syscalls"][0]["priority"] = 1.into()),
        ("subArchitectures", |p| p["archMap"][0]["subArchitectures"] = serde_json::json!(["SCMP_ARCH_X86"])),
        ("minKernel", |p| p["syscalls"][1]["includes"]["minKernel"] = "4".into()),
    ];
    for (want, change) in cases {
        let mut p = profile();
        change(&mut p);
        let e = render(&p).unwrap_err();
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn conditions_on_one_argument_are_alternatives() {
    // runc: two conditions on the same argument become two rules (either may hold);
    // on different arguments, one rule (both must hold).
    let mut p = profile();
    p["syscalls"][2]["args"] = serde_json::json!([
        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
    ]);
    let code = render(&p).unwrap();
    assert!(code.contains("alternatives: &[&[Arg { index: 0, op: Op::Eq, value: 0x1, value_two: 0x0 }], &[Arg { index: 0, op: Op::Eq, value: 0x2, value_two: 0x0 }]]"), "{code}");
    p["syscalls"][2]["args"][1]["index"] = 1.into();
    let code = render(&p).unwrap();
    assert!(code.contains("alternatives: &[&[Arg { index: 0, op: Op::Eq, value: 0x1, value_two: 0x0 }, Arg { index: 1, op: Op::Eq, value: 0x2, value_two: 0x0 }]]"), "{code}");
}

#[test]
fn the_generator_refuses_a_broken_syscall_table() {
    let numbers = |t: &str| generate::syscall_numbers(t).unwrap_err();
    assert!(numbers("name\tx86_64\n").contains("header"));
    assert!(numbers("name\tx86_64\ti386\tx32\nread\t0\t3\n").contains("syscalls.tsv:2"));
    assert!(numbers("name\tx86_64\ti386\tx32\nread\tzero\t3\t0\n").contains("read"));
    assert!(numbers("name\tx86_64\ti386\tx32\nread\t0\t3\t0\nread\t0\t3\t0\n").contains("syscalls.tsv:3"));
}
