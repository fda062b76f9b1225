//! BuildKit's AST dump (`(keyword ["--flag"] "arg" ...)`, one line per instruction), used by
//! `rbuild parse --format buildkit` and checked against BuildKit's own parser test data.

use crate::ast::{Ast, Node};
use std::fmt::Write;

/// Go's `unicode.IsPrint`, closely: letters, marks, numbers, punctuation, symbols and the
/// ASCII space. Controls, format and private-use characters and separators other than the
/// space are not printable. (Unassigned code points are treated as printable.)
fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (u & 0xFFFE) == 0xFFFE || (0xFDD0..=0xFDEF).contains(&u);
    !(format || private || nonchar)
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// One instruction, without the surrounding parentheses.
pub fn dump_node(n: &Node) -> String {
    let mut s = n.name();
    if !n.flags.is_empty() {
        let flags: Vec<String> = n.flags.iter().map(|f| go_quote(f)).collect();
        let _ = write!(s, " [{}]", flags.join(" "));
    }
    for a in &n.args {
        s.push(' ');
        s.push_str(&go_quote(a));
    }
    if let Some(sub) = &n.sub {
        let _ = write!(s, " ({})", dump_node(sub));
    }
    s.trim().to_string()
}

/// The whole file: one `(…)` line per instruction, no trailing newline.
pub fn dump(ast: &Ast) -> String {
    let mut s = String::new();
    for n in &ast.nodes {
        let _ = writeln!(s, "({})", dump_node(n));
    }
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\u{7f}\u{1b}"), r#""\x00\x7f\x1b""#);
        assert_eq!(go_quote("♥ 한국어 ü"), "\"♥ 한국어 ü\"");
        assert_eq!(go_quote("a\u{a0}b\u{feff}"), r#""a\u00a0b\ufeff""#);
        assert_eq!(go_quote("\u{F0000}"), r#""\U000f0000""#);
        assert_eq!(go_quote("\t\n\r\u{b}\u{c}\u{7}\u{8}"), r#""\t\n\r\v\f\a\b""#);
    }

    #[test]
    fn dumps_nested_onbuild() {
        let ast = crate::ast::parse("ONBUILD --x COPY --from=b a b\nCMD\n").unwrap();
        assert_eq!(dump(&ast), "(onbuild [\"--x\"] (copy [\"--from=b\"] \"a\" \"b\"))\n(cmd)");
    }
}
