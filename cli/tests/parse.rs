//! `rbuild parse` as a user runs it: BuildKit's parser test data through the real binary,
//! diagnostics, stdin, and the JSON graph.

mod common;

use common::{bin, shared};
use std::process::{Command, Stdio};

fn rbuild() -> Command {
    Command::new(bin())
}

#[test]
fn buildkit_testfiles_dump_exactly() {
    let dir = shared().join("conformance/buildkit-parser/testfiles");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        let out = rbuild().args(["parse", "--format", "buildkit"]).arg(case.join("Dockerfile")).output().unwrap();
        assert!(out.status.success(), "{}: {}", case.display(), String::from_utf8_lossy(&out.stderr));
        let want = std::fs::read(case.join("result")).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&want), "{}", case.display());
        n += 1;
    }
    assert_eq!(n, 33);
}

#[test]
fn buildkit_negative_testfiles_are_refused() {
    let dir = shared().join("conformance/buildkit-parser/testfiles-negative");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        let out = rbuild().args(["parse", "--format", "buildkit"]).arg(case.join("Dockerfile")).output().unwrap();
        assert!(!out.status.success(), "{} accepted", case.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: ") && err.len() > 10, "{}: no message: {err}", case.display());
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn diagnostics_name_file_line_column_with_caret() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("Dockerfile");
    std::fs::write(&f, "FROM busybox\nRUN true\nFORM x\n").unwrap();
    let out = rbuild().args(["parse", "--format", "json"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap();
    assert_eq!(first, format!("error: {}:3:1: unknown instruction \"FORM\" (did you mean FROM?)", f.display()));
    assert!(err.contains("\n    FORM x\n    ^"), "{err}");
}

#[test]
fn reads_stdin_and_prints_the_graph() {
    let mut child =
        rbuild().args(["parse", "--format", "json", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox AS a\nRUN echo a\nFROM busybox AS b\nRUN echo b\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["graph"]["levels"], serde_json::json!([[0, 1], [2]]));
    assert_eq!(v["graph"]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(v["stages"][2]["instructions"][0]["span"]["start_line"], 6);
    assert_eq!(v["stages"][2]["instructions"][0]["instruction"], "COPY");
}

#[test]
fn missing_file_is_one_clear_line() {
    let out = rbuild().args(["parse", "/nonexistent/Dockerfile"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/Dockerfile"), "{err}");
}
