//! `prune` and `fsck`.

use crate::cli::{FsckArgs, PruneArgs};
use crate::commands::util::human_size;
use rbuild_store::Store;
use std::process::ExitCode;

pub fn prune(store: &Store, a: PruneArgs) -> anyhow::Result<ExitCode> {
    let r = store.prune(a.all)?;
    if r.images > 0 {
        outln!("Deleted untagged images: {}", r.images)?;
    }
    if r.cache_entries > 0 {
        outln!("Deleted build cache entries: {}", r.cache_entries)?;
    }
    outln!("Deleted blobs: {}, snapshots: {}, temp files: {}", r.blobs, r.snapshots, r.temp)?;
    outln!("Total reclaimed space: {}", human_size(r.bytes))?;
    Ok(ExitCode::SUCCESS)
}

pub fn fsck(store: &Store, a: FsckArgs) -> anyhow::Result<ExitCode> {
    let r = store.fsck()?;
    for n in &r.notes {
        outln!("note: {n}")?;
    }
    if a.repair {
        for done in store.repair(&r)? {
            outln!("repaired: {done}")?;
        }
        let after = store.fsck()?;
        for p in &after.problems {
            outln!("problem: {p}")?;
        }
        outln!("checked {} blobs and {} images: {} problems after repair", r.blobs, r.images, after.problems.len())?;
        // Missing layers remain problems until the images are pulled, loaded or built again.
        return Ok(if after.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    for p in &r.problems {
        outln!("problem: {p}")?;
    }
    outln!("checked {} blobs and {} images: {} problems", r.blobs, r.images, r.problems.len())?;
    Ok(if r.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
