"""``python -m audioring.testing pulse|jack|play|stop``: private audio servers for a shell.

Start commands leave the server running and print ``export`` lines for its
client variables, so that::

    eval "$(python -m audioring.testing pulse)"       # PULSE_SERVER=...
    eval "$(python -m audioring.testing jack)"        # JACK_DEFAULT_SERVER=...
    ...                                               # record from them
    eval "$(python -m audioring.testing stop)"

``play pulse|jack`` plays a tone per channel (``--freqs``) or a sound file
(``--file``) into the server the environment names, for ``--seconds`` or
until Ctrl-C (see ``_play``). ``stop`` stops the servers named by ``$AUDIORING_PULSE_DIR`` and
``$AUDIORING_JACK_DIR`` (or the directories given) and prints ``unset``
lines. Comments and messages go to standard error and ``#`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from ._errors import AudioServerError
from ._jack import JackServer
from ._play import play
from ._process import kill_pid
from ._pulse import PulseServer
from ._server import forget_at_exit

__all__ = ["main"]

_CLIENT_VARS = {
    "pulse": ("PULSE_SERVER", "PULSE_CLIENTCONFIG", "AUDIORING_PULSE_DIR"),
    # JACK_NO_START_SERVER stays: it is right without any server too.
    "jack": ("JACK_DEFAULT_SERVER", "AUDIORING_JACK_DIR"),
}


def _print_env(env: dict[str, str], comment: str) -> None:
    print(f"# {comment}")
    for k, v in env.items():
        print(f"export {k}={shlex.quote(v)}")


def _stop_dirs(dirs: Sequence[str]) -> None:
    """Stop the servers whose state directories are `dirs`; print `unset` lines."""
    for d in dirs:
        kind = "pulse" if Path(d).name.startswith("audioring-pulse-") else "jack"
        state_file = Path(d) / "server.json"
        if state_file.exists():
            state = json.loads(state_file.read_text())
            kill_pid(int(state["pid"]), "pulseaudio" if kind == "pulse" else "jackd")
            shutil.rmtree(d, ignore_errors=True)
            print(f"# stopped {kind} server (pid {state['pid']})", file=sys.stderr)
        else:
            print(f"# no server state in {d}", file=sys.stderr)
        for k in _CLIENT_VARS[kind]:
            print(f"unset {k}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audioring.testing",
        description="Start or stop private audio servers (PulseAudio null sink, JACK dummy "
        "driver) for testing audio capture without a sound card. Start commands print "
        '`export` lines: use them as `eval "$(python -m audioring.testing pulse)"`; '
        '`eval "$(python -m audioring.testing stop)"` stops the servers '
        "named by $AUDIORING_PULSE_DIR and $AUDIORING_JACK_DIR.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pulse", help="start a PulseAudio daemon with a null sink")
    p.add_argument("--rate", type=int, default=48000, help="the null sink's sampling rate in Hz (default: 48000)")
    p.add_argument("--channels", type=int, default=2, help="the null sink's channels (default: 2)")
    j = sub.add_parser("jack", help="start a jackd with the dummy driver")
    j.add_argument("--rate", type=int, default=48000, help="sampling rate in Hz (default: 48000)")
    j.add_argument("--period", type=int, default=256,
                   help="frames per period, JACK's block size: latency and callback rate (default: 256)")
    j.add_argument("--channels", type=int, default=8,
                   help="capture and playback ports of the dummy driver, system:capture_1..N (default: 8)")
    j.add_argument("--name", default=None, help="server name (default: a private one)")
    j.add_argument("--realtime", action="store_true",
                   help="realtime scheduling (jackd -R instead of -r)")
    j.add_argument("--clock-error-ppm", type=float, default=0.0, metavar="PPM",
                   help="run the server's clock this many ppm fast (negative: slow), as a real device's "
                   "crystal is off: jackd under libfaketime (Debian package faketime); within +-10000 "
                   "(default: 0)")
    pl = sub.add_parser(
        "play", help="play a tone per channel or a sound file into a running test server",
        description="Play into a server started by `python -m audioring.testing pulse|jack` (found through "
        "$AUDIORING_PULSE_DIR / $AUDIORING_JACK_DIR, or --dir): PulseAudio through pacat into its null sink "
        "(recorders of `pulse` or `default` hear it), JACK from a client connected to the input ports of the "
        "--target clients (PortAudio's: a recorder of `system`), also of ones that appear later. Until Ctrl-C "
        "unless --seconds is given (a file: until its end).")
    pl.add_argument("kind", choices=("pulse", "jack"), help="the server to play into")
    what = pl.add_mutually_exclusive_group()
    what.add_argument("--freqs", type=float, nargs="+", metavar="HZ",
                      help="a sine per channel: one frequency for every channel, or one per channel (default: 1000)")
    what.add_argument("--file", help="a sound file at the server's rate, mono or with the server's channels")
    pl.add_argument("--amplitude", type=float, default=0.5,
                    help="peak level of the tones, or gain of the file, 0..1 of full scale (default: 0.5)")
    pl.add_argument("--seconds", type=float, default=None, help="play this long (default: until Ctrl-C)")
    pl.add_argument("--dir", default=None, help="the server's directory (default: from the environment)")
    pl.add_argument("--target", default="PortAudio",
                    help="JACK: connect to the clients whose names start with this (default: PortAudio)")
    s = sub.add_parser("stop", help="stop servers started by this command")
    s.add_argument("dirs", nargs="*", help="server directories (default: from the environment)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "play":
        try:
            play(args.kind, directory=args.dir, freqs=args.freqs, amplitude=args.amplitude, file=args.file,
                 seconds=args.seconds, target=args.target)
        except ValueError as error:
            parser.error(str(error))
        except (AudioServerError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            pass  # Ctrl-C ends playback: the way to stop it without --seconds
        return 0
    if args.command == "stop":
        dirs = args.dirs or [os.environ[k] for k in ("AUDIORING_PULSE_DIR", "AUDIORING_JACK_DIR")
                             if os.environ.get(k)]
        _stop_dirs(dirs)
        return 0
    server: Union[PulseServer, JackServer]
    if args.command == "pulse":
        server = PulseServer(args.rate, args.channels)
    else:
        try:
            server = JackServer(args.rate, args.period, args.channels, name=args.name,
                                realtime=args.realtime, clock_error_ppm=args.clock_error_ppm)
        except ValueError as error:
            parser.error(str(error))
    try:
        server.start()
    except AudioServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    _print_env(server.env, f"{server!r}; stop: python -m audioring.testing stop {server.directory}")
    # Leave it running: forget it so that the exit handler keeps its hands off.
    forget_at_exit(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
