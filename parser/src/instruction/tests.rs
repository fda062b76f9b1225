//! Unit tests of the instruction layer.

use super::*;
use crate::ast;

fn kind(src: &str) -> Result<Kind, Diagnostic> {
    from_node(&ast::parse(src).unwrap().nodes[0]).map(|i| i.kind)
}

#[test]
fn durations() {
    assert_eq!(parse_go_duration("5s"), Ok(5_000_000_000));
    assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
    assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
    assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
    assert_eq!(parse_go_duration("0"), Ok(0));
    assert!(parse_go_duration("5").is_err());
    assert!(parse_go_duration("5x").is_err());
}

#[test]
fn from_forms() {
    assert_eq!(
        kind("FROM --platform=linux/amd64 img:1 AS Build").unwrap(),
        Kind::From(FromArgs {
            image: "img:1".into(),
            name: Some("build".into()),
            platform: Some("linux/amd64".into())
        })
    );
    assert!(kind("FROM a b").is_err());
    assert!(kind("FROM a AS 1x").is_err());
}

#[test]
fn unknown_instruction_has_hint() {
    let e = kind("FORM x").unwrap_err();
    assert_eq!(e.message, "unknown instruction \"FORM\"");
    assert_eq!(e.hint.as_deref(), Some("did you mean FROM?"));
}

#[test]
fn copy_flags() {
    let Kind::Copy(c) = kind("COPY --from=b --chown=1:2 --exclude=*.md --exclude=x a b /d/").unwrap() else { panic!() };
    assert_eq!(c.sources, vec!["a", "b"]);
    assert_eq!((c.from.map(|f| f.name), c.chown.as_deref(), c.exclude.len()), (Some("b".into()), Some("1:2"), 2));
    assert!(kind("COPY --checksum=x a b").unwrap_err().message.starts_with("unknown flag: checksum"));
    assert!(kind("COPY --link=maybe a b").is_err());
    assert!(kind("COPY a").is_err());
}

#[test]
fn run_mounts() {
    let Kind::Run(r) = kind("RUN --mount=type=cache,target=/c,sharing=locked --network=none make").unwrap() else {
        panic!()
    };
    assert_eq!(r.mounts[0].typ, MountType::Cache);
    assert_eq!(r.mounts[0].sharing, Sharing::Locked);
    assert!(!r.mounts[0].read_only);
    assert_eq!(r.network, Some(NetworkMode::None));
    assert!(kind("RUN --mount=type=bind x").is_err());
    assert!(kind("RUN --network=bridge x").is_err());
}

/// The parser assembles a RUN's here-documents as BuildKit's frontend does.
#[test]
fn run_heredoc_scripts() {
    let run = |src: &str| match kind(src).unwrap() {
        Kind::Run(r) => r.script,
        _ => panic!(),
    };
    let sh = |s: &str| Some(Script::Shell(s.to_string()));
    assert_eq!(run("RUN <<EOF\necho a\necho b\nEOF\n"), sh("echo a\necho b\n"));
    assert_eq!(run("RUN <<-EOF\n\techo a\n\t\techo b\nEOF\n"), sh("echo a\necho b\n"));
    assert_eq!(run("RUN cat <<A > /a\nx\nA\n"), sh("cat <<A > /a\nx\nA"));
    assert_eq!(
        run("RUN <<EOF\n#!/bin/sh\necho $0\nEOF\n"),
        Some(Script::File { name: "EOF".into(), content: "#!/bin/sh\necho $0\n".into() })
    );
    assert_eq!(run("RUN echo plain"), None);
    assert_eq!(run("RUN [\"echo\", \"x\"]"), None);
}

/// Secret and ssh mounts take their ids and targets as BuildKit's frontend does; sizes
/// have docker's units.
#[test]
fn secret_ssh_and_tmpfs_mounts() {
    let mount = |spec: &str| match kind(&format!("RUN --mount={spec} true")) {
        Ok(Kind::Run(r)) => Ok(r.mounts[0].clone()),
        Ok(_) => panic!(),
        Err(e) => Err(e.message),
    };
    let m = mount("type=secret,id=tok").unwrap();
    assert_eq!((m.id.as_deref(), m.target.as_str(), m.read_only), (Some("tok"), "", true));
    assert_eq!(mount("type=secret,target=/etc/app/api.key").unwrap().id.as_deref(), Some("api.key"));
    assert_eq!(mount("type=secret,src=aws,id=x").unwrap().id.as_deref(), Some("aws"));
    assert_eq!(mount("type=secret,id=t,env=TOKEN").unwrap().env.as_deref(), Some("TOKEN"));
    assert!(mount("type=secret").unwrap_err().contains("one of source, target required"));
    assert_eq!(mount("type=ssh").unwrap().id.as_deref(), Some("default"));
    assert!(mount("type=ssh,source=x").unwrap_err().contains("ssh does not support source"));
    assert_eq!(mount("type=tmpfs,target=/t,size=64m").unwrap().size, Some(64 << 20));
    assert_eq!(mount("type=tmpfs,target=/t,size=1048576").unwrap().size, Some(1 << 20));
    assert!(mount("type=tmpfs,target=/t,size=lots").is_err());
    assert!(mount("type=bogus,target=/x").unwrap_err().contains("unsupported mount type"));
}

#[test]
fn add_flags() {
    let Kind::Add(a) = kind("ADD --unpack=true --keep-git-dir https://x/a.tgz /d/").unwrap() else { panic!() };
    assert_eq!((a.unpack, a.keep_git_dir), (Some(true), true));
    assert!(kind("COPY --unpack a b").is_err());
    let Kind::Copy(c) = kind("COPY --parents --link a/./b /d/").unwrap() else { panic!() };
    assert!(c.parents && c.link);
}

#[test]
fn healthcheck() {
    let Kind::Healthcheck(Healthcheck::Cmd(h)) = kind("HEALTHCHECK --interval=5s --retries=2 CMD [\"true\"]").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (h.test.clone(), h.interval, h.retries),
        (vec!["CMD".to_string(), "true".to_string()], 5_000_000_000, 2)
    );
    assert!(kind("HEALTHCHECK --interval=1us CMD x").is_err());
    assert_eq!(kind("HEALTHCHECK NONE").unwrap(), Kind::Healthcheck(Healthcheck::None));
}

#[test]
fn onbuild_rules() {
    assert!(kind("ONBUILD ONBUILD RUN x").is_err());
    assert!(kind("ONBUILD FROM x").is_err());
    assert!(kind("ONBUILD MAINTAINER x").is_err());
    let Kind::Onbuild(o) = kind("onbuild run echo hi").unwrap() else { panic!() };
    assert_eq!((o.expression.as_str(), o.trigger.as_str()), ("run echo hi", "RUN"));
}

#[test]
fn key_value_forms() {
    let Kind::Env { pairs } = kind("ENV A=1 B=\"two words\"").unwrap() else { panic!() };
    assert_eq!(pairs[1], KeyValue { key: "B".into(), value: "\"two words\"".into(), legacy: false });
    let Kind::Env { pairs } = kind("ENV C 3 4").unwrap() else { panic!() };
    assert_eq!(pairs[0], KeyValue { key: "C".into(), value: "3 4".into(), legacy: true });
    assert!(kind("ENV =x").is_err());
}

/// Every error of the instruction layer in BuildKit's words (and a "did you mean" hint
/// where one helps): a table, so that a change of wording shows here.
#[test]
fn errors_keep_buildkits_words() {
    for (src, message, hint) in [
        ("FORM x", "unknown instruction \"FORM\"", Some("did you mean FROM?")),
        ("FROM --plat=x a", "unknown flag: plat", None),
        ("FROM --platform a", "missing a value on flag: platform", None),
        ("FROM a b", "FROM requires either one or three arguments", None),
        (
            "FROM a AS 1x",
            "invalid name for build stage: \"1x\", name can't start with a number or contain symbols",
            None,
        ),
        ("FROM --platform=x --platform=y a", "duplicate flag specified: platform", None),
        ("FROM x y", "FROM requires either one or three arguments", None),
        (
            "COPY a",
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
            None,
        ),
        (
            "ADD a",
            "ADD requires at least two arguments, but only one was provided. Destination could not be determined",
            None,
        ),
        ("COPY a <<EOF", "unterminated heredoc", None),
        ("COPY --chown a b", "missing a value on flag: chown", None),
        ("COPY --link=maybe a b", "expecting boolean value for flag link, not: maybe", None),
        ("COPY --link= a b", "missing a value on flag: link", None),
        ("COPY --checksum=x a b", "unknown flag: checksum", None),
        ("COPY --chmod=1 --chmod=2 a b", "duplicate flag specified: chmod", None),
        ("COPY --froom=x a b", "unknown flag: froom", Some("did you mean from?")),
        ("RUN --network=bridge x", "unsupported network mode \"bridge\"", None),
        ("RUN --security=x x", "unsupported security mode \"x\"", None),
        ("RUN --mount=type=bind x", "mount destination/target missing", None),
        ("RUN --mount=type=bogus,target=/x x", "unsupported mount type \"bogus\"", None),
        ("RUN --mount=type=cache,target=/c,sharing=x x", "unsupported sharing value \"x\"", None),
        ("RUN --mount=type=cache,target=/c,mode=9z x", "invalid value for mode: 9z", None),
        ("RUN --mount=type=cache,target=/c,uid=x x", "invalid value for uid: x", None),
        ("RUN --mount=type=cache,target=/c,ro=maybe x", "invalid value for ro: maybe", None),
        ("RUN --mount=type=tmpfs,target=/t,size=lots x", "invalid value for size: size=lots", None),
        ("RUN --mount=type=cache,target=/c,bogus=1 x", "unexpected key 'bogus' in 'bogus=1'", None),
        ("RUN --mount=type=cache,target x", "invalid field 'target' must be a key=value pair", None),
        ("RUN --mount=type=secret x", "one of source, target required", None),
        ("RUN --mount=type=ssh,source=x x", "ssh does not support source", None),
        ("RUN --mount=type=cache,target=/c,from x", "invalid field 'from' must be a key=value pair", None),
        ("RUN --mount='\"'target=/c x", "extraneous or missing \" in quoted-field: \"target=/c", None),
        ("ONBUILD COPY --fron=a b c", "unknown flag: fron", Some("did you mean from?")),
        ("CMD --x y", "unknown flag: x", None),
        ("ENTRYPOINT --x y", "unknown flag: x", None),
        ("SHELL", "SHELL requires at least one argument", None),
        ("SHELL sh -c", "SHELL requires the arguments to be in JSON form", None),
        ("SHELL --x [\"a\"]", "unknown flag: x", None),
        ("ENV", "ENV requires at least one argument", None),
        ("ENV =x", "ENV names can not be blank", None),
        ("ENV --x a=b", "unknown flag: x", None),
        ("LABEL", "LABEL requires at least one argument", None),
        ("LABEL =x", "LABEL names can not be blank", None),
        ("MAINTAINER", "MAINTAINER requires exactly one argument", None),
        ("MAINTAINER --x a", "unknown flag: x", None),
        ("EXPOSE", "EXPOSE requires at least one argument", None),
        ("EXPOSE --x 80", "unknown flag: x", None),
        ("VOLUME", "VOLUME requires at least one argument", None),
        ("VOLUME [\"\"]", "VOLUME specified can not be an empty string", None),
        ("VOLUME --x /a", "unknown flag: x", None),
        ("USER", "USER requires exactly one argument", None),
        ("WORKDIR", "WORKDIR requires exactly one argument", None),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument", None),
        ("ARG", "ARG requires at least one argument", None),
        ("ARG =x", "ARG names can not be blank", None),
        ("ARG --x a", "unknown flag: x", None),
        ("ONBUILD", "ONBUILD requires at least one argument", None),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", None),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger", None),
        ("ONBUILD MAINTAINER x", "MAINTAINER isn't allowed as an ONBUILD trigger", None),
        ("ONBUILD FORM x", "unknown instruction \"FORM\"", Some("did you mean FROM?")),
        ("ONBUILD --x RUN x", "unknown flag: x", None),
        ("ONBUILD COPY --bogs a b", "unknown flag: bogs", None),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument", None),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments", None),
        ("HEALTHCHECK BOGUS x", "Unknown type \"BOGUS\" in HEALTHCHECK (try CMD)", None),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD", None),
        ("HEALTHCHECK --interval=1us CMD x", "Interval \"interval\" cannot be less than 1ms", None),
        ("HEALTHCHECK --interval=5 CMD x", "time: missing unit in duration \"5\"", None),
        ("HEALTHCHECK --interval=5x CMD x", "time: unknown unit \"x\" in duration \"5x\"", None),
        ("HEALTHCHECK --interval=x CMD x", "time: invalid duration \"x\"", None),
        ("HEALTHCHECK --timeout=. CMD x", "time: invalid duration \".\"", None),
        ("HEALTHCHECK --retries=x CMD x", "strconv.ParseInt: parsing \"x\": invalid syntax", None),
        (
            "HEALTHCHECK --retries=99999999999 CMD x",
            "strconv.ParseInt: parsing \"99999999999\": value out of range",
            None,
        ),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)", None),
        ("HEALTHCHECK --intervall=1s CMD x", "unknown flag: intervall", Some("did you mean interval?")),
        ("HEALTHCHECK --start-period=-5s CMD x", "Interval \"start-period\" cannot be less than 1ms", None),
    ] {
        let e = crate::ast::parse(src).and_then(|a| from_node(&a.nodes[0])).unwrap_err();
        assert_eq!((e.message.as_str(), e.hint.as_deref()), (message, hint), "{src:?}");
    }
}
