//! Container verbs: run, create, start, ps, logs, stop, kill, restart, rm, exec, wait, top,
//! pause, unpause, cp, diff, commit, export, rename, port, and inspect for containers.

use crate::cli::{CommitArgs, ExecArgs, ExportArgs, KillArgs, LogsArgs, PsArgs, RmArgs, RunArgs, StartArgs, StopArgs};
use crate::commands::util::{ago, table};
use anyhow::{bail, Context};
use rbuild_runtime::container::{self, Container, CreateOptions, StartMode};
use rbuild_runtime::spec::{Limits, Network};
use rbuild_runtime::state::Status;
use rbuild_runtime::{exec, fsops, logs, signal};
use rbuild_store::config::parse_rfc3339;
use rbuild_store::{Reference, Store};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

fn options(a: &RunArgs) -> anyhow::Result<CreateOptions> {
    Ok(CreateOptions {
        image: a.image.clone(),
        name: a.name.clone(),
        args: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        volumes: a.volume.clone(),
        volumes_from: a.volumes_from.clone(),
        tmpfs: a.tmpfs.clone(),
        network: if a.network == "host" { Network::Host } else { Network::None },
        publish: a.publish.clone(),
        tty: a.tty,
        interactive: a.interactive,
        init: a.init,
        limits: Limits {
            memory: a.memory.as_deref().map(container::parse_bytes).transpose()?,
            pids: a.pids_limit,
            cpus: a.cpus,
        },
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        read_only: a.read_only,
        hostname: a.hostname.clone(),
        auto_remove: a.rm,
    })
}

pub fn create(store: &Store, a: RunArgs) -> anyhow::Result<ExitCode> {
    let c = container::create(store, &options(&a)?)?;
    outln!("{}", c.config.id)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(store: &Store, a: RunArgs) -> anyhow::Result<ExitCode> {
    if a.tty && !std::io::stdin().is_terminal() && a.interactive {
        bail!("the input device is not a TTY");
    }
    let c = container::create(store, &options(&a)?)?;
    if a.detach {
        if let Err(e) = container::start(store, &c, StartMode::Detached) {
            if a.rm {
                let _ = container::remove(store, &c, true, true);
            }
            return Err(e.into());
        }
        outln!("{}", c.config.id)?;
        return Ok(ExitCode::SUCCESS);
    }
    std::io::stdout().flush()?;
    // Becomes the shim: returns only if that failed.
    let err = container::start(store, &c, StartMode::Foreground).unwrap_err();
    if a.rm {
        let _ = container::remove(store, &c, true, true);
    }
    Err(err.into())
}

pub fn start(store: &Store, a: StartArgs) -> anyhow::Result<ExitCode> {
    if a.attach {
        let [one] = a.containers.as_slice() else { bail!("you cannot start and attach multiple containers at once") };
        let c = container::find(store, one)?;
        std::io::stdout().flush()?;
        return Err(container::start(store, &c, StartMode::Foreground).unwrap_err().into());
    }
    let mut failed = false;
    for name in &a.containers {
        match container::find(store, name)
            .map_err(anyhow::Error::from)
            .and_then(|c| container::start(store, &c, StartMode::Detached).map_err(anyhow::Error::from))
        {
            Ok(()) => outln!("{name}")?,
            Err(e) => {
                errln!("error: {}", crate::commands::render_error(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn status_text(c: &Container) -> String {
    let s = c.state();
    match s.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", ago(parse_rfc3339(&s.started_at)).trim_end_matches(" ago")),
        Status::Paused => format!("Up {} (Paused)", ago(parse_rfc3339(&s.started_at)).trim_end_matches(" ago")),
        Status::Exited => format!("Exited ({}) {}", s.exit_code, ago(parse_rfc3339(&s.finished_at))),
    }
}

fn ports_text(c: &Container) -> String {
    c.config
        .ports
        .iter()
        .map(|p| format!("{}:{}->{}/tcp", p.host_ip, p.host_port, p.container_port))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn ps(store: &Store, a: PsArgs) -> anyhow::Result<ExitCode> {
    let all = container::list(store)?;
    let shown: Vec<&Container> = all.iter().filter(|c| a.all || c.running()).collect();
    if a.quiet {
        for c in shown {
            outln!("{}", if a.no_trunc { c.id() } else { c.short_id() })?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows =
        vec![["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"].map(String::from).to_vec()];
    for c in shown {
        let mut cmd: Vec<String> = c.config.entrypoint.clone();
        cmd.extend(c.config.cmd.iter().cloned());
        let mut cmd = cmd.join(" ");
        if !a.no_trunc && cmd.chars().count() > 20 {
            cmd = cmd.chars().take(19).collect::<String>() + "…";
        }
        rows.push(vec![
            if a.no_trunc { c.id().to_string() } else { c.short_id().to_string() },
            c.config.image.clone(),
            format!("\"{cmd}\""),
            ago(parse_rfc3339(&c.config.created)),
            status_text(c),
            ports_text(c),
            c.config.name.clone(),
        ]);
    }
    out!("{}", table(&rows))?;
    Ok(ExitCode::SUCCESS)
}

pub fn logs(store: &Store, a: LogsArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    let tail = if a.tail == "all" {
        None
    } else {
        Some(a.tail.parse::<usize>().with_context(|| format!("invalid --tail {}", a.tail))?)
    };
    logs::print(&c, a.follow, a.timestamps, tail, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())?;
    Ok(ExitCode::SUCCESS)
}

fn each(store: &Store, names: &[String], f: impl Fn(&Container) -> anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for n in names {
        match container::find(store, n).map_err(anyhow::Error::from).and_then(|c| f(&c)) {
            Ok(()) => outln!("{n}")?,
            Err(e) => {
                errln!("error: {}", crate::commands::render_error(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn stop(store: &Store, a: StopArgs) -> anyhow::Result<ExitCode> {
    each(store, &a.containers, |c| Ok(container::stop(c, Duration::from_secs(a.time))?))
}

pub fn restart(store: &Store, a: StopArgs) -> anyhow::Result<ExitCode> {
    each(store, &a.containers, |c| {
        container::stop(c, Duration::from_secs(a.time))?;
        Ok(container::start(store, c, StartMode::Detached)?)
    })
}

pub fn kill(store: &Store, a: KillArgs) -> anyhow::Result<ExitCode> {
    let sig = signal::parse_signal(&a.signal)?;
    each(store, &a.containers, |c| Ok(container::kill(c, sig)?))
}

pub fn rm(store: &Store, a: RmArgs) -> anyhow::Result<ExitCode> {
    each(store, &a.containers, |c| Ok(container::remove(store, c, a.force, a.volumes)?))
}

pub fn pause(store: &Store, names: &[String], paused: bool) -> anyhow::Result<ExitCode> {
    each(store, names, |c| Ok(container::pause(c, paused)?))
}

pub fn wait(store: &Store, names: &[String]) -> anyhow::Result<ExitCode> {
    for n in names {
        let c = container::find(store, n)?;
        let code = container::wait(&c, None).unwrap_or(-1);
        outln!("{code}")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec_cmd(store: &Store, a: ExecArgs) -> anyhow::Result<ExitCode> {
    let c = container::find(store, &a.container)?;
    let code = exec::exec(
        &c,
        &exec::ExecOptions {
            args: a.command,
            env: a.env,
            workdir: a.workdir,
            user: a.user,
            tty: a.tty,
            interactive: a.interactive,
        },
    )?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

pub fn top(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let c = container::find(store, name)?;
    if !c.running() {
        bail!("container {name} is not running");
    }
    let mut rows = vec![["UID", "PID", "PPID", "CMD"].map(String::from).to_vec()];
    for (pid, uid, ppid, cmd) in fsops::top(&c) {
        rows.push(vec![uid.to_string(), pid.to_string(), ppid.to_string(), cmd]);
    }
    out!("{}", table(&rows))?;
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
    let img = fsops::commit(
        store,
        &c,
        |cfg| {
            rbuild_builder::meta::apply_changes(cfg, &changes)
                .map_err(|e| rbuild_runtime::RuntimeError::Invalid(e.to_string()))
        },
        a.author,
        a.message,
    )?;
    match &a.image {
        Some(n) => store.set_name(&Reference::parse(n)?, img.manifest_digest, img.manifest_size)?,
        None => store.add_untagged(img.manifest_digest, img.manifest_size)?,
    }
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
    if container::list(store)?.iter().any(|o| o.config.name == new) {
        bail!("conflict: the container name {new:?} is already in use");
    }
    c.config.name = new.to_string();
    c.save_config()?;
    Ok(ExitCode::SUCCESS)
}

pub fn port(store: &Store, name: &str) -> anyhow::Result<ExitCode> {
    let c = container::find(store, name)?;
    for p in &c.config.ports {
        outln!("{}/tcp -> {}:{}", p.container_port, p.host_ip, p.host_port)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `docker inspect` JSON for a container.
pub fn inspect_json(c: &Container) -> serde_json::Value {
    let s = c.state();
    let status = match s.status {
        Status::Created => "created",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Exited => "exited",
    };
    let mut args = c.config.entrypoint.clone();
    args.extend(c.config.cmd.iter().cloned());
    let path = args.first().cloned().unwrap_or_default();
    let ports: serde_json::Map<String, serde_json::Value> = c
        .config
        .ports
        .iter()
        .map(|p| {
            (format!("{}/tcp", p.container_port), json!([{"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}]))
        })
        .collect();
    json!({
        "Id": c.config.id,
        "Created": c.config.created,
        "Path": path,
        "Args": args.get(1..).unwrap_or(&[]),
        "State": {
            "Status": status,
            "Running": matches!(s.status, Status::Running | Status::Paused),
            "Paused": s.status == Status::Paused,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": if matches!(s.status, Status::Running | Status::Paused) { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
        },
        "Image": c.config.image_id.to_string(),
        "Name": format!("/{}", c.config.name),
        "HostConfig": {
            "NetworkMode": if c.config.network == Network::Host { "host" } else { "none" },
            "AutoRemove": c.config.auto_remove,
            "Memory": c.config.limits.memory.unwrap_or(0),
            "PidsLimit": c.config.limits.pids,
            "NanoCpus": c.config.limits.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            "CapAdd": c.config.cap_add,
            "CapDrop": c.config.cap_drop,
            "ReadonlyRootfs": c.config.read_only,
            "Init": c.config.init,
            "PortBindings": ports,
        },
        "Mounts": c.config.mounts,
        "Config": {
            "Hostname": c.config.hostname,
            "User": c.config.user,
            "Tty": c.config.tty,
            "OpenStdin": c.config.open_stdin,
            "Env": c.config.env,
            "Cmd": c.config.cmd,
            "Entrypoint": if c.config.entrypoint.is_empty() { serde_json::Value::Null } else { json!(c.config.entrypoint) },
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir,
            "StopSignal": c.config.stop_signal,
        },
        "NetworkSettings": {"Ports": c.config.ports.iter().map(|p| (format!("{}/tcp", p.container_port), json!([{"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}]))).collect::<serde_json::Map<_, _>>()},
        "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": c.upper(), "WorkDir": c.dir.join("work"), "MergedDir": c.dir.join("rootfs")}},
    })
}
