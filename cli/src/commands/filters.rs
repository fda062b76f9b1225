//! `ps --filter`: docker's container filters. (They belong with the container list in the
//! runtime; they live here until the runtime's restructuring settles — see the report.)

use anyhow::{bail, Context};
use rbuild_runtime::container::Container;
use rbuild_runtime::state::{State, Status};
use rbuild_store::{Reference, Store};
use regex::Regex;

/// Parsed `ps --filter` values: values of one key are alternatives, keys must all match.
#[derive(Debug, Default)]
pub struct ContainerFilter {
    ids: Vec<Regex>,
    names: Vec<Regex>,
    labels: Vec<(String, Option<String>)>,
    statuses: Vec<String>,
    /// Image IDs (full) an ancestor filter accepts, and the names it was given as.
    ancestors: Vec<(Option<rbuild_store::Digest>, String)>,
    exited: Vec<i32>,
    before: Option<String>,
    since: Option<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
    health: Vec<String>,
}

const STATUSES: &[&str] = &["created", "restarting", "running", "removing", "paused", "exited", "dead"];

impl ContainerFilter {
    pub fn parse(store: &Store, all: &[Container], filters: &[String]) -> anyhow::Result<ContainerFilter> {
        let mut f = ContainerFilter::default();
        for s in filters {
            let Some((k, v)) = s.split_once('=') else { bail!("bad format of filter (expected name=value): {s}") };
            let re = || Regex::new(v).with_context(|| format!("invalid filter {s:?}"));
            match k {
                "id" => f.ids.push(re()?),
                "name" => f.names.push(re()?),
                "label" => f.labels.push(label_filter(v)),
                "status" => {
                    if !STATUSES.contains(&v) {
                        bail!("invalid filter 'status={v}'");
                    }
                    f.statuses.push(v.to_string());
                }
                "ancestor" => {
                    let id = store.image(v).ok().map(|i| i.config_digest);
                    f.ancestors.push((id, v.to_string()));
                }
                "exited" => f.exited.push(v.parse().with_context(|| format!("invalid filter 'exited={v}'"))?),
                "before" | "since" => {
                    let c = rbuild_runtime::container::find(store, v)?;
                    let t = c.config.created.clone();
                    if k == "before" {
                        f.before = Some(t);
                    } else {
                        f.since = Some(t);
                    }
                    let _ = all;
                }
                "network" => f.networks.push(v.to_string()),
                "health" => {
                    if !["starting", "healthy", "unhealthy", "none"].contains(&v) {
                        bail!("Unrecognised filter value for health: {v}");
                    }
                    f.health.push(v.to_string());
                }
                "volume" => f.volumes.push(v.to_string()),
                other => bail!("invalid filter '{other}'"),
            }
        }
        Ok(f)
    }

    /// Does the filter say which states to show (`status=…`, `exited=…`): then `ps`
    /// without `-a` shows them too, as docker's does.
    pub fn selects_states(&self) -> bool {
        !self.statuses.is_empty() || !self.exited.is_empty()
    }

    pub fn matches(&self, c: &Container, labels: &std::collections::BTreeMap<String, String>) -> bool {
        let s = c.state();
        let status = s.status.as_str();
        let health = health_word(c, &s);
        let name = format!("/{}", c.config.name);
        let any = |v: &[Regex], s: &str| v.is_empty() || v.iter().any(|r| r.is_match(s));
        any(&self.ids, &c.config.id)
            && any(&self.names, &name)
            && self.labels.iter().all(|(k, v)| match v {
                Some(v) => labels.get(k) == Some(v),
                None => labels.contains_key(k),
            })
            && (self.statuses.is_empty() || self.statuses.iter().any(|x| x == status))
            && (self.health.is_empty() || self.health.iter().any(|x| x == health))
            && (self.exited.is_empty() || (s.status == Status::Exited && self.exited.contains(&s.exit_code)))
            && (self.ancestors.is_empty()
                || self.ancestors.iter().any(|(id, given)| {
                    id.is_some_and(|d| d == c.config.image_id)
                        || c.config.image == *given
                        || Reference::parse(given)
                            .ok()
                            .zip(Reference::parse(&c.config.image).ok())
                            .is_some_and(|(a, b)| a == b)
                }))
            && self.before.as_ref().is_none_or(|t| c.config.created < *t)
            && self.since.as_ref().is_none_or(|t| c.config.created > *t)
            && (self.networks.is_empty() || self.networks.iter().any(|n| c.config.network.names().contains(n)))
            && (self.volumes.is_empty()
                || self
                    .volumes
                    .iter()
                    .any(|v| c.config.mounts.iter().any(|m| m.name == *v || m.destination == *v || m.source == *v)))
    }
}

/// A container's health as `ps` filters and shows it: `none` without a check.
/// A `label=` filter's value: `KEY` (the label is set) or `KEY=VALUE` (set to VALUE).
pub fn label_filter(v: &str) -> (String, Option<String>) {
    match v.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (v.to_string(), None),
    }
}

pub fn health_word(c: &Container, s: &State) -> &'static str {
    if rbuild_runtime::shim::health::probe_command(&c.config).is_none() {
        return "none";
    }
    s.health.as_ref().map_or("starting", |h| h.status.as_str())
}
