//! `kill -9` of `load` and `import` at random moments, again and again: afterwards `fsck`
//! passes (no referenced blob is missing or half written), and a full run still works.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// A docker-archive with three layers of random data (~24 MiB in all).
fn make_archive(env: &Env) -> std::path::PathBuf {
    let dir = env.path("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let script = r#"
import tarfile, io, os, json, hashlib, sys
d = sys.argv[1]
diffs = []
layers = []
for n in range(3):
    p = os.path.join(d, f"l{n}.tar")
    with tarfile.open(p, "w") as t:
        for f in range(8):
            data = os.urandom(1 << 20)
            i = tarfile.TarInfo(f"layer{n}/file{f}"); i.size = len(data); i.mode = 0o644
            t.addfile(i, io.BytesIO(data))
    diffs.append("sha256:" + hashlib.sha256(open(p, "rb").read()).hexdigest())
    layers.append(f"l{n}.tar")
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
open(os.path.join(d, "c.json"), "wb").write(cfg)
json.dump([{"Config": "c.json", "RepoTags": ["crash/test:1"], "Layers": layers}], open(os.path.join(d, "manifest.json"), "w"))
"#;
    std::fs::write(dir.join("gen.py"), script).unwrap();
    sh_ok(&format!("python3 {0}/gen.py {0}", dir.display()));
    let arch = env.path("crash.tar");
    sh_ok(&format!("tar -C {} -cf {} l0.tar l1.tar l2.tar c.json manifest.json", dir.display(), arch.display()));
    arch
}

fn kill_loop(env: &Env, args: &[&str], rounds: u32) {
    // How long does an uninterrupted run take? Kills land anywhere inside that window.
    let probe = Env::new();
    let t = Instant::now();
    let out = probe.cmd().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = t.elapsed().max(Duration::from_millis(20));
    let mut seed: u64 =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % (full.as_micros() as u64 + 1));
        let mut child = env
            .cmd()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let fsck = env.run(&["fsck"]);
        assert!(
            fsck.status.success(),
            "round {round}: fsck failed after kill -9 at {delay:?}:\n{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }
    // Whatever was left half done, a full run completes and prune tidies up.
    env.ok(args);
    env.ok(&["fsck"]);
    env.ok(&["prune"]);
    env.ok(&["fsck"]);
}

#[test]
fn kill_9_during_load() {
    let env = Env::new();
    let arch = make_archive(&env);
    kill_loop(&env, &["load", "-i", arch.to_str().unwrap()], 25);
    assert!(env.ok(&["images"]).contains("crash/test"));
}

#[test]
fn kill_9_during_import() {
    let env = Env::new();
    let arch = make_archive(&env);
    kill_loop(&env, &["import", arch.to_str().unwrap(), "crash/imported:1"], 25);
    assert!(env.ok(&["images"]).contains("crash/imported"));
}
