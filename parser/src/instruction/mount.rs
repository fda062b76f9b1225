//! `RUN --mount=…`: the mount specification, read as BuildKit reads it.

use super::flags::{split_csv, CsvError};
use super::FromRef;
use serde::Serialize;

/// A `--mount` specification BuildKit refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error("unsupported mount type {0:?}")]
    Type(String),
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    /// A boolean field that is not true/false/1/0.
    #[error("invalid value for {key}: {value}")]
    Bool { key: String, value: String },
    /// A number field (mode, uid, gid) that is not a number.
    #[error("invalid value for {key}: {value}")]
    Number {
        key: String,
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    /// `size=` that is not a size; the whole field.
    #[error("invalid value for size: {0}")]
    Size(String),
    #[error("unsupported sharing value {0:?}")]
    Sharing(String),
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey { key: String, field: String },
    /// A secret with neither `id`, `source` nor `target`.
    #[error("one of source, target required")]
    SecretId,
    #[error("ssh does not support source")]
    SshSource,
    #[error("mount destination/target missing")]
    NoTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// A `RUN --mount=...` specification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub typ: MountType,
    /// `from=`: a stage, an image or a named context whose files the mount shows.
    pub from: Option<FromRef>,
    pub source: Option<String>,
    /// As written; empty for a secret or an ssh socket without one (the builder puts them
    /// where BuildKit does).
    pub target: String,
    pub read_only: bool,
    /// A cache's id, a secret's id (`id`, `src` or the target's base name), an ssh
    /// agent's id (`default`).
    pub id: Option<String>,
    /// A secret given as this environment variable (and as a file only with a target).
    pub env: Option<String>,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub required: bool,
    /// The text as written, for printing and cache keys.
    pub spec: String,
}

pub(crate) fn parse_mount(spec: &str) -> Result<Mount, MountError> {
    let mut m = Mount {
        typ: MountType::Bind,
        from: None,
        source: None,
        target: String::new(),
        read_only: true,
        id: None,
        env: None,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        spec: spec.to_string(),
    };
    let fields = split_csv(spec)?;
    // The type decides the defaults, so read it first.
    for f in &fields {
        if let Some((k, v)) = f.split_once('=') {
            if k.trim().eq_ignore_ascii_case("type") {
                m.typ = match v.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(MountError::Type(v.to_string())),
                };
            }
        }
    }
    m.read_only = matches!(m.typ, MountType::Bind | MountType::Secret | MountType::Ssh);
    let parse_bool = |k: &str, v: Option<&str>| -> Result<bool, MountError> {
        match v.map(str::to_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(MountError::Bool { key: k.to_string(), value: other.to_string() }),
        }
    };
    let parse_u32 = |k: &str, v: &str, radix: u32| -> Result<u32, MountError> {
        u32::from_str_radix(v, radix).map_err(|source| MountError::Number {
            key: k.to_string(),
            value: v.to_string(),
            source,
        })
    };
    for f in &fields {
        let f = f.trim();
        if f.is_empty() {
            continue;
        }
        let (k, v) = match f.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (f.to_lowercase(), None),
        };
        let need = || v.ok_or_else(|| MountError::NotKeyValue(f.to_string()));
        match k.as_str() {
            "type" => {}
            "from" => m.from = Some(FromRef::new(need()?)),
            "source" | "src" => m.source = Some(need()?.to_string()),
            "target" | "dst" | "destination" => m.target = need()?.to_string(),
            "readonly" | "ro" => m.read_only = parse_bool(&k, v)?,
            "readwrite" | "rw" => m.read_only = !parse_bool(&k, v)?,
            "required" => m.required = parse_bool(&k, v)?,
            "id" => m.id = Some(need()?.to_string()),
            "sharing" => {
                m.sharing = match need()?.to_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => return Err(MountError::Sharing(other.to_string())),
                }
            }
            "mode" => m.mode = Some(parse_u32(&k, need()?, 8)?),
            "uid" => m.uid = Some(parse_u32(&k, need()?, 10)?),
            "gid" => m.gid = Some(parse_u32(&k, need()?, 10)?),
            "size" => m.size = Some(ram_in_bytes(need()?).ok_or_else(|| MountError::Size(f.to_string()))?),
            "env" => m.env = Some(need()?.to_string()),
            _ => return Err(MountError::UnknownKey { key: k, field: f.to_string() }),
        }
    }
    match m.typ {
        MountType::Secret => {
            // BuildKit: `src` names the secret too, else the target's base name does.
            let base = m.target.trim_end_matches('/').rsplit('/').next().filter(|b| !b.is_empty()).map(String::from);
            let id = m.source.clone().or(m.id.clone()).or(base).ok_or(MountError::SecretId)?;
            m.id = Some(id);
        }
        MountType::Ssh => {
            if m.source.is_some() {
                return Err(MountError::SshSource);
            }
            m.id.get_or_insert_with(|| "default".into());
        }
        _ if m.target.is_empty() => return Err(MountError::NoTarget),
        _ => {}
    }
    Ok(m)
}

/// docker's `units.RAMInBytes`: a number with an optional binary unit (`64m`, `1GiB`).
fn ram_in_bytes(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let digits = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().trim_end_matches('b').trim_end_matches('i');
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}
