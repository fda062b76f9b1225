//! The parser: the syntax tree ([`Node`], [`Pipe`], [`Cmd`], [`Arg`], [`Term`]) built from
//! the lexer's pieces — control structures nested with their `else` chains, pipelines with
//! declarations, operands with their field chains, literals as values. Unknown functions
//! and `define`/`template`/`block` are refused here, as Go's parser refuses them.

use super::lex::{tok_len, Piece, Tok, Token};
use super::{parse_err, TemplateError};
use crate::funcs;
use crate::value::Value;

#[derive(Debug, Clone)]
pub(super) enum Term {
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
pub(super) struct Arg {
    pub(super) term: Term,
    pub(super) pos: usize,
    pub(super) text: String,
}

#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub(super) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub(super) decl: Vec<String>,
    /// `=` rather than `:=`.
    pub(super) assign: bool,
    pub(super) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Pipe),
    If { branches: Vec<(Pipe, Vec<Node>)>, otherwise: Option<Vec<Node>> },
    Range { pipe: Pipe, body: Vec<Node>, otherwise: Option<Vec<Node>> },
    With { pipe: Pipe, body: Vec<Node>, otherwise: Option<Vec<Node>> },
    Break,
    Continue,
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

/// Parses the lexer's pieces of `src` into the template's top-level nodes.
pub(super) fn parse(src: &str, pieces: Vec<Piece>) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser { src, pieces, at: 0 };
    let (nodes, _) = p.nodes(false, false)?;
    Ok(nodes)
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
