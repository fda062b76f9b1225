//! The API the builder uses: run one process on a stack of layers in the sandbox, stream
//! its output, and hand back the writable layer.

use crate::error::{Result, RuntimeError, Step};
use crate::spec::{Lifecycle, Limits, Mount, Network, Process, Spec};
use crate::user::Accounts;
use crate::{caps, rootfs};
use rbuild_store::Store;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// One sandboxed process on an image's layers.
#[derive(Debug, Clone)]
pub struct StepRequest {
    /// Layer snapshots, top first (the init layer is added on top).
    pub lowers: Vec<PathBuf>,
    pub args: Vec<String>,
    /// The environment as the image config has it (PATH, HOSTNAME and HOME are added as
    /// docker adds them).
    pub env: Vec<String>,
    pub cwd: String,
    /// A USER spec, resolved through the layers' /etc/passwd and /etc/group.
    pub user: String,
    pub network: Network,
    pub mounts: Vec<Mount>,
    /// When this turns true (Ctrl-C), the sandbox is killed and the step fails.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Where a step ran (removed when dropped): its writable layer is `upper()`.
#[derive(Debug)]
pub struct StepDir {
    pub dir: rbuild_store::TempDir,
}

impl StepDir {
    pub fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }
}

/// docker's process environment: default PATH and HOSTNAME, the given variables, HOME.
pub fn process_env(env: &[String], hostname: &str, home: &str) -> Vec<String> {
    let mut out = vec![format!("PATH={}", crate::DEFAULT_PATH), format!("HOSTNAME={hostname}")];
    for e in env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        match out.iter_mut().find(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) == key) {
            Some(x) => *x = e.clone(),
            None => out.push(e.clone()),
        }
    }
    if !out.iter().any(|e| e.starts_with("HOME=")) {
        out.push(format!("HOME={}", if home.is_empty() { "/" } else { home }));
    }
    out
}

/// Runs the process to completion; `output` receives stdout and stderr as they come.
/// Returns the exit code and the directory holding the writable layer.
pub fn run_step(store: &Store, req: &StepRequest, output: &mut dyn FnMut(&[u8])) -> Result<(i32, StepDir)> {
    let step_dir = StepDir { dir: store.temp_guard("step")? };
    let dir = step_dir.dir.path().to_path_buf();
    for d in ["upper", "work", "rootfs"] {
        std::fs::create_dir(dir.join(d)).step(|| format!("creating {}", dir.join(d).display()))?;
    }
    let id = crate::rootfs::rand_hex() + &crate::rootfs::rand_hex();
    let hostname = id[..12].to_string();
    std::fs::write(dir.join("hosts"), b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        .step(|| "writing hosts".into())?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n")).step(|| "writing hostname".into())?;
    std::fs::write(dir.join("resolv.conf"), std::fs::read("/etc/resolv.conf").unwrap_or_default())
        .step(|| "writing resolv.conf".into())?;
    let mut lowers = vec![rootfs::ensure_init_layer(&store.state_dir())?];
    lowers.extend(req.lowers.iter().cloned());
    let user = Accounts::from_layers(&lowers).resolve(&req.user)?;
    let spec = Spec {
        id,
        hostname: hostname.clone(),
        lowers,
        upper: Some((dir.join("upper"), dir.join("work"))),
        volatile_upper: true,
        rootfs: dir.join("rootfs"),
        readonly_rootfs: false,
        mounts: req.mounts.clone(),
        etc_files: vec![
            ("/etc/hosts".into(), dir.join("hosts")),
            ("/etc/hostname".into(), dir.join("hostname")),
            ("/etc/resolv.conf".into(), dir.join("resolv.conf")),
        ],
        process: Process {
            args: req.args.clone(),
            env: process_env(&req.env, &hostname, &user.home),
            cwd: if req.cwd.is_empty() { "/".into() } else { req.cwd.clone() },
            uid: user.uid,
            gid: user.gid,
            groups: user.groups,
            tty: false,
            stdin: false,
            init: false,
        },
        network: req.network,
        ports: vec![],
        caps: caps::mask_of(caps::DOCKER_DEFAULT),
        seccomp: true,
        no_new_privs: true,
        cgroup: None,
        limits: Limits::default(),
        lifecycle: Lifecycle::default(),
    };
    let spec_path = dir.join("spec.json");
    crate::shim::write_spec(&spec, &spec_path)?;
    let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
    let (r, w) = std::io::pipe().step(|| "creating a pipe".into())?;
    let w2 = w.try_clone().step(|| "creating a pipe".into())?;
    let mut child = Command::new(exe)
        .arg(crate::shim::SHIM_ARG)
        .arg(&spec_path)
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::from(w2))
        .spawn()
        .step(|| "starting the sandbox".into())?;
    // Cancellation kills the monitor; its sandbox dies with it (PDEATHSIG, pid namespace)
    // and its mounts with its mount namespace.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(cancel) = req.cancel.clone() {
        let finished = finished.clone();
        let pid = rustix::process::Pid::from_raw(child.id() as i32);
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            while !finished.load(Ordering::SeqCst) {
                if cancel.load(Ordering::SeqCst) {
                    if let Some(pid) = pid {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
    }
    let mut r = r;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => output(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RuntimeError::io("reading the step's output", e)),
        }
    }
    let status = child.wait().step(|| "waiting for the sandbox".into());
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    let status = status?;
    let code =
        status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9));
    Ok((code, step_dir))
}
