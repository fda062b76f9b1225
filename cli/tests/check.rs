//! `rbuild check`, `build --check` and the checks every build runs (BuildKit's build
//! checks; the rules themselves are tested against a table in builder/src/check).

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;

const WARNED: &str = "FROM rbuild-anchor/busybox:1\nCMD echo hi\n";

#[test]
fn check_prints_as_docker_and_fails_on_warnings() {
    let env = Env::new();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", WARNED)]);
    let out = env.run(&["check", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let file = ctx.join("Dockerfile");
    let want = format!(
        "Check complete, 1 warning has been found!\n\n\
         WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n\
         JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n\
         {}:2\n\
         --------------------\n   \
         1 |     FROM rbuild-anchor/busybox:1\n   \
         2 | >>> CMD echo hi\n   \
         3 |     \n\
         --------------------\n",
        file.display()
    );
    assert_eq!(stdout(&out), want);

    // Clean: exit 0 and BuildKit's line; `-f -` reads stdin.
    let mut child = env
        .cmd()
        .args(["check", "-f", "-", ctx.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"FROM rbuild-anchor/busybox:1\nCMD [\"echo\", \"hi\"]\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "Check complete, no warnings found.\n");

    // The directive can be replaced from the command line, as BuildKit's build argument.
    let out = env.run(&["check", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", ctx.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));

    // JSON: BuildKit's lint result.
    let out = env.run(&["check", "--format", "json", ctx.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"][0]["ruleName"], "JSONArgsRecommended");
    assert_eq!(v["warnings"][0]["location"]["ranges"][0]["start"]["line"], 2);
}

#[test]
fn build_check_does_not_build_and_builds_print_warnings() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[
            ("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY app.log $HOME/\nENV X=$PATH\nCMD echo hi\n"),
            ("app.log", "x"),
            (".dockerignore", "*.log\n"),
        ],
    );
    let out = env.run(&["build", "--check", "-t", "chk:1", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    // The base image's environment (in the store) defines PATH, not HOME.
    assert!(text.contains("Usage of undefined variable '$HOME'"), "{text}");
    assert!(!text.contains("'$PATH'"), "{text}");
    assert!(text.contains("Attempting to Copy file \"app.log\" that is excluded by .dockerignore"), "{text}");
    assert!(text.starts_with("Check complete, 3 warnings have been found!"), "{text}");
    assert!(env.ok(&["images", "-q", "chk:1"]).trim().is_empty(), "--check built an image");

    // A build runs the checks and prints BuildKit's summary after it.
    let fine = env.path("fine");
    context(&fine, &[("Dockerfile", WARNED)]);
    let out = env.run(&["build", "--progress", "plain", "-t", "chk:2", fine.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.ends_with(
            "\n 1 warning found:\n - JSONArgsRecommended: JSON arguments recommended for CMD to prevent \
             unintended behavior related to OS signals (line 2)\n"
        ),
        "{err}"
    );
    // -q prints nothing but the ID.
    let out = env.run(&["build", "-q", fine.to_str().unwrap()]);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn check_error_true_fails_the_build_before_any_step() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let df = "# check=error=true\nFROM rbuild-anchor/busybox:1\nRUN touch /ran\nCMD echo hi\n";
    context(&ctx, &[("Dockerfile", df)]);
    let out = env.run(&["build", "--progress", "plain", "-t", "strict:1", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("lint violation found for rules: JSONArgsRecommended"), "{err}");
    assert!(err.contains(" - JSONArgsRecommended: "), "{err}");
    assert!(!err.contains("RUN touch"), "a step ran: {err}");
    assert!(env.ok(&["images", "-q", "strict:1"]).trim().is_empty());
    // Skipped by the build argument, the same file builds.
    env.ok(&[
        "build",
        "-q",
        "--build-arg",
        "BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended;error=true",
        ctx.to_str().unwrap(),
    ]);
    // A bad directive is an error.
    context(&ctx, &[("Dockerfile", "# check=nope=1\nFROM rbuild-anchor/busybox:1\n")]);
    let out = env.run(&["build", "-q", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("failed to parse check options: invalid check option \"nope\""), "{}", stderr(&out));
}

#[test]
fn parse_refuses_an_unknown_instruction() {
    let env = Env::new();
    let f = env.path("Dockerfile");
    std::fs::write(&f, "FROM x\nFORM y\n").unwrap();
    let out = env.run(&["parse", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(":2:1: unknown instruction \"FORM\" (did you mean FROM?)"), "{err}");
    // So does check (as BuildKit, whose check fails the same way).
    let out = env.run(&["check", "-f", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown instruction \"FORM\""), "{}", stderr(&out));
}
