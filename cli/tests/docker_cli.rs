//! The docker CLI surface (issue 14): each command and flag driven through the real
//! binary, and compared with the docker engine's output for the same objects where the
//! engine can show it — the command tree, help, exit codes, version, info, df, prunes,
//! events and volumes here; images in docker_images.rs, containers in
//! docker_containers.rs. Docker only ever sees local images (`rbuild-anchor/…`) and
//! loopback registries.

mod common;

use common::docker::*;
use common::*;
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Regression: an unknown verb fell through to `build` (a folder of that name with a
/// Dockerfile was built).
#[test]
fn unknown_words_are_unknown_commands_not_contexts() {
    let env = Env::with_base();
    let work = env.path("work");
    for d in ["frobnicate", "version"] {
        context(&work.join(d), &[("Dockerfile", &format!("FROM {BASE}\n"))]);
    }
    let run_in = |args: &[&str]| env.cmd().current_dir(&work).args(args).output().unwrap();
    let o = run_in(&["imagez"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("'imagez' is not a rbuild command") && stderr(&o).contains("\timages"),
        "{}",
        stderr(&o)
    );
    for word in ["checkpoint", "plugin"] {
        let o = run_in(&[word, "x"]);
        assert_eq!(o.status.code(), Some(1), "{word}");
        assert!(stderr(&o).contains("does not have yet"), "{word}: {}", stderr(&o));
    }
    // A directory named like a command is the command.
    let o = run_in(&["version"]);
    assert!(o.status.success() && stdout(&o).contains("Version:"), "{}", stderr(&o));
    // Path-like arguments and other existing directories are contexts.
    let before = env.ok(&["images", "-q"]).lines().count();
    let o = run_in(&["-q", "./frobnicate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(&["-q", "frobnicate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(env.ok(&["images", "-q"]).lines().count() >= before);
    let o = run_in(&["nosuchword-or-dir"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("path"), "{}", stderr(&o));
}

/// Regression: `run` of a missing image exited 1 where docker gives 125.
#[test]
fn exit_codes_follow_docker_125_126_127() {
    let env = Env::with_base();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let missing = format!("127.0.0.1:{closed}/no/such:1");
    let code = |args: &[&str]| env.run(args).status.code();
    assert_eq!(code(&["run", "--rm", &missing, "true"]), Some(125));
    assert_eq!(code(&["create", &missing]), Some(125));
    assert_eq!(code(&["run", "--rm", "--badflag", BASE]), Some(125));
    assert_eq!(code(&["run", "--rm", "-v", "rel:tive:bad:x", BASE, "true"]), Some(125));
    assert_eq!(code(&["images", "--badflag"]), Some(125));
    let theirs = |args: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none", BASE];
        a.extend_from_slice(args);
        docker(&a).status.code()
    };
    for args in [&["nosuchcommand"][..], &["/etc/passwd"], &["sh", "-c", "exit 3"]] {
        let mut a = vec!["run", "--rm", BASE];
        a.extend_from_slice(args);
        assert_eq!(code(&a), theirs(args), "run {args:?}");
    }
    // Errors of rbuild itself (not of a container) in other verbs exit 1, as docker's.
    assert_eq!(code(&["start", "nosuchcontainer"]), Some(1));
    assert_eq!(code(&["rmi", "no/such:image"]), Some(1));
    assert_eq!(docker(&["start", "rbcli-nosuchcontainer"]).status.code(), Some(1));
    // exec: a missing binary is docker's 126/127, a missing container 1.
    env.ok(&["run", "-d", "--name", "ex", BASE, "sleep", "300"]);
    let o = env.run(&["exec", "ex", "nosuchcommand"]);
    assert!(matches!(o.status.code(), Some(126) | Some(127)), "{o:?}");
    assert!(!stderr(&o).contains("exit code"), "{}", stderr(&o));
    assert_eq!(code(&["exec", "ex", "/etc/passwd"]), Some(126));
    assert_eq!(code(&["exec", "ex", "sh", "-c", "exit 5"]), Some(5));
    assert_eq!(code(&["exec", "nosuchcontainer", "true"]), Some(1));
    env.ok(&["rm", "-f", "ex"]);
}

#[test]
fn management_groups_run_the_same_code() {
    let env = Env::with_base();
    env.ok(&["create", "--name", "g1", BASE, "true"]);
    assert_eq!(env.ok(&["container", "ls", "-a", "-q"]), env.ok(&["ps", "-a", "-q"]));
    assert_eq!(env.ok(&["container", "ps", "-a", "-q"]), env.ok(&["ps", "-a", "-q"]));
    assert_eq!(env.ok(&["container", "list", "-aq"]), env.ok(&["ps", "-aq"]));
    assert_eq!(env.ok(&["image", "ls"]), env.ok(&["images"]));
    assert_eq!(env.ok(&["image", "list", "-q"]), env.ok(&["images", "-q"]));
    assert_eq!(env.ok(&["container", "inspect", "g1"]), env.ok(&["inspect", "g1"]));
    assert_eq!(env.ok(&["image", "inspect", BASE]), env.ok(&["inspect", BASE]));
    assert_eq!(env.ok(&["image", "history", BASE]), env.ok(&["history", BASE]));
    env.ok(&["image", "tag", BASE, "grp/x:1"]);
    env.ok(&["image", "rm", "grp/x:1"]);
    assert!(!env.ok(&["images"]).contains("grp/x"));
    env.ok(&["container", "rename", "g1", "g2"]);
    env.ok(&["container", "rm", "g2"]);
    assert!(env.ok(&["ps", "-aq"]).is_empty());
    // `--type` narrows inspect as docker's TYPE inspect does.
    assert!(!env.run(&["container", "inspect", BASE]).status.success());
    assert!(!env.run(&["image", "inspect", "nosuch:1"]).status.success());
    env.ok(&["builder", "prune", "-f"]);
    env.ok(&["container", "prune", "-f"]);
    env.ok(&["image", "prune", "-f"]);
}

#[test]
fn every_command_has_complete_help_and_the_top_level_groups_them() {
    let env = Env::new();
    let top = env.ok(&["--help"]);
    for heading in ["Common Commands:", "Management Commands:", "Commands:", "Global Options:"] {
        assert!(top.contains(heading), "{top}");
    }
    let section = |h: &str| {
        let start = top.find(h).unwrap() + h.len();
        let rest = &top[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    let mgmt = section("Management Commands:");
    for g in ["container", "image", "volume", "builder", "system"] {
        assert!(mgmt.contains(&format!("  {g} ")), "{mgmt}");
    }
    assert_eq!(env.ok(&["help"]), top);
    let mut commands: Vec<String> = Vec::new();
    for h in ["Common Commands:", "Management Commands:", "\nCommands:"] {
        commands.extend(section(h).lines().filter_map(|l| l.split_whitespace().next().map(String::from)));
    }
    assert!(commands.len() > 40, "{commands:?}");
    for c in &commands {
        let o = env.run(&[c, "--help"]);
        assert!(o.status.success(), "{c} --help: {}", stderr(&o));
        let h = stdout(&o);
        assert!(h.contains("Usage:") && h.lines().count() > 3, "{c}: {h}");
    }
    // A group alone shows its commands.
    let g = env.ok(&["container"]);
    assert!(g.contains("Usage:") && g.contains("prune"), "{g}");
    for sub in [["container", "ls"], ["image", "prune"], ["volume", "create"], ["system", "df"], ["builder", "prune"]] {
        let o = env.run(&[sub[0], sub[1], "--help"]);
        assert!(o.status.success() && stdout(&o).contains("Usage:"), "{sub:?}");
    }
}

#[test]
fn version_and_info_with_formats() {
    let env = Env::with_base();
    let v = env.ok(&["version"]);
    assert!(v.contains(env!("CARGO_PKG_VERSION")) && v.contains("Kernel Version"), "{v}");
    assert_eq!(env.ok(&["version", "--format", "{{.Client.Version}}"]).trim(), env!("CARGO_PKG_VERSION"));
    assert_eq!(env.ok(&["-v"]).trim(), format!("rbuild version {}", env!("CARGO_PKG_VERSION")));
    env.ok(&["run", "-d", "--name", "up", BASE, "sleep", "300"]);
    env.ok(&["create", "--name", "made", BASE, "true"]);
    env.ok(&["run", "-d", "--name", "frozen", BASE, "sleep", "300"]);
    env.ok(&["pause", "frozen"]);
    let f = "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}";
    assert_eq!(env.ok(&["info", "--format", f]).trim(), "3 1 1 1 1");
    let kernel = sh_ok("uname -r");
    assert_eq!(env.ok(&["info", "--format", "{{.KernelVersion}}"]).trim(), kernel.trim());
    assert_eq!(env.ok(&["system", "info", "--format", "{{.DockerRootDir}}"]).trim(), env.root().to_str().unwrap());
    // The same keys docker's info has for these.
    let cg = docker_ok(&["info", "--format", "{{.CgroupVersion}}"]);
    assert_eq!(env.ok(&["info", "--format", "{{.CgroupVersion}}"]), cg);
    let text = env.ok(&["info"]);
    for k in [
        "Containers: 3",
        "Running: 1",
        "Paused: 1",
        "Stopped: 1",
        "Images: 1",
        "Store Root:",
        "Store Size:",
        "Cgroup Version:",
        "seccomp",
        "Kernel Version:",
    ] {
        assert!(text.contains(k), "{k} missing: {text}");
    }
    env.ok(&["unpause", "frozen"]);
    env.ok(&["rm", "-f", "up", "frozen", "made"]);
}

#[test]
fn system_df_and_prunes() {
    let env = Env::with_base();
    let dangling = other_image(&env, "dangle/me:1");
    env.ok(&["tag", BASE, "keep/me:1"]);
    env.ok(&["rmi", "dangle/me:1"]).contains("Untagged");
    // Untagging the last name removes the image in rbuild; make a dangling one by import.
    let tar = env.path("d.tar");
    sh_ok(&format!("tar -C {} -cf {} etc", env.path("other-root").display(), tar.display()));
    let dang = env.ok(&["import", tar.to_str().unwrap()]).trim().to_string();
    let _ = dangling;
    env.ok(&["create", "--name", "stopped", "-v", "/anon", BASE, "true"]);
    env.ok(&["volume", "create", "named"]);
    let df = env.ok(&["system", "df"]);
    let header = df.lines().next().unwrap();
    assert_eq!(header.split_whitespace().collect::<Vec<_>>(), ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert_eq!(
        env.ok(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}/{{.Active}}"]),
        "Images=2/1\nContainers=1/0\nLocal Volumes=2/1\nBuild Cache=0/0\n"
    );
    let v = env.ok(&["system", "df", "-v"]);
    assert!(v.contains("Images space usage") && v.contains("stopped") && v.contains("named"), "{v}");
    // Without -f prune asks; an answer other than y keeps everything.
    let mut c = env.cmd();
    c.args(["system", "prune"]).stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(stdout(&o).contains("Are you sure"), "{}", stdout(&o));
    assert!(env.ok(&["ps", "-aq"]).contains(&env.ok(&["ps", "-aq"]).trim().to_string()));
    assert_eq!(env.ok(&["ps", "-aq"]).lines().count(), 1);
    let p = env.ok(&["system", "prune", "-f"]);
    assert!(p.contains("Deleted Containers:") && p.contains(&dang) && p.contains("Total reclaimed space"), "{p}");
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    assert_eq!(env.ok(&["images", "--format", "{{.Repository}}"]).lines().count(), 2, "tagged images stay");
    // The anonymous volume went with --volumes; the named one stays (docker 23+).
    assert_eq!(env.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    env.ok(&["system", "prune", "-f", "--volumes"]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]).trim(), "named");
    env.ok(&["system", "prune", "-f", "-a"]);
    assert_eq!(env.ok(&["images", "-q"]), "", "-a removes images no container uses");
    env.ok(&["fsck"]);
}

#[test]
fn events_record_what_commands_do() {
    let env = Env::with_base();
    // A follower started first sees the events as they happen.
    let mut follower = env
        .cmd()
        .args(["events", "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["create", "--name", "ev", BASE, "sleep", "300"]);
    env.ok(&["start", "ev"]);
    env.ok(&["stop", "-t", "0", "ev"]);
    env.ok(&["rm", "ev"]);
    env.ok(&["tag", BASE, "ev/img:1"]);
    env.ok(&["volume", "create", "evvol"]);
    let tar = env.path("ev.tar");
    env.ok(&["save", "-o", tar.to_str().unwrap(), "ev/img:1"]);
    env.ok(&["load", "-i", tar.to_str().unwrap()]);
    let mut r = std::io::BufReader::new(follower.stdout.take().unwrap());
    let mut got = Vec::new();
    let t = Instant::now();
    while got.len() < 6 && t.elapsed() < Duration::from_secs(10) {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap() == 0 {
            break;
        }
        got.push(l.trim().to_string());
    }
    let _ = follower.kill();
    let _ = follower.wait();
    // docker's sequence: the monitor's die comes between the kill and the stop.
    assert_eq!(got, ["create ev", "start ev", "kill ev", "die ev", "stop ev", "destroy ev"]);
    // The journal, read back with --since/--until and filters.
    let all = env.ok(&["events", "--since", "10m", "--until", "0s", "--format", "{{.Type}} {{.Action}}"]);
    for want in ["container create", "container destroy", "image tag", "image save", "image load", "volume create"] {
        assert!(all.contains(want), "{want}: {all}");
    }
    let img = env.ok(&["system", "events", "--since", "10m", "--until", "0s", "--filter", "type=image"]);
    assert!(img.lines().all(|l| l.contains(" image ")) && img.contains("name=ev/img:1"), "{img}");
    // docker's line: TIME TYPE ACTION ID (attributes)
    let l = img.lines().next().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(l.split(' ').next().unwrap()).is_ok(), "{l}");
    let json = env.ok(&["events", "--since", "10m", "--until", "0s", "--format", "json", "--filter", "event=create"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Type"], "container");
    assert!(v["timeNano"].as_i64().unwrap() > 0);
}

#[test]
fn volume_commands_match_docker() {
    let env = Env::with_base();
    let u = unique("rbclivol");
    let _dv = DockerVolumes(vec![u.clone()]);
    assert_eq!(env.ok(&["volume", "create", "--label", "a=1", "--label", "b", &u]).trim(), u);
    docker_ok(&["volume", "create", "--label", "a=1", "--label", "b", &u]);
    let f = "{{.Name}} {{.Driver}} {{.Scope}} {{json .Labels}}";
    assert_eq!(env.ok(&["volume", "inspect", "--format", f, &u]), docker_ok(&["volume", "inspect", "--format", f, &u]));
    let ours: serde_json::Value = serde_json::from_str(&env.ok(&["volume", "inspect", &u])).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&docker_ok(&["volume", "inspect", &u])).unwrap();
    let keys = |v: &serde_json::Value| v[0].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(&theirs));
    let mp = ours[0]["Mountpoint"].as_str().unwrap();
    assert!(std::path::Path::new(mp).is_dir() && mp.starts_with(env.root().to_str().unwrap()));
    assert!(chrono::DateTime::parse_from_rfc3339(ours[0]["CreatedAt"].as_str().unwrap()).is_ok());
    // ls: table, -q, filters.
    env.ok(&["volume", "create", "plain"]);
    let ls = env.ok(&["volume", "ls"]);
    assert_eq!(ls.lines().next().unwrap().split_whitespace().collect::<Vec<_>>(), ["DRIVER", "VOLUME", "NAME"]);
    assert_eq!(sorted_lines(&env.ok(&["volume", "ls", "-q"])), sorted_lines(&format!("plain\n{u}\n")));
    assert_eq!(env.ok(&["volume", "ls", "-q", "--filter", "label=a=1"]).trim(), u);
    assert_eq!(env.ok(&["volume", "ls", "-q", "-f", "name=pla"]).trim(), "plain");
    // -v NAME:/path makes a volume on first use and fills it from the image.
    env.ok(&["run", "--name", "user", "-v", "auto:/etc", BASE, "true"]);
    assert!(env.ok(&["volume", "ls", "-q"]).contains("auto"));
    assert_eq!(env.ok(&["volume", "ls", "-q", "--filter", "dangling=false"]).trim(), "auto");
    assert!(std::path::Path::new(&format!("{}/rbuild/volumes/auto/_data/passwd", env.root().display())).exists());
    // rm refuses a volume in use, -f ignores missing ones.
    let o = env.run(&["volume", "rm", "auto"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    let o = env.run(&["volume", "rm", "nosuchvolume"]);
    assert!(!o.status.success() && stderr(&o).contains("no such volume"), "{}", stderr(&o));
    env.ok(&["volume", "rm", "-f", "nosuchvolume"]);
    // rm -v removes the container's anonymous volumes, not named ones.
    env.ok(&["create", "--name", "anon", "-v", "/scratch", "-v", "plain:/p", BASE, "true"]);
    let before = env.ok(&["volume", "ls", "-q"]).lines().count();
    env.ok(&["rm", "-v", "anon"]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]).lines().count(), before - 1);
    // prune: anonymous unused ones by default, every unused one with -a.
    env.ok(&["create", "--name", "anon2", "-v", "/scratch", BASE, "true"]);
    env.ok(&["rm", "anon2"]);
    let p = env.ok(&["volume", "prune", "-f"]);
    assert!(p.contains("Deleted Volumes:") && p.contains("Total reclaimed space"), "{p}");
    assert!(env.ok(&["volume", "ls", "-q"]).contains("plain"));
    env.ok(&["volume", "prune", "-f", "--filter", "label=a=1", "-a"]);
    assert!(!env.ok(&["volume", "ls", "-q"]).contains(&u));
    env.ok(&["volume", "prune", "-af"]);
    assert_eq!(env.ok(&["volume", "ls", "-q"]).trim(), "auto", "in use: kept");
    env.ok(&["rm", "user"]);
    env.ok(&["volume", "rm", "auto"]);
}
