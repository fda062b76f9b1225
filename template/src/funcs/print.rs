//! Printing: Go's `print`, `println` and `printf` (a `fmt.Sprintf` for the verbs templates
//! use) and the escapers `html`, `js` and `urlquery`.

use super::{int_arg, string_arg, FuncError};
use crate::value::{format_float, print_value, Value};

pub(super) fn print(_: &str, args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(sprint(args)))
}

/// Go's `fmt.Sprintln`: operands always separated by a space, then a newline.
pub(super) fn println(_: &str, args: &[Value]) -> Result<Value, FuncError> {
    let mut s = args.iter().map(print_value).collect::<Vec<_>>().join(" ");
    s.push('\n');
    Ok(Value::String(s))
}

pub(super) fn printf(_: &str, args: &[Value]) -> Result<Value, FuncError> {
    let Some((fmt, rest)) = args.split_first() else {
        return Err(FuncError::NoArgs("printf"));
    };
    Ok(Value::String(sprintf(&string_arg(fmt), rest)))
}

/// `html`, `js` and `urlquery`: the arguments printed as `print` does, then escaped.
pub(super) fn escape(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    let s = sprint(args);
    Ok(Value::String(match name {
        "html" => html_escape(&s),
        "js" => js_escape(&s),
        _ => query_escape(&s),
    }))
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&print_value(a));
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
fn js_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %q %d %x %X %o %b %f %e %g %t
/// %c %%`, with flags `-+ 0#`, width and precision (`*` too).
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = Spec::parse(&mut chars, args, &mut next) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if spec.verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{}(MISSING)", spec.verb));
            continue;
        };
        next += 1;
        spec.pad_into(&mut out, &spec.format(arg));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        out.push_str(
            &args[next..].iter().map(|a| format!("{}={}", go_type(a), print_value(a))).collect::<Vec<_>>().join(", "),
        );
        out.push(')');
    }
    out
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// One `%…` directive: its flags, width, precision and verb.
#[derive(Debug, Default, PartialEq)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
    verb: char,
}

impl Spec {
    /// Reads the directive that follows a `%`; a `*` width or precision takes the argument
    /// at `next`. None: the format ended before the verb.
    fn parse(chars: &mut Chars<'_>, args: &[Value], next: &mut usize) -> Option<Spec> {
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = count(chars, args, next);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(count(chars, args, next).unwrap_or(0));
        }
        spec.verb = chars.next()?;
        Some(spec)
    }

    /// `arg` as the verb prints it (before padding to the width); a verb that does not fit
    /// the argument's type prints as Go's `%!d(string=x)`.
    fn format(&self, arg: &Value) -> String {
        let (verb, prec) = (self.verb, self.prec);
        match (verb, arg) {
            ('d', Value::Int(i)) => self.sign(i.to_string()),
            ('x', Value::Int(i)) => format!("{}{:x}", if self.sharp { "0x" } else { "" }, i),
            ('X', Value::Int(i)) => format!("{}{:X}", if self.sharp { "0X" } else { "" }, i),
            ('o', Value::Int(i)) => format!("{i:o}"),
            ('b', Value::Int(i)) => format!("{i:b}"),
            ('c', Value::Int(i)) => char::from_u32(*i as u32).map(String::from).unwrap_or_default(),
            ('f' | 'F', Value::Float(_) | Value::Int(_)) => {
                self.sign(format!("{:.*}", prec.unwrap_or(6), float_of(arg)))
            }
            ('e', Value::Float(_) | Value::Int(_)) => self.sign(exponent(float_of(arg), prec.unwrap_or(6))),
            ('g' | 'v', Value::Float(f)) => self.sign(format_float(*f)),
            ('t', Value::Bool(b)) => b.to_string(),
            ('q', Value::String(s)) => format!("{s:?}"),
            ('q', Value::Int(i)) => format!("{:?}", char::from_u32(*i as u32).unwrap_or('?')),
            ('s' | 'v', v) => {
                let s = print_value(v);
                match prec {
                    Some(p) if verb == 's' || matches!(v, Value::String(_)) => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('X', Value::String(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
            (verb, v) => format!("%!{verb}({}={})", go_type(v), print_value(v)),
        }
    }

    /// A number with the sign the `+` or ` ` flag asks for.
    fn sign(&self, s: String) -> String {
        if s.starts_with('-') {
            s
        } else if self.plus {
            format!("+{s}")
        } else if self.space {
            format!(" {s}")
        } else {
            s
        }
    }

    /// Appends `body` padded to the width: spaces after it (`-`), zeros after its sign
    /// (`0`, numeric verbs) or spaces before it.
    fn pad_into(&self, out: &mut String, body: &str) {
        let len = body.chars().count();
        let pad = match self.width {
            Some(w) if w > len => w - len,
            _ => return out.push_str(body),
        };
        if self.minus {
            out.push_str(body);
            out.push_str(&" ".repeat(pad));
        } else if self.zero && matches!(self.verb, 'd' | 'f' | 'x' | 'X' | 'e' | 'g' | 'o' | 'b') {
            let (s, digits) = match body.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("", body),
            };
            out.push_str(s);
            out.push_str(&"0".repeat(pad));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(body);
        }
    }
}

/// A width or precision: digits, or `*` (the argument at `next`, which it consumes).
fn count(chars: &mut Chars<'_>, args: &[Value], next: &mut usize) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let v = args.get(*next).and_then(|a| int_arg(a).ok()).map(|i| i.max(0) as usize);
        *next += 1;
        return v;
    }
    let mut s = String::new();
    while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
        s.push(d);
        chars.next();
    }
    s.parse().ok()
}

/// `%e`: Go writes the exponent with a sign and at least two digits (`1.5e+00`).
fn exponent(f: f64, prec: usize) -> String {
    let s = format!("{f:.prec$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn float_of(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn go_type(v: &Value) -> &'static str {
    v.type_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(directive: &str, args: &[Value]) -> (Option<Spec>, usize) {
        let mut next = 0;
        (Spec::parse(&mut directive.chars().peekable(), args, &mut next), next)
    }

    #[test]
    fn directives_parse() {
        let (s, used) = spec("-08.3f", &[]);
        let want = Spec { minus: true, zero: true, width: Some(8), prec: Some(3), verb: 'f', ..Spec::default() };
        assert_eq!((s, used), (Some(want), 0));
        // `*` takes an argument, and `.` alone is precision 0.
        let (s, used) = spec("*.d", &[Value::Int(5)]);
        assert_eq!((s, used), (Some(Spec { width: Some(5), prec: Some(0), verb: 'd', ..Spec::default() }), 1));
        assert_eq!(spec("+ #", &[]).0, None, "no verb");
        assert_eq!(sprintf("%5", &[]), "%!(NOVERB)");
        assert_eq!(sprintf("%d", &[Value::Int(1), Value::String("x".into())]), "1%!(EXTRA string=x)");
    }

    #[test]
    fn padding_and_signs() {
        let p = |directive: &str, v: Value| sprintf(directive, &[v]);
        assert_eq!(p("%05d", Value::Int(-42)), "-0042");
        assert_eq!(p("%-5d|", Value::Int(42)), "42   |");
        assert_eq!(p("%+d", Value::Int(3)), "+3");
        assert_eq!(p("% d", Value::Int(3)), " 3");
        assert_eq!(p("%.2e", Value::Float(1234.5)), "1.23e+03");
        assert_eq!(p("%e", Value::Int(0)), "0.000000e+00");
        assert_eq!(p("%#x", Value::Int(255)), "0xff");
        assert_eq!(p("%d", Value::String("x".into())), "%!d(string=x)");
    }

    #[test]
    fn escapers() {
        let e = |name: &str, s: &str| escape(name, &[Value::String(s.into())]).unwrap();
        assert_eq!(e("html", "<a href='x'>&"), Value::String("&lt;a href=&#39;x&#39;&gt;&amp;".into()));
        assert_eq!(e("js", "a'b\n<"), Value::String("a\\'b\\n\\u003C".into()));
        assert_eq!(e("urlquery", "a b&c"), Value::String("a+b%26c".into()));
    }
}
