//! `prune` and `fsck`.

use crate::cli::PruneArgs;
use crate::commands::util::human_size;
use rbuild_store::Store;
use std::process::ExitCode;

pub fn prune(store: &Store, a: PruneArgs) -> anyhow::Result<ExitCode> {
    let r = store.prune(a.all)?;
    if r.images > 0 {
        println!("Deleted untagged images: {}", r.images);
    }
    if r.cache_entries > 0 {
        println!("Deleted build cache entries: {}", r.cache_entries);
    }
    println!("Deleted blobs: {}, snapshots: {}, temp files: {}", r.blobs, r.snapshots, r.temp);
    println!("Total reclaimed space: {}", human_size(r.bytes));
    Ok(ExitCode::SUCCESS)
}

pub fn fsck(store: &Store) -> anyhow::Result<ExitCode> {
    let r = store.fsck()?;
    for n in &r.notes {
        println!("note: {n}");
    }
    for p in &r.problems {
        println!("problem: {p}");
    }
    println!("checked {} blobs and {} images: {} problems", r.blobs, r.images, r.problems.len());
    Ok(if r.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
