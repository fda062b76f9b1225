//! The values templates run on: JSON-like, with docker's struct/map distinction kept.
//!
//! Go templates treat a struct (fields in declaration order; an unknown field is an
//! error) differently from a map (keys sorted; an unknown key is `<no value>`), and print
//! a nil slice as `[]` but a nil pointer as `<nil>`. Docker's inspect output and its
//! formatter contexts are structs; labels are maps. [`Value`] keeps those differences so a
//! template written for docker prints what docker prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::funcs::FuncError;

/// What a nil stands for: it prints and compares as Go's nil of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NilKind {
    /// A nil pointer or interface: `<nil>`.
    Pointer,
    /// A nil slice: `[]`.
    List,
    /// A nil map: `map[]`.
    Map,
    /// A nil pointer of an `omitempty` field: `<nil>` in templates, left out of its
    /// struct's JSON (docker's `State.Health` of a container without a check).
    Omitted,
}

/// A method of a formatter context, called with the template's arguments
/// (`{{.Label "com.example"}}`).
pub type Method = Arc<dyn Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// A template value.
#[derive(Clone)]
pub enum Value {
    /// A missing map entry: prints `<no value>`.
    NoValue,
    Nil(NilKind),
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    /// Keys sorted, as Go ranges over and prints maps.
    Map(BTreeMap<String, Value>),
    /// Fields in order.
    Struct(Vec<(String, Value)>),
    Method(Method),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Method(_) => f.write_str("Method"),
            v => f.write_str(&to_json(v, false)),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => (*a as f64) == *b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Nil(_), Value::Nil(_)) | (Value::NoValue, Value::NoValue) => true,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Struct(a), Value::Struct(b)) => a == b,
            _ => false,
        }
    }
}

impl Value {
    /// A struct from `(field, value)` pairs, in order.
    pub fn object<K: Into<String>>(fields: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Struct(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list of strings (a nil list when empty and `nil_if_empty`).
    pub fn strings<S: AsRef<str>>(items: &[S], nil_if_empty: bool) -> Value {
        if items.is_empty() && nil_if_empty {
            return Value::Nil(NilKind::List);
        }
        Value::List(items.iter().map(|s| Value::String(s.as_ref().to_string())).collect())
    }

    /// A method value.
    pub fn method(f: impl Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync + 'static) -> Value {
        Value::Method(Arc::new(f))
    }

    /// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::NoValue | Value::Nil(_) => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) | Value::Method(_) => true,
        }
    }

    /// The Go type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::NoValue => "<no value>",
            Value::Nil(_) => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Struct(_) => "struct",
            Value::Method(_) => "func",
        }
    }

    /// A field of a struct or an entry of a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Struct(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// The string inside, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::String(s.clone())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<u64> for Value {
    fn from(i: u64) -> Value {
        Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}
impl From<usize> for Value {
    fn from(i: usize) -> Value {
        Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

/// JSON objects become maps (as docker's raw-JSON fallback sees them), `null` a nil.
impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil(NilKind::Pointer),
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), Value::from(v))).collect()),
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Value {
        Value::from(&v)
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)` with `%v`'s exponent
/// threshold of 21 digits).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return "0".into();
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..21).contains(&exp) {
        // Shortest repr in exponent form: 1e+21, 1.5e-05.
        let s = format!("{f:e}");
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{f}");
    s.strip_suffix(".0").map(String::from).unwrap_or(s)
}

/// How text/template prints a value (`fmt.Print` of it).
pub fn print_value(v: &Value) -> String {
    let mut out = String::new();
    print_into(&mut out, v, true);
    out
}

fn print_into(out: &mut String, v: &Value, top: bool) {
    match v {
        Value::NoValue => out.push_str("<no value>"),
        Value::Nil(NilKind::Pointer | NilKind::Omitted) => out.push_str("<nil>"),
        Value::Nil(NilKind::List) => out.push_str("[]"),
        Value::Nil(NilKind::Map) => out.push_str("map[]"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        Value::String(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_into(out, e, false);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_into(out, e, false);
            }
            out.push(']');
        }
        Value::Struct(f) => {
            // docker's structs are reached through pointers; fmt prints &{...} below the top.
            if !top {
                out.push('&');
            }
            out.push('{');
            for (i, (_, e)) in f.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_into(out, e, false);
            }
            out.push('}');
        }
        Value::Method(_) => out.push_str("<func>"),
    }
}

/// JSON as Go's encoding/json writes it: compact, or with `indent` per level (docker's
/// inspect uses four spaces). `escape_html` escapes `<`, `>` and `&` as Go does by
/// default (inspect does; the `json` template function does not).
pub fn to_json_with(v: &Value, indent: Option<&str>, escape_html: bool) -> String {
    let mut out = String::new();
    json_into(&mut out, v, indent, escape_html, 0);
    out
}

/// Compact JSON without HTML escaping (docker's `{{json .}}`).
pub fn to_json(v: &Value, escape_html: bool) -> String {
    to_json_with(v, None, escape_html)
}

fn json_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_into(out: &mut String, v: &Value, indent: Option<&str>, esc: bool, depth: usize) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(ind);
            }
        }
    };
    let colon = if indent.is_some() { ": " } else { ":" };
    match v {
        Value::NoValue | Value::Nil(_) | Value::Method(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e21 {
                let _ = write!(out, "{}", *f as i64);
            } else {
                let _ = write!(out, "{f}");
            }
        }
        Value::String(s) => json_string(out, s, esc),
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                json_into(out, e, indent, esc, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Map(_) | Value::Struct(_) => {
            // Methods that take arguments are not fields of the JSON (Go marshals fields).
            let entries: Vec<(&String, &Value)> = match v {
                Value::Map(m) => m.iter().collect(),
                Value::Struct(f) => f
                    .iter()
                    .filter(|(_, v)| !matches!(v, Value::Method(_) | Value::Nil(NilKind::Omitted)))
                    .map(|(k, v)| (k, v))
                    .collect(),
                _ => vec![],
            };
            if entries.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, e)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                json_string(out, k, esc);
                out.push_str(colon);
                json_into(out, e, indent, esc, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_go() {
        let v = Value::object([
            ("A", Value::strings(&["x", "y"], false)),
            ("B", Value::Nil(NilKind::List)),
            ("C", Value::map([("z", Value::Int(1)), ("a", Value::Bool(true))])),
        ]);
        assert_eq!(print_value(&v), "{[x y] [] map[a:true z:1]}");
        assert_eq!(print_value(&Value::Nil(NilKind::Pointer)), "<nil>");
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(2.0), "2");
        assert_eq!(format_float(1e21), "1e+21");
        assert_eq!(format_float(0.00001), "1e-05");
    }

    #[test]
    fn json_like_go() {
        let omitted = Value::object([("A", Value::Int(1)), ("H", Value::Nil(NilKind::Omitted))]);
        assert_eq!(to_json(&omitted, false), r#"{"A":1}"#);
        assert_eq!(print_value(&Value::Nil(NilKind::Omitted)), "<nil>");
        let v = Value::object([("Id", "a<b".into()), ("L", Value::List(vec![])), ("N", Value::Nil(NilKind::Map))]);
        assert_eq!(to_json(&v, false), r#"{"Id":"a<b","L":[],"N":null}"#);
        assert_eq!(to_json(&v, true), r#"{"Id":"a\u003cb","L":[],"N":null}"#);
        assert_eq!(
            to_json_with(&Value::object([("A", Value::List(vec![1i64.into()]))]), Some("    "), false),
            "{\n    \"A\": [\n        1\n    ]\n}"
        );
    }
}
