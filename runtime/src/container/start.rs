//! `start`: the shim takes over, in the foreground (this process becomes it) or detached
//! (a new session that monitors the container).

use super::Container;
use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::spec::{Lifecycle, Network};
use rbuild_store::Store;

/// How `start` runs the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Replace this process with the shim: the terminal is the container's (its output
    /// is logged as well).
    Foreground,
    /// A detached shim monitors the container; output goes to the log.
    Detached,
}

fn lifecycle(store: &Store, c: &Container) -> Lifecycle {
    // Every container's output is logged (docker's json-file), attached or not.
    let mut l = Lifecycle { state_file: Some(c.state_path()), log_file: Some(c.log_path()), ..Default::default() };
    if c.config.auto_remove {
        l.remove_dir = Some(c.dir.clone());
        l.unpin = Some((store.root().to_path_buf(), format!("container-{}", c.config.id)));
        l.remove_volumes = c.config.anonymous_volumes.iter().map(|v| store.volumes_dir().join(v)).collect();
    }
    l
}

/// Starts a created (or stopped) container. In the foreground this does not return on
/// success: the process becomes the shim and exits with the container.
pub fn start(store: &Store, c: &Container, mode: StartMode) -> Result<()> {
    if c.running() {
        return Ok(());
    }
    let mut spec = c.spec()?;
    // Snapshots may have been pruned while the container was stopped (they are pinned, but
    // a crash may have left them missing): make sure they exist.
    for d in &c.config.layers {
        store.ensure_snapshot(d)?;
    }
    spec.lifecycle = lifecycle(store, c);
    // `--network container:X`: X's namespace and its /etc files, as they are now.
    if let Network::Container(other) = &c.config.network {
        let o = super::find(store, other)?;
        let st = o.state();
        if !o.running() {
            return Err(RuntimeError::Conflict(format!(
                "cannot join network of a non running container: {}",
                o.config.name
            )));
        }
        spec.join_netns = Some(format!("/proc/{}/ns/net", st.pid).into());
        spec.etc_files = crate::sandbox::etc::FILES.iter().map(|f| (format!("/etc/{f}"), o.dir.join(f))).collect();
    }
    crate::shim::write_spec(&spec, &c.spec_path())?;
    let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
    match mode {
        StartMode::Foreground => {
            use std::os::unix::process::CommandExt;
            let err = std::process::Command::new(exe).arg(crate::shim::SHIM_ARG).arg(c.spec_path()).exec();
            Err(RuntimeError::io("starting the shim", err))
        }
        StartMode::Detached => {
            let out = std::process::Command::new(exe)
                .arg(crate::shim::SHIM_ARG)
                .arg(c.spec_path())
                .arg("--detach")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .step(|| "starting the shim".into())?;
            let mut first = String::new();
            use std::io::BufRead;
            let stdout = out.stdout.ok_or_else(|| RuntimeError::Invalid("no shim output".into()))?;
            let _ = std::io::BufReader::new(stdout).read_line(&mut first);
            match first.trim() {
                "started" => Ok(()),
                "" => Err(RuntimeError::Invalid("the container failed to start".into())),
                other => Err(RuntimeError::Invalid(other.strip_prefix("error: ").unwrap_or(other).to_string())),
            }
        }
    }
}
