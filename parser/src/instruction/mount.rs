//! `RUN --mount=…`: the mount specification, read as BuildKit reads it.

use super::flags::split_csv;
use super::FromRef;
use serde::Serialize;

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
    pub target: String,
    pub read_only: bool,
    pub id: Option<String>,
    pub sharing: Sharing,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub required: bool,
    /// The text as written, for printing and cache keys.
    pub spec: String,
}

pub(crate) fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut m = Mount {
        typ: MountType::Bind,
        from: None,
        source: None,
        target: String::new(),
        read_only: true,
        id: None,
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
                    _ => return Err(format!("unsupported mount type {v:?}")),
                };
            }
        }
    }
    m.read_only = matches!(m.typ, MountType::Bind | MountType::Secret | MountType::Ssh);
    let parse_bool = |k: &str, v: Option<&str>| -> Result<bool, String> {
        match v.map(str::to_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!("invalid value for {k}: {other}")),
        }
    };
    let parse_u32 = |k: &str, v: &str, radix: u32| -> Result<u32, String> {
        u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {k}: {v}"))
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
        let need = || v.ok_or_else(|| format!("invalid field '{f}' must be a key=value pair"));
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
                    other => return Err(format!("unsupported sharing value {other:?}")),
                }
            }
            "mode" => m.mode = Some(parse_u32(&k, need()?, 8)?),
            "uid" => m.uid = Some(parse_u32(&k, need()?, 10)?),
            "gid" => m.gid = Some(parse_u32(&k, need()?, 10)?),
            "size" => m.size = Some(need()?.parse().map_err(|_| format!("invalid value for size: {f}"))?),
            "env" => {}
            _ => return Err(format!("unexpected key '{k}' in '{f}'")),
        }
    }
    match m.typ {
        MountType::Secret if m.target.is_empty() => {
            let id = m.id.clone().or_else(|| m.source.clone()).ok_or("secret mount requires an id or target")?;
            m.target = format!("/run/secrets/{id}");
        }
        MountType::Ssh if m.target.is_empty() => m.target = "/run/buildkit/ssh_agent.0".into(),
        _ if m.target.is_empty() => return Err("mount destination/target missing".into()),
        _ => {}
    }
    Ok(m)
}
