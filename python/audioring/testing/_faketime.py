"""A process whose clock runs fast or slow: libfaketime's speed factor (for :class:`JackServer`).

libfaketime (Debian package ``faketime``) is preloaded into a program
(``LD_PRELOAD``) and answers its ``clock_gettime``, ``nanosleep`` and the
like from a faked clock. With ``FAKETIME="+0 x1.0002"`` that clock starts at
the real time and runs 1.0002 times as fast: a jackd dummy driver, which paces
its periods by that clock, then delivers 200 ppm more frames per real second
than its nominal rate, as a sound card with a fast crystal does (measured:
``JackServer(clock_error_ppm=200)`` at 48 kHz delivers 48,009.6 frames per
real second, within a few ppm). Only the preloaded process is affected: its
clients, and the recorder measuring it, keep the real clock.

The multithreaded variant ``libfaketimeMT.so.1`` is the one to preload into a
multithreaded program such as jackd. Distributions put it in a directory of
its own, which the dynamic linker does not search, so it is looked for in
the usual places (:func:`libfaketime_path`).
"""

from __future__ import annotations

import math
import os
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from ._errors import AudioServerUnavailable
from ._packages import install_hint

__all__ = ["MAX_CLOCK_ERROR_PPM", "faketime_env", "libfaketime_path", "validate_clock_error_ppm"]

# Real crystals are off by tens to hundreds of ppm; 1% (10,000 ppm) covers any
# sound card and keeps the faked clock close enough to the real one that jackd's
# timeouts, which run on it too, keep their meaning.
MAX_CLOCK_ERROR_PPM = 10_000.0

_LIBRARY = "libfaketimeMT.so.1"


def validate_clock_error_ppm(clock_error_ppm: float) -> float:
    """`clock_error_ppm` as a float, checked to be finite and within +-:data:`MAX_CLOCK_ERROR_PPM`.

    Raises
    ------
    ValueError
        If it is not a finite number in that range.
    """
    try:
        value = float(clock_error_ppm)
    except (TypeError, ValueError):
        raise ValueError(f"clock_error_ppm must be a number in [-{MAX_CLOCK_ERROR_PPM:g}, "
                         f"{MAX_CLOCK_ERROR_PPM:g}], got {clock_error_ppm!r}") from None
    if not math.isfinite(value) or abs(value) > MAX_CLOCK_ERROR_PPM:
        raise ValueError(f"clock_error_ppm must be a number in [-{MAX_CLOCK_ERROR_PPM:g}, "
                         f"{MAX_CLOCK_ERROR_PPM:g}], got {clock_error_ppm!r}")
    return value


def _candidate_dirs() -> list[Path]:
    """Where distributions install libfaketime, this platform's multiarch directory first."""
    dirs = []
    multiarch = sysconfig.get_config_var("MULTIARCH")  # e.g. x86_64-linux-gnu (Debian)
    for prefix in ("/usr/lib", "/usr/local/lib"):
        if multiarch:
            dirs.append(Path(prefix) / str(multiarch) / "faketime")
        dirs += [Path(prefix) / "faketime", Path(prefix)]
    dirs += [Path("/usr/lib64/faketime"), Path("/usr/local/lib64/faketime"), Path("/usr/lib64")]
    return dirs


def libfaketime_path(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The path of ``libfaketimeMT.so.1`` on this machine.

    ``$AUDIORING_LIBFAKETIME`` (a file) takes precedence; otherwise the
    directories Debian/Ubuntu (``/usr/lib/<multiarch>/faketime``), Fedora
    (``/usr/lib64/faketime``), Arch (``/usr/lib/faketime``) and a source
    install (``/usr/local/lib/faketime``) use are searched.

    Raises
    ------
    AudioServerUnavailable
        If it is not found (nothing is installed automatically); the message
        names the packages that provide it.
    """
    env = os.environ if environ is None else environ
    override = env.get("AUDIORING_LIBFAKETIME")
    if override:
        if Path(override).is_file():
            return Path(override)
        raise AudioServerUnavailable(
            f"AUDIORING_LIBFAKETIME names {override!r}, which is not a file", missing=_LIBRARY)
    for directory in _candidate_dirs():
        path = directory / _LIBRARY
        if path.is_file():
            return path
    raise AudioServerUnavailable(
        f"JackServer(clock_error_ppm=...) needs libfaketime's {_LIBRARY} (Debian/Ubuntu package faketime), "
        f"which was not found in {', '.join(map(str, _candidate_dirs()))}; nothing is installed "
        f"automatically. Install: {install_hint('jack-clock')} (or set AUDIORING_LIBFAKETIME to its path)",
        missing=_LIBRARY)


def faketime_env(clock_error_ppm: float, environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The variables that make a program's clock run `clock_error_ppm` fast (negative: slow).

    Parameters
    ----------
    clock_error_ppm : float
        The clock error in parts per million, within +-:data:`MAX_CLOCK_ERROR_PPM`.
    environ : dict of str, optional
        The environment the program is started with (default ``os.environ``):
        an ``LD_PRELOAD`` in it is kept, after libfaketime.

    Returns
    -------
    dict of str
        ``LD_PRELOAD`` and ``FAKETIME`` (the speed factor, starting from the
        real time), to add to the program's environment.

    Raises
    ------
    ValueError
        If `clock_error_ppm` is out of range.
    AudioServerUnavailable
        If libfaketime is not installed.
    """
    ppm = validate_clock_error_ppm(clock_error_ppm)
    env = os.environ if environ is None else environ
    preload = [str(libfaketime_path(env))]
    if env.get("LD_PRELOAD"):
        preload.append(env["LD_PRELOAD"])
    # 12 decimals: 0.001 ppm is representable; libfaketime parses it with strtod.
    return {"LD_PRELOAD": " ".join(preload), "FAKETIME": f"+0 x{1 + ppm * 1e-6:.12f}"}
