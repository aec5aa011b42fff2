"""A foreign-architecture root assembled from Debian packages, for the cross tests (tests/test_platforms.py).

``assemble_root(["libsoxr-dev:arm64", ...], dest)`` resolves the packages' dependency
closure with ``apt-cache depends --recurse`` (Depends and Pre-Depends only), downloads
every package with ``apt-get download`` and unpacks each with ``dpkg -x`` into ``dest``.
Nothing is installed on this machine and no maintainer script runs: the root is a
directory that qemu-user loads programs from (``qemu-aarch64 -L dest``) and that the
cross compiler links against (the toolchain files in cmake/toolchains/).

It needs the foreign architecture known to apt (``dpkg --add-architecture arm64`` and
``apt-get update``, which .ci/run does); the packages come from this machine's Debian
release, so the root matches what the same ``apt install`` gives on Raspberry Pi OS or
Debian arm64.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_APT_TIMEOUT = 600


class RootUnavailable(Exception):
    """apt cannot provide the packages here (no foreign architecture, no network, no apt)."""


def _run(command: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=_APT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RootUnavailable(f"{' '.join(command[:3])} ...: {error}") from None
    if done.returncode != 0:
        raise RootUnavailable(f"{' '.join(command[:3])} ... failed (exit status {done.returncode}):\n"
                              f"{done.stderr[-4000:]}")
    return done.stdout


def closure(packages: list[str]) -> list[str]:
    """The packages and everything they depend on (not recommends), as apt names them (``name:arch``)."""
    output = _run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                   "--no-breaks", "--no-replaces", "--no-enhances", *packages])
    # Unindented lines are packages; "<name>" ones are virtual (some real package of the
    # closure provides each).
    names = sorted({line.strip() for line in output.splitlines() if line and not line[0].isspace()
                    and not line.startswith("<")})
    missing = [p for p in packages if p not in names]
    if missing:
        raise RootUnavailable(f"apt does not know {missing} (for :arm64 run `dpkg --add-architecture arm64` "
                              f"and `apt-get update`)")
    return names


def assemble_root(packages: list[str], dest: Path) -> list[str]:
    """Unpacks `packages` and their dependency closure into `dest`; returns the package names unpacked."""
    for tool in ("apt-cache", "apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RootUnavailable(f"{tool} not found: a Debian root is assembled with apt and dpkg")
    names = closure(packages)
    debs = dest.parent / (dest.name + "-debs")
    debs.mkdir(parents=True, exist_ok=True)
    # As root, apt's download sandbox user (_apt) may not write here: root downloads then.
    sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    _run(["apt-get", "download", "-q", *sandbox, *names], cwd=debs)
    archives = sorted(debs.glob("*.deb"))
    if len(archives) != len(names):
        raise RootUnavailable(f"apt-get download gave {len(archives)} packages for {len(names)} names")
    dest.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        _run(["dpkg", "-x", str(archive), str(dest)])
    shutil.rmtree(debs)
    return names
