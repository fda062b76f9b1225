//! docker's time arguments (`--since`, `--until` of `logs`, `events` and filters:
//! `timetypes.GetTimestamp`), read into nanoseconds since the epoch.

use crate::commands::options::go_duration;
use anyhow::anyhow;

fn now_nanos() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A duration before `now` (`10m`, `1h30m`), Unix seconds (`1700000000`,
/// `1700000000.5`), or an RFC 3339 date or time (with or without a zone; UTC without).
pub fn timestamp(value: &str, now: Option<i64>) -> anyhow::Result<i64> {
    let now = now.unwrap_or_else(now_nanos);
    let v = value.trim();
    let bad = || anyhow!("invalid value for time {value:?}: not a duration, Unix time or RFC 3339 time");
    if v.is_empty() {
        return Err(bad());
    }
    if !v.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        if let Ok(d) = go_duration(v) {
            return Ok(now - i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_time_arguments() {
        let now = 1_800_000_000_000_000_000;
        assert_eq!(timestamp("10m", Some(now)).unwrap(), now - 600_000_000_000);
        assert_eq!(timestamp("1h30m", Some(now)).unwrap(), now - 5_400_000_000_000);
        assert_eq!(timestamp("1.5s", Some(now)).unwrap(), now - 1_500_000_000);
        assert_eq!(timestamp("1700000000", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(timestamp("1700000000.25", Some(now)).unwrap(), 1_700_000_000_250_000_000);
        assert_eq!(timestamp("2023-11-14T22:13:20Z", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(timestamp("2023-11-14T22:13:20", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(timestamp("2023-11-14", Some(now)).unwrap(), 1_699_920_000_000_000_000);
        assert_eq!(timestamp("2023-11-14T23:13:20+01:00", Some(now)).unwrap(), 1_700_000_000_000_000_000);
        for bad in ["", "yesterday", "10x", "2023-13-01"] {
            assert!(timestamp(bad, Some(now)).is_err(), "{bad}");
        }
    }
}
