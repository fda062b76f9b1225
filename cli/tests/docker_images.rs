//! The docker CLI's image commands (issue 14): images, commit, push/pull digests, the
//! image and history templates, search and login, compared with the docker engine's
//! output for the same images. Docker only ever sees local images (`rbuild-anchor/…`) and
//! loopback registries.

mod common;

use common::docker::*;
use common::*;
use rbuild_registry::testing::RegistryServer;
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Regression: `images -q REPO` printed every image, so `rmi -f $(images -q myrepo)`
/// deleted them all; `images bb:1` listed bb:latest too.
#[test]
fn images_repo_and_tag_arguments_match_as_dockers() {
    let env = Env::with_base();
    let u = unique("rbcli");
    let names = [format!("{u}-bb:1"), format!("{u}-bb:latest"), format!("{u}-org/app:2"), format!("{u}-org/sub/x:1")];
    let _cleanup = DockerImages(names.to_vec());
    for n in &names {
        env.ok(&["tag", BASE, n]);
        docker_ok(&["tag", BASE, n]);
    }
    let other = other_image(&env, &format!("{u}-other:1"));
    let fmt = "{{.Repository}}:{{.Tag}}";
    for pattern in [format!("{u}-bb"), format!("{u}-bb:1"), format!("{u}-org/*"), format!("{u}-org/app:*")] {
        let ours = env.ok(&["images", "--format", fmt, &pattern]);
        let theirs = docker_ok(&["images", "--format", fmt, &pattern]);
        assert_eq!(sorted_lines(&ours), sorted_lines(&theirs), "images {pattern}");
        assert!(!ours.is_empty(), "images {pattern} listed nothing");
    }
    assert!(!env.ok(&["images", &format!("{u}-bb:1")]).contains("latest"));
    let q = env.ok(&["images", "-q", &format!("{u}-bb")]);
    assert_eq!(q.trim(), &env.ok(&["images", "-q", BASE]).trim()[..12], "{q}");
    // The common idiom removes that repository's image and nothing else.
    let ids: Vec<String> = q.split_whitespace().map(String::from).collect();
    let mut rmi = vec!["rmi", "-f"];
    rmi.extend(ids.iter().map(String::as_str));
    env.ok(&rmi);
    let left = env.ok(&["images", "-q", "--no-trunc"]);
    assert!(left.contains(&other), "rmi -f $(images -q REPO) removed another image: {left}");
    // A bad pattern is an error, as docker's.
    assert!(!env.run(&["images", "["]).status.success());
}

/// Regression: a fresh build showed the base image's creation time.
#[test]
fn a_fresh_build_reads_seconds_ago_and_keeps_its_reproducible_config() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nRUN echo x > /x\n"))]);
    let (_, _, id) = build(&env, &ctx, &["-t", "fresh/app:1"]);
    let row = env.ok(&["images", "--format", "{{.CreatedSince}}", "fresh/app:1"]);
    assert!(row.contains("second") || row.contains("Less than"), "{row}");
    let created = env.ok(&["inspect", "--format", "{{.Created}}", "fresh/app:1"]);
    let t = chrono::DateTime::parse_from_rfc3339(created.trim()).unwrap().timestamp();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - t).abs() < 120, "{created}");
    // The config itself still carries the clamped time: rebuilding gives the same image.
    let (_, _, again) = build(&env, &ctx, &["--no-cache", "-t", "fresh/app:2"]);
    assert_eq!(again, id);
}

/// Regression: `commit -m` did not reach inspect's Comment.
#[test]
fn commit_message_is_the_images_comment_as_in_docker() {
    let env = Env::with_base();
    env.ok(&["run", "--name", "cm", BASE, "touch", "/made"]);
    env.ok(&["commit", "-m", "a message", "-a", "me", "cm", "committed/img:1"]);
    let f = "{{.Comment}}|{{.Author}}";
    let ours = env.ok(&["inspect", "--format", f, "committed/img:1"]);
    let name = unique("rbcli-commit");
    let _c = DockerContainers(vec![name.clone()]);
    let _i = DockerImages(vec![format!("{name}:1")]);
    docker_ok(&["run", "--name", &name, "--network", "none", BASE, "touch", "/made"]);
    docker_ok(&["commit", "-m", "a message", "-a", "me", &name, &format!("{name}:1")]);
    assert_eq!(ours, docker_ok(&["inspect", "--format", f, &format!("{name}:1")]));
    // Without -m the comment is empty (not the base's "Imported from -").
    env.ok(&["commit", "cm", "committed/img:2"]);
    assert_eq!(env.ok(&["inspect", "--format", "{{.Comment}}", "committed/img:2"]).trim(), "");
}

/// Regression: RepoDigests stayed empty after push and pull, and DIGEST showed the
/// store's own manifest digest.
#[test]
fn repo_digests_are_the_registrys_after_push_and_pull() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    let name = format!("{}/digests/app:1", reg.host());
    env.ok(&["tag", BASE, &name]);
    assert_eq!(env.ok(&["images", "--digests", "--format", "{{.Digest}}", &name]).trim(), "<none>");
    env.ok(&["push", "--format", "docker", "--compression", "gzip", &name]);
    let remote = sh_ok(&format!(
        "curl -sI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' http://{}/v2/digests/app/manifests/1 | tr -d '\\r' | awk -F': ' 'tolower($1)==\"docker-content-digest\" {{print $2}}'",
        reg.host()
    ));
    let remote = remote.trim();
    assert!(remote.starts_with("sha256:"), "{remote}");
    let want = format!("{}/digests/app@{remote}", reg.host());
    let digests = env.ok(&["inspect", "--format", "{{json .RepoDigests}}", &name]);
    assert_eq!(digests.trim(), format!("[\"{want}\"]"));
    assert_eq!(env.ok(&["images", "--digests", "--format", "{{.Digest}}", &name]).trim(), remote);
    let table = env.ok(&["images", "--digests", &name]);
    assert!(table.lines().next().unwrap().contains("DIGEST") && table.contains(remote), "{table}");
    let fresh = Env::new();
    fresh.ok(&["pull", &name]);
    assert_eq!(fresh.ok(&["inspect", "--format", "{{json .RepoDigests}}", &name]).trim(), format!("[\"{want}\"]"));
}

#[test]
fn image_and_history_templates_print_what_docker_prints() {
    let env = Env::with_base();
    for f in [
        "{{.Id}} {{.Os}}/{{.Architecture}} {{json .RootFS.Layers}} {{.Comment}}",
        "{{json .Config.Env}} {{.Config.Cmd}} {{.Config.Labels}} {{.Config.Labels.nope}} {{.Author}}",
        "{{range $i, $l := .RootFS.Layers}}{{$i}}:{{$l}} {{end}}",
        "{{json .RepoTags}} {{len .RepoDigests}}",
        // Go's template language itself, against docker's engine.
        "{{range $k, $v := .Config.Labels}}{{$k}}{{else}}none{{end}}",
        "{{if and .Id (not .Author)}}yes{{end}} {{printf \"%q\" .Os}} {{.Id | printf \"%.19s\"}}",
        "  {{- /* c */ -}}  x {{$x := 1}}{{if eq $x 1}}one{{end}}",
        "{{println .Os}}{{print 1 2 \"a\" 3}} {{printf \"%d items %v\" (len .RepoTags) .RepoTags}}",
        "{{json .RootFS}} {{.RootFS}} {{or .Author \"anon\"}} {{\"a\\tb\"}}",
        "{{html \"<a>\"}} {{js \"a'b\"}} {{urlquery \"a b&c\"}} {{slice .Os 1 3}}",
        "{{printf \"%5s|%-5s|%x\" \"a\" \"b\" 255}} {{.ContainerConfig.Cmd}} {{with $x := .Os}}{{$x}}{{end}}",
        "{{range $i, $e := .RepoTags}}{{if $i}},{{end}}{{$e}}{{end}} {{not 0}} {{and 1 0}} {{or 0 \"\"}}|",
        "{{.Architecture | upper | lower}} {{split .Id \":\"}} {{1e3}} {{0x10}} {{1.5}} {{-2}}",
        "{{.Size}} {{gt .Size 1000}}",
    ] {
        assert_eq!(env.ok(&["inspect", "--format", f, BASE]), docker_ok(&["inspect", "--format", f, BASE]), "{f}");
    }
    // Templates docker refuses, rbuild refuses too.
    for f in ["{{lt 1 2.5}}", "{{.Nope}}", "{{index .RootFS.Layers 0 | truncate 15}}", "{{if}}"] {
        assert!(!docker(&["inspect", "--format", f, BASE]).status.success(), "{f}");
        let o = env.run(&["inspect", "--format", f, BASE]);
        assert_eq!(o.status.code(), Some(1), "{f}");
        assert!(stderr(&o).contains("template"), "{f}: {}", stderr(&o));
    }
    let f = "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}";
    assert_eq!(env.ok(&["images", "--format", f, BASE]), docker_ok(&["images", "--format", f, BASE]));
    assert_eq!(
        env.ok(&["inspect", "--format", "{{.Size}}", BASE]),
        docker_ok(&["inspect", "--format", "{{.Size}}", BASE])
    );
    let f = "{{.ID}}|{{.CreatedBy}}|{{.Comment}}";
    assert_eq!(env.ok(&["history", "--format", f, BASE]), docker_ok(&["history", "--format", f, BASE]));
    assert_eq!(env.ok(&["history", "-q", BASE]), docker_ok(&["history", "-q", BASE]));
    let h = env.ok(&["history", BASE]);
    assert_eq!(
        h.lines().next().unwrap().split("   ").map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    );
    let images = env.ok(&["images"]);
    let theirs = docker_ok(&["images", BASE]);
    assert_eq!(images.lines().next(), theirs.lines().next(), "header");
    // json: one object per line.
    let v: serde_json::Value =
        serde_json::from_str(env.ok(&["images", "--format", "json"]).lines().next().unwrap()).unwrap();
    assert_eq!(v["Repository"], "rbuild-anchor/busybox");
}

#[test]
fn images_filters_and_all() {
    let env = Env::with_base();
    let ctx = env.path("ctx");
    context(&ctx, &[("Dockerfile", &format!("FROM {BASE}\nLABEL stage=test\nRUN true\n"))]);
    build(&env, &ctx, &["-t", "filt/labelled:1"]);
    let tar = env.path("d.tar");
    let root = env.path("droot");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("f"), "x").unwrap();
    sh_ok(&format!("tar -C {} -cf {} .", root.display(), tar.display()));
    let dangling = env.ok(&["import", tar.to_str().unwrap()]);
    let repos = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        a.extend_from_slice(args);
        sorted_lines(&env.ok(&a))
    };
    assert_eq!(repos(&["-f", "dangling=true"]), ["<none>:<none>"]);
    assert_eq!(env.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]).trim(), dangling.trim());
    assert_eq!(repos(&["-f", "dangling=false"]), ["filt/labelled:1", BASE]);
    assert_eq!(repos(&["-f", "label=stage=test"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "label=stage"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "reference=filt/*"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "since=rbuild-anchor/busybox:1", "-f", "dangling=false"]), ["filt/labelled:1"]);
    assert_eq!(repos(&["-f", "before=filt/labelled:1"]), [BASE]);
    assert!(!env.run(&["images", "-f", "colour=red"]).status.success());
    assert!(!env.run(&["images", "-f", "before=no/such:1"]).status.success());
    // The same rows (the CREATED column may cross a second between two calls).
    let ids = |a: &[&str]| env.ok(&[a, &["--format", "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}"]].concat());
    assert_eq!(ids(&["images", "-a"]), ids(&["images"]));
}

#[test]
fn search_lists_a_registrys_catalog_and_refuses_docker_hub() {
    require_root();
    let reg = RegistryServer::start(None);
    let env = Env::with_base();
    for n in ["search/alpha:1", "search/beta:1", "other/gamma:1"] {
        let name = format!("{}/{n}", reg.host());
        env.ok(&["tag", BASE, &name]);
        env.ok(&["push", "-q", &name]);
    }
    let s = env.ok(&["search", &format!("{}/search", reg.host())]);
    let rows: Vec<&str> = s.lines().collect();
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    );
    assert_eq!(rows.len(), 3, "{s}");
    assert!(rows[1].starts_with(&format!("{}/search/alpha", reg.host())), "{s}");
    assert_eq!(
        env.ok(&["search", "--limit", "1", "--format", "{{.Name}}", &format!("{}/a", reg.host())]).lines().count(),
        1
    );
    assert_eq!(env.ok(&["search", "-f", "is-official=true", &format!("{}/search", reg.host())]).lines().count(), 1);
    // Docker Hub is never asked (this test has no network): refused at once.
    let t = Instant::now();
    let o = env.run(&["search", "busybox"]);
    assert!(!o.status.success() && stderr(&o).contains("Docker Hub has no catalog"), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn login_prompts_warns_and_uses_credential_helpers() {
    require_root();
    let reg = RegistryServer::start(Some(("alice", "pa55word")));
    let env = Env::with_base();
    let cfg_dir = env.path("docker-config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let run = |args: &[&str], stdin: &str, path: Option<&std::path::Path>| {
        let mut c = env.cmd();
        c.env("DOCKER_CONFIG", &cfg_dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(p) = path {
            c.env("PATH", format!("{}:{}", p.display(), std::env::var("PATH").unwrap()));
        }
        let mut child = c.spawn().unwrap();
        // A command that refuses before it reads (no --username) closes the pipe early.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    };
    // No -u: docker's prompts on standard input.
    let o = run(&["login", &reg.host()], "alice\npa55word\n", None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Username: Password: ") && stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    assert!(stderr(&o).contains("stored unencrypted"), "{}", stderr(&o));
    // -p works and warns as docker does.
    let o = run(&["login", "-u", "alice", "-p", "pa55word", &reg.host()], "", None);
    assert!(o.status.success());
    assert!(stderr(&o).contains("WARNING! Using --password via the CLI is insecure. Use --password-stdin."));
    let o = run(&["login", "--password-stdin", &reg.host()], "pa55word\n", None);
    assert!(!o.status.success() && stderr(&o).contains("Must provide --username with --password-stdin"));
    run(&["logout", &reg.host()], "", None);

    // A credential helper (credsStore): docker's protocol, through a fake helper.
    let bin = env.path("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let store_file = env.path("helper-store");
    let script = format!(
        "#!/bin/sh\nread -r req || true\ncase \"$1\" in\nstore) printf '%s' \"$req\" > {f} ;;\nget) if [ -f {f} ]; then sed 's/\"ServerURL\":\"[^\"]*\",//' {f}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\nerase) rm -f {f} ;;\nesac\n",
        f = store_file.display()
    );
    let helper = bin.join("docker-credential-rbtest");
    std::fs::write(&helper, script).unwrap();
    sh_ok(&format!("chmod +x {}", helper.display()));
    std::fs::write(cfg_dir.join("config.json"), r#"{"credsStore":"rbtest"}"#).unwrap();
    let o = run(&["login", "-u", "alice", "--password-stdin", &reg.host()], "pa55word\n", Some(&bin));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("unencrypted"));
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&store_file).unwrap()).unwrap();
    assert_eq!(stored["ServerURL"], reg.host());
    assert_eq!(stored["Secret"], "pa55word");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cfg_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["auths"][reg.host()], serde_json::json!({}), "no password in config.json: {cfg}");
    let name = format!("{}/helped/app:1", reg.host());
    env.ok(&["tag", BASE, &name]);
    let o = run(&["push", &name], "", Some(&bin));
    assert!(o.status.success(), "push with the helper's credentials: {}", stderr(&o));
    let o = run(&["logout", &reg.host()], "", Some(&bin));
    assert!(o.status.success() && stdout(&o).contains("Removing login credentials"));
    assert!(!store_file.exists(), "logout did not erase the helper's credentials");
    let o = run(&["push", &name], "", Some(&bin));
    assert!(!o.status.success() && stderr(&o).contains("authentication required"), "{}", stderr(&o));
    // credHelpers names a helper per registry; one that is missing is a clear error.
    std::fs::write(cfg_dir.join("config.json"), format!(r#"{{"credHelpers":{{"{}":"nosuchhelper"}}}}"#, reg.host()))
        .unwrap();
    let o = run(&["push", &name], "", Some(&bin));
    assert!(!o.status.success() && stderr(&o).contains("docker-credential-nosuchhelper"), "{}", stderr(&o));
}
