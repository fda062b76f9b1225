//! Cgroups, v1 (one hierarchy per controller) or v2 (unified): a directory per container
//! with memory, pids and CPU limits, the freezer, and the list of its processes.

use super::devices::Access;
use super::error::SandboxError;
use super::spec::Limits;
use crate::error::{Result, RuntimeError, Step};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROOT: &str = "/sys/fs/cgroup";
/// v1 controllers we use (each may be absent).
const V1: &[&str] = &["memory", "pids", "cpu", "cpuacct", "freezer", "devices", "blkio", "cpuset"];

#[derive(Debug, Clone)]
pub struct Cgroup {
    /// The directories of this cgroup, one per v1 controller or the single v2 one.
    pub dirs: Vec<(String, PathBuf)>,
    pub v2: bool,
}

/// Looked up once per process (a sandbox's cgroup is looked up several times per step:
/// creating, joining, reading its OOM count, removing it).
pub fn is_v2() -> bool {
    static V2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *V2.get_or_init(|| Path::new(ROOT).join("cgroup.controllers").exists())
}

/// The v1 controllers mounted here, looked up once per process.
fn v1_controllers() -> &'static [&'static str] {
    static FOUND: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| V1.iter().copied().filter(|c| Path::new(ROOT).join(c).join("cgroup.procs").exists()).collect())
}

fn write(p: &Path, v: &str) -> Result<()> {
    fs::write(p, v).step(|| format!("writing {v:?} to {}", p.display()))
}

/// True when the new v1 cpuset at `dir` already has CPUs and memory nodes (its parent's
/// `cgroup.clone_children` gave it them).
fn inherited_cpuset(dir: &Path) -> bool {
    ["cpuset.cpus", "cpuset.mems"].iter().all(|f| fs::read_to_string(dir.join(f)).is_ok_and(|v| !v.trim().is_empty()))
}

impl Cgroup {
    /// The cgroup at `rel` (e.g. `rbuild/<id>`), without creating it.
    pub fn at(rel: &str) -> Cgroup {
        if is_v2() {
            return Cgroup { dirs: vec![("unified".into(), Path::new(ROOT).join(rel))], v2: true };
        }
        let dirs = v1_controllers().iter().map(|c| (c.to_string(), Path::new(ROOT).join(c).join(rel))).collect();
        Cgroup { dirs, v2: false }
    }

    /// Creates the cgroup, restricts its devices (docker's allow-list, or all, and the
    /// `extra` v1 rules) and applies `limits`.
    pub fn create(rel: &str, limits: &Limits, devices: Access, extra: &[String]) -> Result<Cgroup> {
        let cg = Cgroup::at(rel);
        if cg.v2 {
            // Controllers must be enabled in every ancestor's subtree_control.
            let mut p = PathBuf::from(ROOT);
            for comp in Path::new(rel).parent().into_iter().flat_map(|p| p.components()) {
                let _ = fs::write(p.join("cgroup.subtree_control"), "+memory +pids +cpu");
                p.push(comp);
                if !p.exists() {
                    fs::create_dir(&p).step(|| format!("creating cgroup {}", p.display()))?;
                }
            }
            let _ = fs::write(p.join("cgroup.subtree_control"), "+memory +pids +cpu");
        }
        for (ctrl, dir) in &cg.dirs {
            fs::create_dir_all(dir).step(|| format!("creating cgroup {}", dir.display()))?;
            if ctrl == "cpuset" && !inherited_cpuset(dir) {
                // A new v1 cpuset starts empty; copy the parent's CPUs and memory nodes,
                // and have the parent's next children start with them (clone_children).
                if let Some(parent) = dir.parent() {
                    let _ = fs::write(parent.join("cgroup.clone_children"), "1");
                }
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let mut anc = dir.parent().map(Path::to_path_buf);
                    while let Some(a) = anc {
                        if let Ok(v) = fs::read_to_string(a.join(f)) {
                            if !v.trim().is_empty() {
                                let mut d = dir.clone();
                                let mut chain = vec![];
                                while d != a {
                                    chain.push(d.clone());
                                    d = d.parent().map(Path::to_path_buf).unwrap_or_default();
                                }
                                for c in chain.iter().rev() {
                                    if fs::read_to_string(c.join(f)).map(|x| x.trim().is_empty()).unwrap_or(true) {
                                        let _ = fs::write(c.join(f), v.trim());
                                    }
                                }
                                break;
                            }
                        }
                        anc = a.parent().map(Path::to_path_buf);
                    }
                }
            }
            if ctrl == "devices" {
                write(&dir.join("devices.deny"), "a")?;
                for r in devices.rules() {
                    write(&dir.join("devices.allow"), &r.v1())?;
                }
                for r in extra {
                    write(&dir.join("devices.allow"), r)?;
                }
            }
        }
        cg.apply(limits)?;
        Ok(cg)
    }

    fn dir(&self, ctrl: &str) -> Option<&PathBuf> {
        if self.v2 {
            return self.dirs.first().map(|(_, d)| d);
        }
        self.dirs.iter().find(|(c, _)| c == ctrl).map(|(_, d)| d)
    }

    /// A file of one controller's directory (v2: the one directory).
    pub fn read(&self, ctrl: &str, file: &str) -> Option<String> {
        fs::read_to_string(self.dir(ctrl)?.join(file)).ok()
    }

    pub fn apply(&self, l: &Limits) -> Result<()> {
        if let Some(m) = l.memory {
            match (self.v2, self.dir("memory")) {
                (true, Some(d)) => {
                    write(&d.join("memory.max"), &m.to_string())?;
                    // docker's default --memory-swap is twice --memory: swap up to memory.
                    let _ = fs::write(d.join("memory.swap.max"), m.to_string());
                }
                (false, Some(d)) => {
                    // The kernel keeps memory <= memory+swap at every step: raise the
                    // second first when growing, lower the first first when shrinking.
                    let sw = d.join("memory.memsw.limit_in_bytes");
                    let swap_now: u64 =
                        fs::read_to_string(&sw).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(u64::MAX);
                    let grow = sw.exists() && 2 * m > swap_now;
                    if grow {
                        write(&sw, &(2 * m).to_string())?;
                    }
                    write(&d.join("memory.limit_in_bytes"), &m.to_string())?;
                    if sw.exists() && !grow {
                        write(&sw, &(2 * m).to_string())?;
                    }
                }
                _ => return Err(SandboxError::NoController("memory").into()),
            }
        }
        if let Some(p) = l.pids {
            let v = if p <= 0 { "max".to_string() } else { p.to_string() };
            match self.dir("pids") {
                Some(d) => write(&d.join("pids.max"), &v)?,
                None => return Err(SandboxError::NoController("pids").into()),
            }
        }
        if let Some(c) = l.cpus {
            let period = 100_000u64;
            let quota = (c * period as f64).round() as u64;
            match (self.v2, self.dir("cpu")) {
                (true, Some(d)) => write(&d.join("cpu.max"), &format!("{quota} {period}"))?,
                (false, Some(d)) => {
                    write(&d.join("cpu.cfs_period_us"), &period.to_string())?;
                    write(&d.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
                _ => return Err(SandboxError::NoController("cpu").into()),
            }
        }
        Ok(())
    }

    /// Moves the calling process into the cgroup. It must have one thread (a child just
    /// forked): on v1 it moves that thread through `tasks`, which spares the kernel's
    /// global threadgroup lock that a `cgroup.procs` write takes — and the RCU grace
    /// period it waits for (cgroup_procs_write_start): 9 hierarchies took 14–37 ms
    /// through cgroup.procs on this 2-core VM under load, 0.4–2.6 ms through tasks.
    pub fn join_self(&self) -> Result<()> {
        let file = if self.v2 { "cgroup.procs" } else { "tasks" };
        for (_, d) in &self.dirs {
            write(&d.join(file), "0")?;
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup.
    pub fn join(&self, pid: i32) -> Result<()> {
        for (_, d) in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Host pids of the processes in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let Some(d) = self.dir("pids").or_else(|| self.dirs.first().map(|(_, d)| d)) else { return vec![] };
        fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        if self.v2 {
            let d = self.dirs.first().ok_or(SandboxError::NoCgroup)?;
            return write(&d.1.join("cgroup.freeze"), if frozen { "1" } else { "0" });
        }
        let d = self.dir("freezer").ok_or(SandboxError::NoController("freezer"))?;
        write(&d.join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" })?;
        // The state settles asynchronously.
        let want = if frozen { "FROZEN" } else { "THAWED" };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            if fs::read_to_string(d.join("freezer.state")).map(|s| s.trim() == want).unwrap_or(false) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(SandboxError::Freeze(want).into())
    }

    /// True when the OOM killer has killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        let Some(d) = self.dir("memory") else { return false };
        let f = if self.v2 { "memory.events" } else { "memory.oom_control" };
        fs::read_to_string(d.join(f))
            .unwrap_or_default()
            .lines()
            .any(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or(0) > 0)
    }

    /// Kills every process, then removes the directories (retrying while they drain).
    pub fn destroy(&self) -> Result<()> {
        for _ in 0..3 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid).unwrap_or(rustix::process::Pid::INIT),
                    rustix::process::Signal::KILL,
                );
            }
            let _ = self.freeze(false);
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        for (_, d) in &self.dirs {
            loop {
                match fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if t.elapsed() < Duration::from_secs(5) && e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(e) => return Err(RuntimeError::io(format!("removing cgroup {}", d.display()), e)),
                }
            }
        }
        Ok(())
    }

    pub fn exists(&self) -> bool {
        self.dirs.iter().any(|(_, d)| d.exists())
    }
}
