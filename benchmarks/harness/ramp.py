"""A frame-clock ramp fed into every recorder through JACK, and the check of what a recorder kept.

Each frame carries its number on JACK's frame clock (modulo 2**24, exact in
float32), so every lost frame shows as a jump in the recorded ramp, whatever
the recorder: no recorder needs a counter of its own. The ramp comes from a
separate JACK client process (``worker.py ramp``), so a recorder that stalls
cannot disturb it.

Two encodings: ``frames`` (the sample value is the frame number itself, for
float32 recorders) and ``unit`` (for recorders that store integers: full scale
is +-1.0, so the frame number is carried as ``(frame % UNIT_MODULO + 1) /
2**23``, exact in float32 and, times 2**31, in int32; never 0, so silence a
recorder writes in place of lost frames stays distinguishable). `unit_values`
turns recorded samples back into those ramp values.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from harness.workers import child_command

RAMP_MODULO = 2**24  # float32 holds every integer below it exactly
#: The ``unit`` encoding: values 1 .. 2**23 - 1 over 2**23 (a float32 mantissa's worth), then around again.
UNIT_BITS = 23
UNIT_MODULO = 2**UNIT_BITS - 1
ENCODINGS = ("frames", "unit")
PORT_CHOICES = ("all", "edges")


def _port_order(name: str) -> tuple:
    """Sort key of a port name: numbers compared as numbers (``in_2`` before ``in_10``)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _wanted(ports: list, which: str) -> set:
    """The input ports to feed: all of them, or each client's first and last (``edges``)."""
    if which == "all":
        return set(ports)
    by_client: dict = {}
    for port in ports:
        by_client.setdefault(port.split(":", 1)[0], []).append(port)
    wanted = set()
    for names in by_client.values():
        names.sort(key=_port_order)
        wanted |= {names[0], names[-1]}
    return wanted


def ramp_client_main(server: str, target: str, encoding: str = "frames", ports: str = "all") -> int:
    """Body of ``worker.py ramp``: one output port carrying JACK's frame clock, connected to the input ports
    of clients whose name starts with `target` (several prefixes: comma-separated), in `encoding` (see the
    module's docstring). `ports`: ``all`` of them, or ``edges``: each client's first and last, which spares
    a wide client's recording a connection per channel (each one a change of JACK's graph). Runs until stdin
    closes."""
    import jack  # JACK-Client

    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    if ports not in PORT_CHOICES:
        raise ValueError(f"ports must be one of {PORT_CHOICES}, got {ports!r}")
    prefixes = tuple(prefix for prefix in target.split(",") if prefix)
    client = jack.Client("audioring-ramp", servername=server, no_start_server=True)
    out = client.outports.register("ramp")
    offsets = np.arange(8192, dtype=np.float64)
    unit = np.empty(8192, dtype=np.float64)

    @client.set_process_callback
    def process(frames):
        start = client.last_frame_time
        if encoding == "frames":
            np.mod(offsets[:frames] + start, RAMP_MODULO, out=out.get_array()[:frames], casting="unsafe")
            return
        values = unit[:frames]
        np.mod(offsets[:frames] + start, UNIT_MODULO, out=values)
        values += 1
        values *= 2.0**-UNIT_BITS
        out.get_array()[:frames] = values

    # The process callback needs the GIL. This main thread takes it only when ports came or went (JACK's
    # registration callback says so), not on a timer: looking at hundreds of ports holds the GIL for
    # milliseconds, about a period at 192 kHz / 1024, and a period the callback misses repeats its last output
    # (a jump back, then forward, in every recording). And it hands the GIL over sooner than Python's 5 ms.
    changed = threading.Event()
    changed.set()
    client.set_port_registration_callback(lambda port, register: changed.set(), only_available=False)
    sys.setswitchinterval(1e-4)
    client.activate()
    print("ready", flush=True)
    connected: set = set()
    while not select.select([sys.stdin], [], [], 0.02)[0]:
        if not changed.is_set():
            continue
        changed.clear()
        try:
            inputs = [port.name for port in client.get_ports(is_audio=True, is_input=True)
                      if port.name.split(":", 1)[0].startswith(prefixes)]
            connected &= set(inputs)  # ports that went away (a stream closed) may come again under that name
            for name in sorted(_wanted(inputs, ports) - connected, key=_port_order):
                client.connect(out, name)
                connected.add(name)
        except jack.JackError:
            changed.set()  # a port went away while we looked, or its client is not active yet: look again
    client.deactivate()
    client.close()
    return 0


class RampSource:
    """The ramp client process for the JACK server `server_name`; restarted if it dies.

    It feeds clients whose name starts with `target` (comma-separated prefixes; PortAudio's by default), in
    `encoding` (``frames`` or ``unit``: see the module's docstring), into `ports` (``all`` their inputs, or
    ``edges``: each one's first and last).
    """

    def __init__(self, server_name: str, env: dict, log_path: Path, target: str = "PortAudio",
                 encoding: str = "frames", ports: str = "all") -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        if ports not in PORT_CHOICES:
            raise ValueError(f"ports must be one of {PORT_CHOICES}, got {ports!r}")
        self.ports = ports
        self.server_name = server_name
        self.env = env
        self.log_path = log_path
        self.target = target
        self.encoding = encoding
        self.restarts = 0
        self.proc: Optional[subprocess.Popen] = None
        self._start()

    def _start(self) -> None:
        with open(self.log_path, "ab") as err:
            command = child_command("ramp", self.server_name, self.target, self.encoding, self.ports)
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                         env={**os.environ, **self.env})
        ready = threading.Event()
        proc = self.proc

        def wait() -> None:
            if proc.stdout.readline().strip() == "ready":
                ready.set()
            proc.stdout.read()  # keep the pipe drained until the process ends

        threading.Thread(target=wait, daemon=True).start()
        if not ready.wait(15):
            self.stop()
            raise RuntimeError(f"the ramp JACK client did not start: {self.log_tail()}")

    def ensure_running(self) -> Optional[str]:
        """Restart the ramp client if it has exited; return what it said before it died, if it had."""
        if self.proc is not None and self.proc.poll() is None:
            return None
        said = f"exit status {self.proc.returncode if self.proc else None}: {self.log_tail()}"
        self.restarts += 1
        self._start()
        return said

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self._start()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> RampSource:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def unit_values(samples: np.ndarray) -> np.ndarray:
    """The ``unit`` ramp's values (int64, 1 .. UNIT_MODULO; 0 where the recorder stored silence) from recorded
    samples: floats at full scale +-1.0, or int32 at +-2**31 (rounded: PortAudio's conversion truncates and may
    dither, libsndfile's rounds; both stay far within half a step of 2**8)."""
    if np.issubdtype(samples.dtype, np.floating):
        return np.rint(samples.astype(np.float64) * 2.0**UNIT_BITS).astype(np.int64)
    if samples.dtype != np.int32:
        raise TypeError(f"the unit ramp is recorded as float or int32 samples, got {samples.dtype}")
    return np.rint(samples.astype(np.float64) * 2.0**(UNIT_BITS - 31)).astype(np.int64)


def ramp_gaps(samples: np.ndarray) -> dict:
    """Frames lost, repeated or out of order in a recorded ramp (leading silence skipped)."""
    values = np.rint(np.asarray(samples, dtype=np.float64)).astype(np.int64)
    nonzero = np.flatnonzero(values)
    if len(nonzero) < 2:
        return {"frames_checked": 0, "error": "no ramp in the recording"}
    values = values[nonzero[0]:]
    steps = np.diff(values) % RAMP_MODULO
    gaps = steps[steps > 1]
    backwards = steps[steps > RAMP_MODULO // 2]
    forward_gaps = gaps[gaps <= RAMP_MODULO // 2]
    return {
        "frames_checked": int(len(values)),
        "span_frames": int(len(values) + (forward_gaps - 1).sum()),
        "frames_lost": int((forward_gaps - 1).sum()),
        "gaps": int(len(forward_gaps)),
        "largest_gap_frames": int((forward_gaps - 1).max()) if len(forward_gaps) else 0,
        "repeats": int((steps == 0).sum()),
        "backwards": int(len(backwards)),
    }
