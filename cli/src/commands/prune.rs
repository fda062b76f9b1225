//! The prunes: `container prune`, `image prune`, `builder prune` and `system prune`, with
//! docker's filters and confirmation prompt.

use super::system::{du, used_images};
use crate::cli::{BuilderPruneArgs, ImagePruneArgs, PruneFilterArgs, SystemPruneArgs};
use crate::commands::util::human_size;
use anyhow::bail;
use rbuild_runtime::container;
use rbuild_store::{Digest, Store};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::process::ExitCode;

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
    print_deleted("Deleted Containers:", &ids)?;
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
    print_deleted("Deleted Images:", &lines)?;
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
    print_deleted("Deleted build cache objects:", &keys)?;
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
    print_deleted("Deleted Containers:", &ids)?;
    let networks = rbuild_runtime::network::manage::prune(store)?;
    print_deleted("Deleted Networks:", &networks)?;
    if a.volumes {
        let (names, vb) = rbuild_runtime::volume::prune(store, &Default::default(), false)?;
        bytes += vb;
        for n in &names {
            crate::commands::event(store, "volume", "destroy", n, &[("driver", "local")]);
        }
        print_deleted("Deleted Volumes:", &names)?;
    }
    let lines = prune_images(store, a.all, &f)?;
    print_deleted("Deleted Images:", &lines)?;
    let keys = prune_cache(store, a.all)?;
    print_deleted("Deleted build cache objects:", &keys)?;
    bytes += collect(store)?;
    outln!("Total reclaimed space: {}", human_size(bytes))?;
    Ok(ExitCode::SUCCESS)
}

/// docker's list of what a prune deleted: the heading, a line each, a blank line; nothing
/// when nothing was.
pub(super) fn print_deleted(heading: &str, items: &[String]) -> anyhow::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    outln!("{heading}")?;
    for i in items {
        outln!("{i}")?;
    }
    outln!()?;
    Ok(())
}
