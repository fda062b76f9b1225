"""Multi-stage builds: COPY --from by index, name and image, --target, stage configs,
scratch resets, ownership of what is copied between stages (moby: TestBuildMultiStage*,
TestBuildIntermediateTarget, TestBuildMultiStageCopy, TestBuildPreserveOwnership,
TestBuildMultiStageParentConfig, TestBuildMultiStageLayerLeak, TestBuildCopyFrom*)."""
from .core import case

COPY_TARGETS = r"""
FROM @B@ AS base
RUN mkdir existingdir
FROM base AS source
RUN echo "Hello World" > /hello
FROM base AS copy_to_root
COPY --from=source /hello /hello
FROM base AS copy_to_newdir
COPY --from=source /hello /newdir/hello
FROM base AS copy_to_newdir_nested
COPY --from=source /hello /newdir/newsubdir/hello
FROM base AS copy_to_existingdir
COPY --from=source /hello /existingdir/hello
FROM base AS copy_to_newsubdir
COPY --from=source /hello /existingdir/newsubdir/hello
"""

OWNERSHIP = r"""
FROM @B@ AS source
RUN touch /file && chown 100:200 /file \
 && mkdir -p /dir/subdir \
 && touch /dir/subdir/nestedfile \
 && chown 100:200 /dir \
 && chown 101:201 /dir/subdir \
 && chown 102:202 /dir/subdir/nestedfile
FROM @B@ AS test_base
RUN mkdir -p /existingdir/existingsubdir \
 && touch /existingdir/existingfile \
 && chown 500:600 /existingdir \
 && chown 501:601 /existingdir/existingsubdir \
 && chown 501:601 /existingdir/existingfile
FROM test_base AS copy_from
COPY --from=source /file .
COPY --from=source /dir /dir
COPY --from=source /dir/. /existingdir
FROM test_base AS copy_from_chowned
COPY --from=source --chown=300:400 /file .
COPY --from=source --chown=300:400 /dir /dir
COPY --from=source --chown=300:400 /dir/. /existingdir
"""


def register():
    copy_from()
    targets()
    configs()
    errors()


def copy_from():
    case("stage-copy-from-forms", r"""
FROM @B@ AS first
COPY foo bar
FROM @B@
COPY baz baz
RUN echo mno > baz/cc
FROM @B@
COPY bar /
COPY --from=1 baz sub/
COPY --from=0 bar baz
COPY --from=first bar bay
""", {"foo": "abc", "bar": "def", "baz/aa": "ghi", "baz/bb": "jkl"},
         checks=["cat /bar /sub/aa /sub/cc /baz /bay"])
    case("stage-from-built-image", r"""
FROM @BASE@ AS foo
FROM @B@
COPY --from=foo bar /
COPY foo /
""", {"foo": "def"}, base="FROM @B@\nCOPY foo bar\n", base_files={"foo": "abc"},
         checks=["cat /bar /foo"])
    case("stage-copy-from-image-name", r"""
FROM @B@
COPY --from=@B@ /etc/passwd /mypasswd
RUN cmp /etc/passwd /mypasswd
""")
    case("stage-name-case-variants", r"""
FROM @B@ as foo
COPY foo /
FROM foo as foo1
RUN echo 1 >> foo
FROM foo as foO2
RUN echo 2 >> foo
FROM foo
COPY --from=foo1 foo f1
COPY --from=FOo2 foo f2
""", {"foo": "bar"}, checks=["cat /foo /f1 /f2"])
    case("stage-layer-leak", r"""
FROM @B@
WORKDIR /foo
COPY foo .
FROM @B@
WORKDIR /foo
COPY bar .
RUN [ -f bar ]
RUN [ ! -f foo ]
""", {"foo": "0", "bar": "1"})
    case("stage-same-steps-twice", r"""
FROM @B@
ADD baz /
FROM @B@
ADD baz /
""", {"baz": "baz"})
    case("stage-copy-dir-from-stage", r"""
FROM @B@ AS build
RUN mkdir -p /out/bin /out/share && echo x > /out/bin/tool && chmod 755 /out/bin/tool \
 && ln -s bin/tool /out/tool-link && echo doc > /out/share/doc
FROM @B@
COPY --from=build /out /opt/
COPY --from=build /out/bin/tool /usr/local/bin/
COPY --from=build /out/tool-link /just-the-link
""")
    case("stage-copy-from-scratch-stage", r"""
FROM scratch AS files
COPY a /a
COPY dir /dir
FROM @B@
COPY --from=files / /fromscratch/
""", {"a": "a", "dir/b": "b"})
    case("stage-copy-from-wildcard", r"""
FROM @B@ AS src
RUN mkdir /src && touch /src/a.txt /src/b.txt /src/c.log
FROM @B@
COPY --from=src /src/*.txt /dst/
""")
    for t in ("copy_to_root", "copy_to_newdir", "copy_to_newdir_nested", "copy_to_existingdir",
              "copy_to_newsubdir"):
        case(f"stage-target-{t.replace('_', '-')}", COPY_TARGETS, flags=["--target", t])
    for t in ("copy_from", "copy_from_chowned"):
        case(f"stage-ownership-{t.replace('_', '-')}", OWNERSHIP, flags=["--target", t])


def targets():
    two = r"""
FROM @B@ AS build-env
CMD ["/dev"]
FROM @B@
CMD ["/dist"]
"""
    case("stage-target-named", two, flags=["--target", "build-env"])
    case("stage-target-name-case", two, flags=["--target", "BUIld-EnV"])
    case("stage-target-missing", two, flags=["--target", "nosuchtarget"], fail=True)
    case("stage-target-skips-later-failure", r"""
FROM @B@ AS good
RUN echo good > /good
FROM @B@ AS bad
RUN exit 1
""", flags=["--target", "good"])


def configs():
    case("stage-parent-config", r"""
FROM @B@ AS stage0
ENV WHO=parent
WORKDIR /foo
FROM stage0
ENV WHO=sibling1
WORKDIR sub1
FROM stage0
WORKDIR sub2
""")
    case("stage-scratch-resets-config", r"""
FROM @B@
WORKDIR /foo/bar
FROM scratch
ENV FOO=bar
""")
    case("stage-two-envs-last-wins", r"""
FROM @B@ AS stage1
ENV FOO FOO1
FROM @B@
ENV BAR BAZ
""")
    case("scratch-add-then-env", r"""
FROM scratch
ADD Dockerfile /
ENV foo bar
""")
    case("cache-from-built-image", r"""
FROM @B@
ENV FOO=bar
ADD baz /
RUN touch bax
""", {"baz": "baz"}, base="FROM @B@\nENV FOO=bar\nADD baz /\nRUN touch bax\n", base_files={"baz": "baz"},
         flags=["--cache-from", "cache-from-built-image-base"])
    case("stage-from-stage-keeps-layers", r"""
FROM @B@ AS one
RUN echo 1 > /one
FROM one AS two
RUN echo 2 > /two
FROM two
RUN cat /one /two > /both
""")


def errors():
    case("stage-copy-from-unknown", "FROM @B@\nCOPY --from=nosuchstage foo bar\n", {"foo": "abc"},
         fail=True)
    case("stage-copy-from-self", "FROM @B@\nCOPY --from=0 foo bar\n", {"foo": "abc"}, fail=True)
    case("stage-copy-from-unknown-named", "FROM @B@ AS foo\nCOPY --from=bar foo bar\n",
         {"foo": "abc"}, fail=True)
    case("stage-numeric-name", "FROM @B@ AS 1\nCOPY --from=1 foo bar\n", {"foo": "abc"},
         fail=True)
    case("stage-duplicate-name", "FROM @B@ AS x\nFROM @B@ AS x\n", fail=True)
