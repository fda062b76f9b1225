//! Shell-word processing as docker's builder does it: quote removal, escapes and `$VAR`,
//! `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?m}`, `${VAR?m}`,
//! `${VAR#p}`, `${VAR%p}`, `${VAR/p/r}` expansion, with optional splitting into words.
//!
//! This is the word expander of the Dockerfile, not a shell: nothing is executed, and the
//! only inputs are the word and an environment. The behaviour follows BuildKit's lexer
//! (`frontend/dockerfile/shell`), checked by its own test tables (see `tests/shell_lex.rs`).

use std::collections::{BTreeMap, BTreeSet};

/// How deep `${…}` may nest (`${A:-${B:-…}}`): far more than any Dockerfile needs, and
/// little of a build thread's stack.
pub const MAX_NESTING: usize = 100;
/// The most one word may expand to (1 MiB; the kernel passes at most 128 KiB in one
/// environment variable). Values that double at every ENV otherwise grow without end.
pub const MAX_EXPANSION: usize = 1 << 20;

/// A failed expansion, e.g. an unterminated quote or `${}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {:?}: {reason}", shown(word))]
pub struct ShellError {
    pub word: String,
    pub reason: String,
}

/// A word for a message: cut after 100 characters.
fn shown(word: &str) -> String {
    match word.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &word[..i]),
        None => word.to_string(),
    }
}

/// Where variable values come from.
pub trait EnvLookup {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl EnvLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl EnvLookup for std::collections::HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// `KEY=VALUE` strings, as in an image config; a later entry wins, an entry without `=`
/// is a variable set to the empty string.
impl EnvLookup for [String] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|e| match e.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if e == name => Some(""),
            _ => None,
        })
    }
}

impl EnvLookup for Vec<String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// The empty environment.
pub struct NoEnv;
impl EnvLookup for NoEnv {
    fn lookup(&self, _: &str) -> Option<&str> {
        None
    }
}

/// The result of processing one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The whole text, quotes removed and variables expanded, whitespace kept.
    pub word: String,
    /// The same split into words on unquoted whitespace.
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced and not set.
    pub unmatched: BTreeSet<String>,
}

/// The lexer's settings. `Lexer::new('\\')` is what docker uses for Dockerfile words.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_process_quotes: false, skip_unset_env: false }
    }

    /// Processes `word` and returns the text and the words.
    pub fn process(&self, word: &str, env: &dyn EnvLookup) -> Result<Expansion, ShellError> {
        let mut sw = ShellWord {
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            depth: 0,
        };
        let raw = sw.raw_escapes;
        match sw.process_stop_on(None, raw) {
            Ok((text, words)) => Ok(Expansion { word: text, words, matched: sw.matched, unmatched: sw.unmatched }),
            Err(reason) => Err(ShellError { word: word.to_string(), reason }),
        }
    }

    /// One word: quotes removed, variables expanded, whitespace kept.
    pub fn process_word(&self, word: &str, env: &dyn EnvLookup) -> Result<String, ShellError> {
        self.process(word, env).map(|e| e.word)
    }

    /// Several words: like `process_word`, then split on unquoted whitespace.
    pub fn process_words(&self, word: &str, env: &dyn EnvLookup) -> Result<Vec<String>, ShellError> {
        self.process(word, env).map(|e| e.words)
    }
}

/// Go's `unicode.IsSpace`.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if is_space(ch) && self.in_word {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else if !is_space(ch) {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn EnvLookup,
    raw_escapes: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    /// `${` nesting of the current position.
    depth: usize,
}

type R<T> = Result<T, String>;

/// Fails once `len` bytes are more than one expansion may make.
fn within_limit(len: usize) -> R<()> {
    if len > MAX_EXPANSION {
        return Err(format!("the expansion is larger than {MAX_EXPANSION} bytes"));
    }
    Ok(())
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> R<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let quotes = !self.lex.skip_process_quotes;
            if ch == '$' {
                let tmp = self.process_dollar()?;
                within_limit(result.len() + tmp.len())?;
                result.push_str(&tmp);
                words.add_string(&tmp);
            } else if quotes && ch == '\'' {
                let tmp = self.process_single_quote()?;
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else if quotes && ch == '"' {
                let tmp = self.process_double_quote()?;
                within_limit(result.len() + tmp.len())?;
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else {
                let mut ch = self.next().unwrap_or_default();
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // The escape makes the next character literal; at the end it vanishes.
                    match self.next() {
                        None => break,
                        Some(c) => {
                            words.add_raw_char(c);
                            ch = c;
                        }
                    }
                } else {
                    words.add_char(ch);
                }
                result.push(ch);
            }
        }
        if let Some(s) = stop {
            return Err(format!("unexpected end of statement while looking for matching {s}"));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> R<String> {
        // Everything up to the next single quote is literal; a single quote cannot be escaped.
        let mut result = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> R<String> {
        // Literal except `$`, and the escape before `"`, `$` or itself.
        let mut result = String::new();
        let open = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    within_limit(result.len() + v.len())?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = self.next().unwrap_or_default();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> R<String> {
        if self.depth >= MAX_NESTING {
            return Err(format!("variable references are nested more than {MAX_NESTING} deep"));
        }
        self.depth += 1;
        let r = self.process_dollar_at_depth();
        self.depth -= 1;
        r
    }

    fn process_dollar_at_depth(&mut self) -> R<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            return Ok(self.process_plain_dollar());
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        let first = self.next();
        match first {
            Some('}') => {
                let v = self.get_env(&name);
                if v.is_none() && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}}}"));
                }
                Ok(v.unwrap_or_default())
            }
            Some(':' | '+' | '-' | '?' | '#' | '%') => self.process_modifier(&name, first),
            Some('/') => self.process_replace(&name),
            _ => Err(format!("unsupported modifier ({}) in substitution", modifier_text(first))),
        }
    }

    /// `$NAME` (no braces); a lone `$` is itself.
    fn process_plain_dollar(&mut self) -> String {
        let name = self.process_name();
        if name.is_empty() {
            return "$".into();
        }
        match self.get_env(&name) {
            Some(v) => v,
            None if self.lex.skip_unset_env => format!("${name}"),
            None => String::new(),
        }
    }

    /// The text up to `stop`, with an error that names the missing `missing` at the end.
    fn process_until(&mut self, stop: char, raw: bool, missing: &str) -> R<String> {
        match self.process_stop_on(Some(stop), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(format!("syntax error: missing {missing}")),
            Err(e) => Err(e),
        }
    }

    /// `${NAME:-w}`, `${NAME+w}`, `${NAME?m}`, `${NAME#p}`, `${NAME%%p}`…; `first` is the
    /// character after the name.
    fn process_modifier(&mut self, name: &str, first: Option<char>) -> R<String> {
        let mut chs = modifier_text(first);
        let mut ch = first;
        let null_is_unset = first == Some(':');
        if null_is_unset {
            ch = self.next();
            chs.push(ch.unwrap_or('\u{FFFD}'));
        }
        let raw = matches!(ch, Some('#' | '%'));
        let word = self.process_until('}', raw, "'}'")?;
        let value = self.get_env(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let empty_or_unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match ch {
            Some('-') => Ok(if empty_or_unset { word } else { value.unwrap_or_default() }),
            Some('+') => Ok(if empty_or_unset { String::new() } else { word }),
            Some('?') => required(name, value, null_is_unset, &word),
            Some(c @ ('%' | '#')) => {
                let greedy = word.starts_with(c);
                let pattern = if greedy { &word[c.len_utf8()..] } else { word.as_str() };
                let value = value.unwrap_or_default();
                if c == '%' {
                    trim_suffix(pattern, &value, greedy)
                } else {
                    trim_prefix(pattern, &value, greedy)
                }
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`.
    fn process_replace(&mut self, name: &str) -> R<String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let pattern = self.process_until('/', true, "'/' in ${}")?;
        let replacement = self.process_until('}', true, "'}'")?;
        let value = self.get_env(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let re = pattern_to_regex(&pattern, true, false)
            .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
        if replace_all {
            replace_every(&re, &value, &replacement)
        } else if let Some(m) = re.find(&value) {
            Ok(format!("{}{}{}", &value[..m.start()], replacement, &value[m.end()..]))
        } else {
            Ok(value)
        }
    }

    fn process_name(&mut self) -> String {
        // A name is letters, digits and `_`; a leading digit makes a positional parameter
        // (all the digits), and a special parameter is one character.
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

/// The modifier as written, for messages: U+FFFD where the word ended.
fn modifier_text(first: Option<char>) -> String {
    first.map(String::from).unwrap_or_else(|| "\u{FFFD}".into())
}

/// `${NAME?m}` and `${NAME:?m}`: the value, or an error with the message.
fn required(name: &str, value: Option<String>, null_is_unset: bool, word: &str) -> R<String> {
    match value {
        None => Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be unset" } else { word })),
        Some(v) if null_is_unset && v.is_empty() => {
            Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be empty" } else { word }))
        }
        Some(v) => Ok(v),
    }
}

/// Every match of `re` in `value` replaced. Every character can be a match: the result can
/// be the value's length times the replacement's, so it is capped as it grows. (`$name` in
/// the replacement is a group reference, as in Go's ReplaceAllString that BuildKit uses.)
fn replace_every(re: &regex::Regex, value: &str, replacement: &str) -> R<String> {
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(value) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&value[last..m.start()]);
        caps.expand(replacement, &mut out);
        within_limit(out.len())?;
        last = m.end();
    }
    within_limit(out.len() + value.len() - last)?;
    out.push_str(&value[last..]);
    Ok(out)
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// A shell pattern (`*`, `?`, `\` escapes; no bracket expressions) as a regex.
fn pattern_to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut tok = chars[i];
        i += 1;
        match tok {
            '*' => {
                out.push_str(star);
                continue;
            }
            '?' => {
                out.push('.');
                continue;
            }
            '\\' => {
                // `\}` and `\/` inside `${}` are escapes of the expansion syntax, not the pattern.
                if matches!(chars.get(i), Some('}' | '/')) {
                    continue;
                }
                out.push('\\');
                match chars.get(i) {
                    Some(&c @ ('*' | '?' | '\\')) => {
                        tok = c;
                        i += 1;
                    }
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err("invalid escape '\\'".into()),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => out.push('\\'),
            _ => {}
        }
        out.push(tok);
    }
    regex::Regex::new(&out).map_err(|e| e.to_string())
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> R<String> {
    let re = pattern_to_regex(pattern, greedy, true)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Reverses a pattern but keeps each escape before the character it escapes.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().wrapping_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let out_idx = last - i;
        if chars[i] == '\\' && i != last {
            out[out_idx - 1] = chars[i];
            out[out_idx] = chars[i + 1];
            i += 2;
        } else {
            out[out_idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> R<String> {
    // A regex finds the leftmost match, so reverse both to find the shortest/longest suffix.
    let rp = reverse_pattern(pattern);
    let rv: String = value.chars().rev().collect();
    let s = trim_prefix(&rp, &rv, greedy)?;
    Ok(s.chars().rev().collect())
}

#[cfg(test)]
mod tests {
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
        assert!(l.process_word("${NOPE?gone}", &env()).unwrap_err().reason.contains("NOPE: gone"));
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
}

#[cfg(test)]
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
        assert!(e.reason.contains("nested more than"), "{e}");
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
            assert!(e.reason.contains("larger than"), "{word}: {e}");
        }
    }
}
