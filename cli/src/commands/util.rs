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

/// `%.3g` without trailing zeros.
fn sig3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (3 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker's `units.HumanDuration` + " ago".
pub fn ago(then_secs: i64) -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let s = (now - then_secs).max(0);
    let d = match s {
        0 => return "Less than a second ago".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86400),
        1_209_600..=5_183_999 => format!("{} weeks", s / 604_800),
        5_184_000..=63_071_999 => format!("{} months", s / 2_592_000),
        _ => format!("{} years", s / 31_536_000),
    };
    format!("{d} ago")
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
    }
}
