//! BuildKit's own parser test data: every `testfiles/*` dump must match its `result`
//! byte for byte, every `testfiles-negative/*` must be refused, and the line numbers of
//! `testfile-line` must be BuildKit's.

mod common;

use rbuild_parser::{ast, dump};
use std::fs;

#[test]
fn positive_cases_dump_exactly() {
    let dir = common::shared().join("conformance/buildkit-parser/testfiles");
    let mut n = 0;
    let mut failures = Vec::new();
    for e in fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        let src = String::from_utf8_lossy(&fs::read(case.join("Dockerfile")).unwrap()).into_owned();
        let want = fs::read_to_string(case.join("result")).unwrap();
        n += 1;
        match ast::parse(&src) {
            Ok(a) => {
                let got = dump::dump(&a) + "\n";
                if got != want {
                    failures.push(format!("{}:\n--- want\n{want}--- got\n{got}", case.display()));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", case.display())),
        }
    }
    assert!(n >= 33, "only {n} cases found");
    assert!(failures.is_empty(), "{} of {n} cases differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn negative_cases_are_refused() {
    let dir = common::shared().join("conformance/buildkit-parser/testfiles-negative");
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let case = e.unwrap().path();
        let src = String::from_utf8_lossy(&fs::read(case.join("Dockerfile")).unwrap()).into_owned();
        n += 1;
        let r = ast::parse(&src);
        assert!(r.is_err(), "{} was accepted: {:?}", case.display(), r.map(|a| dump::dump(&a)));
        assert!(!r.unwrap_err().message.is_empty());
    }
    assert!(n >= 4, "only {n} negative cases found");
}

#[test]
fn line_numbers_match_buildkit() {
    let p = common::shared().join("conformance/buildkit-parser/testfile-line/Dockerfile");
    let a = ast::parse(&fs::read_to_string(p).unwrap()).unwrap();
    let lines: Vec<(usize, usize)> = a.nodes.iter().map(|n| (n.span.start_line, n.span.end_line)).collect();
    assert_eq!(lines, vec![(5, 5), (11, 12), (17, 31)]);
}
