//! `version`, `info`, `system df`, the prunes (`system`, `container`, `image`,
//! `builder`), `events`, and `top`'s row selection.

use crate::cli::{BuilderPruneArgs, DfArgs, EventsArgs, FormatArgs, ImagePruneArgs, PruneFilterArgs, SystemPruneArgs};
use crate::commands::format::{check_format, print_objects, print_rows};
use crate::commands::util::{ago, human_size};
use anyhow::{bail, Context};
use rbuild_runtime::container::{self, Container};
use rbuild_runtime::state::Status;
use rbuild_store::{Digest, Event, Store};
use rbuild_template::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
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
fn du(dir: &std::path::Path) -> u64 {
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
fn used_images(containers: &[Container]) -> HashSet<Digest> {
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

/// docker's prune confirmation: without `-f`, a `[y/N]` question on the terminal (or
/// standard input); anything but y/yes cancels.
fn confirm(force: bool, what: &str) -> anyhow::Result<bool> {
    if force {
        return Ok(true);
    }
    out!("WARNING! This will remove:\n{what}\nAre you sure you want to continue? [y/N] ")?;
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// `until=` and `label=` of the prune commands.
struct PruneFilter {
    until: Option<i64>,
    labels: Vec<(String, Option<String>)>,
    not_labels: Vec<(String, Option<String>)>,
}

impl PruneFilter {
    fn parse(filters: &[String]) -> anyhow::Result<PruneFilter> {
        let mut f = PruneFilter { until: None, labels: vec![], not_labels: vec![] };
        let kv = super::filters::label_filter;
        for s in filters {
            if let Some(v) = s.strip_prefix("label!=") {
                f.not_labels.push(kv(v));
            } else if let Some(v) = s.strip_prefix("label=") {
                f.labels.push(kv(v));
            } else if let Some(v) = s.strip_prefix("until=") {
                f.until = Some(crate::commands::timeopts::timestamp(v, None)? / 1_000_000_000);
            } else {
                bail!("invalid filter {s:?} (until=, label=, label!=)");
            }
        }
        Ok(f)
    }

    fn matches(&self, created: i64, labels: &BTreeMap<String, String>) -> bool {
        let has = |(k, v): &(String, Option<String>)| match v {
            Some(v) => labels.get(k) == Some(v),
            None => labels.contains_key(k),
        };
        self.until.is_none_or(|u| created < u) && self.labels.iter().all(has) && !self.not_labels.iter().any(has)
    }
}

/// Removes the stopped containers; returns their IDs and the bytes their layers held.
fn prune_containers(store: &Store, f: &PruneFilter) -> anyhow::Result<(Vec<String>, u64)> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for c in container::list(store)? {
        if c.running() {
            continue;
        }
        let created = rbuild_store::config::parse_rfc3339(&c.config.created);
        if !f.matches(created, &crate::commands::format::container_labels(store, &c)) {
            continue;
        }
        bytes += du(&c.upper());
        container::remove(store, &c, false, false)?;
        crate::commands::event(store, "container", "destroy", &c.config.id, &[("name", &c.config.name)]);
        out.push(c.config.id.clone());
    }
    Ok((out, bytes))
}

/// Removes images no container uses: dangling ones, or with `all` every one. Returns
/// docker's `untagged:` / `deleted:` lines.
fn prune_images(store: &Store, all: bool, f: &PruneFilter) -> anyhow::Result<Vec<String>> {
    let used = used_images(&container::list(store)?);
    let mut lines = Vec::new();
    for i in store.images()? {
        if used.contains(&i.config_digest) || (!all && !i.names.is_empty()) {
            continue;
        }
        if !f.matches(rbuild_store::filter::created_secs(store, &i), &i.config.config.labels) {
            continue;
        }
        store.update_index(|entries| {
            entries.retain(|e| e.manifest != i.manifest_digest);
            Ok(())
        })?;
        for n in &i.names {
            lines.push(format!("untagged: {}", n.familiar()));
        }
        lines.push(format!("deleted: {}", i.config_digest));
        crate::commands::event(store, "image", "delete", &i.config_digest.to_string(), &[]);
    }
    Ok(lines)
}

/// Removes build-cache entries (all, or those no image needs); returns their keys.
fn prune_cache(store: &Store, all: bool) -> anyhow::Result<Vec<String>> {
    let image_blobs: HashSet<Digest> =
        store.images()?.iter().flat_map(|i| i.layers.iter().map(|l| l.diff_id)).collect();
    let mut out = Vec::new();
    for r in store.cache_entries()? {
        if all || !r.refs.iter().any(|d| image_blobs.contains(d)) {
            store.cache_remove(&r.key)?;
            out.push(r.key);
        }
    }
    Ok(out)
}

/// Collects what nothing references any more; the bytes it freed.
fn collect(store: &Store) -> anyhow::Result<u64> {
    let r = store.prune(false)?;
    store.prune_image_records()?;
    Ok(r.bytes)
}

pub fn container_prune(store: &Store, a: PruneFilterArgs) -> anyhow::Result<ExitCode> {
    let f = PruneFilter::parse(&a.filter)?;
    if !confirm(a.force, "  - all stopped containers")? {
        return Ok(ExitCode::SUCCESS);
    }
    let (ids, bytes) = prune_containers(store, &f)?;
    if !ids.is_empty() {
        outln!("Deleted Containers:")?;
        for id in &ids {
            outln!("{id}")?;
        }
        outln!()?;
    }
    outln!("Total reclaimed space: {}", human_size(bytes))?;
    Ok(ExitCode::SUCCESS)
}

pub fn image_prune(store: &Store, a: ImagePruneArgs) -> anyhow::Result<ExitCode> {
    let f = PruneFilter::parse(&a.filter)?;
    let what = if a.all {
        "  - all images without at least one container associated to them"
    } else {
        "  - all dangling images"
    };
    if !confirm(a.force, what)? {
        return Ok(ExitCode::SUCCESS);
    }
    let lines = prune_images(store, a.all, &f)?;
    let bytes = collect(store)?;
    if !lines.is_empty() {
        outln!("Deleted Images:")?;
        for l in &lines {
            outln!("{l}")?;
        }
        outln!()?;
    }
    outln!("Total reclaimed space: {}", human_size(bytes))?;
    Ok(ExitCode::SUCCESS)
}

pub fn builder_prune(store: &Store, a: BuilderPruneArgs) -> anyhow::Result<ExitCode> {
    if !a.filter.is_empty() {
        PruneFilter::parse(&a.filter)?;
    }
    if !confirm(a.force, "  - all dangling build cache")? {
        return Ok(ExitCode::SUCCESS);
    }
    let keys = prune_cache(store, a.all)?;
    let bytes = collect(store)?;
    if !keys.is_empty() {
        outln!("Deleted build cache objects:")?;
        for k in &keys {
            outln!("{k}")?;
        }
        outln!()?;
    }
    outln!("Total reclaimed space: {}", human_size(bytes))?;
    Ok(ExitCode::SUCCESS)
}

pub fn system_prune(store: &Store, a: SystemPruneArgs) -> anyhow::Result<ExitCode> {
    let f = PruneFilter::parse(&a.filter)?;
    let mut what = String::from("  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        what.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    what.push_str(if a.all {
        "  - all images without at least one container associated to them\n  - all build cache"
    } else {
        "  - all dangling images\n  - unused build cache"
    });
    if !confirm(a.force, &what)? {
        return Ok(ExitCode::SUCCESS);
    }
    let (ids, mut bytes) = prune_containers(store, &f)?;
    if !ids.is_empty() {
        outln!("Deleted Containers:")?;
        for id in &ids {
            outln!("{id}")?;
        }
        outln!()?;
    }
    let networks = rbuild_runtime::network::manage::prune(store)?;
    if !networks.is_empty() {
        outln!("Deleted Networks:")?;
        for n in &networks {
            outln!("{n}")?;
        }
        outln!()?;
    }
    if a.volumes {
        let (names, vb) = rbuild_runtime::volume::prune(store, &Default::default(), false)?;
        bytes += vb;
        if !names.is_empty() {
            outln!("Deleted Volumes:")?;
            for n in &names {
                crate::commands::event(store, "volume", "destroy", n, &[("driver", "local")]);
                outln!("{n}")?;
            }
            outln!()?;
        }
    }
    let lines = prune_images(store, a.all, &f)?;
    if !lines.is_empty() {
        outln!("Deleted Images:")?;
        for l in &lines {
            outln!("{l}")?;
        }
        outln!()?;
    }
    let keys = prune_cache(store, a.all)?;
    if !keys.is_empty() {
        outln!("Deleted build cache objects:")?;
        for k in &keys {
            outln!("{k}")?;
        }
        outln!()?;
    }
    bytes += collect(store)?;
    outln!("Total reclaimed space: {}", human_size(bytes))?;
    Ok(ExitCode::SUCCESS)
}

/// docker's event filters.
fn event_matches(e: &Event, filters: &[(String, String)]) -> bool {
    let keys: HashSet<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.into_iter().all(|k| {
        filters.iter().filter(|(fk, _)| fk == k).any(|(_, v)| match k {
            "type" => e.typ == *v,
            "event" => e.action == *v || e.action.split(':').next() == Some(v.as_str()),
            "container" => {
                e.typ == "container"
                    && (e.actor.id.starts_with(v.as_str()) || e.actor.attributes.get("name") == Some(v))
            }
            "image" => {
                (e.typ == "image" && (e.actor.id.contains(v.as_str()) || e.actor.attributes.get("name") == Some(v)))
                    || e.actor.attributes.get("image") == Some(v)
            }
            "volume" => e.typ == "volume" && e.actor.id == *v,
            "label" => match v.split_once('=') {
                Some((lk, lv)) => e.actor.attributes.get(lk).map(String::as_str) == Some(lv),
                None => e.actor.attributes.contains_key(v),
            },
            _ => false,
        })
    })
}

fn event_value(e: &Event) -> Value {
    let attrs = Value::map(e.actor.attributes.iter().map(|(k, v)| (k.clone(), Value::from(v))));
    Value::object([
        ("status", Value::from(e.action.clone())),
        ("id", e.actor.id.clone().into()),
        ("from", e.actor.attributes.get("image").cloned().unwrap_or_default().into()),
        ("Type", e.typ.clone().into()),
        ("Action", e.action.clone().into()),
        ("Actor", Value::object([("ID", Value::from(e.actor.id.clone())), ("Attributes", attrs)])),
        ("scope", e.scope.clone().into()),
        ("time", e.time.into()),
        ("timeNano", e.time_nano.into()),
    ])
}

/// docker's event line: `TIME TYPE ACTION ID (k=v, …)`.
fn event_line(e: &Event) -> String {
    let t = chrono::DateTime::from_timestamp(e.time_nano / 1_000_000_000, (e.time_nano % 1_000_000_000) as u32)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.9fZ");
    let attrs: Vec<String> = e.actor.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut s = format!("{t} {} {} {}", e.typ, e.action, e.actor.id);
    if !attrs.is_empty() {
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

pub fn events(store: &Store, a: EventsArgs) -> anyhow::Result<ExitCode> {
    let filters: Vec<(String, String)> = a
        .filter
        .iter()
        .map(|f| {
            let (k, v) =
                f.split_once('=').with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
            if !["type", "event", "container", "image", "volume", "label", "network", "daemon", "scope"].contains(&k) {
                bail!("invalid filter '{k}'");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect::<anyhow::Result<_>>()?;
    let since = a.since.as_deref().map(|s| crate::commands::timeopts::timestamp(s, None)).transpose()?;
    let until = a.until.as_deref().map(|s| crate::commands::timeopts::timestamp(s, None)).transpose()?;
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(rbuild_template::Template::parse("{{json .}}")?),
        Some(f) => {
            Some(rbuild_template::Template::parse(f).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?)
        }
    };
    let show = |e: &Event| -> anyhow::Result<bool> {
        if until.is_some_and(|u| e.time_nano > u) {
            return Ok(false);
        }
        if since.is_some_and(|s| e.time_nano < s) || !event_matches(e, &filters) {
            return Ok(true);
        }
        let line = match &template {
            Some(t) => t.execute(&event_value(e)).map_err(|e| anyhow::anyhow!("template parsing error: {e}"))?,
            None => event_line(e),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(true)
    };
    // Without --since only new events are shown, as docker's stream.
    let (mut past, mut offset) = store.events_from(0)?;
    // Processes append as they go (a monitor's `die` may come before the `start` its
    // caller stamped first): the past is shown in time order, as docker's.
    past.sort_by_key(|e| e.time_nano);
    if since.is_some() {
        for e in &past {
            if !show(e)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    loop {
        if until.is_some_and(|u| now_nanos() > u) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let (new, off) = store.events_from(offset)?;
        offset = off;
        for e in &new {
            if !show(e)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
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
    fn events_print_as_docker() {
        let mut e = Event::now("container", "create", "abc", &[("name", "web"), ("image", "busybox")]);
        e.time_nano = 1_700_000_000_123_456_789;
        assert_eq!(event_line(&e), "2023-11-14T22:13:20.123456789Z container create abc (image=busybox, name=web)");
        let f = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(event_matches(&e, &f("container", "web")));
        assert!(event_matches(&e, &f("image", "busybox")));
        assert!(!event_matches(&e, &f("type", "image")));
        assert!(event_matches(&e, &[("event".into(), "start".into()), ("event".into(), "create".into())]));
        assert_eq!(bytes_size(25_100_000_000), "23.38GiB");
    }
}
