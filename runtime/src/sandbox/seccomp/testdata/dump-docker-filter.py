#!/usr/bin/env python3
"""Writes the seccomp filter docker installs in a container, as the kernel holds it.

    python3 dump-docker-filter.py DOCKER OUT.bpf [docker run flags...]

Starts `DOCKER run -d --rm --network none FLAGS rbuild-anchor/busybox:1 sleep 60`, reads the
container process's filter with ptrace(PTRACE_SECCOMP_GET_FILTER) (root, a kernel with
CONFIG_CHECKPOINT_RESTORE), writes it as raw struct sock_filter entries (8 bytes each,
little-endian) and removes the container.
"""
import ctypes
import os
import subprocess
import sys

PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SECCOMP_GET_FILTER = 16, 17, 0x420C

docker, out, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
cid = subprocess.check_output(
    [docker, "run", "-d", "--rm", "--network", "none", *flags, "rbuild-anchor/busybox:1", "sleep", "60"], text=True
).strip()
try:
    pid = int(subprocess.check_output([docker, "inspect", "-f", "{{.State.Pid}}", cid], text=True))
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) < 0:
        sys.exit(f"ptrace attach: {os.strerror(ctypes.get_errno())}")
    os.waitpid(pid, getattr(os, "__WALL", 0x40000000))
    n = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, None)
    if n < 0:
        sys.exit(f"PTRACE_SECCOMP_GET_FILTER: {os.strerror(ctypes.get_errno())}")
    buf = ctypes.create_string_buffer(8 * n)
    libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, buf)
    libc.ptrace(PTRACE_DETACH, pid, None, None)
    with open(out, "wb") as f:
        f.write(buf.raw)
    print(f"{out}: {n} instructions", file=sys.stderr)
finally:
    subprocess.run([docker, "rm", "-f", cid], stdout=subprocess.DEVNULL, check=False)
