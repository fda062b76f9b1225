"""WORKDIR, USER, VOLUME, EXPOSE, LABEL (and --label), MAINTAINER, STOPSIGNAL and
HEALTHCHECK (moby: TestBuildRelativeWorkdir, TestBuildWorkdir*, TestBuildUser*,
TestBuildUsersAndGroups, TestBuildWithVolumes, TestBuildVolume*, TestBuildExpose*,
TestBuildLabel*, TestBuildMaintainer, TestBuildStopSignal, the health check tests)."""
from .core import case

IDS = 'echo "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" >> /ids/log'


def register():
    workdir()
    user()
    volume()
    expose()
    labels()
    maintainer_signal_health()


def workdir():
    case("workdir-relative-chain", r"""
FROM @B@
RUN [ "$PWD" = / ] && pwd > /pwd0
WORKDIR first
RUN pwd > /pwd1
WORKDIR /second
RUN pwd > /pwd2
WORKDIR third
RUN pwd > /pwd3
""")
    case("workdir-from-env", r"""
FROM @B@
ENV DIRPATH /w1
ENV SUBDIR w2
WORKDIR $DIRPATH
WORKDIR $SUBDIR/$NOT_SET_AT_ALL
""")
    case("workdir-new-dir", r"""
FROM @B@
WORKDIR /made_dir
RUN [ $(ls -l / | grep made_dir | awk '{print $3":"$4}') = 'root:root' ]
""")
    case("workdir-only", r"""
FROM @B@
WORKDIR /only/this
""")
    case("workdir-keeps-base-cmd", r"""
FROM @BASE@
WORKDIR /foo/bar
""", base='FROM @B@\nCMD ["sh"]\n')
    case("workdir-then-label-keeps-cmd", r"""
FROM @BASE@
WORKDIR /foo/bar
LABEL a=b
""", base='FROM @B@\nCMD ["sh"]\n')
    case("workdir-root", r"""
FROM @B@
WORKDIR /
""")
    case("workdir-trailing-slash", r"""
FROM @B@
WORKDIR /slashed/
""")
    case("workdir-dotdot-and-dots", r"""
FROM @B@
WORKDIR /a/b/../c/./d//
RUN pwd > /here
""")
    case("workdir-as-user", r"""
FROM @B@
USER 1000:1000
WORKDIR /owned/by/whom
USER root
RUN stat -c '%u:%g %a' /owned /owned/by /owned/by/whom > /st
""")
    case("workdir-removed-then-env", r"""
FROM @B@
WORKDIR /wd
RUN rm -rf /wd
ENV AFTER=1
""")


def user():
    case("user-by-name", r"""
FROM @B@
RUN echo 'svc:x:1001:1001::/bin:/bin/false' >> /etc/passwd
USER svc
RUN [ $(whoami) = 'svc' ]
""")
    lines = [
        "FROM @B@",
        "RUN mkdir -m 1777 /ids && touch /ids/log && chmod 666 /ids/log",
        f"RUN {IDS}",
        "USER root",
        f"RUN {IDS}",
        "RUN echo 'worker:x:1001:1001::/bin:/bin/false' >> /etc/passwd && "
        "echo 'worker:x:1001:' >> /etc/group",
        "USER worker",
        f"RUN {IDS}",
        "USER root",
        f"RUN {IDS} && echo 'extra:x:1002:worker' >> /etc/group",
    ]
    for spec in ("worker", "1001", "worker:worker", "1001:worker", "worker:1001", "1001:1001",
                 "worker:extra", "worker:1002", "1001:extra", "1001:1002", "1042:1043"):
        lines += [f"USER {spec}", f"RUN {IDS}"]
    case("users-and-groups", "\n".join(lines) + "\n")
    case("user-unknown-name-fails", r"""
FROM @B@
USER ghost
RUN true
""", fail=True)
    case("user-unknown-name-no-run", r"""
FROM @B@
USER ghost
""")
    case("user-numeric-then-copy", r"""
FROM @B@
USER 1000
COPY f /as-user/f
RUN id > /tmp/id
""", {"f": "x"})
    case("user-group-in-many-groups", r"""
FROM @B@
RUN echo 'multi:x:1300:1300::/:/bin/sh' >> /etc/passwd && \
    echo 'multi:x:1300:' >> /etc/group && \
    echo 'ga:x:1301:multi' >> /etc/group && \
    echo 'gb:x:1302:other,multi' >> /etc/group && mkdir -m 1777 /ids
USER multi
RUN id -G > /ids/groups
""")


def volume():
    case("volume-forms", r"""
FROM scratch
VOLUME /v1
VOLUME /v2
VOLUME /v3 /v4
VOLUME ["/v5", "/v6"]
VOLUME [/v7 /v8]
""")
    case("volume-keeps-owner-mode", r"""
FROM @B@
RUN mkdir /vol && chown 2:3 /vol && chmod 0600 /vol
VOLUME /vol
""", checks=["stat -c '%a %u %g' /vol"])
    case("volume-retains-content", r"""
FROM @B@
COPY content /vol/file
VOLUME /vol
CMD cat /vol/file
""", {"content": "some text"}, checks=["default"])
    case("volume-over-file", r"""
FROM @B@
RUN touch /plain
VOLUME /plain
""", fail=True)
    case("volume-empty-value", r"""
FROM @B@
ENV nothing=""
VOLUME $nothing
""", fail=True)
    case("volume-named-syntax-is-a-path", r"""
FROM @B@
VOLUME somename:/vdir
RUN ls /vdir/oops
""", fail=True)
    case("volume-run-writes-discarded", r"""
FROM @B@
RUN mkdir /v && echo before > /v/kept
VOLUME /v
RUN echo after > /v/lost && echo changed > /v/kept
""")
    case("volume-copy-writes-kept", r"""
FROM @B@
VOLUME /v
COPY f /v/f
""", {"f": "copied"})
    case("volume-trailing-slash", r"""
FROM @B@
VOLUME /foo/
""")
    case("volume-json-with-env", r"""
FROM @B@
ENV A=/ja B=jb
VOLUME ["$A", "/${B}"]
""")


def expose():
    case("expose-one", "FROM scratch\nEXPOSE 2375\n")
    rows = []
    for i in range(50):
        rows.append(" ".join(str(i * 100 + j + 1) for j in range(100)))
    case("expose-five-thousand", "FROM scratch\nEXPOSE " + " \\\n  ".join(rows) + "\n")
    case("expose-order-a", "FROM scratch\nEXPOSE 80 2375\n")
    case("expose-order-b", "FROM scratch\nEXPOSE 2375 80\n")
    case("expose-upper-proto", "FROM scratch\nEXPOSE 5678/UDP\n")
    case("expose-range-and-protos", "FROM @B@\nEXPOSE 7000-7003 53/udp 80/tcp 9/sctp\n")
    case("expose-duplicates", "FROM @B@\nEXPOSE 80\nEXPOSE 80/tcp 443\n")
    case("expose-inherited", r"""
FROM @BASE@
ENTRYPOINT ["/bin/echo"]
""", base="FROM scratch\nEXPOSE 2375\n")
    case("expose-bad-port", "FROM @B@\nEXPOSE notaport\n", fail=True)


def labels():
    case("labels-forms", r"""
FROM @B@
LABEL Vendor=Acme
LABEL License GPL
LABEL multi.a=1 multi.b="two words" "quoted key"=v
""")
    case("labels-many", "FROM @B@\n" + "".join(f'LABEL label.{c}="{c}"\n' for c in "ABCDEFGHIJKLMN"))
    case("label-flag-with-dockerfile-label", r"""
FROM @B@
LABEL default foo
""", flags=["--label", "flagged"])
    case("label-flag-only-from", "FROM @B@\n", flags=["--label", "foo=bar"])
    case("label-flag-several", r"""
FROM @B@
LABEL default foo
""", flags=["--label", "foo=bar", "--label", "123=456"])
    case("label-flag-overrides", r"""
FROM @B@
LABEL foo=from-dockerfile
""", flags=["--label", "foo=from-flag", "--label", "bar=from-flag"])
    case("label-flag-overrides-inherited", r"""
FROM @BASE@
LABEL bar from-dockerfile2
""", base="FROM @B@\nLABEL foo from-dockerfile\n", flags=["--label", "foo=new"])
    case("label-flag-empty-values", r"""
FROM @B@
LABEL foo=from-dockerfile
""", flags=["--label", "foo", "--label", "bar="])
    case("label-flag-empty-inherited", r"""
FROM @BASE@
LABEL bar from-dockerfile2
""", base="FROM @B@\nLABEL foo from-dockerfile\n", flags=["--label", "foo=", "--label", "bar"])
    case("label-flag-not-expanded", "FROM @B@\n", flags=["--label", "bar=$PATH"])
    case("label-flag-with-target-a", r"""
FROM @B@ AS target-a
CMD ["/dev"]
LABEL label-a=inline-a
FROM @B@ AS target-b
CMD ["/dist"]
LABEL label-b=inline-b
""", flags=["--label", "foo=bar", "--label", "dead=beef", "--target", "target-a"])
    case("label-flag-with-target-b", r"""
FROM @B@ AS target-a
CMD ["/dev"]
LABEL label-a=inline-a
FROM @B@ AS target-b
CMD ["/dist"]
LABEL label-b=inline-b
""", flags=["--label", "foo=bar", "--label", "dead=beef", "--target", "target-b"])
    case("label-blank-name", "FROM @B@\nLABEL =\n", fail=True)
    case("label-expands-env", r"""
FROM @B@
ENV V=1.2
LABEL version=$V "lit"='$V' both="${V}-x"
""")


def maintainer_signal_health():
    case("maintainer-plain", "FROM @B@\nMAINTAINER dockerio\n")
    case("maintainer-continued", "\n# ESCAPE=\\\nFROM @B@\nMAINTAINER \"Docker \\\nIO <io@\\\ndocker.com>\"\n")
    case("maintainer-number", "FROM @B@\nMAINTAINER 123\n")
    case("stopsignal-name", "FROM @B@\nSTOPSIGNAL SIGKILL\n")
    case("stopsignal-number", "FROM @B@\nSTOPSIGNAL 9\n")
    case("stopsignal-from-arg", "FROM @B@\nARG SIG=SIGUSR1\nSTOPSIGNAL $SIG\n")
    case("stopsignal-invalid", "FROM @B@\nSTOPSIGNAL SIGNOTREAL\n", fail=True)
    case("healthcheck-shell", r"""
FROM @B@
RUN echo OK > /status
CMD ["/bin/sleep", "120"]
STOPSIGNAL SIGKILL
HEALTHCHECK --interval=1s --timeout=30s \
  CMD cat /status
""")
    case("healthcheck-json", r"""
FROM @B@
HEALTHCHECK --interval=1s --timeout=30s \
  CMD ["cat", "/my status"]
""")
    case("healthcheck-none-over-base", "FROM @BASE@\nHEALTHCHECK NONE\n",
         base="FROM @B@\nHEALTHCHECK --interval=5s CMD true\n")
    case("healthcheck-all-flags", r"""
FROM @B@
HEALTHCHECK --interval=1s --timeout=5s --retries=5 --start-period=2s CMD /bin/sh -c "sleep 1"
ENTRYPOINT /bin/sh -c "sleep 600"
""")
    case("healthcheck-last-wins", r"""
FROM @B@
HEALTHCHECK CMD first
HEALTHCHECK --retries=2 CMD second
""")
    case("healthcheck-bad-flag", "FROM @B@\nHEALTHCHECK --wat=1 CMD true\n", fail=True)
    case("healthcheck-bad-duration", "FROM @B@\nHEALTHCHECK --interval=5 CMD true\n", fail=True)
    case("healthcheck-none-with-args", "FROM @B@\nHEALTHCHECK NONE extra\n", fail=True)
