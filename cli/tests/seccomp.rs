//! docker's seccomp profile in `run`, a RUN step and `exec`, as root: a static probe makes
//! raw syscalls inside the container and prints the errno of each.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// The probe the runtime's seccomp tests use, built statically into `dir`.
fn build_probe(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("probe");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/src/sandbox/seccomp/testdata/probe.c");
    let cc = std::process::Command::new("cc").args(["-static", "-O2", "-o"]).arg(&out).arg(src).output();
    let cc = cc.expect("cc (gcc) builds the seccomp probe");
    assert!(cc.status.success(), "cc {src}: {}", String::from_utf8_lossy(&cc.stderr));
    out
}

// errno values on x86_64.
const EPERM: i32 = 1;
const ESRCH: i32 = 3;
const EFAULT: i32 = 14;
const EINVAL: i32 = 22;
const ENOSYS: i32 = 38;

/// Calls whose answer tells the filter from the kernel, for docker's default capabilities.
/// The container is root, so calls the filter lets through give the kernel's own errno.
const DEFAULT_CALLS: &[(&str, &[i32])] = &[
    ("64:39", &[0]),                           // getpid
    ("64:272:0", &[EPERM]),                    // unshare(0): the kernel would succeed
    ("64:250:0:0xffffffffffffffff", &[EPERM]), // keyctl(KEYCTL_GET_KEYRING_ID, thread keyring)
    ("64:435", &[ENOSYS]),                     // clone3: libc falls back to clone
    ("64:56:0x10020200", &[EPERM]),            // clone(CLONE_NEWUSER | CLONE_NEWNS | CLONE_FS)
    ("64:135:0xffffffff", &[0]),               // personality(query)
    ("64:135:0x400000", &[EPERM]),             // personality(READ_IMPLIES_EXEC): the kernel would allow
    ("64:41:40:1", &[EPERM]),                  // socket(AF_VSOCK, SOCK_STREAM)
    ("64:161", &[EFAULT]),                     // chroot(NULL): CAP_SYS_CHROOT is a default
    ("64:101:0x7fff", &[ESRCH]),               // ptrace: allowed on kernels >= 4.8
    ("64:450", &[EPERM]),                      // set_mempolicy_home_node: needs CAP_SYS_NICE
    ("64:457", &[ENOSYS]),                     // statmount: past the profile's last syscall
    ("32:20", &[0]),                           // i386 getpid (32-bit programs run, as under docker)
    ("32:310:0", &[EPERM]),                    // i386 unshare(0)
    ("x32:165", &[EPERM]),                     // x32 mount
];

fn probe_args<'a>(probe: &'a str, calls: &[(&'a str, &[i32])]) -> Vec<&'a str> {
    let mut a = vec![probe, "--status"];
    a.extend(calls.iter().map(|c| c.0));
    a
}

/// Checks the probe's output: every call's errno, and one seccomp filter in force.
fn check(out: &str, calls: &[(&str, &[i32])]) {
    assert!(out.contains("Seccomp:\t2\n") && out.contains("Seccomp_filters:\t1\n"), "{out}");
    for (call, want) in calls {
        let got = out
            .lines()
            .find_map(|l| l.strip_prefix(call).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{call} missing from the probe's output: {out}"));
        let got: i32 = got.parse().unwrap();
        assert!(want.contains(&got), "{call}: errno {got}, want one of {want:?}\n{out}");
    }
}

struct RemoveContainer<'a>(&'a Env, &'a str);
impl Drop for RemoveContainer<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["rm", "-f", self.1]);
    }
}

#[test]
fn run_build_steps_and_exec_get_dockers_filter() {
    let env = Env::with_base();
    let dir = env.path("probe");
    build_probe(&dir);
    let mount = format!("{}:/p:ro", dir.display());

    // run
    let mut a = vec!["run", "--rm", "-v", &mount, BASE];
    a.extend(probe_args("/p/probe", DEFAULT_CALLS));
    check(&env.ok(&a), DEFAULT_CALLS);

    // a RUN step
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(dir.join("probe"), ctx.join("probe")).unwrap();
    let calls: Vec<&str> = DEFAULT_CALLS.iter().map(|c| c.0).collect();
    let dockerfile = format!("FROM {BASE}\nCOPY probe /probe\nRUN /probe --status {} > /result\n", calls.join(" "));
    context(&ctx, &[("Dockerfile", &dockerfile)]);
    build(&env, &ctx, &["-t", "seccomp/step:1"]);
    check(&env.ok(&["run", "--rm", "seccomp/step:1", "cat", "/result"]), DEFAULT_CALLS);

    // exec
    env.ok(&["run", "-d", "--name", "sc", "-v", &mount, BASE, "sleep", "300"]);
    let _rm = RemoveContainer(&env, "sc");
    let mut a = vec!["exec", "sc"];
    a.extend(probe_args("/p/probe", DEFAULT_CALLS));
    check(&env.ok(&a), DEFAULT_CALLS);
}

#[test]
fn capabilities_decide_the_profile_as_in_docker() {
    let env = Env::with_base();
    let dir = env.path("probe");
    build_probe(&dir);
    let mount = format!("{}:/p:ro", dir.display());
    let run = |caps: &[&str], calls: &[(&str, &[i32])]| {
        let mut a = vec!["run", "--rm", "-v", &mount];
        a.extend_from_slice(caps);
        a.push(BASE);
        a.extend(probe_args("/p/probe", calls));
        check(&env.ok(&a), calls);
    };
    // CAP_SYS_ADMIN opens unshare, clone with namespace flags and clone3.
    run(
        &["--cap-add", "SYS_ADMIN"],
        &[
            ("64:272:0", &[0]),
            ("64:56:0x20200", &[EINVAL]), // clone(CLONE_NEWNS | CLONE_FS): allowed, then invalid
            ("64:435", &[EINVAL]),        // clone3(NULL, 0): allowed, then invalid
            ("64:450", &[EPERM]),
        ],
    );
    // Without CAP_SYS_CHROOT, chroot is refused by the filter.
    run(&["--cap-drop", "SYS_CHROOT"], &[("64:161", &[EPERM]), ("64:39", &[0])]);
    run(&["--cap-drop", "ALL"], &[("64:161", &[EPERM]), ("64:101:0x7fff", &[ESRCH])]);
}
