"""Recordings shared by name: reading one (``--from NAME``) and listing them (``devices``)."""

from __future__ import annotations

import argparse
import warnings

from .. import SharedInfo, SharedRecording, attach, shared
from .display import notice
from .errors import CliError, UsageError

#: The capture options that choose and open a device; ``--from`` replaces them all.
DEVICE_OPTIONS = ("device", "channels", "rate", "device_rate", "mapping", "latency", "blocksize")


def add_from_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--from NAME``: read a recording another process shares instead of opening a device."""
    parser.add_argument("--from", dest="from_name", metavar="NAME",
                        help="read the recording shared under NAME (by `audioring serve NAME` or share=NAME) "
                             "instead of opening a device; see `audioring devices`")


def open_shared(args: argparse.Namespace) -> SharedRecording:
    """Attach to ``args.from_name``, refusing device options given alongside it.

    Raises
    ------
    UsageError
        If a device option or ``--buffer-seconds`` was given too, the name is not a valid name, or
        nothing is shared under it.
    CliError
        If the shared recording cannot be read, or it has no
        sampling rate (a `Ring` shared without one).
    """
    given = [f"--{name.replace('_', '-')}" for name in DEVICE_OPTIONS if getattr(args, name, None) is not None]
    if given:
        raise UsageError(f"argument --from: the shared recording fixes the input; drop {', '.join(given)}")
    if getattr(args, "buffer_seconds", None) is not None:
        raise UsageError("argument --buffer-seconds: with --from the shared recording's ring is the buffer; "
                         "its producer sets it (`audioring serve NAME --buffer-seconds S`)")
    try:
        mic = attach(args.from_name)
    except (ValueError, TypeError) as error:
        raise UsageError(f"argument --from: {error}") from None
    except FileNotFoundError:  # as an unknown --device: the command line names nothing there
        names = ", ".join(s.name for s in _listed()) or "none"
        raise UsageError(f"argument --from: nothing is shared under {args.from_name!r} (shared now: {names}); "
                         "start one with `audioring serve NAME`") from None
    except (OSError, NotImplementedError) as error:
        raise CliError(f"cannot read the shared recording {args.from_name!r}: {error}") from None
    if mic.sampling_rate == 0:  # a Ring shared without one: no duration, no file header
        mic.close()
        raise CliError(f"{args.from_name!r} is a Ring shared without a sampling rate, which the command line "
                       "needs: share it with Ring(..., sampling_rate=R)")
    return mic


def shared_summary(mic: SharedRecording) -> str:
    """A shared recording as a summary's ``input:`` line names it: ``shared 'mic' (pid 4242)``."""
    return f"shared {mic.name!r} (pid {mic.producer_pid})"


def print_shared() -> None:
    """The shared recordings, one line each (for ``audioring devices``)."""
    listed = _listed()
    if not listed:
        print("shared recordings: none (`audioring serve NAME` shares one; read it with --from NAME)")
        return
    print("shared recordings (read them with --from NAME):")
    print(f"  {'name':<24} {'pid':>7} {'ch':>4} {'rate':>7} {'dtype':<8} {'state':<10}")
    for s in listed:
        print(f"  {s.name:<24} {s.pid:>7} {s.channels:>4} {s.sampling_rate:>7} {s.dtype.name:<8} {s.state:<10}")


def _listed() -> list[SharedInfo]:
    """`shared`, each entry it skips (another user's, a forged file) told in one line, not as a Python warning."""
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")  # caught here whatever -W says: a user needs the line, not a traceback
        try:
            listed = shared()
        except NotImplementedError:
            listed = []
    for warning in skipped:
        notice(str(warning.message))
    return listed
