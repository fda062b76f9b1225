"""COPY and ADD of context files: destinations, directories, wildcards, owners, modes and
symlinks (moby: TestBuildAdd*, TestBuildCopy*, TestBuildRelativeCopy, TestBuildChown*,
TestBuildFollowSymlink*, TestBuildSymlinkBasename, TestBuildCacheBrokenSymlink,
TestBuildUsernamespaceValidateRemappedRoot, TestBuildChownOnCopy)."""
from .core import case, F, L, D, H

# a user and group made by the first steps of many of moby's COPY/ADD tests
OWNED = r"""FROM @B@
RUN echo 'keeper:x:1001:1001::/bin:/bin/false' >> /etc/passwd
RUN echo 'keeper:x:1001:' >> /etc/group
"""
OWNER = "ls -l {p} | awk '{{print $3\":\"$4}}'"


def owner_is(path, who):
    return f"RUN [ $(ls -l {path} | awk '{{print $3\":\"$4}}') = '{who}' ]"


def register():
    for op in ("ADD", "COPY"):
        single_files(op)
        directories(op)
    relative()
    wildcards()
    ownership()
    modes()
    symlinks()
    dest_semantics()


def single_files(op):
    o = op.lower()
    case(f"{o}-file-to-root", OWNED + f"""RUN touch /present
RUN chown keeper.keeper /present
{op} item.txt /
{owner_is('/item.txt', 'root:root')}
RUN [ $(ls -l /item.txt | awk '{{print $1}}') = '-rw-r--r--' ]
{owner_is('/present', 'keeper:keeper')}
""", {"item.txt": "one"})
    case(f"{o}-file-to-workdir-dot", f"""
FROM @B@
{op} item.txt .
""", {"item.txt": "one"})
    case(f"{o}-file-to-existing-dir", OWNED + f"""RUN mkdir /present
RUN touch /present/old
RUN chown -R keeper.keeper /present
{op} item.txt /present/
RUN [ $(ls -l / | grep present | awk '{{print $3":"$4}}') = 'keeper:keeper' ]
{owner_is('/present/item.txt', 'root:root')}
{owner_is('/present/old', 'keeper:keeper')}
""", {"item.txt": "one"})
    case(f"{o}-file-to-new-dir", OWNED + f"""RUN touch /present
RUN chown keeper.keeper /present
{op} item.txt /fresh_dir/
RUN [ $(ls -l / | grep fresh_dir | awk '{{print $3":"$4}}') = 'root:root' ]
{owner_is('/fresh_dir/item.txt', 'root:root')}
""", {"item.txt": "one"})
    case(f"{o}-several-files", OWNED + f"""RUN mkdir /present
RUN touch /present/old
RUN chown -R keeper.keeper /present
{op} f1 f2 f3 /present/
RUN [ $(ls -l / | grep present | awk '{{print $3":"$4}}') = 'keeper:keeper' ]
{owner_is('/present/f1', 'root:root')}
{owner_is('/present/f3', 'root:root')}
""", {"f1": "1", "f2": "2", "f3": "3"})
    case(f"{o}-whitespace-names", f"""
FROM @B@
RUN mkdir "/with space" /no_space
{op} [ "a file", "/a_file" ]
{op} [ "b_file", "/b file" ]
{op} [ "c file", "/c file" ]
{op} [ "in dir/d_file", "/no_space/d_file" ]
{op} [ "no_dir/e_file", "/with space/e_file" ]
{op} [ "in dir/f_file", "/with space/f_file" ]
RUN [ "$(cat '/a_file')" = 'A' ] && [ "$(cat '/with space/f_file')" = 'F' ]
""", {"a file": "A", "b_file": "B", "c file": "C", "in dir/d_file": "D",
      "no_dir/e_file": "E", "in dir/f_file": "F"})
    case(f"{o}-null-prefixed-names", f"""
FROM @B@
{op} null /
{op} nullfile /
VOLUME nullvolume
""", {"null": "first", "nullfile": "second"})
    case(f"{o}-dot-to-new-dir", f"""
FROM @B@
{op} . /made_dir
RUN [ $(ls -l / | grep made_dir | awk '{{print $3":"$4}}') = 'root:root' ]
""", {"sub_dir/inner": "x"})


def directories(op):
    o = op.lower()
    case(f"{o}-dir-contents-to-root", OWNED + f"""RUN touch /present
RUN chown keeper.keeper present
{op} tree /
{owner_is('/leaf', 'root:root')}
{owner_is('/present', 'keeper:keeper')}
""", {"tree/leaf": "x"})
    case(f"{o}-dir-contents-to-existing", OWNED + f"""RUN mkdir /present
RUN touch /present/old
RUN chown -R keeper.keeper /present
{op} tree/ /present/
RUN [ $(ls -l / | grep present | awk '{{print $3":"$4}}') = 'keeper:keeper' ]
{owner_is('/present/old', 'keeper:keeper')}
{owner_is('/present/leaf', 'root:root')}
""", {"tree/leaf": "x"})
    case(f"{o}-whole-dir", OWNED + f"""RUN touch /present
RUN chown keeper.keeper present
{op} tree /tree
RUN [ $(ls -l / | grep tree | awk '{{print $1}}') = 'drwxr-xr-x' ]
RUN [ $(ls -l /tree/leaf | awk '{{print $1}}') = '-rw-r--r--' ]
""", {"tree/leaf": "x"})
    case(f"{o}-etc-into-root", f"""
FROM @B@
{op} . /
""", {"etc/extra_file": "x"})
    case(f"{o}-nested-dirs-merge", f"""
FROM @B@
RUN mkdir -p /m/a/keep && echo old > /m/a/keep/old && chmod 700 /m/a
{op} merge /m
""", {"merge/a/new": "new", "merge/a/keep/added": "added", "merge/b/c/d": "deep"})
    case(f"{o}-empty-dir", f"""
FROM @B@
{op} hollow /hollow-copy
{op} hollow /existing-tmp/
""", {"hollow": D(0o750)})


def relative():
    case("copy-relative-dests", r"""
FROM @B@
WORKDIR /r1
WORKDIR r2
RUN [ "$PWD" = '/r1/r2' ]
COPY greeting ./
RUN [ "$(cat /r1/r2/greeting)" = 'hello' ]
ADD greeting ./sub/named
RUN [ "$(cat /r1/r2/sub/named)" = 'hello' ]
COPY greeting ./sub/named2
WORKDIR ..
COPY greeting ./
COPY greeting /r3/
WORKDIR /r4
COPY . .
WORKDIR /r5/r6
COPY greeting ../
RUN [ "$(cat /r5/greeting)" = 'hello' ]
""", {"greeting": "hello"})
    case("copy-dot-into-new-workdir", r"""
FROM @B@
WORKDIR /not/yet
COPY thing .
RUN ["cat", "/not/yet/thing"]
""", {"thing": "content"})
    case("add-to-symlinked-dir", r"""
FROM @B@
RUN mkdir /real
RUN ln -s /real /alias
ADD thing /alias/
RUN [ -f /alias/thing ] && [ -f /real/thing ]
""", {"thing": "hello"})
    case("copy-modified-file-in-folder", r"""
FROM @B@
RUN ["mkdir", "/target"]
ADD box/item /target/renamed
""", {"box/item": "second"})


def wildcards():
    case("copy-wildcards", r"""
FROM @B@
COPY part*.txt /tmp/
RUN ls /tmp/part1.txt /tmp/part2.txt
RUN [ "mkdir", "/t1" ]
COPY sta* /t1/
RUN ls /t1/stale /t1/flat /t1/inner/deep
RUN [ "mkdir", "/t2" ]
ADD stash/*ner /t2/
RUN ls /t2/deep
""", {"part1.txt": "p1", "part2.txt": "p2", "stash/flat": "flat",
      "stash/inner/deep": "deeper", "stale": "old"})
    case("copy-star-in-name", r"""
FROM @B@
COPY *.txt /tmp/
RUN [ "$(cat /tmp/\*.txt)" = 'literal star' ]
""", {"*.txt": "literal star"})
    case("copy-wildcard-one-match", r"""
FROM @B@
COPY only*.txt /tmp/
COPY only*.txt /renamed.txt
""", {"only1.txt": "x"})
    case("copy-wildcard-classes", r"""
FROM @B@
COPY f[0-9].log /logs/
COPY f?.dat /dats/
""", {"f1.log": "1", "f2.log": "2", "fx.log": "x", "fa.dat": "a", "fbb.dat": "bb"})
    case("copy-dir-not-prefixed-file", r"""
FROM @B@
COPY folder /tmp/
""", {"folder/inner": "hello", "folder_file": "other"})
    case("copy-wildcard-dirs-flatten", r"""
FROM @B@
COPY d* /flat/
""", {"d1/x": "x", "d2/y": "y", "d2/sub/z": "z", "dfile": "f"})


def ownership():
    case("copy-context-owner-ignored", r"""
FROM @B@
COPY owned /
RUN [ $(ls -l /owned | awk '{print $3":"$4}') = 'root:root' ]
""", {"owned": F("x", uid=4242, gid=4242)})
    case("add-context-owner-ignored", r"""
FROM @B@
ADD owned /dest/
RUN [ $(stat -c %U:%G "/dest") = 'root:root' ]
RUN [ $(stat -c %U:%G "/dest/owned") = 'root:root' ]
""", {"owned": F("", uid=1, gid=1)})
    case("copy-chown-names", r"""
FROM @B@
RUN echo 'u1:x:1001:1001::/bin:/bin/false' >> /etc/passwd
RUN echo 'u1:x:1001:' >> /etc/group
RUN echo 'g2:x:1002:' >> /etc/group
COPY --chown=u1:1002 . /chowned
RUN [ $(ls -l / | grep chowned | awk '{print $3":"$4}') = 'u1:g2' ]
RUN [ $(ls -nl / | grep chowned | awk '{print $3":"$4}') = '1001:1002' ]
""", {"payload": "some content", "sub/deeper": "x"})
    case("copy-chown-numeric", r"""
FROM @B@
COPY --chown=2000:3000 tree /t/
ADD --chown=2001 file /f
COPY --chown=2002:2002 file /nested/new/dir/f
""", {"tree/a": "a", "tree/b/c": "c", "file": "f"})
    # docker looks the user's name up as a group name too (not the user's primary group)
    case("copy-chown-user-only-name", r"""
FROM @B@
RUN echo 'u5:x:1005:1500::/bin:/bin/false' >> /etc/passwd
COPY --chown=u5 file /f
""", {"file": "f"}, fail=True)
    case("copy-chown-user-only-name-and-group", r"""
FROM @B@
RUN echo 'u6:x:1006:1500::/bin:/bin/false' >> /etc/passwd && echo 'u6:x:1600:' >> /etc/group
COPY --chown=u6 file /f
""", {"file": "f"})
    case("copy-chown-expanded", r"""
FROM @B@
ARG OWN=1234:5678
ENV GRP=91
COPY --chown=${OWN} file /f1
COPY --chown=77:$GRP file /f2
""", {"file": "f"})
    case("copy-chown-unknown-user", r"""
FROM @B@
COPY --chown=nosuchuser file /f
""", {"file": "f"}, fail=True)
    case("copy-chown-unknown-group", r"""
FROM @B@
COPY --chown=0:nosuchgroup file /f
""", {"file": "f"}, fail=True)


def modes():
    case("add-keeps-existing-setuid", r"""
FROM @B@
ADD binary /usr/bin/binary
RUN chmod 4755 /usr/bin/binary
RUN [ $(ls -l /usr/bin/binary | awk '{print $1}') = '-rwsr-xr-x' ]
ADD ./overlay/ /
RUN [ $(ls -l /usr/bin/binary | awk '{print $1}') = '-rwsr-xr-x' ]
""", {"binary": "bin", "overlay/usr/extra": "x"})
    case("copy-context-modes", r"""
FROM @B@
COPY modes /modes
""", {"modes/private": F("p", 0o600), "modes/none": F("n", 0o000),
      "modes/exec": F("#!/bin/sh\n", 0o755), "modes/group-w": F("g", 0o664),
      "modes/locked": D(0o700), "modes/locked/inside": "i", "modes/ro-dir": D(0o555),
      "modes/ro-dir/f": "f"})
    case("copy-special-bits-from-context", r"""
FROM @B@
COPY bits /bits
""", {"bits/suid": F("s", 0o4755), "bits/sgid": F("g", 0o2755), "bits/both": F("b", 0o6711),
      "bits/sticky": D(0o1777), "bits/sgid-dir": D(0o2775), "bits/sgid-dir/x": "x"})
    case("add-script-chmod", r"""
FROM @B@
ADD script /script
RUN ["chmod","+x","/script"]
RUN ["/script"]
RUN [ "$(cat /script-ran)" = 'ran!' ]
""", {"script": "#!/bin/sh\necho 'ran!' > /script-ran\n"})
    case("copy-overwrites-file-mode", r"""
FROM @B@
RUN echo old > /target && chmod 700 /target && chown 5:5 /target
COPY target /target
""", {"target": F("new", 0o640)})


def symlinks():
    case("copy-symlink-to-file", r"""
FROM @B@
COPY pointer target
""", {"real": "bar", "pointer": L("real")}, checks=["cat /target"])
    case("copy-symlink-to-dir", r"""
FROM @B@
COPY dirlink /
""", {"realdir/abc": "bar", "realdir/def": "baz", "dirlink": L("realdir")},
         checks=["cat /abc /def"])
    case("copy-symlink-basename", r"""
FROM @B@
COPY pointer /
""", {"real": "bar", "pointer": L("real")}, checks=["cat /pointer"])
    case("copy-dot-broken-symlink", r"""
FROM @B@
COPY . ./
""", {"data": "bar", "dangling": L("/nonexistent/nosuchfile"), "newfile": "n"})
    case("copy-links-inside-dir", r"""
FROM @B@
COPY linked /linked
""", {"linked/file": "f", "linked/rel": L("file"), "linked/abs": L("/etc/passwd"),
      "linked/up": L("../outside"), "linked/dirlink": L("."), "linked/hard": H("linked/file")})
    case("copy-root-source", r"""
FROM @B@
COPY / /data
""", {"foo": "baz"})
    case("copy-onto-existing-symlink", r"""
FROM @B@
RUN echo old > /real && ln -s /real /link
COPY newfile /link
""", {"newfile": "new"})
    case("copy-into-symlink-chain", r"""
FROM @B@
RUN mkdir -p /deep/end && ln -s /deep /hop1 && ln -s hop1/end /hop2
COPY f /hop2/
""", {"f": "x"})


def dest_semantics():
    case("copy-file-rename", r"""
FROM @B@
COPY src.txt /newname
COPY src.txt /dir-with-slash/
COPY src.txt relative-name
""", {"src.txt": "s"})
    case("copy-file-into-existing-dir-no-slash", r"""
FROM @B@
RUN mkdir /already
COPY src.txt /already
""", {"src.txt": "s"})
    case("copy-multiple-needs-slash", r"""
FROM @B@
COPY a b /not-a-dir
""", {"a": "a", "b": "b"}, fail=True)
    case("copy-multiple-into-existing-dir-no-slash", r"""
FROM @B@
RUN mkdir /already
COPY a b /already
""", {"a": "a", "b": "b"}, fail=True)
    case("copy-wildcard-many-needs-slash", r"""
FROM @B@
COPY *.txt /single
""", {"a.txt": "a", "b.txt": "b"}, fail=True)
    case("copy-nothing-matches", r"""
FROM @B@
COPY nomatch* /x/
""", {"a.txt": "a"}, fail=True)
    case("copy-outside-context", r"""
FROM @B@
COPY ../escape /x
""", {"a.txt": "a"}, fail=True)
    case("copy-file-over-dir", r"""
FROM @B@
RUN mkdir -p /occupied/inner
COPY f /occupied
""", {"f": "x"})
    case("copy-dir-over-file", r"""
FROM @B@
RUN echo x > /plainfile
COPY tree /plainfile/
""", {"tree/a": "a"}, fail=True)
    case("copy-dot-slash-forms", r"""
FROM @B@
COPY ./f /one
COPY ./sub/../f /two
COPY sub/./g /three
COPY sub/ /four
COPY sub/. /five/
""", {"f": "f", "sub/g": "g"})
    case("copy-delete-then-copy", r"""
FROM @B@
RUN mkdir -p /w && echo old > /w/f && echo keep > /w/k
RUN rm /w/f
COPY f /w/f
""", {"f": "fresh"})
    case("copy-same-content-thrice", r"""
FROM @B@
COPY 1/ /target/
COPY 2/ /target/
COPY 3/ /target/
""", {"1/a": "same", "2/a": "same", "3/a": "same"})
    case("copy-hard-links-in-context", r"""
FROM @B@
COPY pair /pair
COPY pair/one /single
""", {"pair/one": "linked", "pair/two": H("pair/one")})
    case("copy-odd-names", r"""
FROM @B@
COPY odd /odd
""", {"odd/caf\u00e9": "utf8", b"odd/latin\xe9": "bytes", "odd/-dash": "d",
      "odd/back\\slash": "b", "odd/new\nline": "n", "odd/#hash": "h"})
