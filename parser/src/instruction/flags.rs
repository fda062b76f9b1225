//! Instruction flags as BuildKit's `BFlags` reads them, and the value syntaxes flags use
//! (Go durations, CSV fields).

use crate::diagnostic::suggest;
use std::collections::BTreeMap;

/// A flag BuildKit's `BFlags` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("arg should start with -- : {0}")]
    NotAFlag(String),
    /// A flag the instruction does not have; the closest one it has, if any is close.
    #[error("unknown flag: {name}")]
    Unknown { name: String, suggestion: Option<&'static str> },
    #[error("duplicate flag specified: {0}")]
    Duplicate(String),
    #[error("missing a value on flag: {0}")]
    MissingValue(String),
    #[error("expecting boolean value for flag {name}, not: {value}")]
    NotBool { name: String, value: String },
}

/// A string Go's `time.ParseDuration` refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {duration:?}")]
    UnknownUnit { unit: String, duration: String },
}

/// A line Go's `encoding/csv` refuses: a quote that does not close or stands inside a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extraneous or missing \" in quoted-field: {0}")]
pub struct CsvError(pub String);

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum FlagType {
    Bool,
    Str,
    Strings,
}

/// Flags as BuildKit's `BFlags` reads them: `--name=value`, `--name` for booleans.
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    pub(crate) fn parse(words: &[String], defs: &[(&'static str, FlagType)]) -> Result<Flags, FlagError> {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for w in words {
            let Some(body) = w.strip_prefix("--") else {
                return Err(FlagError::NotAFlag(w.clone()));
            };
            if body.is_empty() {
                break;
            }
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(key, typ)) = defs.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = defs.iter().map(|(n, _)| *n).collect();
                return Err(FlagError::Unknown { name: name.to_string(), suggestion: suggest(name, &names) });
            };
            if values.contains_key(key) && typ != FlagType::Strings {
                return Err(FlagError::Duplicate(name.to_string()));
            }
            let v = match typ {
                FlagType::Bool => match value {
                    Some("") => return Err(FlagError::MissingValue(name.to_string())),
                    None => "true".to_string(),
                    Some(v) => match v.to_lowercase().as_str() {
                        l @ ("true" | "false") => l.to_string(),
                        _ => return Err(FlagError::NotBool { name: name.to_string(), value: v.to_string() }),
                    },
                },
                FlagType::Str | FlagType::Strings => match value {
                    None => return Err(FlagError::MissingValue(name.to_string())),
                    Some(v) => v.to_string(),
                },
            };
            values.entry(key).or_default().push(v);
        }
        Ok(Flags { values })
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }
    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, DurationError> {
    let err = || DurationError::Invalid(s.to_string());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err());
        }
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mult: f64 = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(DurationError::MissingUnit(s.to_string())),
            _ => return Err(DurationError::UnknownUnit { unit: unit.to_string(), duration: s.to_string() }),
        };
        let v: f64 = num.parse().map_err(|_| err())?;
        total += v * mult;
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    Ok(if neg { -(total.round() as i64) } else { total.round() as i64 })
}

/// Splits a line of comma-separated values as Go's `encoding/csv` does (quotes group,
/// `""` inside quotes is a quote).
pub(crate) fn split_csv(s: &str) -> Result<Vec<String>, CsvError> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut at_start = true;
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                in_quotes = true;
                at_start = false;
            }
            ',' => {
                out.push(std::mem::take(&mut field));
                at_start = true;
            }
            _ => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if in_quotes {
        return Err(CsvError(s.to_string()));
    }
    out.push(field);
    Ok(out)
}
