//! `build --explain-cache`: each step that misses the cache says which input changed
//! since the last build of the same Dockerfile, context and target.

mod common;
use common::*;

/// The CACHE MISS lines of a plain-progress build, by step title.
fn misses(env: &Env, ctx: &std::path::Path, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["build", "--progress", "plain", "--explain-cache"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    let out = env.run(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let mut titles = std::collections::BTreeMap::new();
    let mut found = Vec::new();
    for l in err.lines() {
        let Some(rest) = l.strip_prefix('#') else { continue };
        let (id, text) = rest.split_once(' ').unwrap_or((rest, ""));
        if let Some(t) = text.strip_prefix('[') {
            titles.insert(id.to_string(), t.split_once("] ").map(|x| x.1).unwrap_or("").to_string());
        } else if let Some(reason) = text.strip_prefix("CACHE MISS: ") {
            found.push((titles[id].clone(), reason.to_string()));
        }
    }
    found
}

#[test]
fn misses_say_which_input_changed() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let df = "FROM rbuild-anchor/busybox:1\nARG VERSION=1\nCOPY src /src\nENV MODE=fast\nRUN echo $VERSION > /v\n";
    context(&ctx, &[("Dockerfile", df), ("src/a.txt", "a"), ("src/b.txt", "b")]);
    let first = misses(&env, &ctx, &[]);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|(_, r)| r.starts_with("not built before")), "{first:?}");
    // Nothing changed: nothing missed.
    assert!(misses(&env, &ctx, &[]).is_empty());

    // Context files: which ones, and the steps after say where it started.
    context(&ctx, &[("src/b.txt", "b2"), ("src/c.txt", "c")]);
    let m = misses(&env, &ctx, &[]);
    assert_eq!(
        m[0],
        ("COPY src /src".into(), "the context files changed: src/b.txt (changed), src/c.txt (added)".into())
    );
    assert_eq!(m[1].0, "RUN echo $VERSION > /v");
    assert!(m[1].1.starts_with("`COPY src /src` changed before it: the context files changed"), "{m:?}");

    // A build arg.
    let m = misses(&env, &ctx, &["--build-arg", "VERSION=2"]);
    assert!(m[0].1.contains("the value of ARG VERSION changed"), "{m:?}");

    // The instruction's text.
    std::fs::write(ctx.join("Dockerfile"), df.replace("MODE=fast", "MODE=slow")).unwrap();
    let m = misses(&env, &ctx, &["--build-arg", "VERSION=2"]);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].1, "`ENV MODE=slow` changed before it: the instruction changed: `ENV MODE=fast` → `ENV MODE=slow`");

    // Another Dockerfile path is another build: nothing to compare with.
    std::fs::copy(ctx.join("Dockerfile"), ctx.join("Other.Dockerfile")).unwrap();
    let other = ctx.join("Other.Dockerfile");
    let m = misses(&env, &ctx, &["--no-cache", "-f", other.to_str().unwrap()]);
    assert!(m.is_empty(), "--no-cache explains nothing: {m:?}");
    let m = misses(&env, &ctx, &["-f", other.to_str().unwrap(), "--build-arg", "VERSION=3"]);
    assert!(m.iter().all(|(_, r)| r.contains("ARG VERSION")), "{m:?}");
}

/// On a fresh machine (a CI runner), the build the cache came from is what a miss is
/// compared with: `--cache-to` carries its journal.
#[test]
fn the_journal_travels_with_the_cache() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    let df = "FROM rbuild-anchor/busybox:1\nCOPY app /app\nRUN cat /app/main > /built\n";
    context(&ctx, &[("Dockerfile", df), ("app/main", "v1"), ("app/util", "u")]);
    let cache = env.path("cache");
    let to = format!("type=local,dest={},mode=max", cache.display());
    env.ok(&["build", "-q", "--cache-to", &to, ctx.to_str().unwrap()]);

    let runner = Env::with_base();
    context(&ctx, &[("app/main", "v2")]);
    let from = format!("type=local,src={}", cache.display());
    let m = misses(&runner, &ctx, &["--cache-from", &from]);
    assert_eq!(m[0], ("COPY app /app".into(), "the context files changed: app/main (changed)".into()), "{m:?}");
}
