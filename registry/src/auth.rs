//! Credentials and authentication: docker's `config.json` (read and written as docker
//! does, so `docker login` and `rbuild login` share it) and `WWW-Authenticate`
//! challenges (Basic, and Bearer with a token server).

use crate::error::{RegistryError, Result};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// The value of a `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// The key docker uses for Docker Hub in `auths`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home =
        std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker/config.json")
}

/// docker's client config file; fields rbuild does not use are kept as they are.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

fn config_err(path: &Path, detail: impl std::fmt::Display) -> RegistryError {
    RegistryError::Config { path: path.display().to_string(), detail: detail.to_string() }
}

/// The `auths` keys that may hold credentials for `registry`, most specific first.
fn keys_for(registry: &str) -> Vec<String> {
    if registry == "docker.io" {
        return vec![
            DOCKER_HUB_KEY.to_string(),
            "docker.io".into(),
            "index.docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v2/"),
        format!("https://{registry}/v1/"),
    ]
}

impl DockerConfig {
    /// Reads the file at `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let doc = match std::fs::read(path) {
            Ok(data) if data.iter().all(|b| b.is_ascii_whitespace()) => Map::new(),
            Ok(data) => match serde_json::from_slice::<Value>(&data).map_err(|e| config_err(path, e))? {
                Value::Object(m) => m,
                _ => return Err(config_err(path, "not a JSON object")),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(config_err(path, e)),
        };
        Ok(DockerConfig { path: path.to_path_buf(), doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored credentials for `registry` (a host, as in image names).
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        let Some(Value::Object(auths)) = self.doc.get("auths") else { return Ok(None) };
        for k in keys_for(registry) {
            let Some(Value::Object(entry)) = auths.get(&k) else { continue };
            if let Some(Value::String(a)) = entry.get("auth").filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|e| config_err(&self.path, format!("auths[{k}].auth: {e}")))?;
                let text = String::from_utf8(raw)
                    .map_err(|_| config_err(&self.path, format!("auths[{k}].auth is not UTF-8")))?;
                let (u, p) = text
                    .split_once(':')
                    .ok_or_else(|| config_err(&self.path, format!("auths[{k}].auth is not user:password")))?;
                return Ok(Some(Credentials { username: u.to_string(), password: p.to_string() }));
            }
            if let (Some(Value::String(u)), Some(Value::String(p))) = (entry.get("username"), entry.get("password")) {
                return Ok(Some(Credentials { username: u.clone(), password: p.clone() }));
            }
        }
        Ok(None)
    }

    /// Records `creds` for `registry`.
    pub fn set_credentials(&mut self, registry: &str, creds: &Credentials) {
        let key = keys_for(registry).remove(0);
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.username, creds.password));
        let auths = self.doc.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(m) = auths {
            m.insert(key, serde_json::json!({ "auth": auth }));
        }
    }

    /// Forgets the credentials for `registry`; false when there were none.
    pub fn remove_credentials(&mut self, registry: &str) -> bool {
        let Some(Value::Object(auths)) = self.doc.get_mut("auths") else { return false };
        let mut removed = false;
        for k in keys_for(registry) {
            removed |= auths.remove(&k).is_some();
        }
        removed
    }

    /// Writes the file atomically, readable by its owner only (it holds passwords).
    pub fn save(&self) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| config_err(&self.path, e))?;
        let tmp = dir.join(format!(".config.json.tmp-{}", std::process::id()));
        let data =
            serde_json::to_vec_pretty(&Value::Object(self.doc.clone())).map_err(|e| config_err(&self.path, e))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&data)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            config_err(&self.path, e)
        })
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses `Basic realm="x"` or `Bearer realm="…",service="…",scope="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") }),
        _ => None,
    }
}

/// `k="v", k2=v2` (quoted values may hold commas and escaped quotes).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == ',' || b[i].is_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != '=' && b[i] != ',' {
            i += 1;
        }
        let name: String = b[start..i].iter().collect::<String>().trim().to_string();
        if i >= b.len() || b[i] != '=' {
            continue;
        }
        i += 1;
        let mut value = String::new();
        if i < b.len() && b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != ',' {
                value.push(b[i]);
                i += 1;
            }
            value = value.trim().to_string();
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into())
            })
        );
        assert_eq!(
            parse_challenge("Bearer realm=http://x/t"),
            Some(Challenge::Bearer { realm: "http://x/t".into(), service: None, scope: None })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None, "a bearer challenge needs a realm");
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn config_round_trip_keeps_other_fields() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("d/config.json");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, r#"{"auths":{"other.example":{"auth":"dTpw"}},"psFormat":"table"}"#).unwrap();
        let mut c = DockerConfig::load(&p).unwrap();
        assert_eq!(
            c.credentials("other.example").unwrap(),
            Some(Credentials { username: "u".into(), password: "p".into() })
        );
        assert_eq!(c.credentials("127.0.0.1:5000").unwrap(), None);
        c.set_credentials("127.0.0.1:5000", &Credentials { username: "me".into(), password: "se:cret".into() });
        c.set_credentials("docker.io", &Credentials { username: "hub".into(), password: "x".into() });
        c.save().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("psFormat") && text.contains(DOCKER_HUB_KEY), "{text}");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let mut c = DockerConfig::load(&p).unwrap();
        assert_eq!(c.credentials("127.0.0.1:5000").unwrap().unwrap().password, "se:cret");
        assert_eq!(c.credentials("docker.io").unwrap().unwrap().username, "hub");
        assert!(c.remove_credentials("127.0.0.1:5000"));
        assert!(!c.remove_credentials("127.0.0.1:5000"));
        assert_eq!(c.credentials("127.0.0.1:5000").unwrap(), None);
        // A broken file is an error, not silently empty.
        std::fs::write(&p, "{not json").unwrap();
        assert!(DockerConfig::load(&p).is_err());
        assert!(DockerConfig::load(&t.path().join("missing.json")).unwrap().credentials("x").unwrap().is_none());
    }
}
