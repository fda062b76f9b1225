//! Reading container logs in docker's json-file format: `logs [-f] [-t] [--tail N]
//! [--since T] [--until T]`, and docker's time arguments (`timetypes.GetTimestamp`).

use crate::container::Container;
use crate::error::{Result, RuntimeError};
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

/// A Go duration (`1h30m`, `10s`, `1.5h`, `300ms`) in nanoseconds.
fn go_duration(s: &str) -> Option<i64> {
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * mult;
    }
    Some(total as i64)
}

/// docker's `--since`/`--until` values: a duration before `now` (`10m`, `1h30m`), Unix
/// seconds (`1700000000`, `1700000000.5`), or an RFC 3339 date or time (with or without a
/// zone; UTC without). Nanoseconds since the epoch.
pub fn parse_timestamp(value: &str, now_nanos_: Option<i64>) -> Result<i64> {
    let now = now_nanos_.unwrap_or_else(now_nanos);
    let v = value.trim();
    let bad = || {
        RuntimeError::Invalid(format!("invalid value for time {value:?}: not a duration, Unix time or RFC 3339 time"))
    };
    if v.is_empty() {
        return Err(bad());
    }
    if let Some(d) = go_duration(v).filter(|_| !v.bytes().all(|c| c.is_ascii_digit() || c == b'.')) {
        return Ok(now - d);
    }
    if let Some((secs, frac)) = v.split_once('.').or(Some((v, ""))).filter(|(s, f)| {
        !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && f.bytes().all(|c| c.is_ascii_digit())
    }) {
        let s: i64 = secs.parse().map_err(|_| bad())?;
        let f = format!("{frac:0<9}");
        let n: i64 = f.get(..9).unwrap_or("0").parse().unwrap_or(0);
        return Ok(s * 1_000_000_000 + n);
    }
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(v) {
        return d.timestamp_nanos_opt().ok_or_else(bad);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return t.and_utc().timestamp_nanos_opt().ok_or_else(bad);
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).and_then(|t| t.and_utc().timestamp_nanos_opt()).ok_or_else(bad);
    }
    Err(bad())
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
    fn docker_time_arguments() {
        let now = 1_800_000_000_000_000_000;
        assert_eq!(parse_timestamp("10m", Some(now)).unwrap(), now - 600_000_000_000);
        assert_eq!(parse_timestamp("1h30m", Some(now)).unwrap(), now - 5_400_000_000_000);
        assert_eq!(parse_timestamp("1.5s", Some(now)).unwrap(), now - 1_500_000_000);
        assert_eq!(parse_timestamp("1700000000", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(parse_timestamp("1700000000.25", Some(now)).unwrap(), 1_700_000_000_250_000_000);
        assert_eq!(parse_timestamp("2023-11-14T22:13:20Z", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(parse_timestamp("2023-11-14T22:13:20", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(parse_timestamp("2023-11-14", Some(now)).unwrap(), 1_699_920_000_000_000_000);
        assert_eq!(parse_timestamp("2023-11-14T23:13:20+01:00", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        for bad in ["", "yesterday", "10x", "2023-13-01"] {
            assert!(parse_timestamp(bad, Some(now)).is_err(), "{bad}");
        }
        assert_eq!(fixed_time("2026-12-01T20:00:00.5Z"), "2026-12-01T20:00:00.500000000Z");
    }
}
