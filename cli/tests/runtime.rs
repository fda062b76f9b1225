//! The sandbox and the container lifecycle, as root, on the busybox anchor image.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn run(env: &Env, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    env.ok(&a)
}

fn cgroup_dirs() -> Vec<String> {
    let mut out = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if let Ok(rd) = std::fs::read_dir(ctrl.path().join("rbuild")) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out.sort();
    out
}

/// The rbuild cgroups of the containers whose ids start with one of `ids`.
fn cgroups_of(ids: &[String]) -> Vec<String> {
    cgroup_dirs()
        .into_iter()
        .filter(|d| ids.iter().any(|i| d.rsplit('/').next().unwrap().starts_with(i.as_str())))
        .collect()
}

#[test]
fn isolation_matches_docker_defaults() {
    let env = Env::with_base();
    let marker = env.path("host-only-marker");
    std::fs::write(&marker, "secret").unwrap();
    let out = run(
        &env,
        &[BASE, "sh", "-c", &format!("echo pid=$$; ls {} 2>&1; hostname; ls /sys/class/net | wc -l; grep -E 'CapEff|NoNewPrivs|^Seccomp:' /proc/self/status", marker.display())],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1", "{out}");
    assert!(lines[1].contains("No such file or directory"), "host file visible: {out}");
    assert_eq!(lines[2].len(), 12, "hostname is the short container id: {out}");
    assert_ne!(lines[2], std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim());
    assert_eq!(lines[3].trim(), "2", "lo and eth0 on the default bridge: {out}");
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "docker does not set no_new_privs by default: {out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // Namespaced syscalls are refused by seccomp (without CAP_SYS_ADMIN).
    let denied = env.run(&["run", "--rm", BASE, "sh", "-c", "unshare -n true"]);
    assert!(!denied.status.success());
}

#[test]
fn only_lo_unless_host_network() {
    let env = Env::with_base();
    let links = run(&env, &["--network", "none", BASE, "sh", "-c", "ls /sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), vec!["lo"]);
    let links = run(&env, &[BASE, "sh", "-c", "ls /sys/class/net"]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), vec!["eth0", "lo"], "the default bridge");
    let host = run(&env, &["--network", "host", BASE, "sh", "-c", "ls /sys/class/net"]);
    let host_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(host.split_whitespace().count(), host_links.len(), "{host}");
}

#[test]
fn binds_rw_and_ro() {
    let env = Env::with_base();
    let h = env.path("hostdir");
    std::fs::create_dir_all(&h).unwrap();
    std::fs::write(h.join("in"), "from-host").unwrap();
    let out = run(&env, &["-v", &format!("{}:/h", h.display()), BASE, "sh", "-c", "cat /h/in; echo from-ctr > /h/out"]);
    assert_eq!(out.trim(), "from-host");
    assert_eq!(std::fs::read_to_string(h.join("out")).unwrap(), "from-ctr\n");
    let ro = env.run(&["run", "--rm", "-v", &format!("{}:/h:ro", h.display()), BASE, "sh", "-c", "echo x > /h/nope"]);
    assert!(!ro.status.success());
    assert!(String::from_utf8_lossy(&ro.stderr).contains("Read-only"));
    assert!(!h.join("nope").exists());
}

#[test]
fn anonymous_volume_survives_stop_start_and_is_shared() {
    let env = Env::with_base();
    env.ok(&["import", "--change", "VOLUME /data", "/var/tmp/rbuild-anchors/busybox-rootfs.tar", "vol/img:1"]);
    env.ok(&["run", "-d", "--name", "vv", "vol/img:1", "sh", "-c", "echo kept > /data/k; sleep 300"]);
    // Stop only once the container wrote the file (a fixed wait lost the race under load).
    wait_in(&env, "vv", "test -s /data/k");
    env.ok(&["stop", "-t", "0", "vv"]);
    env.ok(&["start", "vv"]);
    assert_eq!(env.ok(&["exec", "vv", "cat", "/data/k"]).trim(), "kept");
    assert_eq!(run(&env, &["--volumes-from", "vv", BASE, "cat", "/data/k"]).trim(), "kept");
    let vols_before = std::fs::read_dir(env.root().join("rbuild/volumes")).unwrap().count();
    env.ok(&["rm", "-f", "-v", "vv"]);
    assert_eq!(std::fs::read_dir(env.root().join("rbuild/volumes")).unwrap().count(), vols_before - 1);
}

#[test]
fn detached_lifecycle() {
    let env = Env::with_base();
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "life",
        BASE,
        "sh",
        "-c",
        "echo hello-log; trap 'echo got-term; exit 3' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    let t = Instant::now();
    while env.ok(&["logs", "life"]).trim().is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("life") && ps.contains("Up "), "{ps}");
    assert_eq!(env.ok(&["logs", "life"]).trim(), "hello-log");
    assert_eq!(env.ok(&["exec", "life", "sh", "-c", "echo in-$((40+2))"]).trim(), "in-42");
    // SIGTERM is handled: the trap's exit code.
    env.ok(&["stop", "-t", "5", "life"]);
    assert!(env.ok(&["logs", "life"]).contains("got-term"));
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "life"])).unwrap();
    assert_eq!(v[0]["State"]["ExitCode"], 3);
    assert!(!env.ok(&["ps"]).contains("life"));
    assert!(env.ok(&["ps", "-a"]).contains("Exited (3)"));
    env.ok(&["rm", "life"]);
    assert!(!env.ok(&["ps", "-a"]).contains("life"));
}

#[test]
fn stop_kills_after_the_timeout() {
    let env = Env::with_base();
    // `sleep` as PID 1 ignores SIGTERM: only SIGKILL ends it.
    env.ok(&["run", "-d", "--name", "stubborn", BASE, "sleep", "300"]);
    let t = Instant::now();
    env.ok(&["stop", "-t", "1", "stubborn"]);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(8), "{took:?}");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "stubborn"])).unwrap();
    assert_eq!(v[0]["State"]["ExitCode"], 137);
    env.ok(&["rm", "stubborn"]);
}

/// `run --rm` returns once the container is gone (regression: its removal, 1.5-2 ms of a
/// `run --rm true`, now happens after): its name is free at once, `ps -a` does not list
/// it, nothing of it is in containers/, and a remover process takes its directory (set
/// aside in tmp/) and its cgroup soon after.
#[test]
fn a_foreground_rm_container_is_gone_when_run_returns() {
    let env = Env::with_base();
    for _ in 0..3 {
        let ids = vec![env.ok(&["run", "--rm", "--name", "once", BASE, "hostname"]).trim().to_string()];
        assert!(!env.ok(&["ps", "-a"]).contains("once"));
        assert_eq!(std::fs::read_dir(env.root().join("rbuild/containers")).unwrap().count(), 0);
        let t = Instant::now();
        let left =
            || std::fs::read_dir(env.root().join("rbuild/tmp")).unwrap().count() > 0 || !cgroups_of(&ids).is_empty();
        while left() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!left(), "the container's directory or cgroup was left behind");
    }
    // Its exit code is the run's, as before.
    let out = env.run(&["run", "--rm", BASE, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn rm_leaves_nothing() {
    let env = Env::with_base();
    // A container's hostname is its short ID: its cgroup would be rbuild/<ID…>.
    let mut ids = Vec::new();
    ids.push(env.ok(&["run", "--rm", BASE, "hostname"]).trim().to_string());
    ids.push(
        env.ok(&["run", "--rm", "-v", "/tmp:/t", "--tmpfs", "/x", BASE, "sh", "-c", "touch /x/y; hostname"])
            .trim()
            .to_string(),
    );
    let id = env.ok(&["run", "-d", "--rm", BASE, "sleep", "0.2"]);
    ids.push(id.trim()[..12].to_string());
    let dir = env.root().join("rbuild/containers").join(id.trim());
    let pins = || std::fs::read_dir(env.root().join("rbuild/pins")).map(|d| d.count()).unwrap_or(0);
    // Every process that opened the store (the shims too: the foreground one was left
    // holding its lease file) gives it up as it exits.
    let leases = || std::fs::read_dir(env.root().join("rbuild/procs")).map(|d| d.count()).unwrap_or(0);
    // The shim removes the container's dir, then gives up its pin and its lease; a
    // foreground one leaves the dir (set aside in tmp/) and the cgroup to a remover
    // process: wait.
    let tmp_entries = || std::fs::read_dir(env.root().join("rbuild/tmp")).map(|d| d.count()).unwrap_or(0);
    let cgroups_left = || !cgroups_of(&ids).is_empty();
    let t = Instant::now();
    while (dir.exists() || pins() > 0 || leases() > 0 || tmp_entries() > 0 || cgroups_left())
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!dir.exists(), "detached --rm container dir left behind");
    assert_eq!(std::fs::read_dir(env.root().join("rbuild/containers")).unwrap().count(), 0);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(env.root().to_str().unwrap()), "mounts left: {mountinfo}");
    let left = cgroups_of(&ids);
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    assert_eq!(pins(), 0, "pins left");
    assert_eq!(leases(), 0, "lease files of exited processes left in rbuild/procs");
    assert_eq!(std::fs::read_dir(env.root().join("rbuild/tmp")).unwrap().count(), 0, "temp files left");
}

#[test]
fn exit_codes_and_signals() {
    let env = Env::with_base();
    let code = |args: &[&str]| {
        let mut a = vec!["run", "--rm", BASE];
        a.extend_from_slice(args);
        env.run(&a).status.code()
    };
    assert_eq!(code(&["sh", "-c", "exit 7"]), Some(7));
    assert_eq!(code(&["true"]), Some(0));
    // A signal the process does not catch: 128 + n (it is not PID 1 here).
    assert_eq!(code(&["sh", "-c", "sh -c 'kill -9 $$'; exit $?"]), Some(137));
    assert_eq!(code(&["nosuchcommand"]), Some(127));
    let e = env.run(&["run", "--rm", BASE, "nosuchcommand"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("executable file not found in $PATH"));
    // kill -s forwards the signal to PID 1.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        BASE,
        "sh",
        "-c",
        "trap 'exit 42' USR1; touch /ready; while true; do sleep 0.1; done",
    ]);
    wait_in(&env, "sig", "test -e /ready");
    env.ok(&["kill", "-s", "USR1", "sig"]);
    assert_eq!(env.ok(&["wait", "sig"]).trim(), "42");
    env.ok(&["rm", "sig"]);
}

#[test]
fn published_port_serves_http() {
    let env = Env::with_base();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        BASE,
        "sh",
        "-c",
        "mkdir /www && echo served-by-busybox > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let t = Instant::now();
    let body = loop {
        let o = sh(&format!("curl -s --max-time 2 http://127.0.0.1:{port}/index.html"));
        let s = String::from_utf8_lossy(&o.stdout).to_string();
        if s.contains("served") || t.elapsed() > Duration::from_secs(5) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    env.ok(&["rm", "-f", "web"]);
    assert_eq!(body.trim(), "served-by-busybox");
}

#[test]
fn memory_limit_kills_a_hog_with_137() {
    let env = Env::with_base();
    let out = env.run(&["run", "--rm", "--memory", "32m", BASE, "sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"]);
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn users_groups_and_workdir() {
    let env = Env::with_base();
    // docker's output for both (the primary gid is a supplementary group too).
    assert_eq!(run(&env, &["-u", "app", BASE, "id"]).trim(), "uid=1000(app) gid=1000(app) groups=1000(app)");
    assert_eq!(run(&env, &["-u", "1234:5678", BASE, "id"]).trim(), "uid=1234 gid=5678 groups=5678");
    assert_eq!(
        run(&env, &["-u", "app", BASE, "sh", "-c", "grep CapEff /proc/self/status"]).trim(),
        "CapEff:\t0000000000000000"
    );
    assert_eq!(run(&env, &["-w", "/made/by/workdir", BASE, "pwd"]).trim(), "/made/by/workdir");
    let bad = env.run(&["run", "--rm", "-u", "nobody-here", BASE, "true"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unable to find user nobody-here"));
    let envs = run(&env, &["-e", "A=1", "-e", "HOME=/x", BASE, "sh", "-c", "echo $A $HOME $PATH"]);
    assert_eq!(envs.trim(), "1 /x /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

#[test]
fn init_reaps_zombies() {
    let env = Env::with_base();
    // Orphans re-parented to PID 1 are reaped by --init; without it, sh as PID 1 is the
    // reaper, so compare with a PID 1 that never waits (sleep).
    let out = run(
        &env,
        &[
            "--init",
            BASE,
            "sh",
            "-c",
            "(sh -c 'sleep 0.1 & exec true') ; sleep 0.5; ps -o stat,comm | grep -c '^Z' || true",
        ],
    );
    assert_eq!(out.trim(), "0", "{out}");
}

#[test]
fn read_only_root_and_tmpfs() {
    let env = Env::with_base();
    let out = run(
        &env,
        &[
            "--read-only",
            "--tmpfs",
            "/scratch",
            BASE,
            "sh",
            "-c",
            "touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs",
        ],
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), vec!["ro", "tmpfs"]);
}

#[test]
fn killed_monitor_never_leaves_a_running_container() {
    let env = Env::with_base();
    let id = env.ok(&["run", "-d", "--name", "orphan", BASE, "sleep", "300"]);
    std::thread::sleep(Duration::from_millis(200));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.root().join("rbuild/containers").join(id.trim()).join("state.json")).unwrap(),
    )
    .unwrap();
    let shim = state["shim_pid"].as_i64().unwrap();
    assert!(shim > 0);
    sh_ok(&format!("kill -9 {shim}"));
    let t = Instant::now();
    loop {
        let ps = env.ok(&["ps"]);
        if !ps.contains("orphan") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "still shown running: {ps}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(env.ok(&["ps", "-a"]).contains("Exited"));
    env.ok(&["rm", "orphan"]);
}

#[test]
fn cp_diff_commit_export() {
    let env = Env::with_base();
    env.ok(&["run", "-d", "--name", "files", BASE, "sh", "-c", "echo new > /newfile; rm /etc/group; sleep 300"]);
    wait_in(&env, "files", "test -e /newfile && ! test -e /etc/group");
    let diff = env.ok(&["diff", "files"]);
    assert!(diff.contains("A /newfile") && diff.contains("D /etc/group") && diff.contains("C /etc"), "{diff}");
    let src = env.path("in.txt");
    std::fs::write(&src, "copied-in").unwrap();
    env.ok(&["cp", src.to_str().unwrap(), "files:/tmp/"]);
    assert_eq!(env.ok(&["exec", "files", "cat", "/tmp/in.txt"]), "copied-in");
    let out = env.path("passwd");
    env.ok(&["cp", "files:/etc/passwd", out.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&out).unwrap().starts_with("root:x:0:0"));
    env.ok(&["commit", "-c", "ENV COMMITTED=yes", "files", "committed:1"]);
    assert_eq!(
        run(&env, &["committed:1", "sh", "-c", "cat /newfile; echo $COMMITTED; test -e /etc/group || echo gone"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["new", "yes", "gone"]
    );
    let tar = env.path("export.tar");
    env.ok(&["export", "-o", tar.to_str().unwrap(), "files"]);
    let list = sh_ok(&format!("tar tf {}", tar.display()));
    assert!(list.lines().any(|l| l == "newfile") && !list.lines().any(|l| l == "etc/group"), "{list}");
    env.ok(&["pause", "files"]);
    assert!(env.ok(&["ps"]).contains("(Paused)"));
    env.ok(&["unpause", "files"]);
    env.ok(&["rename", "files", "renamed"]);
    env.ok(&["rm", "-f", "renamed"]);
}

#[test]
fn tty_for_run_and_exec() {
    let env = Env::with_base();
    let bin = env!("CARGO_BIN_EXE_rbuild");
    let root = env.root();
    let o = sh(&format!(
        "printf 'test -t 0 && echo is-a-tty; exit 3\\n' | timeout 20 script -qec '{bin} --root {} run --rm -it {BASE} sh' /dev/null",
        root.display()
    ));
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("is-a-tty"));
    env.ok(&["run", "-d", "--name", "ttyexec", BASE, "sleep", "300"]);
    let o = sh(&format!(
        "printf 'tty; exit 4\\n' | timeout 20 script -qec '{bin} --root {} exec -it ttyexec sh' /dev/null",
        root.display()
    ));
    env.ok(&["rm", "-f", "ttyexec"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stdout).contains("/dev/pts/0"), "{}", String::from_utf8_lossy(&o.stdout));
}

/// A VOLUME starts with what the image has there (owner and mode too), or empty where it
/// has nothing — found without mounting the image when no layer holds the path.
#[test]
fn anonymous_volumes_start_from_the_image() {
    let env = Env::with_base();
    let ctx = env.path("volctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {BASE}\nRUN mkdir -p /data/sub && echo seed > /data/sub/f && chown 5:6 /data && chmod 710 /data\nVOLUME /data /empty\n"),
        )],
    );
    build(&env, &ctx, &["-t", "vol/seeded"]);
    assert_eq!(run(&env, &["vol/seeded", "cat", "/data/sub/f"]), "seed\n");
    assert_eq!(run(&env, &["vol/seeded", "stat", "-c", "%u:%g %a", "/data"]), "5:6 710\n");
    assert_eq!(
        run(&env, &["vol/seeded", "sh", "-c", "ls -A /empty | wc -l; stat -c %a /empty"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "755"]
    );
}

/// Only uppers nobody mounts again skip overlayfs's syncs (`volatile`): a build step's
/// and a `--rm` container's. A kept container's upper is mounted again on each start.
#[test]
fn only_throwaway_uppers_are_volatile() {
    let env = Env::with_base();
    let root_opts = "awk '$5 == \"/\" {print $NF}' /proc/self/mountinfo";
    assert!(run(&env, &[BASE, "sh", "-c", root_opts]).contains("volatile"));
    let kept = env.ok(&["run", "--name", "kept", BASE, "sh", "-c", root_opts]);
    assert!(!kept.contains("volatile"), "{kept}");
    env.ok(&["start", "kept"]);
    let ctx = env.path("stepctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nRUN {root_opts} > /opts\n"))]);
    build(&env, &ctx, &["-t", "vol/step"]);
    assert!(run(&env, &["vol/step", "cat", "/opts"]).contains("volatile"));
    env.ok(&["rm", "-f", "kept"]);
}

/// Regression (issue 12, 3): `cp` applied the copied tree as a layer, so a container's
/// file named `.wh.NAME` deleted the host's `DEST/NAME`, `.wh..wh..opq` emptied DEST and
/// `.wh...` removed what is beside DEST. Copies carry names literally, both ways, as
/// docker's do.
#[test]
fn cp_copies_whiteout_names_as_plain_files() {
    let env = Env::with_base();
    let make = "mkdir /d && echo a > /d/.wh.victim && echo b > /d/.wh..wh..opq && echo c > /d/.wh... && echo n > /d/n";
    env.ok(&["run", "--name", "wh", BASE, "sh", "-c", make]);
    let host = env.path("host");
    for dest in ["contents", "dir"] {
        std::fs::create_dir_all(host.join(dest)).unwrap();
        std::fs::write(host.join(dest).join("victim"), "host file").unwrap();
    }
    std::fs::write(host.join("precious"), "beside DEST").unwrap();
    env.ok(&["cp", "wh:/d/.", host.join("contents").to_str().unwrap()]);
    env.ok(&["cp", "wh:/d", host.join("dir").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(host.join("precious")).unwrap(), "beside DEST");
    for d in [host.join("contents"), host.join("dir/d")] {
        for (name, content) in [(".wh.victim", "a\n"), (".wh..wh..opq", "b\n"), (".wh...", "c\n"), ("n", "n\n")] {
            assert_eq!(std::fs::read_to_string(d.join(name)).unwrap(), content, "{}", d.join(name).display());
        }
    }
    for dest in ["contents", "dir"] {
        assert_eq!(std::fs::read_to_string(host.join(dest).join("victim")).unwrap(), "host file");
    }
    // Into the container: host files named like whiteouts stay files there too.
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join(".wh.passwd"), "literal").unwrap();
    std::fs::write(src.join(".wh..wh..opq"), "literal").unwrap();
    env.ok(&["cp", &format!("{}/.", src.display()), "wh:/etc"]);
    let back = env.path("back");
    env.ok(&["cp", "wh:/etc", back.to_str().unwrap()]);
    assert!(std::fs::read_to_string(back.join("passwd")).unwrap().starts_with("root:"), "/etc/passwd survives");
    assert!(back.join("group").exists(), "/etc is not emptied");
    assert_eq!(std::fs::read_to_string(back.join(".wh.passwd")).unwrap(), "literal");
    env.ok(&["rm", "wh"]);
}

/// Regression (issue 12, 4): a named volume filled from an image whose RUN made
/// `/vol/.wh...` lost its data (the fill applied the tree as a layer).
#[test]
fn volumes_fill_with_whiteout_names_as_plain_files() {
    let env = Env::with_base();
    let ctx = env.path("whvol");
    context(
        &ctx,
        &[("Dockerfile", &format!("FROM {BASE}\nRUN mkdir /vol && echo keep > /vol/data && echo x > /vol/.wh...\n"))],
    );
    build(&env, &ctx, &["-t", "vol/wh"]);
    let out = run(&env, &["-v", "whvol:/vol", "vol/wh", "sh", "-c", "cat /vol/data; ls -A /vol"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["keep", ".wh...", "data"], "{out}");
}

/// Regression (CLI issue): `cp CTR:PATH -` wrote a file named `-`, and `cp - CTR:PATH`
/// failed. `-` is a tar stream, as for docker: of PATH on stdout (the entry named by
/// PATH's last component, a symlink as itself), or extracted into the directory PATH.
#[test]
fn cp_dash_is_a_tar_stream_both_ways() {
    let env = Env::with_base();
    env.ok(&["run", "--name", "tarcp", BASE, "sh", "-c", "mkdir -p /d/sub && echo x > /d/sub/f && ln -s sub/f /d/l"]);
    let bin = env!("CARGO_BIN_EXE_rbuild");
    let root = env.root();
    let cwd = env.path("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let list = |src: &str| {
        sh_ok(&format!("cd {} && {bin} --root {} cp tarcp:{src} - | tar -tvf -", cwd.display(), root.display()))
    };
    let names = |l: &str| l.lines().map(|x| x.split_whitespace().nth(5).unwrap_or("").to_string()).collect::<Vec<_>>();
    assert_eq!(names(&list("/d")), ["d/", "d/l", "d/sub/", "d/sub/f"]);
    assert_eq!(names(&list("/d/.")), ["./", "./l", "./sub/", "./sub/f"]);
    assert_eq!(names(&list("/etc/passwd")), ["passwd"]);
    assert!(list("/d/l").contains("l -> sub/f"), "a symlink goes as itself");
    assert!(!cwd.join("-").exists(), "no file named '-'");
    // Into the container, from stdin (gzip too), into a directory.
    let src = env.path("src");
    std::fs::create_dir_all(src.join("in")).unwrap();
    std::fs::write(src.join("in/f"), "from stdin").unwrap();
    sh_ok(&format!("tar -C {} -czf - in | {bin} --root {} cp - tarcp:/d/sub", src.display(), root.display()));
    let back = sh_ok(&format!("{bin} --root {} cp tarcp:/d/sub/in/f - | tar -xOf -", root.display()));
    assert_eq!(back, "from stdin");
    let o = sh(&format!("tar -C {} -cf - in | {bin} --root {} cp - tarcp:/etc/passwd", src.display(), root.display()));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("must be a directory"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = sh(&format!("echo not a tar | {bin} --root {} cp - tarcp:/tmp", root.display()));
    assert!(!o.status.success());
    env.ok(&["rm", "tarcp"]);
}

/// docker's daemon gives a process its primary gid among the supplementary groups, then
/// the user's memberships (an explicit group: that one only) — for RUN steps, `run` and
/// `exec` alike. rbuild gave none, so a setgid binary run as a user lost the user's own
/// group from `groups=` (the Debian oracle's setuid-setgid-bits check).
#[test]
fn supplementary_groups_start_with_the_primary_gid() {
    let env = Env::with_base();
    let ctx = env.path("groups-ctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\nRUN echo 'wheel:x:10:app' >> /etc/group\nUSER app\n\
                 RUN grep Groups /proc/self/status > /tmp/step-groups\n"
            ),
        )],
    );
    let (_, _, id) = build(&env, &ctx, &["-t", "groups-img", "--network", "none"]);
    assert!(!id.is_empty());
    let groups = |args: &[&str]| -> String {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["groups-img", "sh", "-c", "grep Groups /proc/self/status; cat /tmp/step-groups"]);
        env.ok(&a)
    };
    let out = groups(&[]);
    assert_eq!(out.lines().map(str::trim).collect::<Vec<_>>(), ["Groups:\t10 1000", "Groups:\t10 1000"], "{out}");
    assert_eq!(groups(&["-u", "app:nogroup"]).lines().next().unwrap().trim(), "Groups:\t65534");
    assert_eq!(groups(&["-u", "root"]).lines().next().unwrap().trim(), "Groups:\t0");
    assert_eq!(groups(&["-u", "4242"]).lines().next().unwrap().trim(), "Groups:\t0");
    env.ok(&["run", "-d", "--name", "groups-ctr", "--network", "none", "groups-img", "sleep", "60"]);
    let exec = env.ok(&["exec", "groups-ctr", "grep", "Groups", "/proc/self/status"]);
    let exec_root = env.ok(&["exec", "-u", "0", "groups-ctr", "grep", "Groups", "/proc/self/status"]);
    env.ok(&["rm", "-f", "groups-ctr"]);
    assert_eq!(exec.trim(), "Groups:\t10 1000");
    assert_eq!(exec_root.trim(), "Groups:\t0");
}

/// Regression: under the caller's umask 077 the overlay upper dir (the container's `/`)
/// was made 0700, so a non-root user could exec nothing (`exec id: Permission denied`);
/// rbuild takes docker daemon's umask 022, in builds as in `run`.
#[test]
fn a_strict_umask_does_not_lock_users_out_of_the_root() {
    let env = Env::with_base();
    let bin = env!("CARGO_BIN_EXE_rbuild");
    let root = env.root();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nUSER 1234\nRUN id -u > /tmp/u\n"))]);
    let cmd = format!(
        "umask 077; {bin} --root {r} build -q -t umask:1 {c} >/dev/null && {bin} --root {r} run --rm -u 1234 umask:1 sh -c 'cat /tmp/u; stat -c %a /'",
        r = root.display(),
        c = ctx.display()
    );
    assert_eq!(sh_ok(&cmd).split_whitespace().collect::<Vec<_>>(), ["1234", "755"]);
}
