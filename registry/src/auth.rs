//! Credentials and authentication: docker's `config.json` (read and written as docker
//! does, so `docker login` and `rbuild login` share it), its credential helpers
//! (`credsStore`, `credHelpers`: `docker-credential-NAME get|store|erase` with docker's
//! protocol on standard input and output) and `WWW-Authenticate` challenges (Basic, and
//! Bearer with a token server).

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

    /// The credential helper for `registry`: `credHelpers[registry]`, else `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<String> {
        let by_registry = match self.doc.get("credHelpers") {
            Some(Value::Object(m)) => keys_for(registry).iter().find_map(|k| m.get(k)?.as_str().map(String::from)),
            _ => None,
        };
        by_registry
            .or_else(|| self.doc.get("credsStore").and_then(|v| v.as_str()).map(String::from))
            .filter(|h| !h.is_empty())
    }

    /// The stored credentials for `registry` (a host, as in image names): from its
    /// credential helper when the config names one, else from `auths`.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(h) = self.helper_for(registry) {
            return CredentialHelper::new(&h).get(&server_key(registry));
        }
        self.auth_entry(registry)
    }

    /// Records `creds` for `registry` in its credential helper (leaving an empty entry in
    /// `auths`, as docker does), else in `auths`. Call [`DockerConfig::save`] after.
    pub fn store_credentials(&mut self, registry: &str, creds: &Credentials) -> Result<()> {
        match self.helper_for(registry) {
            Some(h) => {
                CredentialHelper::new(&h).store(&server_key(registry), creds)?;
                let key = keys_for(registry).remove(0);
                let auths = self.auths_mut();
                auths.insert(key, Value::Object(Map::new()));
                Ok(())
            }
            None => {
                self.set_credentials(registry, creds);
                Ok(())
            }
        }
    }

    /// Forgets the credentials for `registry` (in its helper too); false when `auths` had
    /// none and the helper (if any) knew none.
    pub fn erase_credentials(&mut self, registry: &str) -> Result<bool> {
        let in_helper = match self.helper_for(registry) {
            Some(h) => CredentialHelper::new(&h).erase(&server_key(registry))?,
            None => false,
        };
        Ok(self.remove_credentials(registry) | in_helper)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let auths = self.doc.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        match auths {
            Value::Object(m) => m,
            _ => unreachable!("made an object above"),
        }
    }

    fn auth_entry(&self, registry: &str) -> Result<Option<Credentials>> {
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
        self.auths_mut().insert(key, serde_json::json!({ "auth": auth }));
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

    /// Writes the file atomically and durably, readable by its owner only (it holds
    /// passwords).
    pub fn save(&self) -> Result<()> {
        use rbuild_store::{AtomicWriter, Durability};
        use std::io::Write as _;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| config_err(&self.path, e))?;
        let data =
            serde_json::to_vec_pretty(&Value::Object(self.doc.clone())).map_err(|e| config_err(&self.path, e))?;
        let write = || -> std::io::Result<()> {
            let mut w = AtomicWriter::create_with_mode(&self.path, 0o600)?;
            w.write_all(&data)?;
            w.write_all(b"\n")?;
            w.commit(Durability::Durable)
        };
        write().map_err(|e| config_err(&self.path, e))
    }
}

/// The server name docker gives credential helpers: Docker Hub's v1 URL, else the host.
pub fn server_key(registry: &str) -> String {
    keys_for(registry).remove(0)
}

/// docker's "not found" answer of a credential helper (docker-credential-helpers'
/// `credentials.NewErrCredentialsNotFound`).
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";

/// An external credential helper, `docker-credential-NAME` on `PATH`, spoken to as docker
/// does: the verb as the argument, the request on standard input, JSON on standard output.
#[derive(Debug, Clone)]
pub struct CredentialHelper {
    program: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl CredentialHelper {
    pub fn new(name: &str) -> CredentialHelper {
        CredentialHelper { program: format!("docker-credential-{name}") }
    }

    fn run(&self, verb: &str, input: &[u8]) -> Result<(bool, Vec<u8>)> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let err = |detail: String| RegistryError::CredentialHelper { helper: self.program.clone(), detail };
        let mut child = Command::new(&self.program)
            .arg(verb)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(format!("cannot run it: {e}")))?;
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(input);
        }
        let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
        let mut text = out.stdout;
        if !out.status.success() && text.is_empty() {
            text = out.stderr;
        }
        Ok((out.status.success(), text))
    }

    /// The credentials the helper has for `server` (None when it has none).
    pub fn get(&self, server: &str) -> Result<Option<Credentials>> {
        let (ok, out) = self.run("get", server.as_bytes())?;
        let text = String::from_utf8_lossy(&out).trim().to_string();
        if !ok {
            if text.contains(HELPER_NOT_FOUND) {
                return Ok(None);
            }
            return Err(RegistryError::CredentialHelper {
                helper: self.program.clone(),
                detail: format!("get: {text}"),
            });
        }
        let c: HelperCreds = serde_json::from_slice(&out).map_err(|e| RegistryError::CredentialHelper {
            helper: self.program.clone(),
            detail: format!("get: invalid answer: {e}"),
        })?;
        if c.username.is_empty() && c.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials { username: c.username, password: c.secret }))
    }

    pub fn store(&self, server: &str, creds: &Credentials) -> Result<()> {
        let req = HelperCreds {
            server_url: server.to_string(),
            username: creds.username.clone(),
            secret: creds.password.clone(),
        };
        let (ok, out) = self.run("store", &serde_json::to_vec(&req).unwrap_or_default())?;
        if !ok {
            let detail = format!("store: {}", String::from_utf8_lossy(&out).trim());
            return Err(RegistryError::CredentialHelper { helper: self.program.clone(), detail });
        }
        Ok(())
    }

    /// Erases the helper's credentials for `server`; false when it had none.
    pub fn erase(&self, server: &str) -> Result<bool> {
        let (ok, out) = self.run("erase", server.as_bytes())?;
        let text = String::from_utf8_lossy(&out).trim().to_string();
        match (ok, text.contains(HELPER_NOT_FOUND)) {
            (true, _) => Ok(true),
            (false, true) => Ok(false),
            (false, false) => {
                Err(RegistryError::CredentialHelper { helper: self.program.clone(), detail: format!("erase: {text}") })
            }
        }
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

    /// A helper script keeping credentials in a directory, as docker-credential-pass does
    /// in its store; it answers "not found" as docker's helpers do.
    fn fake_helper(dir: &Path) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let name = "rbuildtest";
        let p = dir.join(format!("docker-credential-{name}"));
        let script = format!(
            r#"#!/bin/sh
d={d}
read -r req || true
case "$1" in
store) printf '%s' "$req" > "$d/stored" ;;
get) if [ -f "$d/stored" ] && grep -q "\"$req\"" "$d/stored"; then sed 's/"ServerURL":"[^"]*",//' "$d/stored"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) if [ -f "$d/stored" ]; then rm "$d/stored"; else echo "credentials not found in native keychain"; exit 1; fi ;;
*) echo "unknown verb $1" >&2; exit 2 ;;
esac
"#,
            d = dir.display()
        );
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        name.to_string()
    }

    #[test]
    fn credential_helpers_store_get_and_erase() {
        let t = tempfile::tempdir().unwrap();
        let name = fake_helper(t.path());
        let h = CredentialHelper { program: t.path().join(format!("docker-credential-{name}")).display().to_string() };
        assert_eq!(h.get("127.0.0.1:5000").unwrap(), None);
        let c = Credentials { username: "u".into(), password: "s3cret".into() };
        h.store("127.0.0.1:5000", &c).unwrap();
        let stored = std::fs::read_to_string(t.path().join("stored")).unwrap();
        assert_eq!(stored, r#"{"ServerURL":"127.0.0.1:5000","Username":"u","Secret":"s3cret"}"#);
        assert_eq!(h.get("127.0.0.1:5000").unwrap(), Some(c));
        assert_eq!(h.get("other:5000").unwrap(), None);
        assert!(h.erase("127.0.0.1:5000").unwrap());
        assert!(!h.erase("127.0.0.1:5000").unwrap());
        let missing = CredentialHelper::new("rbuild-no-such-helper");
        assert!(matches!(missing.get("x"), Err(RegistryError::CredentialHelper { .. })));
    }

    #[test]
    fn helpers_are_chosen_per_registry() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config.json");
        std::fs::write(&p, r#"{"credsStore":"desktop","credHelpers":{"127.0.0.1:5000":"pass"}}"#).unwrap();
        let c = DockerConfig::load(&p).unwrap();
        assert_eq!(c.helper_for("127.0.0.1:5000").as_deref(), Some("pass"));
        assert_eq!(c.helper_for("other.example").as_deref(), Some("desktop"));
        std::fs::write(&p, r#"{"auths":{}}"#).unwrap();
        assert_eq!(DockerConfig::load(&p).unwrap().helper_for("x"), None);
        assert_eq!(server_key("docker.io"), "https://index.docker.io/v1/");
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
