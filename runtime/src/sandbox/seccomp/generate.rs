//! The build-time half of the seccomp module, compiled into `runtime/build.rs` (it is not
//! part of the library). It reads docker's profile (`default.json`, verbatim from moby) and
//! the x86 syscall numbers (`syscalls.tsv`), refuses anything in the profile that
//! `seccomp.rs` does not implement, resolves every syscall name for each of the three x86
//! ABIs, and writes the profile's rules as Rust statics (`$OUT_DIR/seccomp_profile.rs`).
//! `seccomp.rs` evaluates them for a container's capabilities and kernel and emits the BPF.
//! Nothing is decided here that depends on the container: that stays at run time, where
//! docker decides it too.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let dir = Path::new(&manifest).join("src/sandbox/seccomp");
    for f in ["default.json", "syscalls.tsv", "generate.rs"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    let code = read(&dir.join("default.json")).and_then(|profile| {
        let numbers = syscall_numbers(&read(&dir.join("syscalls.tsv"))?)?;
        let profile: Value = serde_json::from_str(&profile).map_err(|e| format!("default.json: {e}"))?;
        render(&profile, &numbers).map_err(|e| format!("default.json: {e}"))
    });
    match code {
        Ok(code) => {
            if let Err(e) = std::fs::write(Path::new(&out).join("seccomp_profile.rs"), code) {
                eprintln!("error: writing seccomp_profile.rs: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("error: seccomp profile: {e}");
            std::process::exit(1);
        }
    }
}

fn read(p: &Path) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// name → number per ABI in the order of `Syscall::nr` in seccomp.rs (x86_64, x32 with its
/// bit, i386), from `syscalls.tsv` (columns x86_64, i386, x32).
pub fn syscall_numbers(tsv: &str) -> Result<BTreeMap<String, [Option<u32>; 3]>, String> {
    let mut lines = tsv.lines().enumerate().filter(|(_, l)| !l.starts_with('#'));
    match lines.next() {
        Some((_, h)) if h.split('\t').collect::<Vec<_>>() == ["name", "x86_64", "i386", "x32"] => {}
        _ => return Err("syscalls.tsv: the header must be name, x86_64, i386, x32".into()),
    }
    let mut map = BTreeMap::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let bad = || format!("syscalls.tsv:{}: {line:?}", i + 1);
        if f.len() != 4 {
            return Err(bad());
        }
        let num = |s: &str| -> Result<Option<u32>, String> {
            if s == "-" {
                Ok(None)
            } else {
                s.parse::<u32>().map(Some).map_err(|_| bad())
            }
        };
        let (x86_64, i386, x32) = (num(f[1])?, num(f[2])?, num(f[3])?);
        if x32.is_some_and(|n| n >= X32_SYSCALL_BIT) || map.contains_key(f[0]) {
            return Err(bad());
        }
        map.insert(f[0].to_string(), [x86_64, x32.map(|n| n | X32_SYSCALL_BIT), i386]);
    }
    Ok(map)
}

fn keys(obj: &Map<String, Value>, what: &str, known: &[&str]) -> Result<(), String> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}: {k:?} is not implemented by rbuild's seccomp compiler")),
        None => Ok(()),
    }
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("{what} must be an object"))
}

/// A list of strings; a missing key or null is empty.
fn strings<'a>(obj: &'a Map<String, Value>, key: &str, what: &str) -> Result<Vec<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => {
            a.iter().map(|v| v.as_str().ok_or_else(|| format!("{what}.{key} must hold strings"))).collect()
        }
        Some(_) => Err(format!("{what}.{key} must be a list")),
    }
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// `SCMP_ACT_*` and its errno as a `Ret` literal (runc: ERRNO without errnoRet is EPERM).
fn action(action: Option<&Value>, errno: Option<&Value>, what: &str) -> Result<String, String> {
    match action.and_then(Value::as_str) {
        Some("SCMP_ACT_ALLOW") if is_empty(errno) => Ok("Ret::Allow".into()),
        Some("SCMP_ACT_ERRNO") => {
            let e = match errno {
                None | Some(Value::Null) => 1,
                Some(v) => v.as_u64().filter(|e| *e <= 0xffff).ok_or_else(|| format!("{what}: bad errnoRet"))?,
            };
            Ok(format!("Ret::Errno({e})"))
        }
        other => {
            Err(format!("{what}: action {:?} is not implemented by rbuild's seccomp compiler", other.unwrap_or("")))
        }
    }
}

/// docker's `KernelVersion`: "major.minor".
fn kernel(v: Option<&Value>, what: &str) -> Result<String, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok("None".into()) };
    let parsed = v.as_str().and_then(|s| {
        let (major, minor) = s.split_once('.')?;
        Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
    });
    let (major, minor) = parsed.ok_or_else(|| format!("{what}.minKernel: {v} is not \"major.minor\""))?;
    Ok(format!("Some(KernelVersion {{ major: {major}, minor: {minor} }})"))
}

fn when(v: Option<&Value>, what: &str) -> Result<String, String> {
    let empty = Map::new();
    let obj = match v {
        None | Some(Value::Null) => &empty,
        Some(v) => object(v, what)?,
    };
    keys(obj, what, &["caps", "arches", "minKernel"])?;
    Ok(format!(
        "When {{ caps: &{:?}, arches: &{:?}, min_kernel: {} }}",
        strings(obj, "caps", what)?,
        strings(obj, "arches", what)?,
        kernel(obj.get("minKernel"), what)?
    ))
}

fn arg(v: &Value, what: &str) -> Result<(u64, String), String> {
    let obj = object(v, what)?;
    keys(obj, what, &["index", "value", "valueTwo", "op"])?;
    let num = |k: &str| obj.get(k).map_or(Some(0), Value::as_u64).ok_or_else(|| format!("{what}.{k} must be a number"));
    let index = num("index")?;
    if index > 5 {
        return Err(format!("{what}: argument index {index} (syscalls have six)"));
    }
    let op = match obj.get("op").and_then(Value::as_str) {
        Some("SCMP_CMP_EQ") => "Op::Eq",
        Some("SCMP_CMP_NE") => "Op::Ne",
        Some("SCMP_CMP_MASKED_EQ") => "Op::MaskedEq",
        other => {
            let other = other.unwrap_or("");
            return Err(format!("{what}: comparison {other:?} is not implemented by rbuild's seccomp compiler"));
        }
    };
    Ok((
        index,
        format!("Arg {{ index: {index}, op: {op}, value: {:#x}, value_two: {:#x} }}", num("value")?, num("valueTwo")?),
    ))
}

pub fn render(profile: &Value, numbers: &BTreeMap<String, [Option<u32>; 3]>) -> Result<String, String> {
    let top = object(profile, "the profile")?;
    let default = check_top(top)?;
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "// @generated by runtime/src/sandbox/seccomp/generate.rs from default.json and syscalls.tsv.")
        .unwrap();
    writeln!(w, "pub(super) static PROFILE: Profile = Profile {{\n    default: {default},\n    rules: &[").unwrap();
    let rules = top.get("syscalls").and_then(Value::as_array).ok_or("no syscalls")?;
    if rules.len() > 64 {
        return Err(format!("{} rules; the compiler's rule sets hold 64", rules.len()));
    }
    // Per ABI: number (x32's without its bit) → the rules that name it, a bit each.
    let mut by_number: [BTreeMap<u32, u64>; 3] = Default::default();
    for (i, r) in rules.iter().enumerate() {
        let names = render_rule(w, i, r)?;
        // A name an ABI lacks is left out there, as libseccomp does.
        for nr in names.iter().filter_map(|n| numbers.get(*n)) {
            for (abi, nr) in nr.iter().enumerate() {
                if let Some(nr) = nr {
                    *by_number[abi].entry(nr & !X32_SYSCALL_BIT).or_default() |= 1 << i;
                }
            }
        }
    }
    writeln!(w, "    ],\n}};").unwrap();
    render_by_number(w, &by_number);
    Ok(out)
}

/// The profile's top level: only what the compiler implements, the x86 architectures the
/// filter covers; returns the default action.
fn check_top(top: &Map<String, Value>) -> Result<String, String> {
    keys(
        top,
        "the profile",
        &[
            "defaultAction",
            "defaultErrnoRet",
            "archMap",
            "architectures",
            "flags",
            "listenerPath",
            "listenerMetadata",
            "syscalls",
        ],
    )?;
    for k in ["architectures", "flags", "listenerPath", "listenerMetadata"] {
        if !is_empty(top.get(k)) {
            return Err(format!("{k:?} is not implemented by rbuild's seccomp compiler"));
        }
    }
    // docker adds the sub-architectures archMap lists for the native one; the filter
    // always covers x86_64, x32 and i386, so the profile must say exactly that.
    let arches = top.get("archMap").and_then(Value::as_array).ok_or("no archMap")?;
    let x86 = arches
        .iter()
        .filter_map(Value::as_object)
        .find(|a| a.get("architecture").and_then(Value::as_str) == Some("SCMP_ARCH_X86_64"))
        .ok_or("archMap has no SCMP_ARCH_X86_64")?;
    let mut sub = strings(x86, "subArchitectures", "archMap")?;
    sub.sort_unstable();
    if sub != ["SCMP_ARCH_X32", "SCMP_ARCH_X86"] {
        return Err(format!("SCMP_ARCH_X86_64's subArchitectures are {sub:?}; the filter covers X86 and X32"));
    }
    action(top.get("defaultAction"), top.get("defaultErrnoRet"), "defaultAction")
}

/// Writes rule `i` of the profile as a `Rule` literal; returns the syscall names it covers.
fn render_rule<'a>(w: &mut String, i: usize, r: &'a Value) -> Result<Vec<&'a str>, String> {
    let what = format!("syscalls[{i}]");
    let obj = object(r, &what)?;
    keys(obj, &what, &["names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"])?;
    let mut names = strings(obj, "names", &what)?;
    if let Some(n) = obj.get("name").and_then(Value::as_str) {
        if !names.is_empty() {
            return Err(format!("{what}: both name and names"));
        }
        names.push(n);
    }
    let args = match obj.get("args") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => {
            a.iter().enumerate().map(|(j, v)| arg(v, &format!("{what}.args[{j}]"))).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(format!("{what}.args must be a list")),
    };
    let alternatives = alternatives(&args);
    writeln!(w, "        Rule {{").unwrap();
    writeln!(w, "            action: {},", action(obj.get("action"), obj.get("errnoRet"), &what)?).unwrap();
    writeln!(w, "            alternatives: &[{}],", alternatives.join(", ")).unwrap();
    writeln!(w, "            includes: {},", when(obj.get("includes"), &format!("{what}.includes"))?).unwrap();
    writeln!(w, "            excludes: {},", when(obj.get("excludes"), &format!("{what}.excludes"))?).unwrap();
    writeln!(w, "        }},").unwrap();
    Ok(names)
}

/// A rule's argument conditions as alternatives. runc: conditions on distinct arguments
/// must all hold (one libseccomp rule); when two name the same argument, each becomes a
/// rule of its own (any may hold).
fn alternatives(args: &[(u64, String)]) -> Vec<String> {
    let mut indexes: Vec<u64> = args.iter().map(|(i, _)| *i).collect();
    indexes.sort_unstable();
    indexes.dedup();
    if args.is_empty() {
        vec![]
    } else if indexes.len() == args.len() {
        vec![format!("&[{}]", args.iter().map(|(_, a)| a.as_str()).collect::<Vec<_>>().join(", "))]
    } else {
        args.iter().map(|(_, a)| format!("&[{a}]")).collect()
    }
}

/// Writes `BY_NUMBER`: per ABI, the ranges of numbers named by the same rules.
fn render_by_number(w: &mut String, by_number: &[BTreeMap<u32, u64>; 3]) {
    writeln!(w, "\n/// Per ABI: from 0 up past the last number any rule names, where the set of rules that").unwrap();
    writeln!(w, "/// name a number changes: (first number, the rules, a bit each).").unwrap();
    writeln!(w, "pub(super) static BY_NUMBER: [&[(u32, u64)]; 3] = [").unwrap();
    for abi in by_number {
        let end = abi.keys().next_back().map_or(0, |last| last + 1);
        let mut ranges: Vec<(u32, u64)> = vec![];
        for nr in 0..=end {
            let rules = abi.get(&nr).copied().unwrap_or(0);
            if ranges.last().is_none_or(|r| r.1 != rules) {
                ranges.push((nr, rules));
            }
        }
        let entries: Vec<String> = ranges.iter().map(|(nr, rules)| format!("({nr}, {rules:#x})")).collect();
        writeln!(w, "    &[{}],", entries.join(", ")).unwrap();
    }
    writeln!(w, "];").unwrap();
}
