//! The docker engine as the oracle: commands, cleanup guards, and polling for states.

use super::{stderr, stdout};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("docker")
}

pub fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
    stdout(&o)
}

/// Removes docker containers (and their anonymous volumes) on drop.
pub struct DockerContainers(pub Vec<String>);
impl Drop for DockerContainers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
    }
}

/// Removes docker volumes on drop.
pub struct DockerVolumes(pub Vec<String>);
impl Drop for DockerVolumes {
    fn drop(&mut self) {
        for v in &self.0 {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
    }
}

/// Polls `f` until it holds; panics (naming `what`) if it does not within 60 s — a
/// deadline for a state to be reached, not a measure of speed.
pub fn poll(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(60), "never reached: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
