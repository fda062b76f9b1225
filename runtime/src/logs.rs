//! Reading container logs in docker's json-file format: `logs [-f] [-t] [--tail N]
//! [--since T] [--until T]` (the CLI reads docker's time arguments into nanoseconds).

use crate::container::Container;
use serde::Deserialize;
use std::io::{BufRead, Write};

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// What `logs` prints.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Each line prefixed with its time (RFC 3339, nine fractional digits, as docker).
    pub timestamps: bool,
    /// Only the last N lines (counted before `since`/`until`, as docker's reader does).
    pub tail: Option<usize>,
    /// Nanoseconds since the epoch: lines before are skipped.
    pub since: Option<i64>,
    /// Nanoseconds since the epoch: lines after are not shown, and following stops there.
    pub until: Option<i64>,
}

fn nanos_of(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time).ok().and_then(|d| d.timestamp_nanos_opt()).unwrap_or(0)
}

/// docker's `RFC3339NanoFixed`: always nine fractional digits.
fn fixed_time(time: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(time) {
        Ok(d) => d.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string(),
        Err(_) => time.to_string(),
    }
}

fn now_nanos() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Writes the log to `out`/`err`; with `follow`, keeps going until the container stops
/// (or `until` passes).
pub fn print(c: &Container, o: &LogOptions, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<()> {
    let path = c.log_path();
    // Ok(false): a line past `until` (stop).
    let emit = |line: &str, out: &mut dyn Write, err: &mut dyn Write| -> std::io::Result<bool> {
        let Ok(e) = serde_json::from_str::<Entry>(line) else { return Ok(true) };
        let t = nanos_of(&e.time);
        if o.until.is_some_and(|u| t > u) {
            return Ok(false);
        }
        if o.since.is_some_and(|s| t < s) {
            return Ok(true);
        }
        let w: &mut dyn Write = if e.stream == "stderr" { err } else { out };
        if o.timestamps {
            write!(w, "{} ", fixed_time(&e.time))?;
        }
        w.write_all(e.log.as_bytes())?;
        w.flush()?;
        Ok(true)
    };
    let mut offset = 0u64;
    if let Ok(f) = std::fs::File::open(&path) {
        let lines: Vec<String> = std::io::BufReader::new(f).lines().map_while(|l| l.ok()).collect();
        let skip = o.tail.map_or(0, |n| lines.len().saturating_sub(n));
        for l in &lines[skip..] {
            if !emit(l, out, err)? {
                return Ok(());
            }
        }
        offset = lines.iter().map(|l| l.len() as u64 + 1).sum();
    }
    if !o.follow {
        return Ok(());
    }
    let mut partial = String::new();
    loop {
        let running = c.running();
        if let Ok(mut f) = std::fs::File::open(&path) {
            use std::io::{Read, Seek, SeekFrom};
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len > offset {
                f.seek(SeekFrom::Start(offset))?;
                let mut buf = String::new();
                f.read_to_string(&mut buf)?;
                offset = len;
                partial.push_str(&buf);
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    if !emit(line.trim_end(), out, err)? {
                        return Ok(());
                    }
                }
            }
        }
        if !running || o.until.is_some_and(|u| now_nanos() > u) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_docker_prints_them() {
        assert_eq!(fixed_time("2026-12-01T20:00:00.5Z"), "2026-12-01T20:00:00.500000000Z");
    }
}
