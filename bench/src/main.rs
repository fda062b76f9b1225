//! The cache-reuse benchmark: rbuild, BuildKit (in the docker 20.10 engine), docker's
//! legacy builder and buildah on ../shared/bench's workloads, timed by
//! ../shared/bench/run.sh, several runs each, in one session. Writes medians and ratios
//! to BuildKit as a Markdown table, JSON and a PNG chart.
//!
//!   rbuild-bench [--runs N] [--builders rbuild,buildkit,docker,buildah] [--out DIR]
//!
//! Normally started by `bench/run.sh`, which builds rbuild and starts the peers. The other
//! benchmarks are subcommands: `scaling` (how cost grows, against docker 26's BuildKit),
//! `network` (`run --network bridge` against docker 26 and podman 5.4) and `memory`
//! (peak RSS of push, pull and a big no-op build).

mod memory;
mod network;
mod plot;
mod scaling;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Scenario → ratio goal against BuildKit (from the issue).
const GOALS: &[(&str, f64)] = &[
    ("small.cold", 0.4),
    ("small.noop", 0.3),
    ("bigctx.cold", 0.45),
    ("bigctx.noop", 0.25),
    ("bigctx.touch", 0.2),
    ("bigctx.edit1", 0.3),
    ("bigctx.ignored", 0.2),
    ("fatlayer.cold", 0.85),
    ("multistage.cold", 0.9),
    ("run.true.x10", 0.07),
];

pub(crate) struct Args {
    pub(crate) runs: usize,
    pub(crate) builders: Vec<String>,
    pub(crate) out: PathBuf,
    pub(crate) shared: PathBuf,
    pub(crate) rbuild: PathBuf,
    /// Re-render the chart from an earlier results.json instead of measuring.
    chart_from: Option<PathBuf>,
}

fn parse_args(argv: &[String]) -> Result<(Args, Vec<String>), String> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        runs: 3,
        builders: ["rbuild", "buildkit", "docker", "buildah"].map(String::from).to_vec(),
        out: here.join("results"),
        shared: here.join("../../shared"),
        rbuild: here.join("../target/x86_64-unknown-linux-gnu/release/rbuild"),
        chart_from: None,
    };
    let mut rest = Vec::new();
    let mut it = argv.iter().cloned();
    while let Some(x) = it.next() {
        let mut val = || it.next().ok_or(format!("{x} needs a value"));
        match x.as_str() {
            "--runs" => a.runs = val()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--builders" => a.builders = val()?.split(',').map(String::from).collect(),
            "--out" => a.out = PathBuf::from(val()?),
            "--shared" => a.shared = PathBuf::from(val()?),
            "--rbuild" => a.rbuild = PathBuf::from(val()?),
            "--chart-from" => a.chart_from = Some(PathBuf::from(val()?)),
            _ => rest.push(x),
        }
    }
    Ok((a, rest))
}

/// One run of run.sh for one builder on fresh workloads: scenario → seconds.
fn run_once(a: &Args, builder: &str, work: &Path) -> Result<BTreeMap<String, f64>, String> {
    let wl = work.join(format!("w-{builder}"));
    let st =
        Command::new("bash").arg(a.shared.join("bench/workloads.sh")).arg(&wl).output().map_err(|e| e.to_string())?;
    if !st.status.success() {
        return Err(format!("workloads.sh failed: {}", String::from_utf8_lossy(&st.stderr)));
    }
    let store = work.join("rbuild-store");
    if builder == "rbuild" {
        import_base(a, &store)?;
    }
    // Every builder starts on a quiet disk: without this, the first build that syncs
    // anything (rbuild fsyncs each blob; docker and buildah their metadata) waits for the
    // ~300 MB of workloads just written, and whichever builder runs first pays for them.
    settle();
    let out = Command::new("bash")
        .arg(a.shared.join("bench/run.sh"))
        .arg(builder)
        .arg(&wl)
        .env("RBUILD", &a.rbuild)
        .env("RBUILD_ROOT", &store)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("BUILD FAILED") {
        return Err(format!("{builder}: {text}"));
    }
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 3 && f[0] == builder {
            if let Ok(v) = f[2].parse::<f64>() {
                m.insert(f[1].to_string(), v);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&wl);
    Ok(m)
}

/// Writes out dirty pages (`sync`).
pub(crate) fn settle() {
    let _ = Command::new("sync").status();
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Removes an rbuild store, its network first: a store's default network (a namespace
/// and its pasta process, kept under /run/rbuild) outlives the store's directory, until
/// another store's network is made.
pub(crate) fn remove_store(a: &Args, store: &Path) {
    if store.exists() {
        let _ = Command::new(&a.rbuild).arg("--root").arg(store).arg("__netns-teardown").output();
    }
    let _ = std::fs::remove_dir_all(store);
}

/// A fresh rbuild store at `store` holding the busybox base.
pub(crate) fn import_base(a: &Args, store: &Path) -> Result<(), String> {
    remove_store(a, store);
    let tar = std::env::var("BUSYBOX_ROOTFS").unwrap_or("/var/tmp/rbuild-anchors/busybox-rootfs.tar".into());
    let o = Command::new(&a.rbuild)
        .arg("--root")
        .arg(store)
        .args(["import", &tar, "rbuild-anchor/busybox:1"])
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("importing the base: {}", String::from_utf8_lossy(&o.stderr)));
    }
    Ok(())
}

/// builder → scenario → median seconds.
fn medians(times: &Times) -> BTreeMap<String, BTreeMap<String, f64>> {
    times
        .iter()
        .map(|(b, m)| (b.clone(), m.iter().map(|(k, v)| (k.clone(), median(&mut v.clone()))).collect()))
        .collect()
}

/// Peak RSS (KiB) of a cold rbuild build of bigctx, by /usr/bin/time -v.
fn peak_rss(a: &Args, work: &Path) -> Option<u64> {
    let wl = work.join("w-rss");
    Command::new("bash").arg(a.shared.join("bench/workloads.sh")).arg(&wl).output().ok()?;
    settle();
    let store = work.join("rss-store");
    import_base(a, &store).ok()?;
    let o = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&a.rbuild)
        .arg("--root")
        .arg(&store)
        .args(["build", "-q", "--no-cache", "-t", "rss"])
        .arg(wl.join("bigctx"))
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&wl);
    remove_store(a, &store);
    peak_kib(&o.stderr)
}

/// The maximum resident set size (KiB) in `/usr/bin/time -v`'s report.
pub(crate) fn peak_kib(report: &[u8]) -> Option<u64> {
    String::from_utf8_lossy(report)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): ").and_then(|v| v.parse().ok()))
}

/// Runs `c` with `input` on its stdin; its stdout.
pub(crate) fn pipe_to(c: &mut Command, input: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = feeder.join();
    Ok(out.stdout)
}

/// A work directory removed when dropped.
pub(crate) struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0) / 1024 / 1024)
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} cores ({model}), {mem} GiB, Linux {}", kernel.trim())
}

/// builder → scenario → seconds of every run.
type Times = BTreeMap<String, BTreeMap<String, Vec<f64>>>;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (a, rest) = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Some(sub) = rest.first() {
        let run = match sub.as_str() {
            "scaling" => scaling::main as fn(&Args, &[String]) -> Result<(), String>,
            "network" => network::main,
            "memory" => memory::main,
            other => {
                eprintln!("error: unknown argument {other}");
                std::process::exit(2);
            }
        };
        if let Err(e) = run(&a, &rest[1..]) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Some(j) = &a.chart_from {
        if let Err(e) = chart_from(&a, j) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let (times, failures, rss) = measure(&a);
    let med = medians(&times);
    let (md, json) = report(&a, &med, &times, &failures, rss);
    let _ = std::fs::write(a.out.join("results.md"), &md);
    let _ = std::fs::write(a.out.join("results.json"), serde_json::to_string_pretty(&json).unwrap_or_default());
    if let Err(e) = plot::ratios(&a.out.join("chart.png"), &med, GOALS) {
        eprintln!("[bench] chart: {e}");
    }
    print!("{md}");
}

/// Re-renders the chart from an earlier results.json.
fn chart_from(a: &Args, json: &Path) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap_or_default()).unwrap_or_default();
    let times: Times = serde_json::from_value(v["all_times"].clone()).unwrap_or_default();
    let med = medians(&times);
    let _ = std::fs::create_dir_all(&a.out);
    plot::ratios(&a.out.join("chart.png"), &med, GOALS)
}

/// Every run of every builder (interleaved, so a slow period of the machine hits all of
/// them): the times, the failures, and rbuild's peak RSS.
fn measure(a: &Args) -> (Times, Vec<String>, Option<u64>) {
    let work = PathBuf::from(format!("/var/tmp/rbuild-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&work);
    let _ = std::fs::create_dir_all(&a.out);
    let mut times = Times::new();
    let mut failures = Vec::new();
    for run in 0..a.runs {
        for b in &a.builders {
            eprintln!("[bench] run {}/{} {b}", run + 1, a.runs);
            match run_once(a, b, &work) {
                Ok(m) => {
                    for (k, v) in m {
                        times.entry(b.clone()).or_default().entry(k).or_default().push(v);
                    }
                }
                Err(e) => {
                    eprintln!("[bench] {b} failed: {e}");
                    failures.push(format!("{b}: {e}"));
                }
            }
        }
    }
    let rss = if a.builders.iter().any(|b| b == "rbuild") { peak_rss(a, &work) } else { None };
    remove_store(a, &work.join("rbuild-store"));
    let _ = std::fs::remove_dir_all(&work);
    (times, failures, rss)
}

/// The results as a Markdown table (ratios to BuildKit against the goals, to docker and
/// buildah) and as JSON.
fn report(
    a: &Args,
    med: &BTreeMap<String, BTreeMap<String, f64>>,
    times: &Times,
    failures: &[String],
    rss: Option<u64>,
) -> (String, serde_json::Value) {
    let date = today();
    let mach = machine();
    let mut md =
        format!("Measured {date} on {mach}; median of {} runs each, seconds; ratio = rbuild / peer.\n\n", a.runs);
    md.push_str("| scenario | rbuild | BuildKit | docker (legacy) | buildah | rbuild/BuildKit | goal | holds | rbuild/docker | rbuild/buildah |\n|---|---|---|---|---|---|---|---|---|---|\n");
    let get = |b: &str, k: &str| med.get(b).and_then(|m| m.get(k)).copied();
    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or("–".into());
    let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) if y > 0.0 => Some(x / y),
        _ => None,
    };
    let mut json_rows = Vec::new();
    for (k, goal) in GOALS {
        let r = get("rbuild", k);
        let rk = ratio(r, get("buildkit", k));
        let holds = rk.map(|x| if x <= *goal { "yes" } else { "**no**" }).unwrap_or("–");
        md.push_str(&format!(
            "| {k} | {} | {} | {} | {} | {} | ≤ {goal} | {holds} | {} | {} |\n",
            fmt(r),
            fmt(get("buildkit", k)),
            fmt(get("docker", k)),
            fmt(get("buildah", k)),
            rk.map(|x| format!("{x:.2}")).unwrap_or("–".into()),
            ratio(r, get("docker", k)).map(|x| format!("{x:.2}")).unwrap_or("–".into()),
            ratio(r, get("buildah", k)).map(|x| format!("{x:.2}")).unwrap_or("–".into()),
        ));
        json_rows.push(serde_json::json!({
            "scenario": k, "goal": goal, "ratio_to_buildkit": rk,
            "median_seconds": {"rbuild": r, "buildkit": get("buildkit", k), "docker": get("docker", k), "buildah": get("buildah", k)},
        }));
    }
    if let Some(kb) = rss {
        md.push_str(&format!(
            "\nPeak memory of a cold bigctx build (rbuild, `/usr/bin/time -v`): {} MiB (goal < 200 MiB).\n",
            kb / 1024
        ));
    }
    for f in failures {
        md.push_str(&format!("\nFailed: {f}\n"));
    }
    let json = serde_json::json!({
        "date": date, "machine": mach, "runs": a.runs, "scenarios": json_rows,
        "all_times": times, "peak_rss_kib": rss, "failures": failures,
    });
    (md, json)
}

pub(crate) fn today() -> String {
    let o = Command::new("date").arg("-u").arg("+%Y-%m-%d").output();
    o.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}
