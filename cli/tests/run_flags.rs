//! `run`/`create` flags (issue 14): `--ulimit`, `--shm-size`, `--sysctl`, `--device`,
//! `--label(-file)`, `--cidfile`, `--stop-signal`, `--stop-timeout`, `--log-driver`,
//! `--mount`; `exec -d/-u/-w/-e`; and `--help` for the new commands — what the container
//! sees and what inspect records, compared with the docker 20.10 engine.

mod common;

use common::docker::*;
use common::*;

/// `run --rm --network none FLAGS BASE sh -c SCRIPT` in rbuild and docker: both outputs.
fn both(env: &Env, flags: &[&str], script: &str) -> (std::process::Output, std::process::Output) {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[BASE, "sh", "-c", script]);
    (env.run(&args), docker(&args))
}

#[test]
fn limits_shm_sysctls_and_devices_reach_the_container_as_dockers() {
    let env = Env::with_base();
    let flags = [
        "--ulimit",
        "nofile=100:200",
        "--ulimit",
        "nproc=50",
        "--shm-size",
        "128m",
        "--sysctl",
        "kernel.shmmax=1000000",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--device",
        "/dev/null:/dev/xnull:rw",
    ];
    let script = "ulimit -n; ulimit -Hn; ulimit -u; df -k /dev/shm | awk 'NR==2{print $2}'; cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward; ls -l /dev/xnull | awk '{print $1, $5, $6}'; echo x > /dev/xnull && echo wrote";
    let (ours, theirs) = both(&env, &flags, script);
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert_eq!(stdout(&ours), stdout(&theirs));
    assert_eq!(stdout(&ours), "100\n200\n50\n131072\n1000000\n1\ncrw-rw-rw- 1, 3\nwrote\n");
    // A device the cgroup allows only for reading (/dev/null is allowed in every container).
    let (ours, theirs) = both(&env, &["--device", "/dev/kmsg:/dev/k:r"], "echo x 2>/dev/null > /dev/k || echo refused");
    assert_eq!(stdout(&ours), stdout(&theirs));
    assert!(stdout(&ours).contains("refused"), "{}", stdout(&ours));
}

#[test]
fn bad_limits_sysctls_and_devices_are_refused_as_dockers() {
    let env = Env::with_base();
    for (flags, message) in [
        (&["--sysctl", "kernel.hostname=x"][..], "sysctl 'kernel.hostname=x' is not allowed"),
        (&["--ulimit", "bogus=1"], "invalid argument \"bogus=1\" for \"--ulimit\" flag: invalid ulimit type: bogus"),
        (
            &["--device", "/dev/nope"],
            "error gathering device information while adding custom device \"/dev/nope\": no such file or directory",
        ),
        (&["--device", "/dev/null:/x:rwz"], "bad mode specified: rwz"),
        (&["--log-driver", "syslog"], "logging driver"),
    ] {
        let (ours, theirs) = both(&env, flags, "true");
        assert_eq!(ours.status.code(), Some(125), "{flags:?}");
        assert!(stderr(&ours).contains(message), "{flags:?}: {}", stderr(&ours));
        if flags[0] != "--log-driver" {
            assert!(stderr(&theirs).contains(message), "docker {flags:?}: {}", stderr(&theirs));
        }
    }
    let o = env.run(&["run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", BASE, "true"]);
    assert!(stderr(&o).contains("not allowed in the host's network namespace"), "{}", stderr(&o));
    assert_eq!(env.ok(&["ps", "-aq"]), "", "nothing was left");
}

#[test]
fn inspect_records_the_run_options_as_dockers() {
    let env = Env::with_base();
    let name = unique("rbt-opts");
    let _d = DockerContainers(vec![name.clone()]);
    let labels = env.path("labels");
    std::fs::write(&labels, "x=1\n# a comment\ny\n").unwrap();
    let args = [
        "create",
        "--name",
        &name,
        "--network",
        "none",
        "-l",
        "a=b",
        "--label-file",
        labels.to_str().unwrap(),
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "3",
        "--log-driver",
        "none",
        "--restart",
        "on-failure:2",
        "--ulimit",
        "nofile=100:200",
        "--sysctl",
        "kernel.shmmax=1000000",
        "--shm-size",
        "128m",
        "--device",
        "/dev/null:/dev/xnull:r",
        "-a",
        "stdout",
        "-i",
        "--health-cmd",
        "true",
        BASE,
        "true",
    ];
    env.ok(&args);
    docker_ok(&args);
    for fmt in [
        "{{json .Config.Labels}}",
        "{{.Config.StopSignal}} {{.Config.StopTimeout}}",
        "{{json .HostConfig.LogConfig}} {{json .HostConfig.RestartPolicy}}",
        "{{json .HostConfig.Ulimits}} {{json .HostConfig.Sysctls}} {{.HostConfig.ShmSize}}",
        "{{json .HostConfig.Devices}}",
        "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}} {{.Config.StdinOnce}} {{.Config.OpenStdin}}",
        "{{json .Config.Healthcheck}}",
    ] {
        let ours = env.ok(&["inspect", "--format", fmt, &name]);
        assert_eq!(ours, docker_ok(&["inspect", "--format", fmt, &name]), "{fmt}");
    }
    // A detached run attaches nothing.
    let d2 = unique("rbt-opts-d");
    let _d2 = DockerContainers(vec![d2.clone()]);
    let run = ["run", "-d", "-i", "--name", &d2, "--network", "none", BASE, "true"];
    env.ok(&run);
    docker_ok(&run);
    let fmt = "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.StdinOnce}}";
    assert_eq!(env.ok(&["inspect", "--format", fmt, &d2]), docker_ok(&["inspect", "--format", fmt, &d2]));
    // `logs` of a container without a log.
    let o = env.run(&["logs", &name]);
    let d = docker(&["logs", &name]);
    assert!(stderr(&d).contains("configured logging driver does not support reading"));
    assert!(!o.status.success() && stderr(&o).contains("configured logging driver does not support reading"));
    // ps filters by the container's own labels.
    assert_eq!(env.ok(&["ps", "-a", "--filter", "label=x=1", "--format", "{{.Names}}"]), format!("{name}\n"));
}

#[test]
fn cidfile_stop_signal_and_stop_timeout() {
    let env = Env::with_base();
    let cid = env.path("cid");
    let id = env.ok(&["run", "-d", "--cidfile", cid.to_str().unwrap(), "--network", "none", BASE, "sleep", "1000"]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    let o = env.run(&["run", "-d", "--cidfile", cid.to_str().unwrap(), "--network", "none", BASE, "true"]);
    let d = docker(&["run", "-d", "--cidfile", cid.to_str().unwrap(), BASE, "true"]);
    let msg = "container ID file found, make sure the other container isn't running or delete";
    assert!(stderr(&d).contains(msg) && stderr(&o).contains(msg), "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(env.ok(&["ps", "-aq", "--no-trunc"]).trim(), id.trim(), "the second run made nothing");

    // The stop signal is the container's; the timeout too (TERM would be ignored here).
    let trap = "trap 'exit 9' USR1; trap '' TERM; while :; do sleep 0.1; done";
    env.ok(&["run", "-d", "--name", "sig", "--network", "none", "--stop-signal", "USR1", BASE, "sh", "-c", trap]);
    env.ok(&["stop", "sig"]);
    assert_eq!(env.ok(&["inspect", "--format", "{{.State.ExitCode}}", "sig"]), "9\n");
    let deaf = "trap '' TERM; while :; do sleep 0.1; done";
    env.ok(&["run", "-d", "--name", "slow", "--network", "none", "--stop-timeout", "1", BASE, "sh", "-c", deaf]);
    env.ok(&["stop", "slow"]);
    assert_eq!(env.ok(&["inspect", "--format", "{{.State.ExitCode}}", "slow"]), "137\n");
    let o = env.run(&["create", "--stop-signal", "NOPE", BASE, "true"]);
    assert!(!o.status.success() && stderr(&o).contains("Invalid signal: NOPE"), "{}", stderr(&o));
}

#[test]
fn mount_flag_binds_volumes_and_tmpfs_as_dockers() {
    let env = Env::with_base();
    let host = env.path("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from the host\n").unwrap();
    let vol = unique("rbt-mountvol");
    let _v = DockerVolumes(vec![vol.clone()]);
    let bind = format!("type=bind,source={},target=/m,readonly", host.display());
    let volume = format!("type=volume,src={vol},dst=/v");
    let flags =
        ["--mount", &bind, "--mount", &volume, "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "--mount", "target=/anon"];
    let script = "cat /m/f; touch /m/x 2>/dev/null || echo read-only; df -k /t | awk 'NR==2{print $2}'; touch /v/y /anon/z && echo written";
    let (ours, theirs) = both(&env, &flags, script);
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert_eq!(stdout(&ours), stdout(&theirs));
    assert_eq!(stdout(&ours), "from the host\nread-only\n1024\nwritten\n");
    // A bind's source must exist (unlike -v's); a tmpfs has none.
    let missing = format!("type=bind,source={}/nope,target=/m", host.display());
    let (ours, theirs) = both(&env, &["--mount", &missing], "true");
    let msg = "bind source path does not exist";
    assert!(stderr(&ours).contains(msg) && stderr(&theirs).contains(msg), "{}", stderr(&ours));
    assert!(!host.join("nope").exists());
    let (ours, _) = both(&env, &["--mount", "type=tmpfs,src=x,dst=/t"], "true");
    assert!(stderr(&ours).contains("field Source must not be specified"), "{}", stderr(&ours));
}

#[test]
fn exec_detach_user_workdir_and_env_as_dockers() {
    let env = Env::with_base();
    let name = unique("rbt-exec");
    let _d = DockerContainers(vec![name.clone()]);
    let run = ["run", "-d", "--name", &name, "--network", "none", BASE, "sleep", "1000"];
    env.ok(&run);
    docker_ok(&run);
    let exec = ["exec", "-u", "1000:100", "-w", "/tmp", "-e", "A=1", &name, "sh", "-c", "id -u; id -g; pwd; echo $A"];
    assert_eq!(env.ok(&exec), docker_ok(&exec));
    // -d returns at once; the process runs on in the container.
    let bg = ["exec", "-d", &name, "sh", "-c", "sleep 0.5; echo done > /tmp/bg"];
    assert_eq!(env.ok(&bg), "");
    poll("the detached exec ran", || env.run(&["exec", &name, "cat", "/tmp/bg"]).stdout == b"done\n");
}

#[test]
fn help_lists_the_commands_and_every_flag() {
    let env = Env::new();
    let top = env.ok(&["--help"]);
    for cmd in ["attach", "stats", "update"] {
        assert!(top.contains(&format!("\n  {cmd} ")), "{cmd} missing from --help");
    }
    let attach = env.ok(&["attach", "--help"]);
    for f in ["--no-stdin", "--detach-keys", "--sig-proxy"] {
        assert!(attach.contains(f), "attach --help lacks {f}");
    }
    let run = env.ok(&["run", "--help"]);
    for f in [
        "--restart",
        "--ulimit",
        "--shm-size",
        "--sysctl",
        "--device",
        "--label",
        "--label-file",
        "--cidfile",
        "--stop-signal",
        "--stop-timeout",
        "--log-driver",
        "--attach",
        "--sig-proxy",
        "--mount",
        "--health-cmd",
        "--health-interval",
        "--health-retries",
        "--health-start-period",
        "--health-timeout",
        "--no-healthcheck",
        "--detach-keys",
    ] {
        assert!(run.contains(f), "run --help lacks {f}");
    }
    let update = env.ok(&["update", "--help"]);
    for f in ["--memory", "--cpus", "--pids-limit", "--restart"] {
        assert!(update.contains(f), "update --help lacks {f}");
    }
    let stats = env.ok(&["stats", "--help"]);
    for f in ["--all", "--no-stream", "--no-trunc", "--format"] {
        assert!(stats.contains(f), "stats --help lacks {f}");
    }
    assert!(env.ok(&["exec", "--help"]).contains("--detach"));
    assert!(env.ok(&["container", "attach", "--help"]).contains("--no-stdin"));
    assert!(env.ok(&["system", "--help"]).contains("boot"));
}
