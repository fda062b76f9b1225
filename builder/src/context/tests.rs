//! Unit tests of `context`.

use super::*;

#[test]
fn sources_stay_inside() {
    assert_eq!(relative_source("/").unwrap(), "");
    assert_eq!(relative_source(".").unwrap(), "");
    assert_eq!(relative_source("./a/../b").unwrap(), "b");
    assert_eq!(relative_source("/etc/passwd").unwrap(), "etc/passwd");
    assert!(relative_source("../x").is_err());
    assert!(relative_source("a/../../x").is_err());
    assert!(has_wildcards("*.md"));
    assert!(!has_wildcards("a\\*b"));
}

#[test]
fn symlinks_resolve_in_scope() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    std::fs::create_dir_all(r.join("real/sub")).unwrap();
    std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../real", r.join("up")).unwrap();
    assert_eq!(resolve_in_root(r, "abs/sub", true).unwrap(), r.join("real/sub"));
    assert_eq!(resolve_in_root(r, "up/sub", true).unwrap(), r.join("real/sub"));
    assert_eq!(resolve_in_root(r, "abs", false).unwrap(), r.join("abs"));
    assert_eq!(resolve_in_root(r, "../../x", true).unwrap(), r.join("x"));
}

#[test]
fn selection_and_digest() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    std::fs::create_dir_all(r.join("dir/logs")).unwrap();
    std::fs::write(r.join("a.md"), "a").unwrap();
    std::fs::write(r.join("b.md"), "b").unwrap();
    std::fs::write(r.join("dir/x"), "x").unwrap();
    std::fs::write(r.join("dir/logs/l.log"), "l").unwrap();
    let m = Matcher::new(&["**/*.log".to_string()]).unwrap();
    let src = Source { root: r.to_path_buf(), ignore: Some(&m), exclude: None, parallel: true };
    let items = src.select("*.md").unwrap();
    assert_eq!(items.iter().map(|i| i.path.to_str().unwrap()).collect::<Vec<_>>(), ["a.md", "b.md"]);
    let mut items = src.select("dir").unwrap();
    let rels: Vec<_> = items[0].entries.iter().map(|e| e.rel.to_str().unwrap()).collect();
    assert_eq!(rels, ["", "logs", "x"]);
    assert!(src.select("dir/logs/l.log").is_err());
    assert!(src.select("nope").is_err());
    let cache_dir = tempfile::tempdir().unwrap();
    let sc = StatCache::open(cache_dir.path(), r);
    sc.fill(&mut items).unwrap();
    let d1 = items_digest(&items);
    std::fs::write(r.join("dir/x"), "y").unwrap();
    let mut again = src.select("dir").unwrap();
    StatCache::open(cache_dir.path(), r).fill(&mut again).unwrap();
    assert_ne!(d1, items_digest(&again));
}

/// Names are bytes: a name that is not UTF-8 is selected, hashed and copied as it is,
/// never as U+FFFD (two such names would be one then).
#[test]
fn names_that_are_not_utf8_stay_bytes() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("ctx");
    let name = |b: &[u8]| OsStr::from_bytes(b).to_os_string();
    std::fs::create_dir_all(r.join(name(b"dir-\xff"))).unwrap();
    std::fs::write(r.join(name(b"dir-\xff")).join(name(b"caf\xe9.txt")), "latin1").unwrap();
    std::os::unix::fs::symlink(name(b"caf\xe9.txt"), r.join(name(b"dir-\xff/link-\xe9"))).unwrap();
    let src = Source { root: r.clone(), ignore: None, exclude: None, parallel: true };
    let items = src.select(".").unwrap();
    let rels: Vec<&[u8]> = items[0].entries.iter().map(|e| e.rel.as_os_str().as_bytes()).collect();
    assert_eq!(rels, [&b""[..], b"dir-\xff", b"dir-\xff/caf\xe9.txt", b"dir-\xff/link-\xe9"]);
    assert_eq!(items[0].entries[3].kind, EntryKind::Symlink(name(b"caf\xe9.txt").into()));
    // A glob matches such a name (`?` is one rune, and an invalid byte is one).
    let globbed = src.select("dir-?/caf?.txt").unwrap();
    assert_eq!(globbed[0].path.as_os_str().as_bytes(), b"dir-\xff/caf\xe9.txt");
    assert_eq!(globbed[0].base_name().as_bytes(), b"caf\xe9.txt");
    // .dockerignore patterns see the same runes.
    let m = Matcher::new(&["dir-?/*.txt".to_string()]).unwrap();
    let ignoring = Source { root: r.clone(), ignore: Some(&m), exclude: None, parallel: true };
    assert_eq!(ignoring.select(".").unwrap()[0].entries.len(), 3);
    // Two names that differ only in invalid bytes are two cache keys.
    let cache = tempfile::tempdir().unwrap();
    let mut a = src.select(".").unwrap();
    StatCache::open(cache.path(), &r).fill(&mut a).unwrap();
    std::fs::rename(r.join(name(b"dir-\xff/caf\xe9.txt")), r.join(name(b"dir-\xff/caf\xe8.txt"))).unwrap();
    let mut b = src.select(".").unwrap();
    StatCache::open(cache.path(), &r).fill(&mut b).unwrap();
    assert_ne!(items_digest(&a), items_digest(&b));
}

/// Selects and fills every file of `root` with a cache kept in `dir`; returns the cache.
fn fill_all(dir: &Path, root: &Path) -> StatCache {
    let sc = StatCache::open(dir, root);
    let src = Source { root: root.to_path_buf(), ignore: None, exclude: None, parallel: true };
    let mut items = src.select(".").unwrap();
    sc.fill(&mut items).unwrap();
    sc.save();
    sc
}

#[test]
fn the_stat_cache_appends_what_changed_and_survives_a_torn_tail() {
    let d = tempfile::tempdir().unwrap();
    let (r, cdir) = (d.path().join("ctx"), d.path().join("cache"));
    std::fs::create_dir_all(&r).unwrap();
    for i in 0..50 {
        std::fs::write(r.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    // Files written just now are too fresh to trust: nothing is recorded yet.
    assert_eq!(fill_all(&cdir, &r).live(), 0);
    // Old enough (the margin is 50 ms): recorded, in one compact write.
    std::thread::sleep(std::time::Duration::from_millis(120));
    fill_all(&cdir, &r);
    let sc = StatCache::open(&cdir, &r);
    assert_eq!((sc.live(), sc.in_file), (50, 50));
    let size = std::fs::metadata(&sc.path).unwrap().len();
    // All hits: the file is not touched.
    fill_all(&cdir, &r);
    assert_eq!(std::fs::metadata(&sc.path).unwrap().len(), size);
    // One file changed: one entry appended, and it overrides the old one.
    std::fs::write(r.join("f7"), "changed").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(120));
    fill_all(&cdir, &r);
    let sc = StatCache::open(&cdir, &r);
    assert_eq!((sc.live(), sc.in_file), (50, 51));
    let f7 = r.join("f7");
    assert_eq!(sc.get(f7.as_os_str().as_bytes()).unwrap().digest, hash_file(&f7).unwrap());
    // A torn append (a crash mid-write) loses only that segment.
    let len = std::fs::metadata(&sc.path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&sc.path).unwrap();
    f.set_len(len - 5).unwrap();
    let sc = StatCache::open(&cdir, &r);
    assert_eq!((sc.live(), sc.in_file), (50, 50));
    assert_ne!(sc.get(f7.as_os_str().as_bytes()).unwrap().digest, hash_file(&f7).unwrap(), "the torn entry was read");
    // A file that is not a stat cache is ignored.
    std::fs::write(&sc.path, b"garbage").unwrap();
    assert_eq!(StatCache::open(&cdir, &r).live(), 0);
}

/// `COPY --exclude` patterns match paths below the source being copied (as BuildKit's
/// copy matches them), never the source itself; the .dockerignore matches paths of the
/// context.
#[test]
fn exclude_patterns_are_relative_to_the_source() {
    let d = tempfile::tempdir().unwrap();
    for p in ["d/keep.txt", "d/skip.md", "d/sub/deep.md", "top.md"] {
        std::fs::create_dir_all(d.path().join(p).parent().unwrap()).unwrap();
        std::fs::write(d.path().join(p), p).unwrap();
    }
    let ex = Matcher::new(&["*.md".to_string()]).unwrap();
    let src = Source { root: d.path().to_path_buf(), ignore: None, exclude: Some(ex), parallel: true };
    let names = |items: Vec<Item>| -> Vec<String> {
        items.iter().flat_map(|i| i.entries.iter().map(|e| e.rel.display().to_string())).collect()
    };
    assert_eq!(names(src.select("d").unwrap()), ["", "keep.txt", "sub", "sub/deep.md"]);
    assert_eq!(names(src.select("top.md").unwrap()), [""]);
}

/// The walk stats each name relative to its directory's descriptor: the entries are the
/// same as std's lstat of each path gives (type, mode, owner, size, inode, times, link
/// target), in pre-order sorted by name, at every depth, in parallel or not.
#[test]
fn the_walk_by_directory_descriptor_gives_what_lstat_gives() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for dir in ["b/d/e", "a", "c"] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::write(r.join("b/z"), "zz").unwrap();
    std::fs::write(r.join("b/d/e/f"), "ffff").unwrap();
    std::fs::set_permissions(r.join("b/d/e/f"), std::fs::Permissions::from_mode(0o4751)).unwrap();
    std::os::unix::fs::symlink("../z", r.join("b/d/l")).unwrap();
    std::fs::write(r.join("a/1"), "").unwrap();
    for parallel in [true, false] {
        let src = Source { root: r.to_path_buf(), ignore: None, exclude: None, parallel };
        let items = src.select(".").unwrap();
        let rels: Vec<_> = items[0].entries.iter().map(|e| e.rel.to_str().unwrap()).collect();
        assert_eq!(rels, ["", "a", "a/1", "b", "b/d", "b/d/e", "b/d/e/f", "b/d/l", "b/z", "c"]);
        for e in &items[0].entries {
            let m = std::fs::symlink_metadata(&e.host).unwrap();
            assert_eq!(e.host, r.join(&e.rel));
            assert_eq!((e.raw_mode, e.mode, e.uid, e.gid), (m.mode(), m.mode() & 0o7777, m.uid(), m.gid()));
            assert_eq!((e.ino, e.dev, e.nlink), (m.ino(), m.dev(), m.nlink()), "{:?}", e.rel);
            assert_eq!((e.mtime, e.ctime), ((m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec())));
            assert_eq!(e.size, if m.is_file() { m.len() } else { 0 });
        }
        let f = items[0].entries.iter().find(|e| e.rel == Path::new("b/d/e/f")).unwrap();
        assert_eq!((f.kind.clone(), f.mode, f.size), (EntryKind::File, 0o4751, 4));
        let l = items[0].entries.iter().find(|e| e.rel == Path::new("b/d/l")).unwrap();
        assert_eq!(l.kind, EntryKind::Symlink(PathBuf::from("../z")));
    }
}

#[test]
fn joined_is_join() {
    for base in ["", "a", "a/", "/", "/x/y", "d00/f001"] {
        for name in ["f", "caf\u{e9}.txt", ".hidden"] {
            assert_eq!(joined(Path::new(base), OsStr::new(name)), Path::new(base).join(name), "{base:?} + {name:?}");
        }
    }
}
