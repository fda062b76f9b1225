//! HEALTHCHECK's arguments and flags, checked as BuildKit checks them.

use super::error::InstructionError;
use super::flags::{parse_go_duration, FlagType, Flags};
use super::{HealthConfig, Healthcheck};
use crate::ast::Node;

fn parse_interval(v: Option<String>, name: &'static str) -> Result<i64, InstructionError> {
    let Some(s) = v.filter(|s| !s.is_empty()) else { return Ok(0) };
    let d = parse_go_duration(&s)?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(InstructionError::IntervalTooShort(name));
    }
    Ok(d)
}

pub(crate) fn parse_healthcheck(n: &Node) -> Result<Healthcheck, InstructionError> {
    if n.args.is_empty() {
        return Err(InstructionError::AtLeastOne("HEALTHCHECK"));
    }
    let typ = n.args[0].to_uppercase();
    let rest = &n.args[1..];
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(InstructionError::HealthcheckNoneArguments);
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
        return Err(InstructionError::HealthcheckType(typ));
    }
    let cmd: Vec<String> = if rest.is_empty() {
        vec![]
    } else if n.json {
        rest.to_vec()
    } else {
        vec![rest.join(" ")]
    };
    if cmd.is_empty() {
        return Err(InstructionError::HealthcheckCommand);
    }
    let mut test = vec![if n.json { "CMD".to_string() } else { "CMD-SHELL".to_string() }];
    test.extend(cmd);
    let retries = match f.string("retries").filter(|s| !s.is_empty()) {
        None => 0,
        Some(r) => {
            let v: i64 = r.parse().map_err(|source| InstructionError::RetriesSyntax { value: r.clone(), source })?;
            if !(i32::MIN as i64..=i32::MAX as i64).contains(&v) {
                return Err(InstructionError::RetriesRange(r));
            }
            if v < 0 {
                return Err(InstructionError::RetriesNegative(v));
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
