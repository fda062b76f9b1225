//! The event journal (`rbuild events`): what happened to containers, images and volumes,
//! appended by every command that changes them (and by a container's monitor for `die`),
//! one JSON line per event in docker's shape (`Type`, `Action`, `Actor`, `time`,
//! `timeNano`).
//!
//! ```text
//! ROOT/rbuild/events/journal   one event per line, appended with O_APPEND
//! ```
//! A line is written with one `write` on a file opened `O_APPEND`, so events of concurrent
//! processes never interleave. Past [`MAX_BYTES`] the journal is cut to its last [`KEEP`]
//! events (at most half the limit) (docker's daemon keeps the last 256 in memory; a journal on disk can keep more).

use crate::error::{IoContext, Result};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// The journal is trimmed past this size…
pub const MAX_BYTES: u64 = 4 << 20;
/// …to its last this many events.
pub const KEEP: usize = 2000;

/// Who an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, as docker's API returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `container`, `image`, `volume`, `network`, `builder`.
    #[serde(rename = "Type")]
    pub typ: String,
    /// `create`, `start`, `die`, `stop`, `destroy`, `pull`, `tag`, …
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    #[serde(rename = "scope", default)]
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// An event happening now.
    pub fn now(typ: &str, action: &str, id: &str, attributes: &[(&str, &str)]) -> Event {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Event {
            typ: typ.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }
}

impl Store {
    fn journal_path(&self) -> PathBuf {
        self.state_dir().join("events/journal")
    }

    /// Appends `e` to the journal.
    pub fn append_event(&self, e: &Event) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = self.journal_path();
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).at("creating", dir)?;
        }
        let mut line = serde_json::to_vec(e).unwrap_or_default();
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&p).at("opening", &p)?;
        f.write_all(&line).at("appending to", &p)?;
        if f.metadata().map(|m| m.len()).unwrap_or(0) > MAX_BYTES {
            self.trim_journal()?;
        }
        Ok(())
    }

    fn trim_journal(&self) -> Result<()> {
        let _l = self.lock_write()?;
        let p = self.journal_path();
        let data = std::fs::read(&p).at("reading", &p)?;
        if (data.len() as u64) <= MAX_BYTES {
            return Ok(()); // another process trimmed it
        }
        // The last KEEP events, in at most half the limit (so trimming is rare).
        let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        let (mut n, mut bytes) = (0, 0u64);
        for l in lines.iter().rev() {
            if n == KEEP || bytes + l.len() as u64 + 1 > MAX_BYTES / 2 {
                break;
            }
            n += 1;
            bytes += l.len() as u64 + 1;
        }
        let mut out = lines[lines.len() - n..].join(&b'\n');
        out.push(b'\n');
        self.write_replacing(&p, &out, false)
    }

    /// The events from byte `offset` of the journal on, and the offset after them (for
    /// following it). Lines that do not parse are skipped; a partly written last line is
    /// left for the next call.
    pub fn events_from(&self, offset: u64) -> Result<(Vec<Event>, u64)> {
        use std::io::{Read, Seek, SeekFrom};
        let p = self.journal_path();
        let mut f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
            Err(e) => return Err(crate::StoreError::io(format!("opening {}", p.display()), e)),
        };
        let len = f.metadata().at("reading", &p)?.len();
        // A trimmed journal is shorter than where a reader was: start over.
        let offset = if offset > len { 0 } else { offset };
        f.seek(SeekFrom::Start(offset)).at("reading", &p)?;
        let mut data = Vec::new();
        f.read_to_end(&mut data).at("reading", &p)?;
        let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let events = data[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<Event>(l).ok())
            .collect();
        Ok((events, offset + complete as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_append_read_and_follow() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        assert_eq!(s.events_from(0).unwrap(), (vec![], 0));
        s.append_event(&Event::now("container", "create", "abc", &[("name", "web")])).unwrap();
        let (ev, off) = s.events_from(0).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].actor.attributes["name"], "web");
        assert!(ev[0].time_nano / 1_000_000_000 == ev[0].time && ev[0].time > 1_700_000_000);
        s.append_event(&Event::now("container", "start", "abc", &[])).unwrap();
        // A half-written line waits for the rest.
        std::fs::OpenOptions::new().append(true).open(s.journal_path()).unwrap().write_all(b"{\"Type\":").unwrap();
        let (ev, off2) = s.events_from(off).unwrap();
        assert_eq!(ev.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["start"]);
        assert_eq!(s.events_from(off2).unwrap().0, vec![]);
    }

    #[test]
    fn the_journal_is_trimmed_to_its_last_events() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path().join("s")).unwrap();
        let big = "x".repeat(4000);
        for i in 0..(MAX_BYTES / 4000 + 10) {
            s.append_event(&Event::now("image", "tag", &format!("{i}"), &[("pad", &big)])).unwrap();
        }
        let (ev, _) = s.events_from(0).unwrap();
        assert!(ev.len() <= KEEP && !ev.is_empty());
        assert_eq!(ev.last().unwrap().actor.id, format!("{}", MAX_BYTES / 4000 + 9));
        assert!(std::fs::metadata(s.journal_path()).unwrap().len() <= MAX_BYTES);
    }
}
