#!/usr/bin/env python3
"""Writes differential oracle cases ported from moby's own build tests into DIR.

Usage: moby-cases.py DIR    then: ../shared/oracle/compare.py DIR/*/

The cases follow moby's integration-cli/docker_cli_build_test.go,
docker_cli_build_unix_test.go, docker_api_build_test.go, docker_cli_health_test.go and
integration/build/build_test.go: the tests docker's legacy builder runs offline, rewritten
as Dockerfiles of their own on rbuild-anchor/busybox:1 (the tests that need a network,
a registry, git, Windows, swarm, daemon settings or a specific image are left out; an
assertion moby makes by inspecting the image is left to compare.py, which compares the
whole image). Each case folder is in the layout compare.py reads (see mobycases/core.py).
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mobycases import core  # noqa: E402
from mobycases import archives, cmds, copy_add, env_arg, ignore, layers, meta, parse_errors, stages  # noqa: E402

GROUPS = [env_arg, copy_add, archives, layers, meta, cmds, stages, ignore, parse_errors]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = os.path.abspath(sys.argv[1])
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    os.umask(0o022)
    core.ROOT = root
    for group in GROUPS:
        group.register()
    print(f"{len(core.NAMES)} cases in {root}")


if __name__ == "__main__":
    main()
