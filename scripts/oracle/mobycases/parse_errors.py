"""Parsing (directives, continuations, comments, byte order marks, line ends) and the
errors docker raises for a bad Dockerfile or a failing step (moby: TestBuildLineBreak,
TestBuildEOLInLine, TestBuildCommentsShebangs, TestBuildWithUTF8BOM, TestBuildMissingArgs,
TestBuildBlankName, TestBuildLineError*, TestBuildEmptyScratch, TestBuildWithEmptyDockerfile,
TestBuildFails, TestBuildRUNErrMsg, TestBuildForceRm, TestBuildAddFileNotFound,
TestBuildNetNone, TestBuildSpaces, TestBuildWithFailure)."""
from .core import case

# instructions that need an argument (moby's TestBuildMissingArgs skips CMD, RUN, ENTRYPOINT)
NEED_ARGS = ["ADD", "ARG", "COPY", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "MAINTAINER",
             "ONBUILD", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"]


def register():
    parsing()
    directives()
    missing_args()
    bad_files()
    failing_steps()


def parsing():
    case("parse-line-break", r"""
FROM  @B@
RUN    sh -c 'echo root:testpass \
	> /tmp/passwd'
RUN    mkdir -p /var/run/sshd
RUN    sh -c "[ "$(cat /tmp/passwd)" = "root:testpass" ]"
RUN    sh -c "[ "$(ls -d /var/run/sshd)" = "/var/run/sshd" ]"
""")
    case("parse-eol-in-line", r"""
FROM   @B@
RUN    sh -c 'echo root:testpass > /tmp/passwd'
RUN    echo "foo \n bar"; echo "baz"
RUN    mkdir -p /var/run/sshd
RUN    sh -c "[ "$(cat /tmp/passwd)" = "root:testpass" ]"
""")
    case("parse-comments-shebang", r"""
FROM @B@
# This is an ordinary comment.
RUN { echo '#!/bin/sh'; echo 'echo hello world'; } > /hello.sh
RUN [ ! -x /hello.sh ]
# comment with line break \
RUN chmod +x /hello.sh
RUN [ -x /hello.sh ]
RUN [ "$(cat /hello.sh)" = $'#!/bin/sh\necho hello world' ]
RUN [ "$(/hello.sh)" = "hello world" ]
""")
    case("parse-comments-inside-continuation", r"""
FROM @B@
RUN echo one \
# a comment in the middle
    two \

    three > /joined
""")
    case("parse-utf8-bom", b"\xef\xbb\xbfFROM rbuild-anchor/busybox:1\nRUN echo bom > /bom\n")
    case("parse-crlf", b"FROM rbuild-anchor/busybox:1\r\nRUN echo crlf > /crlf\r\nENV K=v\r\n"
         b"CMD [\"echo\", \"x\"]\r\n")
    case("parse-lowercase-instructions", r"""
from @B@
env lower=case
run echo $lower > /lower
workdir /wd
cmd ["true"]
""")
    case("parse-leading-whitespace", "   FROM @B@\n\t\tRUN echo indented > /i\n   \n  LABEL a=b\n")
    case("parse-empty-continuation-end", "FROM @B@\nRUN echo end > /end \\\n")
    case("parse-json-whitespace", 'FROM @B@\nRUN    [   "sh" ,  "-c",   "echo spaced > /s"   ]   \n')
    case("parse-run-backslash-words", r"""
FROM @B@
RUN echo a\ b "c\"d" 'e\f' > /words
""")


def directives():
    case("parse-escape-backtick", "# escape=`\nFROM @B@\nRUN echo one `\n    two > /bt\n"
         "ENV WINPATH=c:\\dir\\sub\nRUN echo \"$WINPATH\" > /wp\n")
    case("parse-escape-directive-late", "# a comment first\n# escape=`\nFROM @B@\n"
         "RUN echo a \\\n  b > /late\n")
    case("parse-escape-invalid", "# escape=x\nFROM @B@\n", fail=True)
    case("parse-escape-spaced-directive", "#   escape  =  `\nFROM @B@\nRUN echo x `\n y > /sp\n")
    # a blank line ends the directives (the builder sees bytes, not stripped text)
    case("parse-directive-after-blank", b"\n# escape=`\nFROM rbuild-anchor/busybox:1\n"
         b"RUN echo x `\n y > /bl\n", fail=True)
    case("parse-directive-indented", "  # escape=`\nFROM @B@\nRUN echo x `\n y > /bl\n")
    case("parse-escape-in-copy", "# escape=`\nFROM @B@\nCOPY [\"sp ace\", \"/d`\"q\"]\n",
         {"sp ace": "x"}, fail=True)
    case("parse-escape-in-copy-json", "# escape=`\nFROM @B@\nCOPY [\"sp ace\", \"/d\\\\q\"]\n",
         {"sp ace": "x"})
    # an unknown directive is a comment, and a comment ends the directives
    case("parse-unknown-directive", "# nonsense=value\n# escape=`\nFROM @B@\nRUN echo a `\n b > /u\n",
         fail=True)


def missing_args():
    for ins in NEED_ARGS:
        case(f"missing-args-{ins.lower()}", f"FROM @B@\n{ins}\n", fail=True)
    case("missing-args-from", "FROM\n", fail=True)
    for expr, tag in (("ENV =", "env"), ("LABEL =", "label"), ("ARG =foo", "arg")):
        case(f"blank-name-{tag}", f"FROM @B@\n{expr}\n", fail=True)
    case("env-missing-value-old-form", "FROM @B@\nENV ONLYNAME\n", fail=True)
    for i, text in enumerate(["FROM @B@\nCOPY\n", "FROM @B@\nCOPY    ", "FROM @B@\n   COPY",
                              "FROM @B@\n   COPY    "]):
        case(f"copy-spaces-{i + 1}", text, fail=True)


def bad_files():
    case("unknown-instruction", "FROM @B@\nRUN echo hello world\nNOINSTRUCTION echo ba\n"
         "RUN echo hello\nERROR\n", fail=True)
    case("unknown-instruction-after-blanks",
         "\nFROM @B@\n\nRUN echo hello world\n\nNOINSTRUCTION echo ba\n\nCMD [\"/bin/init\"]\n",
         fail=True)
    case("unknown-instruction-after-comments",
         "FROM @B@\n# This will print hello world\n# and then ba\nRUN echo hello world\n"
         "NOINSTRUCTION echo ba\n", fail=True)
    case("typo-from", "FFOM nobody\nRUN nobody\n", fail=True)
    case("no-from-first", "RUN whoami\n", fail=True)
    case("only-from-scratch", "FROM scratch\n", fail=True)
    case("empty-dockerfile", "", fail=True)
    case("blank-lines-dockerfile", "\n\n\n\t\t\t\n", fail=True)
    case("comment-only-dockerfile", "# this is a comment", fail=True)
    case("from-only-busybox", "FROM @B@\n")
    case("from-image-with-digest-like-tag", "FROM @B@ AS Upper\nRUN true\n")
    case("from-unknown-flag", "FROM --wat=1 @B@\n", fail=True)
    case("copy-unknown-flag", "FROM @B@\nCOPY --wat=1 a /a\n", {"a": "a"}, fail=True)
    case("add-file-not-found", "FROM @B@\nADD missing /usr/local/bar\n", {"bar": "hello"},
         fail=True)


def failing_steps():
    case("run-fails-with-force-rm", "FROM @B@\nRUN true\nRUN thiswillfail\n", flags=["--force-rm"],
         fail=True)
    for i, flags in enumerate([["--rm"], ["--rm=false"], ["--force-rm"]]):
        case(f"build-rm-flags-{i + 1}", "FROM @B@\nRUN echo hello world > /hw\n", flags=flags)
    case("run-exit-23", 'FROM @B@\nRUN sh -c "exit 23"\n', fail=True)
    case("run-bad-exe", "FROM @B@\nRUN badEXE a1 \\& a2\ta3\n", fail=True)
    case("run-second-fails", "FROM @B@\nRUN true\nRUN thiswillfail\n", fail=True)
    case("run-missing-command", "FROM @B@\nRUN /non/existing/command\n", fail=True)
    case("run-exec-form-missing", 'FROM @B@\nRUN ["/no/such/binary"]\n', fail=True)
    case("run-network-none", "FROM @B@\nRUN ping -c 1 -W 1 8.8.8.8\n", fail=True)
    case("run-nobody-command", "FROM @B@\nRUN nobody\n", fail=True)
    case("build-add-host", "FROM @B@\nRUN ping -c 1 foo && ping -c 1 bar && grep -E 'foo|bar' /etc/hosts > /h\n",
         flags=["--add-host", "foo:127.0.0.1", "--add-host", "bar:127.0.0.1"])
    for i, bad in enumerate(["foo", "foo:", ":127.0.0.1", "foo:101.10.2", "foo:2001::1::3F"]):
        case(f"build-add-host-invalid-{i + 1}", "FROM @B@\nRUN ping -c 1 foo\n", flags=[f"--add-host={bad}"],
             fail=True)
