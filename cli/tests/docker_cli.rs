//! The docker CLI surface (issue 14): each command and flag driven through the real
//! binary, and compared with the docker engine's output for the same objects where the
//! engine can show it. Docker only ever sees local images (`rbuild-anchor/…`) and
//! loopback registries.

mod common;

use common::docker::*;
use common::*;
use rbuild_registry::testing::RegistryServer;
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A second, different image in the store (a one-layer import).
fn other_image(env: &Env, name: &str) -> String {
    let tar = env.path("other.tar");
    let dir = env.path("other-root");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/other"), name).unwrap();
    sh_ok(&format!("tar -C {} -cf {} .", dir.display(), tar.display()));
    env.ok(&["import", tar.to_str().unwrap(), name]).trim().to_string()
}

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- images, bugs first

/// Regression: `images -q REPO` printed every image, so `rmi -f $(images -q myrepo)`
/// deleted them all; `images bb:1` listed bb:latest too.
#[test]
fn images_repo_and_tag_arguments_match_as_dockers() {
    let env = Env::with_base();
    let u = unique("rbcli");
    let names = [format!("{u}-bb:1"), format!("{u}-bb:latest"), format!("{u}-org/app:2"), format!("{u}-org/sub/x:1")];
    let _cleanup = DockerImages(names.to_vec());
    for n in &names {
        env.ok(&["tag", BASE, n]);
        docker_ok(&["tag", BASE, n]);
    }
    let other = other_image(&env, &format!("{u}-other:1"));
    let fmt = "{{.Repository}}:{{.Tag}}";
    for pattern in [format!("{u}-bb"), format!("{u}-bb:1"), format!("{u}-org/*"), format!("{u}-org/app:*")] {
        let ours = env.ok(&["images", "--format", fmt, &pattern]);
        let theirs = docker_ok(&["images", "--format", fmt, &pattern]);
        assert_eq!(lines(&ours), lines(&theirs), "images {pattern}");
        assert!(!ours.is_empty(), "images {pattern} listed nothing");
    }
    assert!(!env.ok(&["images", &format!("{u}-bb:1")]).contains("latest"));
    let q = env.ok(&["images", "-q", &format!("{u}-bb")]);
    assert_eq!(q.trim(), &env.ok(&["images", "-q", BASE]).trim()[..12], "{q}");
    // The common idiom removes that repository's image and nothing else.
    let ids: Vec<String> = q.split_whitespace().map(String::from).collect();
    let mut rmi = vec!["rmi", "-f"];
    rmi.extend(ids.iter().map(String::as_str));
    env.ok(&rmi);
    let left = env.ok(&["images", "-q", "--no-trunc"]);
    assert!(left.contains(&other), "rmi -f $(images -q REPO) removed another image: {left}");
    // A bad pattern is an error, as docker's.
    assert!(!env.run(&["images", "["]).status.success());
}

/// Regression: a fresh build showed the base image's creation time.
#[test]
fn a_fresh_build_reads_seconds_ago_and_keeps_its_reproducible_config() {
    require_root();
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nRUN echo x > /x\n"))]);
    let (_, _, id) = build(&env, &ctx, &["-t", "fresh/app:1"]);
    let row = env.ok(&["images", "--format", "{{.CreatedSince}}", "fresh/app:1"]);
    assert!(row.contains("second") || row.contains("Less than"), "{row}");
    let created = env.ok(&["inspect", "--format", "{{.Created}}", "fresh/app:1"]);
    let t = chrono::DateTime::parse_from_rfc3339(created.trim()).unwrap().timestamp();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - t).abs() < 120, "{created}");
    // The config itself still carries the clamped time: rebuilding gives the same image.
    let (_, _, again) = build(&env, &ctx, &["--no-cache", "-t", "fresh/app:2"]);
    assert_eq!(again, id);
}

/// Regression: `commit -m` did not reach inspect's Comment.
#[test]
fn commit_message_is_the_images_comment_as_in_docker() {
    require_root();
    let env = Env::with_base();
    env.ok(&["run", "--name", "cm", BASE, "touch", "/made"]);
    env.ok(&["commit", "-m", "a message", "-a", "me", "cm", "committed/img:1"]);
    let f = "{{.Comment}}|{{.Author}}";
    let ours = env.ok(&["inspect", "--format", f, "committed/img:1"]);
    let name = unique("rbcli-commit");
    let _c = DockerContainers(vec![name.clone()]);
    let _i = DockerImages(vec![format!("{name}:1")]);
    docker_ok(&["run", "--name", &name, "--network", "none", BASE, "touch", "/made"]);
    docker_ok(&["commit", "-m", "a message", "-a", "me", &name, &format!("{name}:1")]);
    assert_eq!(ours, docker_ok(&["inspect", "--format", f, &format!("{name}:1")]));
    // Without -m the comment is empty (not the base's "Imported from -").
    env.ok(&["commit", "cm", "committed/img:2"]);
    assert_eq!(env.ok(&["inspect", "--format", "{{.Comment}}", "committed/img:2"]).trim(), "");
}

/// Regression: RepoDigests stayed empty after push and pull, and DIGEST showed the
/// store's own manifest digest.
#[test]
fn repo_digests_are_the_registrys_after_push_and_pull() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    let name = format!("{}/digests/app:1", reg.host());
    env.ok(&["tag", BASE, &name]);
    assert_eq!(env.ok(&["images", "--digests", "--format", "{{.Digest}}", &name]).trim(), "<none>");
    env.ok(&["push", "--format", "docker", "--compression", "gzip", &name]);
    let remote = sh_ok(&format!(
        "curl -sI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' http://{}/v2/digests/app/manifests/1 | tr -d '\\r' | awk -F': ' 'tolower($1)==\"docker-content-digest\" {{print $2}}'",
        reg.host()
    ));
    let remote = remote.trim();
    assert!(remote.starts_with("sha256:"), "{remote}");
    let want = format!("{}/digests/app@{remote}", reg.host());
    let digests = env.ok(&["inspect", "--format", "{{json .RepoDigests}}", &name]);
    assert_eq!(digests.trim(), format!("[\"{want}\"]"));
    assert_eq!(env.ok(&["images", "--digests", "--format", "{{.Digest}}", &name]).trim(), remote);
    let table = env.ok(&["images", "--digests", &name]);
    assert!(table.lines().next().unwrap().contains("DIGEST") && table.contains(remote), "{table}");
    let fresh = Env::new();
    fresh.ok(&["pull", &name]);
    assert_eq!(fresh.ok(&["inspect", "--format", "{{json .RepoDigests}}", &name]).trim(), format!("[\"{want}\"]"));
}

// ---------------------------------------------------------------- verbs and exit codes

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
    require_root();
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
    require_root();
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

// ---------------------------------------------------------------- version, info, system

#[test]
fn version_and_info_with_formats() {
    require_root();
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
    require_root();
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
    require_root();
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

// ---------------------------------------------------------------- volumes

#[test]
fn volume_commands_match_docker() {
    require_root();
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
    assert_eq!(lines(&env.ok(&["volume", "ls", "-q"])), lines(&format!("plain\n{u}\n")));
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

// ---------------------------------------------------------------- --format against docker

/// The same containers made by docker and by rbuild print the same through docker's
/// templates.
#[test]
fn container_templates_print_what_docker_prints() {
    require_root();
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
fn image_and_history_templates_print_what_docker_prints() {
    let env = Env::with_base();
    for f in [
        "{{.Id}} {{.Os}}/{{.Architecture}} {{json .RootFS.Layers}} {{.Comment}}",
        "{{json .Config.Env}} {{.Config.Cmd}} {{.Config.Labels}} {{.Config.Labels.nope}} {{.Author}}",
        "{{range $i, $l := .RootFS.Layers}}{{$i}}:{{$l}} {{end}}",
        "{{json .RepoTags}} {{len .RepoDigests}}",
        // Go's template language itself, against docker's engine.
        "{{range $k, $v := .Config.Labels}}{{$k}}{{else}}none{{end}}",
        "{{if and .Id (not .Author)}}yes{{end}} {{printf \"%q\" .Os}} {{.Id | printf \"%.19s\"}}",
        "  {{- /* c */ -}}  x {{$x := 1}}{{if eq $x 1}}one{{end}}",
        "{{println .Os}}{{print 1 2 \"a\" 3}} {{printf \"%d items %v\" (len .RepoTags) .RepoTags}}",
        "{{json .RootFS}} {{.RootFS}} {{or .Author \"anon\"}} {{\"a\\tb\"}}",
        "{{html \"<a>\"}} {{js \"a'b\"}} {{urlquery \"a b&c\"}} {{slice .Os 1 3}}",
        "{{printf \"%5s|%-5s|%x\" \"a\" \"b\" 255}} {{.ContainerConfig.Cmd}} {{with $x := .Os}}{{$x}}{{end}}",
        "{{range $i, $e := .RepoTags}}{{if $i}},{{end}}{{$e}}{{end}} {{not 0}} {{and 1 0}} {{or 0 \"\"}}|",
        "{{.Architecture | upper | lower}} {{split .Id \":\"}} {{1e3}} {{0x10}} {{1.5}} {{-2}}",
        "{{.Size}} {{gt .Size 1000}}",
    ] {
        assert_eq!(env.ok(&["inspect", "--format", f, BASE]), docker_ok(&["inspect", "--format", f, BASE]), "{f}");
    }
    // Templates docker refuses, rbuild refuses too.
    for f in ["{{lt 1 2.5}}", "{{.Nope}}", "{{index .RootFS.Layers 0 | truncate 15}}", "{{if}}"] {
        assert!(!docker(&["inspect", "--format", f, BASE]).status.success(), "{f}");
        let o = env.run(&["inspect", "--format", f, BASE]);
        assert_eq!(o.status.code(), Some(1), "{f}");
        assert!(stderr(&o).contains("template"), "{f}: {}", stderr(&o));
    }
    let f = "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}";
    assert_eq!(env.ok(&["images", "--format", f, BASE]), docker_ok(&["images", "--format", f, BASE]));
    assert_eq!(
        env.ok(&["inspect", "--format", "{{.Size}}", BASE]),
        docker_ok(&["inspect", "--format", "{{.Size}}", BASE])
    );
    let f = "{{.ID}}|{{.CreatedBy}}|{{.Comment}}";
    assert_eq!(env.ok(&["history", "--format", f, BASE]), docker_ok(&["history", "--format", f, BASE]));
    assert_eq!(env.ok(&["history", "-q", BASE]), docker_ok(&["history", "-q", BASE]));
    let h = env.ok(&["history", BASE]);
    assert_eq!(
        h.lines().next().unwrap().split("   ").map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    );
    let images = env.ok(&["images"]);
    let theirs = docker_ok(&["images", BASE]);
    assert_eq!(images.lines().next(), theirs.lines().next(), "header");
    // json: one object per line.
    let v: serde_json::Value =
        serde_json::from_str(env.ok(&["images", "--format", "json"]).lines().next().unwrap()).unwrap();
    assert_eq!(v["Repository"], "rbuild-anchor/busybox");
}

// ---------------------------------------------------------------- filters

#[test]
fn ps_filters_and_flags() {
    require_root();
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
fn images_filters_and_all() {
    require_root();
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nLABEL stage=test\nRUN true\n"))]);
    build(&env, &ctx, &["-t", "filt/labelled:1"]);
    let tar = env.path("d.tar");
    let root = env.path("droot");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("f"), "x").unwrap();
    sh_ok(&format!("tar -C {} -cf {} .", root.display(), tar.display()));
    let dangling = env.ok(&["import", tar.to_str().unwrap()]);
    let repos = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        a.extend_from_slice(args);
        lines(&env.ok(&a))
    };
    assert_eq!(repos(&["-f", "dangling=true"]), ["<none>:<none>"]);
    assert_eq!(env.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]).trim(), dangling.trim());
    assert_eq!(repos(&["-f", "dangling=false"]), ["filt/labelled:1", BASE]);
    assert_eq!(repos(&["-f", "label=stage=test"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "label=stage"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "reference=filt/*"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "since=rbuild-anchor/busybox:1", "-f", "dangling=false"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "before=filt/labelled:1"]), [BASE]);
    assert!(!env.run(&["images", "-f", "colour=red"]).status.success());
    assert!(!env.run(&["images", "-f", "before=no/such:1"]).status.success());
    // The same rows (the CREATED column may cross a second between two calls).
    let ids = |a: &[&str]| env.ok(&[a, &["--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}"]].concat());
    assert_eq!(ids(&["images", "-a"]), ids(&["images"]));
}

// ---------------------------------------------------------------- logs, top, port, rename

#[test]
fn logs_since_until_timestamps_tail_follow() {
    require_root();
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
    require_root();
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

// ---------------------------------------------------------------- registry: search, login

#[test]
fn search_lists_a_registrys_catalog_and_refuses_docker_hub() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    for n in ["search/alpha:1", "search/beta:1", "other/gamma:1"] {
        let name = format!("{}/{n}", reg.host());
        env.ok(&["tag", BASE, &name]);
        env.ok(&["push", "-q", &name]);
    }
    let s = env.ok(&["search", &format!("{}/search", reg.host())]);
    let rows: Vec<&str> = s.lines().collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    );
    assert_eq!(rows.len(), 3, "{s}");
    assert!(rows[1].starts_with(&format!("{}/search/alpha", reg.host())), "{s}");
    assert_eq!(
        env.ok(&["search", "--limit", "1", "--format", "{{.Name}}", &format!("{}/a", reg.host())]).lines().count(),
        1
    );
    assert_eq!(env.ok(&["search", "-f", "is-official=true", &format!("{}/search", reg.host())]).lines().count(), 1);
    // Docker Hub is never asked (this test has no network): refused at once.
    let t = Instant::now();
    let o = env.run(&["search", "busybox"]);
    assert!(!o.status.success() && stderr(&o).contains("Docker Hub has no catalog"), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn login_prompts_warns_and_uses_credential_helpers() {
    require_root();
    let reg = RegistryServer::start(Some(("alice", "pa55word")));
    let env = Env::with_base();
    let cfg_dir = env.path("docker-config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let run = |args: &[&str], stdin: &str, path: Option<&std::path::Path>| {
        let mut c = env.cmd();
        c.env("DOCKER_CONFIG", &cfg_dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(p) = path {
            c.env("PATH", format!("{}:{}", p.display(), std::env::var("PATH").unwrap()));
        }
        let mut child = c.spawn().unwrap();
        // A command that refuses before it reads (no --username) closes the pipe early.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    };
    // No -u: docker's prompts on standard input.
    let o = run(&["login", &reg.host()], "alice\npa55word\n", None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Username: Password: ") && stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    assert!(stderr(&o).contains("stored unencrypted"), "{}", stderr(&o));
    // -p works and warns as docker does.
    let o = run(&["login", "-u", "alice", "-p", "pa55word", &reg.host()], "", None);
    assert!(o.status.success());
    assert!(stderr(&o).contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."));
    let o = run(&["login", "--password-stdin", &reg.host()], "pa55word\n", None);
    assert!(!o.status.success() && stderr(&o).contains("Must provide --username with --password-stdin"));
    run(&["logout", &reg.host()], "", None);

    // A credential helper (credsStore): docker's protocol, through a fake helper.
    let bin = env.path("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let store_file = env.path("helper-store");
    let script = format!(
        "#!/bin/sh\nread -r req || true\ncase \"$1\" in\nstore) printf '%s' \"$req\" > {f} ;;\nget) if [ -f {f} ]; then sed 's/\"ServerURL\":\"[^\"]*\",//' {f}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\nerase) rm -f {f} ;;\nesac\n",
        f = store_file.display()
    );
    let helper = bin.join("docker-credential-rbtest");
    std::fs::write(&helper, script).unwrap();
    sh_ok(&format!("chmod +x {}", helper.display()));
    std::fs::write(cfg_dir.join("config.json"), r#"{"credsStore":"rbtest"}"#).unwrap();
    let o = run(&["login", "-u", "alice", "--password-stdin", &reg.host()], "pa55word\n", Some(&bin));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("unencrypted"));
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&store_file).unwrap()).unwrap();
    assert_eq!(stored["ServerURL"], reg.host());
    assert_eq!(stored["Secret"], "pa55word");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cfg_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["auths"][reg.host()], serde_json::json!({}), "no password in config.json: {cfg}");
    let name = format!("{}/helped/app:1", reg.host());
    env.ok(&["tag", BASE, &name]);
    let o = run(&["push", &name], "", Some(&bin));
    assert!(o.status.success(), "push with the helper's credentials: {}", stderr(&o));
    let o = run(&["logout", &reg.host()], "", Some(&bin));
    assert!(o.status.success() && stdout(&o).contains("Removing login credentials"));
    assert!(!store_file.exists(), "logout did not erase the helper's credentials");
    let o = run(&["push", &name], "", Some(&bin));
    assert!(!o.status.success() && stderr(&o).contains("authentication required"), "{}", stderr(&o));
    // credHelpers names a helper per registry; one that is missing is a clear error.
    std::fs::write(cfg_dir.join("config.json"), format!(r#"{{"credHelpers":{{"{}":"nosuchhelper"}}}}"#, reg.host()))
        .unwrap();
    let o = run(&["push", &name], "", Some(&bin));
    assert!(!o.status.success() && stderr(&o).contains("docker-credential-nosuchhelper"), "{}", stderr(&o));
}
