//! The image configuration, as docker writes and reads it.
//!
//! This is the OCI image config plus the fields docker adds (`Healthcheck`, `OnBuild`,
//! `Shell`, `ArgsEscaped`, ...). oci-spec's `ImageConfiguration` drops those fields and
//! keeps labels in a `HashMap`, which makes serialisation order (and so the image digest)
//! vary between runs; this type keeps every map ordered, so the same config always has the
//! same digest. Unknown fields of loaded configs are kept.

use crate::digest::Digest;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The largest image config rbuild writes (and pulls): 16 MiB.
pub const MAX_CONFIG_SIZE: usize = 16 << 20;

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// docker's StrSlice: an array of strings, or a single string.
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `{}` values of docker's set-like maps (`ExposedPorts`, `Volumes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

/// The runtime defaults of the image (`config` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "str_slice", skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "str_slice", skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
    /// Fields this type does not model (docker's Hostname, Tty, ...), kept as they were.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl ContainerConfig {
    /// The value of `KEY` in `Env` (last one wins).
    pub fn env_get(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// Sets `KEY=value`, replacing an earlier entry in place (as docker does).
    pub fn env_set(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self.env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key) {
            Some(e) => *e = entry,
            None => self.env.push(entry),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub typ: String,
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default = "default_arch")]
    pub architecture: String,
    #[serde(default = "default_os")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// docker's `comment`, `container_config`, `docker_version`, ... as loaded.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn default_arch() -> String {
    "amd64".into()
}
fn default_os() -> String {
    "linux".into()
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            created: None,
            author: None,
            architecture: default_arch(),
            os: default_os(),
            variant: None,
            config: ContainerConfig::default(),
            rootfs: RootFs { typ: "layers".into(), diff_ids: vec![] },
            history: vec![],
            other: BTreeMap::new(),
        }
    }
}

impl ImageConfig {
    pub fn from_json(data: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        serde_json::from_slice(data)
    }

    /// Compact JSON with ordered keys: the same config gives the same bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// RFC 3339 in UTC with nanoseconds, as docker writes times.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    chrono::DateTime::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Seconds since the epoch of an RFC 3339 time (0 when unparsable).
pub fn parse_rfc3339(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).map(|d| d.timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_configs() {
        let docker = br#"{"architecture":"amd64","comment":"Imported from -","config":{"Hostname":"","User":"","Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"created":"2026-11-22T22:30:17.081964369Z","docker_version":"20.10.24+dfsg1","history":[{"created":"2026-11-22T22:30:17.081964369Z","comment":"Imported from -"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:5249d05a32c51daf3beb7f7927c3103167c2697ac48179d5036b6f6e74ab6543"]}}"#;
        let c = ImageConfig::from_json(docker).unwrap();
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert_eq!(c.config.cmd, None);
        assert_eq!(c.other["docker_version"], "20.10.24+dfsg1");
        let single: ContainerConfig = serde_json::from_str(r#"{"Cmd":"sh"}"#).unwrap();
        assert_eq!(single.cmd, Some(vec!["sh".to_string()]));
    }

    #[test]
    fn serialisation_is_ordered() {
        let mut c = ImageConfig::default();
        for k in ["z", "a", "m"] {
            c.config.labels.insert(k.into(), "v".into());
        }
        let s = String::from_utf8(c.to_json()).unwrap();
        assert!(s.contains(r#""Labels":{"a":"v","m":"v","z":"v"}"#), "{s}");
        assert_eq!(c.to_json(), ImageConfig::from_json(&c.to_json()).unwrap().to_json());
    }

    #[test]
    fn env_set_replaces_in_place() {
        let mut c = ContainerConfig { env: vec!["A=1".into(), "PATH=/bin".into()], ..Default::default() };
        c.env_set("A", "2");
        c.env_set("B", "3");
        assert_eq!(c.env, vec!["A=2", "PATH=/bin", "B=3"]);
        assert_eq!(c.env_get("PATH"), Some("/bin"));
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2026-11-22T22:30:17.081964369Z"), 1795386617);
    }
}
