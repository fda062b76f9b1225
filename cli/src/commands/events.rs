//! `events`: the store's event log, filtered and printed as docker prints it, followed
//! until `--until` or an interrupt.

use crate::cli::EventsArgs;
use anyhow::{bail, Context};
use rbuild_store::{Event, Store};
use rbuild_template::Value;
use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;

/// docker's event filters.
fn event_matches(e: &Event, filters: &[(String, String)]) -> bool {
    let keys: HashSet<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.into_iter().all(|k| {
        filters.iter().filter(|(fk, _)| fk == k).any(|(_, v)| match k {
            "type" => e.typ == *v,
            "event" => e.action == *v || e.action.split(':').next() == Some(v.as_str()),
            "container" => {
                e.typ == "container"
                    && (e.actor.id.starts_with(v.as_str()) || e.actor.attributes.get("name") == Some(v))
            }
            "image" => {
                (e.typ == "image" && (e.actor.id.contains(v.as_str()) || e.actor.attributes.get("name") == Some(v)))
                    || e.actor.attributes.get("image") == Some(v)
            }
            "volume" => e.typ == "volume" && e.actor.id == *v,
            "label" => match v.split_once('=') {
                Some((lk, lv)) => e.actor.attributes.get(lk).map(String::as_str) == Some(lv),
                None => e.actor.attributes.contains_key(v),
            },
            _ => false,
        })
    })
}

fn event_value(e: &Event) -> Value {
    let attrs = Value::map(e.actor.attributes.iter().map(|(k, v)| (k.clone(), Value::from(v))));
    Value::object([
        ("status", Value::from(e.action.clone())),
        ("id", e.actor.id.clone().into()),
        ("from", e.actor.attributes.get("image").cloned().unwrap_or_default().into()),
        ("Type", e.typ.clone().into()),
        ("Action", e.action.clone().into()),
        ("Actor", Value::object([("ID", Value::from(e.actor.id.clone())), ("Attributes", attrs)])),
        ("scope", e.scope.clone().into()),
        ("time", e.time.into()),
        ("timeNano", e.time_nano.into()),
    ])
}

/// docker's event line: `TIME TYPE ACTION ID (k=v, …)`.
fn event_line(e: &Event) -> String {
    let t = chrono::DateTime::from_timestamp(e.time_nano / 1_000_000_000, (e.time_nano % 1_000_000_000) as u32)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.9fZ");
    let attrs: Vec<String> = e.actor.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut s = format!("{t} {} {} {}", e.typ, e.action, e.actor.id);
    if !attrs.is_empty() {
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

pub fn events(store: &Store, a: EventsArgs) -> anyhow::Result<ExitCode> {
    let filters: Vec<(String, String)> = a
        .filter
        .iter()
        .map(|f| {
            let (k, v) =
                f.split_once('=').with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
            if !["type", "event", "container", "image", "volume", "label", "network", "daemon", "scope"].contains(&k) {
                bail!("invalid filter '{k}'");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect::<anyhow::Result<_>>()?;
    let since = a.since.as_deref().map(|s| crate::commands::timeopts::timestamp(s, None)).transpose()?;
    let until = a.until.as_deref().map(|s| crate::commands::timeopts::timestamp(s, None)).transpose()?;
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(rbuild_template::Template::parse("{{json .}}")?),
        Some(f) => {
            Some(rbuild_template::Template::parse(f).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?)
        }
    };
    let show = |e: &Event| -> anyhow::Result<bool> {
        if until.is_some_and(|u| e.time_nano > u) {
            return Ok(false);
        }
        if since.is_some_and(|s| e.time_nano < s) || !event_matches(e, &filters) {
            return Ok(true);
        }
        let line = match &template {
            Some(t) => t.execute(&event_value(e)).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?,
            None => event_line(e),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(true)
    };
    // Without --since only new events are shown, as docker's stream.
    let (mut past, mut offset) = store.events_from(0)?;
    // Processes append as they go (a monitor's `die` may come before the `start` its
    // caller stamped first): the past is shown in time order, as docker's.
    past.sort_by_key(|e| e.time_nano);
    if since.is_some() {
        for e in &past {
            if !show(e)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    loop {
        if until.is_some_and(|u| now_nanos() > u) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (new, off) = store.events_from(offset)?;
        offset = off;
        for e in &new {
            if !show(e)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_docker() {
        let mut e = Event::now("container", "create", "abc", &[("name", "web"), ("image", "busybox")]);
        e.time_nano = 1_700_000_000_123_456_789;
        assert_eq!(event_line(&e), "2023-11-14T22:13:20.123456789Z container create abc (image=busybox, name=web)");
        let f = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(event_matches(&e, &f("container", "web")));
        assert!(event_matches(&e, &f("image", "busybox")));
        assert!(!event_matches(&e, &f("type", "image")));
        assert!(event_matches(&e, &[("event".into(), "start".into()), ("event".into(), "create".into())]));
    }
}
