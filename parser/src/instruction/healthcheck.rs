//! HEALTHCHECK's arguments and flags, checked as BuildKit checks them.

use super::flags::{parse_go_duration, FlagType, Flags};
use super::{HealthConfig, Healthcheck};
use crate::ast::Node;

fn parse_interval(v: Option<String>, name: &str) -> Result<i64, String> {
    let Some(s) = v.filter(|s| !s.is_empty()) else { return Ok(0) };
    let d = parse_go_duration(&s)?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(format!("Interval {name:?} cannot be less than 1ms"));
    }
    Ok(d)
}

pub(crate) fn parse_healthcheck(n: &Node) -> Result<Healthcheck, String> {
    if n.args.is_empty() {
        return Err("HEALTHCHECK requires at least one argument".into());
    }
    let typ = n.args[0].to_uppercase();
    let rest = &n.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let f = Flags::parse(
        &n.flags,
        &[
            ("interval", FlagType::Str),
            ("timeout", FlagType::Str),
            ("start-period", FlagType::Str),
            ("start-interval", FlagType::Str),
            ("retries", FlagType::Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    let cmd: Vec<String> = if rest.is_empty() {
        vec![]
    } else if n.json {
        rest.to_vec()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err("Missing command after HEALTHCHECK CMD".into());
    }
    let mut test = vec![if n.json { "CMD".to_string() } else { "CMD-SHELL".to_string() }];
    test.extend(cmd);
    let retries = match f.string("retries").filter(|s| !s.is_empty()) {
        None => 0,
        Some(r) => {
            let v: i64 = r.parse().map_err(|_| format!("strconv.ParseInt: parsing {r:?}: invalid syntax"))?;
            if !(i32::MIN as i64..=i32::MAX as i64).contains(&v) {
                return Err(format!("strconv.ParseInt: parsing {r:?}: value out of range"));
            }
            if v < 0 {
                return Err(format!("--retries cannot be negative ({v})"));
            }
            v
        }
    };
    Ok(Healthcheck::Cmd(HealthConfig {
        test,
        interval: parse_interval(f.string("interval"), "interval")?,
        timeout: parse_interval(f.string("timeout"), "timeout")?,
        start_period: parse_interval(f.string("start-period"), "start-period")?,
        start_interval: parse_interval(f.string("start-interval"), "start-interval")?,
        retries,
    }))
}
