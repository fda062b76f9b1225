//! Property tests: no input makes the parser panic, and for every input that parses,
//! printing and re-parsing gives the same instructions and the same graph.

mod common;

use proptest::prelude::*;
use rbuild_parser::{ast, Dockerfile, Graph};
use std::collections::BTreeMap;

/// Parse → print → parse, comparing meaning (positions aside) and the graphs.
fn check_roundtrip(src: &str) -> Result<(), TestCaseError> {
    let Ok(a) = Dockerfile::parse(src) else { return Ok(()) };
    let printed = a.print();
    let b = Dockerfile::parse(&printed).map_err(|e| {
        TestCaseError::fail(format!("printed text does not parse: {e}\n--- source\n{src}\n--- printed\n{printed}"))
    })?;
    prop_assert_eq!(a.without_positions(), b.without_positions(), "printed:\n{}", printed);
    let ga = Graph::build(&a, &BTreeMap::new(), None);
    let gb = Graph::build(&b, &BTreeMap::new(), None);
    match (ga, gb) {
        (Ok(mut ga), Ok(mut gb)) => {
            for e in ga.edges.iter_mut().chain(gb.edges.iter_mut()) {
                e.span = Default::default();
            }
            prop_assert_eq!(ga, gb);
        }
        (Err(_), Err(_)) => {}
        (ga, gb) => prop_assert!(false, "graph differs: {:?} vs {:?}", ga.map(|_| ()), gb.map(|_| ())),
    }
    Ok(())
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_./-]{0,8}"
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        word(),
        Just("\"two words\"".to_string()),
        Just("'single $X'".to_string()),
        Just(r"a\ b".to_string()),
        Just("${Y:-z}".to_string()),
        Just("$X-suffix".to_string()),
        Just("\"q\\\"uote\"".to_string()),
        Just(String::new()),
    ]
}

fn shell_text() -> impl Strategy<Value = String> {
    // Printable text without '<' (heredocs are generated separately) and without a
    // trailing escape (which would continue the line).
    "[a-zA-Z0-9 _$&|;=\"'{}()/.,:+*?!%@#-]{1,40}"
        .prop_map(|s| s.trim().to_string())
        .prop_filter("non-empty, not a flag", |s| !s.is_empty() && !s.starts_with('-'))
}

fn kw(k: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![Just(k.to_string()), Just(k.to_lowercase()), Just(k[..1].to_string() + &k[1..].to_lowercase())]
}

fn instruction() -> impl Strategy<Value = String> {
    prop_oneof![
        (kw("RUN"), shell_text()).prop_map(|(k, t)| format!("{k} {t}")),
        (kw("RUN"), prop::collection::vec(value(), 1..4))
            .prop_map(|(k, v)| format!("{k} {}", serde_json::to_string(&v).unwrap())),
        (kw("RUN"), shell_text(), shell_text().prop_filter("not a comment", |b| !b.starts_with('#')))
            .prop_map(|(k, a, b)| format!("{k} {a} \\\n   {b}")),
        (kw("RUN"), shell_text()).prop_map(|(k, t)| format!("{k} cat <<EOF > /x\n{t}\nEOF")),
        (kw("RUN"), word()).prop_map(|(k, t)| format!("{k} --mount=type=cache,target=/{t} --network=none make {t}")),
        (kw("CMD"), shell_text()).prop_map(|(k, t)| format!("{k} {t}")),
        (kw("CMD"), prop::collection::vec(value(), 0..3))
            .prop_map(|(k, v)| format!("{k} {}", serde_json::to_string(&v).unwrap())),
        (kw("ENTRYPOINT"), prop::collection::vec(word(), 1..3))
            .prop_map(|(k, v)| format!("{k} {}", serde_json::to_string(&v).unwrap())),
        (kw("ENV"), prop::collection::vec((word(), value()), 1..4)).prop_map(|(k, kv)| format!(
            "{k} {}",
            kv.iter().map(|(a, b)| format!("{a}={b}")).collect::<Vec<_>>().join(" ")
        )),
        (kw("ENV"), word(), shell_text()).prop_map(|(k, a, b)| format!("{k} {a} {b}")),
        (kw("LABEL"), prop::collection::vec((value(), value()), 1..3)).prop_map(|(k, kv)| format!(
            "{k} {}",
            kv.iter().map(|(a, b)| format!("x{a}={b}")).collect::<Vec<_>>().join(" ")
        )),
        (kw("COPY"), prop::collection::vec(word(), 2..4), prop::option::of(word())).prop_map(|(k, v, c)| format!(
            "{k} {}{}",
            c.map(|c| format!("--chown={c} ")).unwrap_or_default(),
            v.join(" ")
        )),
        (kw("COPY"), prop::collection::vec("[a-z ]{1,8}", 2..4))
            .prop_map(|(k, v)| format!("{k} {}", serde_json::to_string(&v).unwrap())),
        (kw("ADD"), word(), word()).prop_map(|(k, a, b)| format!("{k} --chmod=755 {a} /{b}")),
        (kw("COPY"), shell_text()).prop_map(|(k, t)| format!("{k} <<-EOF /dst\n\t{t}\nEOF")),
        (kw("WORKDIR"), word()).prop_map(|(k, w)| format!("{k} /{w}")),
        (kw("USER"), word()).prop_map(|(k, w)| format!("{k} {w}")),
        (kw("EXPOSE"), prop::collection::vec(1u16..65535, 1..4))
            .prop_map(|(k, p)| format!("{k} {}", p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "))),
        (kw("VOLUME"), prop::collection::vec(word(), 1..3)).prop_map(|(k, v)| format!("{k} {}", v.join(" "))),
        (kw("VOLUME"), prop::collection::vec("[a-z][a-z ]{0,7}", 1..3))
            .prop_map(|(k, v)| format!("{k} {}", serde_json::to_string(&v).unwrap())),
        (kw("ARG"), word(), prop::option::of(value()))
            .prop_map(|(k, a, v)| format!("{k} {a}{}", v.map(|v| format!("={v}")).unwrap_or_default())),
        (kw("STOPSIGNAL"), Just("SIGTERM")).prop_map(|(k, s)| format!("{k} {s}")),
        (kw("HEALTHCHECK"), 1u32..100, shell_text())
            .prop_map(|(k, i, t)| format!("{k} --interval={i}s --retries=2 CMD {t}")),
        (kw("ONBUILD"), shell_text()).prop_map(|(k, t)| format!("{k} RUN {t}")),
        (kw("MAINTAINER"), shell_text()).prop_map(|(k, t)| format!("{k} {t}")),
        (kw("SHELL"), prop::collection::vec(word(), 1..3))
            .prop_map(|(k, v)| format!("{k} {}", serde_json::to_string(&v).unwrap())),
        Just("# a comment".to_string()),
        Just(String::new()),
    ]
}

fn dockerfile() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((word(), prop::option::of(word())), 0..3),
        prop::collection::vec((prop::option::of(word()), prop::collection::vec(instruction(), 0..8)), 1..4),
        prop::bool::ANY,
    )
        .prop_map(|(metas, stages, crlf)| {
            let mut s = String::new();
            for (a, d) in metas {
                s.push_str(&format!("ARG {a}{}\n", d.map(|d| format!("={d}")).unwrap_or_default()));
            }
            for (i, (name, ins)) in stages.iter().enumerate() {
                let name = name.as_ref().map(|n| format!(" AS s{i}{}", n.replace(['.', '/'], "")));
                s.push_str(&format!("FROM busybox{}\n", name.unwrap_or_default()));
                for line in ins {
                    s.push_str(line);
                    s.push('\n');
                }
            }
            if crlf {
                s = s.replace('\n', "\r\n");
            }
            s
        })
}

/// Valid seeds for the mutation tests: BuildKit's test files.
fn seeds() -> Vec<String> {
    let dir = common::shared().join("conformance/buildkit-parser/testfiles");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| String::from_utf8_lossy(&std::fs::read(e.unwrap().path().join("Dockerfile")).unwrap()).into_owned())
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn generated_dockerfiles_roundtrip(src in dockerfile()) {
        let parsed = Dockerfile::parse(&src);
        prop_assert!(parsed.is_ok(), "generated Dockerfile refused: {:?}\n{}", parsed.err(), src);
        check_roundtrip(&src)?;
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,300}") {
        let _ = ast::parse(&src);
        check_roundtrip(&src)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let src = String::from_utf8_lossy(&bytes);
        let _ = ast::parse(&src);
        check_roundtrip(&src)?;
    }

    #[test]
    fn mutated_dockerfiles(seed in 0usize..1000, edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, "[\\\\`\"'\\[\\]{}$<=# \n\ta-z-]{0,3}"), 1..6)) {
        let seeds = seeds();
        let mut s = seeds[seed % seeds.len()].clone();
        for (at, op, text) in edits {
            let chars: Vec<char> = s.chars().collect();
            let i = if chars.is_empty() { 0 } else { at.index(chars.len()) };
            let mut chars = chars;
            match op {
                0 => { if i < chars.len() { chars.remove(i); } }
                1 => { for (k, c) in text.chars().enumerate() { chars.insert(i + k, c); } }
                2 => { if i < chars.len() { chars.truncate(i); } }
                _ => { let j = (i + 5).min(chars.len()); chars.splice(i..j, text.chars()); }
            }
            s = chars.into_iter().collect();
        }
        let _ = ast::parse(&s);
        check_roundtrip(&s)?;
    }
}

#[test]
fn pathological_inputs_finish() {
    let cases = [
        "RUN ".to_string() + &"\\\n".repeat(50_000),
        "FROM a\n".to_string() + &"RUN [".repeat(20_000),
        "FROM a\nRUN [".to_string() + &"[".repeat(100_000) + &"]".repeat(100_000) + "]",
        "FROM a\nENV ".to_string() + &"a=\"b ".repeat(10_000),
        "FROM a\nRUN <<A <<B <<C\n".to_string() + &"x\n".repeat(10_000),
        "FROM a\n".to_string() + &"COPY --from=0 / /\n".repeat(5_000),
        "x".repeat(70_000),
    ];
    for c in &cases {
        let t = std::time::Instant::now();
        let _ = ast::parse(c);
        let _ = Dockerfile::parse(c).map(|d| Graph::build(&d, &BTreeMap::new(), None));
        assert!(t.elapsed().as_secs() < 20, "too slow on a {}-byte input", c.len());
    }
}
