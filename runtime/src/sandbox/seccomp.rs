//! docker's default seccomp profile, compiled to classic BPF for a container.
//!
//! The profile is moby's `profiles/seccomp/default.json`, kept verbatim in
//! `seccomp/default.json` (docker 26.1.5; `seccomp/README.md` says where each data file
//! comes from). At build time `seccomp/generate.rs` (run by `build.rs`) resolves its syscall
//! names with `seccomp/syscalls.tsv` and writes its rules as statics; [`compile`] evaluates
//! them for a container the way docker does and emits the filter runc would load:
//!
//! - A rule is dropped if any of its `excludes` holds (the architecture is `amd64`, the
//!   container holds one of the capabilities, the kernel is at least `minKernel`) and kept
//!   only if all of its `includes` hold (`amd64` is listed, every capability is held, the
//!   kernel is at least `minKernel`). Capabilities are the container's bounding set, the
//!   kernel version is `uname -r`'s "major.minor" (docker's `kernelGreaterEqualThan`).
//! - The filter covers the three ABIs of an x86_64 kernel, as docker's `archMap` asks
//!   (SCMP_ARCH_X86_64 with SCMP_ARCH_X86 and SCMP_ARCH_X32): x86_64, i386 (32-bit programs,
//!   `int $0x80`) and x32 (syscall numbers with bit 30 set). Every name is resolved for each
//!   ABI and skipped where that ABI has no such syscall, as libseccomp does. Arguments are
//!   compared on 64 bits for x86_64 and on their low 32 bits for i386 and x32 (libseccomp
//!   treats both as 32-bit ABIs). Another architecture kills the thread (libseccomp's
//!   default bad-architecture action; an x86_64 kernel has no other).
//! - A syscall no rule allows fails with the default action, ERRNO(`defaultErrnoRet`, EPERM);
//!   but one numbered above the highest number the applying rules name for its ABI fails
//!   with ENOSYS (runc's stub), so libc falls back as on a kernel that lacks it. Likewise
//!   `clone3` without CAP_SYS_ADMIN, by the profile's own rule.
//!
//! Within each ABI the syscall number is found by binary search over the ranges of numbers
//! that get the same verdict: about nine comparisons per syscall.
//!
//! The tables are x86's, so [`filter`] refuses with [`SeccompError::UnsupportedArch`] on a
//! machine of another architecture.

use crate::error::{RuntimeError, Step};
use crate::sandbox::capabilities as caps;

pub type Insn = libc::sock_filter;

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;

// Filter return values (linux/seccomp.h).
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// BPF_MAXINSNS: the kernel refuses longer filters.
const MAX_INSNS: usize = 4096;
/// docker's name for the architecture in the profile's `arches` (Go's GOARCH, mapped).
const NATIVE_ARCH: &str = "amd64";

// struct seccomp_data: nr, arch, instruction_pointer, args[6] (little-endian u64s).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}
const fn arg_hi(i: u8) -> u32 {
    arg_lo(i) + 4
}

/// The x86 ABIs the filter covers, in the order of [`BY_NUMBER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    pub const ALL: [Abi; 3] = [Abi::X86_64, Abi::X32, Abi::I386];

    fn index(self) -> usize {
        self as usize
    }

    /// x32 numbers are x86_64-style numbers with bit 30 set.
    fn base(self) -> u32 {
        if self == Abi::X32 {
            X32_SYSCALL_BIT
        } else {
            0
        }
    }

    /// Whether arguments are compared on 64 bits (libseccomp: only for x86_64).
    fn wide(self) -> bool {
        self == Abi::X86_64
    }
}

/// What a rule does to a matching syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Allow,
    Errno(u16),
}

impl Ret {
    fn bpf(self) -> u32 {
        match self {
            Ret::Allow => RET_ALLOW,
            Ret::Errno(e) => RET_ERRNO | u32::from(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    /// `arg & value == value_two`.
    MaskedEq,
}

/// A condition on one argument, as in docker's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arg {
    index: u8,
    op: Op,
    value: u64,
    value_two: u64,
}

/// A rule's `includes` or `excludes`.
#[derive(Debug)]
struct When {
    caps: &'static [&'static str],
    arches: &'static [&'static str],
    min_kernel: Option<KernelVersion>,
}

/// One of the profile's `syscalls` entries (in its order); [`BY_NUMBER`] says which
/// syscalls each names.
#[derive(Debug)]
struct Rule {
    action: Ret,
    /// Empty: the rule matches whatever the arguments. Otherwise it matches when all the
    /// conditions of one alternative hold.
    alternatives: &'static [&'static [Arg]],
    includes: When,
    excludes: When,
}

#[derive(Debug)]
struct Profile {
    default: Ret,
    rules: &'static [Rule],
}

/// The build-time half, here for its tests.
#[cfg(test)]
#[allow(dead_code)]
#[path = "seccomp/generate.rs"]
mod generate;

mod generated {
    use super::{Arg, KernelVersion, Op, Profile, Ret, Rule, When};
    include!(concat!(env!("OUT_DIR"), "/seccomp_profile.rs"));
}
use generated::{BY_NUMBER, PROFILE};

/// The kernel's "major.minor", which the profile's `minKernel` conditions compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Like docker's `parseRelease`: "%d.%d" at the start of the release, so
    /// 3.12.25-gentoo and 3.12-1-amd64 are both 3.12.
    pub fn parse(release: &str) -> Result<KernelVersion, SeccompError> {
        let bad = || SeccompError::KernelVersion(release.to_string());
        let (major, rest) = release.split_once('.').ok_or_else(bad)?;
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        Ok(KernelVersion {
            major: major.parse().map_err(|_| bad())?,
            minor: rest[..digits].parse().map_err(|_| bad())?,
        })
    }

    /// The running kernel's.
    pub fn running() -> Result<KernelVersion, SeccompError> {
        KernelVersion::parse(&rustix::system::uname().release().to_string_lossy())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("docker's seccomp profile is compiled for x86_64 only; this machine is {0}")]
    UnsupportedArch(String),
    #[error("kernel release {0:?} does not start with major.minor")]
    KernelVersion(String),
    #[error("the seccomp profile gives {abi:?} syscall {nr} two different actions")]
    Conflict { abi: Abi, nr: u32 },
    #[error("the seccomp filter would have {0} instructions; the kernel takes at most 4096")]
    TooLong(usize),
    #[error("a seccomp rule has too many argument conditions for one BPF jump")]
    TooManyConditions,
}

impl From<SeccompError> for std::io::Error {
    fn from(e: SeccompError) -> Self {
        std::io::Error::other(e)
    }
}

impl<T> Step<T> for Result<T, SeccompError> {
    fn step(self, what: impl FnOnce() -> String) -> crate::Result<T> {
        self.map_err(|e| RuntimeError::io(what(), e))
    }
}

/// Refuses an architecture the syscall tables were not made for.
pub fn check_arch(arch: &str) -> Result<(), SeccompError> {
    if arch == "x86_64" {
        Ok(())
    } else {
        Err(SeccompError::UnsupportedArch(arch.to_string()))
    }
}

/// docker's filter for a container with capabilities `caps` on this machine (its
/// architecture and kernel).
pub fn filter(caps: u64) -> Result<Vec<Insn>, SeccompError> {
    check_arch(std::env::consts::ARCH)?;
    compile(caps, KernelVersion::running()?)
}

/// docker's filter for a container holding `caps` (its bounding set) on kernel `kernel`.
pub fn compile(caps: u64, kernel: KernelVersion) -> Result<Vec<Insn>, SeccompError> {
    // Rule sets, one bit per rule: those that apply, and those of them in the filter
    // (runc leaves out a rule whose action is the default one, but its syscalls still
    // count for the ENOSYS stub).
    let (mut applied, mut kept) = (0u64, 0u64);
    for (i, rule) in PROFILE.rules.iter().enumerate() {
        if applies(rule, caps, kernel) {
            applied |= 1 << i;
            if rule.action != PROFILE.default {
                kept |= 1 << i;
            }
        }
    }
    // x86_64 and x32 share AUDIT_ARCH_X86_64 and one number space: x32's starts at bit 30.
    let mut x86_64 = Vec::with_capacity(256);
    ranges(&mut x86_64, Abi::X86_64, applied, kept)?;
    ranges(&mut x86_64, Abi::X32, applied, kept)?;
    let mut i386 = Vec::with_capacity(128);
    ranges(&mut i386, Abi::I386, applied, kept)?;
    emit(&x86_64, &i386)
}

/// docker's `setupSeccomp`: excludes first, then includes.
fn applies(rule: &Rule, caps: u64, kernel: KernelVersion) -> bool {
    let ex = &rule.excludes;
    let inc = &rule.includes;
    let excluded = ex.arches.contains(&NATIVE_ARCH)
        || ex.caps.iter().any(|c| holds(caps, c))
        || ex.min_kernel.is_some_and(|m| kernel >= m);
    let included = (inc.arches.is_empty() || inc.arches.contains(&NATIVE_ARCH))
        && inc.caps.iter().all(|c| holds(caps, c))
        && inc.min_kernel.is_none_or(|m| kernel >= m);
    !excluded && included
}

/// docker compares the names literally with the bounding set's (`CAP_SYS_ADMIN`).
fn holds(caps: u64, name: &str) -> bool {
    name.strip_prefix("CAP_")
        .and_then(|n| caps::CAPS.iter().find(|(c, _)| *c == n))
        .is_some_and(|(_, bit)| caps & (1 << bit) != 0)
}

/// The rules in a set, in the profile's order.
fn rules_in(mut set: u64) -> impl Iterator<Item = &'static Rule> {
    std::iter::from_fn(move || {
        let i = set.trailing_zeros() as usize;
        set &= set.wrapping_sub(1);
        PROFILE.rules.get(i)
    })
}

/// What the filter does for a range of syscall numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Ret(u32),
    /// The rules (a set, all with conditions): their action when one of their
    /// alternatives holds, else the default; whether arguments are 64-bit.
    When(u64, Ret, bool),
}

/// What the rules in `set` do to one syscall. libseccomp: rules for one syscall add up (one
/// without conditions covers every argument); two different actions are refused.
fn verdict(set: u64, abi: Abi, nr: u32) -> Result<Leaf, SeccompError> {
    let mut rules = rules_in(set);
    let Some(first) = rules.next() else { return Ok(Leaf::Ret(PROFILE.default.bpf())) };
    let mut always = first.alternatives.is_empty();
    for r in rules {
        if r.action != first.action {
            return Err(SeccompError::Conflict { abi, nr: abi.base() + nr });
        }
        always |= r.alternatives.is_empty();
    }
    Ok(if always { Leaf::Ret(first.action.bpf()) } else { Leaf::When(set, first.action, abi.wide()) })
}

/// Appends the ranges of `abi`'s numbers, from its first one: the numbers the profile
/// names get their kept rules' verdict, the others the default, and those above the last
/// one an applying rule names ENOSYS.
fn ranges(out: &mut Vec<(u32, Leaf)>, abi: Abi, applied: u64, kept: u64) -> Result<(), SeccompError> {
    let push = |out: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf| {
        if out.last().is_none_or(|l| l.1 != leaf) {
            out.push((start, leaf));
        }
    };
    let (base, table) = (abi.base(), BY_NUMBER[abi.index()]);
    let mut enosys = None;
    for (i, &(start, rules)) in table.iter().enumerate() {
        if rules & applied != 0 {
            // The table ends with a range no rule names.
            enosys = table.get(i + 1).map(|next| next.0);
        }
        push(out, base + start, verdict(rules & kept, abi, start)?);
    }
    if let Some(start) = enosys {
        // No rule that applies names what follows: ENOSYS from `start` on.
        let leaf = Leaf::Ret(RET_ERRNO | libc::ENOSYS as u32);
        match out.last_mut() {
            Some(last) if last.0 == base + start => last.1 = leaf,
            _ => out.push((base + start, leaf)),
        }
    }
    Ok(())
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

fn emit(x86_64: &[(u32, Leaf)], i386: &[(u32, Leaf)]) -> Result<Vec<Insn>, SeccompError> {
    let mut out = Vec::with_capacity(1024);
    out.extend([
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ_K, AUDIT_ARCH_I386, 0, 1),
        stmt(JA, 0), // to the i386 search, set below
        jump(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, RET_KILL_THREAD),
        stmt(LD_W_ABS, OFF_NR),
    ]);
    search(&mut out, x86_64)?;
    out[2].k = (out.len() - 3) as u32;
    out.push(stmt(LD_W_ABS, OFF_NR));
    search(&mut out, i386)?;
    if out.len() > MAX_INSNS {
        return Err(SeccompError::TooLong(out.len()));
    }
    Ok(out)
}

/// A binary search over `ranges` (sorted, the first starting at the lowest number the
/// accumulator can hold here); each leaf returns.
fn search(out: &mut Vec<Insn>, ranges: &[(u32, Leaf)]) -> Result<(), SeccompError> {
    if let [(_, leaf)] = ranges {
        return leaf_code(out, *leaf);
    }
    let mid = ranges.len() / 2;
    // nr >= the middle range's start: over the lower half, to the upper one. A conditional
    // jump reaches 255 instructions: past a longer lower half by a `ja`.
    let jge = out.len();
    out.push(jump(JGE_K, ranges[mid].0, 0, 1));
    out.push(stmt(JA, 0));
    search(out, &ranges[..mid])?;
    let lower = out.len() - jge - 2;
    match u8::try_from(lower) {
        Ok(n) => {
            // The lower half only jumps within itself, so it can move up by one.
            out.remove(jge + 1);
            out[jge].jt = n;
            out[jge].jf = 0;
        }
        Err(_) => out[jge + 1].k = lower as u32,
    }
    search(out, &ranges[mid..])
}

fn leaf_code(out: &mut Vec<Insn>, leaf: Leaf) -> Result<(), SeccompError> {
    let (rules, action, wide) = match leaf {
        Leaf::Ret(k) => {
            out.push(stmt(RET_K, k));
            return Ok(());
        }
        Leaf::When(rules, action, wide) => (rules, action, wide),
    };
    // Jumps to the next alternative when a condition fails: (index, on true).
    let mut fail = Vec::new();
    for alt in rules_in(rules).flat_map(|r| r.alternatives) {
        fail.clear();
        for a in *alt {
            condition(out, a, wide, &mut fail);
        }
        out.push(stmt(RET_K, action.bpf()));
        let next = out.len();
        for &(i, on_true) in &fail {
            let off = u8::try_from(next - i - 1).map_err(|_| SeccompError::TooManyConditions)?;
            if on_true {
                out[i].jt = off;
            } else {
                out[i].jf = off;
            }
        }
    }
    out.push(stmt(RET_K, PROFILE.default.bpf()));
    Ok(())
}

/// Falls through when `a` holds; the jumps recorded in `fail` leave when it does not.
/// 64-bit values are compared as their high then low halves, as libseccomp does.
fn condition(out: &mut Vec<Insn>, a: &Arg, wide: bool, fail: &mut Vec<(usize, bool)>) {
    // Each half: its offset, its bits of `value` and of `value_two`.
    let both = [
        (arg_hi(a.index), (a.value >> 32) as u32, (a.value_two >> 32) as u32),
        (arg_lo(a.index), a.value as u32, a.value_two as u32),
    ];
    let halves = if wide { &both[..] } else { &both[1..] };
    match a.op {
        Op::Eq | Op::MaskedEq => {
            for &(off, v, w) in halves {
                out.push(stmt(LD_W_ABS, off));
                let k = if a.op == Op::MaskedEq {
                    out.push(stmt(ALU_AND_K, v));
                    w
                } else {
                    v
                };
                fail.push((out.len(), false));
                out.push(jump(JEQ_K, k, 0, 0));
            }
        }
        Op::Ne => {
            if wide {
                // The high halves differ: the condition holds, past the low half's test.
                out.push(stmt(LD_W_ABS, both[0].0));
                out.push(jump(JEQ_K, both[0].1, 0, 2));
            }
            out.push(stmt(LD_W_ABS, both[1].0));
            fail.push((out.len(), true));
            out.push(jump(JEQ_K, both[1].1, 0, 0));
        }
    }
}

#[cfg(test)]
mod tests;
