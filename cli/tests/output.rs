//! `build --output` and `--metadata-file`, compared with docker 26's BuildKit (`docker26`,
//! started by ../shared/anchors/modern.sh through scripts/setup.sh) where it writes the
//! same thing: the filesystem as a tree or a tar, OCI and docker layouts that its engines
//! load, an image pushed to a registry.

mod common;
use common::*;
use rbuild_registry::testing::RegistryServer;
use rbuild_store::tar::{EntryKind, Reader};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// docker 26 (embedded BuildKit) from the modern anchors; contexts live under /var/tmp.
fn docker26(args: &[&str]) -> std::process::Output {
    let out = Command::new("docker26")
        .env("DOCKER_BUILDKIT", "1")
        .args(args)
        .output()
        .expect("docker26 is needed: scripts/setup.sh starts it (../shared/anchors/modern.sh start)");
    out
}

fn docker26_ok(args: &[&str]) -> String {
    let o = docker26(args);
    assert!(o.status.success(), "docker26 {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A Dockerfile whose filesystem has what a merge of layers must get right: a file
/// deleted by a later layer (whiteout), a directory emptied and refilled (opaque), hard
/// links, symlinks, a fifo, setuid, owners, an empty directory.
const TREE: &str = "FROM rbuild-anchor/busybox:1
COPY a /a
RUN rm /a/gone && rm -rf /a/dir && mkdir /a/dir && echo new > /a/dir/new \\
 && ln /a/keep /a/keep.hard && ln -s ../a/keep /a/keep.sym && mkfifo /a/fifo \\
 && mkdir -p /a/empty && chmod 4755 /a/keep && chown 1000:1001 /a/dir/new && rm /bin/ar
COPY b.txt /a/dir/b.txt
";

fn tree_context(dir: &Path) {
    context(
        dir,
        &[("Dockerfile", TREE), ("a/keep", "keep\n"), ("a/gone", "gone\n"), ("a/dir/old", "old\n"), ("b.txt", "bee\n")],
    );
}

/// The entries of a tar: path → (kind, mode, uid, gid, size, link, sha256 of data), in
/// archive order. /dev, /proc and /sys are BuildKit's mount points (runc makes them in
/// the step's root; docker's legacy builder and rbuild do not keep them).
fn tar_entries(r: impl Read) -> Vec<(String, String)> {
    let mut t = Reader::new(r);
    let mut out = Vec::new();
    while let Some(e) = t.next_entry().unwrap() {
        let path = String::from_utf8_lossy(&e.path).trim_end_matches('/').to_string();
        let mut data = Vec::new();
        t.data().read_to_end(&mut data).unwrap();
        if ["dev", "proc", "sys"].iter().any(|m| path == *m || path.starts_with(&format!("{m}/"))) {
            continue;
        }
        let hash = if e.kind == EntryKind::File { hex::encode(&Sha256::digest(&data)[..6]) } else { String::new() };
        let desc = format!(
            "{:?} {:o} {}:{} {} {} {}",
            e.kind,
            e.mode,
            e.uid,
            e.gid,
            e.size,
            String::from_utf8_lossy(&e.link),
            hash
        );
        out.push((path, desc));
    }
    out
}

#[test]
fn tar_output_is_buildkits_filesystem() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    tree_context(&ctx);
    let ours = env.path("ours.tar");
    let theirs = env.path("theirs.tar");
    env.ok(&["build", "-q", "-o", &format!("type=tar,dest={}", ours.display()), ctx.to_str().unwrap()]);
    docker26_ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-o",
        &format!("type=tar,dest={}", theirs.display()),
        ctx.to_str().unwrap(),
    ]);
    let a = tar_entries(std::fs::File::open(&theirs).unwrap());
    let b = tar_entries(std::fs::File::open(&ours).unwrap());
    // Same entries, same order (sorted per directory, depth first), same metadata.
    let show = |v: &[(String, String)]| v.iter().map(|(p, d)| format!("{p} {d}\n")).collect::<String>();
    assert_eq!(show(&b), show(&a), "rbuild's tar (left) differs from BuildKit's (right)");
    let paths: BTreeMap<_, _> = b.iter().cloned().collect();
    assert!(paths["a/keep.hard"].starts_with("Hardlink"), "{}", paths["a/keep.hard"]);
    assert!(!paths.contains_key("a/gone") && !paths.contains_key("a/dir/old") && !paths.contains_key("bin/ar"));

    // `-o -` is the same tar on stdout.
    let out = env.run(&["build", "-q", "-o", "-", ctx.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(show(&tar_entries(&out.stdout[..])), show(&b));
}

/// A tree as tar-like lines: path → kind, mode, owner, size, link target, content.
fn walk(root: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let kind = if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                hex::encode(&Sha256::digest(std::fs::read(&p).unwrap())[..6])
            } else {
                "other".to_string()
            };
            let mode = m.permissions().mode() & 0o7777;
            out.insert(rel, format!("{kind} {mode:o} {}:{} nlink={}", m.uid(), m.gid(), m.nlink().min(2)));
        }
    }
    out.retain(|p, _| !["dev", "proc", "sys"].iter().any(|m| p == m || p.starts_with(&format!("{m}/"))));
    out
}

#[test]
fn local_output_is_buildkits_tree_and_keeps_what_was_there() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    tree_context(&ctx);
    let ours = env.path("ours");
    let theirs = env.path("theirs");
    env.ok(&["build", "-q", "-o", ours.to_str().unwrap(), ctx.to_str().unwrap()]);
    docker26_ok(&["build", "-q", "--network", "none", "-o", theirs.to_str().unwrap(), ctx.to_str().unwrap()]);
    assert_eq!(walk(&ours), walk(&theirs));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&ours), mode(&theirs), "the destination BuildKit makes is 0700");

    // Into a directory that holds files already: they stay unless the image has the
    // path (a symlink where the image has a directory is replaced, never followed).
    for dest in [&ours, &theirs] {
        std::fs::remove_dir_all(dest).unwrap();
        std::fs::create_dir_all(dest.join("a")).unwrap();
        std::fs::write(dest.join("extra"), "mine").unwrap();
        std::fs::write(dest.join("a/gone"), "mine too").unwrap();
        std::os::unix::fs::symlink("/", dest.join("a/dir")).unwrap();
    }
    env.ok(&["build", "-q", "-o", &format!("type=local,dest={}", ours.display()), ctx.to_str().unwrap()]);
    docker26_ok(&["build", "-q", "--network", "none", "-o", theirs.to_str().unwrap(), ctx.to_str().unwrap()]);
    assert_eq!(walk(&ours), walk(&theirs));
    assert_eq!(std::fs::read_to_string(ours.join("a/gone")).unwrap(), "mine too");
    assert!(ours.join("a/dir").is_dir() && !ours.join("a/dir").is_symlink());
}

/// The keys of a metadata file, `buildx.build.ref` (which names a builder) left out.
fn meta_keys(p: &Path) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v.as_object().unwrap().keys().filter(|k| *k != "buildx.build.ref").cloned().collect()
}

fn meta(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn oci_and_docker_outputs_load_in_docker_and_skopeo() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    tree_context(&ctx);
    let name = unique("rbuild-out");
    let tag = format!("{name}:1");
    let _clean = DockerImages(vec![tag.clone()]);
    let (dtar, otar, mfile) = (env.path("d.tar"), env.path("o.tar"), env.path("meta.json"));
    env.ok(&[
        "build",
        "-q",
        "-t",
        &tag,
        "-o",
        &format!("type=docker,dest={}", dtar.display()),
        "--metadata-file",
        mfile.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    // As docker's: an image that goes to a file is not also named in the store.
    assert!(env.ok(&["images", "-q", &tag]).trim().is_empty());
    let id = meta(&mfile)["containerimage.config.digest"].as_str().unwrap().to_string();
    sh_ok(&format!("docker load -i {}", dtar.display()));
    let run = sh_ok(&format!("docker run --rm --network none {tag} cat /a/dir/new /a/dir/b.txt"));
    assert_eq!(run, "new\nbee\n");
    let docker_id = sh_ok(&format!("docker image inspect --format '{{{{.Id}}}}' {tag}"));
    assert_eq!(docker_id.trim(), id, "the config travels byte for byte");
    let loaded = docker26_ok(&["load", "-i", dtar.to_str().unwrap()]);
    assert!(loaded.contains(&tag), "{loaded}");
    let _ = docker26(&["rmi", &tag]);

    // OCI: skopeo reads it; the metadata names the manifest that is in the layout.
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=oci,dest={},name={tag}", otar.display()),
        "--metadata-file",
        mfile.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let m = meta(&mfile);
    let v: serde_json::Value =
        serde_json::from_str(&sh_ok(&format!("skopeo inspect oci-archive:{}", otar.display()))).unwrap();
    assert_eq!(v["Digest"], m["containerimage.digest"]);
    assert_eq!(m["containerimage.descriptor"]["digest"], m["containerimage.digest"]);
    assert_eq!(m["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["image.name"], format!("docker.io/library/{tag}"));
    let raw: serde_json::Value =
        serde_json::from_str(&sh_ok(&format!("skopeo inspect --raw oci-archive:{}", otar.display()))).unwrap();
    assert!(raw["layers"].as_array().unwrap().iter().all(|l| l["mediaType"].as_str().unwrap().ends_with("+gzip")));

    // docker 26 (containerd image store: the engine that has these exporters) writes the
    // same metadata keys for the same outputs.
    let theirs = env.path("theirs.json");
    let t_oci = env.path("t.tar");
    let o = Command::new("docker26c")
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-q", "--network", "none", "-o"])
        .arg(format!("type=oci,dest={},name={tag}", t_oci.display()))
        .arg("--metadata-file")
        .arg(&theirs)
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(meta_keys(&mfile), meta_keys(&theirs));
    let desc_keys = |v: &serde_json::Value| -> Vec<String> {
        v["containerimage.descriptor"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(desc_keys(&m), desc_keys(&meta(&theirs)));
}

#[test]
fn image_output_pushes_and_metadata_names_it() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY f /f\n"), ("f", "pushed\n")]);
    let name = format!("{}/out/app:1", reg.host());
    let mfile = env.path("meta.json");
    env.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=image,name={name},push=true"),
        "--metadata-file",
        mfile.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let m = meta(&mfile);
    let v: serde_json::Value =
        serde_json::from_str(&sh_ok(&format!("skopeo inspect --tls-verify=false docker://{name}"))).unwrap();
    assert_eq!(v["Digest"], m["containerimage.digest"]);
    assert_eq!(m["image.name"], name);
    // docker 26's image exporter writes these keys for a push (no descriptor).
    assert_eq!(meta_keys(&mfile), ["containerimage.config.digest", "containerimage.digest", "image.name"]);
    // The image is in the store under its name too.
    let id = env.ok(&["images", "-q", "--no-trunc", &name]);
    assert_eq!(id.trim(), m["containerimage.config.digest"].as_str().unwrap());

    // A plain build: the store's manifest.
    env.ok(&["build", "-q", "-t", "out/plain:1", "--metadata-file", mfile.to_str().unwrap(), ctx.to_str().unwrap()]);
    let m = meta(&mfile);
    assert_eq!(m["image.name"], "docker.io/out/plain:1");
    let manifest = env.ok(&["inspect", "--format", "{{.Id}}", "out/plain:1"]);
    assert_eq!(manifest.trim(), m["containerimage.config.digest"].as_str().unwrap());
}

#[test]
fn bad_outputs_fail_before_building() {
    let env = Env::new();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\n")]);
    let iid = env.path("iid");
    for (args, msg) in [
        (vec!["-o", "type=local"], "dest is required for local exporter"),
        (vec!["-o", "type=nope,dest=x"], "exporter \"nope\" could not be found"),
        (vec!["-o", "dest=x,name=y"], "type is required"),
        (vec!["-o", "/x", "--iidfile", iid.to_str().unwrap()], "incompatible with image ID file"),
        (vec!["-o", "-", "-o", "type=oci,dest=-"], "only one output can write to standard output"),
        (vec!["-o", "type=registry"], "push needs an image name"),
    ] {
        let mut a = vec!["build"];
        a.extend(args.iter().copied());
        a.push(ctx.to_str().unwrap());
        let out = env.run(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{a:?} succeeded");
        assert!(err.contains(msg) && err.trim().lines().count() == 1, "{a:?}: {err}");
    }
    assert!(!iid.exists());
}
