"""What the servers need from the system, and the message when it is missing.

The Debian/Ubuntu package list lives once, in the data file
``debian-packages.txt`` beside this module (shipped in the wheel): the
messages here read it, and so does the repository's CI script to install the
packages. Nothing is ever installed from this library.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ._errors import AudioServerUnavailable

__all__ = ["DebianPackage", "debian_packages", "install_hint", "require_programs", "require_python_module"]

# Other distributions' names of the same packages, by server (Debian's are in
# the data file).
_OTHER_DISTRIBUTIONS = {
    "pulse": {
        "Fedora": "dnf install pulseaudio pulseaudio-utils alsa-plugins-pulseaudio",
        "Arch": "pacman -S pulseaudio pulseaudio-alsa",
    },
    "jack": {
        "Fedora": "dnf install jack-audio-connection-kit jack-audio-connection-kit-example-clients",
        "Arch": "pacman -S jack2",
    },
    # JackServer(clock_error_ppm=...): libfaketime, preloaded into jackd.
    "jack-clock": {
        "Fedora": "dnf install libfaketime",
        "Arch": "pacman -S libfaketime",
    },
}

_SERVER_NAMES = {"pulse": "PulseServer", "jack": "JackServer", "jack-clock": "JackServer(clock_error_ppm=...)"}


@dataclass(frozen=True)
class DebianPackage:
    """One line of ``debian-packages.txt``."""

    name: str
    server: str
    programs: tuple[str, ...]


def _parse(text: str) -> tuple[DebianPackage, ...]:
    packages = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 3:
            raise ValueError(f"debian-packages.txt: malformed line {line!r}")
        name, server, *programs = fields
        packages.append(DebianPackage(name, server, tuple(p for p in programs if p != "-")))
    return tuple(packages)


@cache
def debian_packages() -> tuple[DebianPackage, ...]:
    """The packages of ``debian-packages.txt``, in file order."""
    text = resources.files("audioring.testing").joinpath("debian-packages.txt").read_text(encoding="utf-8")
    return _parse(text)


def install_hint(server: str) -> str:
    """Which packages to install for `server` (``"pulse"``, ``"jack"`` or ``"jack-clock"``), per distribution."""
    debian = " ".join(p.name for p in debian_packages() if p.server == server)
    lines = [f"Debian/Ubuntu: apt-get install {debian}"]
    lines += [f"{distro}: {command}" for distro, command in _OTHER_DISTRIBUTIONS[server].items()]
    return "; ".join(lines)


def require_programs(server: str) -> None:
    """Raise :class:`AudioServerUnavailable` unless every program `server` runs is on ``PATH``.

    Parameters
    ----------
    server : {"pulse", "jack"}
        Whose programs (the third column of ``debian-packages.txt``).
    """
    for package in debian_packages():
        if package.server != server:
            continue
        for program in package.programs:
            if shutil.which(program) is None:
                raise AudioServerUnavailable(
                    f"{_SERVER_NAMES[server]} needs the program {program!r}, which is not on PATH "
                    f"(Debian/Ubuntu package {package.name}); nothing is installed automatically. "
                    f"Install: {install_hint(server)}",
                    missing=program,
                )


def require_python_module(module: str, distribution: str, extra: str) -> None:
    """Raise :class:`AudioServerUnavailable` unless `module` can be imported (without importing it)."""
    if importlib.util.find_spec(module) is None:
        raise AudioServerUnavailable(
            f"the Python module {module!r} is not installed: pip install {distribution} "
            f"(or pip install 'audioring[{extra}]')",
            missing=module,
        )
