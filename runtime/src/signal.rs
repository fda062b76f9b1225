//! Signal names and numbers, as docker parses them (`SIGTERM`, `TERM`, `15`, `RTMIN+3`).

/// The standard signals of Linux/x86-64.
pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid signal: {0}")]
pub struct BadSignal(pub String);

/// Parses `SIGTERM`, `term`, `15`, `RTMIN+3`, `SIGRTMAX-1`.
pub fn parse_signal(raw: &str) -> Result<i32, BadSignal> {
    if let Ok(n) = raw.parse::<i32>() {
        if n <= 0 || n > RTMAX {
            return Err(BadSignal(raw.into()));
        }
        return Ok(n);
    }
    let up = raw.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Ok(n);
    }
    let rt = |base: i32, rest: &str| -> Option<i32> {
        if rest.is_empty() {
            return Some(base);
        }
        let (sign, num) = rest.split_at(1);
        let k: i32 = num.parse().ok()?;
        let v = if sign == "+" {
            base + k
        } else if sign == "-" {
            base - k
        } else {
            return None;
        };
        (RTMIN..=RTMAX).contains(&v).then_some(v)
    };
    let v = if let Some(r) = name.strip_prefix("RTMIN") {
        rt(RTMIN, r)
    } else if let Some(r) = name.strip_prefix("RTMAX") {
        rt(RTMAX, r)
    } else {
        None
    };
    v.ok_or_else(|| BadSignal(raw.into()))
}

/// The name of a signal number (`SIGTERM`), for messages.
pub fn signal_name(n: i32) -> String {
    SIGNALS.iter().find(|(_, v)| *v == n).map(|(s, _)| format!("SIG{s}")).unwrap_or_else(|| format!("signal {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_docker() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("term"), Ok(15));
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("SIGNOPE").is_err());
        assert_eq!(signal_name(9), "SIGKILL");
    }
}
