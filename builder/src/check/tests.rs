//! The rules against a table of Dockerfiles and the warnings BuildKit gives for them
//! (testdata/cases.txt: each case's Dockerfile, and `RULE LINE DETAIL` lines).

use super::*;

struct Case {
    name: String,
    sections: BTreeMap<String, String>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("testdata/cases.txt");
    let mut out: Vec<Case> = Vec::new();
    let mut section: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("=== ") {
            out.push(Case { name: name.trim().to_string(), sections: BTreeMap::new() });
            section = None;
        } else if let Some(s) = line.strip_prefix("--- ") {
            section = Some(s.trim().to_string());
            if let Some(c) = out.last_mut() {
                c.sections.insert(s.trim().to_string(), String::new());
            }
        } else if let (Some(c), Some(s)) = (out.last_mut(), &section) {
            if let Some(body) = c.sections.get_mut(s) {
                body.push_str(line);
            }
        }
    }
    out
}

/// Base images the cases use: their environment (as their configs have it).
fn base(name: &str) -> Option<BaseImage> {
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string();
    match name {
        "alpine" | "busybox" | "rbuild-anchor/busybox:1" | "alpine:3.20" => {
            Some(BaseImage { env: vec![path], shell: vec![] })
        }
        "python" => Some(BaseImage { env: vec![path, "PYTHON_VERSION=3.12.4".into()], shell: vec![] }),
        "mcr.microsoft.com/powershell" => {
            Some(BaseImage { env: vec![path], shell: vec!["pwsh".into(), "-Command".into()] })
        }
        _ => None,
    }
}

#[test]
fn table() {
    let all = cases();
    assert!(all.len() > 40, "{} cases", all.len());
    let mut failures = Vec::new();
    for c in &all {
        let df = &c.sections["dockerfile"];
        let ignore = c
            .sections
            .get("dockerignore")
            .map(|d| crate::ignore::Matcher::new(&crate::ignore::read_dockerignore(d.as_bytes())).unwrap());
        let build_args = c
            .sections
            .get("args")
            .map(|a| a.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect())
            .unwrap_or_default();
        let opts = CheckOptions {
            build_args,
            target: c.sections.get("target").map(|t| t.trim().to_string()),
            ignore: ignore.as_ref(),
            base: Some(&base),
            config: None,
        };
        let got = match check(df, &opts) {
            Ok(r) => {
                let mut lines: Vec<String> =
                    r.warnings.iter().map(|w| format!("{} {} {}", w.rule.name, w.lines.0, w.detail)).collect();
                if let Some(f) = r.failure() {
                    lines.push(format!("ERROR {f}"));
                }
                lines
            }
            Err(e) => vec![format!("PARSE {}", e)],
        };
        let want: Vec<String> = c
            .sections
            .get("expect")
            .map(|e| e.lines().filter(|l| !l.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        if got != want {
            failures.push(format!("{}:\n  want {want:#?}\n  got  {got:#?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), all.len(), failures.join("\n"));
}

#[test]
fn directive_options() {
    let c = CheckConfig::parse("skip=JSONArgsRecommended, StageNameCasing;error=true").unwrap();
    assert_eq!(c.skip, ["JSONArgsRecommended", "StageNameCasing"]);
    assert!(c.error && !c.skip_all);
    assert!(CheckConfig::parse("skip=all").unwrap().skip_all);
    assert_eq!(CheckConfig::parse("").unwrap(), CheckConfig::default());
    assert!(CheckConfig::parse("nope=1").unwrap_err().to_string().contains("invalid check option \"nope\""));
    assert!(CheckConfig::parse("error=maybe").is_err());
}

#[test]
fn render_as_buildkit_prints() {
    let src = "FROM busybox\nMAINTAINER me\nRUN true\n";
    let r = check(src, &CheckOptions::default()).unwrap();
    let out = render(&r, "Dockerfile", src);
    let want = "Check complete, 1 warning has been found!\n\n\
        WARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\n\
        Maintainer instruction is deprecated in favor of using label\n\
        Dockerfile:2\n\
        --------------------\n   \
        1 |     FROM busybox\n   \
        2 | >>> MAINTAINER me\n   \
        3 |     RUN true\n   \
        4 |     \n\
        --------------------\n";
    assert_eq!(out, want);
    assert_eq!(
        r.warnings[0].short(),
        "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)"
    );
    let clean = check("FROM busybox\n", &CheckOptions::default()).unwrap();
    assert_eq!(render(&clean, "Dockerfile", "FROM busybox\n"), "Check complete, no warnings found.\n");
}
