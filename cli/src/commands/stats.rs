//! `stats [-a] [--no-stream] [--format] [CONTAINER...]`: docker's table of CPU %, memory
//! usage and limit, network and block I/O and PIDs, read from each container's cgroup and
//! network namespace; refreshed every second (the screen cleared as docker's does) until
//! interrupted, or printed once with `--no-stream`.

use crate::cli::StatsArgs;
use crate::commands::format::{check_format, print_rows};
use crate::commands::util::{bytes_size, human_size};
use anyhow::bail;
use rbuild_runtime::container::stats::{self, Sample};
use rbuild_runtime::container::{self, Container};
use rbuild_store::Store;
use rbuild_template::Value;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn header() -> Value {
    Value::map([
        ("BlockIO", Value::from("BLOCK I/O")),
        ("CPUPerc", "CPU %".into()),
        ("Container", "CONTAINER".into()),
        ("ID", "CONTAINER ID".into()),
        ("MemPerc", "MEM %".into()),
        ("MemUsage", "MEM USAGE / LIMIT".into()),
        ("Name", "NAME".into()),
        ("NetIO", "NET I/O".into()),
        ("PIDs", "PIDS".into()),
    ])
}

/// One row (docker's StatsEntry, keys sorted as its JSON has them).
fn row(given: &str, c: &Container, now: Option<&Sample>, before: Option<&Sample>, trunc: bool) -> Value {
    let zero = Sample::default();
    let s = now.unwrap_or(&zero);
    let cpu = before.map_or(0.0, |b| s.cpu_percent(b));
    Value::object([
        ("BlockIO", format!("{} / {}", human_size(s.block_read), human_size(s.block_write)).into()),
        ("CPUPerc", format!("{cpu:.2}%").into()),
        ("Container", given.to_string().into()),
        ("ID", (if trunc { c.short_id() } else { c.id() }).to_string().into()),
        ("MemPerc", format!("{:.2}%", s.memory_percent()).into()),
        ("MemUsage", format!("{} / {}", bytes_size(s.memory_used()), bytes_size(s.memory_limit)).into()),
        ("Name", c.config.name.clone().into()),
        ("NetIO", format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)).into()),
        ("PIDs", s.pids.to_string().into()),
    ])
}

/// The containers to show: those named (as named), or every running one (all with -a).
fn targets(store: &Store, a: &StatsArgs) -> anyhow::Result<Vec<(String, Container)>> {
    if a.containers.is_empty() {
        return Ok(container::list(store)?
            .into_iter()
            .filter(|c| a.all || c.running())
            .map(|c| (c.short_id().to_string(), c))
            .collect());
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for n in &a.containers {
        match container::find(store, n) {
            Ok(c) => out.push((n.clone(), c)),
            Err(_) => missing.push(format!("No such container: {n}")),
        }
    }
    if !missing.is_empty() {
        bail!("{}", missing.join("\n"));
    }
    Ok(out)
}

pub fn stats(store: &Store, a: StatsArgs) -> anyhow::Result<ExitCode> {
    check_format(a.format.as_deref())?;
    let mut list = targets(store, &a)?;
    let mut before: Vec<Option<Sample>> = list.iter().map(|(_, c)| stats::sample(c)).collect();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now: Vec<Option<Sample>> = list.iter().map(|(_, c)| stats::sample(c)).collect();
        let rows: Vec<Value> = list
            .iter()
            .zip(now.iter().zip(&before))
            .map(|((given, c), (n, b))| row(given, c, n.as_ref(), b.as_ref(), !a.no_trunc))
            .collect();
        if !a.no_stream {
            out!("\x1b[2J\x1b[H")?;
        }
        print_rows(a.format.as_deref(), DEFAULT, &rows, &header())?;
        std::io::stdout().flush()?;
        if a.no_stream || (list.is_empty() && !a.containers.is_empty()) {
            return Ok(ExitCode::SUCCESS);
        }
        before = now;
        if a.containers.is_empty() {
            // Containers started or stopped meanwhile come and go, as docker's do.
            let fresh = targets(store, &a)?;
            before = fresh
                .iter()
                .map(|(_, c)| list.iter().position(|(_, o)| o.id() == c.id()).and_then(|i| before[i].clone()))
                .collect();
            list = fresh;
        }
    }
}
