//! docker's template functions (docker/cli `templates/templates.go`): `json`, `join`,
//! `split`, `title`, `lower`, `upper`, `pad` and `truncate`.

use super::{int_arg, string_arg, want, FuncError};
use crate::value::{print_value, to_json, Value};

/// `json .`: compact JSON without HTML escaping.
pub(super) fn json(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    want(name, args, 1)?;
    Ok(Value::String(to_json(&args[0], false)))
}

/// `join LIST SEP`.
pub(super) fn join(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    want(name, args, 2)?;
    let items: Vec<String> = match &args[0] {
        Value::List(l) => l.iter().map(print_value).collect(),
        Value::Nil(_) => vec![],
        other => return Err(FuncError::NotStringList(other.type_name())),
    };
    Ok(Value::String(items.join(&string_arg(&args[1]))))
}

/// `split S SEP`: Go's `strings.Split` (an empty separator splits into characters).
pub(super) fn split(name: &str, args: &[Value]) -> Result<Value, FuncError> {
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

/// `title`, `lower` and `upper`.
pub(super) fn case(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    want(name, args, 1)?;
    let s = string_arg(&args[0]);
    Ok(Value::String(match name {
        "title" => title(&s),
        "lower" => s.to_lowercase(),
        _ => s.to_uppercase(),
    }))
}

/// `pad S BEFORE AFTER`: spaces around `S`.
pub(super) fn pad(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    want(name, args, 3)?;
    let (pre, post) = (int_arg(&args[1])?.max(0) as usize, int_arg(&args[2])?.max(0) as usize);
    Ok(Value::String(format!("{}{}{}", " ".repeat(pre), string_arg(&args[0]), " ".repeat(post))))
}

/// `truncate S N`: the first `N` characters.
pub(super) fn truncate(name: &str, args: &[Value]) -> Result<Value, FuncError> {
    want(name, args, 2)?;
    let s = string_arg(&args[0]);
    let n = int_arg(&args[1])?.max(0) as usize;
    Ok(Value::String(s.chars().take(n).collect()))
}

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
