//! `rbuild pull`, `push`, `login`, `logout`, FROM and `run` of images the store lacks, and
//! `--cache-to` / `--cache-from`, against a real docker-registry on loopback.

mod common;
use common::*;
use rbuild_registry::testing::RegistryServer;
use std::io::Write;
use std::process::Stdio;

#[test]
fn push_to_skopeo_and_from_skopeo_to_run() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    let name = format!("{}/rbuild/base:1", reg.host());
    env.ok(&["tag", BASE, &name]);
    env.ok(&["push", &name]);
    // Layers leave gzipped (docker's default); their content is the image's.
    let m: serde_json::Value =
        serde_json::from_str(&sh_ok(&format!("skopeo inspect --raw --tls-verify=false docker://{name}"))).unwrap();
    let gzipped = |l: &serde_json::Value| l["mediaType"].as_str().unwrap().ends_with("+gzip");
    assert!(m["layers"].as_array().unwrap().iter().all(gzipped), "{m}");
    let cfg: serde_json::Value =
        serde_json::from_str(&sh_ok(&format!("skopeo inspect --config --tls-verify=false docker://{name}"))).unwrap();
    let id = env.ok(&["inspect", "--type", "image", &name]);
    let layers: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(&id).unwrap()[0]["RootFS"]["Layers"].clone();
    assert_eq!(cfg["rootfs"]["diff_ids"], layers, "skopeo sees other layers than rbuild pushed");
    sh_ok(&format!("skopeo copy --src-tls-verify=false docker://{name} dir:{}", env.path("copied").display()));

    // What skopeo pushed (docker schema 2, gzip layers) runs after `rbuild pull`.
    let theirs = format!("{}/skopeo/busybox:1", reg.host());
    sh_ok(&format!("skopeo copy --dest-tls-verify=false docker-daemon:{BASE} docker://{theirs}"));
    let fresh = Env::new();
    let out = fresh.ok(&["pull", &theirs]);
    assert!(out.contains("skopeo/busybox:1"), "{out}");
    let out = fresh.ok(&["run", "--rm", &theirs, "sh", "-c", "echo pulled-and-ran"]);
    assert_eq!(out.trim(), "pulled-and-ran");

    // `run` pulls an image the store lacks; FROM does too.
    let other = Env::new();
    let out = other.run(&["run", "--rm", &name, "echo", "auto-pulled"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "auto-pulled");
    assert!(stderr(&out).contains("Unable to find image"), "{}", stderr(&out));
    let ctx = other.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {theirs}\nRUN echo built > /built\n"))]);
    let third = Env::new();
    build(&third, &ctx, &[]);
    assert!(third.ok(&["images"]).contains("skopeo/busybox"));

    // An image the registry does not have: one clear line, non-zero exit, nothing stored.
    let out = third.run(&["pull", &format!("{}/no/such:1", reg.host())]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("not found") && err.lines().count() <= 2, "{err}");
}

#[test]
fn login_and_logout_with_basic_auth() {
    require_root();
    let reg = RegistryServer::start(Some(("alice", "pa55word")));
    let env = Env::with_base();
    let cfg_dir = env.path("docker-config");
    let name = format!("{}/private/base:1", reg.host());
    env.ok(&["tag", BASE, &name]);
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = env.cmd();
        c.env("DOCKER_CONFIG", &cfg_dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    let out = run(&["push", &name], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("authentication required"), "{}", stderr(&out));

    let out = run(&["login", "-u", "alice", "--password-stdin", &reg.host()], Some("wrong\n"));
    assert!(!out.status.success(), "a wrong password was accepted");
    assert!(stderr(&out).contains("login failed"), "{}", stderr(&out));
    assert!(!cfg_dir.join("config.json").exists(), "a refused login was stored");

    let out = run(&["login", "-u", "alice", "--password-stdin", &reg.host()], Some("pa55word\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(cfg_dir.join("config.json")).unwrap()).unwrap();
    assert!(cfg["auths"][reg.host()]["auth"].is_string(), "{cfg}");
    let out = run(&["push", &name], None);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(&["logout", &reg.host()], None);
    assert!(out.status.success());
    let out = run(&["pull", &name], None);
    assert!(!out.status.success() && stderr(&out).contains("authentication required"), "{}", stderr(&out));
}

const SLOW_DF: &str = "FROM rbuild-anchor/busybox:1 AS tools
RUN sleep 3 && echo tool > /tool
FROM rbuild-anchor/busybox:1
COPY --from=tools /tool /tool
RUN sleep 3 && cat /tool > /app
";

#[test]
fn a_fresh_store_reuses_steps_another_store_exported() {
    require_root();
    let reg = RegistryServer::start(None);
    let first = Env::with_base();
    let ctx = first.path("ctx");
    context(&ctx, &[("Dockerfile", SLOW_DF)]);
    let cache = format!("{}/cache/app:buildcache", reg.host());
    let local = first.path("local-cache");
    let (ran, _, id) = build(
        &first,
        &ctx,
        &[
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            "--cache-to",
            &format!("type=local,dest={},mode=min", local.display()),
        ],
    );
    assert_eq!(ran.len(), 3, "{ran:?}");

    // Another machine: an empty store with only the base image.
    let second = Env::with_base();
    let t0 = std::time::Instant::now();
    let (ran, cached, id2) = build(&second, &ctx, &["--cache-from", &format!("type=registry,ref={cache}")]);
    let took = t0.elapsed();
    assert!(ran.is_empty(), "steps ran despite the imported cache: {ran:?}");
    assert_eq!(cached.len(), 3, "{cached:?}");
    assert_eq!(id2, id, "the same steps made another image");
    assert!(took < std::time::Duration::from_secs(3), "the 3-second RUN ran: {took:?}");
    assert_eq!(second.ok(&["run", "--rm", &id2, "cat", "/app"]).trim(), "tool");

    // mode=min carries only what made the image: the `tools` stage runs again, the rest
    // (whose keys do not depend on where the tool came from) is reused.
    let third = Env::with_base();
    let (ran, cached, id3) = build(&third, &ctx, &["--cache-from", &format!("type=local,src={}", local.display())]);
    assert_eq!(ran, vec!["RUN sleep 3 && echo tool > /tool"], "cached: {cached:?}");
    assert_eq!(id3, id);

    // A cache that is not there is a warning, and the build still works.
    let fourth = Env::with_base();
    let mut c = fourth.cmd();
    c.args(["build", "-q", "--cache-from", &format!("type=registry,ref={}/cache/none:1", reg.host()), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"FROM rbuild-anchor/busybox:1\nRUN true\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("[warning] importing cache"), "{}", stderr(&out));
}

#[test]
fn build_pull_refreshes_a_base_that_changed_in_the_registry() {
    require_root();
    let reg = RegistryServer::start(None);
    let publisher = Env::with_base();
    let base = format!("{}/bases/bb:stable", reg.host());
    publisher.ok(&["tag", BASE, &base]);
    publisher.ok(&["push", &base]);

    let user = Env::new();
    let ctx = user.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {base}\nRUN cat /version 2>/dev/null || echo none\n"))]);
    let (_, _, first) = build(&user, &ctx, &[]);

    // The publisher moves the tag to a new image.
    let pctx = publisher.path("pctx");
    context(&pctx, &[("Dockerfile", &format!("FROM {BASE}\nRUN echo 2 > /version\n"))]);
    build(&publisher, &pctx, &["-t", &base]);
    publisher.ok(&["push", &base]);

    // Without --pull the store's copy is used; with it, the new one.
    let (_, cached, again) = build(&user, &ctx, &[]);
    assert_eq!((again.as_str(), cached.len()), (first.as_str(), 1));
    let (ran, _, refreshed) = build(&user, &ctx, &["--pull"]);
    assert_ne!(refreshed, first, "--pull did not refresh the base");
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(user.ok(&["run", "--rm", &base, "cat", "/version"]).trim(), "2");
}

/// Regression (issue 12, 7): `push` uploaded a layer blob with a flipped byte (only the
/// registry's own check refused it). The blob is checked as it streams and the upload is
/// cut short: the push fails naming the blob and the image, the registry never gets it.
#[test]
fn push_refuses_a_corrupt_layer() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nCOPY big /big\n"))]);
    std::fs::write(ctx.join("big"), vec![b'y'; 3 << 20]).unwrap();
    let name = format!("{}/rbuild/corrupt:1", reg.host());
    env.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
    let layer = env.flip_a_bit_of_the_last_layer(&name);
    for extra in [vec![], vec!["--compression", "gzip"]] {
        let mut args = vec!["push"];
        args.extend(extra.iter().copied());
        args.push(&name);
        let out = env.run(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(&layer) && err.contains("corrupt") && err.contains("rbuild/corrupt:1"), "{args:?}: {err}");
    }
    assert!(!reg.blob_file(&layer).exists(), "the registry got the corrupt layer");
    let head = sh_ok(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' -I http://{}/v2/rbuild/corrupt/manifests/1",
        reg.host()
    ));
    assert_eq!(head, "404", "a manifest was pushed");
}

/// Regression (issue 12): a trickling registry hung `pull` forever; and a pull killed
/// while a layer streamed left a `tmp-*` file in the store. `--pull-timeout` (and
/// `--pull-min-rate`) end it with one clear line; a killed pull leaves no temp file.
#[test]
fn a_trickling_pull_ends_and_a_killed_one_leaves_no_temp_file() {
    use rbuild_registry::testing::{Trickle, TrickleServer};
    let server = TrickleServer::start(Trickle::Layer, std::time::Duration::from_millis(50));
    let env = Env::new();
    let name = format!("{}/slow/img:1", server.host());
    let t0 = std::time::Instant::now();
    let out = env.run(&["--pull-timeout", "2s", "pull", &name]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert!(errors.len() == 1 && errors[0].contains("deadline of 2s (--pull-timeout)"), "{err}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    let out = env.run(&["--pull-min-rate", "fast", "pull", &name]);
    assert!(!out.status.success() && stderr(&out).contains("invalid rate"), "{}", stderr(&out));
    // Killed while the layer streams in.
    let mut child = env.cmd().args(["pull", &name]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let tmp: Vec<String> = std::fs::read_dir(env.root().join("rbuild/tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(tmp.iter().all(|n| !n.starts_with("tmp-")), "{tmp:?}");
    assert!(!env.ok(&["images"]).contains("slow/img"));
}

/// A pull does not wait for its unpacked layers to reach the disk (docker's overlay2 and
/// containerd's unpacker do not either): they stay listed as unsynced, so after a crash
/// (another boot) a snapshot whose data never arrived is dropped and made again from its
/// fsynced blob — the image runs with its content.
#[test]
fn a_pulled_layer_lost_in_a_crash_is_unpacked_again_from_its_blob() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nCOPY data /data\n")), ("data", "pulled content\n")]);
    let name = format!("{}/rbuild/crash:1", reg.host());
    env.ok(&["build", "-q", "-t", &name, ctx.to_str().unwrap()]);
    env.ok(&["push", "-q", &name]);
    let fresh = Env::new();
    fresh.ok(&["pull", "-q", &name]);
    let inspect: serde_json::Value = serde_json::from_str(&fresh.ok(&["inspect", "--type", "image", &name])).unwrap();
    let top = inspect[0]["RootFS"]["Layers"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    let hex = top.strip_prefix("sha256:").unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_string();
    let unsynced = fresh.root().join("rbuild/unsynced");
    assert!(unsynced.join(&boot).join(hex).exists(), "the pulled layer is not listed as unsynced");
    // The crash: the file's data never reached the disk, and the machine booted again.
    let snap = fresh.root().join("rbuild/snapshots").join(hex);
    std::fs::write(snap.join("data"), "").unwrap();
    std::fs::rename(unsynced.join(&boot), unsynced.join("an-earlier-boot")).unwrap();
    let out = fresh.ok(&["run", "--rm", "--network", "none", &name, "cat", "/data"]);
    assert_eq!(out, "pulled content\n");
}
