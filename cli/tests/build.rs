//! `rbuild build` as a user runs it: the cache, failures, contexts, stages, isolation.

mod common;
use common::*;
use std::process::{Command, Stdio};

const CACHE_DF: &str = "FROM rbuild-anchor/busybox:1
COPY dep.txt /dep.txt
RUN cat /dep.txt > /dep.out
ARG FLAVOR=plain
RUN echo $FLAVOR > /flavor
COPY src /src
RUN ls /src > /listing
";

#[test]
fn cache_reruns_only_what_changed() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[
            ("Dockerfile", CACHE_DF),
            ("dep.txt", "dep"),
            ("src/a.txt", "a"),
            ("src/b.txt", "b"),
            ("src/skip.log", "x"),
            (".dockerignore", "**/*.log\n"),
        ],
    );

    let (ran, _, id1) = build(&env, &ctx, &[]);
    assert_eq!(ran.len(), 5, "cold build runs everything: {ran:?}");

    // No change: everything cached, same image.
    let (ran, cached, id2) = build(&env, &ctx, &[]);
    assert!(ran.is_empty(), "no-op rebuild ran {ran:?}");
    assert_eq!(cached.len(), 5);
    assert_eq!(id1, id2);

    // touch without a change: still all cached.
    std::thread::sleep(std::time::Duration::from_millis(20));
    sh_ok(&format!("touch {}/src/a.txt {}/dep.txt", ctx.display(), ctx.display()));
    let (ran, _, id3) = build(&env, &ctx, &[]);
    assert!(ran.is_empty(), "touch re-ran {ran:?}");
    assert_eq!(id1, id3);

    // A change in an ignored file: all cached.
    std::fs::write(ctx.join("src/skip.log"), "changed").unwrap();
    let (ran, _, _) = build(&env, &ctx, &[]);
    assert!(ran.is_empty(), "ignored change re-ran {ran:?}");

    // Edit one file: the COPY that includes it and what follows re-run, nothing before.
    std::fs::write(ctx.join("src/b.txt"), "b2").unwrap();
    let (ran, cached, id4) = build(&env, &ctx, &[]);
    assert_eq!(ran, ["COPY src /src", "RUN ls /src > /listing"], "edit re-ran {ran:?}");
    assert_eq!(cached.len(), 3);
    assert_ne!(id1, id4);

    // A changed build arg: only the steps after its ARG re-run.
    let (ran, _, _) = build(&env, &ctx, &["--build-arg", "FLAVOR=spicy"]);
    assert_eq!(
        ran,
        ["RUN echo $FLAVOR > /flavor", "COPY src /src", "RUN ls /src > /listing"],
        "arg change re-ran {ran:?}"
    );
    assert_eq!(env.ok(&["run", "--rm", id1.trim(), "cat", "/flavor"]).trim(), "plain");
}

/// A no-op rebuild takes its records and leases in a few syscalls a step (one shared gc
/// lock for the process, one read a record): it must still hit after a prune, and a
/// record whose layer is gone must still miss, re-running that step alone.
#[test]
fn cached_rebuilds_after_prune_and_after_a_lost_layer() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", CACHE_DF), ("dep.txt", "dep"), ("src/a.txt", "a")]);
    let (ran, _, id1) = build(&env, &ctx, &["-t", "kept:1"]);
    assert_eq!(ran.len(), 5, "cold build runs everything: {ran:?}");
    env.ok(&["prune"]);
    let (ran, cached, id2) = build(&env, &ctx, &["-t", "kept:1"]);
    assert!(ran.is_empty() && cached.len() == 5, "after prune: ran {ran:?}, cached {cached:?}");
    assert_eq!(id1, id2);
    // The layer of `RUN echo $FLAVOR` (the base's, then COPY's and RUN cat's before it).
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "kept:1"])).unwrap();
    let layer = v[0]["RootFS"]["Layers"][3].as_str().unwrap().trim_start_matches("sha256:").to_string();
    env.ok(&["rmi", "kept:1"]);
    std::fs::remove_file(env.root().join("blobs/sha256").join(&layer)).unwrap();
    let (ran, _, _) = build(&env, &ctx, &[]);
    assert_eq!(ran, ["RUN echo $FLAVOR > /flavor"], "a record without its layer must miss: ran {ran:?}");
    env.ok(&["fsck"]);
}

#[test]
fn no_cache_builds_are_reproducible() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM rbuild-anchor/busybox:1\nCOPY f /f\nRUN date +%N > /now && mkdir /d && echo x > /d/x\n",
            ),
            ("f", "f"),
        ],
    );
    let (_, _, a) = build(&env, &ctx, &["--no-cache"]);
    let (ran, _, b) = build(&env, &ctx, &["--no-cache"]);
    assert_eq!(ran.len(), 2);
    // The RUN writes the time into a file: the content differs, so compare a build
    // whose content is fixed.
    assert_ne!(a, "");
    context(
        &ctx,
        &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY f /f\nRUN mkdir /d && echo x > /d/x && touch /d/y\n")],
    );
    let (_, _, c) = build(&env, &ctx, &["--no-cache"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, _, d) = build(&env, &ctx, &["--no-cache"]);
    assert_eq!(c, d, "two --no-cache builds of the same inputs differ");
    let _ = b;
}

#[test]
fn failing_step_shows_line_exit_code_and_output_and_leaves_nothing() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nRUN echo preparing\nRUN echo boom-output && exit 3\n")],
    );
    let out = env.run(&["build", "-t", "bad:1", "--progress", "plain", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Dockerfile:3:1:"), "{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("    RUN echo boom-output && exit 3\n    ^"), "{err}");
    assert!(err.contains("boom-output"), "{err}");
    assert!(env.run(&["inspect", "bad:1"]).status.code() != Some(0));
    let tmp = env.root().join("rbuild/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "temp dirs left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(env.root().to_str().unwrap()), "mounts left");
}

#[test]
fn parse_errors_and_missing_files_are_one_line_with_position() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nFORM x\n")]);
    let out = env.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(":2:1: unknown instruction") && err.contains("did you mean FROM?"),
        "{err}"
    );
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY nope.txt /\n")]);
    let out = env.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(":2:1: COPY failed: file not found in build context"), "{err}");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY ../etc/passwd /\n")]);
    let out = env.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("outside the build context"), "{err}");
    context(&ctx, &[("Dockerfile", "FROM no-such/image:1\n")]);
    let out = env.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(":1:1: base image no-such/image:1"), "{err}");
}

#[test]
fn default_verb_stdin_context_and_dockerfile() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY a /a\nCMD [\"cat\", \"/a\"]\n"), ("a", "from-dir\n")],
    );
    // rbuild -t org/app .  (exactly as typed, from the context directory)
    let out = env.cmd().current_dir(&ctx).args(["-t", "org/app", "."]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.ok(&["run", "--rm", "org/app"]), "from-dir\n");
    // A tar context on stdin.
    let tar = env.path("ctx.tar");
    sh_ok(&format!("tar -C {} -cf {} .", ctx.display(), tar.display()));
    let out = env
        .cmd()
        .args(["build", "-q", "-t", "fromtar", "-"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sha256:"));
    assert_eq!(env.ok(&["run", "--rm", "fromtar"]), "from-dir\n");
    // A Dockerfile on stdin, no context.
    let mut child = env
        .cmd()
        .args(["build", "-q", "-t", "nocontext", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"FROM rbuild-anchor/busybox:1\nRUN echo hi > /hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.ok(&["run", "--rm", "nocontext", "cat", "/hi"]), "hi\n");
}

#[test]
fn stages_targets_and_network() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let df = "FROM rbuild-anchor/busybox:1 AS a
RUN echo a > /a
FROM rbuild-anchor/busybox:1 AS b
RUN echo b > /b
FROM rbuild-anchor/busybox:1 AS unused
RUN exit 1
FROM rbuild-anchor/busybox:1 AS net
RUN ls /sys/class/net > /ifaces
FROM net
COPY --from=a /a /a
COPY --from=b /b /b
";
    context(&ctx, &[("Dockerfile", df)]);
    // The failing stage is not needed by the target: it never runs.
    env.ok(&["build", "-q", "-t", "multi", "--network", "none", ctx.to_str().unwrap()]);
    assert_eq!(env.ok(&["run", "--rm", "multi", "cat", "/a", "/b", "/ifaces"]), "a\nb\nlo\n");
    env.ok(&["build", "-q", "-t", "onlyb", "--target", "b", ctx.to_str().unwrap()]);
    assert_eq!(env.ok(&["run", "--rm", "onlyb", "cat", "/b"]), "b\n");
    assert!(!env.run(&["run", "--rm", "onlyb", "cat", "/a"]).status.success());
}

#[test]
fn run_steps_cannot_touch_the_host() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let marker = env.path("host-marker");
    std::fs::write(&marker, "host").unwrap();
    let df = format!(
        "FROM rbuild-anchor/busybox:1\nRUN rm -rf {m} ; mkdir -p {d} && echo pwned > {m} ; mount -t tmpfs none /mnt && echo mounted ; reboot -f ; cat /proc/1/cmdline > /pid1 ; true\n",
        m = marker.display(),
        d = marker.parent().unwrap().display()
    );
    context(&ctx, &[("Dockerfile", &df)]);
    let out = env.run(&["build", "-q", "-t", "evil", "--network", "none", ctx.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "host");
    // The RUN's writes to that path landed in the image, not on the host.
    assert_eq!(env.ok(&["run", "--rm", "evil", "cat", marker.to_str().unwrap()]), "pwned\n");
}

#[test]
fn interrupted_build_leaves_nothing() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nRUN echo started && sleep 30\n")]);
    let mut child = env
        .cmd()
        .args(["build", "--progress", "plain", ctx.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the step runs.
    let mut err = child.stderr.take().unwrap();
    read_until(&mut err, "started");
    // Ctrl-C reaches the whole foreground process group; here: rbuild and its sandbox.
    let pid = child.id() as i32;
    Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    let t0 = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(t0.elapsed().as_secs() < 25, "the build did not stop");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let left: Vec<_> = std::fs::read_dir(env.root().join("rbuild/tmp")).unwrap().collect();
    assert!(left.is_empty(), "temp dirs left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(env.root().to_str().unwrap()), "mounts left");
}

/// The `rbuild __shim -` processes (a RUN step's shim started ahead of its step) that
/// carry `mark` in their environment, and the cgroups they were started for.
fn shims_ahead(mark: &str) -> Vec<(i32, String)> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if !environ.split(|b| *b == 0).any(|v| v == format!("RBUILD_TEST_MARK={mark}").as_bytes()) {
            continue;
        }
        let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&str> = cmd.split('\0').collect();
        if args.get(1..3) == Some(&["__shim", "-"][..]) {
            let cg = args.iter().position(|a| *a == "--cgroup").and_then(|i| args.get(i + 1));
            found.push((pid, cg.unwrap_or(&"").to_string()));
        }
    }
    found
}

fn cgroup_exists(rel: &str) -> bool {
    std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten().any(|h| h.path().join(rel).exists())
        || std::path::Path::new("/sys/fs/cgroup").join(rel).join("cgroup.procs").exists()
}

/// The next step's shim, started ahead with a network namespace and a cgroup made, goes
/// with the build: at its end, and on a Ctrl-C to the whole process group.
#[test]
fn shims_started_ahead_leave_nothing() {
    let env = Env::with_base();
    let mark = env.root().to_string_lossy().into_owned();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nRUN echo one > /one\nRUN echo two > /two\n")]);
    let out = env
        .cmd()
        .env("RBUILD_TEST_MARK", &mark)
        .args(["build", "-q", "--no-cache", "-t", "ahead"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(shims_ahead(&mark), vec![], "shims left after the build");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nRUN echo one\nRUN echo started && sleep 30\n")]);
    use std::os::unix::process::CommandExt;
    let mut child = env
        .cmd()
        .env("RBUILD_TEST_MARK", &mark)
        .args(["build", "--no-cache", "--progress", "plain"])
        .arg(&ctx)
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    read_until(&mut err, "started");
    // The shim of a step that never comes is there, its cgroup made.
    let ahead = shims_ahead(&mark);
    assert!(!ahead.is_empty() && ahead.iter().all(|(_, cg)| cg.starts_with("rbuild/")), "{ahead:?}");
    assert!(ahead.iter().all(|(_, cg)| cgroup_exists(cg)), "{ahead:?}");
    // Ctrl-C: SIGINT to the build's process group (its own, made above) — through the
    // system call: `kill -INT -PGID` of util-linux took the PGID for `-1`, every process.
    let pgid = rustix::process::Pid::from_raw(child.id() as i32).filter(|p| p.as_raw_nonzero().get() > 1).unwrap();
    rustix::process::kill_process_group(pgid, rustix::process::Signal::INT).unwrap();
    assert!(!child.wait().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(shims_ahead(&mark), vec![], "shims left after Ctrl-C");
    for (_, cg) in &ahead {
        assert!(!cgroup_exists(cg), "cgroup {cg} left");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(env.root().to_str().unwrap()), "mounts left");
}

/// A loopback HTTP server (python's http.server) on a free port, killed when dropped.
struct Http(std::process::Child, u16);
impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn add_downloads_urls_with_checksums() {
    let env = Env::with_base();
    let www = env.path("www");
    context(&www, &[("a.txt", "aaa\n"), ("b.txt", "bbb\n")]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(&www)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let srv = Http(child, port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", srv.1)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let ctx = env.path("ctx");
    let url = |f: &str| format!("http://127.0.0.1:{}/{f}", srv.1);
    context(
        &ctx,
        &[("Dockerfile", &format!("FROM rbuild-anchor/busybox:1\nADD {} {} /dl/\n", url("a.txt"), url("b.txt")))],
    );
    env.ok(&["build", "-q", "-t", "urls", ctx.to_str().unwrap()]);
    assert_eq!(env.ok(&["run", "--rm", "urls", "cat", "/dl/a.txt", "/dl/b.txt"]), "aaa\nbbb\n");
    assert_eq!(env.ok(&["run", "--rm", "urls", "stat", "-c", "%a", "/dl/a.txt"]), "600\n");
    // A wrong --checksum is refused.
    context(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM rbuild-anchor/busybox:1\nADD --checksum=sha256:{} {} /x\n", "0".repeat(64), url("a.txt")),
        )],
    );
    let out = env.run(&["build", "-q", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(":2:1: ADD failed: digest mismatch"), "{err}");
}

/// Regression (issue 12, 6): a `prune` during a build deleted the running step's dir
/// (its upper and mount points in the store's tmp dir) and, with `-a`, the layers the
/// build had made so far: the build failed every time. A build holds what it uses; prune
/// removes only what no live process holds.
#[test]
fn prune_during_a_build_leaves_it_alone() {
    let env = Env::with_base();
    let ctx = env.path("busy");
    context(
        &ctx,
        &[
            ("f", "from the context\n"),
            (
                "Dockerfile",
                "FROM rbuild-anchor/busybox:1\nRUN echo one > /one && sleep 2\nCOPY f /f\nRUN sleep 2 && echo two > /two\nRUN cat /one /f /two\n",
            ),
        ],
    );
    let mut child = env
        .cmd()
        .args(["build", "--no-cache", "-q", "-t", "busy:1"])
        .arg(&ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut prunes = 0;
    while child.try_wait().unwrap().is_none() {
        let a = if prunes % 2 == 0 { "prune" } else { "-a" };
        let out = env.run(&if a == "-a" { vec!["prune", "-a"] } else { vec!["prune"] });
        assert!(out.status.success(), "prune failed: {}", String::from_utf8_lossy(&out.stderr));
        prunes += 1;
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the build failed under {prunes} prunes: {}", String::from_utf8_lossy(&out.stderr));
    assert!(prunes >= 5, "only {prunes} prunes ran during the build");
    let run = env.ok(&["run", "--rm", "busy:1", "cat", "/one", "/f", "/two"]);
    assert_eq!(run, "one\nfrom the context\ntwo\n");
    // Once the build is over, prune may take all it left.
    env.ok(&["prune", "-a"]);
    assert_eq!(std::fs::read_dir(env.root().join("rbuild/tmp")).unwrap().count(), 0);
    env.ok(&["fsck"]);
}

/// Regression (issue 12): ENV nested 2,500 deep aborted the build (stack overflow, exit
/// 134); ENV values doubling at each line, or many large ones, made a 2.2 GB config
/// and took 8.7 GB of memory. Each is a one-line error with the Dockerfile position.
#[test]
fn runaway_expansions_are_located_errors() {
    let env = Env::new();
    let ctx = env.path("runaway");
    let n = 2500;
    let nested = format!("FROM scratch\nENV E=\"{}x{}\"\n", "${E:-".repeat(n), "}".repeat(n));
    let mut doubling = String::from("FROM scratch\nENV A=0123456789abcdef\n");
    for _ in 0..40 {
        doubling.push_str("ENV A=$A$A\n");
    }
    let mut wide = String::from("FROM scratch\nENV A=0123456789abcdef\n");
    for _ in 0..15 {
        wide.push_str("ENV A=$A$A\n");
    }
    for i in 0..40 {
        wide.push_str(&format!("LABEL l{i}=$A\n"));
    }
    for (df, at, what) in [
        (nested, "Dockerfile:2:1:", "nested more than"),
        (doubling, "Dockerfile:19:1:", "larger than 1048576 bytes"),
        (wide, "Dockerfile:31:1:", "image config would be larger than 16 MiB"),
    ] {
        context(&ctx, &[("Dockerfile", &df)]);
        let out = env.run(&["build", "-q", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains(at) && first.contains(what) && first.len() < 400, "{first}");
        assert!(err.len() < 1000, "{} bytes of error", err.len());
    }
}

/// Regression (issue 12): a `.dockerignore` of 100,000 patterns took 9.3 s and 1.8 GB
/// (every path against every pattern, every pattern's regex built and its matching
/// state grown). Memory is the check here: a build of a small context with them stays
/// far below what it took (1.2 GB for this one).
#[test]
fn a_huge_dockerignore_takes_little_memory() {
    let env = Env::new();
    let ctx = env.path("ignored");
    let mut ignore: String = (0..100_000).map(|i| format!("dir{i}/*.tmp\n")).collect();
    ignore.push_str("!dir7/keep.tmp\nskip*\n");
    let files: Vec<(String, String)> = (0..200).map(|i| (format!("src/f{i}.txt"), format!("{i}\n"))).collect();
    let mut all: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    all.extend([
        (".dockerignore", ignore.as_str()),
        ("dir7/x.tmp", "ignored"),
        ("dir7/keep.tmp", "kept"),
        ("skipme", "ignored"),
        ("Dockerfile", "FROM scratch\nCOPY . /x\n"),
    ]);
    context(&ctx, &all);
    let out = sh_ok(&format!(
        "/usr/bin/time -f 'maxrss %M' {} --root {} build -q -t ign:1 {} 2>&1 >/dev/null",
        env!("CARGO_BIN_EXE_rbuild"),
        env.root().display(),
        ctx.display()
    ));
    let kb: u64 = out.lines().find_map(|l| l.strip_prefix("maxrss ")).and_then(|v| v.trim().parse().ok()).unwrap();
    assert!(kb < 300_000, "the build took {kb} KB");
    let snap = env.root().join("rbuild/snapshots");
    let have = |p: &str| std::fs::read_dir(&snap).unwrap().flatten().any(|e| e.path().join("x").join(p).exists());
    assert!(have("src/f199.txt") && have("dir7/keep.tmp") && !have("dir7/x.tmp") && !have("skipme"));
}

/// Regression (issue 12): an out-of-range `COPY --from` index was taken for an image name
/// and looked up on Docker Hub. Any number is a stage index: out of range, it is an
/// error with the position, found before anything is looked up. A variable in `--from` is
/// never expanded (docker takes the value literally): refused with BuildKit's message.
#[test]
fn copy_from_an_unknown_stage_index_is_an_error() {
    let env = Env::new();
    let ctx = env.path("fromidx");
    for (df, line, msg) in [
        ("FROM scratch\nCOPY --from=99999999999999999999 /a /b\n", 2, "invalid stage index"),
        ("FROM scratch\nCOPY --from=99999 /a /b\n", 2, "invalid stage index"),
        ("FROM scratch\nARG N=99999999999999999999\nCOPY --from=$N /a /b\n", 3, "variable expansion is not supported"),
        ("ARG N=3\nFROM scratch\nCOPY --from=${N} /a /b\n", 3, "variable expansion is not supported"),
    ] {
        context(&ctx, &[("Dockerfile", df)]);
        let out = env.run(&["build", "-q", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{df}: {err}");
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains(&format!("Dockerfile:{line}:1:")) && first.contains(msg), "{df}: {err}");
        assert!(!err.contains("docker.io") && !err.contains("pull"), "{df}: {err}");
    }
}

/// Steps of one build reuse their directories (the /etc files, the spec, the mount
/// point): what one step wrote to its /etc/hosts or resolv.conf never reaches the next,
/// each has its own hostname, and nothing is left in the store's temp dir afterwards.
#[test]
fn run_steps_get_fresh_etc_files_and_leave_no_directories() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let df = "FROM rbuild-anchor/busybox:1\n\
              RUN echo '10.9.9.9 injected' >> /etc/hosts && echo junk > /etc/resolv.conf && hostname > /h1\n\
              RUN (grep -c injected /etc/hosts || true) > /n && cat /etc/resolv.conf > /r2 && hostname > /h2\n";
    context(&ctx, &[("Dockerfile", df)]);
    env.ok(&["build", "-q", "-t", "fresh-etc", "--network", "none", ctx.to_str().unwrap()]);
    let out = env.ok(&["run", "--rm", "fresh-etc", "sh", "-c", "cat /n; cat /r2; cat /h1 /h2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"0"), "{out}");
    assert!(!out.contains("junk"), "{out}");
    assert_ne!(lines[lines.len() - 2], lines[lines.len() - 1], "each step has its own hostname: {out}");
    let tmp = env.root().join("rbuild/tmp");
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(left.iter().all(|n| !n.starts_with("step-")), "left in {}: {left:?}", tmp.display());
}

/// Reads a running build's output until `want` shows (the step has started).
fn read_until(out: &mut impl std::io::Read, want: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(want) {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "build ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}
