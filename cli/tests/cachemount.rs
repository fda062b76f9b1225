//! Cache mounts travel with the build cache: `--cache-to …,mode=max` also exports the
//! contents of the build's `RUN --mount=type=cache` directories (layers, deduplicated,
//! within `cache-mounts=SIZE`), and `--cache-from` restores them on a fresh store before
//! the first step that uses one.

mod common;
use common::*;
use rbuild_registry::testing::RegistryServer;
use std::path::Path;

const DF: &str = "FROM rbuild-anchor/busybox:1
COPY deps.txt /deps.txt
RUN --mount=type=cache,id=pkgs,target=/cache,uid=1000,mode=0750 \\
    if [ -f /cache/dl ]; then echo WARM; else echo COLD; echo fetched > /cache/dl; fi; \\
    stat -c '%u %a' /cache; cp /cache/dl /out
";

/// Builds with plain progress; the build's stderr.
fn build_out(env: &Env, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = env.run(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

/// Whether the step printed the line `line` (`#N line` in plain progress; the step's
/// title, which holds the command, does not count).
fn said(err: &str, line: &str) -> bool {
    err.lines().any(|l| l.starts_with('#') && l.split_once(' ').is_some_and(|(_, rest)| rest == line))
}

/// The cache mounts an exported local cache carries: (id, layer digest).
fn exported_mounts(dir: &Path) -> Vec<(String, String)> {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| std::fs::read(dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let c: serde_json::Value = serde_json::from_slice(&blob(m["config"]["digest"].as_str().unwrap())).unwrap();
    let layers: Vec<&str> = m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    c["mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    let l = x["layer"].as_str().unwrap().to_string();
                    assert!(layers.contains(&l.as_str()), "the mount's layer is a layer of the artifact");
                    (x["id"].as_str().unwrap().to_string(), l)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn cache_mounts_travel_with_a_local_cache() {
    require_root();
    let ci = Env::with_base();
    let ctx = ci.path("ctx");
    context(&ctx, &[("Dockerfile", DF), ("deps.txt", "a\n")]);
    let (with, without) = (ci.path("with"), ci.path("without"));
    let err = build_out(
        &ci,
        &ctx,
        &[
            "--cache-to",
            &format!("type=local,dest={},mode=max", with.display()),
            "--cache-to",
            &format!("type=local,dest={},mode=max,cache-mounts=false", without.display()),
        ],
    );
    assert!(said(&err, "COLD") && err.contains("Exporting 1 cache mounts"), "{err}");
    let mounts = exported_mounts(&with);
    assert_eq!(mounts.len(), 1);
    assert!(exported_mounts(&without).is_empty());

    // A fresh runner, one dependency changed: the RUN step misses, and finds its cache
    // mount warm — owner and mode as the mount asks.
    context(&ctx, &[("deps.txt", "a\nb\n")]);
    let runner = Env::with_base();
    let err = build_out(&runner, &ctx, &["--cache-from", &format!("type=local,src={}", with.display())]);
    assert!(err.contains("restored cache mount pkgs from the imported cache"), "{err}");
    assert!(said(&err, "WARM") && said(&err, "1000 750"), "{err}");
    // Without the mount's contents the step starts cold.
    let cold = Env::with_base();
    let err = build_out(&cold, &ctx, &["--cache-from", &format!("type=local,src={}", without.display())]);
    assert!(said(&err, "COLD"), "{err}");

    // Exported again unchanged: the same layer (content-addressed, stored once).
    let again = ci.path("again");
    build_out(&runner, &ctx, &["--cache-to", &format!("type=local,dest={},mode=max", again.display())]);
    assert_eq!(exported_mounts(&again), mounts);

    // A runner whose steps were all cached never made the mount: it passes on the
    // imported one, so the next export still carries it.
    let cached = Env::with_base();
    context(&ctx, &[("deps.txt", "a\n")]);
    let passed = ci.path("passed");
    let err = build_out(
        &cached,
        &ctx,
        &[
            "--cache-from",
            &format!("type=local,src={}", with.display()),
            "--cache-to",
            &format!("type=local,dest={},mode=max", passed.display()),
        ],
    );
    assert!(!said(&err, "COLD") && !said(&err, "WARM"), "the step ran: {err}");
    assert_eq!(exported_mounts(&passed), mounts);

    // Over the size limit: left out, with a warning.
    let capped = ci.path("capped");
    let err =
        build_out(&ci, &ctx, &["--cache-to", &format!("type=local,dest={},mode=max,cache-mounts=1", capped.display())]);
    assert!(err.contains("left out: over the cache-mounts limit"), "{err}");
    assert!(exported_mounts(&capped).is_empty());
    // mode=min exports mounts only when asked.
    let min = ci.path("min");
    build_out(&ci, &ctx, &["--cache-to", &format!("type=local,dest={}", min.display())]);
    assert!(exported_mounts(&min).is_empty());
    let bad = ci.run(&["build", "--cache-to", "type=local,dest=/x,cache-mounts=lots", ctx.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid cache-mounts value"));

    // A mount layer the cache lost: a warning, and the step runs with the mount empty.
    let (_, layer) = &mounts[0];
    std::fs::remove_file(with.join("blobs/sha256").join(layer.trim_start_matches("sha256:"))).unwrap();
    context(&ctx, &[("deps.txt", "a\nc\n")]);
    let lost = Env::with_base();
    let err = build_out(&lost, &ctx, &["--cache-from", &format!("type=local,src={}", with.display())]);
    assert!(err.contains("restoring cache mount pkgs:") && err.contains("it starts empty"), "{err}");
    assert!(said(&err, "COLD") && said(&err, "1000 750"), "{err}");
}

#[test]
fn cache_mounts_travel_through_a_registry() {
    require_root();
    let reg = RegistryServer::start(None);
    let ci = Env::with_base();
    let ctx = ci.path("ctx");
    context(&ctx, &[("Dockerfile", DF), ("deps.txt", "a\n")]);
    let r = format!("{}/cache/app:ci", reg.host());
    // The mount travels through the registry as one more layer of the cache manifest.
    build_out(&ci, &ctx, &["--cache-to", &format!("type=registry,ref={r},mode=max")]);
    context(&ctx, &[("deps.txt", "a\nb\n")]);
    let runner = Env::with_base();
    let err = build_out(&runner, &ctx, &["--cache-from", &format!("type=registry,ref={r}")]);
    assert!(said(&err, "WARM") && said(&err, "1000 750"), "{err}");
    assert!(err.contains("restored cache mount pkgs from the imported cache"), "{err}");
}
