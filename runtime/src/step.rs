//! The API the builder uses: run one process on a stack of layers in the sandbox, stream
//! its output, and hand back the writable layer. A build step is a sandbox like any
//! container ([`SpecBuilder`]): its own cgroup with docker's device rules, namespaces,
//! docker's capabilities and seccomp profile.

use crate::error::{Result, RuntimeError, Step};
use crate::sandbox::rootfs;
use crate::sandbox::spec::{cgroup_path, Command, Limits, Mount, Network, Root, SecurityOptions, Spec, SpecBuilder};
use crate::user::Accounts;
use rbuild_store::Store;
use std::io::{PipeReader, Read};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};

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
    /// Another step may follow this one: its sandbox's shim is started while this one
    /// runs (a shim nobody takes is an exec and a namespace made for nothing, on a core
    /// the build could use).
    pub run_follows: bool,
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
        // The finished step's upper and work dirs are moved out of the way for the next
        // step, into the temp dir the step dir is in, and removed by the store's reaper
        // thread: freeing their inodes was ~0.5 ms of each step's critical path
        // (synchronous discards on ext4 mounted with `discard`).
        let tmp = dir.path().parent().unwrap_or(dir.path()).to_path_buf();
        let emptied = ["upper", "work"].iter().all(|d| {
            let from = dir.path().join(d);
            rbuild_store::reaper::move_aside(&from, &tmp) || rbuild_store::layer::remove_tree(&from).is_ok()
        });
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

/// Removes the step directories this process kept and ends the shim started for a next
/// step (the end of a build).
pub fn release_scratch() {
    // The build leaves nothing in the temp dir: what the reaper was handed goes first.
    rbuild_store::reaper::wait();
    let kept = SCRATCH.lock().map(|mut k| std::mem::take(&mut *k)).unwrap_or_default();
    drop(kept);
    reap_finished(true);
    release_spares();
    crate::user::forget_snapshots();
}

/// A shim started before its step: exec'd and with its network namespace made while the
/// step before it ran (the machine's other core), waiting for its spec on stdin. Each is
/// used for one step; unused, it exits when its stdin closes.
struct Spare {
    /// The sandbox id it was started for (its cgroup is made).
    id: String,
    /// Where it was started ([`namespaces`]).
    namespaces: (u64, u64),
    child: Child,
    /// Its stdin: the spec goes out, the exit code comes back.
    ctl: UnixStream,
    /// The read end of its stdout and stderr.
    out: PipeReader,
}

/// A shim given its spec: it, its output, its stdin.
type Started = (Child, PipeReader, UnixStream);

/// At most one per running step: the next step's shim.
static SPARES: std::sync::Mutex<Vec<Spare>> = std::sync::Mutex::new(Vec::new());

impl Spare {
    fn start() -> Result<Spare> {
        let id = rootfs::rand_hex() + &rootfs::rand_hex();
        let exe = std::env::current_exe().step(|| "finding the rbuild binary".into())?;
        let (r, w) = std::io::pipe().step(|| "creating a pipe".into())?;
        let w2 = w.try_clone().step(|| "creating a pipe".into())?;
        let (ctl, theirs) = UnixStream::pair().step(|| "creating a socket pair".into())?;
        let child = std::process::Command::new(exe)
            .arg(crate::shim::SHIM_ARG)
            .arg(crate::shim::SPEC_ON_STDIN)
            .arg("--cgroup")
            .arg(cgroup_path(&id))
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::from(w))
            .stderr(Stdio::from(w2))
            .spawn()
            .step(|| "starting the sandbox".into())?;
        Ok(Spare { id, namespaces: namespaces("thread-self"), child, ctl, out: r })
    }

    /// Hands the shim its spec; None when it is gone (killed by a Ctrl-C meanwhile).
    fn give(self, spec: &[u8]) -> Option<Started> {
        use std::io::Write;
        let Spare { id, mut child, mut ctl, out, .. } = self;
        if ctl.write_all(spec).and_then(|()| ctl.shutdown(std::net::Shutdown::Write)).is_ok() {
            return Some((child, out, ctl));
        }
        drop(ctl);
        let _ = child.kill();
        Spare::reap(&id, child);
        None
    }

    /// Waits for a shim that was not given a step, and removes its cgroup if it could
    /// not (killed).
    fn reap(id: &str, mut child: Child) {
        let _ = child.wait();
        let _ = remove_left_cgroup(&cgroup_path(id));
    }
}

fn broken_pipe() -> std::io::Error {
    std::io::ErrorKind::BrokenPipe.into()
}

/// The mount and network namespaces of `who` (`thread-self`, or `self`: the process's
/// main thread). A step with mounts of other stages runs from a thread with a mount
/// namespace of its own, where they are mounted: its shim must start there.
fn namespaces(who: &str) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let ino = |ns: &str| std::fs::metadata(format!("/proc/{who}/ns/{ns}")).map_or(0, |m| m.ino());
    (ino("mnt"), ino("net"))
}

/// A shim for the next step, started ahead ([`Spare`]) where this thread is, or now.
fn take_spare() -> Result<Spare> {
    let here = namespaces("thread-self");
    let spare = SPARES.lock().ok().and_then(|mut s| {
        let i = s.iter().position(|x| x.namespaces == here)?;
        Some(s.swap_remove(i))
    });
    match spare {
        Some(s) => Ok(s),
        None => Spare::start(),
    }
}

/// Starts the shim of the step after this one (from the process's namespaces: a thread
/// of its own is a step's alone).
fn start_next() {
    if namespaces("thread-self") != namespaces("self") {
        return;
    }
    if let Ok(next) = Spare::start() {
        if let Ok(mut s) = SPARES.lock() {
            s.push(next);
        }
    }
}

/// Starts the shims of a build's first `n` RUN steps now, when every RUN step will run
/// (`--no-cache`): their sandboxes are made while the builder reads the context and the
/// base images, not when it reaches the step. Those of parallel stages take one each.
pub fn start_ahead(n: usize) {
    let have = SPARES.lock().map_or(n, |s| s.len());
    for _ in have..n {
        start_next();
    }
}

/// Ends the shims started ahead (their stdin closes, they exit).
fn release_spares() {
    let spares = SPARES.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    for s in spares {
        drop(s.ctl);
        Spare::reap(&s.id, s.child);
    }
}

/// The spec of the step's sandbox `id`.
fn step_spec(store: &Store, req: &StepRequest, dir: &std::path::Path, id: &str) -> Result<Spec> {
    let hostname = &id[..12];
    let etc = crate::sandbox::etc::EtcOptions { extra_hosts: req.extra_hosts.clone(), ..Default::default() };
    crate::sandbox::etc::write(dir, &req.network, hostname, &etc)?;
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
    Ok(SpecBuilder::new(id, hostname, root)
        .process(&cmd, &user)
        .mounts(req.mounts.clone())
        .etc_files(dir)
        .network(req.network.clone(), vec![])
        .security(&req.security)?
        .limits(req.limits.clone())
        .store(&store.state_dir())
        .build())
}

/// The step's shim running its spec, and the read end of its output; the shim of the
/// step after it starts meanwhile.
fn start_shim(
    store: &Store,
    req: &StepRequest,
    dir: &std::path::Path,
) -> Result<(Spec, Child, PipeReader, UnixStream)> {
    let mut spare = take_spare()?;
    let mut fresh = false;
    loop {
        let spec = match step_spec(store, req, dir, &spare.id) {
            Ok(s) => s,
            Err(e) => {
                // Unused: it serves the next step.
                if let Ok(mut s) = SPARES.lock() {
                    s.push(spare);
                }
                return Err(e);
            }
        };
        let data = serde_json::to_vec(&spec).map_err(|e| RuntimeError::json("writing the spec", e))?;
        match spare.give(&data) {
            Some((child, out, ctl)) => {
                if req.run_follows {
                    start_next();
                }
                return Ok((spec, child, out, ctl));
            }
            // The shim started ahead is gone (a Ctrl-C): one of the step's own.
            None if !fresh => {
                spare = Spare::start()?;
                fresh = true;
            }
            None => return Err(RuntimeError::io("starting the sandbox", broken_pipe())),
        }
    }
}

/// Runs the process to completion; `output` receives stdout and stderr as they come.
/// Returns the exit code and the directory holding the writable layer.
pub fn run_step(store: &Store, req: &StepRequest, output: &mut dyn FnMut(&[u8])) -> Result<(i32, StepDir)> {
    reap_finished(false);
    let step_dir = step_dir(store)?;
    let (spec, mut child, mut r, mut ctl) = start_shim(store, req, step_dir.path())?;
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
    let mut buf = [0u8; 16 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => output(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RuntimeError::io("reading the step's output", e)),
        }
    }
    // The shim reports the exit code, then removes the cgroup while the step is committed.
    let mut reported = String::new();
    let _ = ctl.read_to_string(&mut reported);
    if let Ok(code) = reported.trim().parse::<i32>() {
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut f) = FINISHING.lock() {
            f.push((child, spec.cgroup.path));
        }
        return Ok((code, step_dir));
    }
    let status = child.wait().step(|| "waiting for the sandbox".into());
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    // A shim killed on cancel (or crashed) could not remove the step's cgroup.
    remove_left_cgroup(&spec.cgroup.path)?;
    let status = status?;
    let code =
        status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9));
    Ok((code, step_dir))
}

/// Shims of finished steps, removing their cgroups, and those cgroups.
static FINISHING: std::sync::Mutex<Vec<(Child, String)>> = std::sync::Mutex::new(Vec::new());

/// Reaps the shims of finished steps that exited (all of them, waiting, with `wait`),
/// removing a cgroup that one could not (killed).
fn reap_finished(wait: bool) {
    let Ok(mut f) = FINISHING.lock() else { return };
    let mut left = Vec::new();
    for (mut child, cgroup) in std::mem::take(&mut *f) {
        let done = if wait { child.wait().map(|_| true) } else { child.try_wait().map(|s| s.is_some()) };
        if matches!(done, Ok(false)) {
            left.push((child, cgroup));
            continue;
        }
        let _ = remove_left_cgroup(&cgroup);
    }
    *f = left;
}

/// Removes the cgroup at `path` if its shim could not (it was killed, or crashed).
fn remove_left_cgroup(path: &str) -> Result<()> {
    let cg = crate::sandbox::cgroups::Cgroup::at(path);
    if cg.exists() {
        cg.destroy()?;
    }
    Ok(())
}
