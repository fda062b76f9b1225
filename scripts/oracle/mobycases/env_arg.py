"""ENV, ARG, build args and word expansion (moby: TestBuildEnvironmentReplacement*,
TestBuildEnv*, TestBuildPATH, TestBuildBuildTimeArg*, TestBuildMultiStage*Arg,
TestBuildExoticShellInterpolation, TestBuildHandleEscapesInVolume)."""
from .core import case

DUMP = "env | grep -v '^HOSTNAME=' | sort"


def register():
    replacement()
    env_forms()
    default_path()
    build_args()
    arg_scopes()


def replacement():
    case("env-subst-user", r"""
FROM scratch
ENV runner=svc
USER ${runner}
""")
    case("env-subst-volume", r"""
FROM @B@
ENV vol=/data-vol
VOLUME ${vol}
""")
    case("env-subst-expose", r"""
FROM scratch
ENV web=8080
EXPOSE ${web}
ENV more="  7001   7002 "
EXPOSE ${more}
""")
    case("env-subst-workdir", r"""
FROM @B@
ENV WD /srv/app
RUN mkdir -p ${WD}
WORKDIR ${WD}
""")
    case("env-subst-add-copy", r"""
FROM @B@
ENV one=alpha
ENV two beta
ENV here .
ENV d3=gamma
ENV d4 delta
ADD ${one} ${here}
COPY ${two} ${here}
ADD ${missing:-${d3}} ${here}
COPY ${missing:-${d4}} ${here}
""", {"alpha": "a1", "beta": "b2", "gamma": "c3", "delta": "d4"})
    case("env-subst-quoting", r"""
FROM @B@
ENV base qq
ENV copy ${base}
ENV lit1='$base'
ENV e1=$base e2=${base} e3="$base" e4="${base}"
RUN [ "$lit1" = '$base' ] && (echo "$lit1" | grep -q base)
ENV lit2="\$base"
RUN [ "$lit2" = '$base' ]
ENV lit3 '$base'
RUN [ "$lit3" = '$base' ]
ENV lit4 "\$base"
RUN [ "$lit4" = '$base' ]
ENV bs1="x\y"
RUN [ "$bs1" = 'x\y' ]
ENV bs2="x\\y"
RUN [ "$bs2" = 'x\y' ]
ENV bs3='x\\y'
RUN [ "$bs3" = 'x\\y' ]
ENV bs4='x\y'
RUN [ "$bs4" = 'x\y' ]
""")
    for i, (word, _) in enumerate([(r"${TARGET}", "plain"), (r"\${TARGET}", "escaped"),
                                   (r"\\\\\\\${TARGET}", "seven")]):
        case(f"volume-escapes-{i + 1}", f"""
FROM scratch
ENV TARGET vdir
VOLUME {word}
""")
    case("env-cmd-escaped-dollar", r"""
FROM @B@
ENV X unused
CMD echo \$
""", checks=["default"])
    case("env-cmd-not-expanded", r"""
FROM @B@
ENV GREETING hello
CMD echo ${GREETING}
""", checks=["default"])


def env_forms():
    case("env-path-prepend", r"""
FROM @B@
ENV PATH /opt/tools:$PATH
ENV SERVICE_PORT 6060
RUN [ "$(env | grep SERVICE_PORT)" = 'SERVICE_PORT=6060' ]
""")
    case("env-usage", r"""
FROM @B@
ENV HOME /root
ENV PATH $HOME/bin:$PATH
ENV PATH /scratchpad:$PATH
RUN echo "$PATH" > /path.out
ENV SRCDIR /src/x
ENV OTHER /other
ENV ALIAS $OTHER
ENV JOINED $PATH:$SRCDIR
RUN [ "$OTHER" = "$ALIAS" ]
RUN [ "$JOINED" = "$PATH:/src/x" ]
ENV FROMFILE greet/in/here
ENV TOFILE /dest/of/greeting
ADD $FROMFILE $TOFILE
RUN [ "$(cat $TOFILE)" = "hi" ]
ENV k1=v1
ENV k2=$k1
RUN [ "$k2" = "v1" ]
""", {"greet/in/here": "hi"})
    case("env-usage-forms", r"""
FROM @B@
ENV p=q r="two words"
RUN [ "$p,$r" = "q,two words" ]
ENV r=two\ words s1=abc s2="hi there" s3='dusk till dawn' s4="it's quoted"
RUN [ "$r,$s1,$s2,$s3,$s4" = "two words,abc,hi there,dusk till dawn,it's quoted" ]
ENV p=zzz SRC=msg/file
ENV p=zzz DST=/target/file
ADD $SRC $DST
RUN [ "$p,$(cat $DST)" = "zzz,payload" ]
ENV p 'yyy'
RUN [ $p = 'yyy' ]
ENV p=
RUN [ "$p" = "" ]
ENV p=\$other
RUN [ "$p" = "\$other" ] && (echo "$p" | grep other)
ENV p \$other
RUN [ "$p" = "\$other" ] && (echo "$p" | grep other)
ENV p=\'sq\' p2=\"dq\"
RUN [ "$p,$p2" = "'sq',\"dq\"" ]
ENV p "dq"
RUN [ "$p" = "dq" ]
ENV p 'sq'
RUN [ "$p" = 'sq' ]
ENV p \'sq\'
RUN [ "$p" = "'sq'" ]
ENV p \"dq\"
RUN [ "$p" = '"dq"' ]
ENV p=PV
ENV m1=${p:-DEF} m2=${nope:-DEF}
ENV m3=${nope:-${m2}yy} m4=${p:+ALT} m5=${m2:+${p}:} m6=${nope:-\$p:} m7=${nope:-\${p}:}
RUN [ "$m1,$m2,$m3,$m4,$m5,$m6,$m7" = 'PV,DEF,DEFyy,ALT,PV:,$p:,${p:}' ]
ENV lst=${lst:+$lst:}/first
ENV lst=${lst:+$lst:}/second
RUN [ "$lst" = '/first:/second' ]
ENV f1=foo
ENV f2=$f1 f3=$f11 f4=\$f1 f5=\$f11
RUN [ "$f0,$f1,$f2,$f3,$f4,$f5" = ',foo,foo,,$f1,$f11' ]
ENV g1 foo
ENV g2 $g1
ENV g3 $g11
ENV g4 \$g1
ENV g5 \$g11
RUN [ "$g1,$g2,$g3,$g4,$g5" = 'foo,foo,,$g1,$g11' ]
ENV h1="v" h2='v'
ENV h3 "v"
ENV h4 'v'
RUN [ "$h1,$h2,$h3,$h4" = 'v,v,v,v' ]
""", {"msg/file": "payload"})
    case("run-shell-interpolation", r"""
FROM @B@
ENV VER 3.14.15
RUN [ "$VER"       = '3.14.15' ]
RUN [ "${VER}"     = '3.14.15' ]
RUN [ "${VER%.*}"  = '3.14'    ]
RUN [ "${VER%%.*}" = '3'       ]
RUN [ "${VER#*.}"  = '14.15'   ]
RUN [ "${VER##*.}" = '15'      ]
RUN [ "${VER/15/16}" = '3.14.16' ]
RUN [ "${#VER}"    = '7'       ]
RUN [ "${NOT_SET:-$VER}" = '3.14.15' ]
RUN [ "${VER:+v${VER}}" = 'v3.14.15' ]
RUN [ "${NOT_SET:+${VER}}" = '' ]
RUN [ "${NOT_SET:-${VER:-9.9}}" = '3.14.15' ]
""")
    case("env-multi-and-override", r"""
FROM @B@
ENV A=1 B=2 C=3
ENV B=20
ENV A 100 and more
RUN echo "$A|$B|$C" > /abc
""")
    case("env-heredoc-like-values", r"""
FROM @B@
ENV JSON='{"k": "v", "n": [1, 2]}'
ENV WITH_EQ=a=b=c
ENV TRAIL="ends with space "
RUN printf '%s\n' "$JSON" "$WITH_EQ" "[$TRAIL]" > /vals
""")


def default_path():
    for base in ("scratch", "busybox"):
        frm = "scratch" if base == "scratch" else "@B@"
        for tag, line in (("maintainer", "MAINTAINER someone"), ("env", "ENV EXTRA=1"),
                          ("set", "ENV PATH=/only/here"), ("empty", "ENV PATH=''")):
            case(f"path-{base}-{tag}", f"FROM {frm}\n{line}\n")


def build_args():
    case("arg-basic", r"""
FROM @B@
ARG color
RUN echo "$color" > /color
CMD echo "[$color]"
""", args=["color=red"], checks=["default"])
    case("arg-default-and-given", r"""
FROM @B@
ARG color=blue
RUN echo "$color" > /color
""", args=["color=red"])
    case("arg-proxy-exclusions", r"""
FROM @B@
ARG flavor
ARG http_proxy
RUN env | grep -i -E 'proxy|flavor' | sort > /seen
""", args=["https_proxy=https://p.example", "flavor=mint", "http_proxy=http://q.example",
           "HTTP_PROXY=http://r.example"])
    case("arg-extra-given", r"""
FROM @B@
ARG one
ARG two
RUN echo "$one" > /one
""", args=["one=1", "two=2"])
    case("arg-then-env-override", r"""
FROM @B@
ARG shade
ENV shade from-env
RUN echo "$shade" > /shade
CMD echo "$shade"
""", args=["shade=from-arg"], checks=["default"])
    case("env-then-arg-override", r"""
FROM @B@
ENV shade from-env
ARG shade
RUN echo "$shade" > /shade
CMD echo "$shade"
""", args=["shade=from-arg"], checks=["default"])
    case("arg-expansion-everywhere", r"""
FROM @B@
ARG WD
WORKDIR ${WD}
ARG ADDSRC
ADD ${ADDSRC} sub/
ARG CPSRC
COPY $CPSRC sub/
ARG EV
ENV EV=${EV}
ARG PORT
EXPOSE $PORT
ARG WHO
USER $WHO
ARG VOL
VOLUME ${VOL}
""", {"added.txt": "one", "copied.txt": "two"},
         args=["WD=/tmp", "ADDSRC=added.txt", "CPSRC=copied.txt", "EV=bar", "PORT=9999",
               "WHO=builder", "VOL=/vol/"])
    case("arg-env-chain", r"""
FROM @B@
ARG src
ENV src over
ENV dst ${src}
RUN echo "$dst" > /dst
CMD echo "$dst"
""", args=["src=given"], checks=["default"])
    case("arg-used-before-declared", r"""
FROM @B@
RUN echo "[$late]" > /before
ARG late
RUN echo "[$late]" > /after
CMD echo "[$late]"
""", args=["late=value"], checks=["default"])
    case("arg-predefined-proxy", r"""
FROM @B@
RUN echo "[$HTTP_PROXY][$no_proxy]" > /proxy
CMD echo "[$HTTP_PROXY]"
""", args=["HTTP_PROXY=http://proxy.local:3128", "no_proxy=.internal"], checks=["default"])
    case("arg-default-overridden", r"""
FROM @B@
ARG level=low
ENV level $level
RUN echo "$level" > /level
CMD echo "$level"
""", args=["level=high"], checks=["default"])
    case("arg-unconsumed", r"""
FROM @B@
RUN echo "[$stray]" > /stray
""", args=["stray=value"])
    case("arg-env-matrix", r"""
FROM @B@
ARG FOO1=fromfile
ARG FOO2=fromfile
ARG FOO3=fromfile
ARG FOO4=fromfile
ARG FOO5
ARG FOO6
ARG FO10
RUN env | grep -E '^FO' | sort > /env.out
RUN [ "$(env | grep FOO6)" = "" ] && [ "$(env | grep FOO7)" = "" ]
""", args=["FOO1=fromcmd", "FOO2=", "FOO3", "FOO4", "FOO5=fromcmd", "FOO7=fromcmd", "FOO8=",
           "FOO9", "FO10"])
    case("arg-quoted-defaults", r"""
FROM @B@
ARG q0=""
ARG q1=''
ARG q2="''"
ARG q3='""'
RUN [ "$q0" != "$q2" ] && [ "$q0" != "$q3" ] && [ "$q1" != "$q2" ]
RUN [ "$q1" != "$q3" ] && [ "$q2" != "$q3" ]
RUN printf '[%s]\n' "$q0" "$q1" "$q2" "$q3" > /q
""")
    case("arg-empty-defaults", r"""
FROM @B@
ARG e0=
ARG e1=""
ARG e2=''
RUN [ "$e0" = "$e1" ] && [ "$e1" = "$e2" ] && [ "$e0" = "$e2" ]
RUN env | grep -c '^e[0-9]=' > /count || true
""")
    case("arg-declared-not-injected", r"""
FROM @B@
ARG undeclared_value
RUN env | grep -v '^HOSTNAME=' | sort > /env.out
""")
    case("arg-in-run-env", f"""
FROM @B@
ARG A1=x
ENV E1=y
RUN {DUMP} > /env.out
""", args=["A1=z"])


def arg_scopes():
    case("arg-stage-scoped", r"""
FROM @B@
ARG first_only=AAAA
LABEL stage=one
RUN env | grep -v HOSTNAME | sort > /out
FROM @B@
ARG second_only=BBBB
RUN env | grep -v HOSTNAME | sort > /out
""")
    case("arg-global-in-from", r"""
ARG tag=nosuchtag
FROM rbuild-anchor/busybox:${tag}
LABEL st=1
RUN env | grep -v HOSTNAME | sort > /out
FROM rbuild-anchor/busybox:${tag}
ARG tag
RUN env | grep -v HOSTNAME | sort > /out
""", args=["tag=1"])
    case("arg-multistage-unused", r"""
FROM @B@
ARG left
FROM @B@
ARG right
RUN env | grep -v HOSTNAME | sort > /out
""", args=["extra=abc"])
    case("arg-global-redeclared", r"""
ARG G=global
FROM @B@
RUN echo "[$G]" > /hidden
ARG G
RUN echo "[$G]" > /visible
""")
    case("arg-global-redeclared-given", r"""
ARG G=global
FROM @B@
ARG G
RUN echo "[$G]" > /visible
""", args=["G=cmdline"])
