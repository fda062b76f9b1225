//! `stats`: what a running container uses, read as docker's daemon reads it — CPU time
//! and memory from its cgroup (v1 or v2) with the system's CPU time beside it, PIDs,
//! block I/O from the cgroup's I/O accounting, network I/O from its network namespace's
//! interfaces (loopback left out).

use super::Container;
use crate::sandbox::cgroups::Cgroup;

/// One reading (docker's stats API fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// The container's CPU time (ns).
    pub cpu_ns: u64,
    /// The system's CPU time (ns), from /proc/stat as docker sums it.
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Memory in use (bytes) and the inactive file cache docker subtracts from it.
    pub memory: u64,
    pub inactive_file: u64,
    /// The cgroup's limit, or the host's memory when it has none (as docker shows it).
    pub memory_limit: u64,
    pub pids: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub net_rx: u64,
    pub net_tx: u64,
}

impl Sample {
    /// docker's CPU %: the container's share of the system's CPU time between two
    /// readings, times the CPUs.
    pub fn cpu_percent(&self, before: &Sample) -> f64 {
        let cpu = self.cpu_ns.saturating_sub(before.cpu_ns) as f64;
        let system = self.system_ns.saturating_sub(before.system_ns) as f64;
        if cpu > 0.0 && system > 0.0 {
            cpu / system * f64::from(self.online_cpus) * 100.0
        } else {
            0.0
        }
    }

    /// docker's memory usage: without the inactive file cache.
    pub fn memory_used(&self) -> u64 {
        if self.inactive_file < self.memory {
            self.memory - self.inactive_file
        } else {
            self.memory
        }
    }

    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            0.0
        } else {
            self.memory_used() as f64 / self.memory_limit as f64 * 100.0
        }
    }
}

fn num(s: Option<String>) -> u64 {
    s.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// `key value` lines (memory.stat, cpu.stat).
fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// (read, write) bytes: v1 `blkio.throttle.io_service_bytes_recursive` lines
/// (`8:0 Read 4096`), v2 `io.stat` (`8:0 rbytes=… wbytes=…`).
fn block_io(text: &str, v2: bool) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if v2 {
            for kv in f.iter().skip(1) {
                match kv.split_once('=') {
                    Some(("rbytes", v)) => r += v.parse::<u64>().unwrap_or(0),
                    Some(("wbytes", v)) => w += v.parse::<u64>().unwrap_or(0),
                    _ => {}
                }
            }
        } else if let [_, op, v] = f.as_slice() {
            match op.to_ascii_lowercase().as_str() {
                "read" => r += v.parse::<u64>().unwrap_or(0),
                "write" => w += v.parse::<u64>().unwrap_or(0),
                _ => {}
            }
        }
    }
    (r, w)
}

/// (received, sent) bytes of every interface but `lo`, from a /proc/PID/net/dev.
fn net_io(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0, 0);
    for l in text.lines().skip(2) {
        let Some((iface, rest)) = l.split_once(':') else { continue };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// docker's system CPU usage: user to softirq of /proc/stat's first line, in ns; and the
/// number of CPUs it lists.
fn system_cpu(stat: &str) -> (u64, u32) {
    let ticks: u64 = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| l.split_whitespace().skip(1).take(7).filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let cpus = stat.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count() as u32;
    // USER_HZ is 100 on Linux.
    (ticks * 10_000_000, cpus.max(1))
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo").map(|m| keyed(&m.replace(':', ""), "MemTotal") * 1024).unwrap_or(0)
}

/// A reading of a running container (None when it is not running).
pub fn sample(c: &Container) -> Option<Sample> {
    let st = c.state();
    if !matches!(st.status, super::state::Status::Running | super::state::Status::Paused) {
        return None;
    }
    let cg = Cgroup::at(&format!("rbuild/{}", c.config.id));
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let (system_ns, online_cpus) = system_cpu(&stat);
    let mut s = Sample { system_ns, online_cpus, ..Default::default() };
    let mem_stat = cg.read("memory", "memory.stat").unwrap_or_default();
    let limit;
    if cg.v2 {
        s.cpu_ns = keyed(&cg.read("cpu", "cpu.stat").unwrap_or_default(), "usage_usec") * 1000;
        s.memory = num(cg.read("memory", "memory.current"));
        s.inactive_file = keyed(&mem_stat, "inactive_file");
        limit = cg.read("memory", "memory.max").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(u64::MAX);
        (s.block_read, s.block_write) = block_io(&cg.read("io", "io.stat").unwrap_or_default(), true);
    } else {
        s.cpu_ns = num(cg.read("cpuacct", "cpuacct.usage"));
        s.memory = num(cg.read("memory", "memory.usage_in_bytes"));
        s.inactive_file = keyed(&mem_stat, "total_inactive_file");
        limit = cg.read("memory", "memory.limit_in_bytes").and_then(|v| v.trim().parse().ok()).unwrap_or(u64::MAX);
        let io = cg.read("blkio", "blkio.throttle.io_service_bytes_recursive").unwrap_or_default();
        (s.block_read, s.block_write) = block_io(&io, false);
    }
    let host = host_memory();
    s.memory_limit = if host > 0 && limit > host { host } else { limit };
    s.pids = num(cg.read("pids", "pids.current"));
    let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", st.pid)).unwrap_or_default();
    (s.net_rx, s.net_tx) = net_io(&dev);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_as_docker_takes_them() {
        let v1 = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 9\n8:16 Read 4\nTotal 4612\n";
        assert_eq!(block_io(v1, false), (4100, 512));
        assert_eq!(block_io("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n", true), (11, 22));
        let dev = "Inter-|   Receive\n face |bytes packets\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n";
        assert_eq!(net_io(dev), (1000, 2000));
        let (ns, cpus) =
            system_cpu("cpu  100 0 50 1000 10 0 0 7 0 0\ncpu0 1 1 1 1 1 1 1 1 1 1\ncpu1 1 1 1 1 1 1 1 1 1 1\n");
        assert_eq!((ns, cpus), (1160 * 10_000_000, 2));
        assert_eq!(keyed("cache 5\ntotal_inactive_file 42\n", "total_inactive_file"), 42);
        let a = Sample { cpu_ns: 0, system_ns: 0, online_cpus: 2, ..Default::default() };
        let b = Sample {
            cpu_ns: 500,
            system_ns: 1000,
            online_cpus: 2,
            memory: 100,
            inactive_file: 40,
            memory_limit: 200,
            ..Default::default()
        };
        assert_eq!(b.cpu_percent(&a), 100.0);
        assert_eq!((b.memory_used(), b.memory_percent()), (60, 30.0));
    }
}
