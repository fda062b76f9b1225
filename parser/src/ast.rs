//! The syntax layer: Dockerfile text to a list of [`Node`]s, exactly as BuildKit's parser
//! reads it (directives, comments, continuations, heredocs, flags, JSON and shell forms).
//!
//! Nothing here knows what an instruction means; unknown keywords are accepted. The typed
//! layer ([`crate::instruction`]) gives the nodes their meaning.

use crate::diagnostic::{Diagnostic, Span};
use crate::json::{parse_json_array, JsonForm};
use nom::bytes::complete::take_while;
use nom::character::complete::{char, satisfy};
use nom::combinator::recognize;
use nom::sequence::pair;
use nom::IResult;
use serde::Serialize;

mod heredoc;
mod words;

use heredoc::heredocs_from_line;
pub use heredoc::parse_heredoc_marker;
use words::{byte_is_space, extract_flags, parse_words, split_ws};

/// Why a line is not valid syntax, in BuildKit's words ([`parse`] adds the place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// A parser directive (`escape`, `syntax`, `check`) given twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    BadEscape(String),
    /// A JSON array with something other than strings in it.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStrings,
    /// `ENV NAME` / `LABEL NAME` in the old form, without a value.
    #[error("{0} must have two arguments")]
    NoValue(&'static str),
    /// A `NAME=VALUE` list with a word that has no `=`.
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    NoEquals(String),
}

/// The longest physical line BuildKit's scanner accepts, newline excluded.
pub const MAX_LINE: usize = 65535;

/// Parser directives from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    pub escape: char,
    pub syntax: Option<String>,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: '\\', syntax: None, check: None }
    }
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    pub name: String,
    /// The file descriptor in `3<<EOF`, 0 when none was given.
    pub fd: u32,
    /// False when the delimiter was quoted: then the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are removed from the body.
    pub chomp: bool,
    /// The body, every line with its line ending.
    pub content: String,
}

/// One instruction as BuildKit's parser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The keyword as written (`run`, `RUN`, `Run`...).
    pub keyword: String,
    pub flags: Vec<String>,
    /// The arguments, already split as the instruction's line parser splits them.
    pub args: Vec<String>,
    /// ONBUILD's trigger instruction.
    pub sub: Option<Box<Node>>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// The joined line (continuations removed).
    pub original: String,
    pub heredocs: Vec<Heredoc>,
    pub span: Span,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword lower-cased as Go's `strings.ToLower` does it.
    pub fn name(&self) -> String {
        go_lower(&self.keyword)
    }
}

/// A non-fatal remark, e.g. an empty continuation line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub message: String,
    pub line: usize,
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ast {
    pub directives: Directives,
    pub nodes: Vec<Node>,
    pub warnings: Vec<Warning>,
}

pub(crate) fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            // Go maps U+0130 to 'i' alone; Rust would add a combining dot.
            '\u{130}' => 'i',
            c => c.to_lowercase().next().unwrap_or(c),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Directives

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` with Go's `\s` = `[\t\n\f\r ]`.
fn directive_line(i: &str) -> IResult<&str, (&str, String)> {
    let sp = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let (i, _) = char('#')(i)?;
    let (i, _) = take_while(sp)(i)?;
    let (i, key) =
        recognize(pair(satisfy(|c| c.is_ascii_alphabetic()), take_while(|c: char| c.is_ascii_alphanumeric())))(i)?;
    let (i, _) = take_while(sp)(i)?;
    let (i, _) = char('=')(i)?;
    let (after_ws, ws) = take_while(sp)(i)?;
    let value = after_ws.trim_end_matches(sp);
    let value = if !value.is_empty() {
        value.to_string()
    } else if let Some(last) = ws.chars().last() {
        // `.+?` backtracks into the whitespace and takes its last character.
        last.to_string()
    } else {
        return Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::TakeWhile1)));
    };
    Ok(("", (key, value)))
}

struct DirectiveState {
    done: bool,
    seen: Vec<String>,
    d: Directives,
}

impl DirectiveState {
    /// Looks at a line while directives may still appear. `Ok(true)` when it was one.
    fn feed(&mut self, line: &str) -> Result<bool, SyntaxError> {
        if self.done {
            return Ok(false);
        }
        let Ok((_, (key, value))) = directive_line(line) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(SyntaxError::DuplicateDirective(key));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                if value != "`" && value != "\\" {
                    return Err(SyntaxError::BadEscape(value));
                }
                self.d.escape = value.chars().next().unwrap_or('\\');
            }
            "syntax" => self.d.syntax = Some(value),
            _ => self.d.check = Some(value),
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------
// Lines

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// Removes a trailing continuation (escape plus optional spaces/tabs) unless the escape is
/// itself escaped. Returns the text and whether the instruction ends on this line.
fn trim_continuation(line: &str, esc: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(esc) {
        if before.is_empty() || !before.ends_with(esc) {
            return (before, false);
        }
    }
    (line, true)
}

/// Physical lines, each with its line ending.
fn physical_lines(src: &str) -> Vec<&str> {
    src.split_inclusive('\n').collect()
}

/// What an instruction's line parser produced.
struct Parsed {
    args: Vec<String>,
    sub: Option<Box<Node>>,
    json: bool,
}

impl Parsed {
    fn args(args: Vec<String>) -> Self {
        Parsed { args, sub: None, json: false }
    }
}

fn parse_maybe_json(rest: &str) -> Result<Parsed, SyntaxError> {
    if rest.is_empty() {
        return Ok(Parsed::args(vec![]));
    }
    match parse_json_array(rest) {
        JsonForm::Strings(v) => Ok(Parsed { args: v, sub: None, json: true }),
        JsonForm::NotStringArray => Err(SyntaxError::NotStrings),
        JsonForm::NotJson => Ok(Parsed::args(vec![rest.to_string()])),
    }
}

fn parse_whitespace_delimited(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::args(vec![]);
    }
    Parsed::args(split_ws(rest, 0).into_iter().map(String::from).collect())
}

fn parse_maybe_json_to_list(rest: &str) -> Result<Parsed, SyntaxError> {
    match parse_json_array(rest) {
        JsonForm::Strings(v) => Ok(Parsed { args: v, sub: None, json: true }),
        JsonForm::NotStringArray => Err(SyntaxError::NotStrings),
        JsonForm::NotJson => Ok(parse_whitespace_delimited(rest)),
    }
}

fn parse_name_val(rest: &str, key: &'static str, esc: char) -> Result<Parsed, SyntaxError> {
    let words = parse_words(rest, esc);
    if words.is_empty() {
        return Ok(Parsed::args(vec![]));
    }
    if !words[0].contains('=') {
        // Old form: KEY name value...
        let parts = split_ws(rest, 2);
        if parts.len() < 2 {
            return Err(SyntaxError::NoValue(key));
        }
        return Ok(Parsed::args(vec![parts[0].to_string(), parts[1].to_string(), String::new()]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(SyntaxError::NoEquals(w));
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(Parsed::args(args))
}

fn parse_health_config(rest: &str) -> Result<Parsed, SyntaxError> {
    let b = rest.as_bytes();
    let sep = b.iter().position(|c| byte_is_space(*c)).unwrap_or(b.len());
    if sep == 0 {
        return Ok(Parsed::args(vec![]));
    }
    let next = b[sep..].iter().position(|c| !byte_is_space(*c)).map_or(b.len(), |p| sep + p);
    let typ = String::from_utf8_lossy(&b[..sep]).into_owned();
    let cmd_text = String::from_utf8_lossy(&b[next..]).into_owned();
    let cmd = parse_maybe_json(&cmd_text)?;
    let mut args = vec![typ];
    args.extend(cmd.args);
    Ok(Parsed { args, sub: None, json: cmd.json })
}

/// `keyword [flags] args` → a node (without position or heredocs).
fn node_from_line(line: &str, esc: char) -> Result<Node, SyntaxError> {
    let trimmed = line.trim();
    let parts = split_ws(trimmed, 2);
    let keyword = parts[0].to_string();
    let (rest, flags) = match parts.get(1) {
        Some(r) => extract_flags(r, esc),
        None => (String::new(), vec![]),
    };
    let rest = rest.trim();
    let parsed = match go_lower(&keyword).as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest)?,
        "arg" => Parsed::args(if rest.is_empty() { vec![] } else { parse_words(rest, esc) }),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest)?,
        "env" => parse_name_val(rest, "ENV", esc)?,
        "label" => parse_name_val(rest, "LABEL", esc)?,
        "expose" | "from" => parse_whitespace_delimited(rest),
        "healthcheck" => parse_health_config(rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => {
            Parsed::args(if rest.is_empty() { vec![] } else { vec![rest.to_string()] })
        }
        "onbuild" => {
            if rest.is_empty() {
                Parsed::args(vec![])
            } else {
                Parsed { args: vec![], sub: Some(Box::new(node_from_line(rest, esc)?)), json: false }
            }
        }
        // Unknown instructions are kept, with one empty argument, for the typed layer to refuse.
        _ => Parsed::args(vec![String::new()]),
    };
    Ok(Node {
        keyword,
        flags,
        args: parsed.args,
        sub: parsed.sub,
        json: parsed.json,
        original: line.to_string(),
        heredocs: vec![],
        span: Span::default(),
        comments: vec![],
    })
}

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.name().as_str()) {
            (Some(sub), "onbuild") => sub.as_ref(),
            _ => self,
        };
        matches!(node.name().as_str(), "add" | "copy" | "run") && !node.json
    }
}

// ---------------------------------------------------------------------------------------
// The file

/// Parses a whole Dockerfile into nodes.
pub fn parse(src: &str) -> Result<Ast, Diagnostic> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines = physical_lines(src);
    let mut ds = DirectiveState { done: false, seen: vec![], d: Directives::default() };
    let mut nodes: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut idx = 0usize;
    let check_len = |raw: &str, n: usize| -> Result<(), Diagnostic> {
        if raw.strip_suffix('\n').unwrap_or(raw).len() > MAX_LINE {
            return Err(Diagnostic::at(
                format!("dockerfile line greater than max allowed size of {MAX_LINE}"),
                Span::line(n, 1),
            ));
        }
        Ok(())
    };
    while idx < lines.len() {
        let raw = lines[idx];
        idx += 1;
        let line_no = idx;
        check_len(raw, line_no)?;
        let token = trim_newline(raw).trim_start();
        let start_col = trim_newline(raw).chars().count() - token.chars().count() + 1;
        let is_directive = ds.feed(token).map_err(|e| Diagnostic::at(e.to_string(), Span::line(line_no, start_col)))?;
        if is_comment(raw) {
            let c = token[1..].trim().to_string();
            if is_directive {
            } else if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c);
            }
            continue;
        }
        let esc = ds.d.escape;
        let (text, mut ended) = trim_continuation(token, esc);
        if ended && text.is_empty() {
            continue;
        }
        let mut buf = text.to_string();
        let mut last_line_len = trim_newline(raw).chars().count();
        let mut empty_continuation = false;
        while !ended && idx < lines.len() {
            let raw = lines[idx];
            idx += 1;
            check_len(raw, idx)?;
            let token = trim_newline(raw);
            if is_comment(raw) {
                continue;
            }
            if token.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (t, e) = trim_continuation(token, esc);
            buf.push_str(t);
            ended = e;
            last_line_len = token.chars().count();
        }
        if empty_continuation {
            warnings.push(Warning { message: format!("Empty continuation line found in: {buf}"), line: idx });
        }
        let span_here = |end_line: usize, end_col: usize| Span::new(line_no, start_col, end_line, end_col.max(1));
        let mut node =
            node_from_line(&buf, esc).map_err(|e| Diagnostic::at(e.to_string(), span_here(idx, last_line_len)))?;
        if node.can_contain_heredoc() && buf.contains("<<") {
            for mut h in heredocs_from_line(&buf) {
                let mut terminated = false;
                while idx < lines.len() {
                    let body = lines[idx];
                    idx += 1;
                    check_len(body, idx)?;
                    let mut candidate = trim_newline(body);
                    if h.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == h.name {
                        terminated = true;
                        last_line_len = trim_newline(body).chars().count();
                        break;
                    }
                    h.content.push_str(body);
                }
                if !terminated {
                    return Err(Diagnostic::at("unterminated heredoc", span_here(idx, 1)));
                }
                node.heredocs.push(h);
            }
        }
        node.span = span_here(idx, last_line_len);
        node.comments = std::mem::take(&mut comments);
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(Diagnostic::at("file with no instructions", Span::line(lines.len().max(1), 1)));
    }
    Ok(Ast { directives: ds.d, nodes, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Node {
        parse(src).unwrap().nodes.remove(0)
    }

    #[test]
    fn flags_are_extracted() {
        assert_eq!(extract_flags("--a=1 --b x y", '\\'), ("x y".to_string(), vec!["--a=1".into(), "--b".into()]));
        assert_eq!(extract_flags("--a=\"x\\\"y\" z", '\\'), ("z".to_string(), vec!["--a=x\"y".into()]));
        assert_eq!(extract_flags("-- foo", '\\'), (" foo".to_string(), vec![]));
        assert_eq!(extract_flags("--m=é", '\\').1, vec!["--m=Ã©".to_string()]);
    }

    /// The syntax errors keep BuildKit's words, located where the line starts.
    #[test]
    fn syntax_errors_say_what_buildkit_says() {
        for (src, message, line) in [
            ("# escape=a\nFROM x\n", "invalid escape token 'a' does not match ` or \\", 1),
            ("# syntax=a\n# syntax=b\nFROM x\n", "only one syntax parser directive can be used", 2),
            ("FROM x\nCMD [\"a\", 1]\n", "when using JSON array syntax, arrays must be comprised of strings only", 2),
            ("FROM x\nENV A\n", "ENV must have two arguments", 2),
            ("LABEL a=b c\n", "Syntax error - can't find = in \"c\". Must be of the form: name=value", 1),
        ] {
            let e = parse(src).unwrap_err();
            assert_eq!((e.message.as_str(), e.span.map(|s| s.start_line)), (message, Some(line)), "{src:?}");
        }
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        assert_eq!(parse_words(r#"a="b c" d\ e 'f\'"#, '\\'), vec![r#"a="b c""#, r"d\ e", r"'f\'"]);
    }

    #[test]
    fn continuation_and_comments() {
        let n = one("RUN echo a \\\n  # comment\n\n  b\n");
        assert_eq!(n.args, vec!["echo a   b"]);
        assert_eq!(n.span, Span::new(1, 1, 4, 3));
    }

    #[test]
    fn escaped_escape_is_not_a_continuation() {
        let ast = parse("RUN a \\\\\nRUN b\n").unwrap();
        assert_eq!(ast.nodes.len(), 2);
    }

    #[test]
    fn heredocs_are_read() {
        let ast = parse("RUN <<EOF\necho hi\nEOF\nCOPY <<A <<\"B\" /dst/\naa\nA\nbb\nB\n").unwrap();
        assert_eq!(ast.nodes.len(), 2);
        assert_eq!(ast.nodes[0].heredocs[0].content, "echo hi\n");
        let hs = &ast.nodes[1].heredocs;
        assert_eq!((hs[0].name.as_str(), hs[0].expand), ("A", true));
        assert_eq!((hs[1].name.as_str(), hs[1].expand, hs[1].content.as_str()), ("B", false, "bb\n"));
    }

    #[test]
    fn heredoc_variants() {
        assert_eq!(heredocs_from_line("RUN << EOF").len(), 1);
        assert_eq!(heredocs_from_line("RUN <<- EOF").len(), 0);
        assert_eq!(heredocs_from_line("RUN \"<<EOF\"").len(), 0);
        assert_eq!(heredocs_from_line("RUN 3<<FD").first().map(|h| h.fd), Some(3));
        assert!(heredocs_from_line("RUN <<-EOT").first().unwrap().chomp);
        assert!(matches!(parse("RUN <<EOF\nno end\n"), Err(e) if e.message == "unterminated heredoc"));
    }

    #[test]
    fn directives() {
        let ast = parse("# escape=`\n# syntax=docker/dockerfile:1\nFROM a\nRUN x `\n  y\n").unwrap();
        assert_eq!(ast.directives.escape, '`');
        assert_eq!(ast.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(ast.nodes[1].args, vec!["x   y"]);
        assert!(parse("# escape=x\nFROM a").is_err());
        assert!(parse("# escape=\\\n# escape=`\nFROM a").is_err());
    }

    #[test]
    fn empty_files_are_refused() {
        assert!(parse("").is_err());
        assert!(parse("# only\n\n   \n").is_err());
    }
}
