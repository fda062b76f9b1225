"""What steps leave in their layers: metadata-only changes, renames, type changes, long
names, devices, whiteouts in ADDed archives, symlinks as COPY sources (moby:
TestBuildOpaqueDirectory, TestBuildDeleteCommittedFile, TestBuildWithEmptyLayers and the
layer semantics around them)."""
from .core import case, tar_member, tar_bytes, L

LONG = "n" * 240


def register():
    case("layer-chmod-chown-base-file", r"""
FROM @B@
RUN chmod 600 /etc/passwd
RUN chown 1000:1000 /etc/group
""")
    case("layer-touch-only", "FROM @B@\nRUN touch -d @1000000 /etc/passwd\n")
    case("layer-rename-dir", r"""
FROM @B@
RUN mkdir -p /d1/x/y && echo f > /d1/x/y/f && ln -s x /d1/lx
RUN mv /d1 /d2
""")
    case("layer-type-changes", r"""
FROM @B@
RUN mkdir /a && echo f > /b && ln -s /etc /c && mkdir -p /d/inner
RUN rm -rf /a /b /c /d && echo now-file > /a && mkdir /b && mkdir /c && ln -s /tmp /d
""")
    case("layer-long-names", f"""
FROM @B@
RUN mkdir -p /deep/{'/'.join(['segment-of-a-long-path'] * 12)} && \\
    echo x > /deep/{LONG} && ln -s /deep/{LONG} /deep/link-with-a-long-target && \\
    ln /deep/{LONG} /deep/hard-{'h' * 200}
""")
    case("copy-long-names", "FROM @B@\nCOPY . /ctx/\n", {
        "/".join(["dir-with-a-long-name-here"] * 10) + "/f": "deep",
        LONG: "long", "lnk": L("x" * 180)})
    case("layer-devices-and-fifo", r"""
FROM @B@
RUN mknod /null2 c 1 3 && mknod /blk b 7 200 && mkfifo /fifo && chmod 600 /fifo
""")
    case("layer-sticky-and-setgid-dirs", r"""
FROM @B@
RUN mkdir -m 1777 /shared && mkdir -m 2775 /group && chown 0:1000 /group && touch /group/f
""")
    case("layer-delete-and-recreate-same-step", r"""
FROM @B@
RUN rm /etc/group && echo 'root:x:0:' > /etc/group
""")
    case("layer-empty-and-nonempty-runs", r"""
FROM @B@
RUN true
RUN cat /etc/passwd > /dev/null
RUN echo changed > /changed
RUN ls /
""")
    case("add-tar-with-whiteout-names", r"""
FROM @B@
RUN mkdir /t && echo keep > /t/victim
ADD wh.tar /t/
""", {"wh.tar": tar_bytes([tar_member(".wh.victim", ""), tar_member(".wh..wh..opq", "")])})
    case("add-tar-into-symlinked-dir", r"""
FROM @B@
RUN mkdir /real && ln -s /real /lnk
ADD pack.tar /lnk/
""", {"pack.tar": tar_bytes([tar_member("in/f", "x")])})
    case("copy-dir-onto-symlinked-dir", r"""
FROM @B@
RUN mkdir /real && ln -s /real /lnk
COPY tree /lnk
""", {"tree/a": "a", "tree/b/c": "c"})
    case("copy-from-stage-symlink-source", r"""
FROM @B@ AS src
RUN echo data > /file && ln -s /file /link && mkdir /dir && ln -s /dir /dlink && touch /dir/x
FROM @B@
COPY --from=src /link /copied-link
COPY --from=src /dlink /copied-dlink
COPY --from=src /dir/ /copied-dir/
""")
    case("copy-from-stage-owner-and-modes", r"""
FROM @B@ AS src
RUN mkdir -m 700 /p && echo s > /p/s && chmod 4755 /p/s && chown -R 12:34 /p
FROM @B@
COPY --from=src /p /p
COPY --from=src /p/s /single
""")
