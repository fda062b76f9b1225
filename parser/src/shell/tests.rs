//! The word expander's own tests (BuildKit's tables are in tests/shell_lex.rs).

use super::*;

fn env() -> BTreeMap<String, String> {
    [("PWD", "/home"), ("X", "a.b.c"), ("EMPTY", "")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn basic_expansion() {
    let l = Lexer::new('\\');
    assert_eq!(l.process_word("he$PWD", &env()).unwrap(), "he/home");
    assert_eq!(l.process_word("${NOPE-x}${EMPTY-y}${EMPTY:-z}", &env()).unwrap(), "xz");
    assert_eq!(l.process_word("${EMPTY+p}${EMPTY:+q}${PWD+r}", &env()).unwrap(), "pr");
    assert_eq!(l.process_word("'$PWD' \"$PWD\"", &env()).unwrap(), "$PWD /home");
    assert_eq!(l.process_word("${NOPE?gone}", &env()).unwrap_err().reason.to_string(), "NOPE: gone");
}

#[test]
fn patterns() {
    let l = Lexer::new('\\');
    assert_eq!(l.process_word("${X#*.}", &env()).unwrap(), "b.c");
    assert_eq!(l.process_word("${X##*.}", &env()).unwrap(), "c");
    assert_eq!(l.process_word("${X%.*}", &env()).unwrap(), "a.b");
    assert_eq!(l.process_word("${X%%.*}", &env()).unwrap(), "a");
    assert_eq!(l.process_word("${X/./-}", &env()).unwrap(), "a-b.c");
    assert_eq!(l.process_word("${X//./-}", &env()).unwrap(), "a-b-c");
}

#[test]
fn words_split_unquoted_values() {
    let mut e = env();
    e.insert("S".into(), "a  b".into());
    let l = Lexer::new('\\');
    assert_eq!(l.process_words("x${S}y \"${S}\"", &e).unwrap(), vec!["xa", "by", "a  b"]);
}

#[test]
fn matched_and_unmatched_are_recorded() {
    let l = Lexer::new('\\');
    let r = l.process("$PWD ${NOPE:-x}", &env()).unwrap();
    assert!(r.matched.contains("PWD"));
    assert!(r.unmatched.contains("NOPE"));
}

#[test]
fn skip_unset_keeps_references() {
    let mut l = Lexer::new('\\');
    l.skip_unset_env = true;
    assert_eq!(l.process_word("$A ${B} ${C:-d}", &NoEnv).unwrap(), "$A ${B} ${C:-d}");
}

mod limits {
    use super::*;

    /// Regression (issue 12): `${E:-${E:-…}}` nested 2,500 deep overflowed the stack of a
    /// build thread (abort, exit 134). Nesting is limited with an error.
    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let n = 2500;
        let word = format!("{}x{}", "${E:-".repeat(n), "}".repeat(n));
        // Build stages run on threads with the default (2 MiB) stack: so does this.
        let r = std::thread::spawn(move || Lexer::new('\\').process_word(&word, &NoEnv)).join().unwrap();
        let e = r.unwrap_err();
        assert_eq!(e.reason, ExpandError::TooDeep, "{e}");
        assert!(e.to_string().len() < 300, "the message stays short: {}", e.to_string().len());
        // Nesting a real Dockerfile uses is fine.
        let ok = format!("{}x{}", "${E:-".repeat(20), "}".repeat(20));
        assert_eq!(Lexer::new('\\').process_word(&ok, &NoEnv).unwrap(), "x");
    }

    /// Regression (issue 12): ENV values that double at every line made a 2.2 GB config
    /// and took 8.7 GB of memory. An expansion is capped, with an error.
    #[test]
    fn expansions_are_capped() {
        let big = "a".repeat(400 << 10);
        let env: BTreeMap<String, String> = [("A".to_string(), big.clone())].into();
        let l = Lexer::new('\\');
        assert_eq!(l.process_word("$A$A", &env).unwrap().len(), 800 << 10);
        for word in ["$A$A$A", "\"$A$A$A\"", "${A}${A}x${A}", "${A//a/aaaa}", "${X:-$A$A$A}"] {
            let e = l.process_word(word, &env).unwrap_err();
            assert_eq!(e.reason, ExpandError::TooLarge, "{word}: {e}");
        }
    }
}
