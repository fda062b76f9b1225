//! `prune` and `fsck`.

use crate::cli::{FsckArgs, PruneArgs};
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

pub fn fsck(store: &Store, a: FsckArgs) -> anyhow::Result<ExitCode> {
    let r = store.fsck()?;
    for n in &r.notes {
        println!("note: {n}");
    }
    if a.repair {
        for done in store.repair(&r)? {
            println!("repaired: {done}");
        }
        let after = store.fsck()?;
        for p in &after.problems {
            println!("problem: {p}");
        }
        println!("checked {} blobs and {} images: {} problems after repair", r.blobs, r.images, after.problems.len());
        // Missing layers remain problems until the images are pulled, loaded or built again.
        return Ok(if after.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    for p in &r.problems {
        println!("problem: {p}");
    }
    println!("checked {} blobs and {} images: {} problems", r.blobs, r.images, r.problems.len());
    Ok(if r.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
