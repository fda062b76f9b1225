"""CMD, ENTRYPOINT, SHELL, RUN forms and ONBUILD (moby: TestBuildCmd*, TestBuildEntrypoint*,
TestBuildEmptyEntrypoint*, TestBuildClearCmd, TestBuildEmptyCmd, TestBuildCleanupCmdOnEntrypoint,
TestBuildShell*, TestBuildSetCommandWithDefinedShell, TestBuildOnBuild*,
TestBuildMultiStageOnBuild, TestBuildJSONEmptyRun, TestBuildRUNoneJSON)."""
from .core import case

CMD_SH = 'FROM @B@\nCMD ["sh"]\n'


def register():
    cmd_entrypoint()
    shell()
    run_forms()
    onbuild()


def cmd_entrypoint():
    case("cmd-json", 'FROM @B@\nCMD ["/bin/echo", "Hello World"]\n', checks=["default"])
    case("cmd-shell-form", "FROM @B@\nCMD echo cmd\n", checks=["default"])
    case("cmd-one-word-json", 'FROM @B@\nCMD ["echo hi"]\n')
    case("cmd-two-words-json", 'FROM @B@\nCMD ["echo", "hi"]\n', checks=["default"])
    case("entrypoint-one-word-json", 'FROM @B@\nENTRYPOINT ["echo hi"]\n')
    case("entrypoint-two-words-json", 'FROM @B@\nENTRYPOINT ["echo", "hi"]\n',
         checks=["default", "args: there"])
    case("entrypoint-json", 'FROM @B@\nENTRYPOINT ["/bin/echo"]\n', checks=["args: a b"])
    case("entrypoint-empty", "FROM @B@\nENTRYPOINT []\n")
    case("entrypoint-empty-over-base", "FROM @BASE@\nENTRYPOINT []\n",
         base='FROM @B@\nENTRYPOINT ["/bin/echo"]\n')
    case("entrypoint-json-cmd-shell", 'FROM @B@\nENTRYPOINT ["echo"]\nCMD echo test\n',
         checks=["default"])
    case("entrypoint-shell-exit-code", "FROM @BASE@\nENTRYPOINT exit 5\n",
         base="FROM @B@\nENTRYPOINT exit 130\n", checks=["default"])
    case("entrypoint-shell-over-base", "FROM @BASE@\nENTRYPOINT echo quux\n",
         base="FROM @B@\nENTRYPOINT /foo/bar\n", checks=["default"])
    case("entrypoint-shell-echo", "FROM @B@\nENTRYPOINT echo\n", checks=["default"])
    case("cmd-single-quotes-not-json", "FROM @B@\nCMD [ '/bin/sh', '-c', 'echo hi' ]\n",
         checks=["default"])
    case("entrypoint-resets-base-cmd", 'FROM @BASE@\nENTRYPOINT ["cat"]\n',
         base='FROM @B@\nCMD ["test"]\nENTRYPOINT ["echo"]\n')
    case("cmd-empty-json", 'FROM @BASE@\nENTRYPOINT ["/bin/sh"]\nCMD []\n', base=CMD_SH)
    case("cmd-untouched-by-maintainer", "FROM @BASE@\nMAINTAINER quux\n", base=CMD_SH)
    case("entrypoint-after-cached-run", r"""
FROM @BASE@
RUN echo "hello"
ADD f /f
ENTRYPOINT ["/bin/echo"]
""", {"f": "hello"}, base='FROM @B@\nRUN echo "hello"\nCMD ["sh"]\n')
    case("entrypoint-then-cmd-order", r"""
FROM @B@
CMD ["a"]
ENTRYPOINT ["/bin/echo"]
CMD ["b"]
""", checks=["default"])
    case("cmd-json-escapes", r"""
FROM @B@
CMD ["/bin/echo", "quote\"d", "tab\tbed", "uni\u00e9", "back\\slash"]
""", checks=["default"])
    case("cmd-bracket-not-json", "FROM @B@\nCMD [echo, hi]\n")
    case("cmd-no-args", "FROM @B@\nCMD\n")
    case("entrypoint-no-args", "FROM @B@\nENTRYPOINT\n")
    case("cmd-env-at-runtime", r"""
FROM @B@
ENV WHO=world
CMD ["sh", "-c", "echo hello $WHO"]
""", checks=["default"])


def shell():
    case("shell-sets-config", 'FROM @B@\nSHELL ["foo", "-bar"]\n')
    case("shell-changes-run-and-cmd", r"""
FROM @B@
RUN echo defaultshell > /one
SHELL ["/bin/sh", "-ec"]
RUN touch /two
SHELL ["ls"]
RUN /
WORKDIR /usr
CMD -1
""", checks=["default"])
    case("shell-entrypoint-form", 'FROM @B@\nSHELL ["echo"]\nENTRYPOINT hello-from-the-shell\n',
         checks=["default"])
    case("shell-inherited-from-base", "FROM @BASE@\nRUN echo hi > /inherited\nCMD echo done\n",
         base='FROM @B@\nSHELL ["/bin/sh", "-xc"]\n', checks=["default"])
    case("shell-not-json", "FROM @B@\nsHeLl exec -form\n", fail=True)
    case("shell-same-as-default-in-base", "FROM @BASE@\nCMD echo foo\n",
         base='FROM @B@\nSHELL ["/bin/sh", "-c"]\n', checks=["default"])
    case("shell-ignored-by-exec-form", r"""
FROM @B@
SHELL ["/bin/false"]
RUN ["sh", "-c", "echo exec > /x"]
""")
    case("shell-healthcheck-uses-shell", r"""
FROM @B@
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
HEALTHCHECK CMD cat /nothing | true
ENTRYPOINT echo ep
""")


def run_forms():
    case("run-empty-json-uses-cmd", r"""
FROM @B@
CMD ["sh", "-c", "echo from-cmd > /ran"]
RUN []
""")
    case("run-empty-json-base-cmd", "FROM @BASE@\nRUN []\n",
         base='FROM @B@\nCMD ["touch", "/ran-from-base-cmd"]\n')
    case("run-one-json-arg", 'FROM @B@\nRUN [ "/bin/true" ]\nRUN ["/bin/sh", "-c", "echo ok > /ok"]\n')
    case("run-tabs-kept", "FROM @B@\nRUN printf '%s|' echo\tone\t\ttwo > /tabs\n")
    case("run-quoted-continuation", 'FROM @B@\nRUN echo "  \\\n  foo  " > /spaces\n')
    case("run-delete-committed", r"""
FROM @B@
RUN echo test > file
RUN test -e file
RUN rm file
RUN sh -c "! test -e file"
""")
    case("run-opaque-dir", r"""
FROM @B@
RUN mkdir /dir1 && touch /dir1/f1
RUN rm -rf /dir1 && mkdir /dir1 && touch /dir1/f2
RUN touch /dir1/f3
RUN [ -f /dir1/f2 ]
""")
    case("run-five-steps", "FROM @B@\n" + "RUN echo step\n" * 5)
    case("run-env-seen", r"""
FROM @B@
ENV ONE=1
USER 1000
WORKDIR /tmp
RUN env | grep -v '^HOSTNAME=' | sort > /tmp/env.out && id >> /tmp/env.out
""")
    case("run-no-args", "FROM @B@\nRUN\n", fail=True)


def onbuild():
    case("onbuild-lowercase", "FROM @BASE@\n", base="FROM @B@\nonbuild run echo quux > /q\n")
    case("onbuild-cmd-entrypoint-json", "FROM @BASE@\n", base=r"""
FROM @B@
ONBUILD CMD ["hello world"]
ONBUILD ENTRYPOINT ["echo"]
ONBUILD RUN ["true"]
""", checks=["default"])
    case("onbuild-entrypoint-then-cmd", 'FROM @BASE@\nCMD ["hello world"]\n',
         base='FROM @B@\nONBUILD ENTRYPOINT ["echo"]\n', checks=["default"])
    case("onbuild-runs-once", r"""
FROM @BASE@ AS child
FROM child
RUN [ -f /parent-trigger ] && touch /grandchild
""", base='FROM @B@\nRUN echo grandparent\nONBUILD RUN touch /parent-trigger\n')
    case("onbuild-run-touch", "FROM @BASE@\nRUN [ -f foobar ]\n",
         base="FROM @B@\nONBUILD RUN touch foobar\n")
    case("onbuild-then-maintainer", "FROM @BASE@\nMAINTAINER quux\n",
         base="FROM @B@\nONBUILD RUN echo foo > /foo\n")
    case("onbuild-copy-in-stage", r"""
FROM @B@ AS onbuildbase
ONBUILD COPY file /file
FROM onbuildbase
""", {"file": "some content"})
    case("onbuild-env-in-stage", r"""
FROM @B@ AS onbuildbase
ENV something=bar
ONBUILD ENV foo=bar
FROM onbuildbase
""")
    case("onbuild-two-stages", r"""
FROM @B@ AS stage1
ONBUILD RUN echo 'foo' >somefile
ONBUILD ENV bar=baz
FROM stage1
RUN cat somefile
FROM stage1
RUN cat somefile
""")
    case("onbuild-recorded", r"""
FROM @B@
ONBUILD ADD . /app/src
ONBUILD RUN echo built
ONBUILD   workdir   /app
""")
    case("onbuild-onbuild", "FROM @B@\nONBUILD ONBUILD RUN true\n", fail=True)
    case("onbuild-from", "FROM @B@\nONBUILD FROM @B@\n", fail=True)
    case("onbuild-maintainer", "FROM @B@\nONBUILD MAINTAINER me\n", fail=True)
    case("onbuild-empty", "FROM @B@\n  ONBUILD\n  ", fail=True)
    case("onbuild-trigger-fails", "FROM @BASE@\n", base="FROM @B@\nONBUILD RUN exit 3\n",
         fail=True)
