//! Functions: Go's builtins (`and or not len index slice eq ne lt le gt ge print printf
//! println html js urlquery`) and docker's (`json join split title lower upper pad
//! truncate`, from docker/cli `templates/templates.go`).
//!
//! [`call`] looks the name up in one table and runs the function of the name's family:
//! logic, collections and comparison here; printing and escaping (with [`sprintf`]) in
//! `print.rs`; docker's string functions in `docker.rs`.

mod docker;
mod print;

pub use print::sprintf;

use crate::value::{print_value, NilKind, Value};

/// Why a function (or a method of a value) refused its arguments, in Go's words; the
/// executor adds where (`error calling NAME: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FuncError {
    #[error("function {0:?} not defined")]
    NotDefined(String),
    #[error("wrong number of args for {name}: want {want} got {got}")]
    ArgCount { name: String, want: usize, got: usize },
    /// A function that takes one or more arguments (index, printf) called without any.
    #[error("wrong number of args for {0}: want at least 1 got 0")]
    NoArgs(&'static str),
    /// `and`, `or` or `slice` without arguments (Go's words for these say no more).
    #[error("wrong number of args for {0}")]
    Arity(String),
    #[error("wrong type for value; expected []string; got {0}")]
    NotStringList(&'static str),
    #[error("can't handle {0} for index of type int")]
    NotInt(String),
    #[error("len of type {0}")]
    NoLen(&'static str),
    /// An index or a `from:to` range outside the list or string.
    #[error("index out of range: {0}")]
    OutOfRange(String),
    #[error("can't index item of type {0}")]
    NotIndexable(&'static str),
    #[error("index of untyped nil")]
    IndexNil,
    #[error("can't slice item of type {0}")]
    NotSliceable(&'static str),
    #[error("incomparable values")]
    Incomparable,
    #[error("incompatible types for comparison")]
    IncompatibleTypes,
    #[error("non-comparable type")]
    NonComparable,
    #[error("missing argument for comparison")]
    MissingComparand,
}

type Result<T, E = FuncError> = std::result::Result<T, E>;

/// A function as templates call it: its name (a family shares one implementation) and its
/// evaluated arguments.
type Func = fn(&str, &[Value]) -> Result<Value>;

/// Every function templates may call, in Go's and docker's order.
const FUNCS: &[(&str, Func)] = &[
    ("and", and_or),
    ("or", and_or),
    ("not", not),
    ("len", len),
    ("index", index),
    ("slice", slice),
    ("eq", eq_any),
    ("ne", ne),
    ("lt", order),
    ("le", order),
    ("gt", order),
    ("ge", order),
    ("print", print::print),
    ("printf", print::printf),
    ("println", print::println),
    ("html", print::escape),
    ("js", print::escape),
    ("urlquery", print::escape),
    ("json", docker::json),
    ("join", docker::join),
    ("split", docker::split),
    ("title", docker::case),
    ("lower", docker::case),
    ("upper", docker::case),
    ("pad", docker::pad),
    ("truncate", docker::truncate),
];

/// Is `name` a function templates may call?
pub fn exists(name: &str) -> bool {
    FUNCS.iter().any(|(n, _)| *n == name)
}

/// Calls function `name` with evaluated `args`.
pub fn call(name: &str, args: &[Value]) -> Result<Value> {
    match FUNCS.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => f(name, args),
        None => Err(FuncError::NotDefined(name.to_string())),
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<()> {
    if args.len() != n {
        return Err(FuncError::ArgCount { name: name.to_string(), want: n, got: args.len() });
    }
    Ok(())
}

fn string_arg(v: &Value) -> String {
    print_value(v)
}

fn int_arg(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
        other => Err(FuncError::NotInt(print_value(other))),
    }
}

/// `and`/`or` with their arguments evaluated (the executor evaluates them lazily and
/// calls this only for the last).
fn and_or(name: &str, args: &[Value]) -> Result<Value> {
    args.last().cloned().ok_or_else(|| FuncError::Arity(name.to_string()))
}

fn not(name: &str, args: &[Value]) -> Result<Value> {
    want(name, args, 1)?;
    Ok(Value::Bool(!args[0].truthy()))
}

fn len(name: &str, args: &[Value]) -> Result<Value> {
    want(name, args, 1)?;
    match &args[0] {
        Value::String(s) => Ok(Value::from(s.len())),
        Value::List(l) => Ok(Value::from(l.len())),
        Value::Map(m) => Ok(Value::from(m.len())),
        Value::Nil(NilKind::List | NilKind::Map) => Ok(Value::Int(0)),
        other => Err(FuncError::NoLen(other.type_name())),
    }
}

/// `index X k1 k2…`: `X[k1][k2]…`.
fn index(_: &str, args: &[Value]) -> Result<Value> {
    let Some((first, keys)) = args.split_first() else {
        return Err(FuncError::NoArgs("index"));
    };
    let mut v = first.clone();
    for k in keys {
        v = index_one(&v, k)?;
    }
    Ok(v)
}

fn index_one(v: &Value, k: &Value) -> Result<Value> {
    Ok(match v {
        Value::List(l) => {
            let i = int_arg(k)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| l.get(i))
                .cloned()
                .ok_or_else(|| FuncError::OutOfRange(i.to_string()))?
        }
        Value::Map(m) => match m.get(&string_arg(k)) {
            Some(x) => x.clone(),
            // A map of strings (labels) gives "" for a missing key, as Go's
            // map[string]string does.
            None if m.values().all(|x| matches!(x, Value::String(_))) => Value::String(String::new()),
            None => Value::NoValue,
        },
        Value::Nil(NilKind::Map) => Value::String(String::new()),
        Value::Nil(_) | Value::NoValue => return Err(FuncError::IndexNil),
        other => return Err(FuncError::NotIndexable(other.type_name())),
    })
}

/// `slice X from to`: a substring or a sub-list.
fn slice(_: &str, args: &[Value]) -> Result<Value> {
    let Some((first, idx)) = args.split_first() else {
        return Err(FuncError::Arity("slice".to_string()));
    };
    let idx: Vec<i64> = idx.iter().map(int_arg).collect::<Result<_, _>>()?;
    let len = match first {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        other => return Err(FuncError::NotSliceable(other.type_name())),
    } as i64;
    let from = idx.first().copied().unwrap_or(0);
    let to = idx.get(1).copied().unwrap_or(len);
    if from < 0 || to < from || to > len {
        return Err(FuncError::OutOfRange(format!("{from}:{to}")));
    }
    Ok(match first {
        Value::String(s) => Value::String(s.get(from as usize..to as usize).unwrap_or_default().to_string()),
        Value::List(l) => Value::List(l[from as usize..to as usize].to_vec()),
        _ => Value::NoValue,
    })
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering> {
    use std::cmp::Ordering;
    match (a, b) {
        // Go compares only values of one basic kind: an int with a float is an error.
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).ok_or(FuncError::Incomparable),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if x == y => Ok(Ordering::Equal),
        _ => Err(FuncError::IncompatibleTypes),
    }
}

fn eq(a: &Value, b: &Value) -> Result<bool> {
    match (a, b) {
        (Value::Int(_), Value::Int(_))
        | (Value::Float(_), Value::Float(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(a == b),
        (Value::Nil(_) | Value::NoValue, Value::Nil(_) | Value::NoValue) => Ok(true),
        (Value::Nil(_) | Value::NoValue, _) | (_, Value::Nil(_) | Value::NoValue) => Ok(false),
        (Value::List(_) | Value::Map(_) | Value::Struct(_), _)
        | (_, Value::List(_) | Value::Map(_) | Value::Struct(_)) => Err(FuncError::NonComparable),
        _ => Err(FuncError::IncompatibleTypes),
    }
}

/// `eq a b c…`: is `a` equal to any of the others?
fn eq_any(_: &str, args: &[Value]) -> Result<Value> {
    if args.len() < 2 {
        return Err(FuncError::MissingComparand);
    }
    for b in &args[1..] {
        if eq(&args[0], b)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn ne(name: &str, args: &[Value]) -> Result<Value> {
    want(name, args, 2)?;
    Ok(Value::Bool(!eq(&args[0], &args[1])?))
}

/// `lt le gt ge`.
fn order(name: &str, args: &[Value]) -> Result<Value> {
    use std::cmp::Ordering::{Greater, Less};
    want(name, args, 2)?;
    let o = compare(&args[0], &args[1])?;
    Ok(Value::Bool(match name {
        "lt" => o == Less,
        "le" => o != Greater,
        "gt" => o == Greater,
        _ => o != Less,
    }))
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

    #[test]
    fn the_table_names_each_function_once() {
        let mut names: Vec<&str> = FUNCS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), 26);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 26);
        assert!(exists("truncate") && !exists("nosuch"));
        assert_eq!(call("nosuch", &[]).unwrap_err().to_string(), "function \"nosuch\" not defined");
        assert_eq!(call("not", &[]).unwrap_err().to_string(), "wrong number of args for not: want 1 got 0");
    }

    #[test]
    fn index_and_slice() {
        let labels = Value::map([("a", s("b"))]);
        assert_eq!(call("index", &[labels.clone(), s("a")]).unwrap(), s("b"));
        assert_eq!(call("index", &[labels, s("x")]).unwrap(), s(""), "map[string]string gives \"\"");
        assert_eq!(call("index", &[Value::Nil(NilKind::Map), s("x")]).unwrap(), s(""));
        assert_eq!(
            call("index", &[Value::strings(&["a"], false), Value::Int(3)]).unwrap_err().to_string(),
            "index out of range: 3"
        );
        assert_eq!(call("slice", &[s("abcdef"), Value::Int(1), Value::Int(3)]).unwrap(), s("bc"));
        assert_eq!(
            call("slice", &[s("abc"), Value::Int(2), Value::Int(1)]).unwrap_err().to_string(),
            "index out of range: 2:1"
        );
        assert_eq!(call("index", &[Value::object([("a", s("b"))]), s("a")]), Err(FuncError::NotIndexable("struct")));
        assert_eq!(
            call("index", &[]).unwrap_err().to_string(),
            "wrong number of args for index: want at least 1 got 0"
        );
        assert_eq!(call("and", &[]).unwrap_err().to_string(), "wrong number of args for and");
        assert_eq!(call("len", &[Value::Int(1)]).unwrap_err().to_string(), "len of type int");
        assert_eq!(call("eq", &[s("a")]), Err(FuncError::MissingComparand));
        assert_eq!(call("eq", &[Value::strings(&["a"], false), s("a")]), Err(FuncError::NonComparable));
    }
}
