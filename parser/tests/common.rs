//! Where the peer test data lives: `../shared` beside the repository.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    assert!(p.is_dir(), "the peer test data is missing: expected ../shared beside the repository at {}", p.display());
    p
}
