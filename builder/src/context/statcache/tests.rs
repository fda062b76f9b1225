//! Unit tests of the stat cache's log and lookups.

use super::*;
use crate::context::Source;
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

fn entry(seed: u8) -> CacheEntry {
    CacheEntry {
        size: u64::from(seed),
        mtime: (i64::from(seed) - 100, 5),
        ctime: (7, i64::from(seed)),
        ino: u64::from(seed) * 3,
        digest: [seed; 32],
    }
}

fn components(p: &[u8]) -> Vec<&[u8]> {
    p.split(|c| *c == b'/').collect()
}

proptest! {
    /// The walk's order is the order of the paths' component lists.
    #[test]
    fn walk_order_compares_by_component(a in "[a./-]{0,6}", b in "[a./-]{0,6}") {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        prop_assert_eq!(walk_order(a, b), components(a).cmp(&components(b)));
    }

    /// Whatever the builds recorded, in appended segments or compacted files, the cache
    /// read back holds the last entry of every path, and nothing else.
    #[test]
    fn the_log_reads_back_the_last_entry_of_each_path(
        builds in proptest::collection::vec((proptest::collection::vec((0u8..40, 0u8..255), 0..30), any::<bool>()), 1..8)
    ) {
        let d = tempfile::tempdir().unwrap();
        let ctx = Path::new("/ctx");
        let mut model: HashMap<Vec<u8>, CacheEntry> = HashMap::new();
        for (b, compact) in builds {
            let mut sc = StatCache::open(d.path(), ctx);
            if compact {
                sc.in_file = usize::MAX / 2; // as if overridden entries had piled up
            }
            for (p, s) in b {
                let path = format!("/ctx/d{}/f{}", p % 7, p).into_bytes();
                sc.new.lock().unwrap().push((path.clone().into(), entry(s)));
                model.insert(path, entry(s));
            }
            sc.save();
            let back = StatCache::open(d.path(), ctx);
            prop_assert_eq!(back.live(), model.len());
            for (p, e) in &model {
                prop_assert_eq!(back.get(p), Some(*e));
            }
            prop_assert_eq!(back.get(b"/ctx/none"), None);
        }
    }
}

/// A cache file of another version is never read (its layout differs), and the next save
/// replaces it.
#[test]
fn an_older_version_is_ignored_and_replaced() {
    let d = tempfile::tempdir().unwrap();
    let sc = StatCache::open(d.path(), Path::new("/ctx"));
    let mut old = b"rbuild-statcache-2\n".to_vec();
    old.extend_from_slice(&1u64.to_le_bytes());
    encode_entry(&mut old, b"/ctx/a", &entry(1));
    std::fs::create_dir_all(d.path()).unwrap();
    std::fs::write(&sc.path, &old).unwrap();
    let sc = StatCache::open(d.path(), Path::new("/ctx"));
    assert_eq!((sc.live(), sc.in_file), (0, 0));
    sc.new.lock().unwrap().push((b"/ctx/b".as_slice().into(), entry(2)));
    sc.save();
    let sc = StatCache::open(d.path(), Path::new("/ctx"));
    assert_eq!((sc.live(), sc.get(b"/ctx/b")), (1, Some(entry(2))));
    assert!(std::fs::read(&sc.path).unwrap().starts_with(STATCACHE_MAGIC));
}

/// Fills every file of `root` with the cache in `dir`, saves; returns the digests by
/// path and how many files were hashed.
fn build(dir: &Path, root: &Path) -> (HashMap<PathBuf, [u8; 32]>, usize) {
    let sc = StatCache::open(dir, root);
    let src = Source { root: root.to_path_buf(), ignore: None, exclude: None, parallel: true };
    let mut items = src.select(".").unwrap();
    sc.fill(&mut items).unwrap();
    let hashed = sc.new.lock().unwrap().len();
    sc.save();
    let files = items[0].entries.iter().filter(|e| e.kind == EntryKind::File);
    (files.map(|e| (e.rel.clone(), e.digest.unwrap())).collect(), hashed)
}

fn age(p: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs)).unwrap();
}

/// What the cache decides: an unchanged file hits; a touched one (mtime only) is hashed
/// again to the same digest and hits after; an edited one misses and gets its new
/// digest; a new one is hashed; the lookups in walk order see paths that sort between
/// a directory and its contents ("d/..." against "d-x").
#[test]
fn hits_and_misses() {
    let d = tempfile::tempdir().unwrap();
    let (r, cdir) = (d.path().join("ctx"), d.path().join("cache"));
    for p in ["d/a", "d/b/c", "d-x", "d.y/z", "e"] {
        std::fs::create_dir_all(r.join(p).parent().unwrap()).unwrap();
        std::fs::write(r.join(p), p).unwrap();
    }
    // ctimes are "now": wait out the margin so entries are recorded.
    std::thread::sleep(Duration::from_millis(120));
    let (first, hashed) = build(&cdir, &r);
    assert_eq!((first.len(), hashed), (5, 5));
    assert_eq!(build(&cdir, &r), (first.clone(), 0));
    age(&r.join("d/b/c"), 1000);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(build(&cdir, &r), (first.clone(), 1), "a touched file is hashed again");
    assert_eq!(build(&cdir, &r), (first.clone(), 0));
    std::fs::write(r.join("d-x"), "edited").unwrap();
    std::fs::write(r.join("d/new"), "new").unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let (edited, hashed) = build(&cdir, &r);
    assert_eq!(hashed, 2);
    assert_ne!(edited[Path::new("d-x")], first[Path::new("d-x")]);
    assert_eq!(edited[Path::new("d/new")], hash_file(&r.join("d/new")).unwrap());
    std::fs::remove_file(r.join("d/a")).unwrap();
    let (removed, hashed) = build(&cdir, &r);
    assert_eq!((removed.len(), hashed), (5, 0));
}
