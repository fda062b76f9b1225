"""The case writer shared by every group of moby-derived cases.

A case is one folder in the layout ../shared/oracle/compare.py reads: the build context
with its Dockerfile, and beside it `args`, `checks`, `build-flags`, `expect-fail`,
`ignore-content`, `base/` (built first, tagged <case>-base) and `.dockerignore`; or,
with outside=True, a `Dockerfile` next to a `context/` folder (built with -f).

In Dockerfile text, @B@ stands for the busybox base and @BASE@ for the case's own base
image (its base/ folder, built first by both builders).
"""
import io
import os
import tarfile

B = "rbuild-anchor/busybox:1"
ROOT = None
NAMES = []


class F:
    """A regular file: content (str or bytes), mode, owner."""

    def __init__(self, content="", mode=0o644, uid=None, gid=None):
        self.content, self.mode, self.uid, self.gid = content, mode, uid, gid


class L:
    """A symbolic link to target."""

    def __init__(self, target):
        self.target = target


class D:
    """A directory (empty unless files are put under it), with its mode and owner."""

    def __init__(self, mode=0o755, uid=None, gid=None):
        self.mode, self.uid, self.gid = mode, uid, gid


class H:
    """A hard link to another path of the same context (written after it)."""

    def __init__(self, other):
        self.other = other


def _write_tree(top, files):
    os.makedirs(top, exist_ok=True)
    later_modes = []
    links = []
    for path, spec in (files or {}).items():
        bpath = path if isinstance(path, bytes) else path.encode()
        p = os.path.join(os.fsencode(top), bpath)
        parent = os.path.dirname(p)
        os.makedirs(parent, exist_ok=True)
        if isinstance(spec, (str, bytes)):
            spec = F(spec)
        if isinstance(spec, F):
            data = spec.content.encode() if isinstance(spec.content, str) else spec.content
            with open(p, "wb") as fh:
                fh.write(data)
            os.chmod(p, spec.mode)
            if spec.uid is not None:
                os.lchown(p, spec.uid, spec.gid if spec.gid is not None else spec.uid)
        elif isinstance(spec, L):
            os.symlink(spec.target, p)
        elif isinstance(spec, D):
            os.makedirs(p, exist_ok=True)
            if spec.uid is not None:
                os.lchown(p, spec.uid, spec.gid if spec.gid is not None else spec.uid)
            later_modes.append((p, spec.mode))   # after its content is written
        elif isinstance(spec, H):
            links.append((os.path.join(os.fsencode(top), spec.other.encode()), p))
        else:
            raise TypeError(f"unknown file spec for {path!r}")
    for src, dst in links:
        os.link(src, dst)
    for p, mode in sorted(later_modes, key=lambda t: -len(t[0])):
        os.chmod(p, mode)


def case(name, dockerfile, files=None, *, args=None, fail=False, base=None, base_files=None,
         ignore=None, checks=None, flags=None, outside=False, dockerfile_name="Dockerfile",
         ignore_content=None):
    """Writes one case folder named `name` under ROOT."""
    assert name not in NAMES, f"duplicate case {name}"
    assert name == name.lower(), name
    NAMES.append(name)
    d = os.path.join(ROOT, name)
    ctx = os.path.join(d, "context") if outside else d
    os.makedirs(ctx)
    text = dockerfile.lstrip("\n") if isinstance(dockerfile, str) else dockerfile
    if isinstance(text, str):
        text = text.replace("@B@", B).replace("@BASE@", f"{name}-base").encode()
    if dockerfile_name is not None:
        with open(os.path.join(d if outside else ctx, dockerfile_name), "wb") as fh:
            fh.write(text)
    _write_tree(ctx, files)
    if ignore is not None:
        with open(os.path.join(ctx, ".dockerignore"), "wb") as fh:
            fh.write(ignore.encode() if isinstance(ignore, str) else ignore)
    if args:
        _lines(d, "args", args)
    if checks:
        _lines(d, "checks", checks)
    if flags:
        _lines(d, "build-flags", flags)
    if ignore_content:
        _lines(d, "ignore-content", ignore_content)
    if fail:
        _lines(d, "expect-fail", [])
    if base is not None:
        bd = os.path.join(d, "base")
        _write_tree(bd, base_files)
        with open(os.path.join(bd, "Dockerfile"), "w") as fh:
            fh.write(base.lstrip("\n").replace("@B@", B))
    return d


def _lines(d, fname, lines):
    with open(os.path.join(d, fname), "w") as fh:
        fh.write("".join(l + "\n" for l in lines))


def tar_member(name, data=b"", kind="file", mode=0o644, uid=0, gid=0, link="", xattrs=None,
               mtime=1577836800):
    """A TarInfo and its data for tar_bytes."""
    ti = tarfile.TarInfo(name)
    ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, mtime
    if isinstance(data, str):
        data = data.encode()
    ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
               "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    ti.linkname = link
    ti.size = len(data) if kind == "file" else 0
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return ti, data


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    """An uncompressed tar of tar_member()s."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if ti.isfile() else None)
    return buf.getvalue()


def go_style_tar(members):
    """A ustar archive ended as Go's archive/tar ends one: two zero blocks, no padding
    to a 10 KiB record (what moby's tests write)."""
    out = b""
    for ti, data in members:
        out += ti.tobuf(format=tarfile.USTAR_FORMAT)
        if ti.isfile():
            out += data + b"\0" * (-len(data) % 512)
    return out + b"\0" * 1024
