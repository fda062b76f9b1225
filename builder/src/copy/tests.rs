//! Unit tests of `copy`.

use super::*;
use crate::context::Source;

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("src/dir/sub")).unwrap();
    std::fs::write(d.path().join("src/f.txt"), "f").unwrap();
    std::fs::write(d.path().join("src/dir/sub/g"), "g").unwrap();
    std::fs::create_dir_all(d.path().join("root/existing")).unwrap();
    d
}

/// `n` files `m<i % dirs>/f<i>` holding "content <i>", in order.
fn numbered_files(root: &Path, n: usize, dirs: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = root.join(format!("m{}/f{i:03}", i % dirs));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("content {i}")).unwrap();
            p
        })
        .collect()
}

#[test]
fn docker_naming_rules() {
    let d = tree();
    let src = Source { root: d.path().join("src"), ignore: None, exclude: None, parallel: true };
    let root = d.path().join("root");
    let o = CopyOpts { owner: Some((0, 0)), chmod: None };
    copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/existing", (0, 0), &o).unwrap();
    assert!(root.join("existing/f.txt").is_file());
    copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/new/", (0, 0), &o).unwrap();
    assert!(root.join("new/f.txt").is_file());
    copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/renamed", (0, 0), &o).unwrap();
    assert!(root.join("renamed").is_file());
    copy_items(Root::dir(&root), &src.select("dir").unwrap(), "/d", (0, 0), &o).unwrap();
    assert!(root.join("d/sub/g").is_file());
    assert!(!root.join("d/dir").exists());
    // a symlink in the destination resolves inside the root
    std::os::unix::fs::symlink("/existing", root.join("link")).unwrap();
    copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/link/x", (0, 0), &o).unwrap();
    assert!(root.join("existing/x").is_file());
    // so does a symlink that is the destination itself (dangling: its target is made)
    std::fs::write(root.join("real"), "old").unwrap();
    std::os::unix::fs::symlink("/real", root.join("to-real")).unwrap();
    std::os::unix::fs::symlink("/made/here", root.join("dangling")).unwrap();
    for dest in ["/to-real", "/dangling"] {
        copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), dest, (0, 0), &o).unwrap();
    }
    assert!(root.join("to-real").is_symlink() && root.join("dangling").is_symlink());
    assert_eq!(std::fs::read(root.join("real")).unwrap(), std::fs::read(src.root.join("f.txt")).unwrap());
    assert!(root.join("made/here").is_file());
    // a symlink named like the file in a directory destination is replaced
    std::fs::remove_file(root.join("existing/f.txt")).unwrap();
    std::os::unix::fs::symlink("/real", root.join("existing/f.txt")).unwrap();
    copy_items(Root::dir(&root), &src.select("f.txt").unwrap(), "/existing/", (0, 0), &o).unwrap();
    assert!(root.join("existing/f.txt").is_file() && !root.join("existing/f.txt").is_symlink());
}

/// Names of one inode in a copied directory stay one inode, as docker's copy keeps
/// them (its tar of the directory has hard links); through an overlay whose new
/// directories are filled in the upper dir, too.
#[test]
fn hard_links_inside_a_directory_copy_stay_links() {
    use rbuild_runtime::{with_views, View};
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    std::fs::write(src.join("d/a"), "x").unwrap();
    std::fs::hard_link(src.join("d/a"), src.join("d/sub/b")).unwrap();
    std::fs::hard_link(src.join("d/a"), src.join("d/c")).unwrap();
    let items = Source { root: src, ignore: None, exclude: None, parallel: true }.select("d").unwrap();
    let lower = d.path().join("lower");
    std::fs::create_dir_all(lower.join("srv")).unwrap();
    let (upper, work) = (d.path().join("upper"), d.path().join("work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let view = View { lowers: vec![lower], upper: Some((upper.clone(), work)), volatile_upper: true };
    let o = CopyOpts { owner: Some((0, 0)), chmod: None };
    let inodes = with_views(&d.path().join("scratch"), &[view], |roots| {
        let r = &roots[0];
        copy_items(Root { path: r, upper: Some(&upper) }, &items, "/srv/new/", (0, 0), &o).unwrap();
        ["srv/new/a", "srv/new/sub/b", "srv/new/c"].map(|p| {
            let m = std::fs::metadata(r.join(p)).unwrap();
            (m.ino(), m.nlink())
        })
    })
    .unwrap();
    assert_eq!(inodes[0], inodes[1]);
    assert_eq!(inodes[0], inodes[2]);
    assert_eq!(inodes[0].1, 3);
}

/// A name that is not UTF-8 lands as it is, as a file copied alone and inside a
/// directory copy.
#[test]
fn names_that_are_not_utf8_are_copied_as_they_are() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    let odd = OsStr::from_bytes(b"caf\xe9");
    std::fs::create_dir_all(src.join("dir").join(odd)).unwrap();
    std::fs::write(src.join("dir").join(odd).join(odd), "x").unwrap();
    std::fs::write(src.join(odd), "y").unwrap();
    let source = Source { root: src, ignore: None, exclude: None, parallel: true };
    let root = d.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let o = CopyOpts { owner: Some((0, 0)), chmod: None };
    copy_items(Root::dir(&root), &source.select("dir").unwrap(), "/d/", (0, 0), &o).unwrap();
    copy_items(Root::dir(&root), &source.select("caf*").unwrap(), "/f/", (0, 0), &o).unwrap();
    assert_eq!(std::fs::read_to_string(root.join("d").join(odd).join(odd)).unwrap(), "x");
    assert_eq!(std::fs::read_to_string(root.join("f").join(odd)).unwrap(), "y");
}

/// Inside a directory the copy made, files go straight to the overlay's upper dir;
/// elsewhere through the overlay. Seen again through a fresh mount, the tree is the
/// one a copy through the overlay alone makes.
#[test]
fn a_copy_into_an_overlay_fills_new_directories_through_the_upper_dir() {
    use rbuild_runtime::{with_views, View};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = tempfile::tempdir().unwrap();
    let src_root = d.path().join("src");
    numbered_files(&src_root.join("pkg"), 300, 3);
    std::fs::write(src_root.join("top.txt"), "new top").unwrap();
    std::fs::set_permissions(src_root.join("pkg/m1"), std::fs::Permissions::from_mode(0o700)).unwrap();
    // The image already has /app with a file the copy replaces and one it keeps.
    let lower = d.path().join("lower");
    std::fs::create_dir_all(lower.join("app")).unwrap();
    std::fs::write(lower.join("app/top.txt"), "old top").unwrap();
    std::fs::write(lower.join("app/keep"), "kept").unwrap();
    let (upper, work) = (d.path().join("upper"), d.path().join("work"));
    for p in [&upper, &work] {
        std::fs::create_dir(p).unwrap();
    }
    let scratch = d.path().join("scratch");
    let view = |upper: Option<(PathBuf, PathBuf)>| View { lowers: vec![lower.clone()], upper, volatile_upper: true };
    let items = Source { root: src_root, ignore: None, exclude: None, parallel: true }.select(".").unwrap();
    let o = CopyOpts { owner: Some((7, 8)), chmod: None };
    with_views(&scratch, &[view(Some((upper.clone(), work.clone())))], |roots| {
        copy_items(Root { path: &roots[0], upper: Some(&upper) }, &items, "/app/", (0, 0), &o)
    })
    .unwrap()
    .unwrap();
    assert!(upper.join("app/pkg/m2/f299").is_file(), "new directories are filled in the upper dir");
    // Lowers: the step's upper over the image.
    let merged = with_views(
        &scratch,
        &[View { lowers: vec![upper.clone(), lower.clone()], upper: None, volatile_upper: false }],
        |roots| {
            let r = &roots[0];
            let read = |p: &str| std::fs::read_to_string(r.join(p)).unwrap();
            assert_eq!(read("app/top.txt"), "new top");
            assert_eq!(read("app/keep"), "kept");
            for i in 0..300 {
                assert_eq!(read(&format!("app/pkg/m{}/f{i:03}", i % 3)), format!("content {i}"));
            }
            let m1 = std::fs::metadata(r.join("app/pkg/m1")).unwrap();
            (m1.mode() & 0o7777, m1.uid(), m1.gid(), std::fs::metadata(r.join("app/pkg/m0/f000")).unwrap().uid())
        },
    )
    .unwrap();
    assert_eq!(merged, (0o700, 7, 8, 7));
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Context files with setuid/setgid bits, copied as docker copies them.
fn setuid_tree(src: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(src.join("d2775")).unwrap();
    std::fs::set_permissions(src.join("d2775"), std::fs::Permissions::from_mode(0o2775)).unwrap();
    for m in [0o4755, 0o2755, 0o6755, 0o2745, 0o1755, 0o7777, 0o640] {
        let p = src.join(format!("f{m:o}"));
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    rustix::fs::mknodat(CWD, src.join("fifo"), rustix::fs::FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
    rustix::fs::chmod(src.join("fifo"), Mode::from_raw_mode(0o4755)).unwrap();
}

#[test]
fn a_chowned_copy_drops_setuid_and_setgid_of_files_as_docker_does() {
    let d = tempfile::tempdir().unwrap();
    setuid_tree(&d.path().join("src"));
    let items = Source { root: d.path().join("src"), ignore: None, exclude: None, parallel: true }.select(".").unwrap();
    let copy = |o: CopyOpts, name: &str| -> Vec<(String, u32)> {
        let root = d.path().join(name);
        std::fs::create_dir(&root).unwrap();
        copy_items(Root::dir(&root), &items, "/c/", (0, 0), &o).unwrap();
        let mut v: Vec<_> = std::fs::read_dir(root.join("c"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), mode_of(&e.path()))
            })
            .collect();
        v.sort();
        v
    };
    let all = |ms: [u32; 9]| -> Vec<(String, u32)> {
        ["d2775", "f1755", "f2745", "f2755", "f4755", "f640", "f6755", "f7777", "fifo"]
            .iter()
            .zip(ms)
            .map(|(n, m)| (n.to_string(), m))
            .collect()
    };
    // From the context (owned by root, or --chown): setuid goes, setgid with g+x goes,
    // the sticky bit and directories keep theirs.
    assert_eq!(
        copy(CopyOpts { owner: Some((0, 0)), chmod: None }, "chowned"),
        all([0o2775, 0o1755, 0o2745, 0o755, 0o755, 0o640, 0o755, 0o1777, 0o755])
    );
    // COPY --from without --chown keeps owners, and the bits.
    assert_eq!(
        copy(CopyOpts { owner: None, chmod: None }, "kept"),
        all([0o2775, 0o1755, 0o2745, 0o2755, 0o4755, 0o640, 0o6755, 0o7777, 0o4755])
    );
    // --chmod is applied as written.
    assert_eq!(copy(CopyOpts { owner: Some((0, 0)), chmod: Some(0o4711) }, "chmod")[4], ("f4755".into(), 0o4711));
}

/// A directory COPY --from without --chown keeps its files' capabilities, as docker's
/// archived copy does; a chowned copy, and a copy of the file alone, have none.
#[test]
fn a_copy_that_keeps_owners_keeps_the_file_capability() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: setting security.capability needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("ping"), "elf").unwrap();
    // cap_net_raw permitted and effective, revision 3 (with a root uid).
    let mut v3 = vec![0x01, 0, 0, 3, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    v3.extend_from_slice(&1000u32.to_le_bytes());
    let cap = "security.capability";
    rustix::fs::lsetxattr(src.join("ping"), cap, &v3, rustix::fs::XattrFlags::empty()).unwrap();
    let source = Source { root: src, ignore: None, exclude: None, parallel: true };
    let get = |p: &Path| {
        let mut v = [0u8; 64];
        rustix::fs::lgetxattr(p, cap, &mut v[..]).ok().map(|n| v[..n].to_vec())
    };
    let mut v2 = v3[..20].to_vec();
    v2[3] = 2; // kept as revision 2
    for (what, owner, want) in [(".", None, Some(v2)), (".", Some((0, 0)), None), ("ping", None, None)] {
        let root = d.path().join(format!("root-{what}-{}", owner.is_some()));
        std::fs::create_dir(&root).unwrap();
        let o = CopyOpts { owner, chmod: None };
        copy_items(Root::dir(&root), &source.select(what).unwrap(), "/bin/", (0, 0), &o).unwrap();
        assert_eq!(get(&root.join("bin/ping")), want, "{what} owner {owner:?}");
    }
}

/// Ownership of what a copy creates: a copied directory's or file's destination and missing
/// parents are the owner's (`identity`, the --chown owner), as BuildKit's copy makes them;
/// an unpacked archive's destination is root's, as docker's UntarPath makes it, and its
/// content keeps its owners.
#[test]
fn directories_a_copy_makes_are_owned_as_buildkit_makes_them() {
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("dir/x")).unwrap();
    std::fs::write(src.join("f"), "f").unwrap();
    let tar = d.path().join("a.tar");
    let mut w = rbuild_store::tar::Writer::new(std::fs::File::create(&tar).unwrap());
    let mut e = rbuild_store::tar::Entry::new("x/y", rbuild_store::tar::EntryKind::File);
    (e.uid, e.gid, e.size) = (7, 8, 1);
    w.append(&e, &mut &b"y"[..]).unwrap();
    w.finish().unwrap();
    let root = d.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let source = Source { root: src, ignore: None, exclude: None, parallel: true };
    let o = CopyOpts { owner: Some((1000, 1000)), chmod: None };
    copy_items(Root::dir(&root), &source.select("dir").unwrap(), "/new/sub/", (1000, 1000), &o).unwrap();
    copy_items(Root::dir(&root), &source.select("f").unwrap(), "/new2/sub/", (1000, 1000), &o).unwrap();
    extract_archive(&root, &tar, "/new3/sub/").unwrap();
    let owner = |p: &str| {
        let m = std::fs::symlink_metadata(root.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    let got: Vec<_> =
        ["new", "new/sub", "new/sub/x", "new2", "new2/sub", "new2/sub/f", "new3", "new3/sub", "new3/sub/x/y"]
            .iter()
            .map(|p| (p.to_string(), owner(p)))
            .collect();
    let want: Vec<_> = [
        ("new", (1000, 1000)),
        ("new/sub", (1000, 1000)),
        ("new/sub/x", (1000, 1000)),
        ("new2", (1000, 1000)),
        ("new2/sub", (1000, 1000)),
        ("new2/sub/f", (1000, 1000)),
        ("new3", (0, 0)),
        ("new3/sub", (0, 0)),
        ("new3/sub/x/y", (7, 8)),
    ]
    .iter()
    .map(|(p, o)| (p.to_string(), *o))
    .collect();
    assert_eq!(got, want);
}

/// docker's copy of a directory changes the destination even when nothing lands in it
/// (its untar is chrooted there): the step's layer has the destination, `/` excepted.
#[test]
fn a_directory_copy_changes_its_destination_even_when_empty() {
    use rbuild_runtime::{with_views, View};
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("src/empty")).unwrap();
    let lower = d.path().join("lower");
    std::fs::create_dir_all(lower.join("tmp")).unwrap();
    let items =
        Source { root: d.path().join("src"), ignore: None, exclude: None, parallel: true }.select("empty").unwrap();
    let o = CopyOpts { owner: Some((0, 0)), chmod: None };
    for (dest, lands) in [("/", false), ("/tmp/", true)] {
        let up = d.path().join(format!("upper{}", dest.len()));
        let (upper, work) = (up.join("upper"), up.join("work"));
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        let view = View { lowers: vec![lower.clone()], upper: Some((upper.clone(), work)), volatile_upper: true };
        with_views(&d.path().join("scratch"), &[view], |roots| {
            copy_items(Root { path: &roots[0], upper: Some(&upper) }, &items, dest, (0, 0), &o)
        })
        .unwrap()
        .unwrap();
        assert_eq!(upper.join("tmp").is_dir(), lands, "{dest}");
        assert_eq!(rbuild_store::layer::writes_nothing(&upper).unwrap(), !lands, "{dest}");
    }
}

#[test]
fn large_directories_copy_on_all_cores_and_replace_what_was_there() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let src_root = d.path().join("src");
    for (i, p) in numbered_files(&src_root, 700, 7).iter().enumerate() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600 + (i % 2) as u32 * 0o55)).unwrap();
    }
    let root = d.path().join("root");
    // In the way: a directory where a file goes, a file where a directory goes.
    std::fs::create_dir_all(root.join("app/m0/f000/old")).unwrap();
    std::fs::write(root.join("app/m1"), "a file").unwrap();
    let src = Source { root: src_root.clone(), ignore: None, exclude: None, parallel: true };
    let o = CopyOpts { owner: Some((0, 0)), chmod: None };
    copy_items(Root::dir(&root), &src.select(".").unwrap(), "/app", (0, 0), &o).unwrap();
    for i in 0..700 {
        let p = root.join(format!("app/m{}/f{i:03}", i % 7));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("content {i}"), "{}", p.display());
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600 + (i % 2) as u32 * 0o55);
    }
    // An error on a worker thread is the copy's error.
    let mut items = Source { root: src_root, ignore: None, exclude: None, parallel: true }.select(".").unwrap();
    let victim = items[0].entries.iter_mut().find(|e| e.rel == Path::new("m6/f699")).unwrap();
    victim.host = d.path().join("missing");
    std::fs::create_dir(d.path().join("root2")).unwrap();
    let e = copy_items(Root::dir(&d.path().join("root2")), &items, "/app", (0, 0), &o).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}
