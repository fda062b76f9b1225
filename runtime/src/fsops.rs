//! A container's files from the outside: `cp` both ways, `diff`, `export`, `commit`, `top`.
//!
//! A running container is reached through `/proc/PID/root`; a stopped one through its
//! overlay mounted in a mount namespace private to one thread. Paths inside the container
//! are always resolved with `openat2(RESOLVE_IN_ROOT)`, so a symlink in the container
//! cannot lead a copy to the host's files.

use crate::container::{image_lowers, Container};
use crate::error::{Result, RuntimeError, Step};
use crate::rootfs;
use crate::volume::copy_tree;
use rbuild_store::config::{History, ImageConfig};
use rbuild_store::layer::WriteOptions;
use rbuild_store::{Image, Store};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use std::path::{Path, PathBuf};

/// An error from outside the runtime (the `--change` instructions of `commit`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong reaching a container's files.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    #[error("no such directory in the container: {0}")]
    NoSuchDirectory(String),
    #[error("{0}: a socket cannot be copied")]
    Socket(String),
    #[error("destination \"{container}:{path}\" must be a directory")]
    NotADirectory { container: String, path: String },
    #[error("the container's image config: {0}")]
    ImageConfig(#[source] BoxError),
    #[error("applying the changes: {0}")]
    Changes(#[source] BoxError),
}

fn resolve(root: &OwnedFd, path: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        root,
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The layers of a container, top first, with its writable layer on top.
fn lowers_with_upper(store: &Store, c: &Container) -> Result<Vec<PathBuf>> {
    let image = image_of(store, c)?;
    let mut l = vec![c.upper()];
    l.extend(image_lowers(store, &image)?);
    Ok(l)
}

/// The container's image (by the ID it was created from; its blobs are pinned).
pub fn image_of(store: &Store, c: &Container) -> Result<Image> {
    let cfg = ImageConfig::from_json(&store.read_blob(&c.config.image_id)?)
        .map_err(|e| CopyError::ImageConfig(Box::new(e)))?;
    let layers = c
        .config
        .layers
        .iter()
        .map(|d| Ok(rbuild_store::LayerRef { diff_id: *d, size: store.blob_size(d)? }))
        .collect::<Result<Vec<_>>>()?;
    let manifest =
        rbuild_store::image::build_manifest(c.config.image_id, store.blob_size(&c.config.image_id)?, &layers)?;
    Ok(Image {
        manifest_digest: c.config.image_id,
        manifest_size: 0,
        manifest,
        config_digest: c.config.image_id,
        config: cfg,
        layers,
        names: vec![],
    })
}

/// Runs `f` on the container's root. `writable`: the stopped container's upper layer is
/// mounted writable (for copying in).
fn with_root<R: Send>(
    store: &Store,
    c: &Container,
    writable: bool,
    f: impl FnOnce(&Path) -> Result<R> + Send,
) -> Result<R> {
    let st = c.state();
    if c.running() {
        return f(Path::new(&format!("/proc/{}/root", st.pid)));
    }
    if writable {
        let image = image_of(store, c)?;
        let lowers = image_lowers(store, &image)?;
        rootfs::with_mounted(&store.tmp_dir(), &lowers, Some((c.upper(), c.dir.join("work"))), f)?
    } else {
        let lowers = lowers_with_upper(store, c)?;
        rootfs::with_mounted(&store.tmp_dir(), &lowers, None, f)?
    }
}

fn base(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// `cp CONTAINER:SRC DEST`.
pub fn copy_out(store: &Store, c: &Container, src: &str, dest: &Path) -> Result<()> {
    with_root(store, c, false, |root| {
        let rootfd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .step(|| "opening the container root".into())?;
        let s = resolve(&rootfd, src, OFlags::PATH)
            .map_err(|_| CopyError::NotFound { path: src.to_string(), container: c.config.name.clone() })?;
        let st = rustix::fs::fstat(&s).step(|| format!("stat {src}"))?;
        let contents_only = src.ends_with("/.");
        let target = if dest.is_dir() && !contents_only { dest.join(base(src)) } else { dest.to_path_buf() };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let d = resolve(&rootfd, src, OFlags::RDONLY | OFlags::DIRECTORY).step(|| format!("opening {src}"))?;
            std::fs::create_dir_all(&target).step(|| format!("creating {}", target.display()))?;
            copy_tree(&fd_path(&d), &target)?;
            let _ = rustix::fs::chmod(&target, Mode::from_raw_mode(st.st_mode & 0o7777));
        } else {
            let f = resolve(&rootfd, src, OFlags::RDONLY).step(|| format!("opening {src}"))?;
            let mut from = std::fs::File::from(f);
            let mut to = std::fs::File::create(&target).step(|| format!("creating {}", target.display()))?;
            std::io::copy(&mut from, &mut to).step(|| format!("copying to {}", target.display()))?;
            rustix::fs::chmod(&target, Mode::from_raw_mode(st.st_mode & 0o7777)).step(|| "chmod".into())?;
        }
        Ok(())
    })
}

/// `cp SRC CONTAINER:DEST`.
pub fn copy_in(store: &Store, c: &Container, src: &Path, dest: &str) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).step(|| format!("stat {}", src.display()))?;
    with_root(store, c, true, |root| {
        let rootfd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .step(|| "opening the container root".into())?;
        let dest_is_dir = resolve(&rootfd, dest, OFlags::PATH | OFlags::DIRECTORY).is_ok();
        let contents_only = src.to_string_lossy().ends_with("/.");
        let target = if dest_is_dir && !contents_only {
            format!(
                "{}/{}",
                dest.trim_end_matches('/'),
                src.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
            )
        } else {
            dest.to_string()
        };
        let (parent, name) = match target.trim_end_matches('/').rsplit_once('/') {
            Some((p, n)) => (if p.is_empty() { "/" } else { p }, n.to_string()),
            None => ("/", target.clone()),
        };
        let pfd = resolve(&rootfd, parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|_| CopyError::NoSuchDirectory(parent.to_string()))?;
        if meta.is_dir() {
            match rustix::fs::mkdirat(&pfd, name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(RuntimeError::io(format!("creating {target}"), e)),
            }
            let d =
                resolve(&rootfd, &target, OFlags::RDONLY | OFlags::DIRECTORY).step(|| format!("opening {target}"))?;
            copy_tree(src, &fd_path(&d))?;
        } else {
            let mut from = std::fs::File::open(src).step(|| format!("opening {}", src.display()))?;
            let f = rustix::fs::openat(
                &pfd,
                name.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .step(|| format!("creating {target}"))?;
            let mut to = std::fs::File::from(f);
            std::io::copy(&mut from, &mut to).step(|| format!("copying to {target}"))?;
            use std::os::unix::fs::PermissionsExt;
            to.set_permissions(std::fs::Permissions::from_mode(meta.permissions().mode() & 0o7777))
                .step(|| "chmod".into())?;
        }
        Ok(())
    })
}

/// `cp CONTAINER:SRC -`: SRC as a tar stream on `out`, as docker writes it: the entry
/// named by SRC's last component (a directory with everything below it, a symlink as the
/// link itself), or for `DIR/.` the directory's contents under `./`.
pub fn copy_out_tar(store: &Store, c: &Container, src: &str, out: &mut (dyn std::io::Write + Send)) -> Result<()> {
    with_root(store, c, false, |root| {
        let rootfd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .step(|| "opening the container root".into())?;
        let missing =
            || RuntimeError::from(CopyError::NotFound { path: src.to_string(), container: c.config.name.clone() });
        let contents_only = src.ends_with("/.") || src == ".";
        // The last component itself, not what a symlink there points to.
        let fd = resolve(&rootfd, src, OFlags::PATH | OFlags::NOFOLLOW).map_err(|_| missing())?;
        let name = if contents_only { ".".to_string() } else { base(src).to_string() };
        let name = if name.is_empty() { ".".to_string() } else { name };
        let mut tar = rbuild_store::tar::Writer::new(std::io::BufWriter::with_capacity(1 << 20, out));
        tar_entry(&rootfd, src, &fd, name.as_bytes(), &mut tar)?;
        tar.finish().step(|| "writing the archive".into())?;
        Ok(())
    })
}

/// One path of the container as tar entries named `name` (a directory with its tree).
fn tar_entry<W: std::io::Write>(
    rootfd: &OwnedFd,
    src: &str,
    fd: &OwnedFd,
    name: &[u8],
    tar: &mut rbuild_store::tar::Writer<W>,
) -> Result<()> {
    use rbuild_store::tar::{Entry, EntryKind};
    let st = rustix::fs::fstat(fd).step(|| format!("stat {src}"))?;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => EntryKind::Dir,
        FileType::RegularFile => EntryKind::File,
        FileType::Symlink => EntryKind::Symlink,
        FileType::CharacterDevice => EntryKind::CharDevice,
        FileType::BlockDevice => EntryKind::BlockDevice,
        FileType::Fifo => EntryKind::Fifo,
        _ => return Err(CopyError::Socket(src.to_string()).into()),
    };
    let mut e = Entry::new(name.to_vec(), kind);
    e.mode = st.st_mode & 0o7777;
    e.uid = u64::from(st.st_uid);
    e.gid = u64::from(st.st_gid);
    e.mtime = st.st_mtime;
    if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        e.dev_major = rustix::fs::major(st.st_rdev);
        e.dev_minor = rustix::fs::minor(st.st_rdev);
    }
    let written = match kind {
        EntryKind::Symlink => {
            e.link = rustix::fs::readlinkat(fd, c"", Vec::new()).step(|| format!("reading link {src}"))?.into_bytes();
            tar.append_header(&e)
        }
        EntryKind::File => {
            let f = resolve(rootfd, src, OFlags::RDONLY | OFlags::NOFOLLOW).step(|| format!("opening {src}"))?;
            e.size = st.st_size as u64;
            e.xattrs = fd_xattrs(&f);
            tar.append(&e, &mut std::io::BufReader::with_capacity(1 << 20, std::fs::File::from(f)))
        }
        EntryKind::Dir => {
            tar.append_header(&e).step(|| "writing the archive".into())?;
            let d = resolve(rootfd, src, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW)
                .step(|| format!("opening {src}"))?;
            return tree_under(&fd_path(&d), name, tar);
        }
        _ => tar.append_header(&e),
    };
    written.step(|| format!("archiving {src}"))
}

/// The extended attributes of an open file (none where the filesystem has none).
fn fd_xattrs(fd: &OwnedFd) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 64 * 1024];
    let Ok(n) = rustix::fs::flistxattr(fd, &mut names[..]) else { return vec![] };
    let mut out = Vec::new();
    for k in names[..n].split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let k = String::from_utf8_lossy(k).into_owned();
        if k.starts_with("trusted.overlay.") || k == "security.selinux" {
            continue;
        }
        let mut v = vec![0u8; 64 * 1024];
        if let Ok(len) = rustix::fs::fgetxattr(fd, k.as_str(), &mut v[..]) {
            v.truncate(len);
            out.push((k, v));
        }
    }
    out.sort();
    out
}

/// The tree under directory `dir` as tar entries below `prefix/`: the store's layer
/// writer (which names entries relative to the tree) streamed through a pipe, each entry
/// renamed on the way.
fn tree_under<W: std::io::Write>(dir: &Path, prefix: &[u8], tar: &mut rbuild_store::tar::Writer<W>) -> Result<()> {
    use rbuild_store::tar::EntryKind;
    let (r, w) = std::io::pipe().step(|| "creating a pipe".into())?;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            rbuild_store::layer::write_layer(dir, &Default::default(), std::io::BufWriter::with_capacity(1 << 20, w))
                .map(|_| ())
        });
        let renamed = (|| -> Result<()> {
            let mut from = rbuild_store::tar::Reader::new(std::io::BufReader::with_capacity(1 << 20, r));
            let under = |p: &[u8]| [prefix, b"/", p].concat();
            while let Some(mut e) = from.next_entry()? {
                e.path = under(&e.path);
                if e.kind == EntryKind::Hardlink {
                    e.link = under(&e.link);
                }
                tar.append(&e, &mut from.data()).step(|| "writing the archive".into())?;
            }
            Ok(())
        })();
        let written =
            writer.join().unwrap_or_else(|_| Err(rbuild_store::StoreError::BadImage("copy thread panicked".into())));
        written?;
        renamed
    })
}

/// `cp - CONTAINER:DEST`: extracts the tar stream `input` (plain or compressed) into the
/// directory DEST, as docker does: names literally (no whiteouts), symlinks among the
/// entries' parents resolved inside the container.
pub fn copy_in_tar(store: &Store, c: &Container, input: &mut (dyn std::io::Read + Send), dest: &str) -> Result<()> {
    with_root(store, c, true, |root| {
        let rootfd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .step(|| "opening the container root".into())?;
        let d = resolve(&rootfd, dest, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|_| CopyError::NotADirectory { container: c.config.name.clone(), path: dest.to_string() })?;
        let (_, r) = rbuild_store::compress::decompressed(input)?;
        rbuild_store::layer::extract_in_root(r, root, &fd_path(&d))?;
        Ok(())
    })
}

/// `diff`: `A` added, `C` changed, `D` deleted, from the writable layer.
pub fn diff(store: &Store, c: &Container) -> Result<Vec<(char, String)>> {
    let image = image_of(store, c)?;
    let lowers = image_lowers(store, &image)?;
    let exists_below =
        |p: &str| lowers.iter().any(|l| std::fs::symlink_metadata(l.join(p.trim_start_matches('/'))).is_ok());
    let mut out = Vec::new();
    let mut stack = vec![(c.upper(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let p = format!("{rel}/{name}");
            let Ok(m) = e.metadata() else { continue };
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            if m.file_type().is_char_device() && m.rdev() == 0 {
                out.push(('D', p));
                continue;
            }
            out.push((if exists_below(&p) { 'C' } else { 'A' }, p.clone()));
            if m.is_dir() {
                stack.push((e.path(), p));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// `export`: the container's whole filesystem as a tar.
pub fn export(store: &Store, c: &Container, out: &mut (dyn std::io::Write + Send)) -> Result<()> {
    let lowers = lowers_with_upper(store, c)?;
    rootfs::with_mounted(&store.tmp_dir(), &lowers, None, |root| -> Result<()> {
        rbuild_store::layer::write_layer(
            root,
            &WriteOptions::default(),
            std::io::BufWriter::with_capacity(1 << 20, out),
        )?;
        Ok(())
    })?
}

/// `commit`: the writable layer as a new image on top of the container's image.
pub fn commit(
    store: &Store,
    c: &Container,
    changes_applied: impl FnOnce(&mut ImageConfig) -> std::result::Result<(), BoxError>,
    author: Option<String>,
    message: Option<String>,
) -> Result<Image> {
    let image = image_of(store, c)?;
    let was_running = c.state().status == crate::state::Status::Running;
    if was_running {
        c.cgroup().freeze(true)?;
    }
    let layer = store.commit_dir(&c.upper(), &WriteOptions { overlay: true, ..Default::default() }, false);
    if was_running {
        let _ = c.cgroup().freeze(false);
    }
    let layer = layer?;
    let mut cfg = image.config.clone();
    cfg.config.env = c.config.env.clone();
    cfg.config.cmd = Some(c.config.cmd.clone());
    cfg.config.entrypoint = if c.config.entrypoint.is_empty() { None } else { Some(c.config.entrypoint.clone()) };
    cfg.config.user = c.config.user.clone();
    cfg.config.working_dir = c.config.working_dir.clone();
    changes_applied(&mut cfg).map_err(CopyError::Changes)?;
    let now = crate::state::now();
    cfg.created = Some(now.clone());
    if author.is_some() {
        cfg.author = author.clone();
    }
    let mut args = c.config.entrypoint.clone();
    args.extend(c.config.cmd.iter().cloned());
    cfg.history.push(History {
        created: Some(now),
        created_by: Some(args.join(" ")),
        author,
        comment: message,
        empty_layer: false,
    });
    cfg.rootfs.diff_ids.push(layer.diff_id);
    let mut layers = image.layers.clone();
    layers.push(layer);
    Ok(store.write_image(&cfg, &layers)?)
}

/// `top`: the container's processes (pid, user id, command line).
pub fn top(c: &Container) -> Vec<(i32, u32, i32, String)> {
    let mut out = Vec::new();
    for pid in c.cgroup().pids() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let ppid =
            status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|l| l.trim().parse().ok()).unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> =
            cmd.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        out.push((pid, uid, ppid, cmd.join(" ")));
    }
    out.sort();
    out
}
