"""A foreign-architecture root assembled from Debian packages, for the cross tests (tests/test_platforms.py).

``assemble_root(["libsoxr-dev", "python3.11", ...], dest, "arm64")`` has apt resolve the
packages' dependencies as it would on an arm64 machine with nothing installed (``apt-get
--simulate install`` with arm64 as the only architecture and an empty dpkg status: one choice
per alternative, no recommends, architecture-independent packages included, nothing of this
machine's own architecture), downloads exactly that set with ``apt-get download`` and unpacks
each package with ``dpkg -x`` into ``dest``. Nothing is installed on this machine and no
maintainer script runs: the root is a directory that qemu-user loads programs from
(``qemu-aarch64 -L dest``) and that the cross compiler links against (the toolchain files in
cmake/toolchains/). The one thing of the maintainer scripts a program of the root needs is
done here: the links ``update-alternatives --install`` makes (numpy loads libblas.so.3, which
is such a link to the BLAS that libblas3 unpacks in a directory of its own).

It needs the foreign architecture known to apt (``dpkg --add-architecture arm64`` and
``apt-get update``, which .ci/run does); the packages come from this machine's Debian
release, so the root matches what the same ``apt install`` gives on Raspberry Pi OS or
Debian arm64.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

_APT_TIMEOUT = 600

# apt's simulated installation: "Inst NAME (VERSION ARCHIVES [ARCH])".
_INST = re.compile(r"^Inst (\S+) \((\S+) ", re.MULTILINE)


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


def _apt_options(architecture: str, status: Path) -> list[str]:
    """apt as on a machine of `architecture` alone with nothing installed (`status` is an empty file).

    The package lists are this machine's (they hold `architecture` once it was added with
    dpkg --add-architecture); the caches built from them stay in memory, this machine's own
    dpkg state and caches are neither read nor written.
    """
    return ["-o", f"APT::Architecture={architecture}", "-o", f"APT::Architectures::={architecture}",
            "-o", f"Dir::State::status={status}", "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
            "-o", "Debug::NoLocking=1", "-q"]


def closure(packages: list[str], architecture: str, work: Path) -> dict[str, str]:
    """The packages and what they depend on (not recommends), as apt resolves them: name -> version."""
    status = work / "empty-status"
    status.write_text("")
    output = _run(["apt-get", *_apt_options(architecture, status), "--simulate", "--no-install-recommends",
                   "install", *packages])
    resolved = dict(_INST.findall(output))
    missing = [p for p in packages if p not in resolved]
    if missing:
        raise RootUnavailable(f"apt resolved no {missing} for {architecture} (for a foreign architecture run "
                              f"`dpkg --add-architecture {architecture}` and `apt-get update`):\n{output[-4000:]}")
    return resolved


def assemble_root(packages: list[str], dest: Path, architecture: str) -> list[str]:
    """Unpacks `packages` (of `architecture`) and their dependencies into `dest`; returns the names unpacked."""
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise RootUnavailable(f"{tool} not found: a Debian root is assembled with apt and dpkg")
    debs = dest.parent / (dest.name + "-debs")
    debs.mkdir(parents=True, exist_ok=True)
    resolved = closure(packages, architecture, debs)
    # As root, apt's download sandbox user (_apt) may not write here: root downloads then.
    sandbox = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
    # The versions apt resolved, of `architecture` (or "all"): never this machine's own.
    _run(["apt-get", *_apt_options(architecture, debs / "empty-status"), *sandbox, "download",
          *(f"{name}={version}" for name, version in sorted(resolved.items()))], cwd=debs)
    archives = sorted(debs.glob("*.deb"))
    if len(archives) != len(resolved):
        raise RootUnavailable(f"apt-get download gave {len(archives)} packages for {len(resolved)} names")
    for archive in archives:
        if not archive.stem.endswith((f"_{architecture}", "_all")):
            raise RootUnavailable(f"{archive.name} is for neither {architecture} nor all architectures")
    dest.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        _run(["dpkg", "-x", str(archive), str(dest)])
        control = debs / (archive.stem + ".control")
        _run(["dpkg", "-e", str(archive), str(control)])
        postinst = control / "postinst"
        if postinst.exists():
            for link, target in alternatives(postinst.read_text(errors="replace")):
                _link_alternative(dest, link, target)
    shutil.rmtree(debs)
    return sorted(resolved)


def alternatives(script: str) -> list[tuple[str, str]]:
    """The (link, path) pairs a maintainer script gives ``update-alternatives --install`` (and its ``--slave``s).

    Only literal paths: a pair written with a shell variable is left out (no package of the
    roots built here has one).
    """
    pairs = []
    for line in script.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if "update-alternatives" not in words or "--install" not in words:
            continue
        at = words.index("--install")
        pairs.append((words[at + 1], words[at + 3]))  # --install LINK NAME PATH PRIORITY
        pairs += [(words[i + 1], words[i + 3]) for i, word in enumerate(words) if word == "--slave"]
    return [(link, path) for link, path in pairs if "$" not in link + path]


def _link_alternative(root: Path, link: str, target: str) -> None:
    """`link` -> `target` inside `root`, relative (an absolute link would leave the root: qemu -L maps only opens)."""
    at = root / link.lstrip("/")
    if at.exists() or at.is_symlink() or not (root / target.lstrip("/")).exists():
        return  # the first package providing it wins; a path no package of the root has stays unlinked
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(os.path.relpath(root / target.lstrip("/"), at.parent))
