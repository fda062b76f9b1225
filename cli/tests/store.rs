//! The store with real clients: docker, skopeo, umoci. Needs ../shared/anchors/setup.sh.

mod common;

use common::*;
use std::process::Command;

#[test]
fn docker_save_load_roundtrip_runs_in_docker() {
    let env = Env::with_base();
    let name = unique("rbuild-rt");
    let _cleanup = DockerImages(vec![format!("{name}:1")]);
    env.ok(&["tag", BASE, &format!("{name}:1")]);
    let out = env.path("out.tar");
    env.ok(&["save", "-o", out.to_str().unwrap(), &format!("{name}:1")]);
    sh_ok(&format!("docker load -i {}", out.display()));
    let run = sh_ok(&format!("docker run --rm --network none {name}:1 sh -c 'echo ok-$((6*7))'"));
    assert_eq!(run.trim(), "ok-42");
    // The image ID survives the trip: the config is kept byte for byte.
    let ours = env.ok(&["images", "-q", "--no-trunc", &format!("{name}:1")]);
    let theirs = sh_ok(&format!("docker image inspect --format '{{{{.Id}}}}' {name}:1"));
    assert_eq!(ours.trim(), theirs.trim());
}

#[test]
fn load_from_stdin_gzip() {
    let env = Env::new();
    let base = base_archive();
    let out = sh_ok(&format!(
        "gzip -c {} | {} --root {} load",
        base.display(),
        env!("CARGO_BIN_EXE_rbuild"),
        env.root().display()
    ));
    assert_eq!(out.trim(), format!("Loaded image: {BASE}"));
    env.ok(&["fsck"]);
}

#[test]
fn oci_archive_is_read_by_skopeo_and_umoci() {
    let env = Env::with_base();
    for (fmt, comp) in [("oci-archive", "gzip"), ("oci-archive", "zstd"), ("oci-archive", "none")] {
        let out = env.path(&format!("img-{comp}.tar"));
        env.ok(&["save", "--format", fmt, "--compression", comp, "-o", out.to_str().unwrap(), BASE]);
        let inspect = sh_ok(&format!("skopeo inspect oci-archive:{}", out.display()));
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
        if comp != "zstd" {
            let layout = env.path(&format!("layout-{comp}"));
            std::fs::create_dir_all(&layout).unwrap();
            sh_ok(&format!("tar -C {} -xf {}", layout.display(), out.display()));
            let bundle = env.path(&format!("bundle-{comp}"));
            sh_ok(&format!("umoci unpack --image {}:{BASE} {}", layout.display(), bundle.display()));
            assert!(bundle.join("rootfs/bin/busybox").exists());
        }
    }
}

#[test]
fn store_root_is_an_oci_layout_for_skopeo_and_umoci() {
    let env = Env::with_base();
    let v: serde_json::Value =
        serde_json::from_str(&sh_ok(&format!("skopeo inspect oci:{}:{BASE}", env.root().display()))).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    let bundle = env.path("bundle");
    sh_ok(&format!("umoci unpack --image {}:{BASE} {}", env.root().display(), bundle.display()));
    assert!(bundle.join("rootfs/bin/sh").exists());
    env.ok(&["fsck"]);
}

#[test]
fn skopeo_copy_to_oci_archive_then_load() {
    let env = Env::new();
    let arch = env.path("sk.tar");
    sh_ok(&format!("skopeo copy -q docker-daemon:{BASE} oci-archive:{}:skopeo/copied:2", arch.display()));
    let out = env.ok(&["load", "-i", arch.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: skopeo/copied:2");
    let inspect = env.ok(&["inspect", "skopeo/copied:2"]);
    assert!(inspect.contains("\"Os\": \"linux\""));
    env.ok(&["fsck"]);
}

#[test]
fn import_rootfs_tarball_with_changes() {
    let env = Env::new();
    let rootfs = shared_busybox_rootfs();
    let gz = env.path("rootfs.tar.gz");
    sh_ok(&format!("gzip -c {} > {}", rootfs.display(), gz.display()));
    let id = env.ok(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\", \"-c\", \"echo imported\"]",
        "--change",
        "ENV A=b",
        gz.to_str().unwrap(),
        "my/imported:1",
    ]);
    assert!(id.trim().starts_with("sha256:"));
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "my/imported:1"])).unwrap();
    assert_eq!(v[0]["Config"]["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo imported"]));
    assert_eq!(v[0]["Config"]["Env"], serde_json::json!(["A=b"]));
    assert_eq!(v[0]["Comment"], format!("Imported from {}", gz.display()));
    // Same layer as docker import of the same tar.
    let ours = &v[0]["RootFS"]["Layers"][0];
    let theirs = sh_ok(&format!("docker image inspect --format '{{{{index .RootFS.Layers 0}}}}' {BASE}"));
    assert_eq!(ours.as_str().unwrap(), theirs.trim());
    // Bad changes and bad archives are refused with one line and nothing stored.
    let bad = env.run(&["import", "--change", "RUN true", gz.to_str().unwrap(), "x:1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid change command"));
    let junk = env.path("junk");
    std::fs::write(&junk, vec![7u8; 3000]).unwrap();
    let bad = env.run(&["import", junk.to_str().unwrap(), "junk:1"]);
    assert!(!bad.status.success());
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1, "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(!env.ok(&["images"]).contains("junk"));
    env.ok(&["fsck"]);
}

pub fn shared_busybox_rootfs() -> std::path::PathBuf {
    let p = std::path::PathBuf::from("/var/tmp/rbuild-anchors/busybox-rootfs.tar");
    assert!(p.exists(), "run ../shared/anchors/setup.sh first");
    p
}

/// A docker-archive whose layer tries to write outside the root: refused, nothing named.
#[test]
fn hostile_archive_is_refused() {
    let env = Env::new();
    let work = env.path("evil");
    std::fs::create_dir_all(&work).unwrap();
    let layer = work.join("layer.tar");
    // A layer with a ../ entry, built with python's tarfile.
    sh_ok(&format!(
        "python3 -c \"import tarfile,io; t=tarfile.open('{}','w'); i=tarfile.TarInfo('../../escape'); d=b'x'; i.size=1; t.addfile(i, io.BytesIO(d)); t.close()\"",
        layer.display()
    ));
    let diff = sh_ok(&format!("sha256sum {} | cut -d' ' -f1", layer.display())).trim().to_string();
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["sha256:{diff}"]}}}}"#
    );
    std::fs::write(work.join("c.json"), &cfg).unwrap();
    std::fs::write(work.join("manifest.json"), r#"[{"Config":"c.json","RepoTags":["evil:1"],"Layers":["layer.tar"]}]"#)
        .unwrap();
    let arch = env.path("evil.tar");
    sh_ok(&format!("tar -C {} -cf {} c.json layer.tar manifest.json", work.display(), arch.display()));
    let out = env.run(&["load", "-i", arch.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("..") || err.contains("leaves the root"), "{err}");
    assert!(!env.ok(&["images"]).contains("evil"));
    assert!(!std::path::Path::new("/var/tmp/escape").exists());
    env.ok(&["fsck"]);
}

#[test]
fn concurrent_tags_are_not_lost() {
    let env = Env::with_base();
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut c = env.cmd();
            c.args(["tag", BASE, &format!("many/t{i}:1")]);
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let images = env.ok(&["images"]);
    for i in 0..16 {
        assert!(images.contains(&format!("many/t{i}")), "tag {i} lost:\n{images}");
    }
}

#[test]
fn rmi_and_prune_free_space() {
    let env = Env::with_base();
    env.ok(&["tag", BASE, "other:1"]);
    // An image with two names is not deleted by ID without -f.
    let id = env.ok(&["images", "-q"]).trim().to_string();
    assert!(!env.run(&["rmi", &id]).status.success());
    let out = env.ok(&["rmi", "other:1"]);
    assert_eq!(out.trim(), "Untagged: other:1");
    let out = env.ok(&["rmi", BASE]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    let missing = env.run(&["rmi", "nope:1"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such image"));
    let pruned = env.ok(&["prune", "-f"]);
    assert!(pruned.contains("Deleted blobs: 5, snapshots: 1") && pruned.contains("MB"), "{pruned}");
    assert_eq!(std::fs::read_dir(env.root().join("blobs/sha256")).unwrap().count(), 0);
    env.ok(&["fsck"]);
}

#[test]
fn corrupt_blob_is_found_by_fsck() {
    let env = Env::with_base();
    let blobs = env.root().join("blobs/sha256");
    let big = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut data = std::fs::read(&big).unwrap();
    data[1000] ^= 1;
    std::fs::write(&big, data).unwrap();
    let out = env.run(&["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is corrupt"));
}

#[test]
fn save_refuses_a_terminal_and_unknown_images() {
    let env = Env::new();
    let out = env.run(&["save", "nope:1", "-o", "/dev/null"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image: nope:1"));
    let _ = Command::new("true").status();
}

/// Regression (issue 12, 5; the CVE-2021-41091 class): store directories were 0755, so
/// any local user could run a setuid binary or open a device that lives in a snapshot or
/// a container's upper dir — a setuid-root copy run as `nobody` gave euid 0. The store
/// root is 0700: nobody else gets past it.
#[test]
fn other_users_cannot_reach_into_the_store() {
    require_root();
    let env = Env::new();
    // The store's parent is open to everyone, as /var/lib is.
    sh_ok(&format!("chmod 755 {}", env.dir.path().display()));
    let rootfs = env.path("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    sh_ok(&format!("cp /usr/bin/id {0}/bin/id && chmod 4755 {0}/bin/id", rootfs.display()));
    let tar = env.path("rootfs.tar");
    sh_ok(&format!("tar -C {} -cf {} .", rootfs.display(), tar.display()));
    env.ok(&["import", tar.to_str().unwrap(), "suid:1"]);
    let snaps = env.root().join("rbuild/snapshots");
    let snap = std::fs::read_dir(&snaps).unwrap().flatten().find(|e| e.path().join("bin/id").exists()).unwrap();
    let suid = snap.path().join("bin/id");
    let o = sh(&format!("setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/env {} -u", suid.display()));
    assert!(!o.status.success(), "nobody ran {}: {}", suid.display(), String::from_utf8_lossy(&o.stdout));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(env.root()).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
}

/// Unmounts (lazily) when dropped.
struct Mounted(std::path::PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Regression (issue 12): `import` (or a RUN step's commit) on a full disk said only
/// "the blob writer stopped". It says "No space left on device" with the path, fails, and
/// leaves nothing stored or half-written.
#[test]
fn import_on_a_full_disk_says_so() {
    require_root();
    let env = Env::new();
    let small = env.path("small");
    std::fs::create_dir_all(&small).unwrap();
    sh_ok(&format!("mount -t tmpfs -o size=4m tmpfs {}", small.display()));
    let _m = Mounted(small.clone());
    let rootfs = env.path("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    sh_ok(&format!("head -c 8000000 /dev/urandom > {}/big", rootfs.display()));
    let tar = env.path("rootfs.tar");
    sh_ok(&format!("tar -C {} -cf {} .", rootfs.display(), tar.display()));
    let root = small.join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(&root)
        .args(["import", tar.to_str().unwrap(), "full:1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.to_lowercase().contains("no space left on device"), "{err}");
    assert!(err.contains(&root.join("rbuild/tmp").display().to_string()), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(std::fs::read_dir(root.join("rbuild/tmp")).unwrap().count(), 0);
    let images = Command::new(env!("CARGO_BIN_EXE_rbuild")).arg("--root").arg(&root).arg("images").output().unwrap();
    assert!(!String::from_utf8_lossy(&images.stdout).contains("full"));
}

/// An image `FROM` the base whose top layer holds a 3 MB file; returns its name and the
/// blob of that layer with one byte flipped in the middle of the file's data.
fn image_with_a_flipped_byte(env: &Env) -> (String, String) {
    env.load_base();
    let ctx = env.path("corrupt");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("big"), vec![b'x'; 3 << 20]).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {BASE}\nCOPY big /big\n")).unwrap();
    env.ok(&["build", "-q", "-t", "corrupt:1", ctx.to_str().unwrap()]);
    let layer = env.flip_a_bit_of_the_last_layer("corrupt:1");
    ("corrupt:1".into(), layer)
}

/// Regression (issue 12, 7): after one flipped byte in a layer blob, `save` wrote the
/// corrupt layer and exited 0, and `run` after the snapshot was gone unpacked it. Every
/// read that leaves the store or makes a snapshot checks the digest as it streams: the
/// command fails naming the blob and the image, and `fsck` says how to repair.
#[test]
fn a_corrupt_layer_never_leaves_the_store() {
    require_root();
    let env = Env::new();
    let (image, layer) = image_with_a_flipped_byte(&env);
    let named = |err: &str| err.contains(&layer) && err.contains(&image) && err.contains("corrupt");
    let out_tar = env.path("out.tar");
    for args in [
        vec!["save", "-o", out_tar.to_str().unwrap(), image.as_str()],
        vec!["save", "--format", "oci-archive", "-o", out_tar.to_str().unwrap(), image.as_str()],
        vec!["save", "--format", "oci-archive", "--compression", "gzip", "-o", out_tar.to_str().unwrap(), &image],
    ] {
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && named(&err), "{args:?}: {err}");
        assert!(!out_tar.exists(), "{args:?} left a partial archive");
    }
    let o = sh(&format!(
        "{} --root {} save {image} > {}",
        env!("CARGO_BIN_EXE_rbuild"),
        env.root().display(),
        out_tar.display()
    ));
    assert!(!o.status.success(), "save to stdout exited 0");
    // A run that has to unpack the layer again.
    let snap = env.root().join("rbuild/snapshots").join(layer.trim_start_matches("sha256:"));
    std::fs::remove_dir_all(&snap).unwrap();
    let out = env.run(&["run", "--rm", &image, "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && named(&err), "{err}");
    assert!(!snap.exists(), "a snapshot was made from the corrupt blob");
    // fsck finds it, names the image and says how to repair; --repair removes the blob,
    // and building again brings the layer back.
    let out = env.run(&["fsck"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(named(&text) && text.contains("fsck --repair"), "{text}");
    let out = env.run(&["fsck", "--repair"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("removed corrupt blob {layer}")) && text.contains("is missing"), "{text}");
    env.ok(&["build", "-q", "-t", "corrupt:1", env.path("corrupt").to_str().unwrap()]);
    env.ok(&["fsck"]);
    env.ok(&["save", "-o", out_tar.to_str().unwrap(), &image]);
    assert_eq!(env.ok(&["run", "--rm", &image, "sh", "-c", "wc -c < /big"]).trim(), (3 << 20).to_string());
}

/// Regression (issue 12): `prune | head -1`, `parse F | head -c1` and `inspect X |
/// head -1` panicked on the closed pipe (exit 101). A closed stdout is success, for every
/// command — here with the reading end closed before rbuild writes a byte.
#[test]
fn a_closed_stdout_is_success_for_every_command() {
    let env = Env::with_base();
    let df = env.path("Dockerfile");
    std::fs::write(&df, "FROM scratch\nENV A=1\nCOPY . /\n").unwrap();
    let commands: Vec<Vec<String>> = [
        vec!["prune"],
        vec!["parse", df.to_str().unwrap()],
        vec!["parse", "--format", "json", df.to_str().unwrap()],
        vec!["inspect", BASE],
        vec!["images"],
        vec!["history", BASE],
        vec!["images", "-q"],
        vec!["fsck"],
        vec!["save", BASE],
        vec!["tag", BASE, "other:1"],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect();
    for args in commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = env.cmd().args(&args).stdout(writer).stderr(std::process::Stdio::piped()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
