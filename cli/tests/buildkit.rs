//! BuildKit-era Dockerfiles, as docker 26 builds them: secrets, ssh, mounts from stages
//! and images, cache mounts and their sharing, tmpfs, `COPY --link/--parents/--exclude`,
//! `ADD --checksum`, git sources and `--unpack`, named build contexts, platform ARGs,
//! here-documents, `# syntax=` lines, pruned stages.

mod common;
use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;

/// Builds `ctx` with `extra` flags; returns the output (success not required).
fn try_build(env: &Env, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "-q", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    env.run(&args)
}

/// Builds `ctx`; returns the image id.
fn build_id(env: &Env, ctx: &Path, extra: &[&str]) -> String {
    let out = try_build(env, ctx, extra);
    assert!(out.status.success(), "build failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The first line of a failed build's error.
fn build_error(env: &Env, ctx: &Path, extra: &[&str]) -> String {
    let out = try_build(env, ctx, extra);
    assert!(!out.status.success(), "the build should fail");
    String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("").to_string()
}

fn df(ctx: &Path, text: &str) {
    context(ctx, &[("Dockerfile", text)]);
}

/// Every file below `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
            if m.is_dir() {
                todo.push(p);
            } else if m.is_file() {
                let data = std::fs::read(&p).unwrap_or_default();
                if data.windows(needle.len()).any(|w| w == needle) {
                    out.push(p.display().to_string());
                }
            }
        }
    }
    out
}

/// A secret given by file and by environment reaches its RUN steps (as a file and as a
/// variable, with the mount's mode and owner) and nothing else: no blob, snapshot, cache
/// record or temp file of the store holds its bytes, nor the history, nor the image.
#[test]
fn secrets_reach_their_steps_and_never_the_store() {
    let env = Env::with_base();
    let (file_secret, env_secret) = (unique("file-secret-value"), unique("env-secret-value"));
    let secret_file = env.path("secret.txt");
    std::fs::write(&secret_file, &file_secret).unwrap();
    let sum = |s: &str| sh_ok(&format!("printf %s '{s}' | sha256sum | cut -c1-64")).trim().to_string();
    let (file_sum, env_sum) = (sum(&file_secret), sum(&env_secret));
    let ctx = env.path("ctx");
    df(
        &ctx,
        &format!(
            "FROM {BASE}
RUN --mount=type=secret,id=tok test \"$(sha256sum < /run/secrets/tok | cut -c1-64)\" = {file_sum} \\
 && stat -c '%a %u %g' /run/secrets/tok > /tok-stat
RUN --mount=type=secret,id=api,target=/etc/app/key,mode=0440,uid=7,gid=8 stat -c '%a %u %g' /etc/app/key > /key-stat
RUN --mount=type=secret,id=envtok,env=TOKEN test \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-64)\" = {env_sum} \\
 && echo ok > /env-ok
RUN --mount=type=secret,id=absent ls /run/secrets > /optional 2>&1 || echo none > /optional
RUN test ! -e /run/secrets/tok && echo gone > /after
"
        ),
    );
    let flags = [
        "--secret".to_string(),
        format!("id=tok,src={}", secret_file.display()),
        "--secret".to_string(),
        format!("id=api,src={}", secret_file.display()),
        "--secret".to_string(),
        "id=envtok,env=RBUILD_TEST_SECRET".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let run = |extra: &[&str]| {
        let mut args = vec!["build", "-q", "--progress", "plain"];
        args.extend_from_slice(&flags);
        args.extend_from_slice(extra);
        args.push(ctx.to_str().unwrap());
        let out = env.cmd().args(&args).env("RBUILD_TEST_SECRET", &env_secret).output().unwrap();
        let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "build failed: {e}");
        for s in [&file_secret, &env_secret] {
            assert!(!o.contains(s.as_str()) && !e.contains(s.as_str()), "a secret is in the build's output");
        }
        o.trim().to_string()
    };
    let id = run(&[]);
    assert_eq!(run(&[]), id, "a cached rebuild gives the same image");
    run(&["--no-cache"]);
    assert_eq!(
        env.sh_in(&id, "cat /tok-stat /key-stat /env-ok /after; ls -a /run 2>&1; test ! -e /etc/app && echo clean"),
        "400 0 0\n440 7 8\nok\ngone\nls: /run: No such file or directory\nclean\n"
    );
    assert_eq!(env.sh_in(&id, "cat /optional"), "none\n");
    let history = env.ok(&["history", "--no-trunc", &id]);
    let inspect = env.ok(&["inspect", &id]);
    for s in [&file_secret, &env_secret] {
        assert!(!history.contains(s.as_str()) && !inspect.contains(s.as_str()));
        assert_eq!(files_containing(&env.root(), s.as_bytes()), Vec::<String>::new(), "the store holds a secret");
    }
}

/// A required secret that was not given fails the step with BuildKit's message, at it.
#[test]
fn a_missing_required_secret_is_an_error_at_its_step() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(&ctx, &format!("FROM {BASE}\nRUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok\n"));
    let e = build_error(&env, &ctx, &[]);
    assert!(e.contains("Dockerfile:2:1:") && e.contains("secret tok: not found"), "{e}");
}

/// `--ssh default=SOCKET`: the step sees a socket (0600 root, or as the mount says) at
/// $SSH_AUTH_SOCK (relayed to the agent: builder/src/steps/ssh.rs tests the relay);
/// nothing of it is in the image; a step that needs an agent not given fails.
#[test]
fn ssh_agent_is_forwarded_into_the_step() {
    let env = Env::with_base();
    let agent_path = env.path("agent.sock");
    let agent = std::os::unix::net::UnixListener::bind(&agent_path).unwrap();
    // The builder connects once to check that the agent is there.
    std::thread::spawn(move || for _ in agent.incoming() {});
    let ctx = env.path("ctx");
    df(
        &ctx,
        &format!(
            "FROM {BASE}
RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && stat -c '%a %u' \"$SSH_AUTH_SOCK\" > /sock \\
 && echo \"$SSH_AUTH_SOCK\" >> /sock
RUN --mount=type=ssh,id=other,target=/agent,mode=0660,uid=5 stat -c '%a %u' /agent > /other
RUN test -z \"$SSH_AUTH_SOCK\" && echo unset > /after
"
        ),
    );
    let sock = format!("default={}", agent_path.display());
    let other = format!("other={}", agent_path.display());
    let id = build_id(&env, &ctx, &["--ssh", &sock, "--ssh", &other]);
    assert_eq!(
        env.sh_in(&id, "cat /sock /other /after; ls /run 2>&1; true"),
        "600 0\n/run/buildkit/ssh_agent.0\n660 5\nunset\nls: /run: No such file or directory\n"
    );
    df(&ctx, &format!("FROM {BASE}\nRUN --mount=type=ssh,required=true true\n"));
    let e = build_error(&env, &ctx, &["--ssh", &other]);
    assert!(e.contains("Dockerfile:2:1:") && e.contains("no ssh agent with id default"), "{e}");
}

/// Binds from a stage, an image and the context (without what .dockerignore leaves out;
/// `rw`: writes seen by the step, gone after it); mountpoints the image lacked are not
/// left in it.
#[test]
fn bind_mounts_from_stages_images_and_the_context() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(
        &ctx,
        &[
            ("data.txt", "original\n"),
            ("sub/inner.txt", "inner\n"),
            ("sub/local.env", "hidden\n"),
            ("logs/a.log", "hidden\n"),
            (".dockerignore", "**/*.env\nlogs\n"),
        ],
    );
    df(
        &ctx,
        &format!(
            "FROM {BASE} AS builder
RUN mkdir -p /out && echo artifact > /out/a
FROM {BASE}
RUN --mount=type=bind,from=builder,source=/out,target=/mnt/out cat /mnt/out/a > /from-stage
RUN --mount=type=bind,from={BASE},source=/etc,target=/mnt/etc cut -d: -f1 /mnt/etc/passwd | head -1 > /from-image
RUN --mount=type=bind,source=sub,target=/sub cat /sub/inner.txt > /from-context
RUN --mount=type=bind,target=/ctx,rw echo changed > /ctx/data.txt && cat /ctx/data.txt > /rw-seen
RUN --mount=type=bind,target=/ctx cat /ctx/data.txt > /after-rw && ls /ctx /ctx/sub > /ctx-ls
"
        ),
    );
    let id = build_id(&env, &ctx, &[]);
    assert_eq!(
        env.sh_in(&id, "cat /from-stage /from-image /from-context /rw-seen /after-rw; ls /mnt /ctx /sub 2>&1 | wc -l"),
        "artifact\nroot\ninner\nchanged\noriginal\n3\n"
    );
    assert_eq!(env.sh_in(&id, "cat /ctx-ls"), "/ctx:\nDockerfile\ndata.txt\nsub\n\n/ctx/sub:\ninner.txt\n");
    assert_eq!(std::fs::read_to_string(ctx.join("data.txt")).unwrap(), "original\n");
}

/// Cache mounts keep their content between builds (not in the image), get the mount's
/// owner and mode when made, and `sharing=locked` lets one step at a time in while
/// `sharing=private` gives a busy cache's second user an instance of its own: two builds
/// at once that each fail if another step is inside both succeed.
#[test]
fn cache_mounts_persist_and_share_as_sharing_says() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(
        &ctx,
        &format!(
            "FROM {BASE}
RUN --mount=type=cache,id=c1,target=/var/cache/x,uid=1000,gid=1000,mode=0750 \\
    stat -c '%u %g %a' /var/cache/x > /stat && echo seen >> /var/cache/x/log && wc -l < /var/cache/x/log > /count
"
        ),
    );
    let id1 = build_id(&env, &ctx, &[]);
    let id2 = build_id(&env, &ctx, &["--no-cache"]);
    assert_eq!(env.sh_in(&id1, "cat /stat /count; test ! -e /var/cache && echo clean"), "1000 1000 750\n1\nclean\n");
    assert_eq!(env.sh_in(&id2, "cat /count"), "2\n");
    for sharing in ["locked", "private"] {
        let c = env.path(&format!("ctx-{sharing}"));
        df(
            &c,
            &format!(
                "FROM {BASE}
RUN --mount=type=cache,id=busy,target=/c,sharing={sharing} \\
    test ! -e /c/inside && touch /c/inside && sleep 1 && rm /c/inside
"
            ),
        );
        let builds: Vec<_> = (0..2)
            .map(|_| {
                env.cmd()
                    .args(["build", "-q", "--no-cache", c.to_str().unwrap()])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for b in builds {
            let out = b.wait_with_output().unwrap();
            assert!(out.status.success(), "{sharing}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A tmpfs mount is empty at every step, of the size asked, and leaves no mountpoint.
#[test]
fn tmpfs_mounts_are_fresh_and_leave_nothing() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(
        &ctx,
        &format!(
            "FROM {BASE}
RUN --mount=type=tmpfs,target=/scratch,size=1m echo t > /scratch/t && df -k /scratch | tail -1 | awk '{{print $2}}' > /size
RUN --mount=type=tmpfs,target=/scratch test ! -e /scratch/t && echo fresh > /fresh
"
        ),
    );
    let id = build_id(&env, &ctx, &[]);
    assert_eq!(
        env.sh_in(&id, "cat /size /fresh; ls /scratch 2>&1; true"),
        "1024\nfresh\nls: /scratch: No such file or directory\n"
    );
}

/// `COPY --link` makes a layer that does not depend on the stage below it: a build on a
/// changed base reuses it (the step is CACHED, the layer the same) without copying.
#[test]
fn copy_link_layers_are_reused_when_the_base_changes() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("big/a.txt", "a\n"), ("big/b.txt", "b\n")]);
    let linked = |base_step: &str| {
        df(&ctx, &format!("FROM {BASE}\nRUN {base_step}\nCOPY --link big/ /opt/big/\nRUN cat /opt/big/a.txt /base\n"));
        let out = env.run(&[
            "build",
            "--progress",
            "plain",
            "--iidfile",
            env.path("iid").to_str().unwrap(),
            ctx.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let id = std::fs::read_to_string(env.path("iid")).unwrap();
        (String::from_utf8_lossy(&out.stderr).into_owned(), id)
    };
    let (_, id1) = linked("echo one > /base");
    let (log, id2) = linked("echo two > /base");
    let copy_step = log.lines().find(|l| l.contains("COPY --link")).unwrap().split(' ').next().unwrap().to_string();
    assert!(log.lines().any(|l| l == format!("{copy_step} CACHED")), "the --link layer was copied again:\n{log}");
    let layers = |id: &str| -> Vec<String> {
        let hex = id.trim().trim_start_matches("sha256:");
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.root().join("blobs/sha256").join(hex)).unwrap()).unwrap();
        c["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect()
    };
    let (l1, l2) = (layers(&id1), layers(&id2));
    assert_ne!(l1[1], l2[1], "the bases differ");
    assert_eq!(l1[2], l2[2], "the --link layer is the same");
    assert_eq!(env.sh_in(&id2, "cat /opt/big/b.txt /base"), "b\ntwo\n");
}

/// `COPY --parents` keeps the sources' directories (from a `/./` pivot on), `--exclude`
/// leaves files out.
#[test]
fn copy_parents_and_exclude() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("x/a.txt", "xa"), ("y/a.txt", "ya"), ("p/q/r.txt", "r"), ("d/keep.txt", "k"), ("d/skip.md", "s")]);
    df(
        &ctx,
        &format!(
            "FROM {BASE}
COPY --parents x/a.txt y/a.txt /parents/
COPY --parents p/./q/r.txt /pivot/
COPY --exclude=*.md d/ /excluded/
"
        ),
    );
    let id = build_id(&env, &ctx, &[]);
    assert_eq!(
        env.sh_in(&id, "cat /parents/x/a.txt /parents/y/a.txt /pivot/q/r.txt; echo; ls /excluded"),
        "xayar\nkeep.txt\n"
    );
}

/// Serves `body` at every path on a loopback port, `count` times; returns the base URL.
fn serve(body: Vec<u8>, count: usize) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming().take(count) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    url
}

/// `ADD --checksum` checks a download (a wrong one fails) and is refused for a local
/// source, as BuildKit refuses it; `--unpack` extracts a downloaded archive (a download
/// is a file by default) and `--unpack=false` keeps a local archive whole.
#[test]
fn add_checksum_and_unpack() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("payload.txt", "payload\n"), ("pkg/inside.txt", "inside\n")]);
    sh_ok(&format!("tar -C {0} -czf {0}/pkg.tar.gz pkg", ctx.display()));
    let archive = std::fs::read(ctx.join("pkg.tar.gz")).unwrap();
    let sum = sh_ok(&format!("sha256sum {}/pkg.tar.gz | cut -c1-64", ctx.display())).trim().to_string();
    let url = serve(archive, 10);
    df(
        &ctx,
        &format!(
            "FROM {BASE}
ADD --checksum=sha256:{sum} {url}/pkg.tar.gz /dl/
ADD --unpack=true {url}/pkg.tar.gz /unpacked/
ADD --unpack=false pkg.tar.gz /kept/
"
        ),
    );
    let id = build_id(&env, &ctx, &[]);
    assert_eq!(env.sh_in(&id, "ls /dl; ls /kept; cat /unpacked/pkg/inside.txt"), "pkg.tar.gz\npkg.tar.gz\ninside\n");
    df(&ctx, &format!("FROM {BASE}\nADD --checksum=sha256:{} {url}/pkg.tar.gz /dl/\n", "0".repeat(64)));
    assert!(build_error(&env, &ctx, &["--no-cache"]).contains("digest mismatch"));
    df(&ctx, &format!("FROM {BASE}\nADD --checksum=sha256:{sum} payload.txt /p\n"));
    assert!(build_error(&env, &ctx, &[]).contains("checksum can't be specified for non-HTTP sources"));
}

/// `ADD` of a git repository: a ref and a subdirectory (`#ref:subdir`), `.git` left out
/// unless `--keep-git-dir`.
#[test]
fn add_git_repositories() {
    let env = Env::with_base();
    let work = env.path("work");
    context(&work, &[("docs/readme.txt", "v1 docs\n"), ("top.txt", "top\n")]);
    let repo = env.path("repo.git");
    sh_ok(&format!(
        "cd {w} && git init -q -b main && git add . && git -c user.name=t -c user.email=t@t commit -qm one && git tag v1 \
         && echo v2 > docs/readme.txt && git -c user.name=t -c user.email=t@t commit -qam two \
         && git clone -q --bare {w} {r}",
        w = work.display(),
        r = repo.display()
    ));
    let ctx = env.path("ctx");
    df(
        &ctx,
        &format!(
            "FROM {BASE}
ADD file://{r}#v1:docs /v1docs/
ADD file://{r} /head/
ADD --keep-git-dir=true file://{r}#main /withgit/
",
            r = repo.display()
        ),
    );
    let id = build_id(&env, &ctx, &[]);
    assert_eq!(
        env.sh_in(&id, "cat /v1docs/readme.txt /head/docs/readme.txt; ls -a /head | grep -c git; test -d /withgit/.git && echo kept"),
        "v1 docs\nv2\n0\nkept\n"
    );
}

/// `--build-context`: a directory for `COPY --from`, an image for `FROM`, a stage it
/// replaces, and an OCI layout.
#[test]
fn named_build_contexts() {
    let env = Env::with_base();
    let other = Env::with_base();
    let extra = env.path("extra");
    context(&extra, &[("config.ini", "[x]\n"), ("sub/s.txt", "s\n")]);
    let ctx = env.path("ctx");
    df(
        &ctx,
        "FROM base AS deps
RUN false
FROM base
COPY --from=extra config.ini /etc/extra.ini
COPY --from=deps /etc/replaced.txt /replaced.txt
COPY --from=layout /bin/busybox /from-layout
",
    );
    let flags = [
        format!("extra={}", extra.display()),
        format!("base=docker-image://{BASE}"),
        format!("deps={}", extra.join("sub").display()),
        format!("layout=oci-layout://{}:1", other.root().display()),
    ];
    context(&extra, &[("sub/etc/replaced.txt", "from the context\n")]);
    let mut args = vec![];
    for f in &flags {
        args.extend(["--build-context", f.as_str()]);
    }
    let id = build_id(&env, &ctx, &args);
    assert_eq!(
        env.sh_in(&id, "cat /etc/extra.ini /replaced.txt; test -x /from-layout && echo layout"),
        "[x]\nfrom the context\nlayout\n"
    );
}

/// Only what the target needs runs; BuildKit's platform ARGs have their values;
/// `--platform` other than linux/amd64 is refused clearly, and so is a FROM for one.
#[test]
fn stages_platforms_and_platform_args() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(
        &ctx,
        &format!(
            "FROM {BASE} AS broken
RUN false
FROM --platform=$BUILDPLATFORM {BASE} AS app
ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH
RUN echo \"$TARGETPLATFORM $TARGETOS $TARGETARCH [$TARGETVARIANT] $BUILDPLATFORM $BUILDOS $BUILDARCH\" > /platform
"
        ),
    );
    let id = build_id(&env, &ctx, &["--target", "app", "--platform", "linux/amd64"]);
    assert_eq!(env.sh_in(&id, "cat /platform"), "linux/amd64 linux amd64 [] linux/amd64 linux amd64\n");
    let e = build_error(&env, &ctx, &["--platform", "linux/arm64"]);
    assert!(e.contains("linux/arm64") && e.contains("linux/amd64 images only"), "{e}");
    df(&ctx, &format!("FROM --platform=linux/arm64 {BASE}\nRUN true\n"));
    let e = build_error(&env, &ctx, &[]);
    assert!(e.contains("Dockerfile:1:1:") && e.contains("linux/amd64 images only"), "{e}");
}

/// Here-documents as BuildKit runs them: a `#!` script is a file run by its interpreter,
/// other scripts go to the shell (no `set -e` unless written), `<<-` strips tabs, and
/// COPY's unquoted documents expand ARGs and ENV (quotes are plain text there).
#[test]
fn heredocs_as_buildkit_runs_them() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(
        &ctx,
        &format!(
            "FROM {BASE}
ARG V=1.2
ENV E=env
RUN <<EOF
#!/bin/sh
echo \"$0\" > /how
EOF
RUN <<EOF
false
echo after-false > /no-set-e
EOF
RUN <<-EOF
\techo tabs > /tabs
\tEOF
COPY <<EOF /conf
v=$V e=${{E}} q='$V' b=\\$V
EOF
COPY <<'EOF' /raw
v=$V
EOF
"
        ),
    );
    let id = build_id(&env, &ctx, &[]);
    assert_eq!(
        env.sh_in(&id, "cat /how /no-set-e /tabs /conf /raw"),
        "/dev/pipes/EOF\nafter-false\ntabs\nv=1.2 e=env q='1.2' b=$V\nv=$V\n"
    );
    df(&ctx, &format!("FROM {BASE}\nRUN <<EOF\nset -e\nfalse\necho no > /x\nEOF\n"));
    assert!(build_error(&env, &ctx, &[]).contains("did not complete successfully"));
}

/// `# syntax=` of the docker/dockerfile family is accepted (its features are built in);
/// another frontend is refused at its line, never pulled.
#[test]
fn syntax_directives() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(&ctx, &format!("# syntax=docker/dockerfile:1.7-labs\nFROM {BASE}\nCOPY --parents Dockerfile /d/\n"));
    build_id(&env, &ctx, &[]);
    df(&ctx, &format!("# escape=\\\n# syntax=example.com/frontend:2\nFROM {BASE}\n"));
    let out = try_build(&env, &ctx, &[]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("Dockerfile:2:1:") && e.contains("unsupported frontend"), "{e}");
    assert!(!e.contains("Pulling"), "{e}");
}

/// RUN --network=host and --security=insecure need `--allow` (BuildKit's entitlements);
/// allowed, the step has the host's network or all the capabilities.
#[test]
fn run_entitlements() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(&ctx, &format!("FROM {BASE}\nRUN --network=host true\n"));
    let e = build_error(&env, &ctx, &[]);
    assert!(e.contains("Dockerfile:2:1:") && e.contains("network.host is not allowed"), "{e}");
    build_id(&env, &ctx, &["--allow", "network.host"]);
    df(
        &ctx,
        &format!("FROM {BASE}\nRUN grep CapEff /proc/self/status > /plain\nRUN --security=insecure grep CapEff /proc/self/status > /insecure\n"),
    );
    assert!(build_error(&env, &ctx, &[]).contains("security.insecure is not allowed"));
    let id = build_id(&env, &ctx, &["--allow", "security.insecure"]);
    let caps = env.sh_in(&id, "cat /plain /insecure");
    let lines: Vec<&str> = caps.lines().collect();
    assert_ne!(lines[0], lines[1], "an insecure step has more capabilities: {caps}");
}

/// RUN --network=none has only a loopback interface; a bad mount type is refused.
#[test]
fn run_network_and_bad_mounts() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    df(&ctx, &format!("FROM {BASE}\nRUN --network=none awk 'NR>2 {{print $1}}' /proc/net/dev > /ifaces\n"));
    let id = build_id(&env, &ctx, &[]);
    assert_eq!(env.sh_in(&id, "cat /ifaces"), "lo:\n");
    df(&ctx, &format!("FROM {BASE}\nRUN --mount=type=bogus,target=/x true\n"));
    let e = build_error(&env, &ctx, &[]);
    assert!(e.contains("Dockerfile:2:1:") && e.contains("unsupported mount type \"bogus\""), "{e}");
}
