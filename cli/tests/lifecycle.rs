//! The container lifecycle a monitor carries out without a daemon (issue 14): restart
//! policies, health checks, `update`, `stats`, `system boot`; each compared with the
//! docker 20.10 engine where it can show the same (docker runs with `--network none`).

mod common;

use common::docker::*;
use common::*;
use std::time::Duration;

fn inspect(env: &Env, fmt: &str, name: &str) -> String {
    env.ok(&["inspect", "--format", fmt, name]).trim().to_string()
}

fn docker_inspect(fmt: &str, name: &str) -> String {
    docker_ok(&["inspect", "--format", fmt, name]).trim().to_string()
}

fn restart_count(env: &Env, name: &str) -> u32 {
    inspect(env, "{{.RestartCount}}", name).parse().unwrap()
}

/// Kills PID 1 from the host, as a crash would (not a `kill`, which is a manual stop).
fn crash(env: &Env, name: &str) {
    let pid: i32 = inspect(env, "{{.State.Pid}}", name).parse().unwrap();
    assert!(pid > 0, "{name} is not running");
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::KILL).unwrap();
}

// ------------------------------------------------------------------- restart policies

#[test]
fn on_failure_retries_then_stays_exited_as_dockers() {
    let env = Env::with_base();
    let name = unique("rbt-onfail");
    let _d = DockerContainers(vec![name.clone()]);
    let cmd = ["run", "-d", "--name", &name, "--network", "none", "--restart", "on-failure:2", BASE, "sh", "-c"];
    let script = "echo ran; exit 3";
    let id = env.ok(&[&cmd[..], &[script]].concat()).trim().to_string();
    docker_ok(&[&cmd[..], &[script]].concat());
    let fmt = "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}} {{json .HostConfig.RestartPolicy}}";
    poll("docker's container exited after 2 retries", || docker_inspect(fmt, &name).starts_with("exited 3 2 "));
    poll("rbuild's container exited after 2 retries", || inspect(&env, fmt, &name).starts_with("exited 3 2 "));
    assert_eq!(inspect(&env, fmt, &name), docker_inspect(fmt, &name));
    // The same container ran three times: its id, its log.
    assert_eq!(env.ok(&["ps", "-aq", "--no-trunc"]).trim(), id);
    assert_eq!(env.ok(&["logs", &name]), "ran\nran\nran\n");
    assert_eq!(stdout(&docker(&["logs", &name])), "ran\nran\nran\n");
    // The monitor's events are docker's: a die (with the exit code) per run, a start per restart.
    let events = [
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}} {{json .Actor.Attributes}}",
    ];
    poll("docker's three die events", || docker_ok(&events).matches("die ").count() == 3);
    assert_eq!(env.ok(&events), docker_ok(&events));
    // Without a policy, docker's default record.
    env.ok(&["create", "--name", "plain", "--network", "none", BASE, "true"]);
    assert_eq!(inspect(&env, "{{json .HostConfig.RestartPolicy}}", "plain"), r#"{"Name":"no","MaximumRetryCount":0}"#);
}

#[test]
fn always_restarts_until_stop_ends_it_and_rm_f_takes_a_restarting_container() {
    let env = Env::with_base();
    env.ok(&["run", "-d", "--name", "loop", "--network", "none", "--restart", "always", BASE, "sh", "-c", "exit 1"]);
    poll("three restarts", || restart_count(&env, "loop") >= 3);
    // docker counts a restarting container as running: `ps` lists it.
    let status = env.ok(&["ps", "--filter", "name=loop", "--format", "{{.Status}}"]);
    assert!(status.starts_with("Restarting (1)") || status.starts_with("Up"), "{status}");
    assert_eq!(inspect(&env, "{{.State.Running}}", "loop"), "true");
    env.ok(&["stop", "loop"]);
    let after = restart_count(&env, "loop");
    assert_eq!(inspect(&env, "{{.State.Status}} {{.State.Restarting}}", "loop"), "exited false");
    // Longer than any back-off so far (at most 100 ms doubled per restart): nothing more.
    std::thread::sleep(Duration::from_millis(100 << after.min(5)) + Duration::from_millis(300));
    assert_eq!(inspect(&env, "{{.State.Status}}", "loop"), "exited");
    assert_eq!(restart_count(&env, "loop"), after);
    // A new start runs the policy again; rm -f ends it whatever the moment.
    env.ok(&["start", "loop"]);
    poll("restarting again", || restart_count(&env, "loop") >= 1);
    env.ok(&["rm", "-f", "loop"]);
    assert_eq!(env.ok(&["ps", "-aq"]), "");
}

#[test]
fn kill_ends_the_policy_as_dockers_does() {
    let env = Env::with_base();
    let name = unique("rbt-kill");
    let _d = DockerContainers(vec![name.clone()]);
    let script = "trap 'exit 7' USR1; sleep 1000 & wait";
    let args = ["run", "-d", "--name", &name, "--network", "none", "--restart", "always", BASE, "sh", "-c", script];
    docker_ok(&args);
    env.ok(&args);
    poll("docker's container up", || docker_inspect("{{.State.Running}}", &name) == "true");
    docker_ok(&["kill", "-s", "USR1", &name]);
    env.ok(&["kill", "-s", "USR1", &name]);
    let fmt = "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}";
    poll("docker's container exited", || docker_inspect(fmt, &name) == "exited 7 0");
    poll("rbuild's container exited", || inspect(&env, fmt, &name) == "exited 7 0");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&env, fmt, &name), docker_inspect(fmt, &name));
}

#[test]
fn a_crash_restarts_unless_stopped_and_update_changes_the_policy_of_a_running_container() {
    let env = Env::with_base();
    env.ok(&["run", "-d", "--name", "us", "--network", "none", "--restart", "unless-stopped", BASE, "sleep", "1000"]);
    crash(&env, "us");
    poll("restarted after the crash", || {
        restart_count(&env, "us") == 1 && inspect(&env, "{{.State.Status}}", "us") == "running"
    });
    env.ok(&["stop", "-t", "0", "us"]);
    assert_eq!(inspect(&env, "{{.State.Status}}", "us"), "exited");

    // No policy: a crash ends it. After `update --restart always`, the monitor restarts it.
    env.ok(&["run", "-d", "--name", "up", "--network", "none", BASE, "sleep", "1000"]);
    assert_eq!(env.ok(&["update", "--restart", "always", "up"]), "up\n");
    assert_eq!(inspect(&env, "{{.HostConfig.RestartPolicy.Name}}", "up"), "always");
    crash(&env, "up");
    poll("restarted after update", || {
        restart_count(&env, "up") == 1 && inspect(&env, "{{.State.Status}}", "up") == "running"
    });
}

#[test]
fn restart_policy_errors_are_dockers() {
    let env = Env::with_base();
    for (policy, message) in [
        ("foo", "invalid restart policy 'foo'"),
        ("always:3", "maximum retry count cannot be used with restart policy 'always'"),
        ("on-failure:-1", "maximum retry count cannot be negative"),
        ("on-failure:x", "maximum retry count must be an integer"),
    ] {
        let d = docker(&["create", "--network", "none", "--restart", policy, BASE, "true"]);
        assert!(stderr(&d).contains(message), "docker: {}", stderr(&d));
        let o = env.run(&["create", "--network", "none", "--restart", policy, BASE, "true"]);
        assert_eq!(o.status.code(), Some(125), "{policy}");
        assert!(stderr(&o).contains(message), "{policy}: {}", stderr(&o));
    }
    let d = docker(&["create", "--rm", "--restart", "always", BASE, "true"]);
    let o = env.run(&["create", "--rm", "--restart", "always", BASE, "true"]);
    assert!(stderr(&d).contains("cannot specify both --restart and --rm"));
    assert!(stderr(&o).contains("cannot specify both --restart and --rm"), "{}", stderr(&o));
    assert_eq!(env.ok(&["ps", "-aq"]), "", "nothing was created");
}

#[test]
fn a_foreground_run_with_a_policy_returns_the_first_exit_and_the_monitor_goes_on() {
    let env = Env::with_base();
    let o = env.run(&[
        "run",
        "--name",
        "fg",
        "--network",
        "none",
        "--restart",
        "on-failure:1",
        BASE,
        "sh",
        "-c",
        "echo hi; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(stdout(&o), "hi\n");
    poll("the retry ran", || inspect(&env, "{{.State.Status}} {{.RestartCount}}", "fg") == "exited 1");
}

#[test]
fn system_boot_starts_what_a_reboot_stopped_as_dockerd_does() {
    let env = Env::with_base();
    for (name, policy) in [("b-always", "always"), ("b-no", "no"), ("b-stopped", "unless-stopped")] {
        env.ok(&["run", "-d", "--name", name, "--network", "none", "--restart", policy, BASE, "sleep", "1000"]);
    }
    env.ok(&["stop", "-t", "0", "b-stopped"]);
    // A reboot, as rbuild sees it: the monitors and their containers are gone while the
    // state says running.
    for name in ["b-always", "b-no"] {
        let id = inspect(&env, "{{.Id}}", name);
        let state: serde_json::Value = serde_json::from_slice(
            &std::fs::read(env.root().join(format!("rbuild/containers/{id}/state.json"))).unwrap(),
        )
        .unwrap();
        let shim = state["shim_pid"].as_i64().unwrap() as i32;
        rustix::process::kill_process(rustix::process::Pid::from_raw(shim).unwrap(), rustix::process::Signal::KILL)
            .unwrap();
        poll("the container gone", || inspect(&env, "{{.State.Status}}", name) == "exited");
    }
    assert_eq!(env.ok(&["system", "boot"]), "b-always\n");
    assert_eq!(inspect(&env, "{{.State.Status}}", "b-always"), "running");
    assert_eq!(inspect(&env, "{{.State.Status}}", "b-no"), "exited");
    assert_eq!(inspect(&env, "{{.State.Status}}", "b-stopped"), "exited");
    assert_eq!(env.ok(&["system", "boot"]), "", "nothing more to start");
}

// ---------------------------------------------------------------------- health checks

fn health(env: &Env, name: &str) -> serde_json::Value {
    serde_json::from_str(&inspect(env, "{{json .State.Health}}", name)).unwrap()
}

#[test]
fn health_goes_starting_unhealthy_healthy_as_dockers_and_ps_shows_it() {
    let env = Env::with_base();
    let flags = ["--health-cmd", "test -e /ok", "--health-interval", "200ms", "--health-retries", "2"];
    env.ok(&[&["run", "-d", "--name", "hc", "--network", "none"][..], &flags, &[BASE, "sleep", "1000"]].concat());
    env.ok(&["run", "-d", "--name", "plain", "--network", "none", BASE, "sleep", "1000"]);
    // docker records the same check for the same flags.
    let dname = unique("rbt-health");
    let _d = DockerContainers(vec![dname.clone()]);
    docker_ok(&[&["create", "--name", &dname, "--network", "none"][..], &flags, &[BASE, "sleep", "1000"]].concat());
    assert_eq!(
        inspect(&env, "{{json .Config.Healthcheck}}", "hc"),
        docker_inspect("{{json .Config.Healthcheck}}", &dname)
    );
    assert_eq!(inspect(&env, "{{json .State.Health}}", "plain"), "null");

    let ps = |f: &str| env.ok(&["ps", "--filter", f, "--format", "{{.Names}} {{.Status}}"]);
    // ps while the check is still starting: a status read after ps that is still
    // "starting" was "starting" when ps ran (it never goes back), under any load.
    let shown = ps("name=^/hc$");
    if health(&env, "hc")["Status"] == "starting" {
        assert!(shown.ends_with("(health: starting)\n"), "{shown}");
    }
    poll("unhealthy", || health(&env, "hc")["Status"] == "unhealthy");
    let h = health(&env, "hc");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1);
    assert!(ps("name=^/hc$").ends_with("(unhealthy)\n"));
    assert_eq!(ps("health=unhealthy"), ps("name=^/hc$"));
    assert_eq!(ps("health=none").split_whitespace().next(), Some("plain"));

    env.ok(&["exec", "hc", "touch", "/ok"]);
    poll("healthy", || health(&env, "hc")["Status"] == "healthy");
    let h = health(&env, "hc");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(log.len() <= 5 && log.last().unwrap()["ExitCode"] == 0, "{h}");
    assert!(ps("name=^/hc$").ends_with("(healthy)\n"));
    assert_eq!(ps("health=healthy"), ps("name=^/hc$"));
    let events =
        env.ok(&["events", "--since", "5m", "--until", "0s", "--filter", "container=hc", "--format", "{{.Action}}"]);
    assert!(events.contains("health_status: unhealthy\n") && events.contains("health_status: healthy\n"), "{events}");
    // Stopped: docker's stopped containers are unhealthy.
    env.ok(&["stop", "-t", "0", "hc"]);
    assert_eq!(health(&env, "hc")["Status"], "unhealthy");
    assert!(!env.run(&["ps", "--filter", "health=sick"]).status.success());
}

#[test]
fn probes_that_time_out_or_cannot_run_are_recorded_as_dockers() {
    let env = Env::with_base();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--health-cmd",
        "echo out; echo err >&2; sleep 5",
        "--health-timeout",
        "200ms",
        "--health-interval",
        "300ms",
        BASE,
        "sleep",
        "1000",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "--network",
        "none",
        "--health-cmd",
        "echo out; echo err >&2; exit 1",
        "--health-interval",
        "200ms",
        BASE,
        "sleep",
        "1000",
    ]);
    poll("a timed-out probe", || health(&env, "slow")["Log"].as_array().is_some_and(|l| !l.is_empty()));
    let probe = &health(&env, "slow")["Log"][0];
    assert_eq!(probe["ExitCode"], -1);
    assert_eq!(probe["Output"], "Health check exceeded timeout (200ms)");
    poll("a failed probe", || health(&env, "talk")["Log"].as_array().is_some_and(|l| !l.is_empty()));
    assert_eq!(health(&env, "talk")["Log"][0]["Output"], "out\nerr\n");

    // The image's HEALTHCHECK (exec form, a program that is not there), and
    // --no-healthcheck, as docker records them.
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nHEALTHCHECK --interval=300ms CMD [\"no-such-probe\"]\n"))]);
    let tag = unique("rbt-hc").to_lowercase();
    let _i = DockerImages(vec![tag.clone()]);
    build(&env, &ctx, &["-t", &tag]);
    docker_ok(&["build", "-q", "-t", &tag, ctx.to_str().unwrap()]);
    env.ok(&["run", "-d", "--name", "img", "--network", "none", &tag, "sleep", "1000"]);
    poll("the image's probe ran", || health(&env, "img")["Log"].as_array().is_some_and(|l| !l.is_empty()));
    let probe = &health(&env, "img")["Log"][0];
    assert_eq!(probe["ExitCode"], -1);
    assert!(probe["Output"].as_str().unwrap().contains("\"no-such-probe\": executable file not found"), "{probe}");
    let dname = unique("rbt-nohc");
    let _d = DockerContainers(vec![dname.clone()]);
    docker_ok(&["create", "--name", &dname, "--network", "none", "--no-healthcheck", &tag, "true"]);
    env.ok(&["create", "--name", "nohc", "--network", "none", "--no-healthcheck", &tag, "true"]);
    let fmt = "{{json .Config.Healthcheck}}";
    assert_eq!(inspect(&env, fmt, "nohc"), docker_inspect(fmt, &dname));
    let o = env.run(&["create", "--no-healthcheck", "--health-retries", "2", &tag, "true"]);
    assert!(stderr(&o).contains("--no-healthcheck conflicts with --health-* options"), "{}", stderr(&o));
    let o = env.run(&["create", "--health-interval", "-1s", &tag, "true"]);
    assert!(stderr(&o).contains("--health-interval cannot be negative"), "{}", stderr(&o));
}

// --------------------------------------------------------------------- update, stats

#[test]
fn update_changes_limits_at_once_and_in_inspect_as_dockers() {
    let env = Env::with_base();
    let name = unique("rbt-update");
    let _d = DockerContainers(vec![name.clone()]);
    let run = ["run", "-d", "--name", &name, "--network", "none", "-m", "32m", BASE, "sleep", "1000"];
    docker_ok(&run);
    env.ok(&run);
    let update = ["update", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "--restart", "always", &name];
    // (docker adds a warning about this host's forwarding.)
    assert_eq!(env.ok(&update).lines().next(), docker_ok(&update).lines().next());
    let fmt =
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}";
    assert_eq!(inspect(&env, fmt, &name), docker_inspect(fmt, &name));
    // The running container's own cgroup says so (v1 hierarchies, or v2's one).
    let see = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max";
    assert_eq!(env.ok(&["exec", &name, "sh", "-c", see]), "67108864\n50\n");
    // Growing again after growing (cgroup v1 keeps memory under memory+swap at each step).
    env.ok(&["update", "-m", "256m", &name]);
    assert_eq!(env.ok(&["exec", &name, "sh", "-c", see]), "268435456\n50\n");
    let o = env.run(&["update", &name]);
    assert!(!o.status.success() && stderr(&o).contains("you must provide one or more flags"), "{}", stderr(&o));
    env.ok(&["run", "-d", "--rm", "--name", "auto", "--network", "none", BASE, "sleep", "1000"]);
    let o = env.run(&["update", "--restart", "always", "auto"]);
    assert!(stderr(&o).contains("Restart policy cannot be updated because AutoRemove is enabled for the container"));
}

#[test]
fn stats_shows_dockers_columns_and_the_containers_use() {
    let env = Env::with_base();
    let name = unique("rbt-stats");
    let _d = DockerContainers(vec![name.clone()]);
    let run = ["run", "-d", "--name", &name, "--network", "none", "-m", "64m", BASE, "sleep", "1000"];
    docker_ok(&run);
    env.ok(&run);
    let ours = env.ok(&["stats", "--no-stream", &name]);
    let theirs = docker_ok(&["stats", "--no-stream", &name]);
    let header = |s: &str| s.lines().next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(header(&ours), header(&theirs));
    let row: Vec<&str> = ours.lines().nth(1).unwrap().split_whitespace().collect();
    // ID NAME CPU% USAGE / LIMIT MEM% NET-RX / NET-TX BLOCK-R / BLOCK-W PIDS
    assert_eq!((row[1], row[5], row[13]), (name.as_str(), "64MiB", "1"), "{ours}");
    let keys = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        v.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    let fmt = ["stats", "--no-stream", "--format", "{{json .}}", &name];
    assert_eq!(keys(&env.ok(&fmt)), keys(&docker_ok(&fmt)));
    let table = ["stats", "--no-stream", "--format", "table {{.Name}}\t{{.MemUsage}}", &name];
    assert_eq!(header(&env.ok(&table)), header(&docker_ok(&table)));
    // A stopped container reads as docker's: nothing used.
    docker_ok(&["stop", "-t", "0", &name]);
    env.ok(&["stop", "-t", "0", &name]);
    let zero = ["stats", "--no-stream", "--format", "{{.MemUsage}} {{.PIDs}} {{.NetIO}}", &name];
    assert_eq!(env.ok(&zero), docker_ok(&zero));
    let o = env.run(&["stats", "--no-stream", "nosuch"]);
    assert!(!o.status.success() && stderr(&o).contains("No such container: nosuch"));
}
