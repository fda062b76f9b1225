//! Output helpers: docker-style sizes, times and tables.

use rbuild_store::Store;
use std::path::PathBuf;

/// Opens the store at `--root` / `RBUILD_ROOT` / the default.
pub fn open_store(root: &Option<PathBuf>) -> anyhow::Result<Store> {
    let root = root.clone().unwrap_or_else(rbuild_store::default_root);
    Ok(Store::open(&root)?)
}

/// Moves the cursor up over a live area of `lines` lines and erases it.
pub fn clear(out: &mut String, lines: usize) {
    if lines > 0 {
        out.push_str(&format!("\x1b[{lines}A\x1b[J"));
    }
}

/// docker's `units.HumanSize`: decimal units, three significant digits.
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig3(v), units[i])
}

/// docker's `units.BytesSize`: binary units, four significant digits (`716KiB`,
/// `23.54GiB`).
pub fn bytes_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(v, 4), units[i])
}

fn sig3(v: f64) -> String {
    go_g(v, 3)
}

/// Go's `%.{p}g`: `p` significant digits, no trailing zeros, an exponent when the number
/// is too large or small for them.
fn go_g(v: f64, p: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim(&format!("{v:.decimals$}"))
}

/// docker's `units.HumanDuration` + " ago".
pub fn ago(then_secs: i64) -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    format!("{} ago", human_duration((now - then_secs).max(0)))
}

/// go-units' `HumanDuration` of `s` seconds: "About an hour" up to 1.5 h, hours rounded
/// after that.
pub fn human_duration(s: i64) -> String {
    if s < 1 {
        return "Less than a second".into();
    }
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0 + 0.5) as i64;
    match s {
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(1_984_512), "1.98MB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(10_500), "10.5kB");
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999_600), "1e+03kB", "as Go's %.3g prints 999.6");
        assert_eq!(bytes_size(716 * 1024), "716KiB");
        assert_eq!(bytes_size(64 << 20), "64MiB");
        assert_eq!(bytes_size(25_277_800_000), "23.54GiB");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(go_g(1023.6, 3), "1.02e+03");
    }

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(5399), "About an hour");
        assert_eq!(human_duration(5400), "2 hours", "hours are rounded");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(48 * 3600), "2 days");
        assert_eq!(human_duration(14 * 86400), "2 weeks");
        assert_eq!(human_duration(60 * 86400), "2 months");
        assert_eq!(human_duration(730 * 86400), "2 years");
    }
}
