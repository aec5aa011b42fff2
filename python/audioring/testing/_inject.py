"""The tone generator process of :meth:`JackServer.inject_tones` (internal).

Run as ``python -m audioring.testing._inject --server NAME --target PREFIX
--freqs F...``: a JACK client (JACK-Client package) with one output port per
frequency that connects output ``i`` to the ``i``-th input port (numeric
order) of every client whose name starts with PREFIX, as such ports appear.
It prints ``ready`` once active, then ``connected SRC DST`` and
``disconnected SRC DST`` lines, and exits when its standard input closes.
Signals come from this separate process so that a test that holds the GIL,
or stalls on purpose, cannot disturb them.
"""

from __future__ import annotations

import argparse
import re
import select
import sys
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

__all__ = ["main"]


def _port_order(name: str) -> list[Union[int, str]]:
    """Numeric order of port names: in_2 before in_10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _run(args: argparse.Namespace) -> int:
    import jack  # JACK-Client

    client = jack.Client("audioring-inject", servername=args.server, no_start_server=True)
    freqs = np.asarray(args.freqs, dtype=np.float64)
    outs = [client.outports.register(f"tone_{i + 1}") for i in range(len(freqs))]
    rate: int = client.samplerate
    # One second of each tone, plus room for a whole block past the end so a
    # block is always one slice: the callback only copies (Python callbacks
    # at 192 kHz / 256 frames have 1.3 ms; computing sines there causes
    # xruns on 2 cores). Integer Hz loop without a phase jump.
    n = np.arange(rate + 8192, dtype=np.float64)
    table = (args.amplitude * np.sin(2 * np.pi * freqs[:, None] * n / rate)).astype(np.float32)

    def process(frames: int) -> None:
        # Phase from JACK's frame clock, not from a count of our own calls:
        # after a cycle we missed (an xrun) the tones continue in phase.
        start = client.last_frame_time % rate
        for i, port in enumerate(outs):
            port.get_array()[:] = table[i, start:start + frames]

    client.set_process_callback(process)
    client.activate()
    print("ready", flush=True)
    own = {p.name for p in outs}
    done: set[tuple[str, str]] = set()
    # Poll for target ports: simpler than registration callbacks, which may
    # not call into JACK themselves anyway.
    while not select.select([sys.stdin], [], [], 0.02)[0]:
        by_client: dict[str, list[str]] = {}
        for p in client.get_ports(is_audio=True, is_input=True):
            owner = p.name.split(":", 1)[0]
            if owner.startswith(args.target) and p.name not in own:
                by_client.setdefault(owner, []).append(p.name)
        for names in by_client.values():
            for src, dst in zip(outs, sorted(names, key=_port_order)):
                if (src.name, dst) in done:
                    continue
                try:
                    client.connect(src, dst)
                except jack.JackError:
                    continue  # port went away meanwhile; next round
                done.add((src.name, dst))
                print("connected", src.name, dst, flush=True)
        live = {p.name for p in client.get_ports(is_input=True)}
        for src, dst in sorted(done):
            if dst not in live:  # the recorder closed its stream
                done.discard((src, dst))
                print("disconnected", src, dst, flush=True)
    client.deactivate()
    client.close()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the arguments and run the generator until standard input closes."""
    parser = argparse.ArgumentParser(prog="python -m audioring.testing._inject")
    parser.add_argument("--server", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--amplitude", type=float, default=0.5)
    parser.add_argument("--freqs", type=float, nargs="+", required=True)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
