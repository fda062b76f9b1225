//! Images as docker's legacy builder makes them, where real Dockerfiles notice: empty
//! layers, names that are not UTF-8, setuid bits, capabilities, defaults docker keeps.
//!
//! `RBUILD_TEST_BIN` runs these against another rbuild binary (to see a test fail on a
//! build from before its fix).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Builds `ctx` quietly; returns the image id.
fn build_q(env: &Env, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "-q"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    env.ok(&args).trim().to_string()
}

/// The image's config blob as JSON.
fn config_of(env: &Env, id: &str) -> serde_json::Value {
    let hex = id.trim().trim_start_matches("sha256:");
    let data = std::fs::read(env.root().join("blobs/sha256").join(hex)).unwrap();
    serde_json::from_slice(&data).unwrap()
}

/// The history's pattern of empty layers, and the number of layers.
fn layer_pattern(env: &Env, id: &str) -> (Vec<bool>, usize) {
    let c = config_of(env, id);
    let empty = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.get("empty_layer").and_then(|v| v.as_bool()).unwrap_or(false))
        .collect();
    (empty, c["rootfs"]["diff_ids"].as_array().unwrap().len())
}

#[test]
fn steps_that_change_nothing_add_no_layer_also_when_cached() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            "FROM rbuild-anchor/busybox:1
RUN true
RUN test -f /etc/passwd && ls / >/dev/null
COPY empty/ /
WORKDIR /tmp
COPY empty/ /tmp/
RUN echo made > /made
VOLUME /data /tmp
RUN touch /tmp/in-volume
RUN touch /data/in-volume
",
        )],
    );
    std::fs::create_dir_all(ctx.join("empty")).unwrap();
    let id = build_q(&env, &ctx, &[]);
    // docker 20.10: the base's layer; `COPY empty/ /tmp/` (its destination is copied up);
    // `/made`; the first RUN after VOLUME, for the mountpoint runc makes for /data.
    let want = vec![false, true, true, true, true, false, false, true, false, true];
    assert_eq!(layer_pattern(&env, &id), (want.clone(), 4));
    // A cached rebuild gives the same image.
    assert_eq!(build_q(&env, &ctx, &[]), id);
    assert_eq!(layer_pattern(&env, &id), (want, 4));
    // What the RUNs wrote into the volumes is not in the image.
    let out = env.sh_in(&id, "ls -A /tmp /data; cat /made");
    assert_eq!(out, "/data:\n\n/tmp:\nmade\n");
}

#[test]
fn copy_and_add_drop_setuid_and_setgid_of_context_files_and_keep_the_sticky_bit() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY bits/ /c/\nADD bits/ /a/\n")]);
    for (name, mode) in [("suid", 0o4755), ("sgid", 0o2755), ("sgid-noexec", 0o2745), ("sticky", 0o1755)] {
        let p = ctx.join("bits").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::create_dir(ctx.join("bits/sgid-dir")).unwrap();
    std::fs::set_permissions(ctx.join("bits/sgid-dir"), std::fs::Permissions::from_mode(0o2775)).unwrap();
    let id = build_q(&env, &ctx, &[]);
    let out = env.sh_in(&id, "cd /c && stat -c '%n %a' * && cd /a && stat -c '%n %a' *");
    let want = "sgid 755\nsgid-dir 2775\nsgid-noexec 2745\nsticky 1755\nsuid 755\n";
    assert_eq!(out, format!("{want}{want}"));
}

/// The directories COPY makes for a `--chown` destination are the owner's, as BuildKit
/// (docker 23+'s default builder) makes them (docker 20.10's legacy builder made those of
/// a directory copy as root); an ADDed archive's new destination is root's, as the legacy
/// builder's UntarPath makes it (BuildKit makes it the owner's; the legacy oracle's Debian
/// and moby cases users-groups-chown and add-tar-chown hold it), and its content keeps
/// its owners.
#[test]
fn add_and_copy_chown_give_made_parents_to_the_owner() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM rbuild-anchor/busybox:1
ADD --chown=1000:1000 a.tar /added/sub/
COPY --chown=1000:1000 dir /copied/sub/
COPY --chown=1000:1000 f /file/sub/
",
            ),
            ("dir/x/y", "y"),
            ("f", "f"),
        ],
    );
    sh_ok(&format!("tar -C {0}/dir --owner=7 --group=8 -cf {0}/a.tar x", ctx.display()));
    let id = build_q(&env, &ctx, &[]);
    let out = env.sh_in(
        &id,
        "stat -c '%n %u:%g' /added /added/sub /added/sub/x/y /copied /copied/sub /copied/sub/x /file /file/sub/f",
    );
    assert_eq!(
        out,
        "/added 0:0\n/added/sub 0:0\n/added/sub/x/y 7:8\n/copied 1000:1000\n/copied/sub 1000:1000\n\
         /copied/sub/x 1000:1000\n/file 1000:1000\n/file/sub/f 1000:1000\n"
    );
}

type Xattrs = Vec<(String, Vec<u8>)>;

/// The entries of the image's layer `n` (0 = the base's): path and xattrs.
fn layer_entries(env: &Env, id: &str, n: usize) -> Vec<(String, Xattrs)> {
    let c = config_of(env, id);
    let diff_id = c["rootfs"]["diff_ids"][n].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let f = std::fs::File::open(env.root().join("blobs/sha256").join(diff_id)).unwrap();
    let mut r = rbuild_store::tar::Reader::new(std::io::BufReader::new(f));
    let mut out = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        std::io::copy(&mut r.data(), &mut std::io::sink()).unwrap();
        out.push((e.path_lossy(), e.xattrs));
    }
    out
}

/// docker 20.10: a directory copied from a stage keeps its files' capabilities; chowned,
/// or a file copied alone (CopyFileWithTar writes no xattrs), it has none.
#[test]
fn copy_from_a_stage_keeps_file_capabilities_of_a_directory_it_does_not_chown() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            "FROM rbuild-anchor/busybox:1 AS caps
ADD ping.tar /opt/
FROM rbuild-anchor/busybox:1
COPY --from=caps /opt/ /copied/
COPY --from=caps --chown=1:1 /opt/ /chowned/
COPY --from=caps /opt/ping /bin/ping-alone
",
        )],
    );
    // cap_net_raw, permitted and effective (struct vfs_cap_data, revision 2).
    let cap = vec![1u8, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut w = rbuild_store::tar::Writer::new(std::fs::File::create(ctx.join("ping.tar")).unwrap());
    let mut e = rbuild_store::tar::Entry::new("ping", rbuild_store::tar::EntryKind::File);
    e.mode = 0o755;
    e.size = 3;
    e.xattrs = vec![("security.capability".into(), cap.clone())];
    w.append(&e, &mut &b"elf"[..]).unwrap();
    w.finish().unwrap();
    let id = build_q(&env, &ctx, &[]);
    let with_cap = vec![("security.capability".to_string(), cap)];
    assert_eq!(layer_entries(&env, &id, 1), [("copied/".into(), vec![]), ("copied/ping".into(), with_cap)]);
    assert_eq!(layer_entries(&env, &id, 2), [("chowned/".into(), vec![]), ("chowned/ping".into(), vec![])]);
    assert_eq!(layer_entries(&env, &id, 3), [("bin/".into(), vec![]), ("bin/ping-alone".into(), vec![])]);
}

#[test]
fn names_that_are_not_utf8_reach_the_image_as_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY names/ /ctx/\n")]);
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::create_dir_all(ctx.join("names")).unwrap();
    std::fs::write(ctx.join("names").join(odd), "latin1").unwrap();
    std::os::unix::fs::symlink(odd, ctx.join("names/link")).unwrap();
    let id = build_q(&env, &ctx, &[]);
    let c = config_of(&env, &id);
    let diff_id = c["rootfs"]["diff_ids"][1].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let f = std::fs::File::open(env.root().join("blobs/sha256").join(diff_id)).unwrap();
    let mut r = rbuild_store::tar::Reader::new(std::io::BufReader::new(f));
    let mut got = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        std::io::copy(&mut r.data(), &mut std::io::sink()).unwrap();
        got.push((e.path, e.link));
    }
    assert_eq!(
        got,
        [
            (b"ctx/".to_vec(), vec![]),
            (b"ctx/caf\xe9.txt".to_vec(), vec![]),
            (b"ctx/link".to_vec(), b"caf\xe9.txt".to_vec())
        ]
    );
}

#[test]
fn a_dockerfile_that_is_only_from_gives_the_base_image_itself() {
    let env = Env::with_base();
    let base = env.ok(&["inspect", BASE]);
    let base_id = serde_json::from_str::<serde_json::Value>(&base).unwrap()[0]["Id"].as_str().unwrap().to_string();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\n")]);
    assert_eq!(build_q(&env, &ctx, &[]), base_id);
    // Through a stage, too; the base's Env stays without a PATH.
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1 AS a\nFROM a\n")]);
    assert_eq!(build_q(&env, &ctx, &[]), base_id);
    assert!(config_of(&env, &base_id)["config"].get("Env").is_none_or(|e| e.is_null()));
    // One instruction commits: the default PATH appears.
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nENV A=1\n")]);
    let id = build_q(&env, &ctx, &[]);
    assert_eq!(
        config_of(&env, &id)["config"]["Env"],
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1"])
    );
}

#[test]
fn a_dockerfile_that_is_only_from_scratch_generates_no_image() {
    require_root();
    let env = Env::new();
    let ctx = env.path("ctx");
    for df in ["FROM scratch\n", "FROM scratch AS empty\nFROM empty\n"] {
        context(&ctx, &[("Dockerfile", df)]);
        let out = env.run(&["build", "-q", ctx.to_str().unwrap()]);
        assert!(!out.status.success(), "{df:?} built");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No image was generated. Is your Dockerfile empty?"), "{err}");
    }
    // One instruction is enough.
    context(&ctx, &[("Dockerfile", "FROM scratch\nENV A=1\n")]);
    build_q(&env, &ctx, &[]);
}

#[test]
fn a_volume_over_an_existing_file_is_refused() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    for (df, line) in [
        ("FROM rbuild-anchor/busybox:1\nRUN touch /foo\nVOLUME /foo\n", "3:1"),
        // Through a symlink to a file, too; a symlink to a directory is fine.
        ("FROM rbuild-anchor/busybox:1\nRUN ln -s /etc/passwd /pw\nVOLUME /data /pw\n", "3:1"),
    ] {
        context(&ctx, &[("Dockerfile", df)]);
        let out = env.run(&["build", "-q", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{df:?} built");
        assert!(err.contains("cannot mount volume over existing file"), "{err}");
        assert!(err.contains(&format!("Dockerfile:{line}")), "{err}");
    }
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nRUN ln -s /etc /cfg\nVOLUME /cfg /tmp /new\n")]);
    build_q(&env, &ctx, &[]);
}

#[test]
fn run_of_an_empty_list_runs_the_images_entrypoint_or_else_its_cmd() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            "FROM rbuild-anchor/busybox:1
CMD [\"touch\", \"/from-cmd\"]
RUN []
ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo \\\"$0 $*\\\" > /from-entrypoint\"]
CMD [\"a1\", \"a2\"]
RUN []
",
        )],
    );
    let id = build_q(&env, &ctx, &[]);
    // The Entrypoint runs alone: the Cmd is not appended.
    let out = env.sh_in(&id, "ls /from-cmd && cat /from-entrypoint");
    assert_eq!(out, "/from-cmd\n/bin/sh \n");
    let c = config_of(&env, &id);
    let created: Vec<&str> =
        c["history"].as_array().unwrap().iter().map(|h| h["created_by"].as_str().unwrap_or("")).collect();
    assert_eq!(created[2], "", "docker records RUN [] as an empty command");
    // Neither: docker's error.
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nRUN []\n")]);
    let out = env.run(&["build", "-q", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No command specified"));
}

#[test]
fn a_bare_build_arg_unset_in_the_environment_keeps_the_args_default() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            "ARG M=meta\nFROM rbuild-anchor/busybox:1\nARG V=def\nARG M\nARG S=def\nRUN echo \"$V $M $S\" > /v\n",
        )],
    );
    let out = Command::new(bin())
        .arg("--root")
        .arg(env.root())
        .args(["build", "-q", "--build-arg", "V", "--build-arg", "M", "--build-arg", "S"])
        .arg(&ctx)
        .env_remove("V")
        .env_remove("M")
        .env("S", "from-env")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(env.sh_in(&id, "cat /v"), "def meta from-env\n");
}

#[test]
fn hard_links_in_a_copied_directory_stay_links() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nCOPY d /d\nCOPY d/a c /e/\n"), ("d/a", "x")]);
    std::fs::create_dir_all(ctx.join("d/sub")).unwrap();
    std::fs::hard_link(ctx.join("d/a"), ctx.join("d/sub/b")).unwrap();
    std::fs::hard_link(ctx.join("d/a"), ctx.join("c")).unwrap();
    let id = build_q(&env, &ctx, &[]);
    // docker 20.10: one inode within the directory copy; sources copied one by one are not.
    let out = env.sh_in(&id, "stat -c '%h' /d/a /d/sub/b /e/a /e/c; [ /d/a -ef /d/sub/b ] && echo same");
    assert_eq!(out, "2\n2\n1\n1\nsame\n");
}

#[test]
fn a_metadata_step_after_the_working_directory_was_removed_makes_it_again() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nWORKDIR /w\nRUN rm -rf /w\nENV A=1\nENV B=2\n")]);
    let id = build_q(&env, &ctx, &[]);
    // docker 20.10 creates the step's container for ENV A, which makes /w again: a layer.
    let want = (vec![false, false, false, false, true], 4);
    assert_eq!(layer_pattern(&env, &id), want);
    assert_eq!(build_q(&env, &ctx, &[]), id, "a cached rebuild is the same image");
    assert_eq!(env.sh_in(&id, "stat -c '%F %a' /w"), "directory 755\n");
}

/// moby's TestBuildRm and TestBuildForceRm build with `--rm`, `--rm=false` and
/// `--force-rm`; rbuild keeps no step containers, so they change nothing, but a docker
/// command line with them must build (it stopped at "unexpected argument").
#[test]
fn build_takes_dockers_rm_and_force_rm_flags() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\nRUN echo hello > /hello\n")]);
    let plain = build_q(&env, &ctx, &[]);
    for flags in [&["--rm"][..], &["--rm=false"], &["--force-rm"], &["--rm=true", "--force-rm"]] {
        assert_eq!(build_q(&env, &ctx, flags), plain, "{flags:?}");
    }
    let out = env.run(&["build", "-q", "--rm=maybe", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
}

/// docker appends one `LABEL k=v` step per `--label`, sorted by key, to the target stage:
/// each is in the history (an empty layer), a label without `=` is empty, and `$` stays
/// as written. rbuild put the labels in the config with no history entries (moby oracle
/// label-flag-*).
#[test]
fn each_label_flag_is_a_label_step_of_the_target_stage() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[(
            "Dockerfile",
            "FROM rbuild-anchor/busybox:1 AS a\nLABEL in=a\nFROM rbuild-anchor/busybox:1\nLABEL default=foo\n",
        )],
    );
    let id = build_q(&env, &ctx, &["--label", "zz=1", "--label", "aa", "--label", "mm=$PATH", "--target", "a"]);
    let c = config_of(&env, &id);
    let history: Vec<&str> =
        c["history"].as_array().unwrap().iter().map(|h| h["created_by"].as_str().unwrap_or("")).collect();
    assert_eq!(
        history[history.len() - 4..],
        [
            "/bin/sh -c #(nop)  LABEL in=a",
            "/bin/sh -c #(nop)  LABEL aa=",
            "/bin/sh -c #(nop)  LABEL mm=$PATH",
            "/bin/sh -c #(nop)  LABEL zz=1"
        ]
    );
    assert_eq!(c["config"]["Labels"], serde_json::json!({"aa": "", "in": "a", "mm": "$PATH", "zz": "1"}));
    let (empty, _) = layer_pattern(&env, &id);
    assert!(empty[empty.len() - 4..].iter().all(|e| *e));
    // FROM alone with a label: a new image, one history entry more than the base.
    context(&ctx, &[("Dockerfile", "FROM rbuild-anchor/busybox:1\n")]);
    let (mut pattern, layers) = layer_pattern(&env, &build_q(&env, &ctx, &[]));
    pattern.push(true);
    assert_eq!(layer_pattern(&env, &build_q(&env, &ctx, &["--label", "foo=bar"])), (pattern, layers));
}

/// A proxy given with --build-arg reaches RUN without an ARG (unless the Env sets it), and
/// changing it does not rebuild the step; declared, it is an ordinary build arg. rbuild
/// passed only declared args (moby oracle arg-predefined-proxy, arg-proxy-exclusions).
#[test]
fn proxy_build_args_reach_run_without_an_arg_and_stay_out_of_the_cache_key() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let df = "FROM rbuild-anchor/busybox:1\nENV NO_PROXY=from-env\nRUN echo \"[$HTTP_PROXY][$no_proxy][$NO_PROXY][$other]\" > /seen\n";
    context(&ctx, &[("Dockerfile", df)]);
    let args = |p: &str| {
        ["--build-arg", &format!("HTTP_PROXY={p}"), "--build-arg", "no_proxy=.in", "--build-arg", "NO_PROXY=x"]
            .map(String::from)
    };
    let a = args("http://p1:3128");
    let id = build_q(&env, &ctx, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(env.sh_in(&id, "cat /seen").trim(), "[http://p1:3128][.in][from-env][]");
    let b = args("http://p2:3128");
    let id2 = build_q(&env, &ctx, &b.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(id2, id, "a new proxy value rebuilt the RUN");
    context(&ctx, &[("Dockerfile", &df.replacen("busybox:1\n", "busybox:1\nARG HTTP_PROXY\n", 1))]);
    let id3 = build_q(&env, &ctx, &b.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(env.sh_in(&id3, "cat /seen").trim(), "[http://p2:3128][.in][from-env][]");
}

/// `build --add-host NAME:IP` puts the names in every RUN's /etc/hosts (moby's
/// TestBuildWithExtraHost); a malformed value is refused before anything runs.
#[test]
fn build_add_host_reaches_every_run() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let df = "FROM rbuild-anchor/busybox:1\nRUN ping -c 1 -W 2 foo > /dev/null && grep -E 'foo|bar' /etc/hosts > /h\n";
    context(&ctx, &[("Dockerfile", df)]);
    let id = build_q(&env, &ctx, &["--network", "none", "--add-host", "foo:127.0.0.1", "--add-host", "bar:::1"]);
    let hosts: Vec<String> = env.sh_in(&id, "cat /h").split_whitespace().map(String::from).collect();
    assert_eq!(hosts, ["127.0.0.1", "foo", "::1", "bar"]);
    for bad in ["foo", "foo:", ":127.0.0.1", "foo:101.10.2", "foo:2001::1::3F"] {
        let out = env.run(&["build", "-q", &format!("--add-host={bad}"), ctx.to_str().unwrap()]);
        assert!(!out.status.success(), "{bad} was taken");
    }
}
