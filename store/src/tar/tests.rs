use super::*;
use std::io::Read;
use std::process::Command;

fn write(entries: &[(Entry, Vec<u8>)]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for (e, d) in entries {
        w.append(e, &mut d.as_slice()).unwrap();
    }
    w.finish().unwrap()
}

fn read_all(data: &[u8]) -> crate::error::Result<Vec<(Entry, Vec<u8>)>> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while let Some(e) = r.next_entry()? {
        let mut d = Vec::new();
        r.data().read_to_end(&mut d).map_err(|e| crate::error::StoreError::io("data", e))?;
        out.push((e, d));
    }
    Ok(out)
}

fn file(path: &str, data: &[u8]) -> (Entry, Vec<u8>) {
    let mut e = Entry::new(path, EntryKind::File);
    e.size = data.len() as u64;
    (e, data.to_vec())
}

#[test]
fn roundtrip_all_kinds() {
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
    let very_long = "x/".repeat(200) + "end";
    let mut sym = Entry::new("link", EntryKind::Symlink);
    sym.link = b"target/of/the/link".to_vec();
    let mut longlink = Entry::new("ll", EntryKind::Symlink);
    longlink.link = "t".repeat(300).into_bytes();
    let mut dir = Entry::new("dir", EntryKind::Dir);
    dir.mode = 0o1777;
    dir.uid = 3_000_000; // needs PAX
    let mut dev = Entry::new("dev/null", EntryKind::CharDevice);
    dev.dev_major = 1;
    dev.dev_minor = 3;
    let mut hard = Entry::new("hard", EntryKind::Hardlink);
    hard.link = b"a".to_vec();
    let (mut x, xd) = file("caps", b"bin");
    x.xattrs = vec![("security.capability".into(), vec![1, 0, 0, 2, 0xff]), ("user.k".into(), b"v".to_vec())];
    x.mtime = -5;
    x.mode = 0o4755;
    let entries = vec![
        file("a", b"hello"),
        (dir.clone(), vec![]),
        file(&long, b"long name"),
        file(&very_long, b"very long"),
        file("ünïcode/ファイル", b"u"),
        (sym, vec![]),
        (longlink, vec![]),
        (dev, vec![]),
        (Entry::new("fifo", EntryKind::Fifo), vec![]),
        (hard, vec![]),
        (x, xd),
        file("big", &vec![7u8; 70_000]),
    ];
    let bytes = write(&entries);
    assert_eq!(bytes.len() % 512, 0);
    let back = read_all(&bytes).unwrap();
    assert_eq!(back.len(), entries.len());
    for ((a, ad), (b, bd)) in entries.iter().zip(back.iter()) {
        let mut a = a.clone();
        if a.kind == EntryKind::Dir {
            a.path.push(b'/');
        }
        assert_eq!(&a, b);
        assert_eq!(ad, bd);
    }
    // Deterministic.
    assert_eq!(bytes, write(&entries));
}

#[test]
fn gnu_tar_reads_our_archives() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("{}/{}", "d".repeat(150), "n".repeat(120));
    let bytes = write(&[file("a.txt", b"A"), file(&long, b"L"), file("é", b"E")]);
    let p = dir.path().join("t.tar");
    std::fs::write(&p, &bytes).unwrap();
    let out = Command::new("tar").arg("-tf").arg(&p).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names = String::from_utf8(out.stdout).unwrap();
    assert_eq!(names, format!("a.txt\n{long}\né\n"));
}

#[test]
fn we_read_gnu_tar_archives_including_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join(format!("{}.txt", "n".repeat(140))), "long").unwrap();
    // A sparse file: data at 0 and at 1 MiB, hole between.
    let sp = std::fs::File::create(src.join("sparse")).unwrap();
    use std::io::{Seek, SeekFrom, Write};
    let mut sp = sp;
    sp.write_all(b"head").unwrap();
    sp.seek(SeekFrom::Start(1 << 20)).unwrap();
    sp.write_all(b"tail").unwrap();
    drop(sp);
    for fmt in ["gnu", "pax", "oldgnu"] {
        let t = dir.path().join(format!("{fmt}.tar"));
        let st = Command::new("tar")
            .args(["--sparse", &format!("--format={fmt}"), "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&t)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let entries = read_all(&std::fs::read(&t).unwrap()).unwrap_or_else(|e| panic!("{fmt}: {e}"));
        let (s, data) = entries.iter().find(|(e, _)| e.path.ends_with(b"sparse")).expect("sparse entry");
        let map = s.sparse.as_ref().unwrap_or_else(|| panic!("{fmt}: sparse map missing"));
        assert_eq!(map.real_size, (1 << 20) + 4, "{fmt}");
        assert!(data.len() < 100_000, "{fmt}: holes were stored");
        assert!(
            entries
                .iter()
                .any(|(e, d)| e.path.ends_with(format!("{}.txt", "n".repeat(140)).as_bytes()) && d == b"long"),
            "{fmt}"
        );
    }
}

#[test]
fn corrupt_and_truncated_archives_are_refused() {
    let bytes = write(&[file("a", &[1u8; 2000]), file("b", b"x")]);
    // Cut inside data, inside a header, at a header boundary (no end marker).
    for cut in [700, 2560 + 100, 2560] {
        assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut} accepted");
    }
    // A flipped byte in a header breaks the checksum.
    let mut bad = bytes.clone();
    bad[10] ^= 0x40;
    assert!(read_all(&bad).is_err());
    // A size field that lies (larger than the data).
    let mut lying = write(&[file("a", b"abc")]);
    lying[124..136].copy_from_slice(b"00000077777\0");
    crate::tar::header::set_checksum((&mut lying[..512]).try_into().unwrap());
    assert!(read_all(&lying).is_err());
    // Not a tar at all.
    assert!(read_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0].repeat(100)).is_err());
}

#[test]
fn pax_records_length_fixed_point() {
    for n in [1usize, 5, 90, 95, 96, 97, 990, 995, 9990] {
        let mut out = Vec::new();
        super::writer::pax_record(&mut out, "path", "v".repeat(n).as_bytes());
        let s = String::from_utf8(out).unwrap();
        let (len, _) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), s.len(), "{n}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn archive() -> Vec<u8> {
        let mut sym = Entry::new("l", EntryKind::Symlink);
        sym.link = "x".repeat(150).into_bytes();
        let mut x = Entry::new("caps", EntryKind::File);
        x.xattrs = vec![("user.k".into(), b"v".to_vec())];
        x.size = 3;
        write(&[
            file("a", b"hello"),
            file(&"d/".repeat(80), b"long"),
            (sym, vec![]),
            (x, b"bin".to_vec()),
            file("big", &[9u8; 3000]),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Damaged archives (bytes changed, cut, or spliced) are read or refused, never
        /// a panic, a hang or an allocation beyond the reader's limits; what is read
        /// stays within the bytes there are.
        #[test]
        fn damaged_archives_are_read_or_refused(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
            cut in any::<prop::sample::Index>(),
            splice in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut a = archive();
            for (at, b) in &edits {
                let i = at.index(a.len());
                a[i] = *b;
            }
            let at = cut.index(a.len() + 1);
            a.truncate(at);
            a.extend_from_slice(&splice);
            if let Ok(entries) = read_all(&a) {
                let data: usize = entries.iter().map(|(_, d)| d.len()).sum();
                prop_assert!(data <= a.len());
            }
        }

        /// Arbitrary bytes, and bytes behind a valid header, likewise.
        #[test]
        fn arbitrary_bytes_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = read_all(&bytes);
            let mut a = archive()[..512].to_vec();
            a.extend_from_slice(&bytes);
            let _ = read_all(&a);
        }
    }
}
