//! The docker CLI's container listings (issue 14): the container templates, ps, logs,
//! top, port and rename, compared with the docker engine's output for the same
//! containers.

mod common;

use common::docker::*;
use common::*;
use std::process::Stdio;
use std::time::Duration;

/// The same containers made by docker and by rbuild print the same through docker's
/// templates.
#[test]
fn container_templates_print_what_docker_prints() {
    let env = Env::with_base();
    let name = unique("rbcli-fmt");
    let _c = DockerContainers(vec![name.clone()]);
    assert_eq!(
        docker(&["run", "--name", &name, "--network", "none", "-e", "A=1", "-w", "/tmp", BASE, "sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    env.ok(&["create", "--name", &name, "--network", "none", "-e", "A=1", "-w", "/tmp", BASE, "sh", "-c", "exit 3"]);
    env.run(&["start", "-a", &name]);
    for f in [
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.Paused}} {{.State.OOMKilled}}",
        "{{.Config.Image}} {{json .Config.Cmd}} {{.Config.WorkingDir}} {{.Config.Entrypoint}}",
        "{{.Path}} {{json .Args}} {{.Name}} {{.RestartCount}}",
        "{{.HostConfig.AutoRemove}} {{.HostConfig.ReadonlyRootfs}} {{len .Mounts}}",
        "{{range .Config.Env}}{{if eq (index (split . \"=\") 0) \"A\"}}{{.}}{{end}}{{end}}",
        "{{.Config.Labels}} {{index .Config.Labels \"nope\"}}|{{.NetworkSettings.IPAddress}}|",
        "{{upper .State.Status}} {{title \"a b\"}} {{lower \"X\"}} {{join .Args \",\"}} {{truncate .Config.Image 5}} {{pad \"x\" 1 1}}",
        "{{with .State}}{{.ExitCode}}{{end}} {{if .State.Running}}up{{else}}down{{end}} {{printf \"%05d\" .State.ExitCode}}",
    ] {
        let ours = env.ok(&["inspect", "--format", f, &name]);
        let theirs = docker_ok(&["inspect", "--format", f, &name]);
        assert_eq!(ours, theirs, "{f}");
    }
    // ps: the same columns and values.
    let f = "{{.Names}}|{{.Image}}|{{.Command}}|{{.State}}|{{.Ports}}|{{.Networks}}";
    let ours = env.ok(&["ps", "-a", "--filter", &format!("name={name}"), "--format", f]);
    let theirs = docker_ok(&["ps", "-a", "--filter", &format!("name={name}"), "--format", f]);
    assert_eq!(ours, theirs);
    let f = "table {{.Names}}\t{{.Image}}\t{{.Command}}";
    let ours = env.ok(&["ps", "-a", "--filter", &format!("name={name}"), "--format", f]);
    let theirs = docker_ok(&["ps", "-a", "--filter", &format!("name={name}"), "--format", f]);
    assert_eq!(ours, theirs);
    // The default table has docker's header and column widths.
    // The default table: docker's header, columns aligned by Go's tabwriter.
    let ours = env.ok(&["ps", "-a"]);
    let theirs = docker_ok(&["ps", "-a", "--filter", &format!("name={name}")]);
    let (h, row) = (ours.lines().next().unwrap(), ours.lines().nth(1).unwrap());
    let cols = |h: &str| h.split("  ").map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
    assert_eq!(cols(h), cols(theirs.lines().next().unwrap()));
    assert_eq!(h.find("NAMES"), row.find(&name), "{ours}");
    assert_eq!(h.find("COMMAND"), row.find("\"sh -c"), "{ours}");
    // A template error is docker's message and exit 1.
    let o = env.run(&["inspect", "--format", "{{.Nope}}", &name]);
    assert_eq!(o.status.code(), docker(&["inspect", "--format", "{{.Nope}}", &name]).status.code());
    assert!(stderr(&o).contains("template") && stderr(&o).contains("Nope"), "{}", stderr(&o));
    // JSON output: an array of objects with docker's top-level keys (those rbuild has).
    let ours: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", &name])).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&docker_ok(&["inspect", &name])).unwrap();
    for k in ours[0].as_object().unwrap().keys() {
        assert!(theirs[0].get(k).is_some(), "{k} is not a docker key");
    }
    for k in
        ["Id", "Created", "Path", "Args", "State", "Image", "Name", "HostConfig", "Mounts", "Config", "NetworkSettings"]
    {
        assert!(ours[0].get(k).is_some(), "{k} missing");
    }
}

#[test]
fn ps_filters_and_flags() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nLABEL tier=web\n"))]);
    build(&env, &ctx, &["-t", "labelled:1"]);
    env.ok(&["create", "--name", "first", BASE, "true"]);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(env.run(&["run", "--name", "exited3", BASE, "sh", "-c", "exit 3"]).status.code(), Some(3));
    std::thread::sleep(Duration::from_millis(20));
    env.ok(&["run", "-d", "--name", "web", "-v", "wvol:/w", "labelled:1", "sleep", "300"]);
    std::thread::sleep(Duration::from_millis(20));
    env.ok(&["create", "--name", "last", "--network", "host", BASE, "true"]);
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        env.ok(&a).lines().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(names(&[]), ["web"]);
    assert_eq!(names(&["-a"]), ["last", "web", "exited3", "first"]);
    assert_eq!(names(&["-a", "--filter", "name=^/web$"]), ["web"]);
    assert_eq!(names(&["-a", "-f", "name=st"]), ["last", "first"]);
    let id = env.ok(&["ps", "-aq", "--no-trunc", "-f", "name=exited3"]);
    assert_eq!(names(&["-a", "-f", &format!("id={}", &id.trim()[..8])]), ["exited3"]);
    assert_eq!(names(&["-a", "-f", "label=tier=web"]), ["web"]);
    assert_eq!(names(&["-a", "-f", "label=tier"]), ["web"]);
    assert_eq!(names(&["-f", "status=created"]), ["last", "first"]);
    assert_eq!(names(&["-f", "status=exited"]), ["exited3"]);
    assert_eq!(names(&["-a", "-f", "exited=3"]), ["exited3"]);
    assert_eq!(names(&["-a", "-f", "ancestor=labelled:1"]), ["web"]);
    assert_eq!(names(&["-a", "-f", "before=web"]), ["exited3", "first"]);
    assert_eq!(names(&["-a", "-f", "since=exited3"]), ["last", "web"]);
    assert_eq!(names(&["-a", "-f", "network=host"]), ["last"]);
    assert_eq!(names(&["-a", "-f", "volume=wvol"]), ["web"]);
    assert_eq!(names(&["-a", "-f", "volume=/w"]), ["web"]);
    assert_eq!(names(&["-a", "-f", "status=created", "-f", "status=exited"]), ["last", "exited3", "first"]);
    assert_eq!(names(&["-l"]), ["last"]);
    assert_eq!(names(&["-n", "2"]), ["last", "web"]);
    assert!(!env.run(&["ps", "-f", "colour=red"]).status.success());
    assert!(!env.run(&["ps", "-f", "status=sleepy"]).status.success());
    // -s: a SIZE column, with the container's own bytes and the image's.
    env.ok(&["exec", "web", "sh", "-c", "head -c 5000 /dev/zero > /blob"]);
    let s = env.ok(&["ps", "-s", "-f", "name=web"]);
    assert!(s.lines().next().unwrap().ends_with("SIZE"), "{s}");
    assert!(s.contains("(virtual "), "{s}");
    assert_eq!(env.ok(&["ps", "-s", "-f", "name=web", "--format", "{{.Size}}"]).split(' ').next().unwrap(), "5kB");
    env.ok(&["rm", "-f", "web"]);
}

#[test]
fn logs_since_until_timestamps_tail_follow() {
    let env = Env::with_base();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        BASE,
        "sh",
        "-c",
        "echo one; echo two >&2; sleep 1.2; echo three; sleep 300",
    ]);
    std::thread::sleep(Duration::from_millis(600));
    let mid = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1200));
    let o = env.run(&["logs", "talker"]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("one\nthree\n", "two\n"));
    assert_eq!(stdout(&env.run(&["logs", "--since", &format!("{mid:.3}"), "talker"])), "three\n");
    let o = env.run(&["logs", "--until", &format!("{mid:.3}"), "talker"]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("one\n", "two\n"));
    assert_eq!(stdout(&env.run(&["logs", "--since", "10m", "--tail", "1", "talker"])), "three\n");
    assert_eq!(stdout(&env.run(&["logs", "-n", "1", "talker"])), "three\n");
    assert_eq!(stdout(&env.run(&["logs", "--since", "0.1s", "talker"])), "");
    let t = stdout(&env.run(&["logs", "-t", "talker"]));
    let first = t.lines().next().unwrap();
    let (ts, text) = first.split_once(' ').unwrap();
    assert_eq!(text, "one");
    assert!(
        ts.len() == "2026-01-01T00:00:00.000000000Z".len() && chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "{ts}"
    );
    assert!(!env.run(&["logs", "--since", "yesterday", "talker"]).status.success());
    // -f follows until the container stops.
    let f = env.cmd().args(["logs", "-f", "--tail", "0", "talker"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["exec", "talker", "sh", "-c", "echo late > /proc/1/fd/1"]);
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["stop", "-t", "1", "talker"]);
    let o = f.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "late\n");
    env.ok(&["rm", "talker"]);
}

#[test]
fn top_port_and_rename() {
    let env = Env::with_base();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    env.ok(&["run", "-d", "--name", "svc", "-p", &format!("127.0.0.1:{port}:80"), BASE, "sleep", "300"]);
    let top = env.ok(&["top", "svc"]);
    assert!(top.lines().next().unwrap().contains("PID") && top.contains("sleep 300"), "{top}");
    assert_eq!(top.lines().count(), 2, "only the container's process: {top}");
    let top = env.ok(&["top", "svc", "-o", "pid,comm"]);
    assert_eq!(top.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["PID", "COMMAND"]);
    assert!(top.lines().nth(1).unwrap().ends_with("sleep"), "{top}");
    assert!(!env.run(&["top", "svc", "-o", "comm"]).status.success(), "no PID column");
    assert_eq!(env.ok(&["port", "svc"]).trim(), format!("80/tcp -> 127.0.0.1:{port}"));
    assert_eq!(env.ok(&["port", "svc", "80"]).trim(), format!("127.0.0.1:{port}"));
    assert_eq!(env.ok(&["port", "svc", "80/tcp"]).trim(), format!("127.0.0.1:{port}"));
    let o = env.run(&["port", "svc", "81"]);
    assert!(!o.status.success() && stderr(&o).contains("No public port '81/tcp'"), "{}", stderr(&o));
    env.ok(&["create", "--name", "other", BASE, "true"]);
    let o = env.run(&["rename", "svc", "other"]);
    assert!(!o.status.success() && stderr(&o).contains("already in use"), "{}", stderr(&o));
    assert!(!env.run(&["rename", "svc", "bad/name"]).status.success());
    env.ok(&["rename", "svc", "svc2"]);
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]).trim(), "svc2");
    env.ok(&["rm", "-f", "svc2", "other"]);
}
