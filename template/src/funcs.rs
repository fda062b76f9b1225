//! Functions: Go's builtins (`and or not len index slice eq ne lt le gt ge print printf
//! println html js urlquery`) and docker's (`json join split title lower upper pad
//! truncate`, from docker/cli `templates/templates.go`).

use crate::value::{format_float, print_value, to_json, NilKind, Value};

const NAMES: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge", "print", "printf", "println",
    "html", "js", "urlquery", "json", "join", "split", "title", "lower", "upper", "pad", "truncate",
];

/// Is `name` a function templates may call?
pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args for {name}: want {n} got {}", args.len()));
    }
    Ok(())
}

fn string_arg(v: &Value) -> String {
    print_value(v)
}

fn int_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
        other => Err(format!("can't handle {} for index of type int", print_value(other))),
    }
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

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        // Go compares only values of one basic kind: an int with a float is an error.
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).ok_or_else(|| "incomparable values".to_string()),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if x == y => Ok(Ordering::Equal),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Int(_), Value::Int(_))
        | (Value::Float(_), Value::Float(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(a == b),
        (Value::Nil(_) | Value::NoValue, Value::Nil(_) | Value::NoValue) => Ok(true),
        (Value::Nil(_) | Value::NoValue, _) | (_, Value::Nil(_) | Value::NoValue) => Ok(false),
        (Value::List(_) | Value::Map(_) | Value::Struct(_), _)
        | (_, Value::List(_) | Value::Map(_) | Value::Struct(_)) => Err("non-comparable type".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
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

/// Calls function `name` with evaluated `args`.
pub fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    match name {
        "not" => {
            want(name, args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "and" | "or" => args.last().cloned().ok_or_else(|| format!("wrong number of args for {name}")),
        "len" => {
            want(name, args, 1)?;
            match &args[0] {
                Value::String(s) => Ok(Value::from(s.len())),
                Value::List(l) => Ok(Value::from(l.len())),
                Value::Map(m) => Ok(Value::from(m.len())),
                Value::Nil(NilKind::List | NilKind::Map) => Ok(Value::Int(0)),
                other => Err(format!("len of type {}", other.type_name())),
            }
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            };
            let mut v = first.clone();
            for k in keys {
                v = match &v {
                    Value::List(l) => {
                        let i = int_arg(k)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| l.get(i))
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    Value::Map(m) => match m.get(&string_arg(k)) {
                        Some(x) => x.clone(),
                        // A map of strings (labels) gives "" for a missing key, as Go's
                        // map[string]string does.
                        None if m.values().all(|x| matches!(x, Value::String(_))) => Value::String(String::new()),
                        None => Value::NoValue,
                    },
                    Value::Nil(NilKind::Map) => Value::String(String::new()),
                    Value::Struct(_) => return Err("can't index item of type struct".into()),
                    Value::Nil(_) | Value::NoValue => return Err("index of untyped nil".into()),
                    other => return Err(format!("can't index item of type {}", other.type_name())),
                };
            }
            Ok(v)
        }
        "slice" => {
            let Some((first, idx)) = args.split_first() else {
                return Err("wrong number of args for slice".into());
            };
            let idx: Vec<i64> = idx.iter().map(int_arg).collect::<Result<_, _>>()?;
            let len = match first {
                Value::String(s) => s.len(),
                Value::List(l) => l.len(),
                other => return Err(format!("can't slice item of type {}", other.type_name())),
            } as i64;
            let from = idx.first().copied().unwrap_or(0);
            let to = idx.get(1).copied().unwrap_or(len);
            if from < 0 || to < from || to > len {
                return Err(format!("index out of range: {from}:{to}"));
            }
            Ok(match first {
                Value::String(s) => Value::String(s.get(from as usize..to as usize).unwrap_or_default().to_string()),
                Value::List(l) => Value::List(l[from as usize..to as usize].to_vec()),
                _ => Value::NoValue,
            })
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &args[1..] {
                if eq(&args[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(name, args, 2)?;
            Ok(Value::Bool(!eq(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, args, 2)?;
            let o = compare(&args[0], &args[1])?;
            use std::cmp::Ordering::*;
            Ok(Value::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "print" => Ok(Value::String(sprint(args))),
        "println" => {
            let mut s = args.iter().map(print_value).collect::<Vec<_>>().join(" ");
            s.push('\n');
            Ok(Value::String(s))
        }
        "printf" => {
            let Some((fmt, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            Ok(Value::String(sprintf(&string_arg(fmt), rest)))
        }
        "html" => Ok(Value::String(html_escape(&sprint(args)))),
        "js" => Ok(Value::String(js_escape(&sprint(args)))),
        "urlquery" => Ok(Value::String(query_escape(&sprint(args)))),
        "json" => {
            want(name, args, 1)?;
            Ok(Value::String(to_json(&args[0], false)))
        }
        "join" => {
            want(name, args, 2)?;
            let items: Vec<String> = match &args[0] {
                Value::List(l) => l.iter().map(print_value).collect(),
                Value::Nil(_) => vec![],
                other => return Err(format!("wrong type for value; expected []string; got {}", other.type_name())),
            };
            Ok(Value::String(items.join(&string_arg(&args[1]))))
        }
        "split" => {
            want(name, args, 2)?;
            let s = string_arg(&args[0]);
            let sep = string_arg(&args[1]);
            let parts: Vec<String> = if sep.is_empty() {
                s.chars().map(String::from).collect()
            } else {
                s.split(sep.as_str()).map(String::from).collect()
            };
            Ok(Value::List(parts.into_iter().map(Value::String).collect()))
        }
        "title" => {
            want(name, args, 1)?;
            Ok(Value::String(title(&string_arg(&args[0]))))
        }
        "lower" => {
            want(name, args, 1)?;
            Ok(Value::String(string_arg(&args[0]).to_lowercase()))
        }
        "upper" => {
            want(name, args, 1)?;
            Ok(Value::String(string_arg(&args[0]).to_uppercase()))
        }
        "pad" => {
            want(name, args, 3)?;
            let (pre, post) = (int_arg(&args[1])?.max(0) as usize, int_arg(&args[2])?.max(0) as usize);
            Ok(Value::String(format!("{}{}{}", " ".repeat(pre), string_arg(&args[0]), " ".repeat(post))))
        }
        "truncate" => {
            want(name, args, 2)?;
            let s = string_arg(&args[0]);
            let n = int_arg(&args[1])?.max(0) as usize;
            Ok(Value::String(s.chars().take(n).collect()))
        }
        other => Err(format!("function {other:?} not defined")),
    }
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
        let (mut minus, mut plus, mut zero, mut space, mut sharp) = (false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<usize> {
            if chars.peek() == Some(&'*') {
                chars.next();
                let v = args.get(next).and_then(|a| int_arg(a).ok()).map(|i| i.max(0) as usize);
                next += 1;
                return v;
            }
            let mut s = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                s.push(d);
                chars.next();
            }
            s.parse().ok()
        };
        let width = num(&mut chars);
        let prec = if chars.peek() == Some(&'.') {
            chars.next();
            Some(num(&mut chars).unwrap_or(0))
        } else {
            None
        };
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let body = match (verb, arg) {
            ('d', Value::Int(i)) => sign(i.to_string(), plus, space),
            ('x', Value::Int(i)) => format!("{}{:x}", if sharp { "0x" } else { "" }, i),
            ('X', Value::Int(i)) => format!("{}{:X}", if sharp { "0X" } else { "" }, i),
            ('o', Value::Int(i)) => format!("{i:o}"),
            ('b', Value::Int(i)) => format!("{i:b}"),
            ('c', Value::Int(i)) => char::from_u32(*i as u32).map(String::from).unwrap_or_default(),
            ('f' | 'F', Value::Float(_) | Value::Int(_)) => {
                sign(format!("{:.*}", prec.unwrap_or(6), float_of(arg)), plus, space)
            }
            ('e', Value::Float(_) | Value::Int(_)) => {
                let s = format!("{:.*e}", prec.unwrap_or(6), float_of(arg));
                let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                sign(format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()), plus, space)
            }
            ('g' | 'v', Value::Float(f)) => sign(format_float(*f), plus, space),
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
            ('d', v) => format!("%!d({}={})", go_type(v), print_value(v)),
            (verb, v) => format!("%!{verb}({}={})", go_type(v), print_value(v)),
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.push_str(&" ".repeat(pad));
                } else if zero && matches!(verb, 'd' | 'f' | 'x' | 'X' | 'e' | 'g' | 'o' | 'b') {
                    let (s, digits) = match body.strip_prefix('-') {
                        Some(d) => ("-", d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(s);
                    out.push_str(&"0".repeat(pad));
                    out.push_str(digits);
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
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

fn float_of(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn sign(s: String, plus: bool, space: bool) -> String {
    if s.starts_with('-') {
        s
    } else if plus {
        format!("+{s}")
    } else if space {
        format!(" {s}")
    } else {
        s
    }
}

fn go_type(v: &Value) -> &'static str {
    v.type_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn docker_functions() {
        assert_eq!(call("join", &[Value::strings(&["a", "b"], false), s(",")]).unwrap(), s("a,b"));
        assert_eq!(call("split", &[s("a:b:c"), s(":")]).unwrap(), Value::strings(&["a", "b", "c"], false));
        assert_eq!(call("title", &[s("hello world")]).unwrap(), s("Hello World"));
        assert_eq!(call("upper", &[s("abc")]).unwrap(), s("ABC"));
        assert_eq!(call("lower", &[s("ABC")]).unwrap(), s("abc"));
        assert_eq!(call("pad", &[s("x"), Value::Int(2), Value::Int(1)]).unwrap(), s("  x "));
        assert_eq!(call("truncate", &[s("abcdef"), Value::Int(3)]).unwrap(), s("abc"));
        assert_eq!(
            call("json", &[Value::map([("b", Value::Int(1)), ("a", s("<"))])]).unwrap(),
            s(r#"{"a":"<","b":1}"#)
        );
        assert_eq!(call("println", &[s("a"), Value::Int(1)]).unwrap(), s("a 1\n"));
        assert_eq!(call("print", &[Value::Int(1), Value::Int(2), s("x")]).unwrap(), s("1 2x"));
        assert_eq!(call("len", &[Value::strings(&["a"], false)]).unwrap(), Value::Int(1));
        assert_eq!(call("eq", &[Value::Int(1), Value::Int(2), Value::Int(1)]).unwrap(), Value::Bool(true));
        assert!(call("lt", &[Value::Int(1), s("x")]).is_err());
        assert!(call("lt", &[Value::Int(1), Value::Float(2.5)]).is_err(), "Go refuses int < float");
        assert!(call("eq", &[Value::Int(1), Value::Float(1.0)]).is_err());
        assert_eq!(call("le", &[Value::Float(1.5), Value::Float(2.5)]).unwrap(), Value::Bool(true));
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(
            sprintf(
                "%s-%d-%5.2f-%q-%-4s|-%03d-%x-%t-%%",
                &[
                    s("a"),
                    Value::Int(7),
                    Value::Float(1.23456),
                    s("q"),
                    s("ab"),
                    Value::Int(5),
                    Value::Int(255),
                    Value::Bool(true)
                ]
            ),
            "a-7- 1.23-\"q\"-ab  |-005-ff-true-%"
        );
        assert_eq!(sprintf("%v %v", &[Value::strings(&["x"], false)]), "[x] %!v(MISSING)");
        assert_eq!(sprintf("%.3s", &[s("abcdef")]), "abc");
    }
}
