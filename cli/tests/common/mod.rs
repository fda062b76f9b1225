//! Helpers for tests that drive the real `rbuild` binary.
#![allow(dead_code)]

pub mod docker;
pub mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BASE: &str = "rbuild-anchor/busybox:1";

/// The rbuild binary the tests run: cargo's, or `RBUILD_TEST_BIN`.
pub fn bin() -> PathBuf {
    std::env::var_os("RBUILD_TEST_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rbuild")), PathBuf::from)
}

/// A command's standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    assert!(p.is_dir(), "../shared (the peer test data) is missing at {}", p.display());
    p
}

pub fn require_root() {
    assert!(rustix::process::geteuid().is_root(), "this test needs root (namespaces, mounts, devices)");
}

/// A store in a temp dir, with helpers to run rbuild against it. Dropping it removes
/// the store's network namespace (and its pasta) before the directory.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.root().exists() {
            // Containers a failed test left running would outlive their store.
            if let Ok(o) = self.cmd().args(["ps", "-aq", "--no-trunc"]).output() {
                let ids: Vec<String> =
                    String::from_utf8_lossy(&o.stdout).split_whitespace().map(String::from).collect();
                if !ids.is_empty() {
                    let _ = self.cmd().args(["rm", "-f"]).args(&ids).output();
                }
            }
            let _ = self.cmd().arg("__netns-teardown").output();
        }
    }
}

impl Env {
    pub fn new() -> Env {
        Env { dir: tempfile::Builder::new().prefix("rbuild-test-").tempdir_in("/var/tmp").unwrap() }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A store holding the busybox anchor image (root: the tests run containers).
    pub fn with_base() -> Env {
        require_root();
        let env = Env::new();
        env.load_base();
        env
    }

    /// rbuild against this store: the binary cargo built, or `RBUILD_TEST_BIN` (to see a
    /// test fail on a build from before its fix).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root").arg(self.root());
        c
    }

    /// Runs rbuild with `args`; panics with its output unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "rbuild {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `script` run by /bin/sh in a new container of `image`; its output.
    pub fn sh_in(&self, image: &str, script: &str) -> String {
        self.ok(&["run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script])
    }

    /// Flips a bit in the middle of the last layer blob of `image` (built or loaded in
    /// this store); returns that layer's digest.
    pub fn flip_a_bit_of_the_last_layer(&self, image: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        let layer = v[0]["RootFS"]["Layers"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
        let blob = self.root().join("blobs/sha256").join(layer.trim_start_matches("sha256:"));
        let mut data = std::fs::read(&blob).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 1;
        std::fs::write(&blob, data).unwrap();
        layer
    }

    /// Loads the busybox anchor image (from the docker engine) into this store.
    pub fn load_base(&self) {
        let tar = base_archive();
        self.ok(&["load", "-i", tar.to_str().unwrap()]);
    }
}

/// `docker save` of the base image, made once in cargo's scratch dir for tests (under
/// target/) and shared by every test binary and run: nothing is left in /tmp.
pub fn base_archive() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let p = dir.join("rbuild-test-base.tar");
        if !p.exists() {
            let tmp = dir.join(format!("rbuild-test-base.tar.{}", std::process::id()));
            let st = Command::new("docker")
                .args(["save", "-o"])
                .arg(&tmp)
                .arg(BASE)
                .status()
                .expect("docker is needed: run ../shared/anchors/setup.sh");
            assert!(st.success(), "docker save {BASE} failed: run ../shared/anchors/setup.sh");
            std::fs::rename(&tmp, &p).unwrap();
        }
        p
    })
    .clone()
}

pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).stdin(Stdio::null()).output().unwrap()
}

pub fn sh_ok(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "{cmd} failed: {}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes docker images on drop.
pub struct DockerImages(pub Vec<String>);
impl Drop for DockerImages {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
    )
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Writes a context: (relative path, content) pairs.
pub fn context(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
}

/// Builds with plain progress; returns (instructions that ran, instructions served from
/// the cache, image id).
pub fn build(env: &Env, ctx: &Path, extra: &[&str]) -> (Vec<String>, Vec<String>, String) {
    let mut args = vec!["build", "--progress", "plain", "--iidfile"];
    let iid = env.path("iid");
    args.push(iid.to_str().unwrap());
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = env.run(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed: {err}");
    let mut titles = std::collections::BTreeMap::new();
    let (mut ran, mut cached) = (vec![], vec![]);
    for l in err.lines() {
        let Some(rest) = l.strip_prefix('#') else { continue };
        let (id, text) = rest.split_once(' ').unwrap_or((rest, ""));
        if let Some(t) = text.strip_prefix('[') {
            let title = t.split_once("] ").map(|x| x.1).unwrap_or("").to_string();
            titles.insert(id.to_string(), title);
        } else if text == "CACHED" {
            cached.push(titles[id].clone());
        } else if text.starts_with("DONE") {
            ran.push(titles[id].clone());
        }
    }
    ran.retain(|t| !t.starts_with("FROM"));
    (ran, cached, std::fs::read_to_string(iid).unwrap())
}

/// Waits (up to 10 s) until `sh -c TEST` succeeds in the running container `ctr` — tests
/// wait for a container to reach a point this way, never for a fixed time.
pub fn wait_in(env: &Env, ctr: &str, test: &str) {
    let t = std::time::Instant::now();
    while !env.run(&["exec", ctr, "sh", "-c", test]).status.success() {
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "{ctr}: `{test}` never held");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A second, different image in the store (a one-layer import named `name`); its id.
pub fn other_image(env: &Env, name: &str) -> String {
    let tar = env.path("other.tar");
    let dir = env.path("other-root");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/other"), name).unwrap();
    sh_ok(&format!("tar -C {} -cf {} .", dir.display(), tar.display()));
    env.ok(&["import", tar.to_str().unwrap(), name]).trim().to_string()
}

/// The lines of `s`, sorted (for comparing listings whose order may differ).
pub fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}
