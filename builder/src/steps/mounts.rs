//! RUN --mount, as BuildKit's frontend and executor do it: binds of the context, a stage,
//! an image or a named context (read-only, or writable with the writes thrown away),
//! cache directories kept in the store and shared between builds as `sharing=` says,
//! tmpfs, secrets and ssh agent sockets.
//!
//! A step's mounts are planned first (what they are, and what of them is part of the
//! cache key: never a secret), then opened only when the step runs (cache directories
//! locked, secrets written to memory-backed files, ssh sockets proxied).

use crate::build::Ctx;
use crate::builder::Secret;
use crate::context::{items_digest, Source};
use crate::error::{BuildError, Result};
use crate::sources::Files;
use crate::stage::State;
use crate::steps::cachemount::NewCache;
use crate::steps::ssh::AgentProxy;
use rbuild_parser::instruction::{Mount, MountType, Run, Sharing};
use rbuild_runtime::{Mount as RtMount, MountKind, View};
use rbuild_store::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One planned mount: where, and what.
pub(crate) struct Planned {
    pub(crate) target: String,
    pub(crate) what: What,
}

pub(crate) enum What {
    Tmpfs { size: Option<u64> },
    Bind { files: Files, path: String, rw: bool },
    Cache { id: String, sharing: Sharing, owner: (u32, u32), mode: u32, readonly: bool, init: Option<(Files, String)> },
    Secret { id: String, required: bool, env: Option<String>, file: bool, owner: (u32, u32), mode: u32 },
    Ssh { id: String, required: bool, owner: (u32, u32), mode: u32 },
}

/// Where a mount's files are while the step runs.
enum Pending {
    Host {
        path: PathBuf,
        readonly: bool,
    },
    /// `path` inside view `index` (mounted around the step).
    View {
        index: usize,
        path: String,
        readonly: bool,
    },
    Tmpfs(String),
}

/// A step's mounts, open: what they hold (locks, temp dirs, proxies) is released when it
/// is dropped.
#[derive(Default)]
pub(crate) struct Opened {
    pending: Vec<(String, Pending)>,
    /// Overlays to mount around the step (stages and images, writable binds).
    pub(crate) views: Vec<View>,
    /// Environment the mounts add (SSH_AUTH_SOCK, secrets as variables).
    pub(crate) env: Vec<String>,
    guards: Vec<Guard>,
}

#[allow(dead_code)] // held for their Drop
enum Guard {
    Temp(TempDir),
    Shm(ShmDir),
    Lock(std::fs::File),
    Proxy(AgentProxy),
}

/// A directory on /dev/shm, removed when dropped.
struct ShmDir(PathBuf);

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Opened {
    /// Where the mounts go in the step's root.
    pub(crate) fn targets(&self) -> Vec<String> {
        self.pending.iter().map(|(t, _)| t.clone()).collect()
    }

    /// The runtime's mounts, once the views are mounted at `roots`.
    pub(crate) fn mounts(&self, roots: &[PathBuf]) -> Result<Vec<RtMount>> {
        let mut out = Vec::new();
        for (target, p) in &self.pending {
            let kind = match p {
                Pending::Host { path, readonly } => MountKind::Bind { source: path.clone(), readonly: *readonly },
                Pending::View { index, path, readonly } => MountKind::Bind {
                    source: crate::context::resolve_in_root(&roots[*index], path, true)?,
                    readonly: *readonly,
                },
                Pending::Tmpfs(options) => MountKind::Tmpfs { options: options.clone() },
            };
            out.push(RtMount { target: target.clone(), kind });
        }
        Ok(out)
    }
}

impl Ctx<'_> {
    /// What each `--mount` of `run` is, and for each what the cache key holds of its
    /// content (a digest of the context files it shows, the key of the stage or image it
    /// shows; nothing for caches, tmpfs, secrets and sockets).
    pub(crate) fn plan_mounts(&self, st: &State, run: &Run) -> Result<(Vec<Planned>, Vec<String>)> {
        let mut plans = Vec::new();
        let mut contents = Vec::new();
        let mut ssh_index = 0;
        for m in &run.mounts {
            let target = match m.typ {
                MountType::Secret if m.target.is_empty() => match &m.env {
                    Some(_) => String::new(),
                    None => format!("/run/secrets/{}", basename(m.id.as_deref().unwrap_or_default())),
                },
                MountType::Ssh if m.target.is_empty() => format!("/run/buildkit/ssh_agent.{ssh_index}"),
                _ => absolute(&st.config.config.working_dir, &m.target),
            };
            if m.typ == MountType::Ssh {
                ssh_index += 1;
            }
            if target == "/" {
                return Err(BuildError::MountTarget(m.target.clone()));
            }
            let source = clean_source(m.source.as_deref());
            let owner = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
            let (what, content) = match m.typ {
                MountType::Tmpfs => (What::Tmpfs { size: m.size }, String::new()),
                MountType::Bind => {
                    let files = self.mount_files(m)?;
                    let content = self.files_digest(&files, &source)?;
                    (What::Bind { files, path: source, rw: !m.read_only }, content)
                }
                MountType::Cache => {
                    let init = match &m.from {
                        Some(_) => Some((self.mount_files(m)?, source)),
                        None => None,
                    };
                    let id = m.id.clone().unwrap_or_else(|| target.clone());
                    self.note_cache_mount(&id);
                    let what = What::Cache {
                        id,
                        sharing: m.sharing,
                        owner,
                        mode: m.mode.unwrap_or(0o755),
                        readonly: m.read_only,
                        init,
                    };
                    (what, String::new())
                }
                MountType::Secret => {
                    let what = What::Secret {
                        id: m.id.clone().unwrap_or_default(),
                        required: m.required,
                        env: m.env.clone(),
                        file: m.env.is_none() || !m.target.is_empty(),
                        owner,
                        mode: m.mode.unwrap_or(0o400),
                    };
                    (what, String::new())
                }
                MountType::Ssh => {
                    let id = m.id.clone().unwrap_or_else(|| "default".into());
                    (What::Ssh { id, required: m.required, owner, mode: m.mode.unwrap_or(0o600) }, String::new())
                }
            };
            plans.push(Planned { target, what });
            contents.push(content);
        }
        Ok((plans, contents))
    }

    /// The files a bind or a cache mount shows: `from=` (a stage, an image, a named
    /// context) or the build context.
    fn mount_files(&self, m: &Mount) -> Result<Files> {
        match &m.from {
            Some(r) => self.files_of(r),
            None => {
                // The build context as BuildKit has it: without what .dockerignore leaves out.
                let ctx = self.opts.context.as_ref().ok_or(BuildError::BindWithoutContext)?;
                let ignore = (!self.ignore.patterns.is_empty()).then(|| self.ignore.clone());
                Ok(Files::Dir { root: ctx.clone(), ignore })
            }
        }
    }

    /// The part of the cache key for the files a bind shows below `path`.
    fn files_digest(&self, files: &Files, path: &str) -> Result<String> {
        match files {
            Files::Layers { key, .. } => Ok(format!("{key}:{path}")),
            Files::Dir { root, ignore } => {
                let rel = crate::context::relative_source(path)?;
                let source = Source { root: root.clone(), ignore: ignore.as_ref(), exclude: None, parallel: true };
                let mut items = source.select(if rel.is_empty() { "." } else { &rel }).unwrap_or_default();
                if let Some(sc) = &self.statcache {
                    sc.fill(&mut items)?;
                }
                Ok(items_digest(&items))
            }
        }
    }

    /// Opens the planned mounts for step `step`.
    pub(crate) fn open_mounts(&self, plans: Vec<Planned>, step: usize) -> Result<Opened> {
        let mut o = Opened::default();
        let mut caches: Vec<(String, PathBuf)> = Vec::new();
        for Planned { target, what } in plans {
            match what {
                What::Tmpfs { size } => {
                    o.pending.push((target, Pending::Tmpfs(size.map(|s| format!("size={s}")).unwrap_or_default())))
                }
                What::Bind { files, path, rw } => self.open_bind(&mut o, target, files, &path, rw)?,
                What::Cache { id, sharing, owner, mode, readonly, init } => {
                    // One step mounting one cache twice holds it once (a second lock
                    // would wait for the first).
                    let dir = match caches.iter().find(|(i, _)| *i == id) {
                        Some((_, dir)) => dir.clone(),
                        None => {
                            let new = NewCache { owner, mode, init };
                            let (dir, lock) = self.cache_dir(&id, sharing, new, step)?;
                            o.guards.push(Guard::Lock(lock));
                            caches.push((id, dir.clone()));
                            dir
                        }
                    };
                    o.pending.push((target, Pending::Host { path: dir, readonly }));
                }
                What::Secret { id, required, env, file, owner, mode } => {
                    let Some(Secret(value)) = self.opts.secrets.get(&id) else {
                        if required {
                            return Err(BuildError::SecretMissing(id));
                        }
                        continue;
                    };
                    if let Some(name) = env {
                        o.env.push(format!("{name}={}", String::from_utf8_lossy(value)));
                    }
                    if file {
                        let (dir, guard) = secret_dir(self)?;
                        let path = dir.join("secret");
                        o.guards.push(guard);
                        write_secret(&path, value, owner, mode)?;
                        o.pending.push((target, Pending::Host { path, readonly: true }));
                    }
                }
                What::Ssh { id, required, owner, mode } => {
                    let Some(agent) = self.opts.ssh.get(&id) else {
                        if required {
                            return Err(BuildError::SshMissing(id));
                        }
                        continue;
                    };
                    let dir = self.store.temp_guard("ssh")?;
                    let proxy = AgentProxy::start(agent, &dir.path().join("agent.sock"), owner, mode)?;
                    if !o.env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
                        o.env.push(format!("SSH_AUTH_SOCK={target}"));
                    }
                    o.pending.push((target, Pending::Host { path: proxy.path().to_path_buf(), readonly: false }));
                    o.guards.push(Guard::Proxy(proxy));
                    o.guards.push(Guard::Temp(dir));
                }
            }
        }
        Ok(o)
    }

    /// A bind of `files` below `path`: a directory directly (or through an overlay that
    /// takes the writes of `rw`), layers through an overlay mounted around the step.
    fn open_bind(&self, o: &mut Opened, target: String, files: Files, path: &str, rw: bool) -> Result<()> {
        let upper = if rw { Some(self.bind_upper(o)?) } else { None };
        let lowers = match files {
            Files::Dir { root, ignore } => {
                let rel = crate::context::relative_source(path)?;
                let source = crate::context::resolve_in_root(&root, &rel, true)?;
                let hidden = match &ignore {
                    Some(m) if source.is_dir() => crate::context::ignored_below(&source, Path::new(&rel), m)?,
                    _ => vec![],
                };
                if !rw && hidden.is_empty() {
                    o.pending.push((target, Pending::Host { path: source, readonly: true }));
                    return Ok(());
                }
                // An overlay on the directory: whiteouts hide what .dockerignore leaves
                // out, and the writes of `rw` go to its throwaway upper.
                let (upper, work) = self.bind_upper(o)?;
                whiteouts(&source, &upper, &hidden)?;
                o.pending.push((target, Pending::View { index: o.views.len(), path: "/".into(), readonly: !rw }));
                o.views.push(View { lowers: vec![source], upper: Some((upper, work)), volatile_upper: true });
                return Ok(());
            }
            Files::Layers { layers, .. } => self.lowers(&layers)?,
        };
        o.pending.push((target, Pending::View { index: o.views.len(), path: path.to_string(), readonly: !rw }));
        o.views.push(View { lowers, upper, volatile_upper: true });
        Ok(())
    }

    /// A throwaway (upper, work) pair for an overlay around the step.
    fn bind_upper(&self, o: &mut Opened) -> Result<(PathBuf, PathBuf)> {
        let d = self.store.temp_guard("bind")?;
        for s in ["upper", "work"] {
            std::fs::create_dir(d.path().join(s)).map_err(BuildError::io("creating", d.path().join(s)))?;
        }
        let pair = (d.path().join("upper"), d.path().join("work"));
        o.guards.push(Guard::Temp(d));
        Ok(pair)
    }
}

/// Whiteouts in `upper` for `hidden` (paths below `lower`), with the directories above
/// them made as they are in `lower` (mode, owner), so that an overlay hides them.
fn whiteouts(lower: &Path, upper: &Path, hidden: &[PathBuf]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for h in hidden {
        let mut at = PathBuf::new();
        for c in h.parent().into_iter().flat_map(|p| p.components()) {
            at.push(c);
            let (up, low) = (upper.join(&at), lower.join(&at));
            if up.exists() {
                continue;
            }
            let m = std::fs::metadata(&low).map_err(BuildError::io("stat", &low))?;
            std::fs::create_dir(&up).map_err(BuildError::io("creating", &up))?;
            std::fs::set_permissions(&up, std::fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(BuildError::io("chmod", &up))?;
            rustix::fs::chown(&up, Some(rustix::fs::Uid::from_raw(m.uid())), Some(rustix::fs::Gid::from_raw(m.gid())))
                .map_err(BuildError::io("chown", &up))?;
        }
        let w = upper.join(h);
        rustix::fs::mknodat(rustix::fs::CWD, &w, rustix::fs::FileType::CharacterDevice, rustix::fs::Mode::empty(), 0)
            .map_err(BuildError::io("creating a whiteout at", &w))?;
    }
    Ok(())
}

/// A mount target as BuildKit takes it: relative ones are below the working directory.
fn absolute(workdir: &str, target: &str) -> String {
    let joined = if target.starts_with('/') { target.to_string() } else { format!("{workdir}/{target}") };
    crate::meta::clean_path(&joined)
}

/// A bind's `source=` as a path below its root (`/` when absent).
fn clean_source(source: Option<&str>) -> String {
    crate::meta::clean_path(source.unwrap_or("/"))
}

fn basename(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

/// A private directory for a secret's file, in memory when the machine has a tmpfs at
/// /dev/shm (nothing of it reaches a disk), else in the store's temp area. Removed with
/// the returned guard.
fn secret_dir(cx: &Ctx<'_>) -> Result<(PathBuf, Guard)> {
    let shm = Path::new("/dev/shm");
    let on_tmpfs = rustix::fs::statfs(shm).is_ok_and(|s| s.f_type == 0x0102_1994);
    if on_tmpfs {
        let mut b = [0u8; 8];
        let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
        let p = shm.join(format!("rbuild-secret-{}-{}", std::process::id(), hex::encode(b)));
        std::fs::create_dir(&p).map_err(BuildError::io("creating", &p))?;
        let guard = ShmDir(p.clone());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).map_err(BuildError::io("chmod", &p))?;
        return Ok((p, Guard::Shm(guard)));
    }
    let d = cx.store.temp_guard("secret")?;
    Ok((d.path().to_path_buf(), Guard::Temp(d)))
}

/// Writes a secret's file as the mount shows it (owner and mode).
fn write_secret(path: &Path, value: &[u8], owner: (u32, u32), mode: u32) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode_private()
        .open(path)
        .map_err(BuildError::io("creating", path))?;
    f.write_all(value).map_err(BuildError::io("writing", path))?;
    rustix::fs::fchown(&f, Some(rustix::fs::Uid::from_raw(owner.0)), Some(rustix::fs::Gid::from_raw(owner.1)))
        .map_err(BuildError::io("chown", path))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(BuildError::io("chmod", path))
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// The key part of the mount `m` (what it is, and `content`).
pub(crate) fn mount_key(k: &mut crate::cache_key::KeyBuilder, m: &Mount, content: &str) {
    let typ = match m.typ {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    };
    let sharing = match m.sharing {
        Sharing::Shared => "shared",
        Sharing::Private => "private",
        Sharing::Locked => "locked",
    };
    k.text(typ)
        .text(&m.target)
        .opt_text(m.from.as_ref().map(|f| f.name.as_str()))
        .opt_text(m.source.as_deref())
        .flag(m.read_only)
        .opt_text(m.id.as_deref())
        .opt_text(m.env.as_deref())
        .text(sharing)
        .opt_num(m.mode.map(u64::from))
        .opt_num(m.uid.map(u64::from))
        .opt_num(m.gid.map(u64::from))
        .opt_num(m.size)
        .flag(m.required)
        .text(content);
}
