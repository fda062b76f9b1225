"""ADD of local archives: where they unpack, which ones are not archives, broken ones,
and links in them that point out of the image (moby: TestBuildAddTar*, TestBuildAddBrokenTar,
TestBuildAddNonTar, TestBuildXZHost, TestBuildAddBadLinks*, TestBuildSymlinkBreakout)."""
import bz2
import gzip
import lzma

from .core import case, tar_member, tar_bytes, go_style_tar

# A made-up absolute path: where a link in an archive points, far above the root.
AWAY = "/../../../../../../../../../../../../var/tmp/rbuild-probe-away"


def hello_tar():
    return go_style_tar([tar_member("test/foo", "Hi")])


def register():
    case("add-tar-destinations", r"""
FROM @B@
ADD pack.tar /
RUN cat /test/foo | grep Hi
ADD pack.tar /pack.tar
RUN cat /pack.tar/test/foo | grep Hi
ADD pack.tar /unlikely-to-exist
RUN cat /unlikely-to-exist/test/foo | grep Hi
ADD pack.tar /unlikely-to-exist-slash/
RUN cat /unlikely-to-exist-slash/test/foo | grep Hi
RUN sh -c "mkdir /existing-directory"
ADD pack.tar /existing-directory
RUN cat /existing-directory/test/foo | grep Hi
ADD pack.tar /existing-directory-slash/
RUN cat /existing-directory-slash/test/foo | grep Hi
""", {"pack.tar": hello_tar()})
    truncated = hello_tar()[:-1]
    case("add-broken-tar", r"""
FROM @B@
ADD pack.tar /
""", {"pack.tar": truncated}, fail=True)
    case("add-not-a-tar", r"""
FROM @B@
ADD pack.tar /
RUN test -f /pack.tar
""", {"pack.tar": "not_a_tar_file"})
    raw = tar_bytes([tar_member("test/foo", "Hi")])
    case("add-tar-xz", r"""
FROM @B@
ADD pack.tar.xz /
RUN cat /test/foo | grep Hi
""", {"pack.tar.xz": lzma.compress(raw, format=lzma.FORMAT_XZ)})
    case("add-tar-xz-gz", r"""
FROM @B@
ADD pack.tar.xz.gz /
RUN ls /pack.tar.xz.gz
""", {"pack.tar.xz.gz": gzip.compress(lzma.compress(raw), mtime=0)})
    case("add-tar-gz-bz2", r"""
FROM @B@
ADD a.tgz /gz/
ADD b.tar.bz2 /bz/
ADD c.anything /any/
""", {"a.tgz": gzip.compress(raw, mtime=0), "b.tar.bz2": bz2.compress(raw),
      "c.anything": gzip.compress(raw, mtime=0)})
    case("add-bad-xz-not-run-on-host", r"""
FROM @B@
ADD xz /usr/local/sbin/
RUN chmod 755 /usr/local/sbin/xz
ADD junk.xz /
RUN [ ! -e /injected ]
""", {"junk.xz": b"\xfd\x37\x7a\x58\x5a\x00\x00\x04\xe6\xd6\xb4\x46\x02\x00\x21\x01\x16\x00"
      b"\x00\x00\x74\x2f\xe5\xa3\x01\x00\x3f\xfd\x37\x7a\x58\x5a\x00\x00\x04\xe6\xd6\xb4"
      b"\x46\x02\x00\x21", "xz": "#!/bin/sh\ntouch /injected\n"})
    case("add-tar-link-out-of-root", r"""
FROM scratch
ADD links.tar /
ADD payload.txt /symlink/
""", {"links.tar": go_style_tar([tar_member("symlink", kind="symlink", link=AWAY, mode=0o755)]),
      "payload.txt": "test"})
    case("add-through-link-to-volume", f"""
FROM @B@
RUN ln -s {AWAY} /x
VOLUME /x
ADD payload.txt /x/
""", {"payload.txt": "test"})
    case("add-tar-link-chain-breakout", r"""
FROM @B@
ADD chain.tar /
ADD inject /symlink/
""", {"chain.tar": go_style_tar([
        tar_member("symlink2", kind="symlink", link="/../../../../../../../../../../../../../../"),
        tar_member("symlink", kind="symlink", link="symlink2/var/tmp/rbuild-probe-breakout")]),
      "inject": ""})
    case("add-tar-owners-modes", r"""
FROM @B@
ADD owners.tar /o/
""", {"owners.tar": tar_bytes([
        tar_member("d", kind="dir", mode=0o700, uid=12, gid=34),
        tar_member("d/f", "x", mode=0o640, uid=56, gid=78),
        tar_member("d/suid", "s", mode=0o4755),
        tar_member("d/l", kind="symlink", link="f", uid=9, gid=9),
        tar_member("d/h", kind="hardlink", link="d/f"),
        tar_member("fifo", kind="fifo", mode=0o600)])})
    case("add-tar-over-existing", r"""
FROM @B@
RUN mkdir -p /t/keep /t/replace && echo k > /t/keep/k && echo old > /t/replace/f
ADD over.tar /t/
""", {"over.tar": tar_bytes([
        tar_member("replace/f", "new"),
        tar_member("replace", kind="dir", mode=0o711),
        tar_member("added/x", "x")])})
    case("add-tar-chown", r"""
FROM @B@
ADD --chown=1500:1600 owners.tar /made/by/add/
""", {"owners.tar": tar_bytes([tar_member("f", "x", uid=7, gid=8),
                                tar_member("d", kind="dir", uid=7, gid=8)])})
    case("add-tar-xattrs", r"""
FROM @B@
ADD xa.tar /xa/
""", {"xa.tar": tar_bytes([tar_member("f", "x", xattrs={"user.note": "hello"}),
                           tar_member("g", "y")])})
    case("add-tar-dot-entries", r"""
FROM @B@
ADD dots.tar /dots/
""", {"dots.tar": tar_bytes([tar_member("./", kind="dir", mode=0o750),
                             tar_member("./a/./b", "ab"), tar_member("c/../d", "d")])})
    case("copy-tar-not-unpacked", r"""
FROM @B@
COPY pack.tar /copied/
""", {"pack.tar": hello_tar()})
