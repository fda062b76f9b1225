//! Layers: tree → tar → tree round trips, overlay upper dirs as diffs, hostile archives,
//! and a property test over random trees and random changes.

mod common;

use common::{capture, require_root, Overlay};
use proptest::prelude::*;
use rbuild_store::layer::{apply_layer, write_layer, ApplyMode, WriteOptions};
use rbuild_store::tar::{Entry, EntryKind, Writer};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(rustix::fs::CWD, p, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o644), 0)
        .unwrap();
}

fn mkchar(p: &Path, major: u32, minor: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(major, minor),
    )
    .unwrap();
}

/// What a layer keeps of a captured tree: of the xattrs only the file capability, as in
/// docker's layers.
fn layered(mut c: BTreeMap<String, common::Node>) -> BTreeMap<String, common::Node> {
    for n in c.values_mut() {
        n.xattrs.retain(|(k, _)| k == "security.capability");
    }
    c
}

fn layer_of(dir: &Path, overlay: bool) -> Vec<u8> {
    write_layer(dir, &WriteOptions { overlay, ..Default::default() }, Vec::new()).unwrap().0
}

/// A tree with every kind of entry a layer must carry.
fn rich_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/deep/er")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(root.join("setuid"), "#!/bin/sh\n").unwrap();
    chmod(&root.join("setuid"), 0o4755);
    fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    fs::write(root.join("owned"), "x").unwrap();
    chown(&root.join("owned"), 1000, 2000);
    symlink("etc/passwd", root.join("rel-link")).unwrap();
    symlink("/nonexistent/abs", root.join("abs-link")).unwrap();
    fs::write(root.join("hard-a"), "shared").unwrap();
    fs::hard_link(root.join("hard-a"), root.join("etc/deep/hard-b")).unwrap();
    mkfifo(&root.join("fifo"));
    mkchar(&root.join("null"), 1, 3);
    fs::write(root.join("cap"), "bin").unwrap();
    rustix::fs::setxattr(
        root.join("cap").as_path(),
        "security.capability",
        &[1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(root.join("cap").as_path(), "user.note", b"hello", rustix::fs::XattrFlags::empty()).unwrap();
    // Sparse: 4 bytes, a 4 MiB hole, 4 bytes.
    let mut f = fs::File::create(root.join("sparse")).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start(4 << 20)).unwrap();
    f.write_all(b"tail").unwrap();
    fs::write(root.join("empty"), "").unwrap();
    fs::write(root.join("ünïcödé name"), "u").unwrap();
    fs::write(root.join(format!("etc/{}", "long".repeat(40))), "long name").unwrap();
}

#[test]
fn tree_roundtrips_through_a_layer() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    fs::create_dir(&src).unwrap();
    fs::create_dir(&dst).unwrap();
    rich_tree(&src);
    let tar = layer_of(&src, false);
    apply_layer(tar.as_slice(), &dst, ApplyMode::Merge).unwrap();
    assert_eq!(layered(capture(&src)), capture(&dst));
    // The sparse file is still sparse after the round trip.
    let m = fs::metadata(dst.join("sparse")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(m.blocks() * 512 < 1 << 20, "holes were filled: {} blocks", m.blocks());
    // Same tree, same bytes.
    assert_eq!(tar, layer_of(&src, false));
    assert_eq!(tar, layer_of(&dst, false), "re-archiving the copy gives the same layer");
}

#[test]
fn mtime_clamp_is_applied() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("f"), "x").unwrap();
    let tar =
        write_layer(t.path(), &WriteOptions { mtime_clamp: Some(100), ..Default::default() }, Vec::new()).unwrap().0;
    let mut r = rbuild_store::tar::Reader::new(tar.as_slice());
    assert_eq!(r.next_entry().unwrap().unwrap().mtime, 100);
}

/// Changes made through an overlay mount, diffed from the upper dir, applied onto the
/// lower tree, give the merged view; applied as a snapshot and mounted, too.
#[test]
fn overlay_upper_dir_is_a_diff() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let d = |n: &str| {
        let p = t.path().join(n);
        fs::create_dir_all(&p).unwrap();
        p
    };
    let (lower, upper, work, merged) = (d("lower"), d("upper"), d("work"), d("merged"));
    rich_tree(&lower);
    fs::create_dir_all(lower.join("opq/old/sub")).unwrap();
    fs::write(lower.join("opq/old/sub/f"), "old").unwrap();
    fs::write(lower.join("opq/keep-not"), "old").unwrap();
    let want = {
        let _m = Overlay::mount(&[&lower], Some((&upper, &work)), &merged);
        let m = &merged;
        fs::remove_file(m.join("etc/passwd")).unwrap(); // whiteout
        fs::remove_dir_all(m.join("opq")).unwrap(); // whiteout of a dir ...
        fs::create_dir(m.join("opq")).unwrap(); // ... re-created: opaque
        fs::write(m.join("opq/new"), "new").unwrap();
        chmod(&m.join("setuid"), 0o755); // copy-up with a metadata change
        chown(&m.join("owned"), 7, 8);
        fs::write(m.join("etc/deep/er/added"), "added").unwrap();
        fs::remove_file(m.join("fifo")).unwrap();
        fs::create_dir(m.join("fifo")).unwrap(); // type change
        symlink("x", m.join("null-replaced")).unwrap();
        fs::hard_link(m.join("etc/deep/er/added"), m.join("added-link")).unwrap();
        capture(m)
    };
    let tar = layer_of(&upper, true);
    // Merge onto a copy of the lower tree.
    let copy = d("copy");
    apply_layer(layer_of(&lower, false).as_slice(), &copy, ApplyMode::Merge).unwrap();
    apply_layer(tar.as_slice(), &copy, ApplyMode::Merge).unwrap();
    assert_eq!(capture(&copy), layered(want.clone()), "merge apply");
    // Apply as an overlay snapshot, mount it over the lower tree.
    let snap = d("snap");
    apply_layer(tar.as_slice(), &snap, ApplyMode::Overlay).unwrap();
    let view = d("view");
    let _m = Overlay::mount(&[&snap, &lower], None, &view);
    assert_eq!(capture(&view), want, "overlay snapshot");
}

fn tar_of(entries: &[(Entry, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for (e, data) in entries {
        let mut e = e.clone();
        e.size = data.len() as u64;
        w.append(&e, &mut &data[..]).unwrap();
    }
    w.finish().unwrap()
}

fn entry(path: &str, kind: EntryKind, link: &str) -> Entry {
    let mut e = Entry::new(path, kind);
    e.link = link.as_bytes().to_vec();
    e
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside() {
    require_root();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", tar_of(&[(entry("../escape", EntryKind::File, ""), b"x")])),
        ("nested dotdot", tar_of(&[(entry("a/../../escape", EntryKind::File, ""), b"x")])),
        ("absolute", tar_of(&[(entry("/tmp/escape", EntryKind::File, ""), b"x")])),
        (
            "symlink then write through",
            tar_of(&[
                (entry("link", EntryKind::Symlink, "../outside"), b""),
                (entry("link/escape", EntryKind::File, ""), b"x"),
            ]),
        ),
        (
            "absolute symlink then write through",
            tar_of(&[(entry("link", EntryKind::Symlink, "/"), b""), (entry("link/escape", EntryKind::File, ""), b"x")]),
        ),
        ("hardlink to outside", tar_of(&[(entry("h", EntryKind::Hardlink, "../outside/victim"), b"")])),
        ("hardlink absolute", tar_of(&[(entry("h", EntryKind::Hardlink, "/etc/passwd"), b"")])),
        (
            "hardlink through symlink",
            tar_of(&[
                (entry("l", EntryKind::Symlink, "../outside"), b""),
                (entry("h", EntryKind::Hardlink, "l/victim"), b""),
            ]),
        ),
        ("whiteout dotdot", tar_of(&[(entry("../.wh.victim", EntryKind::File, ""), b"")])),
    ];
    let mut lying = tar_of(&[(entry("f", EntryKind::File, ""), b"abc")]);
    lying[124..136].copy_from_slice(b"00000010000\0");
    let sum: u32 =
        lying[..512].iter().enumerate().map(|(i, &c)| if (148..156).contains(&i) { 32 } else { u32::from(c) }).sum();
    lying[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let good = tar_of(&[(entry("a", EntryKind::File, ""), &[7u8; 5000])]);
    let mut all = cases;
    all.push(("lying size", lying));
    all.push(("truncated", good[..1500].to_vec()));
    all.push(("truncated at a header", good[..512 + 5120].to_vec()));
    for (name, tar) in all {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("victim"), "victim").unwrap();
        let before = capture(t.path());
        for mode in [ApplyMode::Merge, ApplyMode::Overlay] {
            let r = apply_layer(tar.as_slice(), &root, mode);
            assert!(r.is_err(), "{name} ({mode:?}) was accepted");
            let after = capture(t.path());
            let outside_changed: Vec<_> =
                after.keys().filter(|k| !k.starts_with("root")).filter(|k| before.get(*k) != after.get(*k)).collect();
            assert!(outside_changed.is_empty(), "{name}: outside changed: {outside_changed:?}");
            assert_eq!(fs::read_to_string(outside.join("victim")).unwrap(), "victim", "{name}");
            assert!(!Path::new("/tmp/escape").exists(), "{name}");
        }
    }
}

/// docker's untar cleans a name before joining it to the target: `c/../d` is `d`, and
/// `./a/./b` is `a/b`; only a `..` that climbs out of the root is refused.
#[test]
fn names_with_dot_dot_inside_the_root_are_cleaned() {
    require_root();
    let tar = tar_of(&[
        (entry("./a/./b", EntryKind::File, ""), b"ab"),
        (entry("c/../d", EntryKind::File, ""), b"d"),
        (entry("e/f/../../g", EntryKind::File, ""), b"g"),
    ]);
    for mode in [ApplyMode::Merge, ApplyMode::Overlay, ApplyMode::Plain] {
        let t = tempfile::tempdir().unwrap();
        apply_layer(tar.as_slice(), t.path(), mode).unwrap();
        assert_eq!(fs::read_to_string(t.path().join("a/b")).unwrap(), "ab");
        assert_eq!(fs::read_to_string(t.path().join("d")).unwrap(), "d");
        assert_eq!(fs::read_to_string(t.path().join("g")).unwrap(), "g");
        assert!(!t.path().join("c").exists() && !t.path().join("e/f").exists(), "{mode:?}");
    }
}

/// A hard-link entry's header is applied to the inode it shares, as docker's untar does
/// (Lchown, Chmod, Chtimes on the link's path): `ADD` of an archive whose link entry has
/// other owners or modes than its target shows the link entry's.
#[test]
fn a_hard_link_entry_gives_its_owner_mode_and_time_to_the_shared_inode() {
    require_root();
    use std::os::unix::fs::MetadataExt;
    let mut f = entry("d/f", EntryKind::File, "");
    (f.mode, f.uid, f.gid, f.mtime) = (0o640, 56, 78, 1_000_000);
    let mut h = entry("d/h", EntryKind::Hardlink, "d/f");
    (h.mode, h.uid, h.gid, h.mtime) = (0o4711, 9, 10, 2_000_000);
    let tar = tar_of(&[(f, b"x"), (h, b"")]);
    for mode in [ApplyMode::Merge, ApplyMode::Plain] {
        let t = tempfile::tempdir().unwrap();
        apply_layer(tar.as_slice(), t.path(), mode).unwrap();
        let m = fs::metadata(t.path().join("d/f")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()), (0o4711, 9, 10, 2_000_000), "{mode:?}");
        assert_eq!(m.nlink(), 2);
    }
}

// ---------------------------------------------------------------------------------------
// Property test: random lower tree, random changes through an overlay, the upper dir as a
// layer applied onto the lower tree gives the merged view.

#[derive(Debug, Clone)]
enum Op {
    File { dir: usize, name: u8, data: Vec<u8>, mode: u32, owner: (u32, u32) },
    Dir { dir: usize, name: u8, mode: u32 },
    Symlink { dir: usize, name: u8, target: String },
    Hardlink { from: usize, dir: usize, name: u8 },
    Fifo { dir: usize, name: u8 },
    Xattr { pick: usize, value: Vec<u8> },
    Remove { pick: usize },
    Chmod { pick: usize, mode: u32 },
    Chown { pick: usize, owner: (u32, u32) },
    Rewrite { pick: usize, data: Vec<u8> },
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![Just(0o644u32), Just(0o755), Just(0o600), Just(0o4755), Just(0o2711), Just(0o444)];
    let owner = prop_oneof![Just((0u32, 0u32)), Just((1000, 1000)), Just((65534, 12)), Just((3_000_000, 7))];
    prop_oneof![
        (any::<usize>(), 0u8..6, prop::collection::vec(any::<u8>(), 0..300), mode.clone(), owner.clone())
            .prop_map(|(dir, name, data, mode, owner)| Op::File { dir, name, data, mode, owner }),
        (any::<usize>(), 0u8..6, prop_oneof![Just(0o755u32), Just(0o700), Just(0o1777)])
            .prop_map(|(dir, name, mode)| Op::Dir { dir, name, mode }),
        (any::<usize>(), 0u8..6, "[a-z./]{1,12}").prop_map(|(dir, name, target)| Op::Symlink { dir, name, target }),
        (any::<usize>(), any::<usize>(), 0u8..6).prop_map(|(from, dir, name)| Op::Hardlink { from, dir, name }),
        (any::<usize>(), 0u8..6).prop_map(|(dir, name)| Op::Fifo { dir, name }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..20)).prop_map(|(pick, value)| Op::Xattr { pick, value }),
        any::<usize>().prop_map(|pick| Op::Remove { pick }),
        (any::<usize>(), mode).prop_map(|(pick, mode)| Op::Chmod { pick, mode }),
        (any::<usize>(), owner).prop_map(|(pick, owner)| Op::Chown { pick, owner }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(pick, data)| Op::Rewrite { pick, data }),
    ]
}

fn all_paths(root: &Path, dirs_only: bool) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for p in names {
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            if !dirs_only || m.is_dir() {
                out.push(p);
            }
        }
    }
    out
}

/// Applies one operation under `root`; ignores operations that do not make sense here
/// (e.g. a name that already exists), as a random walk would.
fn apply_op(root: &Path, op: &Op) {
    let mut dirs = vec![root.to_path_buf()];
    dirs.extend(all_paths(root, true));
    let paths = all_paths(root, false);
    let name = |n: u8| format!("n{n}");
    let pick = |i: usize| if paths.is_empty() { None } else { Some(paths[i % paths.len()].clone()) };
    match op {
        Op::File { dir, name: n, data, mode, owner } => {
            let p = dirs[dir % dirs.len()].join(name(*n));
            if fs::symlink_metadata(&p).is_err() {
                fs::write(&p, data).unwrap();
                chown(&p, owner.0, owner.1);
                chmod(&p, *mode);
            }
        }
        Op::Dir { dir, name: n, mode } => {
            let p = dirs[dir % dirs.len()].join(name(*n));
            if fs::symlink_metadata(&p).is_err() {
                fs::create_dir(&p).unwrap();
                chmod(&p, *mode);
            }
        }
        Op::Symlink { dir, name: n, target } => {
            let p = dirs[dir % dirs.len()].join(name(*n));
            if fs::symlink_metadata(&p).is_err() {
                symlink(target, &p).unwrap();
            }
        }
        Op::Hardlink { from, dir, name: n } => {
            let files: Vec<_> = paths.iter().filter(|p| fs::symlink_metadata(p).unwrap().is_file()).collect();
            if let Some(src) = files.get(from % files.len().max(1)) {
                let p = dirs[dir % dirs.len()].join(name(*n));
                if fs::symlink_metadata(&p).is_err() {
                    let _ = fs::hard_link(src, &p); // EXDEV across overlay layers is fine
                }
            }
        }
        Op::Fifo { dir, name: n } => {
            let p = dirs[dir % dirs.len()].join(name(*n));
            if fs::symlink_metadata(&p).is_err() {
                mkfifo(&p);
            }
        }
        Op::Xattr { pick: i, value } => {
            if let Some(p) = pick(*i) {
                let m = fs::symlink_metadata(&p).unwrap();
                if m.is_file() || m.is_dir() {
                    rustix::fs::setxattr(p.as_path(), "user.prop", value, rustix::fs::XattrFlags::empty()).unwrap();
                }
            }
        }
        Op::Remove { pick: i } => {
            if let Some(p) = pick(*i) {
                if fs::symlink_metadata(&p).unwrap().is_dir() {
                    fs::remove_dir_all(&p).unwrap();
                } else {
                    fs::remove_file(&p).unwrap();
                }
            }
        }
        Op::Chmod { pick: i, mode } => {
            if let Some(p) = pick(*i) {
                if !fs::symlink_metadata(&p).unwrap().is_symlink() {
                    chmod(&p, *mode);
                }
            }
        }
        Op::Chown { pick: i, owner } => {
            if let Some(p) = pick(*i) {
                chown(&p, owner.0, owner.1);
            }
        }
        Op::Rewrite { pick: i, data } => {
            if let Some(p) = pick(*i) {
                if fs::symlink_metadata(&p).unwrap().is_file() {
                    fs::write(&p, data).unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_changes_roundtrip(base in prop::collection::vec(op(), 1..25), changes in prop::collection::vec(op(), 1..25)) {
        require_root();
        let t = tempfile::tempdir().unwrap();
        let d = |n: &str| { let p = t.path().join(n); fs::create_dir_all(&p).unwrap(); p };
        let (lower, upper, work, merged, copy, snap, view) = (d("lower"), d("upper"), d("work"), d("merged"), d("copy"), d("snap"), d("view"));
        for o in &base { apply_op(&lower, o); }
        let lower_layer = layer_of(&lower, false);
        let want = {
            let _m = Overlay::mount(&[&lower], Some((&upper, &work)), &merged);
            for o in &changes { apply_op(&merged, o); }
            capture(&merged)
        };
        let diff = layer_of(&upper, true);
        apply_layer(lower_layer.as_slice(), &copy, ApplyMode::Merge).unwrap();
        prop_assert_eq!(capture(&copy), layered(capture(&lower)), "lower round trip");
        let relower = d("relower");
        apply_layer(lower_layer.as_slice(), &relower, ApplyMode::Overlay).unwrap();
        apply_layer(diff.as_slice(), &copy, ApplyMode::Merge).unwrap();
        let want = layered(want);
        prop_assert_eq!(capture(&copy), want.clone(), "merge");
        apply_layer(diff.as_slice(), &snap, ApplyMode::Overlay).unwrap();
        let _v = Overlay::mount(&[&snap, &relower], None, &view);
        prop_assert_eq!(capture(&view), want, "overlay snapshot");
    }
}

#[test]
fn whiteouts_in_overlay_snapshots_are_devices_and_xattrs() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        (entry("d/", EntryKind::Dir, ""), b""),
        (entry("d/.wh..wh..opq", EntryKind::File, ""), b""),
        (entry(".wh.gone", EntryKind::File, ""), b""),
    ]);
    apply_layer(tar.as_slice(), t.path(), ApplyMode::Overlay).unwrap();
    let st = rustix::fs::lstat(t.path().join("gone")).unwrap();
    assert_eq!(rustix::fs::FileType::from_raw_mode(st.st_mode), rustix::fs::FileType::CharacterDevice);
    assert_eq!(st.st_rdev, 0);
    let mut v = [0u8; 4];
    let n = rustix::fs::lgetxattr(t.path().join("d").as_path(), "trusted.overlay.opaque", &mut v[..]).unwrap();
    assert_eq!(&v[..n], b"y");
    let _ = OsStr::new("");
}

/// Regression (issue 12, 4): a whiteout entry whose target is `.` or `..` (`.wh..`,
/// `.wh...`) deleted the directory it is in or the one above it: unpacking a snapshot
/// in the store's tmp dir wiped every other temp entry there. Such whiteouts are refused,
/// naming the entry, and nothing outside the target changes.
#[test]
fn whiteouts_of_dot_and_dotdot_are_refused() {
    require_root();
    for name in [".wh...", ".wh..", "sub/.wh...", "sub/.wh..", "sub/deeper/.wh..."] {
        for mode in [ApplyMode::Merge, ApplyMode::Overlay] {
            let t = tempfile::tempdir().unwrap();
            let root = t.path().join("root");
            fs::create_dir_all(root.join("sub/deeper")).unwrap();
            fs::write(root.join("sub/deeper/keep"), "k").unwrap();
            fs::write(root.join("sub/keep"), "k").unwrap();
            fs::write(t.path().join("sibling"), "s").unwrap();
            let before = capture(t.path());
            let tar = tar_of(&[(entry(name, EntryKind::File, ""), b"")]);
            let err = apply_layer(tar.as_slice(), &root, mode).expect_err(&format!("{name} ({mode:?}) was accepted"));
            assert!(err.to_string().contains(name), "{name} ({mode:?}): the error names the entry: {err}");
            assert_eq!(capture(t.path()), before, "{name} ({mode:?}) changed the tree");
        }
    }
    // In a plain archive (ADD, cp) the same names are ordinary files.
    let t = tempfile::tempdir().unwrap();
    let tar = tar_of(&[(entry(".wh...", EntryKind::File, ""), b"literal")]);
    apply_layer(tar.as_slice(), t.path(), ApplyMode::Plain).unwrap();
    assert_eq!(fs::read_to_string(t.path().join(".wh...")).unwrap(), "literal");
}

// ---------------------------------------------------------------------------------------
// Property test: random hostile entries never reach outside the target.

fn hostile_component() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "b",
        "..",
        ".",
        "",
        ".wh.a",
        ".wh.b",
        ".wh..",
        ".wh...",
        ".wh..wh..opq",
        ".wh..wh.x",
        ".wh.",
        "link",
        "outside",
        "victim",
    ])
}

fn hostile_path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(hostile_component(), 1..5), any::<bool>()).prop_map(|(abs, comps, slash)| {
        let mut p = comps.join("/");
        if abs {
            p.insert(0, '/');
        }
        if slash {
            p.push('/');
        }
        p
    })
}

fn hostile_entry() -> impl Strategy<Value = (Entry, Vec<u8>)> {
    let link =
        prop::sample::select(vec!["..", "../outside", "/", "/etc", "a", "../../", "link", "outside/victim", "."]);
    (hostile_path(), 0u8..5, link, hostile_path()).prop_map(|(path, kind, link, hard)| {
        let (kind, link) = match kind {
            0 => (EntryKind::File, String::new()),
            1 => (EntryKind::Dir, String::new()),
            2 => (EntryKind::Symlink, link.to_string()),
            3 => (EntryKind::Hardlink, hard),
            _ => (EntryKind::Fifo, String::new()),
        };
        (entry(&path, kind, &link), if kind == EntryKind::File { b"x".to_vec() } else { vec![] })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the entries — `..`, absolute names, symlinks to escape through, hard links
    /// out, whiteouts of `.`/`..`/opaque markers — applying them in any mode, or
    /// extracting them into a container root, writes and removes nothing outside.
    #[test]
    fn hostile_entries_never_touch_anything_outside(entries in prop::collection::vec(hostile_entry(), 1..8)) {
        require_root();
        let tar = tar_of(&entries.iter().map(|(e, d)| (e.clone(), d.as_slice())).collect::<Vec<_>>());
        for mode in [ApplyMode::Merge, ApplyMode::Overlay, ApplyMode::Plain, ApplyMode::Plain] {
            let scoped = mode == ApplyMode::Plain && entries.len() % 2 == 0;
            let t = tempfile::tempdir().unwrap();
            let top = t.path().join("top");
            let root = top.join("root");
            fs::create_dir_all(root.join("a/b")).unwrap();
            fs::write(root.join("a/victim"), "inside").unwrap();
            fs::create_dir_all(top.join("outside")).unwrap();
            fs::write(top.join("outside/victim"), "outside").unwrap();
            fs::write(top.join("victim"), "beside").unwrap();
            symlink("../outside", root.join("link")).unwrap();
            let before = capture(t.path());
            let _ = if scoped {
                rbuild_store::layer::extract_in_root(tar.as_slice(), &root, &root.join("a"))
            } else {
                apply_layer(tar.as_slice(), &root, mode)
            };
            let after = capture(t.path());
            let changed: Vec<&String> = before
                .keys()
                .chain(after.keys())
                .filter(|k| !k.starts_with("top/root"))
                .filter(|k| before.get(*k) != after.get(*k))
                .collect();
            prop_assert!(changed.is_empty(), "{:?} (scoped {}): outside changed: {:?}", mode, scoped, changed);
            for abs in ["/a", "/b", "/victim", "/link", "/outside", "/.wh.a"] {
                prop_assert!(!Path::new(abs).exists(), "{} appeared", abs);
            }
        }
    }
}

/// A file entry is created without looking first (one stat a file fewer): when something
/// is already there — a file, a directory with contents, a symlink, a whiteout device —
/// it is still replaced, in both modes; a file larger than the writeback window (handed
/// to writeback as it is written) comes back whole.
#[test]
fn a_file_entry_replaces_whatever_is_there_and_big_files_come_back_whole() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..(17u32 << 20) + 12345).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let first = tar_of(&[
        (entry("f", EntryKind::File, ""), b"old"),
        (entry("d/", EntryKind::Dir, ""), b""),
        (entry("d/inner", EntryKind::File, ""), b"x"),
        (entry("l", EntryKind::Symlink, "f"), b""),
    ]);
    let second = tar_of(&[
        (entry("f", EntryKind::File, ""), b"new f"),
        (entry("d", EntryKind::File, ""), b"new d"),
        (entry("l", EntryKind::File, ""), b"new l"),
        (entry("big", EntryKind::File, ""), &big),
    ]);
    for mode in [ApplyMode::Merge, ApplyMode::Overlay] {
        let root = t.path().join(format!("{mode:?}"));
        fs::create_dir(&root).unwrap();
        apply_layer(first.as_slice(), &root, mode).unwrap();
        if mode == ApplyMode::Overlay {
            // A whiteout device where the next file goes.
            apply_layer(tar_of(&[(entry(".wh.w", EntryKind::File, ""), b"")]).as_slice(), &root, mode).unwrap();
            apply_layer(tar_of(&[(entry("w", EntryKind::File, ""), b"new w")]).as_slice(), &root, mode).unwrap();
            assert_eq!(fs::read(root.join("w")).unwrap(), b"new w");
        }
        apply_layer(second.as_slice(), &root, mode).unwrap();
        for n in ["f", "d", "l"] {
            let p = root.join(n);
            assert!(fs::symlink_metadata(&p).unwrap().is_file(), "{mode:?} {n}");
            assert_eq!(fs::read(&p).unwrap(), format!("new {n}").as_bytes(), "{mode:?}");
        }
        assert!(fs::read(root.join("big")).unwrap() == big, "{mode:?}: big file");
    }
}
