//! `attach`, `run -it` and its Ctrl-P Ctrl-Q, `run -a`, `--sig-proxy`, `start -ai`
//! (issue 14), driven on a real pseudo-terminal and compared with the docker 20.10 engine.

mod common;

use common::docker::*;
use common::pty::Pty;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn status(env: &Env, name: &str) -> String {
    env.ok(&["inspect", "--format", "{{.State.Status}}", name]).trim().to_string()
}

/// The exit code of a program that ran on a terminal.
fn code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0))
}

/// The same session on a terminal for docker or rbuild: run -it, detach, attach, detach,
/// attach, exit 4. Returns the exit codes and what each attach showed.
fn tty_session(cmd: impl Fn() -> Command, name: &str) -> (Vec<i32>, Vec<String>) {
    let mut codes = vec![];
    let mut shown = vec![];
    let mut run = cmd();
    run.args(["run", "-it", "--name", name, "--network", "none", BASE, "sh"]);
    let t = Pty::spawn(run);
    t.expect("# ");
    t.type_in(b"echo hi\r");
    t.expect("hi\r\n");
    t.type_in(&[0x10, 0x11]);
    let (st, _) = t.wait();
    codes.push(code(st));
    for finish in [&[0x10u8, 0x11][..], b"exit 4\r"] {
        let mut attach = cmd();
        attach.args(["attach", name]);
        let t = Pty::spawn(attach);
        // The shell redraws its prompt when the attach resizes the terminal.
        t.expect("# ");
        t.type_in(b"echo again\r");
        t.expect("again\r\n");
        t.type_in(finish);
        let (st, out) = t.wait();
        codes.push(code(st));
        shown.push(out);
    }
    (codes, shown)
}

#[test]
fn run_it_detaches_with_ctrl_p_ctrl_q_and_attach_comes_back_as_dockers() {
    let env = Env::with_base();
    let name = unique("rbt-tty");
    let _d = DockerContainers(vec![name.clone()]);
    let (codes, shown) = tty_session(|| env.cmd(), &name);
    let (dcodes, dshown) = tty_session(|| Command::new("docker"), &name);
    assert_eq!(codes, dcodes, "exit codes: detached run, detached attach, exit through attach");
    assert_eq!(codes, [0, 1, 4]);
    assert!(dshown[0].contains("read escape sequence") && shown[0].contains("read escape sequence"), "{shown:?}");
    assert_eq!(status(&env, &name), "exited");
    assert_eq!(env.ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]), "4\n");
}

#[test]
fn detach_keys_can_be_changed_and_other_keys_reach_the_container() {
    let env = Env::with_base();
    let mut run = env.cmd();
    run.args(["run", "-it", "--detach-keys", "ctrl-a,x", "--name", "dk", "--network", "none", BASE, "sh"]);
    let t = Pty::spawn(run);
    t.expect("# ");
    // Ctrl-P Ctrl-Q are just keys now; Ctrl-A alone is held back and passed on with
    // the next key.
    t.type_in(&[0x10, 0x11]);
    t.type_in(&[0x01]);
    t.type_in(b"\recho still\r");
    t.expect("still\r\n");
    t.type_in(&[0x01, b'x']);
    let (st, _) = t.wait();
    assert_eq!(code(st), 0);
    assert_eq!(status(&env, "dk"), "running");
    let o = env.run(&["attach", "--detach-keys", "ctrl-1", "dk"]);
    assert!(!o.status.success() && stderr(&o).contains("Invalid detach keys (ctrl-1) provided"), "{}", stderr(&o));
    // A tty container needs a terminal to take input from.
    let o = env.run(&["attach", "dk"]);
    assert!(stderr(&o).contains("the input device is not a TTY"), "{}", stderr(&o));
}

#[test]
fn start_ai_runs_a_tty_container_on_this_terminal() {
    let env = Env::with_base();
    env.ok(&["create", "-it", "--name", "sa", "--network", "none", BASE, "sh"]);
    let mut start = env.cmd();
    start.args(["start", "-ai", "sa"]);
    let t = Pty::spawn(start);
    t.expect("# ");
    t.type_in(b"exit 6\r");
    let (st, _) = t.wait();
    assert_eq!(code(st), 6);
}

/// `attach` to an `-i` container with `input` on stdin: (stdout, stderr, code).
fn attach_with_input(mut cmd: Command, name: &str, input: &str, extra: &[&str]) -> (String, String, i32) {
    let mut child = cmd
        .arg("attach")
        .args(extra)
        .arg(name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    (stdout(&o), stderr(&o), o.status.code().unwrap_or(-1))
}

#[test]
fn attach_passes_input_and_output_and_refuses_stopped_containers_as_dockers() {
    let env = Env::with_base();
    let name = unique("rbt-attach");
    let _d = DockerContainers(vec![name.clone()]);
    let run = [
        "run",
        "-di",
        "--name",
        &name,
        "--network",
        "none",
        BASE,
        "sh",
        "-c",
        "read x; echo got $x; echo err >&2; exit 3",
    ];
    env.ok(&run);
    docker_ok(&run);
    let ours = attach_with_input(env.cmd(), &name, "hello\n", &[]);
    // (docker's client may leave before the output arrives once its input ended: the
    // exit code is what both report for sure.)
    let theirs = attach_with_input(Command::new("docker"), &name, "hello\n", &[]);
    assert_eq!(ours.2, theirs.2);
    assert_eq!(ours, ("got hello\n".into(), "err\n".into(), 3));
    let o = env.run(&["attach", &name]);
    let d = docker(&["attach", &name]);
    assert_eq!(o.status.code(), Some(1));
    let msg = "You cannot attach to a stopped container, start it first";
    assert!(stderr(&o).contains(msg) && stderr(&d).contains(msg), "{}", stderr(&o));

    // --no-stdin: what is typed goes nowhere (the container would echo it at once).
    let script = "while :; do if read -t 0.1 x; then echo got:$x; fi; echo tick; done";
    env.ok(&["run", "-di", "--name", "deaf", "--network", "none", BASE, "sh", "-c", script]);
    let mut child =
        env.cmd().args(["attach", "--no-stdin", "deaf"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.as_ref().unwrap().write_all(b"ignored\n").unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while seen.matches("tick").count() < 10 {
        assert!(std::io::BufRead::read_line(&mut out, &mut seen).unwrap() > 0, "attach ended: {seen}");
    }
    env.ok(&["kill", "deaf"]);
    assert_eq!(child.wait().unwrap().code(), Some(137));
    assert!(!seen.contains("got:"), "{seen}");
}

#[test]
fn run_a_attaches_only_the_streams_given_as_dockers() {
    let env = Env::with_base();
    for streams in [&["-a", "stdout"][..], &["-a", "stderr"], &["-a", "STDOUT", "-a", "stderr"]] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(streams);
        args.extend_from_slice(&[BASE, "sh", "-c", "echo out; echo err >&2; exit 2"]);
        let o = env.run(&args);
        let d = docker(&args);
        assert_eq!((stdout(&o), stderr(&o), o.status.code()), (stdout(&d), stderr(&d), d.status.code()), "{streams:?}");
    }
    let o = env.run(&["run", "-d", "-a", "stdout", BASE, "true"]);
    assert!(stderr(&o).contains("conflicting options: -a and -d"), "{}", stderr(&o));
    let o = env.run(&["run", "-a", "stdsomething", BASE, "true"]);
    assert!(stderr(&o).contains("valid streams are STDIN, STDOUT and STDERR"), "{}", stderr(&o));
    assert_eq!(env.ok(&["ps", "-aq"]), "");
}

#[test]
fn signals_reach_a_foreground_container_unless_sig_proxy_is_off() {
    let env = Env::with_base();
    let wait_running = |name: &str| {
        poll("running", || env.run(&["inspect", "--format", "{{.State.Status}}", name]).stdout.starts_with(b"running"))
    };
    // Proxied: the container's trap decides the exit code.
    let script = "trap 'exit 5' TERM; while :; do sleep 0.1; done";
    let mut fg =
        env.cmd().args(["run", "--name", "px", "--network", "none", BASE, "sh", "-c", script]).spawn().unwrap();
    wait_running("px");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(fg.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert_eq!(fg.wait().unwrap().code(), Some(5));
    // Not proxied: this process ends, the container runs on (as docker's).
    let mut fg = env
        .cmd()
        .args(["run", "--sig-proxy=false", "--name", "np", "--network", "none", BASE, "sleep", "1000"])
        .spawn()
        .unwrap();
    wait_running("np");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(fg.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    assert_eq!(fg.wait().unwrap().code(), Some(130));
    assert_eq!(status(&env, "np"), "running");
}
