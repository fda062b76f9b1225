//! The .dockerignore conformance data (moby/patternmatcher tests and cases recorded from
//! docker 20.10's builder).

use rbuild_builder::ignore::{read_dockerignore, Matcher};
use std::path::PathBuf;

fn dir() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/dockerignore");
    assert!(p.is_dir(), "../shared is missing: {}", p.display());
    p
}

fn rows(file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    text.split('\n').skip(1).filter(|l| !l.is_empty()).map(|l| l.split('\t').map(String::from).collect()).collect()
}

#[test]
fn single_patterns() {
    let mut n = 0;
    let mut fails = vec![];
    for r in rows("cases.tsv") {
        let (pattern, path, want) = (&r[0], &r[1], r[2] == "true");
        let m = Matcher::new(std::slice::from_ref(pattern)).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        let got = m.matches(path);
        if got != want {
            fails.push(format!("{pattern:?} vs {path:?}: want {want}, got {got}"));
        }
        n += 1;
    }
    assert!(n >= 110, "{n}");
    assert!(fails.is_empty(), "{} of {n}:\n{}", fails.len(), fails.join("\n"));
}

#[test]
fn pattern_lists() {
    let mut n = 0;
    for r in rows("multi-cases.tsv") {
        let (path, want) = (&r[0], r[1] == "true");
        let patterns: Vec<String> = r[3..].to_vec();
        let m = Matcher::new(&patterns).unwrap();
        assert_eq!(m.matches(path), want, "{patterns:?} vs {path:?}");
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn bad_patterns_are_errors() {
    let mut n = 0;
    for r in rows("errors.tsv") {
        let pattern = &r[0];
        assert!(Matcher::new(std::slice::from_ref(pattern)).is_err(), "{pattern:?} accepted");
        n += 1;
    }
    assert!(n >= 18);
}

#[test]
fn reading_the_file() {
    let input = std::fs::read(dir().join("readall/input.dockerignore")).unwrap();
    let want: Vec<String> =
        std::fs::read_to_string(dir().join("readall/expected.txt")).unwrap().lines().map(String::from).collect();
    assert_eq!(read_dockerignore(&input), want);
    assert!(Matcher::new(&want).is_err(), "lone ! must be refused");
}

#[test]
fn end_to_end_groups() {
    let text = std::fs::read_to_string(dir().join("cases.json")).unwrap();
    let groups: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for g in groups.as_array().unwrap() {
        let lines: Vec<String> =
            g["dockerignore"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
        let patterns = read_dockerignore(lines.join("\n").as_bytes());
        let m = Matcher::new(&patterns).unwrap();
        for (path, included) in g["included"].as_object().unwrap() {
            assert_eq!(!m.matches(path), included.as_bool().unwrap(), "group {}: {path}", g["name"]);
            n += 1;
        }
    }
    assert!(n > 50);
}
