//! The lexer: splits a template's source into runs of text and `{{…}}` actions (with
//! `{{-`/`-}}` trimming and `{{/* comments */}}` dropped), and each action into tokens
//! (identifiers, `.Field`s, `$var`s, string/raw/char/number literals, punctuation).

use super::{parse_err, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) pos: usize,
    /// Directly follows the previous token (no space): `.A.B`, `(x).A`, `$x.A`.
    pub(super) adjacent: bool,
}

/// One `{{…}}` or a run of text, as the lexer split the source.
#[derive(Debug)]
pub(super) enum Piece {
    Text(String),
    Action { toks: Vec<Token>, pos: usize },
}

pub(super) fn split_pieces(src: &str) -> Result<Vec<Piece>, TemplateError> {
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

/// The tokens of the action `src[start..end]`.
fn lex(src: &str, start: usize, end: usize) -> Result<Vec<Token>, TemplateError> {
    let mut lx = Lexer { src, s: &src[..end], i: start };
    let mut out: Vec<Token> = Vec::new();
    let mut adjacent = false;
    while lx.i < end {
        if lx.byte(0).is_some_and(|c| c.is_ascii_whitespace()) {
            lx.i += 1;
            adjacent = false;
            continue;
        }
        let pos = lx.i;
        let tok = lx.token()?;
        out.push(Token { tok, pos, adjacent });
        adjacent = true;
    }
    Ok(out)
}

/// A cursor over one action: `s` is the template's source up to the action's end, `i`
/// the next byte to read.
struct Lexer<'a> {
    /// The whole source (errors give its line).
    src: &'a str,
    s: &'a str,
    i: usize,
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Lexer<'_> {
    /// The byte `ahead` bytes after the cursor.
    fn byte(&self, ahead: usize) -> Option<u8> {
        self.s.as_bytes().get(self.i + ahead).copied()
    }

    /// Reads one token at the cursor (not a space).
    fn token(&mut self) -> Result<Tok, TemplateError> {
        let c = self.s.as_bytes()[self.i];
        let punct = match c {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'|' => Some(Tok::Pipe),
            b',' => Some(Tok::Comma),
            b'=' => Some(Tok::Assign),
            _ => None,
        };
        if let Some(tok) = punct {
            self.i += 1;
            return Ok(tok);
        }
        match c {
            b':' if self.byte(1) == Some(b'=') => {
                self.i += 2;
                Ok(Tok::Declare)
            }
            b'.' if !self.byte(1).is_some_and(|c| c.is_ascii_digit()) => {
                self.i += 1;
                let name = self.word(ident_char);
                Ok(if name.is_empty() { Tok::Dot } else { Tok::Field(name.to_string()) })
            }
            b'$' => {
                self.i += 1;
                Ok(Tok::Var(format!("${}", self.word(ident_char))))
            }
            b'"' => self.quoted(),
            b'`' => self.raw_quoted(),
            b'\'' => self.char_constant(),
            c if c.is_ascii_digit() || (matches!(c, b'-' | b'+' | b'.') && self.i + 1 < self.s.len()) => {
                Ok(self.number())
            }
            c if c.is_ascii_alphabetic() || c == b'_' => Ok(Tok::Ident(self.word(ident_char).to_string())),
            _ => {
                let ch = self.s[self.i..].chars().next().unwrap_or('?');
                Err(parse_err(self.src, self.i, format!("unexpected {ch:?} in command")))
            }
        }
    }

    /// The run of bytes from the cursor for which `keep` holds (the cursor moves past it).
    fn word(&mut self, keep: impl Fn(u8) -> bool) -> &str {
        let st = self.i;
        while self.byte(0).is_some_and(&keep) {
            self.i += 1;
        }
        &self.s[st..self.i]
    }

    /// `"…"` with Go's escapes.
    fn quoted(&mut self) -> Result<Tok, TemplateError> {
        let pos = self.i;
        self.i += 1;
        let mut v = String::new();
        loop {
            match self.byte(0) {
                None => return Err(parse_err(self.src, pos, "unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Tok::Str(v));
                }
                Some(b'\\') => {
                    let (ch, n) =
                        unescape(&self.s[self.i..]).ok_or_else(|| parse_err(self.src, self.i, "invalid syntax"))?;
                    v.push(ch);
                    self.i += n;
                }
                Some(_) => {
                    let ch = self.s[self.i..].chars().next().unwrap_or('\0');
                    v.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    /// `` `…` ``, taken as is.
    fn raw_quoted(&mut self) -> Result<Tok, TemplateError> {
        let pos = self.i;
        self.i += 1;
        let body = self.word(|c| c != b'`').to_string();
        if self.byte(0).is_none() {
            return Err(parse_err(self.src, pos, "unterminated raw quoted string"));
        }
        self.i += 1;
        Ok(Tok::Str(body))
    }

    /// `'c'` or `'\n'` (an escape).
    fn char_constant(&mut self) -> Result<Tok, TemplateError> {
        let pos = self.i;
        self.i += 1;
        let (ch, n) = if self.byte(0) == Some(b'\\') {
            unescape(&self.s[self.i..]).ok_or_else(|| parse_err(self.src, self.i, "invalid syntax"))?
        } else {
            let ch =
                self.s[self.i..].chars().next().ok_or_else(|| parse_err(self.src, pos, "unterminated character"))?;
            (ch, ch.len_utf8())
        };
        self.i += n;
        if self.byte(0) != Some(b'\'') {
            return Err(parse_err(self.src, pos, "unterminated character constant"));
        }
        self.i += 1;
        Ok(Tok::Char(ch))
    }

    /// A number's text (its value is the parser's business): digits, letters, `.` `_`,
    /// and a sign only after an exponent's `e`/`p`.
    fn number(&mut self) -> Tok {
        let b = self.s.as_bytes();
        let st = self.i;
        self.i += 1;
        while let Some(c) = self.byte(0) {
            if !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-')) {
                break;
            }
            if matches!(c, b'+' | b'-') && !matches!(b[self.i - 1], b'e' | b'E' | b'p' | b'P') {
                break;
            }
            self.i += 1;
        }
        Tok::Num(self.s[st..self.i].to_string())
    }
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

pub(super) fn tok_len(t: &Tok) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(action: &str) -> Vec<Tok> {
        lex(action, 0, action.len()).unwrap_or_else(|e| panic!("{action}: {e}")).into_iter().map(|t| t.tok).collect()
    }

    fn err(action: &str) -> String {
        lex(action, 0, action.len()).unwrap_err().to_string()
    }

    #[test]
    fn tokens_of_an_action() {
        let s = |v: &str| v.to_string();
        assert_eq!(
            toks(r#"$x := .A.B | printf "%d\n" 1e+3 -2 'a' `r\n`"#),
            [
                Tok::Var(s("$x")),
                Tok::Declare,
                Tok::Field(s("A")),
                Tok::Field(s("B")),
                Tok::Pipe,
                Tok::Ident(s("printf")),
                Tok::Str(s("%d\n")),
                Tok::Num(s("1e+3")),
                Tok::Num(s("-2")),
                Tok::Char('a'),
                Tok::Str(s(r"r\n")),
            ]
        );
        assert_eq!(
            toks("(.) , $ = '\\x41'"),
            [Tok::LParen, Tok::Dot, Tok::RParen, Tok::Comma, Tok::Var(s("$")), Tok::Assign, Tok::Char('A')]
        );
        // A sign ends a number unless it follows an exponent.
        assert_eq!(toks("1-2"), [Tok::Num(s("1")), Tok::Num(s("-2"))]);
        assert_eq!(toks(".5"), [Tok::Num(s(".5"))]);
    }

    #[test]
    fn adjacency_marks_chains() {
        let t = lex("(x).A $v.B .C", 0, 13).unwrap();
        let adj: Vec<bool> = t.iter().map(|t| t.adjacent).collect();
        assert_eq!(adj, [false, true, true, true, false, true, false]);
        assert_eq!(t.iter().map(|t| t.pos).collect::<Vec<_>>(), [0, 1, 2, 3, 6, 8, 11]);
    }

    #[test]
    fn bad_tokens_are_parse_errors() {
        assert_eq!(err("\"abc"), "template: :1: unterminated quoted string");
        assert_eq!(err("`abc"), "template: :1: unterminated raw quoted string");
        assert_eq!(err("'ab'"), "template: :1: unterminated character constant");
        assert_eq!(err(r#""\q""#), "template: :1: invalid syntax");
        assert_eq!(err(".A ; .B"), "template: :1: unexpected ';' in command");
    }

    #[test]
    fn pieces_trim_and_drop_comments() {
        let p = split_pieces("a  {{- .X -}}  b{{/* c */}}{{.Y}}").unwrap();
        let shape: Vec<String> = p
            .iter()
            .map(|p| match p {
                Piece::Text(t) => format!("text {t:?}"),
                Piece::Action { toks, pos } => format!("action at {pos}: {} tokens", toks.len()),
            })
            .collect();
        assert_eq!(shape, ["text \"a\"", "action at 7: 1 tokens", "text \"b\"", "text \"\"", "action at 29: 1 tokens"]);
        assert_eq!(split_pieces("{{.X").unwrap_err().to_string(), "template: :1: unclosed action");
        assert_eq!(split_pieces("{{/* x }}").unwrap_err().to_string(), "template: :1: unclosed comment");
    }
}
