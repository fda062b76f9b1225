//! Peak memory (`/usr/bin/time -v`, maximum resident set) of rbuild's push and pull of
//! the v2 benchmark's big image (4 layers, 170 MB, 20,000 files; compressed with gzip on
//! the way out) and of a no-op build of a 200,000-file context. Goal: each under 150 MiB.
//!
//!   rbuild-bench memory [--files N] [--registry HOST:PORT] [--out DIR]

use crate::{machine, today, Args};
use std::path::{Path, PathBuf};
use std::process::Command;

const GOAL_MIB: u64 = 150;

fn rbuild(a: &Args, store: &Path) -> Command {
    let mut c = Command::new(&a.rbuild);
    c.arg("--root").arg(store);
    c
}

fn ok(mut c: Command) -> Result<(), String> {
    let o = c.output().map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{c:?}: {}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// Peak RSS in KiB of rbuild with `args`.
fn peak(a: &Args, store: &Path, args: &[&str]) -> Result<u64, String> {
    let mut c = Command::new("/usr/bin/time");
    c.arg("-v").arg(&a.rbuild).arg("--root").arg(store).args(args);
    let o = c.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("rbuild {args:?}: {}", String::from_utf8_lossy(&o.stderr)));
    }
    crate::peak_kib(&o.stderr).ok_or_else(|| "no maximum resident set size from /usr/bin/time".into())
}

pub fn main(a: &Args, rest: &[String]) -> Result<(), String> {
    let mut files = 200_000usize;
    let mut reg = "127.0.0.1:5000".to_string();
    let mut it = rest.iter();
    while let Some(x) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{x} needs a value"));
        match x.as_str() {
            "--files" => files = val()?.parse().map_err(|e| format!("--files: {e}"))?,
            "--registry" => reg = val()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let work = PathBuf::from(format!("/var/tmp/rbuild-bench-mem-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let _guard = crate::RemoveOnDrop(work.clone());
    let store = work.join("store");
    crate::import_base(a, &store)?;
    // The big image of the v2 benchmark.
    let w = work.join("w");
    ok({
        let mut c = Command::new("bash");
        c.arg(a.shared.join("bench/v2/workloads2.sh")).arg(&w);
        c
    })?;
    let image = format!("{reg}/rbuild-bench-mem/big-{}:1", std::process::id());
    ok({
        let mut c = rbuild(a, &store);
        c.args(["build", "-q", "--network", "none", "-t", &image]).arg(w.join("big"));
        c
    })?;
    crate::settle();
    let push = peak(a, &store, &["push", "-q", &image])?;
    ok({
        let mut c = rbuild(a, &store);
        c.args(["rmi", &image]);
        c
    })?;
    ok({
        let mut c = rbuild(a, &store);
        c.args(["prune", "-a"]);
        c
    })?;
    let pull = peak(a, &store, &["pull", "-q", &image])?;
    // A no-op build of a big context.
    let ctx = work.join("ctx");
    crate::scaling::make_context_pub(&ctx, files)?;
    ok({
        let mut c = rbuild(a, &store);
        c.args(["build", "-q", "--network", "none", "-t", "rbuild-bench-mem/ctx"]).arg(&ctx);
        c
    })?;
    let noop = peak(
        a,
        &store,
        &["build", "-q", "--network", "none", "-t", "rbuild-bench-mem/ctx", ctx.to_str().unwrap_or("")],
    )?;
    let _ = Command::new(&a.rbuild).arg("--root").arg(&store).arg("__netns-teardown").output();
    let mib = |k: u64| k / 1024;
    let mut md = format!(
        "Measured {} on {}; peak resident memory (`/usr/bin/time -v`), goal < {GOAL_MIB} MiB each.\n\n| command | MiB |\n|---|---|\n",
        today(),
        machine()
    );
    for (what, k) in [("push.big (gzip)", push), ("pull.big", pull), (&*format!("no-op build, {files} files"), noop)] {
        md.push_str(&format!("| {what} | {} |\n", mib(k)));
    }
    std::fs::create_dir_all(&a.out).map_err(|e| e.to_string())?;
    std::fs::write(a.out.join("memory.md"), &md).map_err(|e| e.to_string())?;
    print!("{md}");
    Ok(())
}
