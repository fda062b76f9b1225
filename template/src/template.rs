//! Go's text/template: the lexer, the parser and the executor.
//!
//! Supported: text and actions with `{{-`/`-}}` trimming and comments; pipelines with `|`,
//! variables (`$x := …`, `$x = …`, `$`), fields and chains on `.`, variables and
//! parenthesised pipelines, method calls with arguments (`.Label "k"`), string, raw string,
//! char, number, bool and nil literals; `if`/`else if`/`else`, `range` (with `$i, $e :=`,
//! `else`, `break`, `continue`), `with`/`else`; Go's builtin functions and docker's
//! (see [`crate::funcs`]). `define`, `template` and `block` are refused with an error.

use crate::funcs;
use crate::value::{print_value, Value};

/// A parse or execution error, worded as Go's (`template: :1:2: executing "" at <.Foo>: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `.Name` (one field of a chain); `.` alone is `Dot`.
    Field(String),
    Dot,
    Var(String),
    Str(String),
    Num(String),
    Char(char),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    /// Directly follows the previous token (no space): `.A.B`, `(x).A`, `$x.A`.
    adjacent: bool,
}

#[derive(Debug, Clone)]
enum Term {
    Dot,
    /// `.A.B`
    Field(Vec<String>),
    /// `$x.A.B` (`$` is the data).
    Var(String, Vec<String>),
    Ident(String),
    Lit(Value),
    /// `(pipeline).A.B`
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Arg {
    term: Term,
    pos: usize,
    text: String,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
struct Pipe {
    decl: Vec<String>,
    /// `=` rather than `:=`.
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If { branches: Vec<(Pipe, Vec<Node>)>, otherwise: Option<Vec<Node>> },
    Range { pipe: Pipe, body: Vec<Node>, otherwise: Option<Vec<Node>> },
    With { pipe: Pipe, body: Vec<Node>, otherwise: Option<Vec<Node>> },
    Break,
    Continue,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<Node>,
}

/// One `{{…}}` or a run of text, as the lexer split the source.
enum Piece {
    Text(String),
    Action { toks: Vec<Token>, pos: usize },
}

fn line_of(src: &str, pos: usize) -> usize {
    1 + src[..pos.min(src.len())].matches('\n').count()
}

fn parse_err(src: &str, pos: usize, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError(format!("template: :{}: {msg}", line_of(src, pos)))
}

fn split_pieces(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while rest < src.len() {
        let Some(open) = src[rest..].find("{{").map(|i| i + rest) else {
            let mut t = &src[rest..];
            if trim_next {
                t = t.trim_start();
            }
            pieces.push(Piece::Text(t.to_string()));
            break;
        };
        let mut text = &src[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner_start = open + 2;
        let b = src.as_bytes();
        if b.get(inner_start) == Some(&b'-') && b.get(inner_start + 1).is_some_and(|c| c.is_ascii_whitespace()) {
            text = text.trim_end();
            inner_start += 2;
        }
        pieces.push(Piece::Text(text.to_string()));
        // Find the closing braces outside strings.
        let (close, trim) = find_close(src, inner_start)?;
        trim_next = trim;
        let inner_end = if trim { close - 2 } else { close };
        let inner = &src[inner_start..inner_end];
        let t = inner.trim_start();
        if t.starts_with("/*") {
            if !inner.trim_end().ends_with("*/") {
                return Err(parse_err(src, open, "unclosed comment"));
            }
        } else {
            let toks = lex(src, inner_start, inner_end)?;
            pieces.push(Piece::Action { toks, pos: inner_start });
        }
        rest = close + 2;
    }
    Ok(pieces)
}

/// The position of the `}}` closing the action that starts at `from`, and whether it
/// trims (`-}}`).
fn find_close(src: &str, from: usize) -> Result<(usize, bool), TemplateError> {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if b[i.min(b.len() - 1)] == b'\n' {
                        return Err(parse_err(src, i, "unterminated quoted string"));
                    }
                    i += 1;
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i += 1;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                let trim = i >= 2 && b[i - 1] == b'-' && b[i - 2].is_ascii_whitespace();
                return Ok((i, trim));
            }
            _ => i += 1,
        }
    }
    Err(parse_err(src, from, "unclosed action"))
}

fn lex(src: &str, start: usize, end: usize) -> Result<Vec<Token>, TemplateError> {
    let s = &src[..end];
    let b = s.as_bytes();
    let mut i = start;
    let mut out: Vec<Token> = Vec::new();
    let mut adjacent = false;
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < end {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            adjacent = false;
            continue;
        }
        let pos = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Declare
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b'.' if !b.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                i += 1;
                let st = i;
                while i < end && ident_char(b[i]) {
                    i += 1;
                }
                if st == i {
                    Tok::Dot
                } else {
                    Tok::Field(s[st..i].to_string())
                }
            }
            b'$' => {
                i += 1;
                let st = i;
                while i < end && ident_char(b[i]) {
                    i += 1;
                }
                Tok::Var(format!("${}", &s[st..i]))
            }
            b'"' => {
                i += 1;
                let mut v = String::new();
                loop {
                    if i >= end {
                        return Err(parse_err(src, pos, "unterminated quoted string"));
                    }
                    match b[i] {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\\' => {
                            let (ch, n) = unescape(&s[i..]).ok_or_else(|| parse_err(src, i, "invalid syntax"))?;
                            v.push(ch);
                            i += n;
                        }
                        _ => {
                            let ch = s[i..].chars().next().unwrap_or('\0');
                            v.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                Tok::Str(v)
            }
            b'`' => {
                i += 1;
                let st = i;
                while i < end && b[i] != b'`' {
                    i += 1;
                }
                if i >= end {
                    return Err(parse_err(src, pos, "unterminated raw quoted string"));
                }
                i += 1;
                Tok::Str(s[st..i - 1].to_string())
            }
            b'\'' => {
                i += 1;
                let (ch, n) = if b.get(i) == Some(&b'\\') {
                    unescape(&s[i..]).ok_or_else(|| parse_err(src, i, "invalid syntax"))?
                } else {
                    let ch = s[i..].chars().next().ok_or_else(|| parse_err(src, pos, "unterminated character"))?;
                    (ch, ch.len_utf8())
                };
                i += n;
                if b.get(i) != Some(&b'\'') {
                    return Err(parse_err(src, pos, "unterminated character constant"));
                }
                i += 1;
                Tok::Char(ch)
            }
            c if c.is_ascii_digit() || ((c == b'-' || c == b'+' || c == b'.') && i + 1 < end) => {
                let st = i;
                i += 1;
                while i < end && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'_' | b'+' | b'-')) {
                    if matches!(b[i], b'+' | b'-') && !matches!(b[i - 1], b'e' | b'E' | b'p' | b'P') {
                        break;
                    }
                    i += 1;
                }
                Tok::Num(s[st..i].to_string())
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let st = i;
                while i < end && ident_char(b[i]) {
                    i += 1;
                }
                Tok::Ident(s[st..i].to_string())
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(parse_err(src, pos, format!("unexpected {ch:?} in command")));
            }
        };
        out.push(Token { tok, pos, adjacent });
        adjacent = true;
    }
    Ok(out)
}

fn unescape(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    let c = *b.get(1)?;
    let simple = match c {
        b'n' => Some('\n'),
        b't' => Some('\t'),
        b'r' => Some('\r'),
        b'\\' => Some('\\'),
        b'"' => Some('"'),
        b'\'' => Some('\''),
        b'a' => Some('\x07'),
        b'b' => Some('\x08'),
        b'f' => Some('\x0c'),
        b'v' => Some('\x0b'),
        b'0' => Some('\0'),
        _ => None,
    };
    if let Some(ch) = simple {
        return Some((ch, 2));
    }
    let n = match c {
        b'x' => 2,
        b'u' => 4,
        b'U' => 8,
        _ => return None,
    };
    let hex = s.get(2..2 + n)?;
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some((char::from_u32(v)?, 2 + n))
}

fn number(text: &str) -> Option<Value> {
    let t = text.replace('_', "");
    let (neg, body) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bin) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        i64::from_str_radix(bin, 2).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Value::Int(if neg { -i } else { i }));
    }
    let f: f64 = body.parse().ok()?;
    Some(Value::Float(if neg { -f } else { f }))
}

struct Parser<'a> {
    src: &'a str,
    pieces: Vec<Piece>,
    at: usize,
}

/// What ended a list of nodes.
enum Ending {
    Eof,
    Done,
    Else(Vec<Token>, usize),
}

impl Parser<'_> {
    fn nodes(&mut self, inside: bool, in_range: bool) -> Result<(Vec<Node>, Ending), TemplateError> {
        let mut out = Vec::new();
        while self.at < self.pieces.len() {
            let i = self.at;
            self.at += 1;
            let (toks, pos) = match &self.pieces[i] {
                Piece::Text(t) => {
                    if !t.is_empty() {
                        out.push(Node::Text(t.clone()));
                    }
                    continue;
                }
                Piece::Action { toks, pos } => (toks.clone(), *pos),
            };
            let Some(first) = toks.first() else {
                return Err(parse_err(self.src, pos, "missing value for command"));
            };
            let kw = match &first.tok {
                Tok::Ident(k) => k.as_str(),
                _ => "",
            };
            match kw {
                "end" => {
                    if !inside {
                        return Err(parse_err(self.src, pos, "unexpected {{end}}"));
                    }
                    return Ok((out, Ending::Done));
                }
                "else" => {
                    if !inside {
                        return Err(parse_err(self.src, pos, "unexpected {{else}}"));
                    }
                    return Ok((out, Ending::Else(toks[1..].to_vec(), pos)));
                }
                "if" | "with" => {
                    let pipe = self.pipe(&toks[1..], pos, kw)?;
                    out.push(self.branch(kw, pipe, in_range)?);
                }
                "range" => {
                    let pipe = self.pipe(&toks[1..], pos, kw)?;
                    let (body, end) = self.nodes(true, true)?;
                    let otherwise = match end {
                        Ending::Done => None,
                        Ending::Else(rest, p) => {
                            if !rest.is_empty() {
                                return Err(parse_err(self.src, p, "unexpected tokens after {{else}} in range"));
                            }
                            Some(self.until_end(in_range)?)
                        }
                        Ending::Eof => return Err(parse_err(self.src, pos, "unexpected EOF")),
                    };
                    out.push(Node::Range { pipe, body, otherwise });
                }
                "break" | "continue" if toks.len() == 1 => {
                    if !in_range {
                        return Err(parse_err(self.src, pos, format!("{{{{{kw}}}}} outside {{{{range}}}}")));
                    }
                    out.push(if kw == "break" { Node::Break } else { Node::Continue });
                }
                "define" | "template" | "block" => {
                    return Err(parse_err(self.src, pos, format!("{{{{{kw}}}}} is not supported")));
                }
                _ => out.push(Node::Action(self.pipe(&toks, pos, "command")?)),
            }
        }
        if inside {
            return Err(parse_err(self.src, self.src.len(), "unexpected EOF"));
        }
        Ok((out, Ending::Eof))
    }

    fn until_end(&mut self, in_range: bool) -> Result<Vec<Node>, TemplateError> {
        match self.nodes(true, in_range)? {
            (n, Ending::Done) => Ok(n),
            (_, Ending::Else(_, p)) => Err(parse_err(self.src, p, "expected end; found {{else}}")),
            (_, Ending::Eof) => Err(parse_err(self.src, self.src.len(), "unexpected EOF")),
        }
    }

    /// The body of an `if`/`with` whose pipeline was parsed, with its `else` chain.
    fn branch(&mut self, kw: &str, pipe: Pipe, in_range: bool) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut cur = pipe;
        loop {
            let (body, end) = self.nodes(true, in_range)?;
            match end {
                Ending::Done => {
                    branches.push((cur, body));
                    return Ok(build(kw, branches, None));
                }
                Ending::Else(rest, p) => {
                    branches.push((cur, body));
                    match rest.first().map(|t| &t.tok) {
                        None => {
                            let otherwise = self.until_end(in_range)?;
                            return Ok(build(kw, branches, Some(otherwise)));
                        }
                        Some(Tok::Ident(k)) if k == kw => {
                            cur = self.pipe(&rest[1..], p, kw)?;
                        }
                        _ => return Err(parse_err(self.src, p, "unexpected tokens after {{else}}")),
                    }
                }
                Ending::Eof => return Err(parse_err(self.src, self.src.len(), "unexpected EOF")),
            }
        }
    }

    fn pipe(&self, toks: &[Token], pos: usize, ctx: &str) -> Result<Pipe, TemplateError> {
        if toks.is_empty() {
            return Err(parse_err(self.src, pos, format!("missing value for {ctx}")));
        }
        let mut decl = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        // `$x :=`, `$x =`, `$i, $e :=`
        let mut j = 0;
        let mut names = Vec::new();
        while let Some(Token { tok: Tok::Var(v), .. }) = toks.get(j) {
            names.push(v.clone());
            match toks.get(j + 1).map(|t| &t.tok) {
                Some(Tok::Comma) if names.len() < 2 => j += 2,
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = matches!(toks[j + 1].tok, Tok::Assign);
                    decl = names.clone();
                    rest = &toks[j + 2..];
                    break;
                }
                _ => break,
            }
        }
        if decl.len() > 1 && ctx != "range" {
            return Err(parse_err(self.src, pos, "too many declarations in command"));
        }
        let mut cmds = Vec::new();
        for part in split_top(rest, |t| matches!(t, Tok::Pipe)) {
            if part.is_empty() {
                return Err(parse_err(self.src, pos, "missing command"));
            }
            cmds.push(Cmd { args: self.args(part)? });
        }
        if cmds.is_empty() {
            return Err(parse_err(self.src, pos, format!("missing value for {ctx}")));
        }
        Ok(Pipe { decl, assign, cmds })
    }

    fn args(&self, toks: &[Token]) -> Result<Vec<Arg>, TemplateError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            let start = t.pos;
            let (term, mut next) = match &t.tok {
                Tok::Dot => (Term::Dot, i + 1),
                Tok::Field(f) => (Term::Field(vec![f.clone()]), i + 1),
                Tok::Var(v) => (Term::Var(v.clone(), vec![]), i + 1),
                Tok::Ident(id) => (
                    match id.as_str() {
                        "true" => Term::Lit(Value::Bool(true)),
                        "false" => Term::Lit(Value::Bool(false)),
                        "nil" => Term::Lit(Value::Nil(crate::value::NilKind::Pointer)),
                        _ => {
                            if !funcs::exists(id) {
                                return Err(parse_err(self.src, t.pos, format!("function {id:?} not defined")));
                            }
                            Term::Ident(id.clone())
                        }
                    },
                    i + 1,
                ),
                Tok::Str(s) => (Term::Lit(Value::String(s.clone())), i + 1),
                Tok::Char(c) => (Term::Lit(Value::Int(*c as i64)), i + 1),
                Tok::Num(n) => (
                    Term::Lit(
                        number(n).ok_or_else(|| parse_err(self.src, t.pos, format!("bad number syntax: {n:?}")))?,
                    ),
                    i + 1,
                ),
                Tok::LParen => {
                    let mut depth = 0;
                    let mut j = i;
                    loop {
                        match toks.get(j).map(|t| &t.tok) {
                            Some(Tok::LParen) => depth += 1,
                            Some(Tok::RParen) => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            None => return Err(parse_err(self.src, t.pos, "unclosed left paren")),
                            _ => {}
                        }
                        j += 1;
                    }
                    let inner = self.pipe(&toks[i + 1..j], t.pos, "parenthesized pipeline")?;
                    (Term::Sub(Box::new(inner), vec![]), j + 1)
                }
                other => return Err(parse_err(self.src, t.pos, format!("unexpected {other:?} in operand"))),
            };
            // Adjacent fields chain onto the operand.
            let mut term = term;
            let mut last_pos = start;
            while let Some(Token { tok: Tok::Field(f), adjacent: true, pos }) = toks.get(next) {
                last_pos = *pos;
                term = match term {
                    Term::Dot => Term::Field(vec![f.clone()]),
                    Term::Field(mut v) => {
                        v.push(f.clone());
                        Term::Field(v)
                    }
                    Term::Var(n, mut v) => {
                        v.push(f.clone());
                        Term::Var(n, v)
                    }
                    Term::Sub(p, mut v) => {
                        v.push(f.clone());
                        Term::Sub(p, v)
                    }
                    other => {
                        return Err(parse_err(self.src, *pos, format!("unexpected . after term {other:?}")));
                    }
                };
                next += 1;
            }
            let end_pos = toks.get(next - 1).map(|t| t.pos + tok_len(&t.tok)).unwrap_or(start);
            let text = self.src.get(start..end_pos).unwrap_or_default().to_string();
            let pos = if matches!(term, Term::Field(_) | Term::Var(..)) { last_pos } else { start };
            out.push(Arg { term, pos, text });
            i = next;
        }
        Ok(out)
    }
}

fn tok_len(t: &Tok) -> usize {
    match t {
        Tok::Ident(s) | Tok::Num(s) => s.len(),
        Tok::Field(s) => s.len() + 1,
        Tok::Var(s) => s.len(),
        Tok::Str(s) => s.len() + 2,
        Tok::Char(c) => c.len_utf8() + 2,
        Tok::Declare => 2,
        _ => 1,
    }
}

fn build(kw: &str, mut branches: Vec<(Pipe, Vec<Node>)>, otherwise: Option<Vec<Node>>) -> Node {
    if kw == "with" {
        // `with` has no else-with chains in the Go versions docker uses: nest them.
        let (pipe, body) = branches.remove(0);
        let otherwise = if branches.is_empty() { otherwise } else { Some(vec![build("with", branches, otherwise)]) };
        return Node::With { pipe, body, otherwise };
    }
    Node::If { branches, otherwise }
}

/// Splits at top-level tokens matching `sep` (outside parentheses).
fn split_top(toks: &[Token], sep: impl Fn(&Tok) -> bool) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t.tok {
            Tok::LParen => depth += 1,
            Tok::RParen => depth -= 1,
            _ => {}
        }
        if depth == 0 && sep(&t.tok) {
            out.push(&toks[start..i]);
            start = i + 1;
        }
    }
    out.push(&toks[start..]);
    out
}

/// How a loop body ended.
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a> {
    src: &'a str,
    vars: Vec<(String, Value)>,
    out: String,
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let pieces = split_pieces(src)?;
        let mut p = Parser { src, pieces, at: 0 };
        let (nodes, _) = p.nodes(false, false)?;
        Ok(Template { src: src.to_string(), nodes })
    }

    /// Runs the template on `data`.
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let mut e = Exec { src: &self.src, vars: vec![("$".into(), data.clone())], out: String::new() };
        e.nodes(&self.nodes, data)?;
        Ok(e.out)
    }
}

impl Exec<'_> {
    fn err(&self, arg: &Arg, msg: impl std::fmt::Display) -> TemplateError {
        let before = &self.src[..arg.pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(arg.pos, |i| arg.pos - i - 1);
        TemplateError(format!("template: :{line}:{col}: executing \"\" at <{}>: {msg}", arg.text))
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipe(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&print_value(&v));
                    }
                }
                Node::If { branches, otherwise } => {
                    let mark = self.vars.len();
                    let mut done = false;
                    let mut flow = Flow::Normal;
                    for (p, body) in branches {
                        if self.pipe(p, dot)?.truthy() {
                            flow = self.nodes(body, dot)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        if let Some(o) = otherwise {
                            flow = self.nodes(o, dot)?;
                        }
                    }
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With { pipe, body, otherwise } => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    let flow = if v.truthy() {
                        self.nodes(body, &v)?
                    } else if let Some(o) = otherwise {
                        self.nodes(o, dot)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range { pipe, body, otherwise } => {
                    let mark = self.vars.len();
                    let decl = pipe.decl.clone();
                    let bare = Pipe { decl: vec![], assign: false, cmds: pipe.cmds.clone() };
                    let v = self.pipe(&bare, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::List(l) => l.iter().enumerate().map(|(i, e)| (Value::from(i), e.clone())).collect(),
                        Value::Map(m) => m.iter().map(|(k, e)| (Value::String(k.clone()), e.clone())).collect(),
                        Value::Int(n) => (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Nil(_) | Value::NoValue => vec![],
                        other => {
                            let a = &pipe.cmds[0].args[0];
                            return Err(self.err(a, format!("range can't iterate over {}", print_value(other))));
                        }
                    };
                    if items.is_empty() {
                        if let Some(o) = otherwise {
                            self.nodes(o, dot)?;
                        }
                    }
                    for (k, e) in items {
                        let inner = self.vars.len();
                        match decl.as_slice() {
                            [one] => self.vars.push((one.clone(), e.clone())),
                            [i, el] => {
                                self.vars.push((i.clone(), k));
                                self.vars.push((el.clone(), e.clone()));
                            }
                            _ => {}
                        }
                        let flow = self.nodes(body, &e)?;
                        self.vars.truncate(inner);
                        if matches!(flow, Flow::Break) {
                            break;
                        }
                    }
                    self.vars.truncate(mark);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, TemplateError> {
        let mut v: Option<Value> = None;
        for c in &p.cmds {
            v = Some(self.cmd(c, dot, v)?);
        }
        let v = v.unwrap_or(Value::NoValue);
        for name in &p.decl {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(TemplateError(format!("template: : undefined variable: {name}"))),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn var(&self, arg: &Arg, name: &str) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(arg, format!("undefined variable: {name}")))
    }

    /// Follows `fields` from `v`; the last one may be a method called with `call_args`.
    fn fields(
        &self,
        arg: &Arg,
        mut v: Value,
        fields: &[String],
        call_args: Option<Vec<Value>>,
    ) -> Result<Value, TemplateError> {
        let n = fields.len();
        let mut call_args = call_args;
        for (i, f) in fields.iter().enumerate() {
            let last = i + 1 == n;
            let next = match &v {
                Value::Struct(fs) => match fs.iter().find(|(k, _)| k == f) {
                    Some((_, x)) => x.clone(),
                    None => return Err(self.err(arg, format!("can't evaluate field {f} in type {}", v.type_name()))),
                },
                Value::Map(m) => m.get(f).cloned().unwrap_or(Value::NoValue),
                // A nil map has no entries (docker's `.Config.Labels.x` without labels).
                Value::Nil(crate::value::NilKind::Map) => Value::NoValue,
                Value::Nil(_) => return Err(self.err(arg, format!("nil pointer evaluating interface {{}}.{f}"))),
                Value::NoValue => {
                    return Err(self.err(arg, format!("nil pointer evaluating interface {{}}.{f}")));
                }
                other => {
                    return Err(self.err(arg, format!("can't evaluate field {f} in type {}", other.type_name())));
                }
            };
            v = match next {
                Value::Method(m) => {
                    let args = if last { call_args.take().unwrap_or_default() } else { vec![] };
                    m(&args).map_err(|e| self.err(arg, format!("error calling {f}: {e}")))?
                }
                x => x,
            };
        }
        if let Some(a) = call_args {
            if !a.is_empty() {
                return Err(self.err(arg, format!("can't give argument to non-function {}", arg.text)));
            }
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        match &a.term {
            Term::Dot => Ok(dot.clone()),
            Term::Field(f) => self.fields(a, dot.clone(), f, None),
            Term::Var(n, f) => {
                let v = self.var(a, n)?;
                self.fields(a, v, f, None)
            }
            Term::Lit(v) => Ok(v.clone()),
            Term::Sub(p, f) => {
                let v = self.pipe(p, dot)?;
                self.fields(a, v, f, None)
            }
            Term::Ident(name) => self.call(a, name, &[], dot, None),
        }
    }

    fn call(
        &mut self,
        head: &Arg,
        name: &str,
        args: &[Arg],
        dot: &Value,
        last: Option<Value>,
    ) -> Result<Value, TemplateError> {
        // and/or evaluate their arguments only as far as needed.
        if name == "and" || name == "or" {
            let mut vals: Vec<Value> = Vec::new();
            let n = args.len() + usize::from(last.is_some());
            if n == 0 {
                return Err(self.err(head, format!("wrong number of args for {name}: want at least 1 got 0")));
            }
            for a in args {
                let v = self.arg(a, dot)?;
                let t = v.truthy();
                vals.push(v);
                if (name == "and" && !t) || (name == "or" && t) {
                    return Ok(vals.pop().unwrap_or(Value::NoValue));
                }
            }
            if let Some(l) = last {
                return Ok(l);
            }
            return Ok(vals.pop().unwrap_or(Value::NoValue));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(a, dot)?);
        }
        if let Some(l) = last {
            vals.push(l);
        }
        funcs::call(name, &vals).map_err(|e| self.err(head, format!("error calling {name}: {e}")))
    }

    fn cmd(&mut self, c: &Cmd, dot: &Value, last: Option<Value>) -> Result<Value, TemplateError> {
        let head = &c.args[0];
        let rest = &c.args[1..];
        match &head.term {
            Term::Ident(name) => {
                let name = name.clone();
                self.call(head, &name, rest, dot, last)
            }
            Term::Field(_) | Term::Var(..) | Term::Sub(..) if !rest.is_empty() || last.is_some() => {
                let mut vals = Vec::new();
                for a in rest {
                    vals.push(self.arg(a, dot)?);
                }
                if let Some(l) = last {
                    vals.push(l);
                }
                let (base, fields) = match &head.term {
                    Term::Field(f) => (dot.clone(), f.clone()),
                    Term::Var(n, f) => (self.var(head, n)?, f.clone()),
                    Term::Sub(p, f) => (self.pipe(p, dot)?, f.clone()),
                    _ => unreachable!("matched above"),
                };
                if fields.is_empty() {
                    return Err(self.err(head, format!("can't give argument to non-function {}", head.text)));
                }
                self.fields(head, base, &fields, Some(vals))
            }
            _ => {
                if !rest.is_empty() || last.is_some() {
                    return Err(self.err(head, format!("can't give argument to non-function {}", head.text)));
                }
                self.arg(head, dot)
            }
        }
    }
}

/// Runs `src` on `data` (parse and execute).
pub fn render(src: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(src)?.execute(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::NilKind;

    fn data() -> Value {
        Value::object([
            ("Id", "sha256:abc".into()),
            (
                "Config",
                Value::object([
                    ("Env", Value::strings(&["A=1", "PATH=/bin"], false)),
                    ("Entrypoint", Value::Nil(NilKind::List)),
                    ("Labels", Value::map([("com.x", Value::from("y")), ("a", "b".into())])),
                ]),
            ),
            ("State", Value::object([("Running", true.into()), ("ExitCode", 0i64.into())])),
            ("Size", 1234i64.into()),
            ("Names", Value::strings(&["a", "b"], false)),
            ("Empty", "".into()),
            ("Label", Value::method(|a| Ok(Value::String(format!("label:{}", print_value(&a[0])))))),
        ])
    }

    fn r(src: &str) -> String {
        render(src, &data()).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn fields_and_printing() {
        assert_eq!(r("{{.Id}}"), "sha256:abc");
        assert_eq!(r("{{.State.Running}} {{.State.ExitCode}}"), "true 0");
        assert_eq!(r("{{.Config.Env}}"), "[A=1 PATH=/bin]");
        assert_eq!(r("{{.Config.Entrypoint}}"), "[]");
        assert_eq!(r("{{.Config.Labels}}"), "map[a:b com.x:y]");
        assert_eq!(r("{{.Config.Labels.nope}}"), "<no value>");
        let nil_labels = Value::object([("Labels", Value::Nil(NilKind::Map))]);
        assert_eq!(render("{{.Labels.x}}", &nil_labels).unwrap(), "<no value>");
        assert_eq!(r("{{json .Config.Env}}"), r#"["A=1","PATH=/bin"]"#);
        assert_eq!(r("{{json .Config.Entrypoint}}"), "null");
        assert_eq!(r(r#"{{index .Config.Labels "com.x"}}"#), "y");
        assert_eq!(r("{{index .Names 1}}"), "b");
        assert_eq!(r(r#"{{.Label "k"}}"#), "label:k");
        assert!(r("{{$}}").len() > 10);
    }

    #[test]
    fn control_structures() {
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
        assert_eq!(r("{{if .Empty}}a{{else if .Size}}b{{else}}c{{end}}"), "b");
        assert_eq!(r("{{range .Names}}[{{.}}]{{end}}"), "[a][b]");
        assert_eq!(r("{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}"), "0=a 1=b ");
        assert_eq!(r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"), "a=b;com.x=y;");
        assert_eq!(r("{{range .Config.Entrypoint}}x{{else}}none{{end}}"), "none");
        assert_eq!(r("{{with .State}}{{.ExitCode}}{{end}}"), "0");
        assert_eq!(r("{{with .Empty}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(r("{{$x := .Size}}{{$x}}"), "1234");
        assert_eq!(r("{{range .Names}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}"), "a");
        assert_eq!(r("a  {{- .Size -}}  b\n"), "a1234b\n");
        assert_eq!(r("{{/* a comment */}}x"), "x");
        assert_eq!(r("{{(index .Names 0) | upper}}"), "A");
        assert_eq!(r("{{.Id | printf \"%.10s\"}}"), "sha256:abc");
        assert_eq!(r("{{range $.Names}}{{$.Size}}{{end}}"), "12341234");
    }

    #[test]
    fn errors_are_worded_as_go() {
        let e = render("{{.Foo}}", &data()).unwrap_err().0;
        assert_eq!(e, "template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type struct");
        let e = render("{{.Config.Foo}}", &data()).unwrap_err().0;
        assert!(e.starts_with("template: :1:9: executing \"\" at <.Config.Foo>:"), "{e}");
        assert!(render("{{nosuch .}}", &data()).unwrap_err().0.contains("function \"nosuch\" not defined"));
        assert!(render("{{if .Id}}x", &data()).is_err());
        assert!(render("{{end}}", &data()).is_err());
        assert!(render("{{.Id", &data()).is_err());
        assert!(render("{{\"abc}}", &data()).is_err());
        assert!(render("{{define \"x\"}}{{end}}", &data()).is_err());
    }
}
