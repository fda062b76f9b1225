//! Starting a container on a network: `run --rm --network bridge IMAGE true` ten times in
//! a row, rbuild against docker 26 and podman 5.4 on their default networks (docker's
//! `bridge`, podman's `podman` through netavark), in interleaved runs. rbuild's
//! `--network none` is timed too, to show what the network costs.
//!
//!   rbuild-bench network [--runs N] [--out DIR]

use crate::{machine, median, today, Args};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const IMAGE: &str = "rbuild-anchor/busybox:1";
/// The goal: rbuild ≤ this × the faster peer.
const GOAL: f64 = 0.15;

fn podman(store: &Path) -> Command {
    let mut c = Command::new("podman54");
    c.arg("--root").arg(store).args(["--runroot", "/run/rbuild-bench-podman", "--storage-driver", "overlay"]);
    c
}

type MakeCommand<'a> = Box<dyn FnMut() -> Command + 'a>;

/// Ten `run --rm … true` in a row; seconds.
fn ten(mut make: impl FnMut() -> Command) -> Result<f64, String> {
    let t = Instant::now();
    for _ in 0..10 {
        let o = make().output().map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("{:?}: {}", make(), String::from_utf8_lossy(&o.stderr)));
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

pub fn main(a: &Args, rest: &[String]) -> Result<(), String> {
    let mut runs = a.runs;
    let mut it = rest.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--runs" => runs = it.next().and_then(|v| v.parse().ok()).ok_or("--runs needs a number")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let work = PathBuf::from(format!("/var/tmp/rbuild-bench-net-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let _guard = crate::RemoveOnDrop(work.clone());
    let store = work.join("rbuild");
    crate::import_base(a, &store)?;
    let pstore = work.join("podman");
    let tar = std::env::var("BUSYBOX_ROOTFS").unwrap_or("/var/tmp/rbuild-anchors/busybox-rootfs.tar".into());
    let o = podman(&pstore).args(["import", "-q", &tar, IMAGE]).output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("podman54 import: {}", String::from_utf8_lossy(&o.stderr)));
    }
    let rb = |net: &'static str| {
        let (rbuild, store) = (a.rbuild.clone(), store.clone());
        move || {
            let mut c = Command::new(&rbuild);
            c.arg("--root").arg(&store).args(["run", "--rm", "--network", net, IMAGE, "true"]);
            c
        }
    };
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut failures = Vec::new();
    for run in 0..runs {
        eprintln!("[network] run {}/{runs}", run + 1);
        let cases: Vec<(&str, MakeCommand)> = vec![
            ("rbuild bridge", Box::new(rb("bridge"))),
            (
                "docker 26",
                Box::new(|| {
                    let mut c = Command::new("docker26");
                    c.args(["run", "--rm", IMAGE, "true"]);
                    c
                }),
            ),
            (
                "podman 5.4",
                Box::new(|| {
                    let mut c = podman(&pstore);
                    c.args(["run", "--rm", IMAGE, "true"]);
                    c
                }),
            ),
            ("rbuild none", Box::new(rb("none"))),
        ];
        for (name, make) in cases {
            match ten(make) {
                Ok(t) => times.entry(name).or_default().push(t),
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
    }
    let _ = podman(&pstore).args(["system", "reset", "-f"]).output();
    let _ = Command::new(&a.rbuild).arg("--root").arg(&store).arg("__netns-teardown").output();
    let med: BTreeMap<&str, f64> = times.iter().map(|(k, v)| (*k, median(&mut v.clone()))).collect();
    let peer = ["docker 26", "podman 5.4"].iter().filter_map(|k| med.get(k)).copied().fold(f64::INFINITY, f64::min);
    let mut md = format!(
        "Measured {} on {}; `run --rm IMAGE true` ×10, median of {runs} runs, seconds.\n\n| runtime (network) | seconds | ratio to the faster peer |\n|---|---|---|\n",
        today(),
        machine()
    );
    for (k, v) in &med {
        md.push_str(&format!("| {k} | {v:.3} | {:.3} |\n", v / peer));
    }
    if let Some(r) = med.get("rbuild bridge") {
        let holds = if r / peer <= GOAL { "holds" } else { "does **not** hold" };
        md.push_str(&format!("\nGoal: rbuild on its bridge ≤ {GOAL} × the faster peer: {:.3}, {holds}.\n", r / peer));
    }
    for f in &failures {
        md.push_str(&format!("\nFailed: {f}\n"));
    }
    std::fs::create_dir_all(&a.out).map_err(|e| e.to_string())?;
    std::fs::write(a.out.join("network.md"), &md).map_err(|e| e.to_string())?;
    let json =
        serde_json::json!({"date": today(), "machine": machine(), "runs": runs, "times": times, "failures": failures});
    std::fs::write(a.out.join("network.json"), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(())
}
