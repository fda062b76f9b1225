#!/usr/bin/env python3
"""Writes syscalls.tsv: the x86 syscall numbers seccomp sees, by name, for the three ABIs
docker's profile covers on x86_64 (x86_64, i386, x32), from the kernel's uapi headers.

    python3 gen-syscalls.py /usr/include/x86_64-linux-gnu/asm "linux-libc-dev 6.12.117-1" > syscalls.tsv
"""
import re
import sys

def table(path):
    nrs = {}
    for m in re.finditer(r"^#define __NR_(\w+) (?:\(__X32_SYSCALL_BIT \+ (\d+)\)|(\d+))$", open(path).read(), re.M):
        nrs[m.group(1)] = int(m.group(2) or m.group(3))
    return nrs

asm, source = sys.argv[1], sys.argv[2]
abis = [("x86_64", "unistd_64.h"), ("i386", "unistd_32.h"), ("x32", "unistd_x32.h")]
tables = [table(f"{asm}/{h}") for _, h in abis]
print(f"# x86 syscall numbers by name, from {source}: asm/unistd_64.h, unistd_32.h, unistd_x32.h")
print("# (written by gen-syscalls.py). '-': the ABI has no such syscall. x32 numbers are without")
print("# __X32_SYSCALL_BIT (0x40000000), which the filter adds.")
print("\t".join(["name"] + [a for a, _ in abis]))
for name in sorted(set().union(*tables)):
    print("\t".join([name] + [str(t[name]) if name in t else "-" for t in tables]))
