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

mod pattern;

pub use pattern::PatternError;
use pattern::{replace_every, substitution_regex, trim_prefix, trim_suffix};

/// A failed expansion, e.g. an unterminated quote or `${}`: the word and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("failed to process {:?}: {reason}", shown(word))]
pub struct ShellError {
    pub word: String,
    #[source]
    pub reason: ExpandError,
}

/// Why a word could not be expanded (BuildKit's lexer's words).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpandError {
    /// The word ended inside `${…}` before the character that closes this part.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${{`, `${:…}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${VAR` followed by a character that starts no modifier; the modifier as written.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR?message}` (or `:?`) of an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("variable references are nested more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("the expansion is larger than {MAX_EXPANSION} bytes")]
    TooLarge,
    #[error("invalid pattern ({pattern}) in substitution: {source}")]
    Pattern {
        pattern: String,
        #[source]
        source: PatternError,
    },
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

type R<T> = Result<T, ExpandError>;

/// Fails once `len` bytes are more than one expansion may make.
fn within_limit(len: usize) -> R<()> {
    if len > MAX_EXPANSION {
        return Err(ExpandError::TooLarge);
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
            return Err(ExpandError::Unterminated(s));
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
                None => return Err(ExpandError::UnterminatedSingleQuote),
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
                None => return Err(ExpandError::UnterminatedDoubleQuote),
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
            return Err(ExpandError::TooDeep);
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
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
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
            _ => Err(ExpandError::UnsupportedModifier(modifier_text(first))),
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

    /// The text up to `stop`; `missing` is the error when the word ends first.
    fn process_until(&mut self, stop: char, raw: bool, missing: ExpandError) -> R<String> {
        match self.process_stop_on(Some(stop), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(missing),
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
        let word = self.process_until('}', raw, ExpandError::MissingBrace)?;
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
            _ => Err(ExpandError::UnsupportedModifier(chs)),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`.
    fn process_replace(&mut self, name: &str) -> R<String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let pattern = self.process_until('/', true, ExpandError::MissingSlash)?;
        let replacement = self.process_until('}', true, ExpandError::MissingBrace)?;
        let value = self.get_env(name);
        if self.lex.skip_unset_env && value.is_none() {
            return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        let re = substitution_regex(&pattern, true, false)?;
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
        None => Err(required_error(name, word, "is not allowed to be unset")),
        Some(v) if null_is_unset && v.is_empty() => Err(required_error(name, word, "is not allowed to be empty")),
        Some(v) => Ok(v),
    }
}

/// The error of `${NAME?word}`: the word, or `default` when it is empty.
fn required_error(name: &str, word: &str, default: &str) -> ExpandError {
    let message = if word.is_empty() { default } else { word };
    ExpandError::Required { name: name.to_string(), message: message.to_string() }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

#[cfg(test)]
mod tests;
