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
