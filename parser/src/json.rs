//! The JSON (exec) form of instructions, read exactly as Go's `encoding/json` reads it.
//!
//! Docker decides between exec and shell form by decoding the argument text as a JSON
//! array: valid JSON whose elements are all strings is exec form; valid JSON with any other
//! element is an error; anything else (invalid JSON) is shell form. The grammar here is
//! RFC 8259 with Go's details: lone surrogates decode to U+FFFD, numbers that overflow a
//! float64 make the document invalid, and nesting deeper than 10000 is invalid.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1, take_while_m_n};
use nom::character::complete::{char, one_of};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;

/// What the argument text turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonForm {
    /// Not a JSON array: the instruction uses shell form.
    NotJson,
    /// A valid JSON array holding something other than strings: a parse error.
    NotStringArray,
    /// A valid JSON array of strings.
    Strings(Vec<String>),
}

const MAX_DEPTH: usize = 10_000;

fn ws(i: &str) -> &str {
    i.trim_start_matches([' ', '\t', '\n', '\r'])
}

fn hex4(i: &str) -> IResult<&str, u32> {
    let (i, h) = take_while_m_n(4, 4, |c: char| c.is_ascii_hexdigit())(i)?;
    Ok((i, u32::from_str_radix(h, 16).unwrap_or(0xFFFD)))
}

/// A JSON string literal, decoded.
pub(crate) fn json_string(i: &str) -> IResult<&str, String> {
    let (mut i, _) = char('"')(i)?;
    let mut out = String::new();
    loop {
        let (rest, chunk) = take_while(|c: char| c != '"' && c != '\\' && c >= '\u{20}')(i)?;
        out.push_str(chunk);
        i = rest;
        match i.chars().next() {
            Some('"') => return Ok((&i[1..], out)),
            Some('\\') => {
                let (rest, esc) = one_of("\"\\/bfnrtu")(&i[1..])?;
                i = rest;
                match esc {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    _ => {
                        let (rest, hi) = hex4(i)?;
                        i = rest;
                        if (0xD800..0xDC00).contains(&hi) {
                            // A high surrogate pairs only with an immediately following low one.
                            if let Ok((rest, lo)) = nom::sequence::preceded(tag("\\u"), hex4)(i) {
                                if (0xDC00..0xE000).contains(&lo) {
                                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                                    i = rest;
                                    continue;
                                }
                            }
                            out.push('\u{FFFD}');
                        } else {
                            out.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
                        }
                    }
                }
            }
            // A raw control character or the end of input: not a valid string.
            _ => return Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Char))),
        }
    }
}

fn json_number(i: &str) -> IResult<&str, &str> {
    recognize(tuple((
        opt(char('-')),
        alt((tag("0"), recognize(pair(one_of("123456789"), take_while(|c: char| c.is_ascii_digit()))))),
        opt(pair(char('.'), take_while1(|c: char| c.is_ascii_digit()))),
        opt(tuple((one_of("eE"), opt(one_of("+-")), take_while1(|c: char| c.is_ascii_digit())))),
    )))(i)
}

/// A scalar value (anything but an array or object). `Ok(true)` when it is a string.
fn scalar(i: &str) -> Option<(&str, bool)> {
    if let Ok((rest, _)) = json_string(i) {
        return Some((rest, true));
    }
    if let Ok((rest, n)) = json_number(i) {
        // Go decodes into float64 and fails on overflow, which makes the text shell form.
        return n.parse::<f64>().ok().filter(|f| f.is_finite()).map(|_| (rest, false));
    }
    for lit in ["true", "false", "null"] {
        if let Some(rest) = i.strip_prefix(lit) {
            return Some((rest, false));
        }
    }
    None
}

/// Validates one JSON value of any kind, iteratively. Returns the rest of the input.
fn skip_value(i: &str) -> Option<&str> {
    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        Array,
        Object,
    }
    let mut stack: Vec<Ctx> = Vec::new();
    let mut i = ws(i);
    loop {
        // Expect a value here.
        match i.chars().next()? {
            '[' => {
                stack.push(Ctx::Array);
                if stack.len() > MAX_DEPTH {
                    return None;
                }
                i = ws(&i[1..]);
                if let Some(rest) = i.strip_prefix(']') {
                    stack.pop();
                    i = rest;
                } else {
                    continue;
                }
            }
            '{' => {
                stack.push(Ctx::Object);
                if stack.len() > MAX_DEPTH {
                    return None;
                }
                i = ws(&i[1..]);
                if let Some(rest) = i.strip_prefix('}') {
                    stack.pop();
                    i = rest;
                } else {
                    let (rest, _) = json_string(i).ok()?;
                    i = ws(rest).strip_prefix(':')?;
                    i = ws(i);
                    continue;
                }
            }
            _ => {
                let (rest, _) = scalar(i)?;
                i = rest;
            }
        }
        // After a complete value: close containers or move to the next element.
        loop {
            i = ws(i);
            let Some(top) = stack.last().copied() else { return Some(i) };
            match (i.chars().next()?, top) {
                (',', Ctx::Array) => {
                    i = ws(&i[1..]);
                    break;
                }
                (',', Ctx::Object) => {
                    let (rest, _) = json_string(ws(&i[1..])).ok()?;
                    i = ws(ws(rest).strip_prefix(':')?);
                    break;
                }
                (']', Ctx::Array) | ('}', Ctx::Object) => {
                    stack.pop();
                    i = &i[1..];
                }
                _ => return None,
            }
        }
    }
}

/// Reads `text` as docker does: leading whitespace (Unicode) is skipped, then the text must
/// be exactly one JSON array, followed by nothing but JSON whitespace.
pub fn parse_json_array(text: &str) -> JsonForm {
    let t = text.trim_start();
    let Some(mut i) = t.strip_prefix('[') else { return JsonForm::NotJson };
    let mut items = Vec::new();
    let mut all_strings = true;
    i = ws(i);
    if let Some(rest) = i.strip_prefix(']') {
        i = rest;
    } else {
        loop {
            if let Ok((rest, s)) = json_string(i) {
                items.push(s);
                i = rest;
            } else {
                match skip_value(i) {
                    Some(rest) => {
                        all_strings = false;
                        i = rest;
                    }
                    None => return JsonForm::NotJson,
                }
            }
            i = ws(i);
            if let Some(rest) = i.strip_prefix(',') {
                i = ws(rest);
            } else if let Some(rest) = i.strip_prefix(']') {
                i = rest;
                break;
            } else {
                return JsonForm::NotJson;
            }
        }
    }
    if !ws(i).is_empty() {
        return JsonForm::NotJson;
    }
    if all_strings {
        JsonForm::Strings(items)
    } else {
        JsonForm::NotStringArray
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonForm {
        JsonForm::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(parse_json_array(r#"["a", "b c"]"#), strings(&["a", "b c"]));
        assert_eq!(parse_json_array("[]"), strings(&[]));
        assert_eq!(parse_json_array("  [ \"x\" ]  \n"), strings(&["x"]));
        assert_eq!(
            parse_json_array(r#"["\" \\ \/ \b \f \n \r \t \u0000"]"#),
            strings(&["\" \\ / \u{8} \u{c} \n \r \t \0"])
        );
        assert_eq!(parse_json_array(r#"["\ud83d\ude00", "\ud800x"]"#), strings(&["😀", "\u{FFFD}x"]));
    }

    #[test]
    fn shell_form_fallbacks() {
        for t in
            ["['a']", "[\"a\"] trailing", "[\"a\",]", "[\"a\"", "[\"a\tb\"]", "echo hi", "[1e999]", "", "[\"\\x\"]"]
        {
            assert_eq!(parse_json_array(t), JsonForm::NotJson, "{t}");
        }
    }

    #[test]
    fn non_string_elements() {
        for t in ["[1]", "[\"a\", [\"b\"]]", "[null]", "[{\"a\": [1, {\"b\": true}]}]", "[-0.5e3]"] {
            assert_eq!(parse_json_array(t), JsonForm::NotStringArray, "{t}");
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("[{}{}]", "[".repeat(200_000), "]".repeat(200_000));
        assert_eq!(parse_json_array(&deep), JsonForm::NotJson);
        let ok = format!("[{}{}]", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse_json_array(&ok), JsonForm::NotStringArray);
    }
}
