""".dockerignore and which file is the Dockerfile (moby: TestBuildDockerignore*,
TestBuildDockerignoring*, TestBuildDockerfileStdin*, TestBuildFromMixedcaseDockerfile,
TestBuildWithUTF8BOMDockerignore, TestBuildDotDotFile)."""
from .core import B, case, D, F

TREE = {"Makefile": "all:", ".git/HEAD": "ref: foo", "src/x.go": "package main",
        "src/_vendor/v.go": "package main", "src/_vendor/v.cc": "package main",
        "src/v.cc": "package main", "v.cc": "package main", "dir/foo": "",
        ".gitignore": "", "README.md": "readme"}


def register():
    patterns()
    wild()
    dockerfiles()


def patterns():
    case("ignore-basic", r"""
FROM @B@
ADD . /bla
RUN sh -c "[[ -f /bla/src/x.go ]]"
RUN sh -c "[[ -f /bla/Makefile ]]"
RUN sh -c "[[ ! -e /bla/src/_vendor ]]"
RUN sh -c "[[ ! -e /bla/.gitignore ]]"
RUN sh -c "[[ ! -e /bla/README.md ]]"
RUN sh -c "[[ ! -e /bla/dir/foo ]]"
RUN sh -c "[[ ! -e /bla/.git ]]"
RUN sh -c "[[ ! -e /bla/v.cc ]]"
RUN sh -c "[[ ! -e /bla/src/v.cc ]]"
""", TREE, ignore=".git\npkg\n.gitignore\nsrc/_vendor\n*.md\n**/*.cc\ndir\n")
    case("ignore-clean-paths", r"""
FROM @B@
ADD . /tmp/
RUN sh -c "(! ls /tmp/foo) && (! ls /tmp/foo2) && (! ls /tmp/dir1/foo)"
""", {"foo": "foo", "foo2": "foo2", "dir1/foo": "foo in dir1"},
         ignore="./foo\ndir1//foo\n./dir1/../foo2")
    exc = dict(TREE)
    exc.update({"dir/foo1": "", "dir/dir/f1": "", "dir/dir/foo": "", "dir/e": "",
                "dir/e-dir/foo": "", "dir/a.cc": "hello"})
    case("ignore-exceptions", r"""
FROM @B@
ADD . /bla
RUN sh -c "[[ -f /bla/src/x.go ]]"
RUN sh -c "[[ ! -e /bla/src/_vendor ]]"
RUN sh -c "[[  -e /bla/dir/dir/foo ]]"
RUN sh -c "[[ ! -e /bla/dir/foo1 ]]"
RUN sh -c "[[ -f /bla/dir/e ]]"
RUN sh -c "[[ -f /bla/dir/e-dir/foo ]]"
RUN sh -c "[[ -e /bla/dir/a.cc ]]"
""", exc, ignore=".git\npkg\n.gitignore\nsrc/_vendor\n*.md\ndir\n!dir/e*\n!dir/dir/foo\n**/*.cc\n!**/*.cc\n")
    case("ignore-comments", r"""
FROM @B@
ADD . /tmp/
RUN sh -c "(ls -la /tmp/#1)"
RUN sh -c "(! ls -la /tmp/#2)"
RUN sh -c "(! ls /tmp/foo) && (! ls /tmp/foo2) && (ls /tmp/dir1/foo)"
""", {"foo": "foo", "foo2": "foo2", "dir1/foo": "foo in dir1", "#1": "# file 1", "#2": "# file 2"},
         ignore="# a comment line\n# another\nfoo\n#dir1/foo\nfoo2\n#1\n  #2\n")
    case("ignore-utf8-bom", r"""
FROM @B@
ADD . /tmp/
RUN sh -c "! ls /tmp/Dockerfile"
RUN ls /tmp/.dockerignore
""", ignore=b"\xef\xbb\xbf./Dockerfile\n")
    case("ignore-bad-exclusion", "FROM @B@\nCOPY . /\n", {"Makefile": "all:"}, ignore="!\n",
         fail=True)
    case("ignore-unreadable-but-ignored", "FROM @B@\nADD . /foo/\n",
         {"locked": D(0o000), "locked/bar": F("foo", 0o700), "visible": "v"}, ignore="locked\n")
    case("ignore-exclude-then-reinclude-dir", r"""
FROM @B@
COPY . /c/
""", {"keep/a": "a", "keep/b/c": "c", "drop/x": "x", "drop/keep-me": "k"},
         ignore="*\n!keep\n!drop/keep-me\n")
    case("ignore-trailing-slash-and-spaces", r"""
FROM @B@
COPY . /c/
""", {"build/out": "o", "cache/x": "x", "spaced": "s", "logs/1.log": "1", "logs/keep.txt": "k"},
         ignore="build/\n  cache  \nlogs/*.log\n")
    case("ignore-copy-named-ignored-file", r"""
FROM @B@
COPY secret.txt /s
""", {"secret.txt": "s"}, ignore="secret.txt\n", fail=True)
    case("ignore-dot-dot-file", "FROM @B@\n", {"..gitme": ""})
    # the examples of docker's .dockerignore reference
    case("ignore-reference-examples", "FROM @B@\nCOPY . /c/\n",
         {"somedir/temporary.txt": "", "somedir/keep.txt": "", "somedir/sub/temp.txt": "",
          "temp": "", "temp1": "", "tempx/f": "", "a/b/c.log": "", "x.log": "", "abs/f": "",
          "docs/README.md": "", "docs/a.md": "", "README-secret.md": "", "README.md": ""},
         ignore="# comment\n*/temp*\n*/*/temp*\ntemp?\n**/*.log\n/abs\n*.md\n!README*.md\n"
                "README-secret.md\n")


def wild():
    for i, variant in enumerate(["**", "**/", "**/**", "*"]):
        case(f"ignore-wild-top-{i + 1}", r"""
FROM @B@
COPY . /
RUN sh -c "[[ ! -e /.dockerignore ]]"
RUN sh -c "[[ ! -e /Dockerfile ]]"
RUN sh -c "[[ ! -e /file1 ]]"
RUN sh -c "[[ ! -e /dir ]]"
""", {"file1": "", "dir/file1": ""}, ignore=variant)
    case("ignore-whole-dir", r"""
FROM @B@
COPY . /
RUN sh -c "[[ ! -e /.gitignore ]]"
RUN sh -c "[[ ! -e /Makefile ]]"
""", {"Makefile": "all:", ".gitignore": ""}, ignore="*\n")
    case("ignore-only-dotfiles", r"""
FROM @B@
COPY . /
RUN sh -c "[[ ! -e /.gitignore ]]"
RUN sh -c "[[ -f /Makefile ]]"
""", {"Makefile": "all:", ".gitignore": ""}, ignore=".*")
    names = ["dir1/file0", "dir1/dir2/file0", "file1", "dir1/file1", "dir1/dir2/file1",
             "dir1/file2", "dir1/dir2/file2", "dir1/dir2/file4", "dir1/dir2/file5",
             "dir1/dir2/file6", "dir1/dir3/file7", "dir1/dir3/file8", "dir1/dir4/file9",
             "dir1/dir5/fileAA", "dir1/dir5/fileAB", "dir1/dir5/fileB"]
    case("ignore-wild-dirs", r"""
FROM @B@
COPY . /
RUN sh -c "[[ -e /Dockerfile ]]           && \
           [[ ! -e /dir1/file0 ]]         && \
           [[ ! -e /dir1/dir2/file0 ]]    && \
           [[ ! -e /file1 ]]              && \
           [[ ! -e /dir1/file1 ]]         && \
           [[ ! -e /dir1/dir2/file1 ]]    && \
           [[ ! -e /dir1/file2 ]]         && \
           [[   -e /dir1/dir2/file2 ]]    && \
           [[ ! -e /dir1/dir2/file4 ]]    && \
           [[ ! -e /dir1/dir2/file5 ]]    && \
           [[ ! -e /dir1/dir2/file6 ]]    && \
           [[ ! -e /dir1/dir3/file7 ]]    && \
           [[ ! -e /dir1/dir3/file8 ]]    && \
           [[   -e /dir1/dir3 ]]          && \
           [[   -e /dir1/dir4 ]]          && \
           [[ ! -e 'dir1/dir5/fileAA' ]]  && \
           [[   -e 'dir1/dir5/fileAB' ]]  && \
           [[   -e 'dir1/dir5/fileB' ]]"
""", {n: "" for n in names}, ignore="""
**/file0
**/*file1
**/dir1/file2
dir1/**/file4
**/dir2/file5
**/dir1/dir2/file6
dir1/dir3/**
**/dir4/**
**/file?A
**/file\\?B
**/dir5/file.
""")


def dockerfiles():
    for i, pat in enumerate(["Dockerfile\n", "./Dockerfile\n"]):
        case(f"ignore-the-dockerfile-{i + 1}", r"""
FROM @B@
ADD . /tmp/
RUN sh -c "! ls /tmp/Dockerfile"
RUN ls /tmp/.dockerignore
""", ignore=pat)
    renamed = r"""
FROM @B@
ADD . /tmp/
RUN ls /tmp/Dockerfile
RUN sh -c "! ls /tmp/MyDockerfile"
RUN ls /tmp/.dockerignore
"""
    for i, pat in enumerate(["MyDockerfile\n", "./MyDockerfile\n"]):
        case(f"ignore-renamed-dockerfile-{i + 1}", renamed, {"Dockerfile": "Should not use me"},
             ignore=pat, dockerfile_name="MyDockerfile",
             flags=["-f", "{case}/MyDockerfile"])
    case("ignore-the-dockerignore", r"""
FROM @B@
ADD . /tmp/
RUN sh -c "! ls /tmp/.dockerignore"
RUN ls /tmp/Dockerfile
""", ignore=".dockerignore\n")
    outside = "FROM @B@\nCOPY . /baz\n"
    case("dockerfile-outside-context", outside, {"foo": "bar"}, outside=True,
         checks=["ls -A /baz"])
    # docker's CLI sends a Dockerfile from outside the context under a random name and
    # appends that name to the context's .dockerignore: its content is not comparable
    case("dockerfile-outside-ignored-inside", outside, {"foo": "bar", "Dockerfile": ""},
         ignore="Dockerfile\n", outside=True, checks=["ls -A /baz"],
         ignore_content=["baz/.dockerignore"])
    case("dockerfile-outside-ignore-both", outside, {"foo": "bar", "Dockerfile": ""},
         ignore="Dockerfile\n.dockerignore\n", outside=True, checks=["ls -A /baz"])
    case("dockerfile-lowercase-only", "FROM @B@\nRUN echo from-dockerfile > /which\n",
         dockerfile_name="dockerfile")
    case("dockerfile-both-cases", "FROM @B@\nRUN echo from-Dockerfile > /which\n",
         {"dockerfile": f"FROM {B}\nRUN echo from-lower > /which\n"})
