//! The sandbox against an attacker's Dockerfile or image, and docker's defaults exactly
//! (as root, on the busybox anchor image). Each test cleans up what it makes.

mod common;

use common::*;
use std::path::Path;

/// A loop device over a file of the test's, detached on drop.
struct Loop {
    dev: String,
}

impl Loop {
    fn over(file: &Path) -> Loop {
        let dev = sh_ok(&format!("losetup -f --show {}", file.display())).trim().to_string();
        assert!(dev.starts_with("/dev/loop"), "{dev}");
        Loop { dev }
    }
    fn minor(&self) -> u32 {
        self.dev.trim_start_matches("/dev/loop").parse().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = sh(&format!("losetup -d {}", self.dev));
    }
}

fn rbuild_cgroups() -> Vec<String> {
    let mut out = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if let Ok(rd) = std::fs::read_dir(ctrl.path().join("rbuild")) {
            out.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path().display().to_string()));
        }
    }
    out
}

/// Regression: RUN steps ran in the root of the devices cgroup, so a Dockerfile could
/// mknod a host block device and read it.
#[test]
fn run_steps_cannot_open_host_devices() {
    let env = Env::with_base();
    let disk = env.path("disk.img");
    std::fs::write(&disk, b"HOST-DISK-SECRET".repeat(64)).unwrap();
    let lo = Loop::over(&disk);
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\nRUN mknod /tmp/d b 7 {} && (head -c 64 /tmp/d > /out 2>/err; cat /out /err; true)\n",
                lo.minor()
            ),
        )],
    );
    let out = env.run(&["build", "--no-cache", "--progress", "plain", ctx.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("HOST-DISK-SECRET"), "a RUN step read a host block device: {text}");
    assert!(text.contains("Operation not permitted"), "{text}");
    // The same for a container; its cgroup goes with it.
    let name = unique("dev");
    let run =
        env.run(&["run", "--name", &name, BASE, "sh", "-c", &format!("mknod /d b 7 {} && head -c 64 /d", lo.minor())]);
    assert!(!String::from_utf8_lossy(&run.stdout).contains("HOST-DISK-SECRET"));
    assert!(!run.status.success());
    let id = env.ok(&["inspect", "--format", "{{.Id}}", &name]).trim().to_string();
    env.ok(&["rm", &name]);
    let left: Vec<String> = rbuild_cgroups().into_iter().filter(|c| c.ends_with(&id)).collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}

fn status_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs") || l.starts_with("Seccomp:"))
        .map(String::from)
        .collect()
}

/// docker's defaults: NoNewPrivs 0, Seccomp 2, docker's capabilities (none held by a
/// non-root user) in `run`, in a RUN step and in `exec`; compared with docker itself.
#[test]
fn process_status_as_docker_gives_it() {
    let env = Env::with_base();
    for user in ["0", "1000"] {
        let docker = sh_ok(&format!("docker run --rm --network none -u {user} {BASE} cat /proc/self/status"));
        let ours = env.ok(&["run", "--rm", "-u", user, BASE, "cat", "/proc/self/status"]);
        assert_eq!(status_lines(&ours), status_lines(&docker), "user {user}");
    }
    let ours = status_lines(&env.ok(&["run", "--rm", BASE, "cat", "/proc/self/status"]));
    assert!(ours.contains(&"NoNewPrivs:\t0".to_string()) && ours.contains(&"Seccomp:\t2".to_string()), "{ours:?}");
    assert!(ours.contains(&"CapEff:\t00000000a80425fb".to_string()), "{ours:?}");

    // A RUN step.
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[("Dockerfile", &format!("FROM {BASE}\nRUN grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status\n"))],
    );
    let out = env.run(&["build", "--no-cache", "--progress", "plain", ctx.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        text.contains("NoNewPrivs:\t0") && text.contains("Seccomp:\t2") && text.contains("CapEff:\t00000000a80425fb"),
        "{text}"
    );
    let out = env.run(&[
        "build",
        "--no-cache",
        "--progress",
        "plain",
        "--security-opt",
        "no-new-privileges",
        ctx.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NoNewPrivs:\t1"));

    // exec, in a container with and without no-new-privileges.
    let name = unique("nnp");
    env.ok(&["run", "-d", "--name", &name, BASE, "sleep", "30"]);
    let _rm = RmContainer(&env, name.clone());
    let e = env.ok(&["exec", &name, "cat", "/proc/self/status"]);
    assert!(status_lines(&e).contains(&"NoNewPrivs:\t0".to_string()), "{e}");
    assert!(status_lines(&e).contains(&"Seccomp:\t2".to_string()), "{e}");
    let strict = unique("nnp1");
    env.ok(&["run", "-d", "--name", &strict, "--security-opt", "no-new-privileges", BASE, "sleep", "30"]);
    let _rm2 = RmContainer(&env, strict.clone());
    assert!(env.ok(&["exec", &strict, "cat", "/proc/self/status"]).contains("NoNewPrivs:\t1"));
    assert!(env
        .ok(&["run", "--rm", "--security-opt", "no-new-privileges=true", BASE, "cat", "/proc/self/status"])
        .contains("NoNewPrivs:\t1"));
    let bad = env.run(&["run", "--rm", "--security-opt", "no-new-privileges=maybe", BASE, "true"]);
    assert!(!bad.status.success());
}

/// The network sysctls docker sets in a container's own namespace (ping as a user).
#[test]
fn ping_group_range_and_low_ports_as_docker() {
    let env = Env::with_base();
    let cmd = "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start";
    let docker = sh_ok(&format!("docker run --rm --network none {BASE} sh -c '{cmd}'"));
    assert_eq!(env.ok(&["run", "--rm", BASE, "sh", "-c", cmd]), docker);
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nRUN {cmd} > /sysctls\n"))]);
    env.ok(&["build", "-t", "sysctls", ctx.to_str().unwrap()]);
    assert_eq!(env.ok(&["run", "--rm", "sysctls", "cat", "/sysctls"]), docker);
}

/// `--privileged`: every capability, no seccomp filter, the host's devices, writable /sys.
#[test]
fn privileged_as_docker_defines_it() {
    let env = Env::with_base();
    let out = env.ok(&[
        "run",
        "--rm",
        "--privileged",
        BASE,
        "sh",
        "-c",
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev/loop-control; grep ' /sys ' /proc/mounts",
    ]);
    assert!(out.contains("Seccomp:\t0"), "{out}");
    // Every capability this machine's bounding set has (all of them, at most).
    let host_bounding = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = host_bounding.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap().trim().to_string();
    assert!(out.contains(&format!("CapEff:\t{bnd}")), "{out}");
    assert!(out.contains("/dev/loop-control"), "{out}");
    assert!(out.contains("sysfs /sys sysfs rw"), "{out}");
    let plain = env.ok(&["run", "--rm", BASE, "sh", "-c", "ls /dev/loop-control 2>&1; grep ' /sys ' /proc/mounts"]);
    assert!(plain.contains("No such file") && plain.contains("sysfs /sys sysfs ro"), "{plain}");
}

/// Removes a container on drop.
struct RmContainer<'a>(&'a Env, String);
impl Drop for RmContainer<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["rm", "-f", &self.1]);
    }
}
