//! How cost grows with the size of the work: a build context of 20k, 100k and 200k files
//! (no-op, one file touched, one file edited) and Dockerfiles of 10, 50 and 200 RUN
//! steps (cold and no-op), for rbuild and docker 26's BuildKit, in interleaved runs.
//! Writes `scaling.{md,json,png}` and fits rbuild's no-op time to `a + b·files`.
//!
//!   rbuild-bench scaling [--sizes 20000,100000,200000] [--steps 10,50,200] [--runs N]
//!                        [--builders rbuild,buildkit] [--with EARLIER.json] [--out DIR]
//!
//! `--with` takes the times of the builders not run now from an earlier `scaling.json`
//! (BuildKit's side takes ~15 minutes and does not change when rbuild does).

use crate::{machine, median, today, Args};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BASE: &str = "rbuild-anchor/busybox:1";

struct Opts {
    sizes: Vec<usize>,
    steps: Vec<usize>,
    runs: usize,
    builders: Vec<String>,
    with: Option<PathBuf>,
}

fn list(v: &str) -> Result<Vec<usize>, String> {
    v.split(',').map(|x| x.trim().parse::<usize>().map_err(|e| format!("{x}: {e}"))).collect()
}

fn parse(a: &Args, rest: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        sizes: vec![20_000, 100_000, 200_000],
        steps: vec![10, 50, 200],
        runs: a.runs,
        // `--builders` is read by main (its default names all four); the two this one knows.
        builders: a.builders.iter().filter(|b| matches!(b.as_str(), "rbuild" | "buildkit")).cloned().collect(),
        with: None,
    };
    let mut it = rest.iter();
    while let Some(x) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{x} needs a value"));
        match x.as_str() {
            "--sizes" => o.sizes = list(&val()?)?,
            "--steps" => o.steps = list(&val()?)?,
            "--runs" => o.runs = val()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--with" => o.with = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// A context of `n` files of 1 KiB, 100 to a directory, deterministic content.
pub(crate) fn make_context_pub(dir: &Path, n: usize) -> Result<(), String> {
    make_context(dir, n)
}

fn make_context(dir: &Path, n: usize) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    let io = |e: std::io::Error| format!("writing {}: {e}", dir.display());
    for i in 0..n {
        let d = dir.join(format!("src/d{:04}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&d).map_err(io)?;
        }
        let line = format!("file {i} of the scaling context\n");
        let body: String = line.repeat(1024 / line.len() + 1).chars().take(1024).collect();
        std::fs::write(d.join(format!("f{:03}.txt", i % 100)), body).map_err(io)?;
    }
    let df = format!("FROM {BASE}\nWORKDIR /app\nCOPY . .\nRUN echo rbuild-scaling-{n} > /app/built\n");
    std::fs::write(dir.join("Dockerfile"), df).map_err(io)
}

/// A Dockerfile of `n` RUN steps.
fn make_steps(dir: &Path, n: usize) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut df = format!("FROM {BASE}\n");
    for i in 1..=n {
        df.push_str(&format!("RUN echo rbuild-scaling-step-{i} > /f{i}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), df).map_err(|e| e.to_string())
}

/// One builder's build command.
fn build_cmd(a: &Args, builder: &str, store: &Path, tag: &str, ctx: &Path, no_cache: bool) -> Command {
    let mut c = match builder {
        "rbuild" => {
            let mut c = Command::new(&a.rbuild);
            c.arg("--root").arg(store).arg("build");
            c
        }
        _ => {
            let mut c = Command::new("docker26");
            c.env("DOCKER_BUILDKIT", "1").arg("build");
            c
        }
    };
    c.args(["-q", "--network", "none", "-t", tag]);
    if no_cache {
        c.arg("--no-cache");
    }
    c.arg(ctx);
    c
}

fn timed(mut c: Command) -> Result<f64, String> {
    let t = Instant::now();
    let o = c.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("{c:?}: {}", String::from_utf8_lossy(&o.stderr)));
    }
    Ok(t.elapsed().as_secs_f64())
}

/// One run of every scenario for one builder: scenario → seconds, and the scenarios that
/// failed (BuildKit cannot build 200 RUN steps: "max depth exceeded", overlayfs's limit on
/// lower layers), so one failure loses only its own scenario and those that need it.
fn run_once(
    a: &Args,
    o: &Opts,
    b: &str,
    work: &Path,
    run: usize,
) -> Result<(BTreeMap<String, f64>, Vec<String>), String> {
    let store = work.join("store");
    let mut m = BTreeMap::new();
    let mut failed = Vec::new();
    let mut time = |m: &mut BTreeMap<String, f64>, key: String, c: Command| match timed(c) {
        Ok(t) => {
            m.insert(key, t);
            true
        }
        Err(e) => {
            failed.push(format!("{b} {key}: {}", e.lines().last().unwrap_or_default()));
            false
        }
    };
    for &n in &o.sizes {
        let ctx = work.join(format!("ctx-{n}"));
        let tag = format!("rbuild-scaling/{b}-ctx{n}");
        crate::settle();
        if !time(&mut m, format!("ctx{n}.cold"), build_cmd(a, b, &store, &tag, &ctx, true)) {
            continue;
        }
        time(&mut m, format!("ctx{n}.noop"), build_cmd(a, b, &store, &tag, &ctx, false));
        let f = ctx.join("src/d0001/f050.txt");
        let now = std::time::SystemTime::now();
        std::fs::File::options().append(true).open(&f).and_then(|h| h.set_modified(now)).map_err(|e| e.to_string())?;
        time(&mut m, format!("ctx{n}.touch"), build_cmd(a, b, &store, &tag, &ctx, false));
        let mut h = std::fs::File::options().append(true).open(&f).map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut h, format!("edit {b} {run}\n").as_bytes()).map_err(|e| e.to_string())?;
        time(&mut m, format!("ctx{n}.edit1"), build_cmd(a, b, &store, &tag, &ctx, false));
    }
    for &n in &o.steps {
        let ctx = work.join(format!("steps-{n}"));
        let tag = format!("rbuild-scaling/{b}-steps{n}");
        if time(&mut m, format!("steps{n}.cold"), build_cmd(a, b, &store, &tag, &ctx, true)) {
            time(&mut m, format!("steps{n}.noop"), build_cmd(a, b, &store, &tag, &ctx, false));
        }
    }
    Ok((m, failed))
}

/// Peak RSS (KiB) of rbuild's no-op build of the largest context.
fn noop_rss(a: &Args, o: &Opts, work: &Path) -> Option<u64> {
    let n = *o.sizes.iter().max()?;
    let mut c = Command::new("/usr/bin/time");
    c.arg("-v").arg(&a.rbuild).arg("--root").arg(work.join("store")).arg("build");
    c.args(["-q", "--network", "none", "-t", &format!("rbuild-scaling/rbuild-ctx{n}")])
        .arg(work.join(format!("ctx-{n}")));
    crate::peak_kib(&c.output().ok()?.stderr)
}

/// Removes what BuildKit kept of this run: the images, and the build records made since
/// `before` whose step is one of ours (as ../shared/bench/v2/run2.sh does).
fn clean_buildkit(a: &Args, o: &Opts, before: &Path, sigs: &Path, since: u64) {
    for n in &o.sizes {
        let _ = Command::new("docker26").args(["rmi", "-f", &format!("rbuild-scaling/buildkit-ctx{n}")]).output();
    }
    for n in &o.steps {
        let _ = Command::new("docker26").args(["rmi", "-f", &format!("rbuild-scaling/buildkit-steps{n}")]).output();
    }
    let py = a.shared.join("bench/v2/bench2.py");
    for _ in 0..4 {
        let Ok(du) = Command::new("docker26").args(["buildx", "du", "--verbose"]).output() else { return };
        let Ok(ours) = crate::pipe_to(
            Command::new("python3").arg(&py).arg("bk-ours").arg(before).arg(sigs).arg(since.to_string()),
            &du.stdout,
        ) else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&ours).split_whitespace().map(String::from).collect();
        if ids.is_empty() {
            return;
        }
        for id in ids {
            let _ = Command::new("docker26").args(["buildx", "prune", "-f", "--filter", &format!("id={id}")]).output();
        }
    }
}

pub fn main(a: &Args, rest: &[String]) -> Result<(), String> {
    let o = parse(a, rest)?;
    let work = PathBuf::from(format!("/var/tmp/rbuild-scaling-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let guard = crate::RemoveOnDrop(work.clone());
    for &n in &o.sizes {
        eprintln!("[scaling] writing a context of {n} files");
        make_context(&work.join(format!("ctx-{n}")), n)?;
    }
    for &n in &o.steps {
        make_steps(&work.join(format!("steps-{n}")), n)?;
    }
    // BuildKit's records of our steps, to remove afterwards.
    let sigs = work.join("sigs");
    let before = work.join("before");
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut sig = String::from("] COPY . .\n] WORKDIR /app\n");
    for n in &o.sizes {
        sig.push_str(&format!("/bin/sh -c echo rbuild-scaling-{n} > /app/built\n"));
    }
    for i in 1..=o.steps.iter().copied().max().unwrap_or(0) {
        sig.push_str(&format!("/bin/sh -c echo rbuild-scaling-step-{i} > /f{i}\n"));
    }
    std::fs::write(&sigs, sig).map_err(|e| e.to_string())?;
    if o.builders.iter().any(|b| b == "buildkit") {
        let du = Command::new("docker26").args(["buildx", "du", "--verbose"]).output().map_err(|e| e.to_string())?;
        let ids =
            crate::pipe_to(Command::new("python3").arg(a.shared.join("bench/v2/bench2.py")).arg("bk-ids"), &du.stdout)?;
        std::fs::write(&before, ids).map_err(|e| e.to_string())?;
    }
    let mut times: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut failures = Vec::new();
    for run in 0..o.runs {
        for b in &o.builders {
            eprintln!("[scaling] run {}/{} {b}", run + 1, o.runs);
            let bwork = work.join(b);
            let _ = std::fs::create_dir_all(&bwork);
            if b == "rbuild" {
                crate::import_base(a, &bwork.join("store"))?;
            }
            for n in &o.sizes {
                let _ = std::os::unix::fs::symlink(work.join(format!("ctx-{n}")), bwork.join(format!("ctx-{n}")));
            }
            for n in &o.steps {
                let _ = std::os::unix::fs::symlink(work.join(format!("steps-{n}")), bwork.join(format!("steps-{n}")));
            }
            match run_once(a, &o, b, &bwork, run) {
                Ok((m, failed)) => {
                    m.into_iter().for_each(|(k, v)| times.entry(b.clone()).or_default().entry(k).or_default().push(v));
                    for f in failed {
                        eprintln!("[scaling] {f}");
                        let scenario = f.split(':').next().unwrap_or_default();
                        if !failures.iter().any(|g: &String| g.split(':').next() == Some(scenario)) {
                            failures.push(f);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("[scaling] {b}: {e}");
                    failures.push(format!("{b}: {e}"));
                }
            }
            if b == "buildkit" {
                clean_buildkit(a, &o, &before, &sigs, since);
            }
        }
    }
    let rss = if o.builders.iter().any(|b| b == "rbuild") { noop_rss(a, &o, &work.join("rbuild")) } else { None };
    crate::remove_store(a, &work.join("rbuild").join("store"));
    drop(guard);
    if let Some(earlier) = &o.with {
        merge_earlier(earlier, &o.builders, &mut times)?;
    }
    report(a, &o, &times, rss, &failures)
}

/// Adds the times of the builders not measured in this run from an earlier `scaling.json`.
fn merge_earlier(
    path: &Path,
    measured: &[String],
    times: &mut BTreeMap<String, BTreeMap<String, Vec<f64>>>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let earlier: BTreeMap<String, BTreeMap<String, Vec<f64>>> =
        serde_json::from_value(json["times"].clone()).map_err(|e| format!("{}: times: {e}", path.display()))?;
    for (b, m) in earlier {
        if !measured.contains(&b) {
            times.insert(b, m);
        }
    }
    Ok(())
}

/// Least squares `y = a + b·x`.
fn fit(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    (sxx > 0.0).then(|| (my - sxy / sxx * mx, sxy / sxx))
}

fn report(
    a: &Args,
    o: &Opts,
    times: &BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    rss: Option<u64>,
    failures: &[String],
) -> Result<(), String> {
    let med: BTreeMap<String, BTreeMap<String, f64>> = times
        .iter()
        .map(|(b, m)| (b.clone(), m.iter().map(|(k, v)| (k.clone(), median(&mut v.clone()))).collect()))
        .collect();
    let get = |b: &str, k: &str| med.get(b).and_then(|m| m.get(k)).copied();
    let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or("–".into());
    let mut md = format!(
        "Measured {} on {}; median of {} runs, seconds; ratio = rbuild / BuildKit (docker 26.1).\n\n| scenario | rbuild | BuildKit | ratio |\n|---|---|---|---|\n",
        today(),
        machine(),
        o.runs
    );
    let mut keys: Vec<String> = Vec::new();
    for n in &o.sizes {
        for s in ["cold", "noop", "touch", "edit1"] {
            keys.push(format!("ctx{n}.{s}"));
        }
    }
    for n in &o.steps {
        keys.push(format!("steps{n}.cold"));
        keys.push(format!("steps{n}.noop"));
    }
    for k in &keys {
        let (r, bk) = (get("rbuild", k), get("buildkit", k));
        let ratio = r.zip(bk).map(|(r, b)| format!("{:.3}", r / b)).unwrap_or("–".into());
        md.push_str(&format!("| {k} | {} | {} | {ratio} |\n", f(r), f(bk)));
    }
    let pts: Vec<(f64, f64)> =
        o.sizes.iter().filter_map(|n| Some((*n as f64, get("rbuild", &format!("ctx{n}.noop"))?))).collect();
    let line = fit(&pts);
    if let Some((c, per)) = line {
        md.push_str(&format!(
            "\nrbuild's no-op: {:.1} ms + {:.2} µs per file (least squares over {} sizes).\n",
            c * 1000.0,
            per * 1e6,
            pts.len()
        ));
    }
    let steps: Vec<(f64, f64)> =
        o.steps.iter().filter_map(|n| Some((*n as f64, get("rbuild", &format!("steps{n}.cold"))?))).collect();
    if let Some((c, per)) = fit(&steps) {
        md.push_str(&format!("rbuild's cold RUN steps: {:.1} ms + {:.2} ms per step.\n", c * 1000.0, per * 1000.0));
    }
    if let Some(kb) = rss {
        md.push_str(&format!(
            "Peak memory of rbuild's no-op build of {} files: {} MiB.\n",
            o.sizes.iter().max().unwrap_or(&0),
            kb / 1024
        ));
    }
    for e in failures {
        md.push_str(&format!("\nFailed: {e}\n"));
    }
    std::fs::create_dir_all(&a.out).map_err(|e| e.to_string())?;
    let json = serde_json::json!({"date": today(), "machine": machine(), "runs": o.runs, "times": times,
        "noop_fit": line.map(|(c, p)| serde_json::json!({"ms": c * 1000.0, "us_per_file": p * 1e6})), "noop_peak_rss_kib": rss, "failures": failures});
    std::fs::write(a.out.join("scaling.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(a.out.join("scaling.json"), serde_json::to_string_pretty(&json).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    crate::plot::scaling(&a.out.join("scaling.png"), &o.sizes, &o.steps, &med)?;
    print!("{md}");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `rbuild-bench scaling --builders rbuild` measures rbuild alone: the harness's parser
    /// takes `--builders` wherever it stands, and scaling must follow it (it ran BuildKit
    /// whatever was asked).
    #[test]
    fn builders_given_on_the_command_line_are_the_ones_run() {
        let argv: Vec<String> = ["scaling", "--builders", "rbuild", "--sizes", "10"].map(String::from).to_vec();
        let (a, rest) = crate::parse_args(&argv).unwrap();
        let o = super::parse(&a, &rest[1..]).unwrap();
        assert_eq!((o.builders, o.sizes), (vec!["rbuild".to_string()], vec![10]));
        let (a, rest) = crate::parse_args(&argv[..1]).unwrap();
        assert_eq!(super::parse(&a, &rest[1..]).unwrap().builders, ["rbuild", "buildkit"]);
    }
}
