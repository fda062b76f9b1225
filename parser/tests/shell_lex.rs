//! BuildKit's lexer tables (`envVarTest`, `wordsTest`).

mod common;

use rbuild_parser::shell::Lexer;
use std::collections::BTreeMap;
use std::fs;

#[test]
fn env_var_test() {
    let text = fs::read_to_string(common::shared().join("conformance/shell-lex/envVarTest")).unwrap();
    let env: BTreeMap<String, String> = [("PWD", "/home"), ("SHELL", "bash"), ("KOREAN", "한국어"), ("NULL", "")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lex = Lexer::new('\\');
    let mut n = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(parts.len(), 3, "bad line {line:?}");
        let (platform, input, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            continue;
        }
        n += 1;
        match (lex.process_word(input, &env), expected) {
            (Err(_), "error") => {}
            (Ok(got), want) if got == want && want != "error" => {}
            (got, want) => failures.push(format!("{input:?}: want {want:?}, got {got:?}")),
        }
    }
    assert!(n > 200, "only {n} cases");
    assert!(failures.is_empty(), "{} of {n} failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn words_test() {
    let text = fs::read_to_string(common::shared().join("conformance/shell-lex/wordsTest")).unwrap();
    let lex = Lexer::new('\\');
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut n = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let rest = rest.trim_start_matches(' ');
            let (k, v) = rest.split_once('=').unwrap();
            env.insert(k.to_string(), v.to_string());
            continue;
        }
        let (input, expected) = line.split_once('|').unwrap();
        let input = input.trim();
        let expected: Vec<&str> = expected.trim_start_matches(' ').split(',').collect();
        n += 1;
        match lex.process_words(input, &env) {
            Err(_) if expected == ["error"] => {}
            Ok(got) if got == expected => {}
            got => failures.push(format!("{input:?}: want {expected:?}, got {got:?}")),
        }
    }
    assert!(n > 20);
    assert!(failures.is_empty(), "{} of {n} failed:\n{}", failures.len(), failures.join("\n"));
}
