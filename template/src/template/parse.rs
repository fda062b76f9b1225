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
    /// Parses pieces into nodes until the end of the source or (`inside` a control
    /// structure) its `{{end}}` or `{{else …}}`, which it returns as the [`Ending`].
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
                    out.push(self.range(pipe, pos, in_range)?);
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

    /// The body of a `range` whose pipeline (at `pos`) was parsed, and its `else`.
    fn range(&mut self, pipe: Pipe, pos: usize, in_range: bool) -> Result<Node, TemplateError> {
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
        Ok(Node::Range { pipe, body, otherwise })
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

    /// The operands of one command, each a term with the fields chained onto it.
    fn args(&self, toks: &[Token]) -> Result<Vec<Arg>, TemplateError> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let start = toks[i].pos;
            let (term, next) = self.operand(toks, i)?;
            let (term, next, last_pos) = self.chain(term, toks, next, start)?;
            let end_pos = toks.get(next - 1).map(|t| t.pos + tok_len(&t.tok)).unwrap_or(start);
            let text = self.src.get(start..end_pos).unwrap_or_default().to_string();
            let pos = if matches!(term, Term::Field(_) | Term::Var(..)) { last_pos } else { start };
            out.push(Arg { term, pos, text });
            i = next;
        }
        Ok(out)
    }

    /// The term that starts at `toks[i]`, and the index of the token after it.
    fn operand(&self, toks: &[Token], i: usize) -> Result<(Term, usize), TemplateError> {
        let t = &toks[i];
        let term = match &t.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(f) => Term::Field(vec![f.clone()]),
            Tok::Var(v) => Term::Var(v.clone(), vec![]),
            Tok::Ident(id) => self.ident(id, t.pos)?,
            Tok::Str(s) => Term::Lit(Value::String(s.clone())),
            Tok::Char(c) => Term::Lit(Value::Int(*c as i64)),
            Tok::Num(n) => {
                Term::Lit(number(n).ok_or_else(|| parse_err(self.src, t.pos, format!("bad number syntax: {n:?}")))?)
            }
            Tok::LParen => {
                let close = self.close_paren(toks, i)?;
                let inner = self.pipe(&toks[i + 1..close], t.pos, "parenthesized pipeline")?;
                return Ok((Term::Sub(Box::new(inner), vec![]), close + 1));
            }
            other => return Err(parse_err(self.src, t.pos, format!("unexpected {other:?} in operand"))),
        };
        Ok((term, i + 1))
    }

    /// A bare word: a bool or nil literal, or a function (which must exist).
    fn ident(&self, id: &str, pos: usize) -> Result<Term, TemplateError> {
        Ok(match id {
            "true" => Term::Lit(Value::Bool(true)),
            "false" => Term::Lit(Value::Bool(false)),
            "nil" => Term::Lit(Value::Nil(crate::value::NilKind::Pointer)),
            _ => {
                if !funcs::exists(id) {
                    return Err(parse_err(self.src, pos, format!("function {id:?} not defined")));
                }
                Term::Ident(id.to_string())
            }
        })
    }

    /// The index of the `)` that closes the `(` at `toks[open]`.
    fn close_paren(&self, toks: &[Token], open: usize) -> Result<usize, TemplateError> {
        let mut depth = 0;
        for (j, t) in toks.iter().enumerate().skip(open) {
            match t.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(j);
                    }
                }
                _ => {}
            }
        }
        Err(parse_err(self.src, toks[open].pos, "unclosed left paren"))
    }

    /// `term` with the `.Field`s that directly follow it (`toks[next]`…) chained on; the
    /// index after them and the position of the last field (`start` when there is none).
    fn chain(
        &self,
        mut term: Term,
        toks: &[Token],
        mut next: usize,
        start: usize,
    ) -> Result<(Term, usize, usize), TemplateError> {
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
        Ok((term, next, last_pos))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_go_reads_them() {
        assert_eq!(number("42"), Some(Value::Int(42)));
        assert_eq!(number("-0x1F"), Some(Value::Int(-31)));
        assert_eq!(number("017"), Some(Value::Int(15)), "a leading 0 is octal");
        assert_eq!(number("0b101"), Some(Value::Int(5)));
        assert_eq!(number("1_000"), Some(Value::Int(1000)));
        assert_eq!(number("1.5e3"), Some(Value::Float(1500.0)));
        assert_eq!(number("1e+3"), Some(Value::Float(1000.0)));
        assert_eq!(number("12abc"), None);
    }

    fn args(action: &str) -> Vec<(usize, String)> {
        let pieces = super::super::lex::split_pieces(action).unwrap();
        let Some(Piece::Action { toks, .. }) = pieces.into_iter().find(|p| matches!(p, Piece::Action { .. })) else {
            panic!("no action in {action}");
        };
        let p = Parser { src: action, pieces: vec![], at: 0 };
        p.args(&toks).unwrap().into_iter().map(|a| (a.pos, a.text)).collect()
    }

    #[test]
    fn operands_keep_their_text_and_position() {
        // Errors quote an operand's text and point at its last field (Go's column).
        assert_eq!(
            args(r#"{{index .A.B "k" (len $x).C $.D}}"#),
            [
                (2, "index".to_string()),
                (10, ".A.B".to_string()),
                (13, r#""k""#.to_string()),
                (17, "(len $x).C".to_string()),
                (29, "$.D".to_string()),
            ]
        );
    }

    #[test]
    fn structure_errors() {
        let err = |src: &str| {
            let pieces = super::super::lex::split_pieces(src).unwrap();
            parse(src, pieces).unwrap_err().to_string()
        };
        assert_eq!(err("{{range .}}x{{else .}}y{{end}}"), "template: :1: unexpected tokens after {{else}} in range");
        assert_eq!(err("{{if .}}x{{else}}y{{else}}z{{end}}"), "template: :1: expected end; found {{else}}");
        assert_eq!(err("\n{{break}}"), "template: :2: {{break}} outside {{range}}");
        assert_eq!(err("{{(len .}}"), "template: :1: unclosed left paren");
        assert_eq!(err("{{len 0x}}"), "template: :1: bad number syntax: \"0x\"");
        assert_eq!(err("{{$a, $b := .}}"), "template: :1: too many declarations in command");
    }
}
