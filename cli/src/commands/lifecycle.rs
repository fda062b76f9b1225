//! The container lifecycle: create, run, start, attach, stop, restart, kill, rm, update.
//! `run` and `start -a` attach as docker's do: in the plain case (no tty, no restart
//! policy, every stream, signals proxied) this process becomes the container's shim; in
//! the others the shim runs detached and this process is an attached client, so Ctrl-P
//! Ctrl-Q can leave a `-t` container running and a restart policy outlives it.

use crate::cli::{AttachArgs, KillArgs, RmArgs, RunArgs, StartArgs, StopArgs, UpdateArgs};
use crate::commands::runopts;
use crate::commands::{event, options};
use anyhow::bail;
use rbuild_runtime::container::{self, AttachOptions, Attached, Container, StartMode, UpdateOptions};
use rbuild_runtime::signal;
use rbuild_store::Store;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

pub(crate) fn event_of(store: &Store, action: &str, c: &Container) {
    event(store, "container", action, &c.config.id, &[("image", &c.config.image), ("name", &c.config.name)]);
}

/// Starts `c` detached; its `start` event is stamped before the start, so it comes before
/// the `die` its monitor may record at once (`events` orders by time), and written only
/// when the start worked.
fn start_detached(store: &Store, c: &Container) -> anyhow::Result<()> {
    let attrs = [("image", c.config.image.as_str()), ("name", c.config.name.as_str())];
    let e = rbuild_store::Event::now("container", "start", &c.config.id, &attrs);
    container::start(store, c, StartMode::Detached)?;
    let _ = store.append_event(&e);
    Ok(())
}

/// Runs `f` on each named container, printing the name given on success (docker's
/// multi-container verbs); an error is reported and the others go on.
pub(crate) fn each(
    store: &Store,
    names: &[String],
    f: impl Fn(&Container) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
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

/// docker's `--cidfile`: refused when the file exists; written once the container is.
fn check_cidfile(a: &RunArgs) -> anyhow::Result<()> {
    if let Some(p) = &a.cidfile {
        if p.exists() {
            bail!("container ID file found, make sure the other container isn't running or delete {}", p.display());
        }
    }
    Ok(())
}

fn create_container(store: &Store, a: &RunArgs) -> anyhow::Result<Container> {
    check_cidfile(a)?;
    let c = container::create(store, &runopts::create_options(a)?)?;
    if let Some(p) = &a.cidfile {
        if let Err(e) = std::fs::write(p, &c.config.id) {
            let _ = container::remove(store, &c, true, true);
            bail!("writing the container ID file {}: {e}", p.display());
        }
    }
    event_of(store, "create", &c);
    Ok(c)
}

pub fn create(store: &Store, a: RunArgs) -> anyhow::Result<ExitCode> {
    let c = create_container(store, &a)?;
    outln!("{}", c.config.id)?;
    Ok(ExitCode::SUCCESS)
}

/// What an attached run ends with.
fn attached_code(r: Attached) -> ExitCode {
    match r {
        Attached::Exited(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Attached::Detached => ExitCode::SUCCESS,
        Attached::Signaled(sig) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
    }
}

fn detach_keys(given: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match given {
        Some(k) => options::detach_keys(k),
        None => Ok(container::attach::DEFAULT_DETACH_KEYS.to_vec()),
    }
}

pub fn run(store: &Store, a: RunArgs) -> anyhow::Result<ExitCode> {
    if a.tty && !std::io::stdin().is_terminal() && a.interactive && !a.detach {
        bail!("the input device is not a TTY");
    }
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let c = create_container(store, &a)?;
    if a.detach {
        if let Err(e) = start_detached(store, &c) {
            if a.rm {
                let _ = container::remove(store, &c, true, true);
                event_of(store, "destroy", &c);
            }
            return Err(e);
        }
        outln!("{}", c.config.id)?;
        return Ok(ExitCode::SUCCESS);
    }
    std::io::stdout().flush()?;
    event_of(store, "start", &c);
    let cfg = &c.config;
    let every_stream = (cfg.attach_stdin, cfg.attach_stdout, cfg.attach_stderr) == (cfg.open_stdin, true, true);
    let plain = !cfg.tty && cfg.restart_policy.is_no() && a.sig_proxy && every_stream;
    let result = if plain {
        // Becomes the shim: returns only if that failed.
        Err(container::start(store, &c, StartMode::Foreground).unwrap_err())
    } else {
        let o = AttachOptions {
            stdin: cfg.attach_stdin,
            stdout: cfg.attach_stdout,
            stderr: cfg.attach_stderr,
            detach_keys: keys,
            proxy_signals: a.sig_proxy,
        };
        container::start_attached(store, &c, &o)
    };
    match result {
        Ok(r) => Ok(attached_code(r)),
        Err(e) => {
            if a.rm {
                let _ = container::remove(store, &c, true, true);
            }
            Err(e.into())
        }
    }
}

pub fn start(store: &Store, a: StartArgs) -> anyhow::Result<ExitCode> {
    if a.attach || a.interactive {
        let [one] = a.containers.as_slice() else { bail!("you cannot start and attach multiple containers at once") };
        let c = container::find(store, one)?;
        let keys = detach_keys(a.detach_keys.as_deref())?;
        std::io::stdout().flush()?;
        event_of(store, "start", &c);
        let cfg = &c.config;
        let stdin = a.interactive && cfg.open_stdin;
        if !cfg.tty && cfg.restart_policy.is_no() && stdin == cfg.open_stdin && !c.running() {
            return Err(container::start(store, &c, StartMode::Foreground).unwrap_err().into());
        }
        let o = AttachOptions { stdin, stdout: true, stderr: true, detach_keys: keys, proxy_signals: true };
        return Ok(attached_code(container::start_attached(store, &c, &o)?));
    }
    each(store, &a.containers, |c| start_detached(store, c))
}

pub fn attach(store: &Store, a: AttachArgs) -> anyhow::Result<ExitCode> {
    let keys = detach_keys(a.detach_keys.as_deref())?;
    let c = container::find(store, &a.container)?;
    let stdin = !a.no_stdin && c.config.open_stdin;
    if stdin && c.config.tty && !std::io::stdin().is_terminal() {
        bail!("the input device is not a TTY");
    }
    let o = AttachOptions { stdin, stdout: true, stderr: true, detach_keys: keys, proxy_signals: a.sig_proxy };
    event_of(store, "attach", &c);
    match container::attach(&c, &o)? {
        // docker's attach ends with these words and status 1 when the user detaches.
        Attached::Detached => {
            errln!("read escape sequence");
            Ok(ExitCode::from(1))
        }
        r => Ok(attached_code(r)),
    }
}

/// `-t`: the seconds given, else the container's `--stop-timeout`, else 10; negative:
/// wait for ever.
fn stop_timeout(given: Option<i64>, c: &Container) -> Duration {
    let t = given.unwrap_or_else(|| c.stop_timeout());
    u64::try_from(t).map_or(Duration::MAX, Duration::from_secs)
}

pub fn stop(store: &Store, a: StopArgs) -> anyhow::Result<ExitCode> {
    each(store, &a.containers, |c| {
        let was_running = c.running();
        // The kill is recorded as it is sent, before the monitor's `die`, as docker's.
        if was_running {
            event_of(store, "kill", c);
        }
        container::stop(c, stop_timeout(a.time, c))?;
        if was_running {
            event_of(store, "stop", c);
        }
        Ok(())
    })
}

pub fn restart(store: &Store, a: StopArgs) -> anyhow::Result<ExitCode> {
    each(store, &a.containers, |c| {
        container::stop(c, stop_timeout(a.time, c))?;
        start_detached(store, c)?;
        event_of(store, "restart", c);
        Ok(())
    })
}

pub fn kill(store: &Store, a: KillArgs) -> anyhow::Result<ExitCode> {
    let sig = signal::parse_signal(&a.signal)?;
    each(store, &a.containers, |c| {
        // Recorded as the signal is sent, before the monitor's `die`, as docker's.
        if c.running() {
            event(store, "container", "kill", &c.config.id, &[("name", &c.config.name), ("signal", &sig.to_string())]);
        }
        container::kill(c, sig)?;
        Ok(())
    })
}

pub fn rm(store: &Store, a: RmArgs) -> anyhow::Result<ExitCode> {
    each(store, &a.containers, |c| {
        container::remove(store, c, a.force, a.volumes)?;
        event_of(store, "destroy", c);
        Ok(())
    })
}

pub fn update(store: &Store, a: UpdateArgs) -> anyhow::Result<ExitCode> {
    let o = UpdateOptions {
        memory: a.memory.as_deref().map(options::bytes).transpose()?,
        cpus: a.cpus,
        pids: a.pids_limit,
        restart: a.restart.as_deref().map(options::restart).transpose()?,
    };
    if o == UpdateOptions::default() {
        bail!("you must provide one or more flags when using this command");
    }
    each(store, &a.containers, |c| {
        let mut c = c.clone();
        container::update(&mut c, &o)?;
        event_of(store, "update", &c);
        Ok(())
    })
}

/// `system boot`: every container that was running when its monitor went away (a reboot,
/// a killed shim) and whose restart policy asks for it starts again, as dockerd restarts
/// them when it starts. There is no daemon: run it at boot (a systemd unit, `@reboot`).
pub fn boot(store: &Store) -> anyhow::Result<ExitCode> {
    let lost: Vec<String> = container::list(store)?
        .into_iter()
        .filter(container::restart::lost_and_restartable)
        .map(|c| c.config.name)
        .collect();
    if lost.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    each(store, &lost, |c| start_detached(store, c))
}
