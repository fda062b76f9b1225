//! `version`, `info`, `system df` and `top`'s row selection (the prunes are in
//! `prune.rs`, `events` in `events.rs`).

use crate::cli::{DfArgs, FormatArgs};
use crate::commands::format::{check_format, print_objects, print_rows};
use crate::commands::util::{ago, human_size};
use anyhow::bail;
use rbuild_runtime::container::{self, Container};
use rbuild_runtime::state::Status;
use rbuild_store::{Digest, Store};
use rbuild_template::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel() -> String {
    rustix::system::uname().release().to_string_lossy().into_owned()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok().map(|k| k * 1024)
            })
        })
        .unwrap_or(0)
}

/// docker's `units.BytesSize`: binary units, `23.4GiB`.
fn bytes_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    // `%.4g`
    let digits = if v > 0.0 { v.log10().floor() as i32 + 1 } else { 1 };
    let decimals = (4 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{}", units[i])
}

pub fn version(root: &Option<PathBuf>, a: FormatArgs) -> anyhow::Result<ExitCode> {
    let root = root.clone().unwrap_or_else(rbuild_store::default_root);
    let platform = Value::object([("Name", Value::from("rbuild"))]);
    let client = Value::object([
        ("Platform", platform.clone()),
        ("Version", VERSION.into()),
        ("ApiVersion", "none (daemonless)".into()),
        ("Os", "linux".into()),
        ("Arch", std::env::consts::ARCH.replace("x86_64", "amd64").into()),
        ("Context", "default".into()),
    ]);
    let server = Value::object([
        ("Platform", platform),
        (
            "Components",
            Value::List(vec![Value::object([
                ("Name", Value::from("rbuild")),
                ("Version", VERSION.into()),
                ("Details", Value::map([("Store", Value::from(root.display().to_string()))])),
            ])]),
        ),
        ("Version", VERSION.into()),
        ("Os", "linux".into()),
        ("Arch", std::env::consts::ARCH.replace("x86_64", "amd64").into()),
        ("KernelVersion", kernel().into()),
    ]);
    let v = Value::object([("Client", client), ("Server", server)]);
    if let Some(f) = &a.format {
        return print_objects(&[v], &[], Some(f));
    }
    outln!("Client: rbuild")?;
    outln!(" Version:           {VERSION}")?;
    outln!(" OS/Arch:           linux/{}", std::env::consts::ARCH.replace("x86_64", "amd64"))?;
    outln!(" Context:           default")?;
    outln!()?;
    outln!("Server: none (rbuild is daemonless: every command works on the store directly)")?;
    outln!(" Store:             {}", root.display())?;
    outln!(" Store layout:      {}", rbuild_store::store::LAYOUT_VERSION)?;
    outln!(" Kernel Version:    {}", kernel())?;
    Ok(ExitCode::SUCCESS)
}

/// Bytes under `dir` (0 when it does not exist).
pub(super) fn du(dir: &std::path::Path) -> u64 {
    if dir.exists() {
        rbuild_store::snapshot::content_bytes(dir)
    } else {
        0
    }
}

pub fn info(store: &Store, a: FormatArgs) -> anyhow::Result<ExitCode> {
    let containers = container::list(store)?;
    let count = |f: &dyn Fn(Status) -> bool| containers.iter().filter(|c| f(c.state().status)).count();
    let running = count(&|s| s == Status::Running);
    let paused = count(&|s| s == Status::Paused);
    let stopped = containers.len() - running - paused;
    let images = store.images()?.len();
    let blobs = du(&store.blobs_dir());
    let snapshots = du(&store.snapshots_dir());
    let ctrs = du(&store.containers_dir());
    let vols = du(&store.volumes_dir());
    let total = du(store.root());
    let cgroup_version = if rbuild_runtime::sandbox::cgroups::is_v2() { "2" } else { "1" };
    let features = [
        "namespaces: mount pid uts ipc cgroup net",
        "seccomp: docker's default profile",
        "capabilities: docker's defaults",
        "no_new_privs",
        "cgroup limits: memory pids cpus",
        "overlayfs (volatile uppers for build steps and --rm)",
    ];
    let hostname = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let v = Value::object([
        ("ID", Value::from("")),
        ("Containers", containers.len().into()),
        ("ContainersRunning", running.into()),
        ("ContainersPaused", paused.into()),
        ("ContainersStopped", stopped.into()),
        ("Images", images.into()),
        ("Driver", "overlay".into()),
        (
            "DriverStatus",
            Value::List(vec![
                Value::strings(&["Store Root", &store.root().display().to_string()], false),
                Value::strings(&["Store Size", &human_size(total)], false),
            ]),
        ),
        ("StoreSize", total.into()),
        ("KernelVersion", kernel().into()),
        ("OperatingSystem", os_name().into()),
        ("OSType", "linux".into()),
        ("Architecture", std::env::consts::ARCH.into()),
        ("NCPU", ncpu.into()),
        ("MemTotal", mem_total().into()),
        ("DockerRootDir", store.root().display().to_string().into()),
        ("Name", hostname.clone().into()),
        ("ServerVersion", VERSION.into()),
        ("CgroupDriver", "cgroupfs".into()),
        ("CgroupVersion", cgroup_version.into()),
        ("SecurityOptions", Value::strings(&["name=seccomp,profile=default", "name=cgroupns"], false)),
        ("Runtimes", Value::map([("rbuild", Value::object([("path", Value::from("rbuild __shim"))]))])),
        ("DefaultRuntime", "rbuild".into()),
        ("RuntimeFeatures", Value::strings(&features, false)),
    ]);
    if let Some(f) = &a.format {
        return print_objects(&[v], &[], Some(f));
    }
    outln!("Client: rbuild")?;
    outln!(" Version:    {VERSION}")?;
    outln!(" Context:    default")?;
    outln!()?;
    outln!("Server: (daemonless: the store)")?;
    outln!(" Containers: {}", containers.len())?;
    outln!("  Running: {running}")?;
    outln!("  Paused: {paused}")?;
    outln!("  Stopped: {stopped}")?;
    outln!(" Images: {images}")?;
    outln!(" Server Version: {VERSION}")?;
    outln!(" Storage Driver: overlay (an OCI image layout)")?;
    outln!("  Store Root: {}", store.root().display())?;
    outln!(
        "  Store Size: {} (blobs {}, snapshots {}, containers {}, volumes {})",
        human_size(total),
        human_size(blobs),
        human_size(snapshots),
        human_size(ctrs),
        human_size(vols)
    )?;
    outln!(" Cgroup Driver: cgroupfs")?;
    outln!(" Cgroup Version: {cgroup_version}")?;
    outln!(" Runtime Features:")?;
    for f in features {
        outln!("  {f}")?;
    }
    outln!(" Security Options:")?;
    outln!("  seccomp")?;
    outln!("   Profile: default")?;
    outln!("  cgroupns")?;
    outln!(" Kernel Version: {}", kernel())?;
    outln!(" Operating System: {}", os_name())?;
    outln!(" OSType: linux")?;
    outln!(" Architecture: {}", std::env::consts::ARCH)?;
    outln!(" CPUs: {ncpu}")?;
    outln!(" Total Memory: {}", bytes_size(mem_total()))?;
    outln!(" Name: {hostname}")?;
    outln!(" Docker Root Dir: {}", store.root().display())?;
    Ok(ExitCode::SUCCESS)
}

/// The image IDs containers use.
pub(super) fn used_images(containers: &[Container]) -> HashSet<Digest> {
    containers.iter().map(|c| c.config.image_id).collect()
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        return "0B".into();
    }
    format!("{} ({}%)", human_size(part), (part as f64 * 100.0 / total as f64) as u64)
}

pub fn df(store: &Store, a: DfArgs) -> anyhow::Result<ExitCode> {
    check_format(a.format.as_deref())?;
    let images = store.images()?;
    let containers = container::list(store)?;
    let used = used_images(&containers);
    // Layers are shared: each counts once, and is reclaimable when no used image has it.
    let mut all_layers: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut active_layers: HashSet<Digest> = HashSet::new();
    // Sizes as docker's: the bytes of the layers' files (their blobs' while not unpacked).
    let layer_size = |l: &rbuild_store::LayerRef| {
        let snap = store.snapshot_path(&l.diff_id);
        if snap.is_dir() {
            du(&snap)
        } else {
            l.size
        }
    };
    for i in &images {
        for l in &i.layers {
            all_layers.insert(l.diff_id, layer_size(l));
            if used.contains(&i.config_digest) {
                active_layers.insert(l.diff_id);
            }
        }
    }
    let img_size: u64 = all_layers.values().sum();
    let img_active = images.iter().filter(|i| used.contains(&i.config_digest)).count();
    let img_reclaim: u64 = all_layers.iter().filter(|(d, _)| !active_layers.contains(d)).map(|(_, s)| s).sum();
    let ctr_sizes: Vec<(u64, bool)> = containers.iter().map(|c| (du(&c.upper()), c.running())).collect();
    let ctr_size: u64 = ctr_sizes.iter().map(|x| x.0).sum();
    let ctr_reclaim: u64 = ctr_sizes.iter().filter(|x| !x.1).map(|x| x.0).sum();
    let vols = rbuild_runtime::volume::list(&store.volumes_dir())?;
    let mut vol_rows = Vec::new();
    let (mut vol_size, mut vol_active, mut vol_reclaim) = (0, 0, 0);
    for v in &vols {
        let size = du(&v.mountpoint);
        let links = rbuild_runtime::volume::users(store, &v.name)?.len();
        vol_size += size;
        if links > 0 {
            vol_active += 1;
        } else {
            vol_reclaim += size;
        }
        vol_rows.push((v.name.clone(), links, size));
    }
    let image_blobs: HashSet<Digest> = all_layers.keys().copied().collect();
    let cache = store.cache_entries()?;
    let cache_blobs: HashSet<Digest> = cache.iter().flat_map(|r| r.refs.iter().copied()).collect();
    let cache_size: u64 =
        cache_blobs.iter().filter(|d| !image_blobs.contains(d)).filter_map(|d| store.blob_size(d).ok()).sum();
    let row = |t: &str, total: usize, active: usize, size: u64, reclaim: u64| {
        Value::object([
            ("Active", Value::from(active.to_string())),
            ("Reclaimable", percent(reclaim, size).into()),
            ("Size", human_size(size).into()),
            ("TotalCount", total.to_string().into()),
            ("Type", t.into()),
        ])
    };
    let rows = vec![
        row("Images", images.len(), img_active, img_size, img_reclaim),
        row("Containers", containers.len(), containers.iter().filter(|c| c.running()).count(), ctr_size, ctr_reclaim),
        row("Local Volumes", vols.len(), vol_active, vol_size, vol_reclaim),
        row("Build Cache", cache.len(), 0, cache_size, cache_size),
    ];
    if !a.verbose || a.format.is_some() {
        let header = Value::map([
            ("Active", Value::from("ACTIVE")),
            ("Reclaimable", "RECLAIMABLE".into()),
            ("Size", "SIZE".into()),
            ("TotalCount", "TOTAL".into()),
            ("Type", "TYPE".into()),
        ]);
        print_rows(
            a.format.as_deref(),
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
            &rows,
            &header,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let usage = Usage { images: &images, containers: &containers, all_layers: &all_layers, ctr_sizes: &ctr_sizes };
    out!("{}", df_verbose(store, &usage, &vol_rows, cache_size))?;
    Ok(ExitCode::SUCCESS)
}

/// What `system df -v` lists.
struct Usage<'a> {
    images: &'a [rbuild_store::Image],
    containers: &'a [container::Container],
    /// Each layer once, with its size.
    all_layers: &'a BTreeMap<Digest, u64>,
    /// Each container's writable layer and whether it runs.
    ctr_sizes: &'a [(u64, bool)],
}

/// `system df -v`: images, containers and volumes one by one, and the build cache.
fn df_verbose(store: &Store, u: &Usage<'_>, vol_rows: &[(String, usize, u64)], cache_size: u64) -> String {
    let (images, containers, all_layers, ctr_sizes) = (u.images, u.containers, u.all_layers, u.ctr_sizes);
    let mut text = String::from("Images space usage:\n\n");
    let mut t = String::from("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n");
    for i in images {
        let shared: u64 = i
            .layers
            .iter()
            .filter(|l| images.iter().filter(|o| o.layers.iter().any(|x| x.diff_id == l.diff_id)).count() > 1)
            .map(|l| all_layers.get(&l.diff_id).copied().unwrap_or(l.size))
            .sum();
        let size: u64 = i.layers.iter().map(|l| all_layers.get(&l.diff_id).copied().unwrap_or(l.size)).sum();
        let n = containers.iter().filter(|c| c.config.image_id == i.config_digest).count();
        let (repo, tag) = i
            .names
            .first()
            .map(|r| (r.familiar_repository(), r.tag.clone().unwrap_or_else(|| "<none>".into())))
            .unwrap_or(("<none>".into(), "<none>".into()));
        t.push_str(&format!(
            "{repo}\t{tag}\t{}\t{}\t{}\t{}\t{}\t{n}\n",
            i.config_digest.short(),
            ago(rbuild_store::filter::created_secs(store, i)),
            human_size(size),
            human_size(shared),
            human_size(size - shared)
        ));
    }
    text.push_str(&rbuild_template::tabwriter::format(&t, 10, 3));
    text.push_str("\nContainers space usage:\n\n");
    let mut t = String::from("CONTAINER ID\tIMAGE\tLOCAL VOLUMES\tSIZE\tCREATED\tNAMES\n");
    for (c, (size, _)) in containers.iter().zip(ctr_sizes) {
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            c.short_id(),
            c.config.image,
            c.config.mounts.iter().filter(|m| m.typ == "volume").count(),
            human_size(*size),
            ago(rbuild_store::config::parse_rfc3339(&c.config.created)),
            c.config.name
        ));
    }
    text.push_str(&rbuild_template::tabwriter::format(&t, 10, 3));
    text.push_str("\nLocal Volumes space usage:\n\n");
    let mut t = String::from("VOLUME NAME\tLINKS\tSIZE\n");
    for (n, links, size) in vol_rows {
        t.push_str(&format!("{n}\t{links}\t{}\n", human_size(*size)));
    }
    text.push_str(&rbuild_template::tabwriter::format(&t, 10, 3));
    text.push_str(&format!("\nBuild cache usage: {}\n", human_size(cache_size)));
    text
}

/// The rows of `ps` output whose PID column holds one of `pids` (and the header), as
/// docker's `top` filters the host's ps.
pub fn top_rows(ps: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = ps.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("Couldn't find PID field in ps output");
    };
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_containers_rows() {
        let ps = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 42 1 0 10:01 ? 00:00:00 sleep 300\n";
        assert_eq!(
            top_rows(ps, &[42]).unwrap(),
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:01 ? 00:00:00 sleep 300\n"
        );
        assert!(top_rows("USER COMMAND\n", &[1]).is_err());
    }

    #[test]
    fn sizes_print_as_docker() {
        assert_eq!(bytes_size(25_100_000_000), "23.38GiB");
    }
}
