//! The API the builder uses: run one process on a stack of layers in the sandbox, stream
//! its output, and hand back the writable layer. A build step is a sandbox like any
//! container ([`SpecBuilder`]): its own cgroup with docker's device rules, namespaces,
//! docker's capabilities and seccomp profile.

use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::rootfs;
use crate::sandbox::spec::{Command, Limits, Mount, Network, Root, SecurityOptions, SpecBuilder};
use crate::user::Accounts;
use rbuild_store::Store;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;

/// One sandboxed process on an image's layers.
#[derive(Debug, Clone)]
pub struct StepRequest {
    /// Layer snapshots, top first (the init layer is added on top). They do not change
    /// while the build runs: what they hold at /etc/passwd and /etc/group is remembered.
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
    /// Capabilities, no_new_privs (the build's `--security-opt`).
    pub security: SecurityOptions,
    /// (name, address) lines added to /etc/hosts (the build's `--add-host`).
    pub extra_hosts: Vec<(String, String)>,
    pub limits: Limits,
    /// When this turns true (Ctrl-C), the sandbox is killed and the step fails.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Where a step ran: its writable layer is `upper()`. Dropped, the upper (unless the
/// commit moved it away) and the overlay's work dir go, and the rest — the /etc files,
/// the spec, the mount point — is kept for this process's next step ([`release_scratch`]
/// removes what is kept).
#[derive(Debug)]
pub struct StepDir {
    dir: Option<rbuild_store::TempDir>,
}

impl StepDir {
    pub fn path(&self) -> &std::path::Path {
        self.dir.as_ref().map_or(std::path::Path::new(""), |d| d.path())
    }

    pub fn upper(&self) -> PathBuf {
        self.path().join("upper")
    }
}

/// Step directories of finished steps, for the next ones of this process. Each step made
/// and removed eight inodes on the store's filesystem besides its layer; on ext4 every
/// new inode skips the recently freed ones of its group, a cost that grew with each step
/// of a build. A directory is taken by one step at a time (parallel stages take two).
static SCRATCH: std::sync::Mutex<Vec<rbuild_store::TempDir>> = std::sync::Mutex::new(Vec::new());

impl Drop for StepDir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let emptied = ["upper", "work"].iter().all(|d| rbuild_store::layer::remove_tree(&dir.path().join(d)).is_ok());
        if emptied {
            if let Ok(mut kept) = SCRATCH.lock() {
                kept.push(dir);
            }
        }
    }
}

/// A step directory under `store`'s temp dir (one kept from an earlier step, or new),
/// with a fresh `upper` and `work` and a `rootfs` mount point.
fn step_dir(store: &Store) -> Result<StepDir> {
    let tmp = store.tmp_dir();
    let kept = SCRATCH.lock().ok().and_then(|mut k| {
        let i = k.iter().position(|d| d.path().parent() == Some(tmp.as_path()))?;
        Some(k.swap_remove(i))
    });
    let (dir, fresh) = match kept {
        Some(d) => (d, false),
        None => (store.temp_guard("step")?, true),
    };
    let dirs: &[&str] = if fresh { &["upper", "work", "rootfs"] } else { &["upper", "work"] };
    for d in dirs {
        let p = dir.path().join(d);
        std::fs::create_dir(&p).step(|| format!("creating {}", p.display()))?;
    }
    Ok(StepDir { dir: Some(dir) })
}

/// Removes the step directories this process kept (the end of a build).
pub fn release_scratch() {
    let kept = SCRATCH.lock().map(|mut k| std::mem::take(&mut *k)).unwrap_or_default();
    drop(kept);
    crate::user::forget_snapshots();
}

/// Runs the process to completion; `output` receives stdout and stderr as they come.
/// Returns the exit code and the directory holding the writable layer.
pub fn run_step(store: &Store, req: &StepRequest, output: &mut dyn FnMut(&[u8])) -> Result<(i32, StepDir)> {
    let step_dir = step_dir(store)?;
    let dir = step_dir.path().to_path_buf();
    let id = rootfs::rand_hex() + &rootfs::rand_hex();
    let hostname = &id[..12];
    let etc = crate::sandbox::etc::EtcOptions { extra_hosts: req.extra_hosts.clone(), ..Default::default() };
    crate::sandbox::etc::write(&dir, &req.network, hostname, &etc)?;
    let mut lowers = vec![rootfs::ensure_init_layer(&store.state_dir())?];
    lowers.extend(req.lowers.iter().cloned());
    let user = Accounts::from_snapshots(&lowers).resolve(&req.user)?;
    let root = Root {
        lowers,
        upper: Some((dir.join("upper"), dir.join("work"))),
        volatile_upper: true,
        mountpoint: dir.join("rootfs"),
        readonly: false,
    };
    let cmd = Command { args: req.args.clone(), env: req.env.clone(), cwd: req.cwd.clone(), ..Default::default() };
    let spec = SpecBuilder::new(&id, hostname, root)
        .process(&cmd, &user)
        .mounts(req.mounts.clone())
        .etc_files(&dir)
        .network(req.network.clone(), vec![])
        .security(&req.security)?
        .limits(req.limits.clone())
        .store(&store.state_dir())
        .build();
    let spec_path = dir.join("spec.json");
    crate::shim::write_spec(&spec, &spec_path)?;
    let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
    let (r, w) = std::io::pipe().step(|| "creating a pipe".into())?;
    let w2 = w.try_clone().step(|| "creating a pipe".into())?;
    let mut child = std::process::Command::new(exe)
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
    // A shim killed on cancel (or crashed) could not remove the step's cgroup.
    let cg = crate::sandbox::cgroups::Cgroup::at(&spec.cgroup.path);
    if cg.exists() {
        cg.destroy()?;
    }
    let status = status?;
    let code =
        status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9));
    Ok((code, step_dir))
}
