//! Container verbs that look at or into containers: ps, logs, exec, wait, top, pause,
//! unpause, cp, diff, commit, export, rename, port (the lifecycle is in `lifecycle.rs`).

use crate::cli::{CommitArgs, ExecArgs, ExportArgs, LogsArgs, PortArgs, PsArgs, TopArgs};
use crate::commands::event;
use crate::commands::filters::{health_word, ContainerFilter};
use crate::commands::format::{check_format, container_labels, created_at, print_rows};
use crate::commands::lifecycle::{each, event_of};
use crate::commands::util::{ago, human_size};
use anyhow::{bail, Context};
use rbuild_runtime::container::exec;
use rbuild_runtime::container::{self, Container, LogDriver};
use rbuild_runtime::state::Status;
use rbuild_runtime::{fsops, logs};
use rbuild_store::config::parse_rfc3339;
use rbuild_store::{Reference, Store};
use rbuild_template::Value;
use std::io::IsTerminal;
use std::process::ExitCode;

/// docker's STATUS column: `Up 5 seconds (healthy)`, `Restarting (1) 2 seconds ago`, …
fn status_text(c: &Container) -> String {
    let s = c.state();
    let up = || ago(parse_rfc3339(&s.started_at)).trim_end_matches(" ago").to_string();
    let health = match health_word(c, &s) {
        "none" => String::new(),
        "starting" => " (health: starting)".into(),
        h => format!(" ({h})"),
    };
    match s.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}{health}", up()),
        Status::Paused => format!("Up {} (Paused)", up()),
        Status::Restarting => format!("Restarting ({}) {}", s.exit_code, ago(parse_rfc3339(&s.finished_at))),
        Status::Exited => format!("Exited ({}) {}", s.exit_code, ago(parse_rfc3339(&s.finished_at))),
    }
}

fn ports_text(c: &Container) -> String {
    c.config
        .ports
        .iter()
        .map(|p| format!("{}:{}->{}/{}", p.host_ip, p.host_port, p.container_port, p.proto))
        .collect::<Vec<_>>()
        .join(", ")
}

/// docker's `stringutils.Ellipsis`.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        s.chars().take(max - 1).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

/// One row of `ps`: docker's ContainerContext (keys sorted, as its JSON has them).
fn container_row(store: &Store, c: &Container, trunc: bool, size: bool) -> Value {
    // docker's daemon/list.go: the path, then the arguments, those with a space quoted.
    let mut argv: Vec<String> = c.config.entrypoint.clone();
    argv.extend(c.config.cmd.iter().cloned());
    let mut cmd = argv
        .iter()
        .enumerate()
        .map(|(i, a)| if i > 0 && a.contains(' ') { format!("'{a}'") } else { a.clone() })
        .collect::<Vec<_>>()
        .join(" ");
    if trunc {
        cmd = ellipsis(&cmd, 20);
    }
    let labels = container_labels(store, c);
    let label_text = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let mounts = c
        .config
        .mounts
        .iter()
        .map(|m| {
            let n = if m.name.is_empty() { m.source.clone() } else { m.name.clone() };
            if trunc {
                ellipsis(&n, 15)
            } else {
                n
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let created = rbuild_store::config::parse_rfc3339(&c.config.created);
    let st = c.state();
    let state = st.status.as_str();
    let size_text = if size {
        let rw = rbuild_store::snapshot::content_bytes(&c.upper());
        let image: u64 = c.config.layers.iter().filter_map(|d| store.blob_size(d).ok()).sum();
        format!("{} (virtual {})", human_size(rw), human_size(rw + image))
    } else {
        "0B".to_string()
    };
    let labels_for_method = labels.clone();
    Value::object([
        ("Command", Value::from(format!("{cmd:?}"))),
        ("CreatedAt", created_at(created).into()),
        ("ID", (if trunc { c.short_id().to_string() } else { c.id().to_string() }).into()),
        ("Image", c.config.image.clone().into()),
        (
            "Label",
            Value::method(move |args| {
                let k = args.first().map(rbuild_template::print_value).unwrap_or_default();
                Ok(labels_for_method.get(&k).cloned().unwrap_or_default().into())
            }),
        ),
        ("Labels", label_text.into()),
        ("LocalVolumes", c.config.mounts.iter().filter(|m| m.typ == "volume").count().to_string().into()),
        ("Mounts", mounts.into()),
        ("Names", c.config.name.clone().into()),
        ("Networks", c.config.network.names().join(",").into()),
        ("Ports", ports_text(c).into()),
        ("RunningFor", ago(created).into()),
        ("Size", size_text.into()),
        ("State", state.into()),
        ("Status", status_text(c).into()),
    ])
}

fn container_header() -> Value {
    Value::map([
        ("Command", Value::from("COMMAND")),
        ("CreatedAt", "CREATED AT".into()),
        ("ID", "CONTAINER ID".into()),
        ("Image", "IMAGE".into()),
        ("Label", Value::method(|_| Ok("LABEL".into()))),
        ("Labels", "LABELS".into()),
        ("LocalVolumes", "LOCAL VOLUMES".into()),
        ("Mounts", "MOUNTS".into()),
        ("Names", "NAMES".into()),
        ("Networks", "NETWORKS".into()),
        ("Ports", "PORTS".into()),
        ("RunningFor", "CREATED".into()),
        ("Size", "SIZE".into()),
        ("State", "STATE".into()),
        ("Status", "STATUS".into()),
    ])
}

pub fn ps(store: &Store, a: PsArgs) -> anyhow::Result<ExitCode> {
    check_format(a.format.as_deref())?;
    let all = container::list(store)?;
    let filter = ContainerFilter::parse(store, &all, &a.filter)?;
    let last = if a.latest { 1 } else { a.last };
    // `-n`/`-l` show containers in every state; so do status filters.
    let every_state = a.all || last > 0 || filter.selects_states();
    let mut shown: Vec<&Container> = all
        .iter()
        .filter(|c| every_state || c.running())
        .filter(|c| filter.matches(c, &container_labels(store, c)))
        .collect();
    if last > 0 {
        shown.truncate(last as usize);
    }
    if a.quiet {
        for c in shown {
            outln!("{}", if a.no_trunc { c.id() } else { c.short_id() })?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Value> = shown.iter().map(|c| container_row(store, c, !a.no_trunc, a.size)).collect();
    let default = if a.size {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    print_rows(a.format.as_deref(), default, &rows, &container_header())?;
    Ok(ExitCode::SUCCESS)
}

pub fn logs(store: &Store, a: LogsArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    if c.config.log_driver == LogDriver::None {
        bail!("configured logging driver does not support reading");
    }
    let tail = if a.tail == "all" || a.tail.starts_with('-') {
        None
    } else {
        Some(a.tail.parse::<usize>().with_context(|| format!("invalid --tail {}", a.tail))?)
    };
    let since = a.since.as_deref().map(|s| crate::commands::timeopts::timestamp(s, None)).transpose()?;
    let until = a.until.as_deref().map(|s| crate::commands::timeopts::timestamp(s, None)).transpose()?;
    let o = logs::LogOptions { follow: a.follow, timestamps: a.timestamps, tail, since, until };
    logs::print(&c, &o, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())?;
    Ok(ExitCode::SUCCESS)
}

pub fn pause(store: &Store, names: &[String], paused: bool) -> anyhow::Result<ExitCode> {
    each(store, names, |c| {
        container::pause(c, paused)?;
        event_of(store, if paused { "pause" } else { "unpause" }, c);
        Ok(())
    })
}

pub fn wait(store: &Store, names: &[String]) -> anyhow::Result<ExitCode> {
    for n in names {
        let c = container::find(store, n)?;
        let code = container::wait(&c, None).unwrap_or(-1);
        outln!("{code}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit code of an exec that could not start: docker's 126 (cannot run) or 127 (not
/// found). The runtime says it as "… (exit code N)" today; once `RuntimeError` carries it
/// (`ExecFailed { code, message }`), this reads the variant.
fn exec_failure_code(e: &rbuild_runtime::RuntimeError) -> Option<u8> {
    match e {
        rbuild_runtime::RuntimeError::ExecFailed { code, .. } => u8::try_from(*code).ok(),
        _ => None,
    }
}

pub fn exec_cmd(store: &Store, a: ExecArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    if !c.running() {
        bail!("container {} is not running", c.config.id);
    }
    event(
        store,
        "container",
        &format!("exec_start: {}", a.command.join(" ")),
        &c.config.id,
        &[("name", &c.config.name)],
    );
    let r = exec::exec(
        &c,
        &exec::ExecOptions {
            args: a.command,
            env: a.env,
            workdir: a.workdir,
            user: a.user,
            tty: a.tty,
            interactive: a.interactive,
            privileged: a.privileged,
            detach: a.detach,
        },
    );
    match r {
        Ok(code) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
        // The program could not start: docker's 126; anything else (not running, …) is
        // the daemon refusing, 1.
        Err(e) => match exec_failure_code(&e) {
            Some(code) => Err(crate::commands::Reported { message: e.to_string(), code }.into()),
            None => Err(e.into()),
        },
    }
}

/// `top CTR [ps options]`: docker runs `ps` (default `-ef`) on the host and keeps the
/// header and the rows whose PID is one of the container's processes.
pub fn top(store: &Store, a: TopArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    if !c.running() {
        bail!("container {} is not running", c.config.id);
    }
    let pids: Vec<i32> = fsops::top(&c).into_iter().map(|(pid, ..)| pid).collect();
    let args = if a.ps_args.is_empty() { vec!["-ef".to_string()] } else { a.ps_args.clone() };
    let out = std::process::Command::new("ps").args(&args).output().context("running ps")?;
    if !out.status.success() {
        bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    out!("{}", crate::commands::system::top_rows(&String::from_utf8_lossy(&out.stdout), &pids)?)?;
    Ok(ExitCode::SUCCESS)
}

pub fn cp(store: &Store, source: &str, dest: &str) -> anyhow::Result<ExitCode> {
    let split = |s: &str| -> Option<(String, String)> {
        let (c, p) = s.split_once(':')?;
        (!c.contains('/') && !c.is_empty()).then(|| (c.to_string(), p.to_string()))
    };
    // `-` is a tar stream: of SRC on stdout, or extracted into DEST from stdin.
    match (split(source), split(dest)) {
        (Some((c, p)), None) if dest == "-" => {
            let mut out = std::io::stdout();
            if out.is_terminal() {
                bail!("cowardly refusing to write a tar archive to a terminal: redirect the output");
            }
            fsops::copy_out_tar(store, &container::find(store, &c)?, &p, &mut out)?;
        }
        (None, Some((c, p))) if source == "-" => {
            let mut input = std::io::stdin();
            if input.is_terminal() {
                bail!("cp - expects a tar archive on standard input, not a terminal");
            }
            fsops::copy_in_tar(store, &container::find(store, &c)?, &mut input, &p)?;
        }
        (Some((c, p)), None) => fsops::copy_out(store, &container::find(store, &c)?, &p, std::path::Path::new(dest))?,
        (None, Some((c, p))) => fsops::copy_in(store, &container::find(store, &c)?, std::path::Path::new(source), &p)?,
        _ => bail!("exactly one of SOURCE and DEST must be CONTAINER:PATH"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn diff(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let c = container::find(store, name)?;
    for (k, p) in fsops::diff(store, &c)? {
        outln!("{k} {p}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn commit(store: &Store, a: CommitArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    let changes = a.changes.clone();
    let message = a.message.clone();
    let img = fsops::commit(
        store,
        &c,
        |cfg| {
            // docker's image Comment is the commit message (none without -m): inspect's
            // Comment reads the config's `comment`.
            match &message {
                Some(m) => cfg.other.insert("comment".into(), serde_json::Value::String(m.clone())),
                None => cfg.other.remove("comment"),
            };
            rbuild_builder::meta::apply_changes(cfg, &changes).map_err(|e| e.into())
        },
        a.author,
        a.message,
    )?;
    match &a.image {
        Some(n) => store.set_name(&Reference::parse(n)?, img.manifest_digest, img.manifest_size)?,
        None => store.add_untagged(img.manifest_digest, img.manifest_size)?,
    }
    event(store, "container", "commit", &c.config.id, &[("name", &c.config.name)]);
    outln!("{}", img.config_digest)?;
    Ok(ExitCode::SUCCESS)
}

pub fn export(store: &Store, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    match &a.output {
        Some(p) => {
            let mut f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            fsops::export(store, &c, &mut f)?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = std::io::stdout();
            fsops::export(store, &c, &mut out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rename(store: &Store, name: &str, new: &str) -> anyhow::Result<ExitCode> {
    let mut c = container::find(store, name)?;
    let valid = new.len() >= 2
        && new.as_bytes()[0].is_ascii_alphanumeric()
        && new.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !valid {
        bail!("Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    if c.config.name == new {
        bail!("Renaming a container with the same name as its current name");
    }
    if container::list(store)?.iter().any(|o| o.config.name == new) {
        bail!("Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.", container::find(store, new)?.config.id);
    }
    let old = std::mem::replace(&mut c.config.name, new.to_string());
    c.save_config()?;
    event(store, "container", "rename", &c.config.id, &[("name", new), ("oldName", &format!("/{old}"))]);
    Ok(ExitCode::SUCCESS)
}

/// `port CTR [PRIVATE_PORT[/PROTO]]`: docker's `80/tcp -> 0.0.0.0:8080` lines, or for one
/// port just where it is published.
/// `0.0.0.0:8080`, `[::]:8080`, as docker's `port` prints them.
fn host_addr(p: &rbuild_runtime::Port) -> String {
    if p.host_ip.contains(':') {
        format!("[{}]:{}", p.host_ip, p.host_port)
    } else {
        format!("{}:{}", p.host_ip, p.host_port)
    }
}

pub fn port(store: &Store, a: PortArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    match &a.port {
        None => {
            for p in &c.config.ports {
                outln!("{}/{} -> {}", p.container_port, p.proto, host_addr(p))?;
            }
        }
        Some(spec) => {
            let (num, proto) = spec.split_once('/').unwrap_or((spec.as_str(), "tcp"));
            let n: u16 = num.parse().with_context(|| format!("invalid port {spec:?}"))?;
            let hits: Vec<_> =
                c.config.ports.iter().filter(|p| p.container_port == n && p.proto.to_string() == proto).collect();
            if hits.is_empty() {
                bail!("No public port '{num}/{proto}' published for {}", a.container);
            }
            for p in hits {
                outln!("{}", host_addr(p))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
